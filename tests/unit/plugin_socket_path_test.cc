// SPDX-License-Identifier: MIT
//
// Unit tests of the plugin's chroot-aware socket path resolution
// (sasl-plugin/socket_path.h): path checks and ancestor lists, the pure
// resolution table (recorded ancestors + identity of "/" -> path), and the
// real thing: a forked child chroot(2)s into a temporary jail, as Postfix
// smtp(8) does, and must find and connect to the socket (field report
// F01), or be told the socket is outside its jail. The chroot tests need
// root and are skipped otherwise.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "socket_path.h"

namespace xoauth2::plugin {
namespace {

struct NormalizeCase {
  std::string_view input;
  std::string_view output;  // empty: refused
};

class Normalize : public ::testing::TestWithParam<NormalizeCase> {};

TEST_P(Normalize, CollapsesSlashesAndRefusesBadPaths) {
  auto result = NormalizeSocketPath(GetParam().input);
  if (GetParam().output.empty()) {
    EXPECT_FALSE(result.has_value()) << *result;
  } else {
    ASSERT_TRUE(result.has_value()) << result.error();
    EXPECT_EQ(*result, GetParam().output);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Normalize,
    ::testing::Values(
        NormalizeCase{"/var/spool/postfix/xoauth2-relay/token.sock",
                      "/var/spool/postfix/xoauth2-relay/token.sock"},
        NormalizeCase{"//run///token.sock/", "/run/token.sock"},
        NormalizeCase{"/token.sock", "/token.sock"},
        NormalizeCase{"token.sock", ""}, NormalizeCase{"", ""},
        NormalizeCase{"/", ""}, NormalizeCase{"/a/./token.sock", ""},
        NormalizeCase{"/a/../token.sock", ""}));

TEST(AncestorDirs, ListsEveryDirectoryFromTheRootDown) {
  EXPECT_EQ(
      AncestorDirs("/var/spool/postfix/xoauth2-relay/token.sock"),
      (std::vector<std::string>{"/", "/var", "/var/spool", "/var/spool/postfix",
                                "/var/spool/postfix/xoauth2-relay"}));
  EXPECT_EQ(AncestorDirs("/token.sock"), (std::vector<std::string>{"/"}));
}

// Recorded identities of a Debian-like layout; postfix is its own mount.
const std::vector<Ancestor> kAncestors = {
    {"/", {1, 2}},
    {"/var", {1, 30}},
    {"/var/spool", {1, 40}},
    {"/var/spool/postfix", {7, 2}},
    {"/var/spool/postfix/xoauth2-relay", {7, 90}},
};
constexpr std::string_view kPath =
    "/var/spool/postfix/xoauth2-relay/token.sock";

struct ResolveCase {
  FileId root;
  std::string_view expected;  // empty: outside the jail
};

class Resolve : public ::testing::TestWithParam<ResolveCase> {};

TEST_P(Resolve, StripsTheAncestorThatBecameTheRoot) {
  auto result = ResolveForRoot(kPath, kAncestors, GetParam().root);
  if (GetParam().expected.empty()) {
    ASSERT_FALSE(result.has_value()) << *result;
    EXPECT_NE(result.error().find("outside the MTA's chroot"),
              std::string::npos);
    EXPECT_NE(result.error().find("chroot=n"), std::string::npos);
    EXPECT_NE(result.error().find(kPath), std::string::npos);
  } else {
    ASSERT_TRUE(result.has_value()) << result.error();
    EXPECT_EQ(*result, GetParam().expected);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Resolve,
    ::testing::Values(
        ResolveCase{{1, 2}, kPath},                        // not chrooted
        ResolveCase{{7, 2}, "/xoauth2-relay/token.sock"},  // Debian default
        ResolveCase{{7, 90}, "/token.sock"},
        ResolveCase{{1, 40}, "/postfix/xoauth2-relay/token.sock"},
        ResolveCase{{1, 30}, "/spool/postfix/xoauth2-relay/token.sock"},
        ResolveCase{{7, 3}, ""},    // same device, other directory
        ResolveCase{{2, 2}, ""}));  // same inode, other device

TEST(Resolve, MissingAncestorsAreOutside) {
  std::vector<Ancestor> only_root = {{"/", {1, 2}}};
  EXPECT_FALSE(ResolveForRoot(kPath, only_root, {7, 2}).has_value());
  EXPECT_FALSE(ResolveForRoot(kPath, {}, {1, 2}).has_value());
}

TEST(Resolve, UnchrootedProcessUsesThePathAsIs) {
  std::string path = "/tmp/xoauth2-none/token.sock";
  auto result = ResolveForCurrentRoot(path, RecordAncestors(path));

  ASSERT_TRUE(result.has_value()) << result.error();
  EXPECT_EQ(*result, path);
}

// A temporary directory tree, removed at the end of the test.
class ChrootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0)
      GTEST_SKIP() << "chroot(2) needs root";
    char tmpl[] = "/tmp/xoauth2-chroot-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    std::filesystem::create_directories(base_ / "jail/xoauth2-relay");
    std::filesystem::create_directories(base_ / "elsewhere");
    socket_path_ = (base_ / "jail/xoauth2-relay/token.sock").string();
  }
  void TearDown() override {
    if (listen_fd_ >= 0)
      close(listen_fd_);
    if (!base_.empty())
      std::filesystem::remove_all(base_);
  }

