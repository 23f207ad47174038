// SPDX-License-Identifier: MIT
//
// Unit tests of the socket server (socket_server.h) over temporary Unix
// sockets: byte-exact answers for tokens, unknown mailboxes, oversize and
// malformed requests, refused peers (with root not allowed by policy),
// per-account allowlists (table-driven, byte-exact denial line), global
// and account allowlists swapped on a running server by SetPolicies() (a
// reload; a request already past its checks is still answered), the
// connection cap, socket set-up (directory, mode, stale and live sockets),
// and F13 through the socket with the real cache and a fake fetcher.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "daemon.h"
#include "helper_test_util.h"
#include "socket_client.h"
#include "socket_server.h"
#include "token_cache.h"

namespace xoauth2::helper {
namespace {

using std::chrono::milliseconds;
using testing::FakeFetcher;
using testing::Granted;
using testing::LogCapture;
using testing::TempDir;
using testing::TestAccount;
using testing::WaitUntil;

constexpr milliseconds kTimeout{5000};

// A handler with fixed answers, for byte-exact tests.
protocol::Response FixedAnswer(const protocol::Request& request) {
  protocol::Response response;
  if (request.mailbox != "relay@example.com") {
    response.code = protocol::ErrorCode::kNoAccount;
    response.text = "no account";
    return response;
  }
  response.ok = true;
  if (request.verb == protocol::Verb::kToken) {
    response.token = "eyJ0eXAi.TEST.SIG";
    response.expires = 1700000000;
  }
  return response;
}

ServerOptions Options(const TempDir& dir) {
  ServerOptions options;
  options.path = dir.path() + "/run/token.sock";
  options.policy.uids = {getuid()};
  return options;
}

struct ExchangeCase {
  const char* name;
  std::string request;
  std::string answer;
};

class HelperSocketExchange : public ::testing::TestWithParam<ExchangeCase> {};

TEST_P(HelperSocketExchange, ByteExact) {
  TempDir dir;
  SocketServer server(Options(dir), FixedAnswer);
  ASSERT_TRUE(server.Start());
  auto answer = ExchangeLine(Options(dir).path, GetParam().request, kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, GetParam().answer);
  server.Stop();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperSocketExchange,
    ::testing::Values(
        ExchangeCase{"Token", "v1 token relay@example.com\n",
                     "ok eyJ0eXAi.TEST.SIG 1700000000\n"},
        ExchangeCase{"Reject", "v1 reject relay@example.com abc\n", "ok\n"},
        ExchangeCase{"NoAccount", "v1 token other@example.com\n",
                     "err no-account no account\n"},
        ExchangeCase{"Oversize",
                     std::string(protocol::kMaxRequestBytes + 1, 'a'),
                     "err bad-request request longer than 12554 bytes\n"},
        ExchangeCase{"OversizeWithNewline",
                     "v1 token " +
                         std::string(protocol::kMaxRequestBytes - 11, 'a') +
                         "@b\n",
                     "err bad-request request longer than 12554 bytes\n"},
        ExchangeCase{"ExactlyAtLimit",
                     "v1 token " +
                         std::string(protocol::kMaxRequestBytes - 12, 'a') +
                         "@b\n",
                     "err bad-request malformed mailbox\n"},
        ExchangeCase{"SecondLineIgnored",
                     "v1 token relay@example.com\n" + std::string(1000, 'x'),
                     "ok eyJ0eXAi.TEST.SIG 1700000000\n"},
        ExchangeCase{"BadVersion", "v2 token relay@example.com\n",
                     "err unsupported-version this helper speaks protocol v1 "
                     "only; upgrade the helper or use a matching plugin\n"},
        ExchangeCase{"BadMailbox", "v1 token relay\n",
                     "err bad-request malformed mailbox\n"},
        ExchangeCase{"Empty", "", "err bad-request empty request\n"},
        ExchangeCase{"NoNewlineThenClose", "v1 token relay@example.com",
                     "ok eyJ0eXAi.TEST.SIG 1700000000\n"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HelperSocketServer, TokenFromCacheAndNoAccount) {
  TempDir dir;
  FakeFetcher fetcher({Granted("tok-1")});
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  SocketServer server(Options(dir), [&cache](const auto& request) {
    return HandleRequest(cache, request);
  });
  ASSERT_TRUE(server.Start());
  cache.Start();

  protocol::Request request{protocol::Verb::kToken, "relay@example.com", {}};
  auto answer = AskHelper(Options(dir).path, request, kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_TRUE(answer->ok);
  EXPECT_EQ(answer->token, "tok-1");

  auto none = ExchangeLine(Options(dir).path, "v1 token nobody@example.com\n",
                           kTimeout);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none,
            "err no-account the helper has no account for this mailbox; add "
            "it to the helper's configuration\n");
  cache.Stop();
  server.Stop();
}

TEST(HelperSocketServer, DeniedPeerIsLoggedWithUidAndPid) {
  TempDir dir;
  LogCapture log;
  ServerOptions options = Options(dir);
  options.policy.uids = {getuid() + 4242};
  options.policy.always_allow_root = false;
  SocketServer server(options, FixedAnswer);
  ASSERT_TRUE(server.Start());

  auto answer =
      ExchangeLine(options.path, "v1 token relay@example.com\n", kTimeout);
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer,
            "err denied uid " + std::to_string(getuid()) +
                " may not ask for tokens; add the user to allowed_users or one "
                "of its groups to allowed_groups\n");
  EXPECT_TRUE(log.Has({"event=peer_denied", "uid=" + std::to_string(getuid()),
                       "pid=" + std::to_string(getpid())}));
  server.Stop();
}

// The allowlist of accounts[2], named relay (its mailbox spelt in
// another case than the requests).
AccountPolicy RelayPolicy(std::vector<uid_t> uids, std::vector<gid_t> gids) {
  return AccountPolicy{"Relay@Example.COM", "relay", 2, std::move(uids),
                       std::move(gids)};
}

struct AccountAccessCase {
  const char* name;
  std::vector<AccountPolicy> accounts;
  std::string request;
  std::string answer;  // empty: the account's denial line
};

class HelperAccountAccess : public ::testing::TestWithParam<AccountAccessCase> {
};

// The global policy lets the test's uid in (root only through the list);
// the account's own allowlist then decides.
TEST_P(HelperAccountAccess, Answer) {
  const AccountAccessCase& c = GetParam();
  TempDir dir;
  LogCapture log;
  ServerOptions options = Options(dir);
  options.policy.always_allow_root = false;
  options.accounts = c.accounts;
  SocketServer server(options, FixedAnswer);
  ASSERT_TRUE(server.Start());

  auto answer = ExchangeLine(options.path, c.request, kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  std::string uid = std::to_string(getuid());
  std::string denied = "err denied uid " + uid +
                       " may not ask for tokens of account relay; add the "
                       "user to accounts[2].allowed_users\n";
  EXPECT_EQ(*answer, c.answer.empty() ? denied : c.answer);
  bool logged = log.Has({"level=warn event=peer_denied socket=token uid=" + uid,
                         "pid=" + std::to_string(getpid()), "account=relay",
                         "fix=\"add the user to accounts[2].allowed_users\""});
  EXPECT_EQ(logged, c.answer.empty()) << log.Lines().size() << " lines";
  server.Stop();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperAccountAccess,
    ::testing::Values(
        AccountAccessCase{"UidNotListed",
                          {RelayPolicy({getuid() + 4242}, {})},
                          "v1 token relay@example.com\n",
                          ""},
        AccountAccessCase{"EmptyLists",
                          {RelayPolicy({}, {})},
                          "v1 token relay@example.com\n",
                          ""},
        AccountAccessCase{"GroupNotListed",
                          {RelayPolicy({}, {getgid() + 4242})},
                          "v1 token relay@example.com\n",
                          ""},
        AccountAccessCase{"RejectDenied",
                          {RelayPolicy({getuid() + 4242}, {})},
                          "v1 reject relay@example.com abc\n",
                          ""},
        AccountAccessCase{"NoAccountKeys",
                          {},
                          "v1 token relay@example.com\n",
                          "ok eyJ0eXAi.TEST.SIG 1700000000\n"},
        AccountAccessCase{
            "OtherAccountRestricted",
            {AccountPolicy{
                "other@example.com", "other", 0, {getuid() + 4242}, {}}},
            "v1 token relay@example.com\n",
            "ok eyJ0eXAi.TEST.SIG 1700000000\n"},
        AccountAccessCase{"UidListed",
                          {RelayPolicy({getuid()}, {})},
                          "v1 token relay@example.com\n",
                          "ok eyJ0eXAi.TEST.SIG 1700000000\n"},
        AccountAccessCase{"GroupListed",
                          {RelayPolicy({getuid() + 4242}, {getgid()})},
                          "v1 token relay@example.com\n",
                          "ok eyJ0eXAi.TEST.SIG 1700000000\n"},
        AccountAccessCase{"StatusGovernedByGlobalOnly",
                          {RelayPolicy({getuid() + 4242}, {})},
                          "v1 status\n",
                          "err no-account no account\n"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// Only accounts with their own keys get a policy, with their index.
TEST(HelperSocketServer, AccountPoliciesFromConfig) {
  Config config;
  config.accounts.resize(3);
  config.accounts[0].mailbox = "open@example.com";
  config.accounts[1].mailbox = "relay@example.com";
  config.accounts[1].name = "relay";
  config.accounts[1].restricts_peers = true;
  config.accounts[1].allowed_uids = {107};
  config.accounts[1].allowed_gids = {113};
  config.accounts[2].mailbox = "none@example.com";
  config.accounts[2].restricts_peers = true;

  std::vector<AccountPolicy> policies = AccountPoliciesFromConfig(config);
  ASSERT_EQ(policies.size(), 2u);
  EXPECT_EQ(policies[0].mailbox, "relay@example.com");
  EXPECT_EQ(policies[0].name, "relay");
  EXPECT_EQ(policies[0].index, 1u);
  EXPECT_EQ(policies[0].uids, (std::vector<uid_t>{107}));
  EXPECT_EQ(policies[0].gids, (std::vector<gid_t>{113}));
  EXPECT_EQ(policies[1].index, 2u);
  EXPECT_TRUE(policies[1].uids.empty());
}

// Root is let in by the account's allowlist as by the global one.
TEST(HelperSocketServer, AccountAllowlistFollowsTheGlobalRootRule) {
  if (getuid() != 0)
    GTEST_SKIP() << "needs to run as root";
  TempDir dir;
  ServerOptions options = Options(dir);
  options.accounts = {RelayPolicy({4242}, {})};
  SocketServer server(options, FixedAnswer);
  ASSERT_TRUE(server.Start());
  auto answer =
      ExchangeLine(options.path, "v1 token relay@example.com\n", kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, "ok eyJ0eXAi.TEST.SIG 1700000000\n");
  server.Stop();
}

// A token for every mailbox, named after it: "ok tok-MAILBOX 1700000000".
protocol::Response TokenPerMailbox(const protocol::Request& request) {
  protocol::Response response;
  response.ok = true;
  response.token = "tok-" + request.mailbox;
  response.expires = 1700000000;
  return response;
}

// The account answer line `TokenPerMailbox` gives for `mailbox`.
std::string TokenLine(const std::string& mailbox) {
  return "ok tok-" + mailbox + " 1700000000\n";
}

// The global denial line for the test's uid.
std::string GlobalDenial() {
  return "err denied uid " + std::to_string(getuid()) +
         " may not ask for tokens; add the user to allowed_users or one "
         "of its groups to allowed_groups\n";
}

// A policy listing only `uid`, root not let in by default.
AccessPolicy OnlyUid(uid_t uid) {
  return AccessPolicy{{uid}, {}, false};
}

// A reload swaps the global policy of a running server: the next
// connection of a peer allowed before is refused and logged as at start,
// and a peer refused before is served after the next swap.
TEST(HelperSocketServerReload, GlobalPolicySwapAppliesToNewConnections) {
  TempDir dir;
  LogCapture log;
  ServerOptions options = Options(dir);
  options.policy = OnlyUid(getuid());
  SocketServer server(options, FixedAnswer);
  ASSERT_TRUE(server.Start());
  const std::string request = "v1 token relay@example.com\n";
  auto answer = ExchangeLine(options.path, request, kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  ASSERT_EQ(*answer, "ok eyJ0eXAi.TEST.SIG 1700000000\n");

  // Allowed before, refused now, with the usual line and log.
  server.SetPolicies(OnlyUid(getuid() + 4242), {});
  answer = ExchangeLine(options.path, request, kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, GlobalDenial());
  EXPECT_TRUE(log.Has({"level=warn event=peer_denied socket=token uid=" +
                           std::to_string(getuid()) + " ",
                       "pid=" + std::to_string(getpid()),
                       "fix=\"add the user to allowed_users"}));

  // Refused before, allowed again.
  server.SetPolicies(OnlyUid(getuid()), {});
  answer = ExchangeLine(options.path, request, kTimeout);
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, "ok eyJ0eXAi.TEST.SIG 1700000000\n");
  server.Stop();
}

// The account denial line for the test's uid and accounts[INDEX] `name`.
std::string AccountDenial(const std::string& name, int index) {
  return "err denied uid " + std::to_string(getuid()) +
         " may not ask for tokens of account " + name +
         "; add the user to accounts[" + std::to_string(index) +
         "].allowed_users\n";
}

// Reloads move the test's uid between the allowlists of accounts relay
// (accounts[2]) and other (accounts[0]): each time the account that lists
// it serves its token and the other refuses it; the first refusal is
// logged as at start (later ones of the uid are rate-limited). An account
// dropped from the list is served to every peer the global policy allows.
TEST(HelperSocketServerReload, AccountPolicySwapAppliesToNewRequests) {
  TempDir dir;
  LogCapture log;
  ServerOptions options = Options(dir);
  options.policy = OnlyUid(getuid());
  auto other = [](uid_t uid) {
    return AccountPolicy{"other@example.com", "other", 0, {uid}, {}};
  };
  options.accounts = {RelayPolicy({getuid()}, {}), other(getuid())};
  SocketServer server(options, TokenPerMailbox);
  ASSERT_TRUE(server.Start());
  auto ask = [&](const std::string& mailbox) {
    auto line =
        ExchangeLine(options.path, "v1 token " + mailbox + "\n", kTimeout);
    return line ? *line : "transport error: " + line.error();
  };
  ASSERT_EQ(ask("relay@example.com"), TokenLine("relay@example.com"));
  ASSERT_EQ(ask("other@example.com"), TokenLine("other@example.com"));

  // Allowed for other only: relay's refusal is logged with its fix.
  server.SetPolicies(OnlyUid(getuid()),
                     {RelayPolicy({getuid() + 4242}, {}), other(getuid())});
  EXPECT_EQ(ask("other@example.com"), TokenLine("other@example.com"));
  EXPECT_EQ(ask("relay@example.com"), AccountDenial("relay", 2));
  EXPECT_TRUE(log.Has({"level=warn event=peer_denied socket=token uid=" +
                           std::to_string(getuid()) + " ",
                       "pid=" + std::to_string(getpid()), "account=relay",
                       "fix=\"add the user to accounts[2].allowed_users\""}));

  // Allowed for relay only: refused before, served now; other refuses.
  server.SetPolicies(OnlyUid(getuid()),
                     {RelayPolicy({getuid()}, {}), other(getuid() + 4242)});
  EXPECT_EQ(ask("relay@example.com"), TokenLine("relay@example.com"));
  EXPECT_EQ(ask("other@example.com"), AccountDenial("other", 0));

  // Other without its own allowlist: the global policy alone decides.
  server.SetPolicies(OnlyUid(getuid()), {RelayPolicy({getuid()}, {})});
  EXPECT_EQ(ask("other@example.com"), TokenLine("other@example.com"));
  server.Stop();
}

// A handler that blocks until opened, counting the requests that entered.
class GatedHandler {
 public:
  protocol::Response operator()(const protocol::Request& request) {
    gate_.Pass();
    return TokenPerMailbox(request);
  }
  void Open() { gate_.Open(); }
  int Entered() { return gate_.Entered(); }

 private:
  testing::Gate gate_{false};
};

// socket_server.h: a request already past its checks when the policies
// are swapped is answered; the next connection meets the new policies.
TEST(HelperSocketServerReload, RequestPastItsChecksIsAnsweredAfterSwap) {
  TempDir dir;
  ServerOptions options = Options(dir);
  options.policy = OnlyUid(getuid());
  options.accounts = {RelayPolicy({getuid()}, {})};
  GatedHandler handler;
  SocketServer server(
      options, [&handler](const auto& request) { return handler(request); });
  ASSERT_TRUE(server.Start());
  const std::string request = "v1 token relay@example.com\n";
  std::string in_flight;
  std::thread client([&] {
    auto line = ExchangeLine(options.path, request, kTimeout);
    in_flight = line ? *line : "transport error: " + line.error();
  });

  // Both allowlists swapped while the request waits in the handler.
  bool entered = WaitUntil([&] { return handler.Entered() == 1; });
  EXPECT_TRUE(entered);
  server.SetPolicies(OnlyUid(getuid() + 4242),
                     {RelayPolicy({getuid() + 4242}, {})});
  handler.Open();
  client.join();
  EXPECT_EQ(in_flight, TokenLine("relay@example.com"));

  // The next connection meets the new policies.
  auto refused = ExchangeLine(options.path, request, kTimeout);
  ASSERT_TRUE(refused) << refused.error();
  EXPECT_EQ(*refused, GlobalDenial());
  EXPECT_EQ(handler.Entered(), 1);
  server.Stop();
}

struct PeerCase {
  const char* name;
  AccessPolicy policy;
  PeerCredentials peer;
  std::vector<gid_t> groups;
  bool allowed;
};

class HelperPeerPolicy : public ::testing::TestWithParam<PeerCase> {};

TEST_P(HelperPeerPolicy, Decision) {
  const PeerCase& c = GetParam();
  EXPECT_EQ(IsPeerAllowed(c.policy, c.peer, c.groups), c.allowed);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperPeerPolicy,
    ::testing::Values(
        PeerCase{"UidListed", {{107}, {}, true}, {1, 107, 113}, {}, true},
        PeerCase{"GidListed", {{}, {113}, true}, {1, 5, 113}, {}, true},
        PeerCase{
            "SupplementaryGroup", {{}, {120}, true}, {1, 5, 6}, {6, 120}, true},
        PeerCase{"NotListed", {{107}, {113}, true}, {1, 5, 6}, {6, 7}, false},
        PeerCase{"RootByDefault", {{107}, {}, true}, {1, 0, 0}, {}, true},
        PeerCase{
            "RootWhenTurnedOff", {{107}, {}, false}, {1, 0, 0}, {0}, false},
        PeerCase{
            "EmptyPolicy", {{}, {}, true}, {1, 1000, 1000}, {1000}, false}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HelperSocketServer, SilentClientGetsBadRequestAfterDeadline) {
  TempDir dir;
  ServerOptions options = Options(dir);
  options.read_timeout = milliseconds(100);
  SocketServer server(options, FixedAnswer);
  ASSERT_TRUE(server.Start());
  // Connected, sends nothing, keeps its side open.
  auto fd = ConnectUnix(options.path);
  ASSERT_TRUE(fd);
  char buffer[256] = {};
  ssize_t n = recv(*fd, buffer, sizeof buffer - 1, MSG_WAITALL);
  close(*fd);
  ASSERT_GT(n, 0);
  EXPECT_STREQ(buffer,
               "err bad-request no complete request line within 100 ms\n");
  server.Stop();
}

TEST(HelperSocketServer, ConnectionsOverCapRefused) {
  TempDir dir;
  ServerOptions options = Options(dir);
  options.max_connections = 1;
  SocketServer server(options, FixedAnswer);
  ASSERT_TRUE(server.Start());

  auto held = ConnectUnix(options.path);  // sends nothing: stays open
  ASSERT_TRUE(held);
  auto answer =
      ExchangeLine(options.path, "v1 token relay@example.com\n", kTimeout);
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, "err unavailable too many connections; try again\n");
  close(*held);
  server.Stop();
}

TEST(HelperSocketServer, SetUpDirectoryModeAndCleanUp) {
  TempDir dir;
  mode_t old_mask = umask(077);
  ServerOptions options = Options(dir);
  SocketServer server(options, FixedAnswer);
  auto started = server.Start();
  umask(old_mask);
  ASSERT_TRUE(started) << started.error();

  struct stat info {};
  ASSERT_EQ(stat((dir.path() + "/run").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0755u);
  ASSERT_EQ(stat(options.path.c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 07777, 0666u);

  server.Stop();
  EXPECT_NE(stat(options.path.c_str(), &info), 0);
}

TEST(HelperSocketServer, RefusesWhenAnotherHelperListens) {
  TempDir dir;
  SocketServer first(Options(dir), FixedAnswer);
  ASSERT_TRUE(first.Start());
  SocketServer second(Options(dir), FixedAnswer);
  auto started = second.Start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find(", the socket's owner, is already listening"),
            std::string::npos);

  // The first one still answers.
  auto answer = ExchangeLine(Options(dir).path,
                             "v1 reject relay@example.com x\n", kTimeout);
  ASSERT_TRUE(answer);
  EXPECT_EQ(*answer, "ok\n");
  first.Stop();
}

TEST(HelperSocketServer, ReplacesStaleSocketRefusesOtherFiles) {
  TempDir dir;
  {
    // A server that is gone but whose socket file stays behind.
    SocketServer dead(Options(dir), FixedAnswer);
    ASSERT_TRUE(dead.Start());
  }
  ServerOptions options = Options(dir);
  EXPECT_TRUE(dir.Write("run/keep", "x").size() > 0);
  options.path = dir.path() + "/run/keep";
  SocketServer blocked(options, FixedAnswer);
  auto refused = blocked.Start();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("exists and is not a socket"),
            std::string::npos);

  // A stale socket (bound, nobody listening) is replaced.
  int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::string path = Options(dir).path;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&address), sizeof address),
            0);
  close(stale);
  SocketServer fresh(Options(dir), FixedAnswer);
  ASSERT_TRUE(fresh.Start());
  EXPECT_TRUE(ExchangeLine(path, "v1 token relay@example.com\n", kTimeout));
  fresh.Stop();
}

// F13 end to end inside the helper: 8 plugin-like clients at once while no
// token is cached, exactly one fetch.
TEST(HelperSocketServer, F13EightClientsOneFetch) {
  TempDir dir;
  FakeFetcher fetcher({Granted("tok-1")});
  fetcher.Close();
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  SocketServer server(Options(dir), [&cache](const auto& request) {
    return HandleRequest(cache, request);
  });
  ASSERT_TRUE(server.Start());
  cache.Start();

  std::vector<std::string> answers(8);
  std::vector<std::thread> clients;
  for (auto& answer : answers) {
    clients.emplace_back([&dir, &answer] {
      auto line = ExchangeLine(Options(dir).path,
                               "v1 token relay@example.com\n", kTimeout);
      answer = line ? *line : line.error();
    });
  }
  ASSERT_TRUE(WaitUntil([&] { return cache.WaitingRequests() == 8; }));
  fetcher.Open();
  for (auto& client : clients)
    client.join();

  EXPECT_EQ(fetcher.calls(), 1);
  for (const std::string& answer : answers) {
    EXPECT_TRUE(answer.starts_with("ok tok-1 ")) << answer;
  }
  cache.Stop();
  server.Stop();
}

}  // namespace
}  // namespace xoauth2::helper
