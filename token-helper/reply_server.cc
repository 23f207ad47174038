// SPDX-License-Identifier: MIT
//
// ReplyServer: the poll loop over its UnixListener and every connection,
// netstring framing and the constant `NOTFOUND ` answer. See
// reply_server.h.

#include "reply_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <optional>

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

}  // namespace

std::string ReplySocketPath(const std::string& token_socket) {
  return (std::filesystem::path(token_socket).parent_path() / "reply.sock")
      .string();
}

ReplyServer::ReplyServer(ReplyServerOptions options, ReplyCallback callback)
    : options_(std::move(options)),
      callback_(std::move(callback)),
      listener_(
          {options_.path, "reply", options_.policy, options_.check_interval}) {}

ReplyServer::~ReplyServer() {
  Stop();
}

std::expected<void, std::string> ReplyServer::Start() {
  auto opened = listener_.Open();
  if (!opened)
    return opened;
  thread_ = std::thread(&ReplyServer::Loop, this);
  return {};
}

void ReplyServer::Stop() {
  if (!thread_.joinable())
    return;
  listener_.Wake();
  thread_.join();

  for (Connection& connection : connections_)
    close(connection.fd);
  connections_.clear();
  listener_.Close();
}

// Waits for activity on all sockets and serves it, until woken to stop.
void ReplyServer::Loop() {
  std::vector<pollfd> entries;
  while (true) {
    entries.clear();
    for (const Connection& connection : connections_)
      entries.push_back({connection.fd, POLLIN, 0});
    auto woken = listener_.Wait(entries, PollTimeout());
    if (!woken) {
      Log(LogLevel::kError, "reply_poll_failed", {{"error", woken.error()}});
      return;
    }
    if (*woken == Wakeup::kStop)
      return;

    // Serve readable connections (those polled, in order), then accept.
    std::vector<int> closing;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      Connection& connection = connections_[i];
      if (entries[i].revents != 0 && !Receive(connection))
        closing.push_back(connection.fd);
    }
    std::erase_if(connections_, [&](const Connection& connection) {
      bool gone = std::ranges::find(closing, connection.fd) != closing.end();
      if (gone)
        close(connection.fd);
      return gone;
    });
    if (*woken == Wakeup::kIncoming)
      Accept();
    CloseIdle();
  }
}

// Accepts one connection if the peer is allowed and there is room.
void ReplyServer::Accept() {
  int fd = listener_.Accept(SOCK_NONBLOCK);
  if (fd < 0)
    return;
  std::optional<PeerCredentials> peer = PeerOf(fd);
  // A refused peer gets no socketmap answer, only the closed connection;
  // Admit() logs it (KNOWN_ISSUES.md).
  if (!peer || !listener_.Admit(*peer)) {
    close(fd);
    return;
  }
  if (connections_.size() >= options_.max_connections) {
    Log(LogLevel::kWarn, "reply_connection_refused",
        {{"pid", peer->pid},
         {"reason", "too many open reply connections"},
         {"limit", options_.max_connections}});
    close(fd);
    return;
  }
  connections_.push_back(Connection{fd, *peer, {}, Clock::now()});
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
