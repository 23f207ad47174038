// SPDX-License-Identifier: MIT
//
// The plugin's side of the token socket protocol (docs/protocol.md): one
// request per connection to token-helper over a Unix stream socket.
//
// Main types: HelperEndpoint (where and how long), FetchedToken. Every
// call is synchronous and bounded by one deadline covering connect, send
// and receive; the socket is non-blocking and close-on-exec, sends use
// MSG_NOSIGNAL so the host never gets SIGPIPE, and the descriptor is
// closed on every path. No threads, no global state, no logging: failures
// come back as Failure values whose message names the fix. Buffers that
// held a token are wiped before they are freed.

#ifndef XOAUTH2_SASL_PLUGIN_HELPER_CLIENT_H
#define XOAUTH2_SASL_PLUGIN_HELPER_CLIENT_H

#include <sys/types.h>

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include "failure.h"
#include "protocol.h"

namespace xoauth2::plugin {

// Where the helper listens and how long one request may take.
struct HelperEndpoint {
  std::string configured_path;  // host path, as configured (for messages)
  std::string connect_path;     // the same socket seen from the current root
  int timeout_ms = 5000;        // budget for the whole request
};

// An access token handed out by the helper. The owner wipes `token`.
struct FetchedToken {
  std::string token;
  std::int64_t expires = 0;  // Unix seconds
};

// Sends `request` (one line ending in LF) and returns the helper's answer
// line without its LF. Fails on connect errors (socket missing, nothing
// listening, permission denied), on timeout, and on an answer longer than
// protocol::kMaxResponseBytes.
std::expected<std::string, Failure> RoundTrip(const HelperEndpoint& endpoint,
                                              std::string_view request);

// The part of RoundTrip after connect(2), on the connected non-blocking
// socket `fd` (not closed here), within endpoint.timeout_ms. When the
// helper answered and closed before reading (send fails with EPIPE or
// ECONNRESET), the answer it left is still read and returned; the send
// error is returned only when there is none. Exposed for tests.
std::expected<std::string, Failure> ExchangeOnSocket(
    const HelperEndpoint& endpoint, int fd, std::string_view request);

// Asks for a current access token for `mailbox` (`v1 token MAILBOX`).
std::expected<FetchedToken, Failure> FetchToken(const HelperEndpoint& endpoint,
                                                std::string_view mailbox);

// Tells the helper the server refused `token` for `mailbox`
// (`v1 reject MAILBOX TOKEN`) so that it fetches a fresh one next time.
std::expected<void, Failure> ReportRejected(const HelperEndpoint& endpoint,
                                            std::string_view mailbox,
                                            std::string_view token);

// The failure for an `err CODE TEXT` answer: SASL code, log level and a
// message naming the fix. `uid` is the effective uid that asked.
Failure FailureFromHelper(const protocol::Response& response,
                          std::string_view mailbox,
                          std::string_view socket_path, uid_t uid);

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_HELPER_CLIENT_H
