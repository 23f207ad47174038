// SPDX-License-Identifier: MIT
//
// Reading and atomically replacing the small files that hold secrets:
// client secret files and refresh token files.
//
// ReadSecretFile() refuses anything that is not a regular file or is over
// the size limit, and trims surrounding whitespace (editors add a final
// newline). Both sides hold kMaxSecretFileBytes (64 KiB, counted with the
// newline): a file of exactly that size is read, one byte more is refused,
// and a value whose file would be larger is never written, so whatever is
// written can be read back (certificates and private keys share the
// limit). WriteSecretFileAtomically() writes a temporary file in the same
// directory (O_CREAT|O_EXCL, mode 0600 set with fchmod whatever the
// umask), fsyncs it, renames it over the target and fsyncs the directory,
// so a crash leaves either the old or the new content, never a mix and
// never a missing file. Errors come back as messages naming the path and
// errno text; nothing is logged here and the secret never appears in a
// message.
//
// Access rule for files that hold a secret, key or refresh token
// (FileAccess::kPrivate, the default): no group or other permission bits,
// owned by the helper's effective uid (or by root, who can read anything
// anyway), and not in a directory that others may write to without the
// sticky bit. It is checked with fstat on the descriptor that is read and
// on the directory opened before it, so the file checked is the file read.
// Every directory above, and those of a link's target, must also be
// owned by root or the helper's user and not writable by others without
// the sticky bit (CheckDirectoryChain).
// Certificates are public (FileAccess::kPublic) and are not checked.

#ifndef XOAUTH2_TOKEN_HELPER_SECRET_FILE_H
#define XOAUTH2_TOKEN_HELPER_SECRET_FILE_H

#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "secret.h"

namespace xoauth2::helper {

// Upper bound for a secret or refresh token file.
inline constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

// The permission bits of `mode` as four octal digits ("0600").
std::string ModeText(mode_t mode);

// Whether a file must be kept from other users (see the access rule).
enum class FileAccess { kPrivate, kPublic };

// "alice (uid 1000)", or "uid 1000" for a uid without a name.
std::string UserText(uid_t uid);

// "postfix (gid 105)", or "gid 105" for a gid without a name.
std::string GroupText(gid_t gid);

// The user name to give chown, or the number for a uid without a name.
std::string ChownName(uid_t uid);

// Why another local user could replace what a directory holds.
enum class DirectoryRisk {
  kNone,
  kWritableByOthers,  // others may write and the sticky bit does not help
  kWritableByGroup,   // a group other than root's and the helper's may write
  kForeignOwner,      // owned by a user other than root and the helper's
};

// Whether the sticky bit makes a directory others may write safe: for a
// file that is read it does (no one else may rename or remove it), for a
// socket that is yet to be bound it does not (anyone may take the name).
enum class Sticky { kProtects, kDoesNotProtect };

// The risk of the directory whose status is `dir` for a helper running
// as `euid` with group `egid`.
DirectoryRisk RiskOf(const struct stat& dir, uid_t euid, gid_t egid,
                     Sticky sticky = Sticky::kProtects);

// "has mode 0777 (writable by others, no sticky bit), so any local user
// could replace it; fix: chmod o-w DIR" and the like: what is wrong with
// `dir` (status `info`) and the fix, for a message that names it first.
std::string RiskText(DirectoryRisk risk, const std::string& dir,
                     const struct stat& info, uid_t euid);

// What to tell an administrator who ran a command as root about a file or
// directory owned by `owner`: that the owner may be the user the helper
// runs as, and how to run the command as that user. Empty unless `euid`
// is root and `owner` is not.
std::string CheckAsOwnerHint(uid_t owner, uid_t euid);

// A directory on the way to a path that another user could change.
struct UnsafeDirectory {
  std::string dir;
  struct stat info {};
  DirectoryRisk risk = DirectoryRisk::kNone;
  bool holds_last = false;  // the directory the path's last name is in
};

// Walks `path` name by name, following symbolic links wherever they are
// met, and judges every directory that holds a name on the way (each
// real directory from the root down, those of every link and of its
// target): the first with a DirectoryRisk, none when all are safe. The
// directory holding the last name is judged with `last_sticky`. A last
// name that does not exist ends the walk without error; an error is a
// path that cannot be walked (a missing directory, a loop of links).
std::expected<std::optional<UnsafeDirectory>, std::string> FindUnsafeDirectory(
    const std::string& path, uid_t euid, Sticky last_sticky);

// FindUnsafeDirectory for a file that holds a secret: an error naming the
// file, the directory, what is wrong and the fix.
std::expected<void, std::string> CheckDirectoryChain(const std::string& path,
                                                     uid_t euid);

// Checks the access rule for `path`, whose status is `file`, in the
// directory whose status is `dir`, for a helper running as `euid`. The
// error names the file, its mode and owner, and the commands that fix it.
std::expected<void, std::string> CheckPrivateFile(const std::string& path,
                                                  const struct stat& file,
                                                  const struct stat& dir,
                                                  uid_t euid);

// A file opened for reading with the status of it and of its directory,
// both taken with fstat on descriptors (the directory is opened first and
// the file is opened relative to it).
struct OpenedFile {
  int fd = -1;  // owned by the caller, who closes it
  struct stat file {};
  struct stat dir {};
};

// "cannot open PATH: REASON" and the fix: `missing_fix` when the file
// does not exist, and for a file the helper may not read, who it runs as.
std::string OpenFailureText(const std::string& path, int error,
                            std::string_view missing_fix);

// Opens `path` read-only as described for OpenedFile; the error is
// OpenFailureText's.
std::expected<OpenedFile, std::string> OpenFileAndDirectory(
    const std::string& path, std::string_view missing_fix);

// Reads `path`, trims whitespace at both ends; error if missing, not a
// regular file, larger than `limit` bytes, empty after trimming, or (for
// kPrivate) open to other users.
std::expected<Secret, std::string> ReadSecretFile(
    const std::string& path, std::size_t limit = kMaxSecretFileBytes,
    FileAccess access = FileAccess::kPrivate);

// ReadSecretFile for a file that holds one value, a client secret or a
// refresh token: refused when a space, tab, line break or other control
// character is left inside it after trimming (two values, or one pasted
// with a line break), which the token endpoint would refuse less clearly.
std::expected<Secret, std::string> ReadSecretValue(const std::string& path);

// Replaces the content of `path` with `value` and a newline, atomically and
// durably, leaving the file with mode 0600 (and, when running as root, the
// owner of the file it replaces). No temporary file survives a failure.
// Error (the old file kept) if value and newline exceed kMaxSecretFileBytes.
std::expected<void, std::string> WriteSecretFileAtomically(
    const std::string& path, const Secret& value);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SECRET_FILE_H
