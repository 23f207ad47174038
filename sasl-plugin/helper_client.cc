// SPDX-License-Identifier: MIT
//
// Implementation of helper_client.h: one bounded request/response over a
// non-blocking Unix socket, and the mapping of the helper's answers to
// Failure values. Which layer logs: none here; xoauth2_mech.cc logs the
// returned Failure once.

#include "helper_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "response.h"

namespace xoauth2::plugin {
namespace {

using Clock = std::chrono::steady_clock;

// Closes the descriptor when the request ends, on every path.
class SocketFd {
 public:
  explicit SocketFd(int fd) : fd_(fd) {}
  ~SocketFd() {
    if (fd_ >= 0)
      close(fd_);
  }
  SocketFd(const SocketFd&) = delete;
  SocketFd& operator=(const SocketFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// One request in flight: the endpoint, its socket and its deadline.
struct Call {
  const HelperEndpoint& endpoint;
  int fd;
  Clock::time_point deadline;
};

// "PATH" or "PATH (PATH_IN_JAIL inside the chroot)", for messages.
std::string Where(const HelperEndpoint& endpoint) {
  std::string where = endpoint.configured_path;
  if (endpoint.connect_path != endpoint.configured_path) {
    where += " (" + endpoint.connect_path + " inside the chroot)";
  }
  return where;
}

Failure Timeout(const HelperEndpoint& endpoint) {
  return Warn(SASL_UNAVAIL,
              "token-helper did not answer on " + Where(endpoint) + " within " +
                  std::to_string(endpoint.timeout_ms) +
                  " ms: check that it runs and is not stuck (see its log), "
                  "or raise XOAUTH2_RELAY_TIMEOUT_MS");
}

// Waits until `fd` is ready for `events` or the deadline passes.
// Returns false on timeout.
bool WaitFor(const Call& call, short events) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(call.deadline -
                                                             Clock::now());
    if (left.count() <= 0)
      return false;
    pollfd pfd{call.fd, events, 0};
    int n = poll(&pfd, 1, static_cast<int>(left.count()));
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return true;  // let the I/O call report it
  }
}

// The failure for a connect(2) error, naming the fix for each cause.
Failure ConnectFailure(const HelperEndpoint& endpoint, int err) {
  std::string where = Where(endpoint);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return Warn(SASL_UNAVAIL,
                  "token socket " + where +
                      " does not exist: start token-helper (token-helper "
                      "run) or restart it if it runs, or set "
                      "XOAUTH2_RELAY_SOCKET to the \"socket\" "
                      "path of its configuration");
    case ECONNREFUSED:
      return Warn(SASL_UNAVAIL, "nothing listens on token socket " + where +
                                    ": start token-helper (token-helper run)");
    case EACCES:
    case EPERM:
      return Warn(SASL_UNAVAIL,
                  "permission denied on token socket " + where + " for uid " +
                      std::to_string(geteuid()) +
                      ": make the socket and its directories reachable by "
                      "this uid and list it in allowed_users of the helper's "
                      "configuration");
    default:
      return Warn(SASL_UNAVAIL, "cannot connect to token socket " + where +
                                    ": " + std::strerror(err));
  }
}

// Connects within the deadline. A full listen backlog (EAGAIN on a Unix
// socket) is retried until the deadline.
std::expected<void, Failure> Connect(const Call& call) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string& path = call.endpoint.connect_path;
  if (path.size() >= sizeof(addr.sun_path)) {
    return std::unexpected(ConnectFailure(call.endpoint, ENAMETOOLONG));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

  for (;;) {
    auto* sa = reinterpret_cast<const sockaddr*>(&addr);
    if (connect(call.fd, sa, sizeof(addr)) == 0)
      return {};
    if (errno == EINTR)
      continue;
    if (errno == EINPROGRESS)
      break;
    if (errno != EAGAIN) {
      return std::unexpected(ConnectFailure(call.endpoint, errno));
    }
    if (Clock::now() >= call.deadline) {
      return std::unexpected(Timeout(call.endpoint));
    }
    poll(nullptr, 0, 10);  // backlog full: give the helper a moment
  }

  // Connection in progress: wait for it, then read its outcome.
  if (!WaitFor(call, POLLOUT))
    return std::unexpected(Timeout(call.endpoint));
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(call.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0)
    return std::unexpected(ConnectFailure(call.endpoint, err));
  return {};
}

// Sends all of `data` within the deadline, never raising SIGPIPE. On a
// send error `send_errno` holds its errno.
std::expected<void, Failure> SendAll(const Call& call, std::string_view data,
                                     int& send_errno) {
  send_errno = 0;
  while (!data.empty()) {
    if (!WaitFor(call, POLLOUT)) {
      return std::unexpected(Timeout(call.endpoint));
    }
    ssize_t n = send(call.fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0) {
      send_errno = errno;
      return std::unexpected(
          Warn(SASL_UNAVAIL, "cannot send to token-helper on " +
                                 Where(call.endpoint) + ": " +
                                 std::strerror(send_errno)));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Failure Malformed(const HelperEndpoint& endpoint, std::string_view what) {
  return Bug(SASL_BADPROT, "malformed answer from token-helper on " +
                               Where(endpoint) + ": " + std::string(what) +
                               "; use a plugin and helper of the same "
                               "release");
}

// Reads one line (until LF or EOF) of at most kMaxResponseBytes.
std::expected<std::string, Failure> ReadLine(const Call& call) {
  std::string line;
  line.reserve(protocol::kMaxResponseBytes);  // one allocation: see Wipe
  char chunk[4096];
  for (;;) {
    if (!WaitFor(call, POLLIN)) {
      Wipe(line);
      return std::unexpected(Timeout(call.endpoint));
    }
    ssize_t n = recv(call.fd, chunk, sizeof(chunk), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    if (n < 0) {
      Wipe(line);
      return std::unexpected(
          Warn(SASL_UNAVAIL, "cannot read from token-helper on " +
                                 Where(call.endpoint) + ": " +
                                 std::strerror(errno)));
    }

    // Keep what fits, stop at the first LF or at end of stream.
    std::string_view got(chunk, static_cast<std::size_t>(n));
    std::size_t lf = got.find('\n');
    std::size_t take = lf == std::string_view::npos ? got.size() : lf;
    if (line.size() + take >= protocol::kMaxResponseBytes) {
      Wipe(line);
      explicit_bzero(chunk, sizeof(chunk));
      return std::unexpected(Malformed(
          call.endpoint, "line too long (over " +
                             std::to_string(protocol::kMaxResponseBytes) +
                             " bytes with its LF)"));
    }
    line.append(got.substr(0, take));
    explicit_bzero(chunk, sizeof(chunk));
    if (lf != std::string_view::npos || n == 0)
      break;
  }
  if (line.empty()) {
    return std::unexpected(Malformed(call.endpoint, "empty answer"));
  }
  return line;
}

// Sends `request` and reads the answer line. A helper that refuses a
// connection (too many connections) may answer and close before it reads
// the request, so the send fails with EPIPE or ECONNRESET: its answer is
// then still read, and only when there is none is the send error given.
std::expected<std::string, Failure> ExchangeOn(const Call& call,
                                               std::string_view request) {
  int send_errno = 0;
  auto sent = SendAll(call, request, send_errno);
  if (sent)
    return ReadLine(call);
  if (send_errno != EPIPE && send_errno != ECONNRESET)
    return std::unexpected(sent.error());
  auto answer = ReadLine(call);
  if (!answer)
    return std::unexpected(sent.error());
  return answer;
}

// Sends `request`, reads the answer and parses it. The raw line is wiped.
std::expected<protocol::Response, Failure> Ask(const HelperEndpoint& endpoint,
                                               std::string_view request) {
  std::expected<std::string, Failure> line = RoundTrip(endpoint, request);
  if (!line)
    return std::unexpected(line.error());

  auto parsed = protocol::ParseResponse(*line);
  Wipe(*line);
  if (!parsed)
    return std::unexpected(Malformed(endpoint, parsed.error().text));
  return std::move(*parsed);
}

}  // namespace

std::expected<std::string, Failure> RoundTrip(const HelperEndpoint& endpoint,
                                              std::string_view request) {
  Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(endpoint.timeout_ms);
  SocketFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) {
    return std::unexpected(Bug(
        SASL_FAIL, std::string("socket(AF_UNIX): ") + std::strerror(errno)));
  }
  Call call{endpoint, fd.get(), deadline};

  if (auto ok = Connect(call); !ok)
    return std::unexpected(ok.error());
  return ExchangeOn(call, request);
}

std::expected<std::string, Failure> ExchangeOnSocket(
    const HelperEndpoint& endpoint, int fd, std::string_view request) {
  Clock::time_point deadline =
      Clock::now() + std::chrono::milliseconds(endpoint.timeout_ms);
  return ExchangeOn(Call{endpoint, fd, deadline}, request);
}

std::expected<FetchedToken, Failure> FetchToken(const HelperEndpoint& endpoint,
                                                std::string_view mailbox) {
  protocol::Request request{protocol::Verb::kToken, std::string(mailbox), {}};
  auto response = Ask(endpoint, protocol::FormatRequest(request));
  if (!response)
    return std::unexpected(response.error());

  if (!response->ok) {
    return std::unexpected(FailureFromHelper(
        *response, mailbox, endpoint.configured_path, geteuid()));
  }
  if (response->token.empty()) {
    return std::unexpected(Malformed(endpoint, "ok without a token"));
  }
  return FetchedToken{std::move(response->token), response->expires};
}

std::expected<void, Failure> ReportRejected(const HelperEndpoint& endpoint,
                                            std::string_view mailbox,
                                            std::string_view token) {
  protocol::Request request{protocol::Verb::kReject, std::string(mailbox),
                            std::string(token)};
  std::string line = protocol::FormatRequest(request);
  Wipe(request.token);
  auto response = Ask(endpoint, line);
  Wipe(line);
  if (!response)
    return std::unexpected(response.error());

  if (!response->ok) {
    return std::unexpected(FailureFromHelper(
        *response, mailbox, endpoint.configured_path, geteuid()));
  }
  return {};
}

Failure FailureFromHelper(const protocol::Response& response,
                          std::string_view mailbox,
                          std::string_view socket_path, uid_t uid) {
  std::string says = "token-helper on " + std::string(socket_path) +
                     " answered " +
                     std::string(protocol::ErrorCodeName(response.code)) +
                     " (\"" + SanitizeForLog(response.text) + "\")";
  std::string box(mailbox);
  switch (response.code) {
    case protocol::ErrorCode::kDenied:
      return Warn(SASL_UNAVAIL, says + ": uid " + std::to_string(uid) +
                                    " is not allowed; add it to "
                                    "allowed_users in the helper's "
                                    "configuration");
    case protocol::ErrorCode::kNoAccount:
      return Warn(SASL_NOUSER, says + ": add an account for mailbox " + box +
                                   " to the helper's configuration");
    case protocol::ErrorCode::kUnavailable:
      return Warn(SASL_TRYAGAIN,
                  says + ": no token for mailbox " + box + " right now");
    case protocol::ErrorCode::kBadRequest:
    case protocol::ErrorCode::kUnsupportedVersion:
      return Bug(SASL_FAIL,
                 says + ": use a plugin and helper of the same release");
    case protocol::ErrorCode::kInternal:
      break;
  }
  return Bug(SASL_FAIL, says + ": a bug in token-helper; see its log");
}

}  // namespace xoauth2::plugin
