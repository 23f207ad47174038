// SPDX-License-Identifier: MIT
//
// Tests of the token-helper binary's command line: exit codes (0 ok,
// 2 usage, 3 bad configuration), `check` output naming the absolute path
// and each account's credential kind without any secret, `authorize`
// refusing accounts it cannot sign in and failing cleanly (exit 1) when
// the endpoint is unreachable,
// F03 (a missing comma stops `run` with file, line and column), `--help`
// showing the default path (F20), `status` asking a running helper, and
// `run` ending with exit 0 and the socket removed on SIGTERM, `check`
// refusing a secret others may read (exit 3), `status` and `token`
// working without reading any secret, and (only when the tests run as
// root) the whole helper running as the unprivileged user nobody; `check`
// showing the sender guard, and `token` refusing a malformed mailbox
// before sending anything.
// Children are always reaped.

#include <grp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "helper_test_keys.h"
#include "helper_test_util.h"
#include "socket_client.h"

namespace xoauth2::helper {
namespace {

using testing::TempDir;
using testing::WaitUntil;

struct Outcome {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

constexpr uid_t kSameUser = static_cast<uid_t>(-1);
constexpr uid_t kNobody = 65534;

// Starts the binary with `args` (as `uid`, with the same number as group,
// unless kSameUser); its pid and the read end of its output.
pid_t Spawn(const std::vector<std::string>& args, int& output_fd,
            uid_t uid = kSameUser) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  pid_t pid = fork();
  if (pid == 0) {
    if (uid != kSameUser &&
        (setgroups(0, nullptr) != 0 || setgid(uid) != 0 || setuid(uid) != 0)) {
      _exit(126);
    }
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

Outcome RunHelper(const std::vector<std::string>& args, uid_t uid = kSameUser) {
  int fd = -1;
  pid_t pid = Spawn(args, fd, uid);
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
                                         " (1 account)\n"))
      << outcome.output;
}

// `check` refuses a socket folder that `run` would refuse.
TEST(HelperCli, CheckRefusesOpenSocketFolder) {
  TempDir dir;
  std::string file = dir.Write("config.json", ValidConfig(dir.path()));
  std::string run = dir.path() + "/run";
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  chmod(run.c_str(), 0777);
  Outcome outcome = RunHelper({"--config", file, "check"});
  EXPECT_EQ(outcome.exit_code, 3);
  EXPECT_NE(outcome.output.find(file + ": socket: the socket directory " + run +
                                " has mode 0777"),
            std::string::npos)
      << outcome.output;
}

// `check` shows how each account authenticates, never a secret or key.
TEST(HelperCli, CheckShowsCredentialKind) {
  TempDir dir;
  const testing::TestKeys& keys = MakeTestKeys(testing::KeyKind::kRsa2048);
  std::string cert = dir.Write("c.pem", keys.certificate_pem);
  std::string key = dir.Write("k.pem", keys.key_pem);
  std::string refresh = dir.Write("r.refresh", "0.AR-refresh-value");
  std::string file = dir.Write(
      "config.json", R"({"accounts": [
    {"name": "a", "mailbox": "a@example.com", "tenant": "t", "client_id": "c",
     "grant": "client_credentials", "client_secret": "s3cr3t-value"},
    {"name": "b", "mailbox": "b@example.com", "tenant": "t", "client_id": "c",
     "grant": "client_credentials", "certificate_file": ")" +
                         cert + R"(", "private_key_file": ")" + key + R"("},
    {"name": "c", "mailbox": "c@example.com", "tenant": "organizations",
     "client_id": "c", "grant": "refresh_token",
     "refresh_token_file": ")" +
                         refresh + R"("}]})");
  Outcome outcome = RunHelper({"--config", file, "check"});
  ASSERT_EQ(outcome.exit_code, 0) << outcome.output;
  EXPECT_NE(outcome.output.find("a: mailbox=a@example.com "
                                "grant=client_credentials credential=secret "
                                "token_url="),
            std::string::npos)
      << outcome.output;
  EXPECT_NE(outcome.output.find("b: mailbox=b@example.com "
                                "grant=client_credentials "
                                "credential=certificate assertion_alg=PS256 "
                                "certificate_thumbprint="),
            std::string::npos)
      << outcome.output;
  EXPECT_NE(outcome.output.find("c: mailbox=c@example.com "
                                "grant=refresh_token credential=public "),
            std::string::npos)
      << outcome.output;
  EXPECT_EQ(outcome.output.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(outcome.output.find("refresh-value"), std::string::npos);
  EXPECT_EQ(outcome.output.find(keys.key_pem.substr(40, 40)),
            std::string::npos);
}

// `check` lists each account's send_as and the sender guard's socket, and
// only warns (exit 0) when that socket's folder does not exist.
TEST(HelperCli, CheckShowsSenderGuard) {
  TempDir dir;
  auto config = [&](const std::string& milter_socket) {
    return R"({"socket": ")" + dir.path() + R"(/token.sock",
      "sender_guard": {"socket": ")" +
           milter_socket + R"("},
      "accounts": [
        {"name": "a", "mailbox": "a@example.com", "tenant": "t",
         "client_id": "c", "grant": "client_credentials",
         "client_secret": "x", "send_as": ["b@example.com", "c@example.org"]},
        {"name": "d", "mailbox": "d@example.com", "tenant": "t",
         "client_id": "c", "grant": "client_credentials",
         "client_secret": "x"}]})";
  };
  std::string there = dir.path() + "/milter.sock";
  std::string missing = dir.path() + "/missing/milter.sock";
  Outcome ok =
      RunHelper({"-c", dir.Write("there.json", config(there)), "check"});
  Outcome warned =
      RunHelper({"-c", dir.Write("missing.json", config(missing)), "check"});

  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("scope=\"https://outlook.office365.com/.default\" "
                           "send_as=b@example.com,c@example.org\n"),
            std::string::npos)
      << ok.output;
  EXPECT_NE(ok.output.find("d: mailbox=d@example.com"), std::string::npos);
  EXPECT_NE(ok.output.find(" send_as=none\n"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("sender guard: socket=" + there + "\n"),
            std::string::npos)
      << ok.output;
  EXPECT_EQ(ok.output.find("warning"), std::string::npos) << ok.output;
  EXPECT_EQ(warned.exit_code, 0) << warned.output;

  // Beside a token socket whose folder is missing too: `run` makes it.
  std::string beside = dir.path() + "/missing/token.sock";
  std::string text = config(missing);
  text.replace(text.find(dir.path() + "/token.sock"),
               (dir.path() + "/token.sock").size(), beside);
  Outcome quiet = RunHelper({"-c", dir.Write("beside.json", text), "check"});
  EXPECT_EQ(quiet.exit_code, 0) << quiet.output;
  EXPECT_EQ(quiet.output.find("warning"), std::string::npos) << quiet.output;
  EXPECT_NE(warned.output.find("warning: " + dir.path() +
                               "/missing.json: sender_guard.socket is " +
                               missing + ", but its folder " + dir.path() +
                               "/missing/ does not exist; create it"),
            std::string::npos)
      << warned.output;
}

