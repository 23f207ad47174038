// SPDX-License-Identifier: MIT
//
// Unit tests of the configuration reload (SIGHUP, daemon.h): which
// accounts a reloaded list keeps (updated, rotated), changes, adds and
// removes (ClassifyChange and DiffAccounts, table-driven over every
// account setting), which settings need a restart (RestartOnlyChanges),
// and TokenCache::Reconfigure() with a fetcher whose tokens name the
// client secret they were fetched with: a kept account keeps its cached
// token without a fetch, an updated one (name, refresh margin) too while
// the new margin decides its next refresh, a rotated one keeps serving
// its token while it fetches with the new secret, a changed one drops it,
// an added one is served, a removed one answers no-account, a request
// waiting across a reload gets a token, and
// requests racing reloads on many threads all get well-formed answers
// (run it under ASan/UBSan or TSan to check the locking). No sleeps:
// conditions are polled with a deadline.

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon.h"
#include "helper_test_util.h"
#include "token_cache.h"

namespace xoauth2::helper {
namespace {

using testing::FetchResult;
using testing::Granted;
using testing::TestAccount;
using testing::WaitUntil;

constexpr const char* kRelay = "relay@example.com";
constexpr const char* kOther = "other@example.com";

// Answers every fetch with "tok-SECRET-N" (N counts fetches with that
// client secret) once its gate is open; counts fetches entered.
class SecretFetcher : public TokenFetcher {
 public:
  FetchResult Fetch(const Account& account, const Secret&) override {
    gate_.Pass();
    std::lock_guard lock(mutex_);
    const std::string& secret = account.client_secret.Reveal();
    int count = ++calls_[secret];
    return Granted("tok-" + secret + "-" + std::to_string(count));
  }
  void Cancel() override { Open(); }

  void Close() { gate_.Close(); }
  void Open() { gate_.Open(); }
  int Entered() { return gate_.Entered(); }  // fetches started
  int Calls(const std::string& secret) {
    std::lock_guard lock(mutex_);
    return calls_[secret];
  }

