// SPDX-License-Identifier: MIT
//
// SocketServer: the accept loop over its UnixListener, the connection cap,
// and per-connection handling with peer checks, a bounded line read and a
// one-line answer.

#include "socket_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>

#include "ascii.h"
#include "log.h"

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

protocol::Response Error(protocol::ErrorCode code, std::string text) {
  protocol::Response response;
  response.code = code;
  response.text = std::move(text);
  return response;
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
  char buffer[4096];
  while (line.find('\n') == std::string::npos) {
    if (line.size() >= protocol::kMaxRequestBytes) {
      return std::unexpected(Error(protocol::ErrorCode::kBadRequest,
                                   protocol::RequestTooLongText()));
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
                                 protocol::RequestTooLongText()));
  }
  return line;
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

SocketServer::SocketServer(ServerOptions options, RequestHandler handler)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      listener_(
          {options_.path, "token", options_.policy, options_.check_interval}) {}

SocketServer::~SocketServer() {
  Stop();
}

std::expected<void, std::string> SocketServer::Start() {
  auto opened = listener_.Open();
  if (!opened)
    return opened;
  acceptor_ = std::thread(&SocketServer::AcceptLoop, this);
  return {};
}

void SocketServer::Stop() {
  if (!acceptor_.joinable())
    return;

  // Wake the acceptor, then wait until every connection thread is done.
  listener_.Wake();
  acceptor_.join();
  {
    std::unique_lock lock(mutex_);
    idle_.wait(lock, [this] { return active_ == 0; });
  }
  listener_.Close();
}

void SocketServer::AcceptLoop() {
  while (true) {
    auto woken = listener_.Wait({}, -1);
    if (!woken) {
      Log(LogLevel::kError, "accept_failed", {{"error", woken.error()}});
      return;
    }
    if (*woken == Wakeup::kStop)
      return;
    if (*woken != Wakeup::kIncoming)
      continue;
    int fd = listener_.Accept(0);
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

void SocketServer::SetPolicies(AccessPolicy policy,
                               std::vector<AccountPolicy> accounts) {
  listener_.SetPolicy(std::move(policy));
  std::lock_guard lock(policy_mutex_);
  options_.accounts = std::move(accounts);
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
  std::optional<AccountPolicy> account;
  {
    std::lock_guard lock(policy_mutex_);
    const AccountPolicy* found =
        FindAccountPolicy(options_.accounts, request.mailbox);
    if (found == nullptr)
      return std::nullopt;
    account = *found;
  }

  if (listener_.AdmitAccount(peer, *account))
    return std::nullopt;
  return Error(protocol::ErrorCode::kDenied,
               "uid " + std::to_string(peer.uid) +
                   " may not ask for tokens of account " + account->name +
                   "; " + AccountFix(*account));
}

// Checks the peer, reads the request and produces the answer line.
std::string SocketServer::Respond(int fd, const PeerCredentials& peer) {
  if (!listener_.Admit(peer)) {
    // Read the request first: closing before the client has written it
    // would meet its write with a broken pipe instead of the reason.
    DrainRequest(fd, options_.overflow_read_timeout);
    return protocol::FormatResponse(Error(
        protocol::ErrorCode::kDenied,
        "uid " + std::to_string(peer.uid) +
            " may not ask for tokens; add the user to allowed_users or one "
            "of its groups to allowed_groups"));
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
