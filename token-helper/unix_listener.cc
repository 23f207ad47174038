// SPDX-License-Identifier: MIT
//
// UnixListener: socket directory checks, stale socket replacement, bind
// with mode 0666, the wake-up pipe, the poll wait with its periodic check
// of the socket file, peer checks and the rate-limited peer_denied log.
// See unix_listener.h.

#include "unix_listener.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "log.h"
#include "secret_file.h"
#include "socket_client.h"

namespace xoauth2::helper {
namespace {

using Clock = std::chrono::steady_clock;

std::string ErrnoText() {
  return std::strerror(errno);
}

bool Contains(std::span<const unsigned> ids, unsigned id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// IsPeerAllowed, looking up the peer user's groups only when its uid and
// gid alone are not enough.
bool Allowed(const AccessPolicy& policy, const PeerCredentials& peer) {
  return IsPeerAllowed(policy, peer, {}) ||
         IsPeerAllowed(policy, peer, GroupsOfUser(peer.uid));
}

// mkdir -p with mode 0755 for each directory it creates.
std::expected<void, std::string> MakeDirectories(
    const std::filesystem::path& dir) {
  std::filesystem::path partial;
  for (const auto& part : dir) {
    partial /= part;
    if (mkdir(partial.c_str(), 0755) == 0) {
      chmod(partial.c_str(), 0755);  // the umask may have removed bits
    } else if (errno != EEXIST) {
      return std::unexpected("cannot create directory " + partial.string() +
                             ": " + ErrnoText());
    }
  }
  return {};
}

// The error for a path that exists and is not a socket, if it is so.
std::expected<void, std::string> NothingButASocket(const std::string& path) {
  struct stat info {};
  if (lstat(path.c_str(), &info) != 0 || S_ISSOCK(info.st_mode))
    return {};
  return std::unexpected(path +
                         " exists and is not a socket; remove it or set "
                         "another socket path");
}

}  // namespace

std::expected<mode_t, std::string> CheckSocketFolder(const std::string& path,
                                                     uid_t euid) {
  auto unsafe = FindUnsafeDirectory(path, euid, Sticky::kDoesNotProtect);
  if (!unsafe)
    return std::unexpected(unsafe.error());
  if (*unsafe) {
    const UnsafeDirectory& found = **unsafe;
    std::string where = found.holds_last ? "the socket directory " + found.dir
                                         : "the directory " + found.dir +
                                               " above the socket " + path;
    return std::unexpected(
        where + " " + RiskText(found.risk, found.dir, found.info, euid) +
        " (token-helper.service makes the socket directory owned by "
        "xoauth2-relay, group postfix, mode 0750), or set another socket "
        "path");
  }
  std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat info {};
  if (stat(dir.empty() ? "." : dir.c_str(), &info) != 0)
    return std::unexpected("cannot stat " + dir + ": " + ErrnoText());
  return info.st_mode & 07777;
}

std::expected<void, std::string> CheckSocketPlace(const std::string& path,
                                                  uid_t euid) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  struct stat info {};
  if (stat(dir.c_str(), &info) == 0) {
    if (!S_ISDIR(info.st_mode)) {
      return std::unexpected(dir + ", the folder of the socket " + path +
                             ", is not a directory; set another socket path");
    }
    if (auto checked = CheckSocketFolder(path, euid); !checked)
      return std::unexpected(checked.error());
  }
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return std::unexpected(path + ": socket path too long (at most " +
                           std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                           " bytes); set a shorter socket path");
  }
  return NothingButASocket(path);
}

DenialLog::DenialLog(std::string socket_name, std::chrono::seconds window)
    : socket_name_(std::move(socket_name)), window_(window) {}

// Counts a refusal of `uid` inside its open window and returns false, or
// closes the old window (logging its summary), opens a new one and
// returns true: the refusal is then to be logged in full. Needs mutex_.
bool DenialLog::OpenWindow(uid_t uid, Clock::time_point now) {
  auto found = windows_.find(uid);
  if (found != windows_.end() && now - found->second.start < window_) {
    ++found->second.suppressed;
    return false;
  }
  if (found != windows_.end())
    Summarise(uid, found->second);
  windows_[uid] = Window{now, 0};
  return true;
}

void DenialLog::Denied(const PeerCredentials& peer, Clock::time_point now) {
  Record(peer, now, "",
         "add the user to allowed_users or a group to allowed_groups");
}

void DenialLog::DeniedAccount(const PeerCredentials& peer,
                              Clock::time_point now, std::string_view account,
                              std::string_view fix) {
  Record(peer, now, account, fix);
}

// Logs the refusal in full (an empty account is left out of the line) or
// counts it in the uid's open window.
void DenialLog::Record(const PeerCredentials& peer, Clock::time_point now,
                       std::string_view account, std::string_view fix) {
  std::lock_guard lock(mutex_);
  if (!OpenWindow(peer.uid, now))
    return;
  Log(LogLevel::kWarn, "peer_denied",
      {{"socket", socket_name_},
       {"uid", peer.uid},
       {"gid", peer.gid},
       {"pid", peer.pid},
       {"account", account},
       {"fix", fix}});
}

