// SPDX-License-Identifier: MIT
//
// Reading and atomically replacing the small files that hold secrets:
// client secret files and refresh token files.
//
// ReadSecretFile() refuses anything that is not a regular file or is over
// the size limit, and trims surrounding whitespace (editors add a final
// newline). WriteSecretFileAtomically() writes a temporary file in the same
// directory (O_CREAT|O_EXCL, mode 0600 set with fchmod whatever the umask),
// fsyncs it, renames it over the target and fsyncs the directory, so a
// crash leaves either the old or the new content, never a mix and never a
// missing file. Errors come back as messages naming the path and errno
// text; nothing is logged here and the secret never appears in a message.

#ifndef XOAUTH2_TOKEN_HELPER_SECRET_FILE_H
#define XOAUTH2_TOKEN_HELPER_SECRET_FILE_H

#include <cstddef>
#include <expected>
#include <string>

#include "secret.h"

namespace xoauth2::helper {

// Upper bound for a secret or refresh token file.
inline constexpr std::size_t kMaxSecretFileBytes = 64 * 1024;

// Reads `path`, trims whitespace at both ends; error if missing, not a
// regular file, larger than `limit` bytes or empty after trimming.
std::expected<Secret, std::string> ReadSecretFile(
    const std::string& path, std::size_t limit = kMaxSecretFileBytes);

// Replaces the content of `path` with `value` and a newline, atomically and
// durably, leaving the file with mode 0600 (and, when running as root, the
// owner of the file it replaces). No temporary file survives a failure.
std::expected<void, std::string> WriteSecretFileAtomically(
    const std::string& path, const Secret& value);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SECRET_FILE_H
