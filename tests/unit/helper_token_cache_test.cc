// SPDX-License-Identifier: MIT
//
// Unit tests of the token cache (token_cache.h) with a fake fetcher: one
// fetch for many concurrent requests (F13), the bounded wait, the still
// valid token kept when a refresh fails (F07/F08), no fetch inside a 429's
// Retry-After window (F11), and `reject` dropping the token once per
// interval (F09). With a manual clock (no sleeps): refresh times spread
// by jitter, idle accounts refreshed on schedule (F18), no token below
// the margin when a fresh one can be had, F07, F08, F05 and F11 over
// time, the long interval for failures a person must fix, the status
// holding no token, and the refresh token aging warning (F18).

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "daemon.h"
#include "helper_test_util.h"
#include "token_cache.h"

namespace xoauth2::helper {
namespace {

using std::chrono::seconds;
using testing::Failed;
using testing::FakeFetcher;
using testing::Granted;
using testing::LogCapture;
using testing::ManualClock;
using testing::TempDir;
using testing::TestAccount;
using testing::WaitUntil;

constexpr const char* kMailbox = "relay@example.com";

// F13: while no usable token exists, 8 concurrent requests cause exactly
// one request to the endpoint, and all get its token.
TEST(HelperTokenCache, F13ConcurrentRequestsShareOneFetch) {
  FakeFetcher fetcher({Granted("tok-1")});
  fetcher.Close();
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  cache.Start();

  std::vector<protocol::Response> answers(8);
  std::vector<std::thread> threads;
  for (auto& answer : answers) {
    threads.emplace_back([&cache, &answer] { answer = cache.Get(kMailbox); });
  }
  ASSERT_TRUE(WaitUntil([&] { return cache.WaitingRequests() == 8; }));
  fetcher.Open();
  for (auto& thread : threads)
    thread.join();

  EXPECT_EQ(fetcher.calls(), 1);
  for (const auto& answer : answers) {
    ASSERT_TRUE(answer.ok) << answer.text;
    EXPECT_EQ(answer.token, "tok-1");
    EXPECT_GT(answer.expires, std::time(nullptr) + 3500);
  }
  cache.Stop();
}

TEST(HelperTokenCache, WaitIsBounded) {
  FakeFetcher fetcher({Granted("tok-1")});
  fetcher.Close();
  CacheOptions options;
  options.wait_bound = std::chrono::milliseconds(100);
  TokenCache cache({TestAccount()}, fetcher, options);
  cache.Start();

  auto started = std::chrono::steady_clock::now();
  protocol::Response answer = cache.Get(kMailbox);
  EXPECT_LT(std::chrono::steady_clock::now() - started,
            std::chrono::seconds(2));
  EXPECT_FALSE(answer.ok);
  EXPECT_EQ(answer.code, protocol::ErrorCode::kUnavailable);
  EXPECT_NE(answer.text.find("has not answered yet"), std::string::npos);
  fetcher.Open();
  cache.Stop();
}

TEST(HelperTokenCache, UnknownMailbox) {
  FakeFetcher fetcher({Granted("tok-1")});
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  protocol::Response answer = cache.Get("other@example.com");
  EXPECT_EQ(answer.code, protocol::ErrorCode::kNoAccount);
  EXPECT_EQ(cache.Reject("other@example.com", "x").code,
            protocol::ErrorCode::kNoAccount);
}

// F07/F08: a failed refresh keeps serving the token in hand, logs the
// class, and never logs the token itself.
TEST(HelperTokenCache, FailedRefreshKeepsValidToken) {
  LogCapture log;
  FakeFetcher fetcher({Granted("tok-1"), Failed(FailureClass::kNeedsPerson,
                                                "the grant was refused")});
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-1");

  cache.RefreshSoon(kMailbox);
  ASSERT_TRUE(WaitUntil([&] {
    return log.Has(
        {"event=token_fetch_failed", "class=needs-person", "token_kept=yes"});
  }));
  protocol::Response answer = cache.Get(kMailbox);
  EXPECT_TRUE(answer.ok);
  EXPECT_EQ(answer.token, "tok-1");
  EXPECT_EQ(fetcher.calls(), 2);
  cache.Stop();
  for (const std::string& line : log.Lines()) {
    EXPECT_EQ(line.find("tok-1"), std::string::npos) << line;
  }
}

// F11: after a 429 with Retry-After: 60 no request reaches the endpoint;
// requests are answered at once with the reason.
TEST(HelperTokenCache, F11ThrottledNoFetchBeforeRetryAfter) {
  LogCapture log;
  FakeFetcher fetcher(
      {Failed(FailureClass::kThrottled,
              "the token endpoint is throttling (HTTP 429)", 60)});
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  cache.Start();
  ASSERT_TRUE(WaitUntil([&] {
    return log.Has({"event=token_fetch_failed", "class=throttled"});
  }));

  for (int i = 0; i < 5; ++i) {
    protocol::Response answer = cache.Get(kMailbox);
    ASSERT_FALSE(answer.ok);
    EXPECT_EQ(answer.code, protocol::ErrorCode::kUnavailable);
    EXPECT_NE(answer.text.find("HTTP 429"), std::string::npos) << answer.text;
    EXPECT_NE(answer.text.find("next attempt in"), std::string::npos);
  }
  EXPECT_EQ(fetcher.calls(), 1);
  EXPECT_TRUE(log.Has({"retry_in_s=60 ", "class=throttled"}));
  cache.Stop();
}

// F09: `reject` of the current token drops it and the next request gets
// a fresh one; a second reject within the interval is ignored.
TEST(HelperTokenCache, F09RejectDropsTokenOncePerInterval) {
  LogCapture log;
  FakeFetcher fetcher({Granted("tok-1"), Granted("tok-2"), Granted("tok-3")});
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-1");

  EXPECT_TRUE(cache.Reject(kMailbox, "not-the-token").ok);
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-1");

  EXPECT_TRUE(cache.Reject(kMailbox, "tok-1").ok);
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-2");
  EXPECT_TRUE(log.Has({"event=token_rejected", "token=sha256:"}));

  EXPECT_TRUE(cache.Reject(kMailbox, "tok-2").ok);
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-2");
  EXPECT_EQ(fetcher.calls(), 2);
  EXPECT_TRUE(log.Has({"event=token_reject_ignored"}));
  cache.Stop();
}

// A failure without a token answers with the failure's message.
TEST(HelperTokenCache, FailureWithoutTokenReportsReason) {
  LogCapture log;
  FakeFetcher fetcher({Failed(FailureClass::kNeedsAdmin,
                              "the client credentials were "
                              "refused")});
  TokenCache cache({TestAccount()}, fetcher, CacheOptions{});
  fetcher.Close();
  cache.Start();
  protocol::Response answer;
  std::thread asker([&] { answer = cache.Get(kMailbox); });
  ASSERT_TRUE(WaitUntil([&] { return cache.WaitingRequests() == 1; }));
  fetcher.Open();
  asker.join();
  EXPECT_FALSE(answer.ok);
  EXPECT_EQ(answer.text, "the client credentials were refused");
  cache.Stop();
}

// Options with a manual clock and jitter draws fixed at `draw`.
CacheOptions ManualOptions(const ManualClock& clock, double draw = 0.0) {
  CacheOptions options;
  options.clock = &clock;
  options.random = [draw] { return draw; };
  return options;
}

// Moves the clock and lets the workers see it.
void Advance(ManualClock& clock, TokenCache& cache, seconds by) {
  clock.Advance(by);
  cache.ClockChanged();
}

// A refresh_token account whose file holds `content`, in `dir`.
Account RefreshAccount(const TempDir& dir, const std::string& content) {
  Account account = TestAccount();
  account.grant = Grant::kRefreshToken;
  account.client_secret = Secret();
  account.refresh_token_file = dir.Write("relay.refresh", content);
  return account;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A failure as the endpoint parser classifies `body` (HTTP 400).
testing::FetchResult Refused(std::string_view body) {
  auto parsed = ParseTokenResponse(HttpAnswer{400, body, {}},
                                   "contoso.onmicrosoft.com", SecretMask());
  return std::unexpected(parsed.error());
}

constexpr std::string_view kSignInFrequency =
    R"({"error":"invalid_grant","error_description":"AADSTS70043: The )"
    R"(refresh token has expired due to sign-in frequency checks.",)"
    R"("error_codes":[70043],"trace_id":"trace-70043",)"
    R"("suberror":"token_expired"})";

// Many accounts started together refresh at times spread over the
// jitter window [expiry - margin - 10% of lifetime, expiry - margin].
TEST(HelperTokenCacheClock, RefreshTimesSpreadByJitter) {
  ManualClock clock;
  CacheOptions options;
  options.clock = &clock;
  std::vector<Account> accounts;
  for (int i = 0; i < 20; ++i)
    accounts.push_back(TestAccount("r" + std::to_string(i) + "@example.com"));
  FakeFetcher fetcher({Granted("tok", 3600)});
  TokenCache cache(accounts, fetcher, options);
  cache.Start();
  ASSERT_TRUE(WaitUntil([&] {
    auto all = cache.Status();
    return std::ranges::all_of(all, [](const AccountStatus& a) {
      return a.health == AccountHealth::kHealthy;
    });
  }));

  std::int64_t earliest = INT64_MAX;
  std::int64_t latest = 0;
  for (const AccountStatus& account : cache.Status()) {
    std::int64_t in = account.next_refresh - ManualClock::kStartUnix;
    EXPECT_GE(in, 3600 - 600 - 360 - 1) << account.name;
    EXPECT_LE(in, 3600 - 600) << account.name;
    earliest = std::min(earliest, in);
    latest = std::max(latest, in);
  }
  EXPECT_GT(latest - earliest, 60) << "20 accounts refresh in one burst";
  cache.Stop();
}

// F18: nobody asks, yet the worker refreshes on schedule (which also
// rotates a refresh token).
TEST(HelperTokenCacheClock, F18IdleAccountRefreshedOnSchedule) {
  ManualClock clock;
  FakeFetcher fetcher({Granted("tok-1"), Granted("tok-2")});
  TokenCache cache({TestAccount()}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_TRUE(WaitUntil([&] {
    return fetcher.calls() == 1 && cache.Status()[0].token_expires != 0;
  }));
  EXPECT_EQ(cache.Status()[0].next_refresh, ManualClock::kStartUnix + 3000);

  Advance(clock, cache, seconds(3000));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.calls() == 2; }));
  ASSERT_TRUE(WaitUntil(
      [&] { return cache.Status()[0].token_hash == ShortHash("tok-2"); }));
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-2");
  cache.Stop();
}