void DenialLog::Flush(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  for (auto it = windows_.begin(); it != windows_.end();) {
    if (now - it->second.start < window_) {
      ++it;
      continue;
    }
    Summarise(it->first, it->second);
    it = windows_.erase(it);
  }
}

// Logs how many refusals of `uid` the closed `window` held back, if any.
void DenialLog::Summarise(uid_t uid, const Window& window) {
  if (window.suppressed == 0)
    return;
  Log(LogLevel::kWarn, "peer_denied",
      {{"socket", socket_name_},
       {"uid", uid},
       {"suppressed", window.suppressed},
       {"window_seconds", window_.count()}});
}

bool IsPeerAllowed(const AccessPolicy& policy, const PeerCredentials& peer,
                   std::span<const gid_t> user_groups) {
  if (policy.always_allow_root && peer.uid == 0)
    return true;
  if (Contains(policy.uids, peer.uid))
    return true;
  if (Contains(policy.gids, peer.gid))
    return true;
  return std::any_of(user_groups.begin(), user_groups.end(),
                     [&](gid_t gid) { return Contains(policy.gids, gid); });
}

std::vector<gid_t> GroupsOfUser(uid_t uid) {
  std::vector<char> buffer(16384);
  passwd entry{};
  passwd* found = nullptr;
  if (getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) != 0 ||
      found == nullptr) {
    return {};
  }
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    getgrouplist(found->pw_name, found->pw_gid, groups.data(), &count);
  }
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  return groups;
}

std::optional<PeerCredentials> PeerOf(int fd) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    return std::nullopt;
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
}

std::string AccountFix(const AccountPolicy& account) {
  return "add the user to accounts[" + std::to_string(account.index) +
         "].allowed_users";
}

UnixListener::UnixListener(ListenerOptions options)
    : options_(std::move(options)),
      denials_(options_.name),
      account_denials_(options_.name) {}

UnixListener::~UnixListener() {
  Close();
}

// Creates the socket's directory if needed and checks who may write it.
std::expected<void, std::string> UnixListener::PrepareDirectory() {
  std::filesystem::path dir =
      std::filesystem::path(options_.path).parent_path();
  if (dir.empty())
    dir = ".";
  if (auto made = MakeDirectories(dir); !made)
    return made;
  auto mode = CheckSocketFolder(options_.path, geteuid());
  if (!mode)
    return std::unexpected(mode.error());
  dir_mode_ = *mode;
  return {};
}

// Removes a socket left by a server that died; refuses to touch anything
// else, or a socket a live server still answers on.
std::expected<void, std::string> UnixListener::RemoveStaleSocket() {
  struct stat info {};
  if (lstat(options_.path.c_str(), &info) != 0)
    return {};
  if (auto other = NothingButASocket(options_.path); !other)
    return other;
  if (auto fd = ConnectUnix(options_.path)) {
    close(*fd);
    return std::unexpected(
        "a process of " + UserText(info.st_uid) + ", the socket's owner, " +
        "is already listening on " + options_.path +
        "; stop that token-helper first, or, if it is none of yours, keep "
        "other users out of the socket directory (mode 0750, owned by the "
        "helper's user, group postfix)");
  }
  if (unlink(options_.path.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected("cannot remove the stale socket " + options_.path +
                           ": " + ErrnoText());
  }
  return {};
}

// socket, bind, chmod 0666, listen; the listening descriptor, which does
// not block (a connection that Wait() saw may be gone before Accept()).
std::expected<int, std::string> UnixListener::Bind() {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options_.path.size() >= sizeof address.sun_path) {
    return std::unexpected(options_.path + ": socket path too long");
  }
  std::memcpy(address.sun_path, options_.path.c_str(),
              options_.path.size() + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return std::unexpected("socket: " + ErrnoText());
  std::string failed;
  struct stat info {};
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    failed = "cannot bind " + options_.path + ": " + ErrnoText();
  } else if (chmod(options_.path.c_str(), 0666) != 0 ||
             stat(options_.path.c_str(), &info) != 0) {
    // Everyone may connect; SO_PEERCRED decides who gets an answer.
    failed = "cannot set mode 0666 on " + options_.path + ": " + ErrnoText();
  } else if (listen(fd, 128) != 0) {
    failed = "cannot listen on " + options_.path + ": " + ErrnoText();
  }
  if (!failed.empty()) {
    close(fd);
    return std::unexpected(failed);
  }
  socket_inode_ = info.st_ino;
  socket_dev_ = info.st_dev;
  socket_mode_ = info.st_mode & 07777;
  return fd;
}

