// SPDX-License-Identifier: MIT
//
// SocketServer: listening socket set-up, the accept loop (poll on the
// socket and a wake-up pipe), and per-connection handling with peer
// checks, a bounded line read and a one-line answer.

#include "socket_server.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "ascii.h"
#include "log.h"
#include "secret_file.h"
#include "socket_client.h"

namespace xoauth2::helper {
namespace {

// The wire name of a request verb, for the debug log.
std::string_view VerbName(protocol::Verb verb) {
  switch (verb) {
    case protocol::Verb::kReject:
      return "reject";
    case protocol::Verb::kStatus:
      return "status";
    case protocol::Verb::kToken:
      break;
  }
  return "token";
}

using Clock = std::chrono::steady_clock;

std::string ErrnoText() {
  return std::strerror(errno);
}

protocol::Response Error(protocol::ErrorCode code, std::string text) {
  protocol::Response response;
  response.code = code;
  response.text = std::move(text);
  return response;
}

bool Contains(std::span<const unsigned> ids, unsigned id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// The policy of the account for `mailbox` (case-insensitive) or nullptr.
const AccountPolicy* FindAccountPolicy(std::span<const AccountPolicy> accounts,
                                       std::string_view mailbox) {
  for (const AccountPolicy& account : accounts) {
    if (SameMailbox(account.mailbox, mailbox))
      return &account;
  }
  return nullptr;
}

// Sends `bytes` once, without blocking and without SIGPIPE.
void SendQuietly(int fd, const std::string& bytes) {
  std::size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n =
        send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return;
    done += static_cast<std::size_t>(n);
  }
}

// "2 s" or "250 ms".
std::string DurationText(std::chrono::milliseconds duration) {
  if (duration.count() % 1000 == 0) {
    return std::to_string(duration.count() / 1000) + " s";
  }
  return std::to_string(duration.count()) + " ms";
}

// Reads one request line within `timeout`. Error values are the answers
// to give: too long, or no complete line in time.
std::expected<std::string, protocol::Response> ReadRequest(
    int fd, std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  std::string line;
  char buffer[512];
  while (line.find('\n') == std::string::npos) {
    if (line.size() >= protocol::kMaxRequestBytes) {
      return std::unexpected(Error(protocol::ErrorCode::kBadRequest,
                                   "request longer than 1024 bytes"));
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    pollfd entry{fd, POLLIN, 0};
    int rc =
        left.count() > 0 ? poll(&entry, 1, static_cast<int>(left.count())) : 0;
    if (rc < 0 && errno == EINTR)
      continue;
    if (rc <= 0) {
      return std::unexpected(
          Error(protocol::ErrorCode::kBadRequest,
                "no complete request line within " + DurationText(timeout)));
    }
    std::size_t room = protocol::kMaxRequestBytes + 1 - line.size();
    ssize_t n = recv(fd, buffer, std::min(room, sizeof buffer), 0);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;  // the client closed its side: take what we have
    line.append(buffer, static_cast<std::size_t>(n));
  }
  // Only the first line counts; anything a client sent after it is ignored.
  std::size_t newline = line.find('\n');
  if (newline != std::string::npos)
    line.resize(newline + 1);
  if (line.size() > protocol::kMaxRequestBytes) {
    return std::unexpected(Error(protocol::ErrorCode::kBadRequest,
                                 "request longer than 1024 bytes"));
  }
  return line;
}

// The peer's credentials from the kernel.
std::optional<PeerCredentials> PeerOf(int fd) {
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    return std::nullopt;
  }
  return PeerCredentials{cred.pid, cred.uid, cred.gid};
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

// Refuses a socket directory others may write to without the sticky bit:
// any local user could put a socket of their own in place of ours.
std::expected<mode_t, std::string> CheckSocketDirectory(
    const std::string& dir) {
  struct stat info {};
  if (stat(dir.c_str(), &info) != 0) {
    return std::unexpected("cannot stat " + dir + ": " + ErrnoText());
  }
  if ((info.st_mode & S_IWOTH) != 0 && (info.st_mode & S_ISVTX) == 0) {
    return std::unexpected(
        "the socket directory " + dir + " has mode " + ModeText(info.st_mode) +
        " (writable by others, no sticky bit), so any local user could "
        "replace the socket; fix: chmod 0750 " +
        dir + " (group postfix) or 0755, or set another socket path");
  }
  return info.st_mode & 07777;
}

// Reads and drops what a refused client sends until its request line is
// in, it closes, or `wait` passes, so that closing does not reset it.
void DrainRequest(int fd, std::chrono::milliseconds wait) {
  Clock::time_point deadline = Clock::now() + wait;
  std::size_t total = 0;
  char buffer[512];
  while (total < protocol::kMaxRequestBytes) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - Clock::now());
    pollfd entry{fd, POLLIN, 0};
    if (left.count() <= 0 ||
        poll(&entry, 1, static_cast<int>(left.count())) <= 0) {
      return;
    }
    ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n <= 0 || std::memchr(buffer, '\n', static_cast<std::size_t>(n)))
      return;
    total += static_cast<std::size_t>(n);
  }
}

