// SPDX-License-Identifier: MIT
//
// POSIX file handling for secret files: the access rule checked with
// fstat on open descriptors, bounded reads and the
// temp-file/fsync/rename/fsync-directory replacement sequence.

#include "secret_file.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace xoauth2::helper {
namespace {

std::string ErrnoText(int error) {
  return std::strerror(error);
}

// Closes a descriptor when it goes out of scope.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  ~FdGuard() {
    if (fd_ >= 0)
      close(fd_);
  }
  int get() const { return fd_; }
  // Closes now and reports close(2)'s result.
  int Release() {
    int rc = close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

// The directory part of `path` ("." for a bare name).
std::string DirectoryOf(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

std::string Trim(const std::string& text) {
  const char* ws = " \t\r\n";
  std::size_t first = text.find_first_not_of(ws);
  if (first == std::string::npos)
    return {};
  std::size_t last = text.find_last_not_of(ws);
  return text.substr(first, last - first + 1);
}

// Writes all of `data`, retrying short writes and EINTR.
bool WriteAll(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Creates a fresh temporary file next to `path`; returns fd and its name.
int CreateTemp(const std::string& path, std::string& temp_path) {
  static std::atomic<unsigned> counter{0};
  std::filesystem::path target(path);
  for (int attempt = 0; attempt < 16; ++attempt) {
    temp_path =
        (target.parent_path() / ("." + target.filename().string() + ".tmp." +
                                 std::to_string(getpid()) + "." +
                                 std::to_string(counter.fetch_add(1))))
            .string();
    int fd = open(temp_path.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 || errno != EEXIST)
      return fd;
  }
  errno = EEXIST;
  return -1;
}

// fsyncs the directory holding `path` so the rename itself is durable.
bool SyncParentDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty())
    dir = ".";
  FdGuard fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  return fd.get() >= 0 && fsync(fd.get()) == 0;
}

// Writes, fixes mode/owner and syncs the open temporary file.
std::expected<void, std::string> FillTemp(int fd, const std::string& path,
                                          const Secret& value) {
  // The umask may have cleared bits of 0600 or we may replace a file with
  // looser bits: set the mode explicitly.
  if (fchmod(fd, 0600) != 0) {
    return std::unexpected("cannot set mode 0600: " + ErrnoText(errno));
  }

  // Keep the owner of the file we replace when we are allowed to.
  struct stat old_stat {};
  if (geteuid() == 0 && stat(path.c_str(), &old_stat) == 0) {
    if (fchown(fd, old_stat.st_uid, old_stat.st_gid) != 0) {
      return std::unexpected("cannot keep owner: " + ErrnoText(errno));
    }
  }

  if (!WriteAll(fd, value.Reveal() + "\n") || fsync(fd) != 0) {
    return std::unexpected("cannot write: " + ErrnoText(errno));
  }
  return {};
}

// The name of `uid` in the user database, or nothing.
std::optional<std::string> UserName(uid_t uid) {
  std::vector<char> buffer(4096);
  passwd entry{};
  passwd* found = nullptr;
  getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found);
  if (found == nullptr)
    return std::nullopt;
  return found->pw_name;
}

}  // namespace

std::string UserText(uid_t uid) {
  std::string id = "uid " + std::to_string(uid);
  std::optional<std::string> name = UserName(uid);
  return name ? *name + " (" + id + ")" : id;
}

std::string GroupText(gid_t gid) {
  std::vector<char> buffer(4096);
  group entry{};
  group* found = nullptr;
  getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found);
  std::string id = "gid " + std::to_string(gid);
  return found != nullptr ? std::string(found->gr_name) + " (" + id + ")" : id;
}

std::string ChownName(uid_t uid) {
  return UserName(uid).value_or(std::to_string(uid));
}

