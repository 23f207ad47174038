// SPDX-License-Identifier: MIT
//
// Unit tests of the refresh policy (refresh_policy.h) and the status
// formats (account_status.h): margin and jitter bounds, retry delays per
// failure class (table-driven: growth and cap, Retry-After, the long
// fixed interval, AADSTS53003), the aging threshold, the per-cloud
// authorities and scopes against the reference table, Google's endpoint
// and request body, and the status JSON and table holding no token.

#include <gtest/gtest.h>

#include "account_status.h"
#include "config.h"
#include "helper_test_util.h"
#include "refresh_policy.h"
#include "token_endpoint.h"

namespace xoauth2::helper {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

struct MarginCase {
  long configured;
  long lifetime;
  long margin;
  bool shortened;
};

class HelperMargin : public ::testing::TestWithParam<MarginCase> {};

// The margin is never below 600 s unless the lifetime forces half of it.
TEST_P(HelperMargin, EffectiveMargin) {
  const MarginCase& c = GetParam();
  MarginChoice choice = EffectiveMargin(seconds(c.configured),
                                        seconds(c.lifetime), RefreshSettings{});
  EXPECT_EQ(choice.margin, seconds(c.margin));
  EXPECT_EQ(choice.shortened, c.shortened);
}

INSTANTIATE_TEST_SUITE_P(Table, HelperMargin,
                         ::testing::Values(MarginCase{600, 3600, 600, false},
                                           MarginCase{300, 3600, 600, false},
                                           MarginCase{1200, 3600, 1200, false},
                                           MarginCase{600, 1200, 600, false},
                                           MarginCase{600, 900, 450, true},
                                           MarginCase{600, 60, 30, true},
                                           MarginCase{1200, 2000, 1000, true}));

// Refresh at lifetime - margin - jitter, jitter within 10% of lifetime.
TEST(HelperRefreshDelay, JitterBounds) {
  RefreshSettings settings;
  EXPECT_EQ(RefreshDelay(seconds(3600), seconds(600), 0.0, settings),
            seconds(3000));
  EXPECT_EQ(RefreshDelay(seconds(3600), seconds(600), 0.5, settings),
            seconds(2820));
  milliseconds latest =
      RefreshDelay(seconds(3600), seconds(600), 0.999999, settings);
  EXPECT_GE(latest, seconds(2640));
  EXPECT_LT(latest, seconds(2641));
  EXPECT_EQ(RefreshDelay(seconds(60), seconds(30), 1.0, settings), seconds(24));
}

TokenFailure Failure(FailureClass failure_class, long retry_after = 0,
                     std::string aadsts = "") {
  TokenFailure failure;
  failure.failure_class = failure_class;
  failure.retry_after_seconds = retry_after;
  failure.aadsts = std::move(aadsts);
  return failure;
}

struct RetryCase {
  const char* name;
  TokenFailure failure;
  int failures;
  double draw;
  long expected;
};

class HelperRetryDelay : public ::testing::TestWithParam<RetryCase> {};

TEST_P(HelperRetryDelay, ByClass) {
  const RetryCase& c = GetParam();
  EXPECT_EQ(RetryDelay(c.failure, c.failures, c.draw, RefreshSettings{}),
            seconds(c.expected));
}

std::vector<RetryCase> RetryCases() {
  auto temporary = Failure(FailureClass::kTemporary);
  auto person = Failure(FailureClass::kNeedsPerson);
  return {
      // Temporary: 5 s doubling, +20% jitter at most, capped at 300 s.
      {"Temporary1", temporary, 1, 0.0, 5},
      {"Temporary2", temporary, 2, 0.0, 10},
      {"Temporary3", temporary, 3, 0.0, 20},
      {"Temporary6", temporary, 6, 0.0, 160},
      {"Temporary7", temporary, 7, 0.0, 300},
      {"Temporary40", temporary, 40, 0.0, 300},
      {"Temporary3Jitter", temporary, 3, 0.99, 23},
      {"Temporary6Jitter", temporary, 6, 0.99, 191},
      {"TemporaryCapWithJitter", temporary, 9, 0.99, 300},
      // Throttled: exactly Retry-After (F11), at most an hour.
      {"Retry60", Failure(FailureClass::kThrottled, 60), 1, 0.9, 60},
      {"Retry60Again", Failure(FailureClass::kThrottled, 60), 5, 0.9, 60},
      {"RetryHuge", Failure(FailureClass::kThrottled, 86400), 1, 0.0, 3600},
      {"RetryAtCap", Failure(FailureClass::kThrottled, 3600), 1, 0.0, 3600},
      {"RetryPastCap", Failure(FailureClass::kThrottled, 3601), 1, 0.0, 3600},
      {"ThrottledNoHeader", Failure(FailureClass::kThrottled), 2, 0.0, 10},
      // A person must act: one long fixed interval, however many failures.
      {"Person1", person, 1, 0.0, 1800},
      {"Person50", person, 50, 0.9, 1800},
      {"Admin", Failure(FailureClass::kNeedsAdmin), 3, 0.5, 1800},
      {"Config", Failure(FailureClass::kConfiguration), 1, 0.0, 1800},
      // F08: a Conditional Access block keeps the temporary schedule.
      {"Location53003", Failure(FailureClass::kNeedsPerson, 0, "AADSTS53003"),
       1, 0.0, 5},
      {"Location53003Cap",
       Failure(FailureClass::kConfiguration, 0, "AADSTS53003"), 12, 0.0, 300},
  };
}

INSTANTIATE_TEST_SUITE_P(Table, HelperRetryDelay,
                         ::testing::ValuesIn(RetryCases()),
                         [](const auto& param_info) {
                           return param_info.param.name;
                         });

TEST(HelperRetryDelay, NeedsAttentionClasses) {
  EXPECT_TRUE(NeedsAttention(FailureClass::kNeedsPerson));
  EXPECT_TRUE(NeedsAttention(FailureClass::kNeedsAdmin));
  EXPECT_TRUE(NeedsAttention(FailureClass::kConfiguration));
  EXPECT_FALSE(NeedsAttention(FailureClass::kThrottled));
  EXPECT_FALSE(NeedsAttention(FailureClass::kTemporary));
}

TEST(HelperRefreshTokenAging, Threshold) {
  seconds fourteen_days(14 * 86400);
  EXPECT_FALSE(RefreshTokenAging(1000, 1000 + 14 * 86400 - 1, fourteen_days));
  EXPECT_TRUE(RefreshTokenAging(1000, 1000 + 14 * 86400, fourteen_days));
  EXPECT_TRUE(RefreshTokenAging(1000, 1000 + 80 * 86400, fourteen_days));
}

struct CloudCase {
  Cloud cloud;
  const char* authority;
  const char* delegated;
  const char* app_only;
};

class HelperCloudTable : public ::testing::TestWithParam<CloudCase> {};

// The reference table "Authorities and SMTP scopes per cloud", verbatim.
TEST_P(HelperCloudTable, MatchesReference) {
  const CloudCase& c = GetParam();
  EXPECT_EQ(DefaultAuthority(c.cloud), c.authority);
  EXPECT_EQ(DefaultScope(c.cloud, Grant::kRefreshToken),
            std::string(c.delegated) + " offline_access");
  EXPECT_EQ(DefaultScope(c.cloud, Grant::kClientCredentials), c.app_only);
}

INSTANTIATE_TEST_SUITE_P(
    Reference, HelperCloudTable,
    ::testing::Values(
        CloudCase{Cloud::kGlobal, "https://login.microsoftonline.com",
                  "https://outlook.office.com/SMTP.Send",
                  "https://outlook.office365.com/.default"},
        CloudCase{Cloud::kUsGov, "https://login.microsoftonline.us",
                  "https://outlook.office365.us/SMTP.Send",
                  "https://outlook.office365.us/.default"},
        CloudCase{Cloud::kChina, "https://login.partner.microsoftonline.cn",
                  "https://partner.outlook.cn/SMTP.Send",
                  "https://partner.outlook.cn/.default"}));

// Google: {authority}/token, a refresh body without scope, secret last.
TEST(HelperGoogle, TokenUrlAndRequestBody) {
  Account account = testing::TestAccount("relay@gmail.example");
  account.provider = Provider::kGoogle;
  account.authority = std::string(kGoogleAuthority);
  account.tenant.clear();
  account.grant = Grant::kRefreshToken;
  account.client_id = "123-abc.apps.googleusercontent.com";
  account.client_secret = Secret("GOCSPX-a+b/c");
  account.scope = std::string(kGoogleMailScope);
  EXPECT_EQ(account.TokenUrl(), "https://oauth2.googleapis.com/token");

  auto body = BuildTokenRequestBody(account, Secret("1//0g-refresh"));
  ASSERT_TRUE(body) << body.error();
  EXPECT_EQ(body->text.Reveal(),
            "grant_type=refresh_token"
            "&client_id=123-abc.apps.googleusercontent.com"
            "&refresh_token=1%2F%2F0g-refresh"
            "&client_secret=GOCSPX-a%2Bb%2Fc");

  account.authority = "https://127.0.0.1:8443";
  EXPECT_EQ(account.TokenUrl(), "https://127.0.0.1:8443/token");
}

AccountStatus SampleStatus() {
  AccountStatus status;
  status.name = "relay";
  status.mailbox = "relay@example.com";
  status.provider = "microsoft";
  status.grant = "refresh_token";
  status.health = AccountHealth::kNeedsAttention;
  status.error_class = "needs-person";
  status.aadsts = "AADSTS70043";
  status.error = "the grant was refused: invalid_grant";
  status.trace_id = "0000aaaa-1111";
  status.failures = 2;
  status.last_success = 1700000000;
  status.token_expires = 1700003600;
  status.token_hash = ShortHash("tok-secret");
  status.next_refresh = 1700001800;
  status.refresh_token_age = 15 * 86400;
  status.refresh_token_aging = true;
  return status;
}

TEST(HelperAccountStatus, JsonRoundTripsAndHoldsNoToken) {
  std::string line = StatusJson({SampleStatus()}, 1700000600);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_EQ(line.find("tok-secret"), std::string::npos);
  EXPECT_NE(line.find(R"("state":"needs-attention")"), std::string::npos);

  auto report = ParseStatusJson(line);
  ASSERT_TRUE(report) << report.error();
  ASSERT_EQ(report->accounts.size(), 1u);
  const AccountStatus& back = report->accounts[0];
  EXPECT_EQ(back.health, AccountHealth::kNeedsAttention);
  EXPECT_EQ(back.aadsts, "AADSTS70043");
  EXPECT_EQ(back.token_hash, ShortHash("tok-secret"));
  EXPECT_EQ(back.refresh_token_age, 15 * 86400);
  EXPECT_TRUE(back.refresh_token_aging);
  EXPECT_EQ(report->now, 1700000600);
}

TEST(HelperAccountStatus, ManyAccountsFitInOneResponse) {
  std::vector<AccountStatus> many(200, SampleStatus());
  std::string line = StatusJson(many, 1700000600);
  EXPECT_LE(line.size(), protocol::kMaxStatusBytes);
  auto report = ParseStatusJson(line);
  ASSERT_TRUE(report);
  EXPECT_GT(report->accounts.size(), 10u);
  EXPECT_EQ(report->accounts.size() + static_cast<std::size_t>(report->omitted),
            200u);
  EXPECT_NE(FormatStatusTable(*report).find("more accounts did not fit"),
            std::string::npos);
}

TEST(HelperAccountStatus, TableHasOneLinePerAccount) {
  StatusReport report{1700000600, {SampleStatus()}, 0};
  std::string table = FormatStatusTable(report);
  EXPECT_TRUE(table.starts_with("ACCOUNT  MAILBOX ")) << table;
  EXPECT_NE(table.find("\nrelay    relay@example.com  needs-attention  "
                       "50m         20m           10m ago       "
                       "15d0h (aging)      needs-person AADSTS70043: "
                       "the grant was refused: invalid_grant\n"),
            std::string::npos)
      << table;
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2);
}

}  // namespace
}  // namespace xoauth2::helper