// A token below the margin is not handed out when nothing stops a fresh
// fetch: the request waits for the new token.
TEST(HelperTokenCacheClock, BelowMarginWaitsForFreshToken) {
  ManualClock clock;
  FakeFetcher fetcher({Granted("tok-1"), Granted("tok-2")});
  TokenCache cache({TestAccount()}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-1");

  // The worker is not told: only the request can see the stale token.
  clock.Advance(seconds(3100));
  protocol::Response answer = cache.Get(kMailbox);
  EXPECT_EQ(answer.token, "tok-2");
  EXPECT_EQ(answer.expires, ManualClock::kStartUnix + 3100 + 3600);
  EXPECT_EQ(fetcher.calls(), 2);
  cache.Stop();
}

// While the refresh is in flight the still-valid token is served.
TEST(HelperTokenCacheClock, StillValidTokenServedDuringRefresh) {
  ManualClock clock;
  FakeFetcher fetcher({Granted("tok-1"), Granted("tok-2")});
  TokenCache cache({TestAccount()}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-1");

  fetcher.Close();
  Advance(clock, cache, seconds(3100));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.calls() == 2; }));
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-1");
  fetcher.Open();
  ASSERT_TRUE(WaitUntil(
      [&] { return cache.Status()[0].token_hash == ShortHash("tok-2"); }));
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-2");
  cache.Stop();
}