 private:
  testing::Gate gate_{true};
  std::mutex mutex_;
  std::map<std::string, int> calls_;
};

// TestAccount(mailbox) with `secret` as its client secret.
Account WithSecret(const std::string& mailbox, const std::string& secret) {
  Account account = TestAccount(mailbox);
  account.client_secret = Secret(secret);
  return account;
}

// WithSecret() in another tenant: the token it gets is another one.
Account Moved(const std::string& mailbox, const std::string& secret) {
  Account account = WithSecret(mailbox, secret);
  account.tenant = "fabrikam.com";
  return account;
}

struct DiffCase {
  const char* name;
  std::function<void(Account&)> change;  // applied to the new relay
  // "kept" (nothing the cache uses), "updated" (name, margin), "rotated"
  // (credential) or "changed" (the token's identity).
  const char* expected;
};

// The AccountChange a DiffCase expects.
AccountChange ExpectedChange(const std::string& expected) {
  if (expected == "updated")
    return AccountChange::kSettings;
  if (expected == "rotated")
    return AccountChange::kCredential;
  if (expected == "changed")
    return AccountChange::kIdentity;
  return AccountChange::kNone;
}

// One setting changed on the one account: which lists hold it.
class HelperReloadDiff : public ::testing::TestWithParam<DiffCase> {};

TEST_P(HelperReloadDiff, OneSettingChanged) {
  const DiffCase& c = GetParam();
  std::vector<Account> before{TestAccount(kRelay)};
  std::vector<Account> after{TestAccount(kRelay)};
  c.change(after[0]);

  AccountDiff diff = DiffAccounts(before, after);
  const std::string expected = c.expected;
  auto holds = [&after](bool in) {
    return in ? std::vector<std::string>{after[0].mailbox}
              : std::vector<std::string>{};
  };
  EXPECT_EQ(diff.kept, holds(expected != "changed"));
  EXPECT_EQ(diff.updated, holds(expected == "updated"));
  EXPECT_EQ(diff.rotated, holds(expected == "rotated"));
  EXPECT_EQ(diff.changed, holds(expected == "changed"));
  EXPECT_TRUE(diff.added.empty());
  EXPECT_TRUE(diff.removed.empty());
  EXPECT_EQ(ClassifyChange(before[0], after[0]), ExpectedChange(expected));
}

INSTANTIATE_TEST_SUITE_P(
    Settings, HelperReloadDiff,
    ::testing::Values(
        DiffCase{"nothing", [](Account&) {}, "kept"},
        DiffCase{"allowed_users",
                 [](Account& a) {
                   a.restricts_peers = true;
                   a.allowed_uids = {1234};
                 },
                 "kept"},
        DiffCase{"allowed_groups", [](Account& a) { a.allowed_gids = {99}; },
                 "kept"},
        DiffCase{"send_as",
                 [](Account& a) { a.send_as = {"alias@example.com"}; }, "kept"},
        DiffCase{"client_secret",
                 [](Account& a) { a.client_secret = Secret("new"); },
                 "rotated"},
        DiffCase{"client_secret_inline",
                 [](Account& a) { a.client_secret_inline = true; }, "kept"},
        DiffCase{"private_key_file",
                 [](Account& a) { a.private_key_file = "/etc/x/k.pem"; },
                 "rotated"},
        DiffCase{"refresh_token_file",
                 [](Account& a) {
                   a.refresh_token_file = "/var/lib/x/other.refresh";
                 },
                 "changed"},
        DiffCase{"secret_and_tenant",
                 [](Account& a) {
                   a.client_secret = Secret("new");
                   a.tenant = "fabrikam.com";
                 },
                 "changed"},
        DiffCase{"name_and_secret",
                 [](Account& a) {
                   a.name = "renamed";
                   a.client_secret = Secret("new");
                 },
                 "rotated"},
        DiffCase{"authority",
                 [](Account& a) { a.authority = "https://127.0.0.1:2"; },
                 "changed"},
        DiffCase{"tenant", [](Account& a) { a.tenant = "fabrikam.com"; },
                 "changed"},
        DiffCase{"client_id",
                 [](Account& a) {
                   a.client_id = "66666666-7777-8888-9999-000000000000";
                 },
                 "changed"},
        DiffCase{"scope", [](Account& a) { a.scope = "https://x/.default"; },
                 "changed"},
        DiffCase{"grant",
                 [](Account& a) {
                   a.grant = Grant::kRefreshToken;
                   a.refresh_token_file = "/var/lib/x/relay.refresh";
                 },
                 "changed"},
        DiffCase{"cloud", [](Account& a) { a.cloud = Cloud::kUsGov; },
                 "changed"},
        DiffCase{"provider", [](Account& a) { a.provider = Provider::kGoogle; },
                 "changed"},
        DiffCase{"name", [](Account& a) { a.name = "renamed"; }, "updated"},
        DiffCase{"mailbox_case",
                 [](Account& a) { a.mailbox = "Relay@Example.com"; },
                 "changed"},
        DiffCase{"refresh_margin",
                 [](Account& a) { a.refresh_margin_seconds = 900; }, "updated"},
        DiffCase{"certificate_file",
                 [](Account& a) { a.certificate_file = "/etc/x/c.pem"; },
                 "rotated"},
        DiffCase{"assertion_alg",
                 [](Account& a) { a.assertion_alg = AssertionAlg::kRs256; },
                 "rotated"}),
    [](const ::testing::TestParamInfo<DiffCase>& param) {
      return std::string(param.param.name);
    });

// Accounts appearing, disappearing and moving, by mailbox.
TEST(HelperReloadDiffLists, AddedRemovedAndReordered) {
  std::vector<Account> before{TestAccount(kRelay), TestAccount(kOther),
                              TestAccount("gone@example.com")};
  std::vector<Account> after{TestAccount(kOther), TestAccount("new@x.org"),
                             Moved(kRelay, "rotated")};

  AccountDiff diff = DiffAccounts(before, after);
  EXPECT_EQ(diff.kept, std::vector<std::string>{kOther});
  EXPECT_EQ(diff.changed, std::vector<std::string>{kRelay});
  EXPECT_EQ(diff.added, std::vector<std::string>{"new@x.org"});
  EXPECT_EQ(diff.removed, std::vector<std::string>{"gone@example.com"});
}

TEST(HelperReloadDiffLists, EmptyLists) {
  std::vector<Account> none;
  std::vector<Account> one{TestAccount(kRelay)};
  EXPECT_EQ(DiffAccounts(none, one).added, std::vector<std::string>{kRelay});
  EXPECT_EQ(DiffAccounts(one, none).removed, std::vector<std::string>{kRelay});
  AccountDiff same = DiffAccounts(none, none);
  EXPECT_TRUE(same.kept.empty() && same.updated.empty() &&
              same.rotated.empty() && same.changed.empty() &&
              same.added.empty() && same.removed.empty());
}

struct RestartCase {
  const char* key;
  std::function<void(Config&)> change;
};

// Each setting bound at start is reported by its key, and only it.
class HelperReloadRestart : public ::testing::TestWithParam<RestartCase> {};

TEST_P(HelperReloadRestart, NamesTheSetting) {
  Config running;
  Config loaded;
  GetParam().change(loaded);
  EXPECT_EQ(RestartOnlyChanges(running, loaded),
            std::vector<std::string>{GetParam().key});
}

INSTANTIATE_TEST_SUITE_P(
    Settings, HelperReloadRestart,
    ::testing::Values(
        RestartCase{"socket", [](Config& c) { c.socket = "/tmp/other.sock"; }},
        RestartCase{"ca_file", [](Config& c) { c.ca_file = "/tmp/ca.pem"; }},
        RestartCase{"proxy", [](Config& c) { c.proxy = "http://p:3128"; }},
        RestartCase{"connect_timeout_seconds",
                    [](Config& c) { c.connect_timeout_seconds = 3; }},
        RestartCase{"request_timeout_seconds",
                    [](Config& c) { c.request_timeout_seconds = 3; }},
        RestartCase{"refresh_token_warn_days",
                    [](Config& c) { c.refresh_token_warn_days = 30; }}),
    [](const ::testing::TestParamInfo<RestartCase>& param) {
      return std::string(param.param.key);
    });

TEST(HelperReloadRestartNone, ReloadableSettingsNeedNoRestart) {
  Config running;
  Config loaded;
  loaded.allowed_uids = {1};
  loaded.log_level = LogLevel::kDebug;
  loaded.refresh_margin_seconds = 900;
  loaded.accounts = {TestAccount(kRelay)};
  EXPECT_TRUE(RestartOnlyChanges(running, loaded).empty());
}

// A kept account keeps its token with no fetch; a rotated one keeps it
// until the fetch with its new secret; a changed one (another tenant)
// drops it; an added one is served; a removed one answers no-account.
TEST(HelperReloadCache, AppliesTheDiff) {
  SecretFetcher fetcher;
  TokenCache cache({WithSecret(kRelay, "a"), WithSecret(kOther, "b")}, fetcher,
                   CacheOptions{});
  cache.Start();
  ASSERT_EQ(cache.Get(kRelay).token, "tok-a-1");
  ASSERT_EQ(cache.Get(kOther).token, "tok-b-1");

  AccountDiff diff = cache.Reconfigure(
      {WithSecret(kRelay, "a"), WithSecret("new@example.com", "c")});
  EXPECT_EQ(diff.kept.size(), 1u);
  EXPECT_EQ(diff.added.size(), 1u);
  EXPECT_EQ(diff.removed.size(), 1u);
  EXPECT_EQ(cache.Get(kRelay).token, "tok-a-1");
  EXPECT_EQ(cache.Get("new@example.com").token, "tok-c-1");
  EXPECT_EQ(cache.Get(kOther).code, protocol::ErrorCode::kNoAccount);
  EXPECT_EQ(fetcher.Calls("a"), 1);

  diff = cache.Reconfigure(
      {WithSecret(kRelay, "rotated"), WithSecret("new@example.com", "c")});
  EXPECT_EQ(diff.rotated, std::vector<std::string>{kRelay});
  EXPECT_EQ(diff.kept.size(), 2u);
  EXPECT_TRUE(diff.changed.empty());
  EXPECT_TRUE(
      WaitUntil([&] { return cache.Get(kRelay).token == "tok-rotated-1"; }));
  EXPECT_EQ(fetcher.Calls("a"), 1);

  diff = cache.Reconfigure(
      {Moved(kRelay, "a"), WithSecret("new@example.com", "c")});
  EXPECT_EQ(diff.changed, std::vector<std::string>{kRelay});
  EXPECT_EQ(cache.Get(kRelay).token, "tok-a-2");
  ASSERT_EQ(cache.Status().size(), 2u);
  EXPECT_EQ(cache.Status()[1].mailbox, "new@example.com");
  cache.Stop();
}

// A rotated secret: while the fetch with it is in flight (the endpoint
// hangs), the cached token is still served; then the new one.
TEST(HelperReloadCache, RotatedSecretKeepsServingUntilFetched) {
  SecretFetcher fetcher;
  TokenCache cache({WithSecret(kRelay, "a")}, fetcher, CacheOptions{});
  cache.Start();
  ASSERT_EQ(cache.Get(kRelay).token, "tok-a-1");

  fetcher.Close();
  cache.Reconfigure({WithSecret(kRelay, "b")});
  ASSERT_TRUE(WaitUntil([&] { return fetcher.Entered() == 2; }));
  EXPECT_EQ(cache.Get(kRelay).token, "tok-a-1");

  fetcher.Open();
  EXPECT_TRUE(WaitUntil([&] { return cache.Get(kRelay).token == "tok-b-1"; }));
  EXPECT_EQ(fetcher.Calls("a"), 1);
  cache.Stop();
}

// A new name and refresh margin: the same token, no fetch; the next
// refresh follows the new margin (3600 s tokens, no jitter: due at
// 3600 - 1200 s instead of 3600 - 600 s) and logs the new name.
TEST(HelperReloadCache, UpdatedSettingsKeepTokenAndApplyMargin) {
  testing::ManualClock clock;
  CacheOptions options;
  options.clock = &clock;
  options.random = [] { return 0.0; };
  SecretFetcher fetcher;
  TokenCache cache({WithSecret(kRelay, "a")}, fetcher, options);
  cache.Start();
  ASSERT_EQ(cache.Get(kRelay).token, "tok-a-1");
  ASSERT_EQ(cache.Status()[0].next_refresh,
            testing::ManualClock::kStartUnix + 3000);

  Account updated = WithSecret(kRelay, "a");
  updated.name = "renamed";
  updated.refresh_margin_seconds = 1200;
  AccountDiff diff = cache.Reconfigure({updated});
  EXPECT_EQ(diff.kept, std::vector<std::string>{kRelay});
  EXPECT_EQ(diff.updated, std::vector<std::string>{kRelay});
  EXPECT_TRUE(diff.changed.empty());
  EXPECT_EQ(cache.Get(kRelay).token, "tok-a-1");
  EXPECT_EQ(fetcher.Entered(), 1);
  EXPECT_EQ(cache.Status()[0].name, "renamed");
  EXPECT_EQ(cache.Status()[0].next_refresh,
            testing::ManualClock::kStartUnix + 2400);

  // Past the new refresh time (the old one is 500 s away): a fetch,
  // logged under the new name.
  testing::LogCapture log;
  clock.Advance(std::chrono::seconds(2500));
  cache.ClockChanged();
  EXPECT_TRUE(WaitUntil([&] { return cache.Get(kRelay).token == "tok-a-2"; }));
  EXPECT_TRUE(log.Has({"event=token_fetched", "account=renamed"}));
  cache.Stop();
}

// A request waiting for a fetch when its account changes gets a token
// (the new state's) instead of an error.
TEST(HelperReloadCache, WaitingRequestSurvivesReload) {
  SecretFetcher fetcher;
  fetcher.Close();
  TokenCache cache({WithSecret(kRelay, "a")}, fetcher, CacheOptions{});
  cache.Start();

  protocol::Response answer;
  std::thread request([&] { answer = cache.Get(kRelay); });
  ASSERT_TRUE(WaitUntil([&] { return cache.WaitingRequests() == 1; }));
  cache.Reconfigure({Moved(kRelay, "b")});
  fetcher.Open();
  request.join();

  ASSERT_TRUE(answer.ok) << answer.text;
  EXPECT_TRUE(answer.token == "tok-a-1" || answer.token == "tok-b-1")
      << answer.token;
  EXPECT_EQ(cache.Get(kRelay).token, "tok-b-1");
  cache.Stop();
}

// A request waiting for a removed account's fetch in flight gets that
// fetch's token; later requests get no-account.
TEST(HelperReloadCache, RemovedAccountFinishesFetchInFlight) {
  SecretFetcher fetcher;
  fetcher.Close();
  TokenCache cache({WithSecret(kRelay, "a")}, fetcher, CacheOptions{});
  cache.Start();
  protocol::Response answer;
  std::thread request([&] { answer = cache.Get(kRelay); });
  ASSERT_TRUE(WaitUntil([&] { return cache.WaitingRequests() == 1; }));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.Entered() == 1; }));

  cache.Reconfigure({});
  fetcher.Open();
  request.join();
  EXPECT_TRUE(answer.ok) << answer.text;
  EXPECT_EQ(answer.token, "tok-a-1");
  EXPECT_EQ(cache.Get(kRelay).code, protocol::ErrorCode::kNoAccount);
  cache.Stop();
}

