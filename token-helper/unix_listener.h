// SPDX-License-Identifier: MIT
//
// The listening side shared by the helper's two Unix sockets: the token
// socket (SocketServer, docs/protocol.md) and the reply socket
// (ReplyServer, Postfix's smtp_reply_filter socketmap).
//
// UnixListener creates the socket's directory (0755) if missing, refuses a
// directory that others may write to without the sticky bit or that
// another user owns (either could replace the socket), refuses to start
// when a live server answers
// on the path, removes a stale socket, binds, sets mode 0666 (access is
// decided per connection with SO_PEERCRED, not by file mode; the
// directory's mode, 0750 root:postfix under systemd, keeps other users
// away) and listens. Wait() polls the socket, a wake-up pipe and the
// caller's own descriptors; every check_interval it makes sure the socket
// file is still the one it bound (same device and inode). When it is gone
// (the directory was removed) or replaced by a dead socket, it binds a
// new one and logs socket_recreated (warn); when that fails it logs
// socket_recreate_failed (error) once until it works again.
//
// Peers: Admit() checks the global AccessPolicy, AdmitAccount() an
// account's own allowlist after it. SetPolicy() replaces the global
// policy (a configuration reload) for connections checked from then on.
// Refusals are logged as peer_denied (warn, with uid and pid) through
// DenialLog: at most one line per uid a minute plus a summary; the account
// allowlist has its own DenialLog and its lines also name the account and the
// fix. Summaries of closed windows are logged from Wait().
//
// Types: PeerCredentials, AccessPolicy, AccountPolicy, DenialLog,
// UnixListener. Ownership: the listener owns the listening descriptor and
// the wake-up pipe. Open(), Wait(), Accept() and Close() belong to the one
// thread that serves the socket (Open() and Close() may run on another
// thread when that one is not running); Wake() may be called from any
// thread, Admit(), AdmitAccount() and SetPolicy() from many at once. Close()
// unlinks the socket only if it is still the one this listener bound.
//
// What it deliberately does not do: read or write connections, count
// them, or run threads; the servers do that.

#ifndef XOAUTH2_TOKEN_HELPER_UNIX_LISTENER_H
#define XOAUTH2_TOKEN_HELPER_UNIX_LISTENER_H

#include <poll.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <expected>
#include <map>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace xoauth2::helper {

// Who is on the other end of a connection (SO_PEERCRED).
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Which local users may use a socket.
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

// The peer of a connected Unix socket, from the kernel (SO_PEERCRED).
std::optional<PeerCredentials> PeerOf(int fd);

// The fix named when `account`'s allowlist refuses a peer.
std::string AccountFix(const AccountPolicy& account);

// Checks the directories on the way to the socket `path`, for a helper
// running as `euid` (FindUnsafeDirectory): none may let another user put
// a socket of their own in its place, and the socket's own folder may not
// be writable by others even with the sticky bit, since anyone could take
// the name first. The folder's mode on success.
std::expected<mode_t, std::string> CheckSocketFolder(const std::string& path,
                                                     uid_t euid);

// What `check` can tell of a socket path before the helper binds it: its
// directory, when it exists, passes CheckSocketDirectory, and the path is
// nothing but a socket or absent.
std::expected<void, std::string> CheckSocketPlace(const std::string& path,
                                                  uid_t euid);

// Logs refused peers without letting one misconfigured client flood the
// log: the first refusal of a uid logs peer_denied (warn) with uid, gid
// and pid; later refusals of that uid within `window` are only counted,
// and the count is logged as one peer_denied line with suppressed=N when
// the window has closed, at the next Flush() or the uid's next refusal.
// Known limit (KNOWN_ISSUES.md): the window is per uid, not per uid and
// account, so a second account refusing the same uid within it shows
// only in the suppressed=N count, without its account name.
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
  void Record(const PeerCredentials& peer, Clock::time_point now,
              std::string_view account, std::string_view fix);
  bool OpenWindow(uid_t uid, Clock::time_point now);
  void Summarise(uid_t uid, const Window& window);

  std::string socket_name_;
  std::chrono::seconds window_;
  std::mutex mutex_;
  std::map<uid_t, Window> windows_;
};

struct ListenerOptions {
  std::string path;
  std::string name;  // socket=NAME in peer_denied lines: "token", "reply"
  AccessPolicy policy;
  // How often the socket file is checked.
  std::chrono::milliseconds check_interval{5000};
};

// What Wait() saw.
enum class Wakeup {
  kStop,      // Wake() was called
  kIncoming,  // a connection may be waiting for Accept()
  kOther,     // a descriptor of the caller's, a timeout or a signal
};

class UnixListener {
 public:
  explicit UnixListener(ListenerOptions options);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Prepares the directory, replaces a stale socket, binds and listens;
  // the error names the path and the fix.
  std::expected<void, std::string> Open();

  // Polls the socket, the wake-up pipe and `extra` (whose revents it
  // fills in) for at most `timeout_ms` (-1: no limit of the caller's),
  // then does the periodic work that is due. The error is poll(2)'s.
  std::expected<Wakeup, std::string> Wait(std::span<pollfd> extra,
                                          int timeout_ms);

  // Accepts one waiting connection with SOCK_CLOEXEC and `flags` (e.g.
  // SOCK_NONBLOCK); -1 when there is none.
  int Accept(int flags);

  // True when the global policy allows `peer`; logs a refusal.
  bool Admit(const PeerCredentials& peer);

  // True when `account`'s allowlist allows `peer` (root as the global
  // policy says); logs a refusal with the account and its fix.
  bool AdmitAccount(const PeerCredentials& peer, const AccountPolicy& account);

  // Checks later peers against `policy`. Thread-safe.
  void SetPolicy(AccessPolicy policy);

  // Makes Wait() return kStop, now and from then on. Thread-safe.
  void Wake();

  // Closes the socket and the pipe and unlinks the socket if it is ours.
  void Close();

  // The socket's and its directory's permission bits, set by Open().
  mode_t socket_mode() const { return socket_mode_; }
  mode_t dir_mode() const { return dir_mode_; }

 private:
  std::expected<void, std::string> PrepareDirectory();
  std::expected<void, std::string> RemoveStaleSocket();
  std::expected<int, std::string> Bind();
  std::expected<int, std::string> Establish();
  int Timeout(int timeout_ms) const;
  void KeepSocketFile();
  AccessPolicy Policy() const;

  ListenerOptions options_;
  mutable std::mutex policy_mutex_;  // guards options_.policy
  int listen_fd_ = -1;
  int wake_read_ = -1;
  int wake_write_ = -1;
  ino_t socket_inode_ = 0;
  dev_t socket_dev_ = 0;
  std::atomic<mode_t> socket_mode_ = 0;
  std::atomic<mode_t> dir_mode_ = 0;
  bool recreate_failed_ = false;  // logged once until it works again
  std::chrono::steady_clock::time_point next_check_;
  DenialLog denials_;
  DenialLog account_denials_;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_UNIX_LISTENER_H