// Answers a connection over the cap and closes it: the answer first, then
// the request is read for a moment (see DrainRequest).
void RefuseOverCap(int fd, std::chrono::milliseconds wait) {
  SendQuietly(
      fd, protocol::FormatResponse(Error(protocol::ErrorCode::kUnavailable,
                                         "too many connections; try again")));
  shutdown(fd, SHUT_WR);
  DrainRequest(fd, wait);
  close(fd);
}

}  // namespace

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
  std::lock_guard lock(mutex_);
  if (!OpenWindow(peer.uid, now))
    return;
  Log(LogLevel::kWarn, "peer_denied",
      {{"socket", socket_name_},
       {"uid", peer.uid},
       {"gid", peer.gid},
       {"pid", peer.pid},
       {"fix", "add the user to allowed_users or a group to allowed_groups"}});
}

void DenialLog::DeniedAccount(const PeerCredentials& peer,
                              Clock::time_point now, std::string_view account,
                              std::string_view fix) {
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

SocketServer::SocketServer(ServerOptions options, RequestHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

SocketServer::~SocketServer() {
  Stop();
}

// Creates the socket's directory if needed and checks who may write it.
std::expected<void, std::string> SocketServer::PrepareDirectory() {
  std::filesystem::path dir =
      std::filesystem::path(options_.path).parent_path();
  if (dir.empty())
    dir = ".";
  if (auto made = MakeDirectories(dir); !made)
    return made;
  auto mode = CheckSocketDirectory(dir.string());
  if (!mode)
    return std::unexpected(mode.error());
  dir_mode_ = *mode;
  return {};
}

// Removes a socket left by a helper that died; refuses to touch anything
// else, or a socket a live helper still answers on.
std::expected<void, std::string> SocketServer::RemoveStaleSocket() {
  struct stat info {};
  if (lstat(options_.path.c_str(), &info) != 0)
    return {};
  if (!S_ISSOCK(info.st_mode)) {
    return std::unexpected(options_.path +
                           " exists and is not a socket; remove it or set "
                           "another socket path");
  }
  if (auto fd = ConnectUnix(options_.path)) {
    close(*fd);
    return std::unexpected("another token-helper is already listening on " +
                           options_.path + "; stop it first");
  }
  if (unlink(options_.path.c_str()) != 0 && errno != ENOENT) {
    return std::unexpected("cannot remove the stale socket " + options_.path +
                           ": " + ErrnoText());
  }
  return {};
}

// socket, bind, chmod 0666, listen; the listening descriptor.
std::expected<int, std::string> SocketServer::Bind() {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options_.path.size() >= sizeof address.sun_path) {
    return std::unexpected(options_.path + ": socket path too long");
  }
  std::memcpy(address.sun_path, options_.path.c_str(),
              options_.path.size() + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

std::expected<void, std::string> SocketServer::Start() {
  auto ready = PrepareDirectory();
  if (ready)
    ready = RemoveStaleSocket();
  if (ready) {
    auto bound = Bind();
    if (bound)
      listen_fd_ = *bound;
    else
      ready = std::unexpected(bound.error());
  }
  int pipe_fds[2];
  if (ready && pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    ready = std::unexpected("pipe: " + ErrnoText());
  }
  if (!ready) {
    if (listen_fd_ >= 0)
      close(listen_fd_);
    listen_fd_ = -1;
    return ready;
  }
  wake_read_ = pipe_fds[0];
  wake_write_ = pipe_fds[1];
  next_check_ = Clock::now() + options_.check_interval;
  acceptor_ = std::thread(&SocketServer::AcceptLoop, this);
  return {};
}

void SocketServer::Stop() {
  if (!acceptor_.joinable())
    return;

  // Wake the acceptor, then wait until every connection thread is done.
  char byte = 1;
  ssize_t ignored = write(wake_write_, &byte, 1);
  (void)ignored;
  acceptor_.join();
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return active_ == 0; });
  }

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

void SocketServer::AcceptLoop() {
  while (true) {
    // Wake up at least every check_interval for Housekeeping().
    auto left = std::chrono::ceil<std::chrono::milliseconds>(next_check_ -
                                                             Clock::now());
    int timeout = static_cast<int>(std::max<long long>(left.count(), 0));
    pollfd entries[2] = {{listen_fd_, POLLIN, 0}, {wake_read_, POLLIN, 0}};
    int ready = poll(entries, 2, timeout);
    if (ready < 0 && errno != EINTR) {
      Log(LogLevel::kError, "accept_failed", {{"error", ErrnoText()}});
      return;
    }
    if (ready > 0 && entries[1].revents != 0)
      return;
    if (Clock::now() >= next_check_)
      Housekeeping();
    if (ready <= 0 || entries[0].revents == 0)
      continue;

    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;

    // Over the cap: answer from this thread and close.
    std::unique_lock lock(mutex_);
    if (active_ >= options_.max_connections) {
      lock.unlock();
      RefuseOverCap(fd, options_.overflow_read_timeout);
      continue;
    }
    ++active_;
    lock.unlock();
    std::thread(&SocketServer::Serve, this, fd).detach();
  }
}

// The periodic work of the accept thread.
void SocketServer::Housekeeping() {
  Clock::time_point now = Clock::now();
  next_check_ = now + options_.check_interval;
  denials_.Flush(now);
  KeepSocketFile();
}

// Binds the socket again when its file is gone or is not ours any more.
void SocketServer::KeepSocketFile() {
  struct stat info {};
  bool present = stat(options_.path.c_str(), &info) == 0;
  if (present && info.st_ino == socket_inode_ && info.st_dev == socket_dev_)
    return;

  // Directory, stale file, bind: as at start, keeping the old socket open
  // until the new one listens.
  auto ready = PrepareDirectory();
  if (ready)
    ready = RemoveStaleSocket();
  auto bound = ready ? Bind() : std::unexpected(ready.error());
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

// Serves one connection on its own thread, then closes it.
void SocketServer::Serve(int fd) {
  std::string answer;
  std::optional<PeerCredentials> peer = PeerOf(fd);
  try {
    answer = peer ? Respond(fd, *peer)
                  : protocol::FormatResponse(Error(
                        protocol::ErrorCode::kInternal, "no peer credentials"));
  } catch (const std::exception& error) {
    Log(LogLevel::kError, "request_failed", {{"error", error.what()}});
    answer = protocol::FormatResponse(
        Error(protocol::ErrorCode::kInternal, "internal error; see the log"));
  }
  SendQuietly(fd, answer);
  close(fd);

  std::lock_guard lock(mutex_);
  --active_;
  idle_.notify_all();
}

// The answer refusing `peer` a token or reject request for an account
// whose own allowlist does not hold it; nullopt when it may go on.
std::optional<protocol::Response> SocketServer::CheckAccount(
    const PeerCredentials& peer, const protocol::Request& request) {
  if (request.verb == protocol::Verb::kStatus)
    return std::nullopt;
  const AccountPolicy* account =
      FindAccountPolicy(options_.accounts, request.mailbox);
  if (account == nullptr)
    return std::nullopt;

  // The global policy's rule for root applies here too.
  AccessPolicy policy{account->uids, account->gids,
                      options_.policy.always_allow_root};
  if (IsPeerAllowed(policy, peer, {}) ||
      IsPeerAllowed(policy, peer, GroupsOfUser(peer.uid))) {
    return std::nullopt;
  }
  std::string fix = "add the user to accounts[" +
                    std::to_string(account->index) + "].allowed_users";
  account_denials_.DeniedAccount(peer, Clock::now(), account->name, fix);
  return Error(protocol::ErrorCode::kDenied,
               "uid " + std::to_string(peer.uid) +
                   " may not ask for tokens of account " + account->name +
                   "; " + fix);
}

// Checks the peer, reads the request and produces the answer line.
std::string SocketServer::Respond(int fd, const PeerCredentials& peer) {
  std::vector<gid_t> groups;
  if (!IsPeerAllowed(options_.policy, peer, {}))
    groups = GroupsOfUser(peer.uid);
  if (!IsPeerAllowed(options_.policy, peer, groups)) {
    denials_.Denied(peer, Clock::now());
    return protocol::FormatResponse(
        Error(protocol::ErrorCode::kDenied,
              "uid " + std::to_string(peer.uid) +
                  " may not ask for tokens; see allowed_users"));
  }

  auto line = ReadRequest(fd, options_.read_timeout);
  if (!line)
    return protocol::FormatResponse(line.error());
  if (line->empty()) {
    return protocol::FormatResponse(
        Error(protocol::ErrorCode::kBadRequest, "empty request"));
  }
  auto request = protocol::ParseRequest(*line);
  if (!request) {
    return protocol::FormatResponse(
        Error(request.error().code, request.error().text));
  }

  if (auto denied = CheckAccount(peer, *request))
    return protocol::FormatResponse(*denied);

  protocol::Response response = handler_(*request);
  if (options_.on_served && response.ok && !response.token.empty())
    options_.on_served(peer, *request, response);
  Log(LogLevel::kDebug, "request_served",
      {{"verb", VerbName(request->verb)},
       {"mailbox", request->mailbox},
       {"uid", peer.uid},
       {"pid", peer.pid},
       {"result", response.ok
                      ? std::string("ok")
                      : std::string(protocol::ErrorCodeName(response.code))}});
  return protocol::FormatResponse(response);
}

}  // namespace xoauth2::helper