// A listening Unix socket that never accepts, to see whether anyone
// connected; closed and removed with the directory.
class SilentListener {
 public:
  explicit SilentListener(const std::string& path)
      : fd_(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    path.copy(address.sun_path, sizeof address.sun_path - 1);
    ok_ =
        fd_ >= 0 &&
        bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
        listen(fd_, 8) == 0;
  }
  ~SilentListener() {
    if (fd_ >= 0)
      close(fd_);
  }
  bool ok() const { return ok_; }

  // True when a client connected (a connection waits in the backlog).
  bool Connected() const {
    int client = accept(fd_, nullptr, nullptr);
    if (client < 0)
      return false;
    close(client);
    return true;
  }

 private:
  int fd_;
  bool ok_ = false;
};

// `token MAILBOX` refuses, as a usage error and before connecting, a
// mailbox the protocol cannot carry; a line break would otherwise put a
// second request on the socket.
TEST(HelperCli, TokenRefusesMalformedMailboxBeforeSending) {
  TempDir dir;
  std::string socket_path = dir.path() + "/token.sock";
  SilentListener listener(socket_path);
  ASSERT_TRUE(listener.ok());
  for (const char* mailbox :
       {"relay@example.com\nv1 token other@example.com", "relay",
        "relay @example.com", "a@b@example.com", "relay@example.com\r"}) {
    Outcome outcome = RunHelper({"token", "--socket", socket_path, mailbox});
    EXPECT_EQ(outcome.exit_code, 2) << mailbox << ": " << outcome.output;
    EXPECT_NE(outcome.output.find("token-helper token: MAILBOX must be one "
                                  "address like relay@example.com"),
              std::string::npos)
        << outcome.output;
    EXPECT_FALSE(listener.Connected()) << mailbox;
  }

  // The library call refuses it too, without connecting.
  auto answer =
      AskHelper(socket_path, {protocol::Verb::kToken, "a\nb@example.com", {}},
                std::chrono::seconds(1));
  ASSERT_FALSE(answer);
  EXPECT_NE(answer.error().find("not sent"), std::string::npos)
      << answer.error();
  EXPECT_FALSE(listener.Connected());
}

