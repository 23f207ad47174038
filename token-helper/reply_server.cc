// SPDX-License-Identifier: MIT
//
// ReplyServer: socket set-up, the poll loop over the listening socket, a
// wake-up pipe and every connection, netstring framing and the constant
// `NOTFOUND ` answer. See reply_server.h.

#include "reply_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "log.h"
#include "netstring.h"

namespace xoauth2::helper {

using Clock = std::chrono::steady_clock;

struct ReplyServer::Connection {
  int fd = -1;
  PeerCredentials peer;
  std::string buffer;
  Clock::time_point last_active;
};

namespace {

// socketmap_table(5): "NOTFOUND " means no match, the reply stays as is.
const std::string kNotFound = FormatNetstring("NOTFOUND ");

std::string ErrnoText() {
  return std::strerror(errno);
}

// True when the peer may use the socket; `denials` logs refusals.
bool Admit(const AccessPolicy& policy, const PeerCredentials& peer,
           DenialLog& denials) {
  if (IsPeerAllowed(policy, peer, {}) ||
      IsPeerAllowed(policy, peer, GroupsOfUser(peer.uid))) {
    return true;
  }
  denials.Denied(peer, DenialLog::Clock::now());
  return false;
}

}  // namespace

std::string ReplySocketPath(const std::string& token_socket) {
  return (std::filesystem::path(token_socket).parent_path() / "reply.sock")
      .string();
}

ReplyServer::ReplyServer(ReplyServerOptions options, ReplyCallback callback)
    : options_(std::move(options)), callback_(std::move(callback)) {}

ReplyServer::~ReplyServer() {
  Stop();
}

// Replaces a stale socket, then socket, bind, chmod 0666, listen. The
// token socket was bound first, so no live helper owns this path.
std::expected<void, std::string> ReplyServer::Bind() {
  struct stat info {};
  if (lstat(options_.path.c_str(), &info) == 0) {
    if (!S_ISSOCK(info.st_mode)) {
      return std::unexpected(options_.path +
                             " exists and is not a socket; remove it");
    }
    unlink(options_.path.c_str());
  }
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (options_.path.size() >= sizeof address.sun_path)
    return std::unexpected(options_.path + ": socket path too long");
  std::memcpy(address.sun_path, options_.path.c_str(),
              options_.path.size() + 1);

  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0)
    return std::unexpected("socket: " + ErrnoText());
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) !=
          0 ||
      chmod(options_.path.c_str(), 0666) != 0 ||
      stat(options_.path.c_str(), &info) != 0 || listen(listen_fd_, 128) != 0) {
    return std::unexpected("cannot listen on " + options_.path + ": " +
                           ErrnoText());
  }
  socket_inode_ = info.st_ino;
  return {};
}

std::expected<void, std::string> ReplyServer::Start() {
  auto ready = Bind();
  int pipe_fds[2];
  if (ready && pipe2(pipe_fds, O_CLOEXEC | O_NONBLOCK) != 0)
    ready = std::unexpected("pipe: " + ErrnoText());
  if (!ready) {
    if (listen_fd_ >= 0)
      close(listen_fd_);
    listen_fd_ = -1;
    return ready;
  }
  wake_read_ = pipe_fds[0];
  wake_write_ = pipe_fds[1];
  thread_ = std::thread(&ReplyServer::Loop, this);
  return {};
}

void ReplyServer::Stop() {
  if (!thread_.joinable())
    return;
  char byte = 1;
  ssize_t ignored = write(wake_write_, &byte, 1);
  (void)ignored;
  thread_.join();

  for (Connection& connection : connections_)
    close(connection.fd);
  connections_.clear();
  struct stat info {};
  if (stat(options_.path.c_str(), &info) == 0 && info.st_ino == socket_inode_)
    unlink(options_.path.c_str());
  close(listen_fd_);
  close(wake_read_);
  close(wake_write_);
  listen_fd_ = wake_read_ = wake_write_ = -1;
}