// F07: sign-in frequency refusal. The token in hand is served until it
// expires, then `unavailable`; needs-attention; one retry per 30 min; the
// refresh token file is untouched.
TEST(HelperTokenCacheClock, F07ServedUntilExpiryThenUnavailable) {
  LogCapture log;
  TempDir dir;
  Account account = RefreshAccount(dir, "0.AR-refresh\n");
  ManualClock clock;
  FakeFetcher fetcher({Granted("tok-1"), Refused(kSignInFrequency)});
  TokenCache cache({account}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-1");

  Advance(clock, cache, seconds(3000));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.calls() == 2; }));
  ASSERT_TRUE(WaitUntil([&] {
    return cache.Status()[0].health == AccountHealth::kNeedsAttention;
  }));
  AccountStatus status = cache.Status()[0];
  EXPECT_EQ(status.error_class, "needs-person");
  EXPECT_EQ(status.aadsts, "AADSTS70043");
  EXPECT_EQ(status.trace_id, "trace-70043");
  EXPECT_EQ(status.next_refresh, ManualClock::kStartUnix + 3000 + 1800);
  EXPECT_TRUE(log.Has({"event=token_fetch_failed", "class=needs-person",
                       "state=needs-attention", "retry_in_s=1800"}));

  clock.Advance(seconds(539));  // 61 s left: still valid
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-1");
  clock.Advance(seconds(2));  // 59 s left: not enough for a session
  protocol::Response answer = cache.Get(kMailbox);
  EXPECT_FALSE(answer.ok);
  EXPECT_EQ(answer.code, protocol::ErrorCode::kUnavailable);
  EXPECT_NE(answer.text.find("AADSTS70043"), std::string::npos);
  EXPECT_EQ(fetcher.calls(), 2);
  EXPECT_EQ(ReadFile(account.refresh_token_file), "0.AR-refresh\n");

  // The long interval over, one more attempt.
  Advance(clock, cache, seconds(1800 - 541));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.calls() == 3; }));
  cache.Stop();
}