// `authorize` refuses unknown and app-only accounts (usage, exit 2) and
// needs no refresh token file yet; an unreachable endpoint is exit 1.
TEST(HelperCli, AuthorizeExitCodes) {
  TempDir dir;
  std::string file = dir.Write("config.json", R"({"accounts": [
    {"name": "app", "mailbox": "a@example.com", "tenant": "t",
     "client_id": "c", "grant": "client_credentials", "client_secret": "x"},
    {"name": "user", "mailbox": "u@example.com", "tenant": "organizations",
     "authority": "https://127.0.0.1:1", "client_id": "c",
     "grant": "refresh_token",
     "refresh_token_file": ")" + dir.path() + R"(/u.refresh"}]})");

  Outcome unknown = RunHelper({"--config", file, "authorize", "nobody"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.output.find(file + ": no account with grant "
                                       "refresh_token is named nobody"),
            std::string::npos)
      << unknown.output;
  EXPECT_EQ(RunHelper({"--config", file, "authorize", "app"}).exit_code, 2);
  EXPECT_EQ(RunHelper({"--config", file, "authorize"}).exit_code, 2);

  Outcome unreachable =
      RunHelper({"--config", file, "authorize", "U@example.com"});
  EXPECT_EQ(unreachable.exit_code, 1) << unreachable.output;
  EXPECT_NE(unreachable.output.find("token-helper: cannot connect to "
                                    "https://127.0.0.1:1/organizations/"
                                    "oauth2/v2.0/devicecode"),
            std::string::npos)
      << unreachable.output;

  Outcome check = RunHelper({"--config", file, "check"});
  EXPECT_EQ(check.exit_code, 3);
  EXPECT_NE(check.output.find("token-helper authorize user"), std::string::npos)
      << check.output;
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

// An inline secret whose closing quote is missing: `check` and `run`
// name the place and the fix but print none of the file's text.
TEST(HelperCli, SyntaxErrorQuotesNoSecret) {
  TempDir dir;
  std::string text = ValidConfig(dir.path());
  text.replace(text.find(R"("client_secret": "x")"),
               std::string(R"("client_secret": "x")").size(),
               "\"client_secret\": \"Xy7~Q8.abc+/=def_SECRET\n");
  std::string file = dir.Write("config.json", text);

  for (const char* command : {"check", "run"}) {
    Outcome outcome = RunHelper({"--config", file, command});
    EXPECT_EQ(outcome.exit_code, 3) << outcome.output;
    EXPECT_NE(outcome.output.find(file + ":6:"), std::string::npos)
        << outcome.output;
    EXPECT_NE(outcome.output.find("closing quote"), std::string::npos)
        << outcome.output;
    EXPECT_EQ(outcome.output.find("SECRET"), std::string::npos)
        << outcome.output;
    EXPECT_EQ(outcome.output.find("Xy7"), std::string::npos) << outcome.output;
  }
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

// `status` and `status --json` ask the running helper over its socket;
// the unreachable endpoint shows as a temporary failure, retried.
TEST(HelperCli, StatusAsksTheRunningHelper) {
  TempDir dir;
  std::string file = dir.Write("config.json", ValidConfig(dir.path()));
  EXPECT_EQ(RunHelper({"--config", file, "status"}).exit_code, 1);
  int fd = -1;
  pid_t pid = Spawn({"--config", file, "run"}, fd);
  ASSERT_GT(pid, 0);

  Outcome table;
  bool retrying = WaitUntil([&] {
    table = RunHelper({"--config", file, "status"});
    return table.output.find("retrying") != std::string::npos;
  });
  Outcome json = RunHelper({"--config", file, "status", "--json"});
  kill(pid, SIGTERM);
  Finish(pid, fd);

  ASSERT_TRUE(retrying) << table.output;
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_TRUE(table.output.starts_with("ACCOUNT ")) << table.output;
  EXPECT_NE(table.output.find("relay@example.com  relay@example.com  "
                              "retrying"),
            std::string::npos)
      << table.output;
  EXPECT_NE(table.output.find("temporary: cannot connect to"),
            std::string::npos);
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_TRUE(json.output.starts_with(R"({"accounts":[{"aadsts":"")"))
      << json.output;
  EXPECT_NE(json.output.find(R"("state":"retrying")"), std::string::npos);
}

// A configuration whose secret sits in `secret` (a client_secret_file).
std::string SecretFileConfig(const std::string& dir, const std::string& secret,
                             const std::string& users) {
  return R"({"socket": ")" + dir + R"(/run/token.sock",
  "allowed_users": [)" +
         users +
         R"(], "request_timeout_seconds": 1,
  "accounts": [{"mailbox": "relay@example.com", "tenant": "t",
    "authority": "https://127.0.0.1:1", "client_id": "c",
    "grant": "client_credentials", "client_secret_file": ")" +
         secret + R"("}]})";
}

