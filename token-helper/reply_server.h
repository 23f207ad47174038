// SPDX-License-Identifier: MIT
//
// The reply socket: a Postfix socketmap server (socketmap_table(5)) that
// smtp(8) queries with every SMTP reply line of the server through
//   smtp_reply_filter = socketmap:unix:xoauth2-relay/reply.sock:xoauth2
// It answers every lookup `NOTFOUND `, so no reply is ever changed, and
// hands each line with the querying process's pid to a callback
// (ReplyWatcher::ReplySeen in the daemon).
//
// The socket is `reply.sock` beside the token socket (ReplySocketPath),
// set up by a UnixListener as the token socket is (unix_listener.h: mode
// 0666, bound again within check_interval when it disappears, logged as
// socket_recreated); peers are checked against the same AccessPolicy when
// they connect, and refused peers are logged (peer_denied socket=reply,
// rate-limited) and disconnected. smtp(8) keeps its connection open for
// many lookups, so ReplyServer serves all connections from one poll(2)
// thread it owns (never the token server's threads): non-blocking
// sockets, a buffer per connection, requests framed as netstrings of at
// most max_request bytes, idle connections closed after idle_timeout, at
// most max_connections at once. A connection that breaks the framing is
// logged and closed; Postfix then reports a lookup error for that reply
// line and defers the message.
//
// The callback runs on the poll thread and must not block. Start() and
// Stop() are called from one thread; Stop() joins the thread, closes every
// connection and unlinks the socket it created.

#ifndef XOAUTH2_TOKEN_HELPER_REPLY_SERVER_H
#define XOAUTH2_TOKEN_HELPER_REPLY_SERVER_H

#include <chrono>
#include <cstddef>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "unix_listener.h"

namespace xoauth2::helper {

// `reply.sock` in the directory of `token_socket`.
std::string ReplySocketPath(const std::string& token_socket);

// Called with the peer and the lookup key (one SMTP reply line).
using ReplyCallback =
    std::function<void(const PeerCredentials& peer, std::string_view key)>;

struct ReplyServerOptions {
  std::string path;
  AccessPolicy policy;
  std::size_t max_connections = 256;
  std::size_t max_request = 4096;  // netstring payload bytes
  std::chrono::milliseconds idle_timeout{60000};
  // How often the listener checks that the socket file is still there.
  std::chrono::milliseconds check_interval{5000};
};

class ReplyServer {
 public:
  ReplyServer(ReplyServerOptions options, ReplyCallback callback);
  ~ReplyServer();
  ReplyServer(const ReplyServer&) = delete;
  ReplyServer& operator=(const ReplyServer&) = delete;

  // Binds the socket (replacing a stale one) and starts the poll thread;
  // the error names the path.
  std::expected<void, std::string> Start();

  // Stops the thread, closes all connections, unlinks the socket.
  void Stop();

  // Checks peers connecting from now on against `policy` (a
  // configuration reload). Thread-safe.
  void SetPolicy(AccessPolicy policy) {
    listener_.SetPolicy(std::move(policy));
  }

 private:
  struct Connection;

  void Loop();
  void Accept();
  bool Receive(Connection& connection);
  bool Answer(Connection& connection);
  int PollTimeout() const;
  void CloseIdle();

  ReplyServerOptions options_;
  ReplyCallback callback_;
  UnixListener listener_;
  std::vector<Connection> connections_;  // only the poll thread touches it
  std::thread thread_;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_REPLY_SERVER_H
