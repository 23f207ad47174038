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
// mode 0666 like it; peers are checked against the same AccessPolicy when
// they connect, and refused peers are logged (rate-limited by DenialLog)
// and disconnected. smtp(8)
// keeps its connection open for many lookups, so ReplyServer serves all
// connections from one poll(2) thread it owns (never the token server's
// threads): non-blocking sockets, a buffer per connection, requests framed
// as netstrings of at most max_request bytes, idle connections closed
// after idle_timeout, at most max_connections at once. A connection that
// breaks the framing is logged and closed; Postfix then reports a lookup
// error for that reply line and defers the message.
//
// Unlike the token socket, a reply socket that disappears while the helper
// runs (its directory removed) is not bound again; KNOWN_ISSUES.md lists
// this ("Only the token socket is recreated when it disappears").
//
// The callback runs on the poll thread and must not block. Start() and
// Stop() are called from one thread; Stop() joins the thread, closes every
// connection and unlinks the socket it created.

#ifndef XOAUTH2_TOKEN_HELPER_REPLY_SERVER_H
#define XOAUTH2_TOKEN_HELPER_REPLY_SERVER_H

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <expected>
#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "socket_server.h"

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

 private:
  struct Connection;

  std::expected<void, std::string> Bind();
  void Loop();
  void Accept();
  bool Receive(Connection& connection);
  bool Answer(Connection& connection);
  int PollTimeout() const;
  void CloseIdle();

  ReplyServerOptions options_;
  ReplyCallback callback_;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  ino_t socket_inode_ = 0;
  DenialLog denials_{"reply"};  // refusals, at most one line a minute a uid
  std::vector<Connection> connections_;  // only the poll thread touches it
  std::thread thread_;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_REPLY_SERVER_H
