// SPDX-License-Identifier: MIT
//
// Blocking Unix socket client with poll(2) deadlines.

#include "socket_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace xoauth2::helper {
namespace {

using Clock = std::chrono::steady_clock;

// Milliseconds left until `deadline`, at least 0.
int Remaining(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - Clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits for `events` on `fd` until `deadline`; false on timeout or error.
bool WaitFor(int fd, short events, Clock::time_point deadline) {
  pollfd entry{fd, events, 0};
  while (true) {
    int rc = poll(&entry, 1, Remaining(deadline));
    if (rc < 0 && errno == EINTR)
      continue;
    return rc > 0;
  }
}

// Sends all of `bytes` before `deadline`.
std::expected<void, std::string> SendAll(int fd, std::string_view bytes,
                                         Clock::time_point deadline) {
  while (!bytes.empty()) {
    if (!WaitFor(fd, POLLOUT, deadline))
      return std::unexpected("timed out");
    ssize_t n =
        send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0)
      return std::unexpected(std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

// Reads one line (or up to EOF) before `deadline`.
std::expected<std::string, std::string> ReadLine(int fd,
                                                 Clock::time_point deadline) {
  std::string line;
  char buffer[4096];
  while (line.find('\n') == std::string::npos) {
    if (line.size() > protocol::kMaxResponseBytes) {
      return std::unexpected("answer longer than 16384 bytes");
    }
    if (!WaitFor(fd, POLLIN, deadline)) {
      return std::unexpected("timed out waiting for the answer");
    }
    ssize_t n = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0)
      return std::unexpected(std::strerror(errno));
    if (n == 0)
      break;
    line.append(buffer, static_cast<std::size_t>(n));
  }
  return line;
}

}  // namespace

std::expected<int, std::string> ConnectUnix(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    return std::unexpected(path + ": socket path too long");
  }
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);

  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return std::unexpected(std::string(std::strerror(errno)));
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::string why = std::strerror(errno);
    close(fd);
    return std::unexpected("cannot connect to " + path + ": " + why);
  }
  return fd;
}

std::expected<std::string, std::string> ExchangeLine(
    const std::string& path, std::string_view bytes,
    std::chrono::milliseconds timeout) {
  Clock::time_point deadline = Clock::now() + timeout;
  auto fd = ConnectUnix(path);
  if (!fd)
    return std::unexpected(fd.error());

  // Half-close after the request so a server reading to EOF sees the end.
  auto sent = SendAll(*fd, bytes, deadline);
  if (sent)
    shutdown(*fd, SHUT_WR);
  auto line = sent ? ReadLine(*fd, deadline)
                   : std::expected<std::string, std::string>(
                         std::unexpected(sent.error()));
  close(*fd);
  if (!line)
    return std::unexpected(path + ": " + line.error());
  return line;
}

std::expected<protocol::Response, std::string> AskHelper(
    const std::string& path, const protocol::Request& request,
    std::chrono::milliseconds timeout) {
  // A mailbox with a line break would smuggle a second request through.
  if (request.verb != protocol::Verb::kStatus &&
      !protocol::IsValidMailbox(request.mailbox)) {
    return std::unexpected(
        "not sent to " + path +
        ": the mailbox is not one address like relay@example.com");
  }
  auto line = ExchangeLine(path, protocol::FormatRequest(request), timeout);
  if (!line)
    return std::unexpected(line.error());
  auto response = protocol::ParseResponse(*line);
  if (!response) {
    return std::unexpected(path +
                           ": malformed answer: " + response.error().text);
  }
  return *response;
}

}  // namespace xoauth2::helper
