// SPDX-License-Identifier: MIT
//
// The token-helper's Unix socket server (docs/protocol.md).
//
// SocketServer creates the socket's directory (0755) if missing, refuses to
// start when another live helper answers on the path, removes a stale
// socket, binds, sets mode 0666 (access is decided per connection with
// SO_PEERCRED, not by file mode) and accepts connections on its own
// thread. Each connection runs on its own detached thread, at most
// max_connections at once (extras get `err unavailable`): check the peer,
// read one line (2 s deadline, 1024-byte limit), answer one line, close.
//
// Ownership: the server owns the listening socket, its acceptor thread and
// counts its connection threads; Stop() waits for all of them and unlinks
// the socket it created. The handler and the optional on_served observer
// are called concurrently and must be thread-safe. Logging: refused peers
// (warn, with uid and pid) and internal errors are logged here; answers
// are logged at debug level.

#ifndef XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H
#define XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <expected>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "protocol.h"

namespace xoauth2::helper {

// Who is on the other end of a connection (SO_PEERCRED).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Which local users may ask for tokens.
struct AccessPolicy {
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
  bool always_allow_root = true;  // tests turn this off
};

// True when the peer's uid is listed, its gid is listed, or one of
// `user_groups` (the peer user's primary and supplementary groups) is
// listed; root is allowed when the policy says so.
bool IsPeerAllowed(const AccessPolicy& policy, const PeerCredentials& peer,
                   std::span<const gid_t> user_groups);

// The primary and supplementary groups of `uid` (empty if unknown).
std::vector<gid_t> GroupsOfUser(uid_t uid);

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
  std::size_t max_connections = 64;
  std::chrono::milliseconds read_timeout{2000};
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

 private:
  std::expected<void, std::string> PrepareDirectory();
  std::expected<void, std::string> RemoveStaleSocket();
  std::expected<void, std::string> Bind();
  void AcceptLoop();
  void Serve(int fd);
  std::string Respond(int fd, const PeerCredentials& peer);

  ServerOptions options_;
  RequestHandler handler_;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  ino_t socket_inode_ = 0;
  std::thread acceptor_;

  std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t active_ = 0;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H