// F08: a Conditional Access location block, then success at the next
// scheduled attempt; nothing is discarded.
TEST(HelperTokenCacheClock, F08LocationBlockThenSuccess) {
  TempDir dir;
  Account account = RefreshAccount(dir, "0.AR-refresh\n");
  ManualClock clock;
  FakeFetcher fetcher(
      {Granted("tok-1"),
       Refused(R"({"error":"invalid_grant","error_description":"AADSTS53003: )"
               R"(Access has been blocked by Conditional Access policies."})"),
       Granted("tok-2")});
  TokenCache cache({account}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-1");

  Advance(clock, cache, seconds(3000));
  ASSERT_TRUE(
      WaitUntil([&] { return cache.Status()[0].aadsts == "AADSTS53003"; }));
  AccountStatus blocked = cache.Status()[0];
  EXPECT_EQ(blocked.next_refresh, ManualClock::kStartUnix + 3005);
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-1");

  Advance(clock, cache, seconds(5));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.calls() == 3; }));
  ASSERT_TRUE(WaitUntil(
      [&] { return cache.Status()[0].health == AccountHealth::kHealthy; }));
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-2");
  EXPECT_EQ(ReadFile(account.refresh_token_file), "0.AR-refresh\n");
  cache.Stop();
}

// F05: a refresh token from another tenant is a configuration error whose
// message names the configured tenant; the file is kept.
TEST(HelperTokenCacheClock, F05OtherTenantNamesTenant) {
  TempDir dir;
  Account account = RefreshAccount(dir, "0.AR-refresh\n");
  ManualClock clock;
  FakeFetcher fetcher({Refused(
      R"({"error":"invalid_grant","error_description":"AADSTS7000012: )"
      R"(The grant was obtained for a different tenant."})")});
  TokenCache cache({account}, fetcher, ManualOptions(clock));
  cache.Start();
  protocol::Response answer = cache.Get(kMailbox);
  ASSERT_FALSE(answer.ok);
  EXPECT_NE(answer.text.find("different tenant than contoso.onmicrosoft.com"),
            std::string::npos)
      << answer.text;
  AccountStatus status = cache.Status()[0];
  EXPECT_EQ(status.error_class, "configuration");
  EXPECT_EQ(status.health, AccountHealth::kNeedsAttention);
  EXPECT_NE(status.error.find("set tenant to"), std::string::npos);
  EXPECT_EQ(ReadFile(account.refresh_token_file), "0.AR-refresh\n");
  cache.Stop();
}

