// SPDX-License-Identifier: MIT
//
// Unit tests of the token cache (token_cache.h) with a fake fetcher: one
// fetch for many concurrent requests (F13), the bounded wait, the still
// valid token kept when a refresh fails (F07/F08), no fetch inside a 429's
// Retry-After window (F11), and `reject` dropping the token once per
// interval (F09).

#include <gtest/gtest.h>

#include <thread>

#include "helper_test_util.h"
#include "token_cache.h"

namespace xoauth2::helper {
namespace {

using testing::Failed;
using testing::FakeFetcher;
using testing::Granted;
using testing::LogCapture;
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

}  // namespace
}  // namespace xoauth2::helper