DirectoryRisk RiskOf(const struct stat& dir, uid_t euid, gid_t egid,
                     Sticky sticky) {
  bool sticky_helps =
      sticky == Sticky::kProtects && (dir.st_mode & S_ISVTX) != 0;
  if ((dir.st_mode & S_IWOTH) != 0 && !sticky_helps)
    return DirectoryRisk::kWritableByOthers;
  if ((dir.st_mode & S_IWGRP) != 0 && !sticky_helps && dir.st_gid != 0 &&
      dir.st_gid != egid) {
    return DirectoryRisk::kWritableByGroup;
  }
  if (dir.st_uid != 0 && dir.st_uid != euid)
    return DirectoryRisk::kForeignOwner;
  return DirectoryRisk::kNone;
}

std::string RiskText(DirectoryRisk risk, const std::string& dir,
                     const struct stat& info, uid_t euid) {
  std::string mode = ModeText(info.st_mode);
  switch (risk) {
    case DirectoryRisk::kWritableByOthers:
      return "has mode " + mode +
             ((info.st_mode & S_ISVTX) != 0
                  ? " (writable by others; the sticky bit keeps no one from "
                    "taking a new name)"
                  : " (writable by others, no sticky bit)") +
             ", so any local user could replace it; fix: chmod o-w " + dir;
    case DirectoryRisk::kWritableByGroup:
      return "has mode " + mode + " and group " + GroupText(info.st_gid) +
             ", whose members could replace it; fix: chmod g-w " + dir;
    case DirectoryRisk::kForeignOwner:
      return "is owned by " + UserText(info.st_uid) +
             ", who could replace it; fix: chown " + ChownName(euid) + " " +
             dir + CheckAsOwnerHint(info.st_uid, euid);
    case DirectoryRisk::kNone:
      break;
  }
  return "is safe";
}

std::string CheckAsOwnerHint(uid_t owner, uid_t euid) {
  if (euid != 0 || owner == 0)
    return {};
  std::string name = ChownName(owner);
  return "; if token-helper runs as " + name +
         " (token-helper.service runs it as xoauth2-relay), run the same "
         "command as that user instead: runuser -u " +
         name + " -- token-helper ...";
}

std::expected<std::optional<UnsafeDirectory>, std::string> FindUnsafeDirectory(
    const std::string& path, uid_t euid, Sticky last_sticky) {
  namespace fs = std::filesystem;
  std::vector<std::string> names;  // still to walk, the next one last
  auto push_front = [&names](const fs::path& more) {
    std::vector<std::string> parts;
    for (const fs::path& part : more.relative_path())
      parts.push_back(part.string());
    names.insert(names.end(), parts.rbegin(), parts.rend());
  };
  push_front(fs::absolute(path));

  fs::path here = "/";  // a real directory: no link in it
  int links = 0;
  while (!names.empty()) {
    std::string name = std::move(names.back());
    names.pop_back();
    if (name.empty() || name == ".")
      continue;
    if (name == "..") {
      here = here.parent_path();
      continue;
    }

    // `here` decides what `name` is: judge it before going in.
    struct stat info {};
    if (stat(here.c_str(), &info) != 0)
      return std::unexpected("cannot stat " + here.string() + ": " +
                             ErrnoText(errno));
    bool last = names.empty();
    fs::path next = here / name;
    struct stat entry {};
    bool found = lstat(next.c_str(), &entry) == 0;
    int lstat_error = found ? 0 : errno;
    DirectoryRisk risk =
        RiskOf(info, euid, getegid(), last ? last_sticky : Sticky::kProtects);
    if (risk != DirectoryRisk::kNone) {
      bool holds_file = last && !(found && S_ISLNK(entry.st_mode));
      return UnsafeDirectory{here.string(), info, risk, holds_file};
    }
    if (!found) {
      if (last && lstat_error == ENOENT)
        return std::nullopt;
      return std::unexpected("cannot stat " + next.string() + ": " +
                             ErrnoText(lstat_error));
    }
    if (!S_ISLNK(entry.st_mode)) {
      here = next;
      continue;
    }
    if (++links > 40)
      return std::unexpected(path + ": too many levels of symbolic links");
    std::error_code error;
    fs::path target = fs::read_symlink(next, error);
    if (error)
      return std::unexpected("cannot read the link " + next.string() + ": " +
                             error.message());
    if (target.is_absolute())
      here = "/";
    push_front(target);
  }
  return std::nullopt;
}

