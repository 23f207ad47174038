// SPDX-License-Identifier: MIT
//
// The token-helper's Unix socket server (docs/protocol.md).
//
// SocketServer listens through a UnixListener (unix_listener.h: socket
// directory checks, stale socket, mode 0666, peer checks, and binding the
// socket again within check_interval when it disappears) and accepts
// connections on its own thread. Each connection runs on its own detached
// thread, at most max_connections at once: check the peer, read one line
// (2 s deadline, 1024-byte limit), check the peer against the account's
// own allowlist for token and reject requests (see AccountPolicy; status
// is governed by the global policy only), answer one line, close.
// Connections over the cap get `err unavailable too many connections`
// from the accept thread, which then reads their request line for a
// moment before closing, so that a client that writes first reads the
// reason instead of meeting a broken pipe; a peer the global policy
// refuses has its request read the same way before its denial.
//
// SetPolicies() (a configuration reload) replaces the global and the
// per-account allowlists for requests checked from then on; a request
// already past its checks is answered.
//
// Ownership: the server owns its listener, its acceptor thread and counts
// its connection threads; Stop() waits for all of them and unlinks the
// socket it created. The handler and the optional on_served observer are
// called concurrently and must be thread-safe. Logging: refused peers
// (peer_denied socket=token) and socket_recreated are logged by the
// listener; internal errors here; answers at debug level.

#ifndef XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H
#define XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <expected>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "protocol.h"
#include "unix_listener.h"

namespace xoauth2::helper {

using RequestHandler =
    std::function<protocol::Response(const protocol::Request&)>;

// Told about every token handed out, before the answer is sent, with the
// peer that got it (so that ReplyWatcher can tie later SMTP replies read
// by that process to the token).
using ServedObserver = std::function<void(const PeerCredentials& peer,
                                          const protocol::Request& request,
                                          const protocol::Response& response)>;

struct ServerOptions {
  std::string path;
  AccessPolicy policy;
  // Accounts with their own allowlist; others are served to every peer
  // the global policy allows.
  std::vector<AccountPolicy> accounts = {};
  // Connections served at once; one over it is told `unavailable` even
  // when it would only wait for a fetch already running, so a cold burst
  // larger than this defers the rest (KNOWN_ISSUES.md).
  std::size_t max_connections = 64;
  std::chrono::milliseconds read_timeout{2000};
  // How long a connection over the cap or a refused peer may take to
  // send its request (read and dropped, so that it reads the reason).
  std::chrono::milliseconds overflow_read_timeout{100};
  // How often the listener checks that the socket file is still there.
  std::chrono::milliseconds check_interval{5000};
  ServedObserver on_served = nullptr;  // optional
};

class SocketServer {
 public:
  SocketServer(ServerOptions options, RequestHandler handler);
  ~SocketServer();
  SocketServer(const SocketServer&) = delete;
  SocketServer& operator=(const SocketServer&) = delete;

  // Binds the socket and starts accepting; the error names path and fix.
  std::expected<void, std::string> Start();

  // Stops accepting, waits for open connections, unlinks the socket.
  void Stop();

  // Checks later peers against `policy` and `accounts`. Thread-safe.
  void SetPolicies(AccessPolicy policy, std::vector<AccountPolicy> accounts);

  // The socket's and its directory's permission bits, set by Start().
  mode_t socket_mode() const { return listener_.socket_mode(); }
  mode_t dir_mode() const { return listener_.dir_mode(); }

 private:
  void AcceptLoop();
  void Serve(int fd);
  std::string Respond(int fd, const PeerCredentials& peer);
  std::optional<protocol::Response> CheckAccount(
      const PeerCredentials& peer, const protocol::Request& request);

  ServerOptions options_;
  RequestHandler handler_;
  UnixListener listener_;
  std::thread acceptor_;

  std::mutex policy_mutex_;  // guards options_.accounts

  std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t active_ = 0;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H