// F11 over time: nothing before 60 s, then exactly one new request.
TEST(HelperTokenCacheClock, F11RetryAfterHonouredOnTheClock) {
  ManualClock clock;
  FakeFetcher fetcher(
      {Failed(FailureClass::kThrottled, "throttled (HTTP 429)", 60),
       Granted("tok-1")});
  TokenCache cache({TestAccount()}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_TRUE(WaitUntil(
      [&] { return cache.Status()[0].health == AccountHealth::kRetrying; }));
  EXPECT_EQ(cache.Status()[0].next_refresh, ManualClock::kStartUnix + 60);

  Advance(clock, cache, seconds(59));
  EXPECT_NE(cache.Get(kMailbox).text.find("next attempt in 1 s"),
            std::string::npos);
  EXPECT_EQ(fetcher.calls(), 1);
  Advance(clock, cache, seconds(1));
  ASSERT_TRUE(WaitUntil([&] { return fetcher.calls() == 2; }));
  EXPECT_EQ(cache.Get(kMailbox).token, "tok-1");
  cache.Stop();
}

// `status` over the protocol: short hash only, never the token.
TEST(HelperTokenCacheClock, StatusHoldsNoToken) {
  ManualClock clock;
  FakeFetcher fetcher({Granted("tok-SECRET-value")});
  TokenCache cache({TestAccount()}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_EQ(cache.Get(kMailbox).token, "tok-SECRET-value");

  protocol::Response response =
      HandleRequest(cache, protocol::Request{protocol::Verb::kStatus, {}, {}});
  std::string line = protocol::FormatResponse(response);
  EXPECT_TRUE(line.starts_with("ok-status {")) << line;
  EXPECT_EQ(line.find("tok-SECRET"), std::string::npos);
  EXPECT_EQ(line.find("s3cret"), std::string::npos);
  EXPECT_NE(line.find(ShortHash("tok-SECRET-value")), std::string::npos);
  EXPECT_NE(line.find(R"("state":"healthy")"), std::string::npos);
  cache.Stop();
}

// Sets the modification time of `path` to `unix_seconds`.
void SetMtime(const std::string& path, std::int64_t unix_seconds) {
  struct timespec times[2] = {{unix_seconds, 0}, {unix_seconds, 0}};
  utimensat(AT_FDCWD, path.c_str(), times, 0);
}

// F18: a refresh token file not rewritten for 14 days is reported, by
// the periodic check too (not only at start), in the log and the status.
TEST(HelperTokenCacheClock, F18AgingWarningChecksPeriodically) {
  LogCapture log;
  TempDir dir;
  Account account = RefreshAccount(dir, "0.AR-refresh\n");
  SetMtime(account.refresh_token_file, ManualClock::kStartUnix - 13 * 86400);
  ManualClock clock;
  FakeFetcher fetcher({Granted("tok-1")});  // never rotates
  TokenCache cache({account}, fetcher, ManualOptions(clock));
  cache.Start();
  ASSERT_TRUE(WaitUntil(
      [&] { return cache.Status()[0].refresh_token_age == 13 * 86400; }));
  EXPECT_FALSE(cache.Status()[0].refresh_token_aging);
  EXPECT_FALSE(log.Has({"event=refresh_token_aging"}));

  Advance(clock, cache, seconds(86400));
  ASSERT_TRUE(WaitUntil([&] {
    return log.Has({"level=warn event=refresh_token_aging", "age_days=14"});
  }));
  EXPECT_TRUE(cache.Status()[0].refresh_token_aging);
  cache.Stop();
}

}  // namespace
}  // namespace xoauth2::helper
