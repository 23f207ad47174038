// SPDX-License-Identifier: MIT
//
// Unit tests of UnixListener (unix_listener.h), the listening side shared
// by the token and reply sockets, driven from the test's own thread:
// binding (directory 0755, socket 0666, whatever the umask), a live socket
// refused, accepting with the peer's credentials, refused peers logged
// (global and account allowlists, rate-limited), the policy swapped by
// SetPolicy() (a reload), the caller's descriptors polled beside the
// socket, Wake(), Close() unlinking only its own socket, and the socket
// bound again when it is removed or replaced (table-driven). Waiting is
// Wait() polled against a deadline, never a sleep.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <utility>

#include "helper_test_util.h"
#include "secret_file.h"
#include "socket_client.h"
#include "unix_listener.h"

namespace xoauth2::helper {
namespace {

using std::chrono::milliseconds;
using testing::LogCapture;
using testing::TempDir;

// A listener on DIR/run/test.sock that lets the test's uid in (root only
// through the list) and checks its socket file every 20 ms.
ListenerOptions Options(const TempDir& dir) {
  ListenerOptions options;
  options.path = dir.path() + "/run/test.sock";
  options.name = "test";
  options.policy.uids = {getuid()};
  options.policy.always_allow_root = false;
  options.check_interval = milliseconds(20);
  return options;
}

// Calls Wait() until `done` holds or 10 s pass; false on timeout.
bool WaitFor(UnixListener& listener, const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    if (!listener.Wait({}, 10))
      return false;
  }
  return true;
}

// Binds a socket at `path` and closes it without listening: a stale one.
void BindDeadSocket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  close(fd);
}

// The device and inode of `path`, or {0, 0}.
std::pair<dev_t, ino_t> FileId(const std::string& path) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0)
    return {0, 0};
  return {info.st_dev, info.st_ino};
}

// The file type and permission bits of `path`, or 0.
mode_t ModeOf(const std::string& path) {
  struct stat info {};
  return stat(path.c_str(), &info) == 0 ? info.st_mode & (S_IFMT | 07777) : 0;
}

TEST(HelperListener, BindsWithModesWhateverTheUmask) {
  TempDir dir;
  UnixListener listener(Options(dir));
  mode_t old_mask = umask(077);
  auto opened = listener.Open();
  umask(old_mask);
  ASSERT_TRUE(opened) << opened.error();

  EXPECT_EQ(ModeOf(dir.path() + "/run"), S_IFDIR | 0755u);
  EXPECT_EQ(ModeOf(Options(dir).path), S_IFSOCK | 0666u);
  EXPECT_EQ(listener.socket_mode(), 0666u);
  EXPECT_EQ(listener.dir_mode(), 0755u);
}

TEST(HelperListener, LiveSocketRefusedFileRefused) {
  TempDir dir;
  UnixListener first(Options(dir));
  ASSERT_TRUE(first.Open());
  UnixListener second(Options(dir));
  auto refused = second.Open();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(),
            "a process of " + UserText(geteuid()) +
                ", the socket's owner, is already listening on " +
                Options(dir).path +
                "; stop that token-helper first, or, if it is none of yours, "
                "keep other users out of the socket directory (mode 0750, "
                "owned by the helper's user, group postfix)");

  ListenerOptions options = Options(dir);
  options.path = dir.Write("run/keep", "x");
  UnixListener blocked(options);
  refused = blocked.Open();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), options.path +
                                 " exists and is not a socket; remove it or "
                                 "set another socket path");
}

TEST(HelperListener, AcceptsAndNamesThePeer) {
  TempDir dir;
  UnixListener listener(Options(dir));
  ASSERT_TRUE(listener.Open());
  auto client = ConnectUnix(Options(dir).path);
  ASSERT_TRUE(client) << client.error();

  int fd = -1;
  ASSERT_TRUE(
      WaitFor(listener, [&] { return (fd = listener.Accept(0)) >= 0; }));
  auto peer = PeerOf(fd);
  ASSERT_TRUE(peer);
  EXPECT_EQ(peer->pid, getpid());
  EXPECT_EQ(peer->uid, getuid());
  EXPECT_TRUE(listener.Admit(*peer));
  EXPECT_EQ(listener.Accept(0), -1);  // nothing else waits; no blocking
  close(fd);
  close(*client);
}

