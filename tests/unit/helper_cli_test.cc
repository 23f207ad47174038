// SPDX-License-Identifier: MIT
//
// Tests of the token-helper binary's command line: exit codes (0 ok,
// 2 usage, 3 bad configuration), `check` output naming the absolute path,
// F03 (a missing comma stops `run` with file, line and column), `--help`
// showing the default path (F20), and `run` ending with exit 0 and the
// socket removed on SIGTERM. Children are always reaped.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "helper_test_util.h"

namespace xoauth2::helper {
namespace {

using testing::TempDir;
using testing::WaitUntil;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Starts the binary with `args`; its pid and the read end of its output.
pid_t Spawn(const std::vector<std::string>& args, int& output_fd) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[0]);
    std::vector<char*> argv;
    std::string binary = XOAUTH2_HELPER_BINARY;
    argv.push_back(binary.data());
    std::vector<std::string> copy = args;
    for (std::string& arg : copy)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  output_fd = fds[0];
  return pid;
}

// Reads everything the child wrote and reaps it.
Outcome Finish(pid_t pid, int output_fd) {
  Outcome outcome;
  char buffer[4096];
  ssize_t n;
  while ((n = read(output_fd, buffer, sizeof buffer)) > 0) {
    outcome.output.append(buffer, static_cast<std::size_t>(n));
  }
  close(output_fd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status))
    outcome.exit_code = WEXITSTATUS(status);
  return outcome;
}

Outcome RunHelper(const std::vector<std::string>& args) {
  int fd = -1;
  pid_t pid = Spawn(args, fd);
  return Finish(pid, fd);
}

std::string ValidConfig(const std::string& dir) {
  return R"({"socket": ")" + dir + R"(/run/token.sock",
  "allowed_users": ["root"],
  "request_timeout_seconds": 1,
  "accounts": [{"mailbox": "relay@example.com", "tenant": "t",
    "authority": "https://127.0.0.1:1", "client_id": "c",
    "grant": "client_credentials", "client_secret": "x"}]})";
}

TEST(HelperCli, HelpShowsDefaultConfigPath) {
  Outcome outcome = RunHelper({"--help"});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_NE(outcome.output.find(XOAUTH2_DEFAULT_CONFIG), std::string::npos)
      << outcome.output;
}

TEST(HelperCli, UsageErrorExits2) {
  EXPECT_EQ(RunHelper({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunHelper({}).exit_code, 2);
  EXPECT_EQ(RunHelper({"token"}).exit_code, 2);
}

TEST(HelperCli, CheckValidConfig) {
  TempDir dir;
  std::string file = dir.Write("config.json", ValidConfig(dir.path()));
  Outcome outcome = RunHelper({"--config", file, "check"});
  EXPECT_EQ(outcome.exit_code, 0);
  EXPECT_TRUE(outcome.output.starts_with("configuration OK: " + file +
                                         " (1 accounts)\n"))
      << outcome.output;
}

// F03: `check` and `run` both refuse with file, line and column.
TEST(HelperCli, F03MissingCommaRefusedWithPosition) {
  TempDir dir;
  std::string text = ValidConfig(dir.path());
  text.erase(text.find(",\n  \"allowed_users\""), 1);
  std::string file = dir.Write("config.json", text);

  Outcome check = RunHelper({"--config", file, "check"});
  EXPECT_EQ(check.exit_code, 3);
  EXPECT_TRUE(check.output.starts_with(file + ":2:3: syntax error: "))
      << check.output;

  Outcome run = RunHelper({"-c", file, "run"});
  EXPECT_EQ(run.exit_code, 3);
  EXPECT_NE(run.output.find("level=error event=config_invalid"),
            std::string::npos);
  EXPECT_NE(run.output.find(file + ":2:3: syntax error"), std::string::npos)
      << run.output;
}

TEST(HelperCli, RunStopsOnSigtermAndRemovesSocket) {
  TempDir dir;
  std::string file = dir.Write("config.json", ValidConfig(dir.path()));
  std::string socket_path = dir.path() + "/run/token.sock";
  int fd = -1;
  pid_t pid = Spawn({"--config", file, "run"}, fd);
  ASSERT_GT(pid, 0);

  struct stat info {};
  bool listening =
      WaitUntil([&] { return stat(socket_path.c_str(), &info) == 0; });
  kill(pid, SIGTERM);
  Outcome outcome = Finish(pid, fd);
  ASSERT_TRUE(listening) << outcome.output;
  EXPECT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(stat(socket_path.c_str(), &info), 0);
  EXPECT_NE(outcome.output.find("event=helper_stopped"), std::string::npos);
}

}  // namespace
}  // namespace xoauth2::helper