// `check` and `run` refuse a secret file others may read, naming the fix;
// `status` reads no secret, so it still works against a running helper.
TEST(HelperCli, SecretReadableByOthersRefusedStatusUnaffected) {
  TempDir dir;
  std::string secret = dir.Write("relay.secret", "s3cr3t-value");
  std::string file = dir.Write(
      "config.json", SecretFileConfig(dir.path(), secret, R"("root")"), 0644);
  int fd = -1;
  pid_t pid = Spawn({"--config", file, "run"}, fd);
  ASSERT_GT(pid, 0);
  std::string socket_path = dir.path() + "/run/token.sock";
  struct stat info {};
  bool listening =
      WaitUntil([&] { return stat(socket_path.c_str(), &info) == 0; });

  chmod(secret.c_str(), 0644);
  Outcome check = RunHelper({"--config", file, "check"});
  Outcome status = RunHelper({"--config", file, "status", "--json"});
  Outcome token = RunHelper({"--config", file, "token", "relay@example.com"});
  kill(pid, SIGTERM);
  Outcome run = Finish(pid, fd);

  ASSERT_TRUE(listening) << run.output;
  EXPECT_NE(run.output.find("socket_mode=0666 dir_mode=0755"),
            std::string::npos)
      << run.output;
  EXPECT_EQ(check.exit_code, 3);
  EXPECT_NE(check.output.find(secret + " holds a secret but has mode 0644"),
            std::string::npos)
      << check.output;
  EXPECT_NE(check.output.find("fix: chmod 0600 " + secret), std::string::npos);
  EXPECT_EQ(check.output.find("s3cr3t"), std::string::npos);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  // The endpoint is unreachable: the helper answers, with no token.
  EXPECT_EQ(token.exit_code, 1);
  EXPECT_NE(token.output.find("the helper answered: err unavailable"),
            std::string::npos)
      << token.output;
  EXPECT_EQ(RunHelper({"-c", file, "run"}).exit_code, 3);
}

// The helper needs no root at run time: as nobody, with files owned by
// nobody, `check` and `run` work, and `status` works for nobody both
// through the configuration and, when that is unreadable, --socket.
TEST(HelperCli, RunsUnprivileged) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to switch to the user nobody";
  TempDir dir;
  std::string secret = dir.Write("relay.secret", "s3cr3t-value");
  std::string file = dir.Write(
      "config.json", SecretFileConfig(dir.path(), secret, R"("nobody")"));
  ASSERT_EQ(chown(dir.path().c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chown(secret.c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chown(file.c_str(), kNobody, kNobody), 0);

  Outcome check = RunHelper({"--config", file, "check"}, kNobody);
  ASSERT_EQ(check.exit_code, 0) << check.output;
  int fd = -1;
  pid_t pid = Spawn({"--config", file, "run"}, fd, kNobody);
  ASSERT_GT(pid, 0);
  std::string socket_path = dir.path() + "/run/token.sock";
  struct stat info {};
  bool listening =
      WaitUntil([&] { return stat(socket_path.c_str(), &info) == 0; });
  Outcome status = RunHelper({"--config", file, "status", "--json"}, kNobody);
  chmod(file.c_str(), 0600);
  ASSERT_EQ(chown(file.c_str(), 0, 0), 0);  // now only root may read it
  Outcome unreadable = RunHelper({"--config", file, "status"}, kNobody);
  Outcome by_socket =
      RunHelper({"--config", file, "status", "--socket", socket_path}, kNobody);
  kill(pid, SIGTERM);
  Outcome run = Finish(pid, fd);

  ASSERT_TRUE(listening) << run.output;
  EXPECT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("euid=65534"), std::string::npos) << run.output;
  EXPECT_EQ(info.st_uid, kNobody);
  EXPECT_EQ(status.exit_code, 0) << status.output;
  EXPECT_EQ(unreadable.exit_code, 3);
  EXPECT_NE(unreadable.output.find("pass --socket PATH"), std::string::npos)
      << unreadable.output;
  EXPECT_EQ(by_socket.exit_code, 0) << by_socket.output;
}

}  // namespace
}  // namespace xoauth2::helper