// Waits for activity on all sockets and serves it, until woken to stop.
void ReplyServer::Loop() {
  std::vector<pollfd> entries;
  while (true) {
    entries.assign({{wake_read_, POLLIN, 0}, {listen_fd_, POLLIN, 0}});
    for (const Connection& connection : connections_)
      entries.push_back({connection.fd, POLLIN, 0});
    if (poll(entries.data(), entries.size(), PollTimeout()) < 0) {
      if (errno == EINTR)
        continue;
      Log(LogLevel::kError, "reply_poll_failed", {{"error", ErrnoText()}});
      return;
    }
    if (entries[0].revents != 0)
      return;

    // Serve readable connections (those polled, in order), then accept.
    std::vector<int> closing;
    for (std::size_t i = 2; i < entries.size(); ++i) {
      Connection& connection = connections_[i - 2];
      if (entries[i].revents != 0 && !Receive(connection))
        closing.push_back(connection.fd);
    }
    std::erase_if(connections_, [&](const Connection& connection) {
      bool gone = std::ranges::find(closing, connection.fd) != closing.end();
      if (gone)
        close(connection.fd);
      return gone;
    });
    if (entries[1].revents != 0)
      Accept();
    CloseIdle();
    denials_.Flush(DenialLog::Clock::now());
  }
}

// Accepts one connection if the peer is allowed and there is room.
void ReplyServer::Accept() {
  int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  ucred cred{};
  socklen_t length = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
    close(fd);
    return;
  }
  PeerCredentials peer{cred.pid, cred.uid, cred.gid};
  if (!Admit(options_.policy, peer, denials_)) {
    close(fd);
    return;
  }
  if (connections_.size() >= options_.max_connections) {
    Log(LogLevel::kWarn, "reply_connection_refused",
        {{"pid", peer.pid},
         {"reason", "too many open reply connections"},
         {"limit", options_.max_connections}});
    close(fd);
    return;
  }
  connections_.push_back(Connection{fd, peer, {}, Clock::now()});
}

// Reads what is there and answers every complete request; false when the
// connection is to be closed.
bool ReplyServer::Receive(Connection& connection) {
  char chunk[4096];
  ssize_t n = recv(connection.fd, chunk, sizeof chunk, 0);
  if (n < 0)
    return errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK;
  if (n == 0)
    return false;  // the client closed: the usual end
  connection.buffer.append(chunk, static_cast<std::size_t>(n));
  connection.last_active = Clock::now();
  return Answer(connection);
}

// Answers the complete requests in the connection's buffer.
bool ReplyServer::Answer(Connection& connection) {
  while (true) {
    // The request is "NAME KEY"; the name is not checked.
    NetstringParse parsed =
        ParseNetstring(connection.buffer, options_.max_request);
    if (parsed.status == NetstringStatus::kIncomplete)
      return true;
    if (parsed.status == NetstringStatus::kInvalid) {
      Log(LogLevel::kWarn, "reply_request_invalid",
          {{"pid", connection.peer.pid},
           {"reason", parsed.error},
           {"limit", options_.max_request}});
      return false;
    }
    std::string_view payload = parsed.payload;
    std::size_t space = payload.find(' ');
    callback_(connection.peer, space == std::string_view::npos
                                   ? std::string_view()
                                   : payload.substr(space + 1));

    // The answer is tiny and the client waits for it: a socket that cannot
    // take it at once belongs to a client that does not read.
    ssize_t sent = send(connection.fd, kNotFound.data(), kNotFound.size(),
                        MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent != static_cast<ssize_t>(kNotFound.size()))
      return false;
    connection.buffer.erase(0, parsed.consumed);
  }
}

// Milliseconds until the next idle connection is due to close.
int ReplyServer::PollTimeout() const {
  if (connections_.empty())
    return -1;
  auto oldest =
      std::ranges::min_element(connections_, {}, &Connection::last_active);
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      oldest->last_active + options_.idle_timeout - Clock::now());
  return static_cast<int>(std::clamp<long>(left.count() + 1, 0, 60000));
}

// Closes connections idle for longer than idle_timeout.
void ReplyServer::CloseIdle() {
  Clock::time_point limit = Clock::now() - options_.idle_timeout;
  std::erase_if(connections_, [&](const Connection& connection) {
    bool idle = connection.last_active < limit;
    if (idle)
      close(connection.fd);
    return idle;
  });
}

}  // namespace xoauth2::helper