TEST(HelperListener, RefusedPeerLoggedOnceAMinute) {
  TempDir dir;
  LogCapture log;
  ListenerOptions options = Options(dir);
  options.policy.uids = {getuid() + 4242};
  UnixListener listener(options);
  PeerCredentials peer{getpid(), getuid(), getgid()};

  EXPECT_FALSE(listener.Admit(peer));
  EXPECT_FALSE(listener.Admit(peer));
  std::string uid = std::to_string(getuid());
  ASSERT_EQ(log.Lines().size(), 1u);
  EXPECT_TRUE(log.Has({"level=warn event=peer_denied socket=test uid=" + uid,
                       "pid=" + std::to_string(getpid()),
                       "fix=\"add the user to allowed_users or a group to "
                       "allowed_groups\""}));
}

TEST(HelperListener, AccountAllowlistRefusalNamesAccountAndFix) {
  TempDir dir;
  LogCapture log;
  UnixListener listener(Options(dir));
  PeerCredentials peer{getpid(), getuid(), getgid()};
  AccountPolicy account{"relay@example.com", "relay", 3, {getuid() + 1}, {}};

  EXPECT_TRUE(listener.Admit(peer));
  EXPECT_FALSE(listener.AdmitAccount(peer, account));
  EXPECT_EQ(AccountFix(account), "add the user to accounts[3].allowed_users");
  EXPECT_TRUE(log.Has({"event=peer_denied socket=test", "account=relay",
                       "fix=\"add the user to accounts[3].allowed_users\""}));
  account.uids.push_back(getuid());
  EXPECT_TRUE(listener.AdmitAccount(peer, account));
}

// A reload swaps the global policy: a peer let in before is refused (and
// logged as before), one refused before is let in, from the next check on.
TEST(HelperListener, SetPolicySwapsWhoIsAdmitted) {
  TempDir dir;
  LogCapture log;
  UnixListener listener(Options(dir));
  PeerCredentials kept_out{getpid(), getuid() + 4242, getgid() + 4242};
  PeerCredentials let_in{getpid(), getuid(), getgid()};
  ASSERT_TRUE(listener.Admit(let_in));
  ASSERT_FALSE(listener.Admit(kept_out));

  listener.SetPolicy({{getuid() + 4242}, {}, false});
  EXPECT_TRUE(listener.Admit(kept_out));
  EXPECT_FALSE(listener.Admit(let_in));
  EXPECT_TRUE(log.Has({"level=warn event=peer_denied socket=test uid=" +
                           std::to_string(getuid()) + " ",
                       "pid=" + std::to_string(getpid())}));

  // The root rule is swapped with the lists.
  PeerCredentials root{getpid(), 0, 0};
  listener.SetPolicy({{}, {}, true});
  EXPECT_TRUE(listener.Admit(root));
  listener.SetPolicy({{}, {}, false});
  EXPECT_FALSE(listener.Admit(root));
}

// An account allowlist follows the root rule of the policy set last.
TEST(HelperListener, AccountAllowlistFollowsTheSwappedRootRule) {
  TempDir dir;
  UnixListener listener(Options(dir));
  PeerCredentials root{getpid(), 0, 0};
  AccountPolicy account{"relay@example.com", "relay", 0, {4242}, {}};
  ASSERT_FALSE(listener.AdmitAccount(root, account));
  listener.SetPolicy({{}, {}, true});
  EXPECT_TRUE(listener.AdmitAccount(root, account));
}

