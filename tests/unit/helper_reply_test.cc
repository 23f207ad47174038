// SPDX-License-Identifier: MIT
//
// Unit tests of the reply feedback path (F09, F10): netstring framing
// (netstring.h, table-driven, including truncated, over-long, bad length
// digits and a missing comma), SMTP reply classification and status
// extraction (reply_watcher.h, tables of Office 365 replies), the pid ->
// token correlation (expiry, bounded size), ReplyWatcher's actions and log
// lines (never a token), the token socket's on_served report, and the
// reply socket (reply_server.h) over a temporary Unix socket: persistent
// connections, framing split across writes, refused peers, bad framing,
// idle connections closed, and the reply socket (alone and beside the
// token socket) bound again after its directory is removed. Waiting is
// polling with a deadline, never a sleep.

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "helper_test_util.h"
#include "netstring.h"
#include "reply_server.h"
#include "reply_watcher.h"
#include "socket_client.h"
#include "socket_server.h"

namespace xoauth2::helper {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::LogCapture;
using testing::TempDir;
using testing::WaitUntil;

constexpr std::string_view kToken = "eyJ0eXAi.TEST.SIG";
constexpr std::string_view kMailbox = "relay@example.com";

// ---- netstrings ----

struct NetstringCase {
  const char* name;
  std::string input;
  NetstringStatus status;
  std::string payload;   // kComplete
  std::size_t consumed;  // kComplete
};

class NetstringTable : public ::testing::TestWithParam<NetstringCase> {};

TEST_P(NetstringTable, Parses) {
  const NetstringCase& c = GetParam();
  NetstringParse parsed = ParseNetstring(c.input, 16);
  EXPECT_EQ(parsed.status, c.status);
  if (c.status == NetstringStatus::kComplete) {
    EXPECT_EQ(parsed.payload, c.payload);
    EXPECT_EQ(parsed.consumed, c.consumed);
  }
  if (c.status == NetstringStatus::kInvalid) {
    EXPECT_FALSE(parsed.error.empty());
  }
}

using enum NetstringStatus;
INSTANTIATE_TEST_SUITE_P(
    Cases, NetstringTable,
    ::testing::Values(
        NetstringCase{"Valid", "5:hello,", kComplete, "hello", 8},
        NetstringCase{"Empty", "0:,", kComplete, "", 3},
        NetstringCase{"AtLimit", "16:0123456789abcdef,", kComplete,
                      "0123456789abcdef", 20},
        NetstringCase{"FollowedByMore", "3:abc,2:de,", kComplete, "abc", 6},
        NetstringCase{"BinaryPayload", std::string("3:a\0b,", 6), kComplete,
                      std::string("a\0b", 3), 6},
        NetstringCase{"NothingYet", "", kIncomplete, "", 0},
        NetstringCase{"LengthOnly", "12", kIncomplete, "", 0},
        NetstringCase{"TruncatedPayload", "5:hel", kIncomplete, "", 0},
        NetstringCase{"NoCommaYet", "5:hello", kIncomplete, "", 0},
        NetstringCase{"OverLimit", "17:", kInvalid, "", 0},
        NetstringCase{"OverLimitDigitsOnly", "170", kInvalid, "", 0},
        NetstringCase{"HugeLength", "99999999999999999999999:", kInvalid, "",
                      0},
        NetstringCase{"LetterInLength", "5x:hello,", kInvalid, "", 0},
        NetstringCase{"NoLength", ":hello,", kInvalid, "", 0},
        NetstringCase{"SignInLength", "-5:hello,", kInvalid, "", 0},
        NetstringCase{"LeadingZero", "05:hello,", kInvalid, "", 0},
        NetstringCase{"MissingComma", "5:helloX", kInvalid, "", 0},
        NetstringCase{"ShortPayload", "5:hey,xy", kInvalid, "", 0}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(Netstring, FormatRoundTrips) {
  EXPECT_EQ(FormatNetstring("NOTFOUND "), "9:NOTFOUND ,");
  EXPECT_EQ(FormatNetstring(""), "0:,");
  std::string framed = FormatNetstring("xoauth2 535 5.7.3 x");
  NetstringParse parsed = ParseNetstring(framed, 4096);
  ASSERT_EQ(parsed.status, NetstringStatus::kComplete);
  EXPECT_EQ(parsed.payload, "xoauth2 535 5.7.3 x");
  EXPECT_EQ(parsed.consumed, framed.size());
}

// ---- reply classification ----

struct ReplyCase {
  const char* name;
  std::string line;
  ReplyKind kind;
  std::string status;
};

class ReplyTable : public ::testing::TestWithParam<ReplyCase> {};

TEST_P(ReplyTable, Classifies) {
  const ReplyCase& c = GetParam();
  EXPECT_EQ(ClassifyReply(c.line), c.kind) << c.line;
  EXPECT_EQ(ReplyStatus(c.line), c.status) << c.line;
}

INSTANTIATE_TEST_SUITE_P(
    Office365, ReplyTable,
    ::testing::Values(
        ReplyCase{"Accepted", "235 2.7.0 Authentication successful",
                  ReplyKind::kAccepted, "235 2.7.0"},
        ReplyCase{"TokenRefused",
                  "535 5.7.3 Authentication unsuccessful "
                  "[LO2P224CA0001.outlook.office365.com]",
                  ReplyKind::kTokenRefused, "535 5.7.3"},
        ReplyCase{"Plain535", "535 Authentication failed",
                  ReplyKind::kTokenRefused, "535"},
        ReplyCase{"Multiline535", "535-5.7.3 Authentication unsuccessful",
                  ReplyKind::kTokenRefused, "535 5.7.3"},
        ReplyCase{"TenantDisabled",
                  "535 5.7.139 Authentication unsuccessful, "
                  "SmtpClientAuthentication is disabled for the Tenant. "
                  "Visit https://aka.ms/smtp_auth_disabled for more "
                  "information.",
                  ReplyKind::kAuthDisabled, "535 5.7.139"},
        ReplyCase{"MailboxDisabledLowerCase",
                  "535 5.7.139 authentication unsuccessful, "
                  "smtpclientauthentication is disabled for the mailbox",
                  ReplyKind::kAuthDisabled, "535 5.7.139"},
        ReplyCase{"SecurityDefaults",
                  "535 5.7.139 Authentication unsuccessful, the "
                  "organization configuration doesn't allow this "
                  "authentication request",
                  ReplyKind::kSecurityDefaults, "535 5.7.139"},
        ReplyCase{"OtherPolicy",
                  "535 5.7.139 Authentication unsuccessful, the request "
                  "did not meet the criteria",
                  ReplyKind::kPolicyRefused, "535 5.7.139"},
        ReplyCase{"ExpiresSoon",
                  "501 5.5.127 Invalid XOAUTH2 auth data - Token will "
                  "expire soon",
                  ReplyKind::kExpiresSoon, "501 5.5.127"},
        ReplyCase{"HveNotAnAccount",
                  "501 5.5.124 Invalid XOAUTH2 auth data - User address "
                  "provided is not valid",
                  ReplyKind::kOther, "501 5.5.124"},
        ReplyCase{"Challenge",
                  "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIn0=",
                  ReplyKind::kChallenge, "334"},
        ReplyCase{"BasicAuth",
                  "550 5.7.30 Basic authentication is not supported for "
                  "Client Submission",
                  ReplyKind::kOther, "550 5.7.30"},
        ReplyCase{"TooManyConnections",
                  "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit "
                  "exceeded",
                  ReplyKind::kOther, "432 4.3.2"},
        ReplyCase{"EhloLine", "250-AUTH LOGIN XOAUTH2", ReplyKind::kOther,
                  "250"},
        ReplyCase{"CodeOnly", "535", ReplyKind::kTokenRefused, "535"},
        ReplyCase{"NotACode", "5355 nonsense", ReplyKind::kOther, "535"},
        ReplyCase{"Empty", "", ReplyKind::kOther, ""}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// ---- pid correlation ----

TEST(ServedTokens, EntriesExpireAfterTheWindow) {
  ServedTokens served(seconds(120), 8);
  SteadyTime t0 = std::chrono::steady_clock::now();
  served.Record(42, std::string(kMailbox), Secret(std::string(kToken)), t0);
  ASSERT_NE(served.Find(42, t0 + seconds(120)), nullptr);
  EXPECT_EQ(served.Find(42, t0 + seconds(120))->mailbox, kMailbox);
  EXPECT_EQ(served.Find(42, t0 + seconds(121)), nullptr);
  EXPECT_EQ(served.Find(43, t0), nullptr);
}

TEST(ServedTokens, BoundedSizeDropsTheOldest) {
  ServedTokens served(seconds(120), 2);
  SteadyTime t0 = std::chrono::steady_clock::now();
  served.Record(1, "a@x.test", Secret("t1"), t0);
  served.Record(2, "b@x.test", Secret("t2"), t0 + seconds(1));
  served.Record(2, "b@x.test", Secret("t2b"), t0 + seconds(2));  // same pid
  EXPECT_EQ(served.size(), 2u);
  served.Record(3, "c@x.test", Secret("t3"), t0 + seconds(3));
  EXPECT_EQ(served.size(), 2u);
  EXPECT_EQ(served.Find(1, t0 + seconds(3)), nullptr);
  ASSERT_NE(served.Find(2, t0 + seconds(3)), nullptr);
  EXPECT_EQ(served.Find(2, t0 + seconds(3))->token.Reveal(), "t2b");
  EXPECT_NE(served.Find(3, t0 + seconds(3)), nullptr);
}

TEST(ServedTokens, ExpiredEntriesMakeRoomFirst) {
  ServedTokens served(seconds(10), 2);
  SteadyTime t0 = std::chrono::steady_clock::now();
  served.Record(1, "a@x.test", Secret("t1"), t0);
  served.Record(2, "b@x.test", Secret("t2"), t0 + seconds(8));
  served.Record(3, "c@x.test", Secret("t3"), t0 + seconds(12));
  EXPECT_EQ(served.size(), 2u);
  EXPECT_NE(served.Find(2, t0 + seconds(12)), nullptr);
}

// ---- ReplyWatcher ----

// Records what the watcher asked of the cache.
struct FakeCache {
  std::vector<std::string> dropped;    // "mailbox token"
  std::vector<std::string> refreshed;  // mailboxes

  ReplyActions Actions() {
    ReplyActions actions;
    actions.drop = [this](std::string_view m, std::string_view t) {
      dropped.push_back(std::string(m) + " " + std::string(t));
    };
    actions.refresh = [this](std::string_view m) { refreshed.emplace_back(m); };
    actions.account_name = [](std::string_view) { return "relay"; };
    return actions;
  }
};

class ReplyWatcherTest : public ::testing::Test {
 protected:
  FakeCache cache;
  LogCapture logs;
  ReplyWatcher watcher{cache.Actions(), WatcherOptions{seconds(120), 16}};
  SteadyTime t0 = std::chrono::steady_clock::now();
  const std::string refused = "535 5.7.3 Authentication unsuccessful [x]";
  const std::string dropped = std::string(kMailbox) + " " + std::string(kToken);

  void Serve(pid_t pid) { watcher.TokenServed(pid, kMailbox, kToken, t0); }
  bool LoggedToken() const {
    for (const std::string& line : logs.Lines()) {
      if (line.find(kToken) != std::string::npos)
        return true;
    }
    return false;
  }
};

TEST_F(ReplyWatcherTest, RefusedTokenIsDroppedAndLoggedByHash) {
  watcher.ReplySeen(7, "250-AUTH LOGIN XOAUTH2", t0);  // before the token
  Serve(7);
  watcher.ReplySeen(7, refused, t0 + seconds(1));
  EXPECT_EQ(cache.dropped, std::vector<std::string>{dropped});
  EXPECT_TRUE(logs.Has({"level=warn event=smtp_token_refused", "account=relay",
                        "mailbox=relay@example.com", "reply=\"535 5.7.3\"",
                        "token=" + ShortHash(kToken)}));
  EXPECT_FALSE(LoggedToken());
  EXPECT_EQ(watcher.Remembered(), 0u);
}

TEST_F(ReplyWatcherTest, LinesNotFollowingATokenAreIgnored) {
  watcher.ReplySeen(7, refused, t0);  // nothing served to pid 7
  Serve(8);
  watcher.ReplySeen(7, refused, t0);  // served to another pid
  Serve(9);
  watcher.ReplySeen(9, refused, t0 + seconds(121));  // too late
  EXPECT_TRUE(cache.dropped.empty());
  EXPECT_FALSE(logs.Has({"smtp_token_refused"}));
}

TEST_F(ReplyWatcherTest, AcceptedTokenEndsTheWait) {
  Serve(7);
  watcher.ReplySeen(7, "235 2.7.0 Authentication successful", t0);
  watcher.ReplySeen(7, refused, t0);  // e.g. a later, unrelated session
  EXPECT_TRUE(cache.dropped.empty());
}

TEST_F(ReplyWatcherTest, ChallengeKeepsWaitingForTheResult) {
  Serve(7);
  watcher.ReplySeen(7, "334 eyJzdGF0dXMiOiI0MDAifQ==", t0);
  watcher.ReplySeen(7, refused, t0);
  EXPECT_EQ(cache.dropped, std::vector<std::string>{dropped});
}

TEST_F(ReplyWatcherTest, TenantDisabledIsLoggedWithTheFixAndKept) {
  Serve(7);
  watcher.ReplySeen(7,
                    "535 5.7.139 Authentication unsuccessful, "
                    "SmtpClientAuthentication is disabled for the Tenant.",
                    t0);
  EXPECT_TRUE(cache.dropped.empty());
  EXPECT_TRUE(logs.Has({"level=warn event=smtp_auth_configuration",
                        "account=relay", "reply=\"535 5.7.139\"",
                        "tenant configuration", "switched off for the tenant",
                        "Set-CASMailbox -Identity relay@example.com "
                        "-SmtpClientAuthenticationDisabled $false",
                        "token_kept=yes"}));
}

TEST_F(ReplyWatcherTest, SecurityDefaultsAreLoggedAndKept) {
  Serve(7);
  watcher.ReplySeen(7,
                    "535 5.7.139 Authentication unsuccessful, the "
                    "organization configuration doesn't allow this "
                    "authentication request",
                    t0);
  EXPECT_TRUE(cache.dropped.empty());
  EXPECT_TRUE(logs.Has({"event=smtp_auth_configuration", "(security_defaults)",
                        "Security Defaults"}));
}

TEST_F(ReplyWatcherTest, ExpiresSoonRefreshesNow) {
  Serve(7);
  watcher.ReplySeen(
      7, "501 5.5.127 Invalid XOAUTH2 auth data - Token will expire soon", t0);
  EXPECT_TRUE(cache.dropped.empty());
  EXPECT_EQ(cache.refreshed, std::vector<std::string>{std::string(kMailbox)});
  EXPECT_TRUE(logs.Has(
      {"level=warn event=smtp_token_expires_soon", "refresh_margin_seconds"}));
}

// ---- the token socket reports served tokens ----

protocol::Response GiveToken(const protocol::Request&) {
  protocol::Response response;
  response.ok = true;
  response.token = std::string(kToken);
  response.expires = 1700000000;
  return response;
}

TEST(ReplyFeedback, TokenSocketReportsThePeerThatGotTheToken) {
  TempDir dir;
  std::mutex mutex;
  std::vector<std::string> reports;
  ServerOptions options;
  options.path = dir.path() + "/token.sock";
  options.policy.uids = {getuid()};
  options.on_served = [&](const PeerCredentials& peer,
                          const protocol::Request& request,
                          const protocol::Response& response) {
    std::lock_guard lock(mutex);
    reports.push_back(std::to_string(peer.pid) + " " + request.mailbox + " " +
                      response.token);
  };
  SocketServer server(options, GiveToken);
  ASSERT_TRUE(server.Start());

  protocol::Request request;
  request.mailbox = std::string(kMailbox);
  auto answer = AskHelper(options.path, request, milliseconds(5000));
  ASSERT_TRUE(answer.has_value()) << answer.error();
  std::lock_guard lock(mutex);
  EXPECT_EQ(reports, std::vector<std::string>{std::to_string(getpid()) +
                                              " relay@example.com " +
                                              std::string(kToken)});
}

// ---- the reply socket ----

// Reads what arrives within `limit`; stops at EOF. `closed` tells whether
// the peer closed.
std::string ReadFor(int fd, std::size_t want, bool* closed,
                    milliseconds limit = milliseconds(5000)) {
  std::string got;
  auto deadline = std::chrono::steady_clock::now() + limit;
  *closed = false;
  while (got.size() < want) {
    auto left = std::chrono::duration_cast<milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd entry{fd, POLLIN, 0};
    if (left.count() <= 0 ||
        poll(&entry, 1, static_cast<int>(left.count())) <= 0)
      break;
    char buffer[256];
    ssize_t n = recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {
      *closed = true;
      break;
    }
    got.append(buffer, static_cast<std::size_t>(n));
  }
  return got;
}

void SendAll(int fd, std::string_view bytes) {
  ASSERT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(bytes.size()));
}

class ReplyServerTest : public ::testing::Test {
 protected:
  ReplyServerTest() {
    options.path = ReplySocketPath(dir.path() + "/token.sock");
    options.policy.uids = {getuid()};
    options.policy.always_allow_root = false;
    options.max_request = 64;
  }

  ReplyCallback Collect() {
    return [this](const PeerCredentials& peer, std::string_view key) {
      std::lock_guard lock(mutex);
      seen.push_back(std::to_string(peer.pid) + "|" + std::string(key));
    };
  }
  std::vector<std::string> Seen() {
    std::lock_guard lock(mutex);
    return seen;
  }
  int Connect() {
    auto fd = ConnectUnix(options.path);
    EXPECT_TRUE(fd.has_value());
    return fd.value_or(-1);
  }

  TempDir dir;
  LogCapture logs;
  ReplyServerOptions options;
  std::mutex mutex;
  std::vector<std::string> seen;
};

TEST_F(ReplyServerTest, AnswersNotFoundToEveryLookupOnOneConnection) {
  EXPECT_EQ(options.path, dir.path() + "/reply.sock");
  ReplyServer server(options, Collect());
  ASSERT_TRUE(server.Start());
  struct stat info {};
  ASSERT_EQ(stat(options.path.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0666u);

  // Two lookups in one write, then one split across two writes.
  int fd = Connect();
  std::string pid = std::to_string(getpid());
  SendAll(fd, "13:xoauth2 220 x,19:xoauth2 250-AUTH XO,");
  bool closed = false;
  EXPECT_EQ(ReadFor(fd, 24, &closed), "9:NOTFOUND ,9:NOTFOUND ,");
  SendAll(fd, "32:xoauth2 535 5.7.3 Authenticat");
  SendAll(fd, "ion,");
  EXPECT_EQ(ReadFor(fd, 12, &closed), "9:NOTFOUND ,");
  EXPECT_FALSE(closed);
  EXPECT_EQ(Seen(),
            (std::vector<std::string>{pid + "|220 x", pid + "|250-AUTH XO",
                                      pid + "|535 5.7.3 Authentication"}));
  close(fd);

  server.Stop();
  EXPECT_NE(access(options.path.c_str(), F_OK), 0);
}

struct BadFramingCase {
  const char* name;
  std::string bytes;
  std::string reason;
};

class ReplyServerBadFraming
    : public ReplyServerTest,
      public ::testing::WithParamInterface<BadFramingCase> {};

TEST_P(ReplyServerBadFraming, ClosesWithoutAnswerAndLogs) {
  ReplyServer server(options, Collect());
  ASSERT_TRUE(server.Start());
  int fd = Connect();
  SendAll(fd, GetParam().bytes);
  bool closed = false;
  EXPECT_EQ(ReadFor(fd, 1, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_TRUE(Seen().empty());
  EXPECT_TRUE(logs.Has({"level=warn event=reply_request_invalid",
                        "pid=" + std::to_string(getpid()), GetParam().reason}));
  close(fd);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReplyServerBadFraming,
    ::testing::Values(
        BadFramingCase{"OverLong", "65:", "longer than the limit"},
        BadFramingCase{"BadDigits", "1x:", "not followed by ':'"},
        BadFramingCase{"MissingComma", "3:abc;", "does not end with ','"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_F(ReplyServerTest, RefusedPeerIsDisconnectedAndLogged) {
  options.policy.uids = {};
  ReplyServer server(options, Collect());
  ASSERT_TRUE(server.Start());
  int fd = Connect();
  bool closed = false;
  EXPECT_EQ(ReadFor(fd, 1, &closed), "");
  EXPECT_TRUE(closed);
  EXPECT_TRUE(logs.Has({"level=warn event=peer_denied", "socket=reply",
                        "uid=" + std::to_string(getuid())}));
  close(fd);
}

TEST_F(ReplyServerTest, IdleConnectionIsClosed) {
  options.idle_timeout = milliseconds(100);
  ReplyServer server(options, Collect());
  ASSERT_TRUE(server.Start());
  int fd = Connect();
  SendAll(fd, "9:xoauth2 x,");
  bool closed = false;
  EXPECT_EQ(ReadFor(fd, 12, &closed), "9:NOTFOUND ,");
  EXPECT_EQ(ReadFor(fd, 1, &closed), "");
  EXPECT_TRUE(closed);
  close(fd);
}

TEST_F(ReplyServerTest, ReplacesAStaleSocketButNotAFile) {
  {
    ReplyServer first(options, Collect());
    ASSERT_TRUE(first.Start());
  }
  dir.Write("reply.sock", "not a socket");
  ReplyServer second(options, Collect());
  auto started = second.Start();
  ASSERT_FALSE(started.has_value());
  EXPECT_NE(started.error().find("is not a socket"), std::string::npos);
}

// Asks one lookup on a new connection; the answer, "" on failure.
std::string LookUpOnce(const std::string& path, std::string_view request) {
  auto fd = ConnectUnix(path);
  if (!fd)
    return "";
  SendAll(*fd, request);
  bool closed = false;
  std::string answer = ReadFor(*fd, 12, &closed);
  close(*fd);
  return answer;
}

// The socket directory removed while smtp(8) holds a connection: the
// socket is bound again (socket_recreated), new connections are served,
// and the connection held across the removal keeps being served.
TEST_F(ReplyServerTest, RecreatedAfterItsDirectoryIsRemoved) {
  options.path = ReplySocketPath(dir.path() + "/run/token.sock");
  options.check_interval = milliseconds(20);
  ReplyServer server(options, Collect());
  ASSERT_TRUE(server.Start());
  int held = Connect();

  std::filesystem::remove_all(dir.path() + "/run");
  ASSERT_TRUE(WaitUntil([&] {
    return logs.Has({"level=warn event=socket_recreated",
                     "socket=" + options.path, "reason=missing",
                     "socket_mode=0666", "dir_mode=0755"});
  }));
  EXPECT_EQ(LookUpOnce(options.path, "11:xoauth2 new,"), "9:NOTFOUND ,");
  SendAll(held, "11:xoauth2 old,");
  bool closed = false;
  EXPECT_EQ(ReadFor(held, 12, &closed), "9:NOTFOUND ,");
  close(held);
  std::string pid = std::to_string(getpid());
  EXPECT_EQ(Seen(), (std::vector<std::string>{pid + "|new", pid + "|old"}));

  server.Stop();
  EXPECT_FALSE(std::filesystem::exists(options.path));
}

// Both sockets as the daemon runs them, in one directory that is removed:
// each is bound again, tokens are served and replies seen again, and the
// served token is tied to the reply by the peer's pid as before.
TEST(ReplyFeedback, BothSocketsRecreatedAfterTheDirectoryIsRemoved) {
  TempDir dir;
  LogCapture logs;
  std::mutex mutex;
  std::vector<std::string> events;
  auto note = [&](std::string event) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(event));
  };
  ServerOptions token_options{dir.path() + "/run/token.sock",
                              {{getuid()}, {}, true}};
  token_options.check_interval = milliseconds(20);
  token_options.on_served = [&](const PeerCredentials& peer, const auto&,
                                const auto&) {
    note("served " + std::to_string(peer.pid));
  };
  ReplyServerOptions reply_options{ReplySocketPath(token_options.path),
                                   {{getuid()}, {}, true}};
  reply_options.check_interval = milliseconds(20);
  SocketServer tokens(token_options, GiveToken);
  ReplyServer replies(
      reply_options, [&](const PeerCredentials& peer, std::string_view key) {
        note("reply " + std::to_string(peer.pid) + " " + std::string(key));
      });
  ASSERT_TRUE(tokens.Start());
  ASSERT_TRUE(replies.Start());

  std::filesystem::remove_all(dir.path() + "/run");
  for (const std::string& path : {token_options.path, reply_options.path}) {
    EXPECT_TRUE(WaitUntil([&] {
      return logs.Has({"event=socket_recreated", "socket=" + path});
    })) << path;
  }
  protocol::Request request;
  request.mailbox = std::string(kMailbox);
  auto answer = AskHelper(token_options.path, request, milliseconds(5000));
  ASSERT_TRUE(answer.has_value()) << answer.error();
  EXPECT_EQ(LookUpOnce(reply_options.path, "13:xoauth2 535 x,"),
            "9:NOTFOUND ,");
  std::string pid = std::to_string(getpid());
  std::lock_guard lock(mutex);
  EXPECT_EQ(events, (std::vector<std::string>{"served " + pid,
                                              "reply " + pid + " 535 x"}));
}

}  // namespace
}  // namespace xoauth2::helper