  // Listens on the socket so that a connect from the jail can succeed.
  void Listen() {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, socket_path_.c_str(),
                 sizeof(addr.sun_path) - 1);
    ASSERT_EQ(
        bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(listen(listen_fd_, 4), 0);
  }

  // Forks a child that chroots into `jail`, resolves the socket path with
  // the ancestors recorded here (before the chroot) and runs `check` on
  // the result; returns the child's exit status.
  template <typename Check>
  int InChroot(const std::filesystem::path& jail, Check check) {
    std::vector<Ancestor> ancestors = RecordAncestors(socket_path_);
    pid_t pid = fork();
    if (pid == 0) {
      if (chroot(jail.c_str()) != 0 || chdir("/") != 0)
        _exit(90);
      _exit(check(ResolveForCurrentRoot(socket_path_, ancestors)));
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
  }

  std::filesystem::path base_;
  std::string socket_path_;
  int listen_fd_ = -1;
};

// Connects to `path` from the current root; true on success.
bool CanConnect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

TEST_F(ChrootTest, FindsTheSocketFromInsideTheJail) {
  Listen();
  int status = InChroot(base_ / "jail", [](const auto& resolved) {
    if (!resolved)
      return 1;
    if (*resolved != "/xoauth2-relay/token.sock")
      return 2;
    return CanConnect(*resolved) ? 0 : 3;
  });

  EXPECT_EQ(status, 0) << "1: not resolved, 2: wrong path, 3: no connect";
}

TEST_F(ChrootTest, JailAtTheSocketDirectory) {
  Listen();
  int status = InChroot(base_ / "jail/xoauth2-relay", [](const auto& resolved) {
    if (!resolved)
      return 1;
    if (*resolved != "/token.sock")
      return 2;
    return CanConnect(*resolved) ? 0 : 3;
  });

  EXPECT_EQ(status, 0) << "1: not resolved, 2: wrong path, 3: no connect";
}

TEST_F(ChrootTest, ReportsASocketOutsideTheJail) {
  int status = InChroot(base_ / "elsewhere", [](const auto& resolved) {
    if (resolved)
      return 1;
    bool names_fix = resolved.error().find("chroot=n") != std::string::npos &&
                     resolved.error().find("outside") != std::string::npos;
    return names_fix ? 0 : 2;
  });

  EXPECT_EQ(status, 0) << "1: resolved anyway, 2: message lacks the fix";
}

}  // namespace
}  // namespace xoauth2::plugin