std::expected<void, std::string> CheckDirectoryChain(const std::string& path,
                                                     uid_t euid) {
  auto unsafe = FindUnsafeDirectory(path, euid, Sticky::kProtects);
  if (!unsafe)
    return std::unexpected(unsafe.error());
  if (!*unsafe)
    return {};
  const UnsafeDirectory& found = **unsafe;
  std::string shown = path;
  std::error_code error;
  std::filesystem::path real = std::filesystem::canonical(path, error);
  if (!error && real != std::filesystem::absolute(path).lexically_normal())
    shown += " (a link to " + real.string() + ")";
  std::string where = found.holds_last
                          ? "its directory " + found.dir
                          : "the directory " + found.dir + " on its way";
  return std::unexpected(shown + " holds a secret but " + where + " " +
                         RiskText(found.risk, found.dir, found.info, euid));
}

std::string ModeText(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

std::expected<void, std::string> CheckPrivateFile(const std::string& path,
                                                  const struct stat& file,
                                                  const struct stat& dir,
                                                  uid_t euid) {
  // Others who may write the directory can swap the file for their own.
  if (RiskOf(dir, euid, getegid()) == DirectoryRisk::kWritableByOthers) {
    std::string dir_path = DirectoryOf(path);
    return std::unexpected(
        path + " holds a secret but its directory " + dir_path + " " +
        RiskText(DirectoryRisk::kWritableByOthers, dir_path, dir, euid));
  }

  // Group and other bits, and the owner: one message naming every fix.
  bool open_mode = (file.st_mode & 077) != 0;
  bool foreign = file.st_uid != euid && file.st_uid != 0;
  if (!open_mode && !foreign)
    return {};
  std::string fix;
  if (open_mode)
    fix = "chmod 0600 " + path;
  if (foreign)
    fix +=
        (fix.empty() ? "" : "; ") + ("chown " + ChownName(euid) + " " + path);
  return std::unexpected(
      path + " holds a secret but has mode " + ModeText(file.st_mode) +
      " and owner " + UserText(file.st_uid) +
      "; it must be readable and writable by its owner only and owned by " +
      UserText(euid) + ", the user token-helper runs as; fix: " + fix +
      (foreign ? CheckAsOwnerHint(file.st_uid, euid) : ""));
}

std::string OpenFailureText(const std::string& path, int error,
                            std::string_view missing_fix) {
  std::string text = "cannot open " + path + ": " + ErrnoText(error);
  if (error == ENOENT || error == ENOTDIR)
    return text + "; " + std::string(missing_fix);
  if (error == EACCES) {
    return text + "; token-helper runs as " + UserText(geteuid()) +
           ", who may not read it: give that user read access to it (for a "
           "secret file: chown " +
           ChownName(geteuid()) + " " + path +
           ") and to the folders on its way";
  }
  return text;
}

std::expected<OpenedFile, std::string> OpenFileAndDirectory(
    const std::string& path, std::string_view missing_fix) {
  std::string dir_path = DirectoryOf(path);
  FdGuard dir(open(dir_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0)
    return std::unexpected(OpenFailureText(path, errno, missing_fix));
  OpenedFile opened;
  if (fstat(dir.get(), &opened.dir) != 0) {
    return std::unexpected("cannot stat " + dir_path + ": " + ErrnoText(errno));
  }

  // Relative to the directory just checked, so both stats fit together.
  std::string name = std::filesystem::path(path).filename().string();
  opened.fd =
      openat(dir.get(), name.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (opened.fd < 0)
    return std::unexpected(OpenFailureText(path, errno, missing_fix));
  if (fstat(opened.fd, &opened.file) != 0) {
    int error = errno;
    close(opened.fd);
    return std::unexpected("cannot stat " + path + ": " + ErrnoText(error));
  }
  return opened;
}

std::expected<Secret, std::string> ReadSecretFile(const std::string& path,
                                                  std::size_t limit,
                                                  FileAccess access) {
  std::string missing_fix = access == FileAccess::kPrivate
                                ? "create it (mode 0600, owned by " +
                                      ChownName(geteuid()) +
                                      ") or correct the path"
                                : "create it or correct the path";
  auto opened = OpenFileAndDirectory(path, missing_fix);
  if (!opened)
    return std::unexpected(opened.error());
  FdGuard fd(opened->fd);
  if (!S_ISREG(opened->file.st_mode)) {
    return std::unexpected(path + " is not a regular file");
  }
  if (access == FileAccess::kPrivate) {
    auto checked = CheckPrivateFile(path, opened->file, opened->dir, geteuid());
    if (checked)
      checked = CheckDirectoryChain(path, geteuid());
    if (!checked)
      return std::unexpected(checked.error());
  }

  // Read at most limit + 1 bytes so that an oversized file is detected even
  // if it grows while we read.
  std::string content;
  char buffer[4096];
  while (content.size() <= limit) {
    ssize_t n = read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      return std::unexpected("cannot read " + path + ": " + ErrnoText(errno));
    }
    if (n == 0)
      break;
    content.append(buffer, static_cast<std::size_t>(n));
  }
  if (content.size() > limit) {
    return std::unexpected(path + " is larger than " + std::to_string(limit) +
                           " bytes, the limit for a secret file; it should "
                           "hold one secret only");
  }

  Secret secret(Trim(content));
  OPENSSL_cleanse(content.data(), content.size());
  OPENSSL_cleanse(buffer, sizeof buffer);
  if (secret.empty())
    return std::unexpected(path + " is empty");
  return secret;
}

std::expected<Secret, std::string> ReadSecretValue(const std::string& path) {
  auto secret = ReadSecretFile(path);
  if (!secret)
    return secret;
  const std::string& value = secret->Reveal();
  bool one_value = std::none_of(value.begin(), value.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte <= ' ' || byte == 0x7f;
  });
  if (!one_value) {
    return std::unexpected(path +
                           " holds more than one line or word; it must hold "
                           "the value alone, on one line");
  }
  return secret;
}

std::expected<void, std::string> WriteSecretFileAtomically(
    const std::string& path, const Secret& value) {
  // ReadSecretFile() would refuse a larger file: never write one.
  if (value.Reveal().size() + 1 > kMaxSecretFileBytes) {
    return std::unexpected(
        "cannot replace " + path + ": the new value with its newline is " +
        std::to_string(value.Reveal().size() + 1) + " bytes, over the " +
        std::to_string(kMaxSecretFileBytes) +
        "-byte limit for a secret file; the old file is kept");
  }
  // Where another user could swap the file, it would also be given to
  // them: the new file keeps the old one's owner.
  if (auto safe = CheckDirectoryChain(path, geteuid()); !safe)
    return std::unexpected("cannot replace " + path + ": " + safe.error());

  std::string temp_path;
  int raw_fd = CreateTemp(path, temp_path);
  if (raw_fd < 0) {
    return std::unexpected("cannot create a temporary file next to " + path +
                           ": " + ErrnoText(errno));
  }
  FdGuard fd(raw_fd);

  // Fill the temporary file; on any failure remove it and keep the old file.
  auto filled = FillTemp(fd.get(), path, value);
  if (filled && fd.Release() != 0) {
    filled = std::unexpected("cannot close: " + ErrnoText(errno));
  }
  if (filled && rename(temp_path.c_str(), path.c_str()) != 0) {
    filled = std::unexpected("cannot rename into place: " + ErrnoText(errno));
  }
  if (!filled) {
    unlink(temp_path.c_str());
    return std::unexpected("cannot replace " + path + ": " + filled.error());
  }

  if (!SyncParentDirectory(path)) {
    return std::unexpected(
        "replaced " + path +
        " but cannot fsync its directory: " + ErrnoText(errno));
  }
  return {};
}

}  // namespace xoauth2::helper