TEST(HelperListener, CallersDescriptorsPolledAndWakeStops) {
  TempDir dir;
  UnixListener listener(Options(dir));
  ASSERT_TRUE(listener.Open());
  int pipe_fds[2];
  ASSERT_EQ(pipe(pipe_fds), 0);
  ASSERT_EQ(write(pipe_fds[1], "x", 1), 1);

  pollfd extra[1] = {{pipe_fds[0], POLLIN, 0}};
  auto woken = listener.Wait(extra, 5000);
  ASSERT_TRUE(woken);
  EXPECT_EQ(*woken, Wakeup::kOther);
  EXPECT_NE(extra[0].revents & POLLIN, 0);

  listener.Wake();
  woken = listener.Wait(extra, 5000);
  ASSERT_TRUE(woken);
  EXPECT_EQ(*woken, Wakeup::kStop);
  close(pipe_fds[0]);
  close(pipe_fds[1]);
}

TEST(HelperListener, CloseUnlinksOnlyItsOwnSocket) {
  TempDir dir;
  std::string path = Options(dir).path;
  {
    UnixListener listener(Options(dir));
    ASSERT_TRUE(listener.Open());
    listener.Close();
    EXPECT_FALSE(std::filesystem::exists(path));
  }

  // A successor's socket at the path stays when the old listener closes.
  UnixListener old(Options(dir));
  ASSERT_TRUE(old.Open());
  ASSERT_EQ(unlink(path.c_str()), 0);
  BindDeadSocket(path);
  auto successor = FileId(path);
  old.Close();
  EXPECT_EQ(FileId(path), successor);
}

struct RecreateCase {
  const char* name;
  std::function<void(const std::string& path)> disturb;
  std::string event;   // what the listener logs
  std::string reason;  // its reason= field, for socket_recreated
};

class HelperListenerRecreate : public ::testing::TestWithParam<RecreateCase> {};

// The socket file is disturbed; within a few check intervals the listener
// logs the event and, when it recreated the socket, answers on the path
// again with the same modes, and Close() removes the new socket.
TEST_P(HelperListenerRecreate, NoticesAndRebinds) {
  const RecreateCase& c = GetParam();
  TempDir dir;
  LogCapture log;
  std::string path = Options(dir).path;
  UnixListener listener(Options(dir));
  ASSERT_TRUE(listener.Open());
  auto before = FileId(path);

  c.disturb(path);
  ASSERT_TRUE(WaitFor(listener, [&] { return log.Has({"event=" + c.event}); }))
      << c.name;
  if (c.event == "socket_recreate_failed") {
    EXPECT_TRUE(log.Has({"level=error event=socket_recreate_failed",
                         "socket=" + path, "is not a socket"}));
    ASSERT_TRUE(listener.Wait({}, 50));  // logged once, not per check
    ASSERT_TRUE(listener.Wait({}, 50));
    EXPECT_EQ(log.Lines().size(), 1u);
    return;
  }
  EXPECT_TRUE(
      log.Has({"level=warn event=socket_recreated", "socket=" + path,
               "reason=" + c.reason, "socket_mode=0666", "dir_mode=0755"}));
  EXPECT_NE(FileId(path), before);
  auto client = ConnectUnix(path);
  ASSERT_TRUE(client) << client.error();
  close(*client);
  listener.Close();
  EXPECT_FALSE(std::filesystem::exists(path));
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperListenerRecreate,
    ::testing::Values(
        RecreateCase{"DirectoryRemoved",
                     [](const std::string& path) {
                       std::filesystem::remove_all(
                           std::filesystem::path(path).parent_path());
                     },
                     "socket_recreated", "missing"},
        RecreateCase{"SocketUnlinked",
                     [](const std::string& path) { unlink(path.c_str()); },
                     "socket_recreated", "missing"},
        RecreateCase{"ReplacedByDeadSocket",
                     [](const std::string& path) {
                       unlink(path.c_str());
                       BindDeadSocket(path);
                     },
                     "socket_recreated", "replaced"},
        RecreateCase{"ReplacedByFile",
                     [](const std::string& path) {
                       unlink(path.c_str());
                       FILE* file = std::fopen(path.c_str(), "w");
                       std::fclose(file);
                     },
                     "socket_recreate_failed", ""}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace xoauth2::helper