// Many requesters while the signal thread reloads again and again: every
// answer is a token of the right account or, for the account that comes
// and goes, no-account. Meant for the sanitizer builds.
TEST(HelperReloadCache, RequestsRaceReloads) {
  SecretFetcher fetcher;
  TokenCache cache({WithSecret(kRelay, "a")}, fetcher, CacheOptions{});
  cache.Start();
  std::atomic<bool> done = false;
  std::atomic<int> bad = 0;
  std::vector<std::thread> requesters;
  for (const char* mailbox : {kRelay, kOther, kRelay, kOther}) {
    requesters.emplace_back([&, mailbox] {
      while (!done) {
        protocol::Response r = cache.Get(mailbox);
        bool fine = r.ok ? r.token.starts_with("tok-")
                         : r.code == protocol::ErrorCode::kNoAccount &&
                               std::string(mailbox) == kOther;
        bad += fine ? 0 : 1;
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    // Rotated every time, moved to another tenant every other time.
    std::vector<Account> next{i % 4 < 2 ? WithSecret(kRelay, i % 2 ? "a" : "b")
                                        : Moved(kRelay, i % 2 ? "a" : "b")};
    if (i % 3 == 0)
      next.push_back(WithSecret(kOther, "o"));
    cache.Reconfigure(std::move(next));
  }
  done = true;
  for (auto& thread : requesters)
    thread.join();
  EXPECT_EQ(bad, 0);
  cache.Stop();
}

}  // namespace
}  // namespace xoauth2::helper