// Directory, stale socket, bind: the listening descriptor.
std::expected<int, std::string> UnixListener::Establish() {
  auto ready = PrepareDirectory();
  if (ready)
    ready = RemoveStaleSocket();
  if (!ready)
    return std::unexpected(ready.error());
  return Bind();
}

std::expected<void, std::string> UnixListener::Open() {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return std::unexpected("pipe: " + ErrnoText());
  auto bound = Establish();
  if (!bound) {
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return std::unexpected(bound.error());
  }
  listen_fd_ = *bound;
  wake_read_ = pipe_fds[0];
  wake_write_ = pipe_fds[1];
  recreate_failed_ = false;
  next_check_ = Clock::now() + options_.check_interval;
  return {};
}

// The poll timeout: the caller's, but no later than the next check.
int UnixListener::Timeout(int timeout_ms) const {
  auto left =
      std::chrono::ceil<std::chrono::milliseconds>(next_check_ - Clock::now());
  long long timeout = std::max<long long>(left.count(), 0);
  if (timeout_ms >= 0)
    timeout = std::min<long long>(timeout, timeout_ms);
  return static_cast<int>(timeout);
}

std::expected<Wakeup, std::string> UnixListener::Wait(std::span<pollfd> extra,
                                                      int timeout_ms) {
  std::vector<pollfd> entries = {{wake_read_, POLLIN, 0},
                                 {listen_fd_, POLLIN, 0}};
  for (const pollfd& entry : extra)
    entries.push_back({entry.fd, entry.events, 0});
  int ready = poll(entries.data(), entries.size(), Timeout(timeout_ms));
  if (ready < 0 && errno != EINTR)
    return std::unexpected(ErrnoText());
  if (ready > 0 && entries[0].revents != 0)
    return Wakeup::kStop;
  for (std::size_t i = 0; i < extra.size(); ++i)
    extra[i].revents = ready > 0 ? entries[i + 2].revents : 0;

  // The periodic work: denial summaries, and the socket file when due.
  Clock::time_point now = Clock::now();
  denials_.Flush(now);
  account_denials_.Flush(now);
  if (now >= next_check_) {
    next_check_ = now + options_.check_interval;
    KeepSocketFile();
  }
  bool incoming = ready > 0 && entries[1].revents != 0;
  return incoming ? Wakeup::kIncoming : Wakeup::kOther;
}

int UnixListener::Accept(int flags) {
  return accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | flags);
}

// A copy of the global policy, as SetPolicy() last left it.
AccessPolicy UnixListener::Policy() const {
  std::lock_guard lock(policy_mutex_);
  return options_.policy;
}

void UnixListener::SetPolicy(AccessPolicy policy) {
  std::lock_guard lock(policy_mutex_);
  options_.policy = std::move(policy);
}

bool UnixListener::Admit(const PeerCredentials& peer) {
  if (Allowed(Policy(), peer))
    return true;
  denials_.Denied(peer, Clock::now());
  return false;
}

bool UnixListener::AdmitAccount(const PeerCredentials& peer,
                                const AccountPolicy& account) {
  // The global policy's rule for root applies here too.
  AccessPolicy policy{account.uids, account.gids, Policy().always_allow_root};
  if (Allowed(policy, peer))
    return true;
  account_denials_.DeniedAccount(peer, Clock::now(), account.name,
                                 AccountFix(account));
  return false;
}

void UnixListener::Wake() {
  if (wake_write_ < 0)
    return;
  char byte = 1;
  ssize_t ignored = write(wake_write_, &byte, 1);
  (void)ignored;
}

void UnixListener::Close() {
  if (listen_fd_ < 0)
    return;

  // Unlink only the socket we created, not one a successor bound since.
  struct stat info {};
  if (stat(options_.path.c_str(), &info) == 0 && info.st_ino == socket_inode_ &&
      info.st_dev == socket_dev_) {
    unlink(options_.path.c_str());
  }
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
  listen_fd_ = wake_read_ = wake_write_ = -1;
}

// Binds the socket again when its file is gone or is not ours any more.
void UnixListener::KeepSocketFile() {
  struct stat info {};
  bool present = stat(options_.path.c_str(), &info) == 0;
  if (present && info.st_ino == socket_inode_ && info.st_dev == socket_dev_)
    return;

  // Directory, stale file, bind: as at start, keeping the old socket open
  // until the new one listens.
  auto bound = Establish();
  if (!bound) {
    if (!recreate_failed_) {
      Log(LogLevel::kError, "socket_recreate_failed",
          {{"socket", options_.path}, {"reason", bound.error()}});
    }
    recreate_failed_ = true;
    return;
  }
  close(listen_fd_);
  listen_fd_ = *bound;
  recreate_failed_ = false;
  Log(LogLevel::kWarn, "socket_recreated",
      {{"socket", options_.path},
       {"reason", present ? "replaced" : "missing"},
       {"socket_mode", ModeText(socket_mode_)},
       {"dir_mode", ModeText(dir_mode_)}});
}

}  // namespace xoauth2::helper
