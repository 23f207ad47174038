// SPDX-License-Identifier: MIT
//
// The token-helper's Unix socket server (docs/protocol.md).
//
// SocketServer creates the socket's directory (0755) if missing, refuses a
// directory that others may write to without the sticky bit (a local user
// could replace the socket), refuses to start when another live helper
// answers on the path, removes a stale socket, binds, sets mode 0666
// (access is decided per connection with SO_PEERCRED, not by file mode;
// the directory's mode, 0750 root:postfix under systemd, keeps other users
// away) and accepts connections on its own thread. Each connection runs
// on its own detached thread, at most max_connections at once: check the
// peer, read one line (2 s deadline, 1024-byte limit), check the peer
// against the account's own allowlist for token and reject requests (see
// AccountPolicy; status is governed by the global policy only), answer
// one line, close. Connections over the cap get `err unavailable too many
// connections` from the accept thread, which then reads their request
// line for a moment before closing, so that a client that writes first
// reads the reason instead of meeting a broken pipe.
//
// Every check_interval the accept thread makes sure the socket file is
// still the one it bound (same device and inode); when it is gone (the
// directory was removed) or replaced by a dead socket it binds a new one
// and logs socket_recreated.
//
// Ownership: the server owns the listening socket, its acceptor thread and
// counts its connection threads; Stop() waits for all of them and unlinks
// the socket it created. The handler and the optional on_served observer
// are called concurrently and must be thread-safe. Logging: refused peers
// (warn, with uid and pid, through DenialLog: at most one line per uid a
// minute plus a summary; refusals by an account's allowlist have their
// own DenialLog and also name the account), socket_recreated and internal
// errors are logged here; answers are logged at debug level.

#ifndef XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H
#define XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <expected>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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

// Who may ask for one account's tokens (its own allowed_users and
// allowed_groups), checked after the global policy; root follows the
// global policy's always_allow_root.
struct AccountPolicy {
  std::string mailbox;    // compared case-insensitively
  std::string name;       // the account's name, for answers and logs
  std::size_t index = 0;  // N in accounts[N], for the fix
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
};

// True when the peer's uid is listed, its gid is listed, or one of
// `user_groups` (the peer user's primary and supplementary groups) is
// listed; root is allowed when the policy says so.
bool IsPeerAllowed(const AccessPolicy& policy, const PeerCredentials& peer,
                   std::span<const gid_t> user_groups);

// The primary and supplementary groups of `uid` (empty if unknown).
std::vector<gid_t> GroupsOfUser(uid_t uid);

// Logs refused peers without letting one misconfigured client flood the
// log: the first refusal of a uid logs peer_denied (warn) with uid, gid
// and pid; later refusals of that uid within `window` are only counted,
// and the count is logged as one peer_denied line with suppressed=N when
// the window has closed, at the next Flush() or the uid's next refusal.
// Thread-safe.
class DenialLog {
 public:
  using Clock = std::chrono::steady_clock;
  explicit DenialLog(std::string socket_name,
                     std::chrono::seconds window = std::chrono::seconds(60));

  // Records one refusal of `peer` at `now`, logging it or counting it.
  void Denied(const PeerCredentials& peer, Clock::time_point now);

  // As Denied, for a refusal by the allowlist of `account` (its name);
  // the full line also carries account and `fix`.
  void DeniedAccount(const PeerCredentials& peer, Clock::time_point now,
                     std::string_view account, std::string_view fix);

  // Logs the summaries of windows closed by `now` and forgets them.
  void Flush(Clock::time_point now);

 private:
  struct Window {
    Clock::time_point start;
    std::size_t suppressed = 0;
  };
  bool OpenWindow(uid_t uid, Clock::time_point now);
  void Summarise(uid_t uid, const Window& window);

  std::string socket_name_;
  std::chrono::seconds window_;
  std::mutex mutex_;
  std::map<uid_t, Window> windows_;
};

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
  std::size_t max_connections = 64;
  std::chrono::milliseconds read_timeout{2000};
  // How long a connection over the cap may take to send its request.
  std::chrono::milliseconds overflow_read_timeout{100};
  // How often the socket file is checked and denial summaries are logged.
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

  // The socket's and its directory's permission bits, set by Start().
  mode_t socket_mode() const { return socket_mode_; }
  mode_t dir_mode() const { return dir_mode_; }

 private:
  std::expected<void, std::string> PrepareDirectory();
  std::expected<void, std::string> RemoveStaleSocket();
  std::expected<int, std::string> Bind();
  void AcceptLoop();
  void Housekeeping();
  void KeepSocketFile();
  void Serve(int fd);
  std::string Respond(int fd, const PeerCredentials& peer);
  std::optional<protocol::Response> CheckAccount(
      const PeerCredentials& peer, const protocol::Request& request);

  ServerOptions options_;
  RequestHandler handler_;
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  ino_t socket_inode_ = 0;
  dev_t socket_dev_ = 0;
  mode_t socket_mode_ = 0;
  mode_t dir_mode_ = 0;
  bool recreate_failed_ = false;  // logged once until it works again
  std::chrono::steady_clock::time_point next_check_;
  DenialLog denials_{"token"};
  DenialLog account_denials_{"token"};
  std::thread acceptor_;

  std::mutex mutex_;
  std::condition_variable idle_;
  std::size_t active_ = 0;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SOCKET_SERVER_H
