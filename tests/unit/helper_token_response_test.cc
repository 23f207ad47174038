// SPDX-License-Identifier: MIT
//
// Unit tests of token endpoint answer parsing and classification
// (token_response.h), table-driven: success forms, malformed bodies, each
// error class from the reference table, AADSTS7000012 (F05), AADSTS70043
// with suberror (F07), 429 with Retry-After (F11), redirects (F15).

#include <gtest/gtest.h>

#include "token_response.h"

namespace xoauth2::helper {
namespace {

struct Case {
  const char* name;
  long status;
  std::string body;
  std::optional<long> retry_after;
  bool ok;
  FailureClass failure_class;
  std::vector<std::string> message_parts;
};

constexpr auto kTemp = FailureClass::kTemporary;

std::string Error(const std::string& error, const std::string& description,
                  const std::string& extra = "") {
  return R"({"error":")" + error + R"(","error_description":")" + description +
         R"(\r\nTrace ID: t-1\r\nCorrelation ID: c-1\r\nTimestamp: x",)"
         R"("trace_id":"t-1","correlation_id":"c-1")" +
         extra + "}";
}

std::vector<Case> Cases() {
  return {
      {"Success",
       200,
       R"({"token_type":"Bearer","scope":"s","expires_in":3599,)"
       R"("ext_expires_in":3599,"access_token":"eyJ0.A.B"})",
       {},
       true,
       kTemp,
       {}},
      {"ExpiresInString",
       200,
       R"({"token_type":"bearer","expires_in":"3599","access_token":"t"})",
       {},
       true,
       kTemp,
       {}},
      {"NoTokenType",
       200,
       R"({"expires_in":60,"access_token":"t"})",
       {},
       true,
       kTemp,
       {}},
      {"MissingAccessToken",
       200,
       R"({"expires_in":3599})",
       {},
       false,
       kTemp,
       {"has no access_token"}},
      {"AccessTokenNumber",
       200,
       R"({"expires_in":3599,"access_token":5})",
       {},
       false,
       kTemp,
       {"has no access_token"}},
      {"MissingExpiresIn",
       200,
       R"({"access_token":"t"})",
       {},
       false,
       kTemp,
       {"has no numeric expires_in"}},
      {"ExpiresInGarbage",
       200,
       R"({"access_token":"t","expires_in":"soon"})",
       {},
       false,
       kTemp,
       {"has no numeric expires_in"}},
      {"ExpiresInNegative",
       200,
       R"({"access_token":"t","expires_in":-5})",
       {},
       false,
       kTemp,
       {"non-positive expires_in"}},
      // Found by fuzz_token_response: casting -1e300 to long was undefined.
      {"ExpiresInHugeNegativeFloat",
       200,
       R"({"access_token":"t","expires_in":-1e300})",
       {},
       false,
       kTemp,
       {"has no numeric expires_in"}},
      // Lifetimes that would overflow a nanosecond clock are refused.
      {"ExpiresInBeyondClock",
       200,
       R"({"access_token":"t","expires_in":10000000000})",
       {},
       false,
       kTemp,
       {"has no numeric expires_in"}},
      {"ExpiresInStringBeyondClock",
       200,
       R"({"access_token":"t","expires_in":"9223372036854775807"})",
       {},
       false,
       kTemp,
       {"has no numeric expires_in"}},
      {"TokenTypeMac",
       200,
       R"({"access_token":"t","expires_in":5,"token_type":"mac"})",
       {},
       false,
       kTemp,
       {"token_type other than Bearer"}},
      {"TokenWithSpace",
       200,
       R"({"access_token":"a b","expires_in":5})",
       {},
       false,
       kTemp,
       {"cannot pass on"}},
      {"Html502",
       502,
       "<html><body>Bad gateway</body></html>",
       {},
       false,
       kTemp,
       {"HTTP 502", "not JSON"}},
      {"Html200",
       200,
       "<!DOCTYPE html><p>sign in</p>",
       {},
       false,
       kTemp,
       {"not JSON"}},
      {"TruncatedJson",
       200,
       R"({"access_token":"eyJ0.A.B","expires_in":35)",
       {},
       false,
       kTemp,
       {"truncated JSON"}},
      {"JsonArray", 200, "[1,2]", {}, false, kTemp, {"not JSON"}},
      {"Empty", 500, "", {}, false, kTemp, {"HTTP 500"}},
      {"HugeBody",
       200,
       std::string(70000, ' '),
       {},
       false,
       kTemp,
       {"exceeds 64 KiB"}},
      {"Redirect302",
       302,
       "",
       {},
       false,
       kTemp,
       {"redirect (HTTP 302)", "not followed"}},
      {"Throttled429",
       429,
       "{}",
       60,
       false,
       FailureClass::kThrottled,
       {"HTTP 429", "waiting 60 s"}},
      {"ServerError503Json",
       503,
       Error("temporarily_unavailable", "AADSTS50196: loop"),
       {},
       false,
       kTemp,
       {"HTTP 503"}},
      {"InvalidGrant70043",
       400,
       Error("invalid_grant",
             "AADSTS70043: The refresh token has expired or is invalid due "
             "to sign-in frequency checks by conditional access.",
             R"(,"error_codes":[70043],"suberror":"token_expired")"),
       {},
       false,
       FailureClass::kNeedsPerson,
       {"invalid_grant (AADSTS70043: The refresh token", "sign in again"}},
      {"InteractionRequired",
       400,
       Error("interaction_required", "AADSTS50076: MFA"),
       {},
       false,
       FailureClass::kNeedsPerson,
       {"interaction_required"}},
      {"ConsentRequired",
       400,
       Error("consent_required", "AADSTS65001: x"),
       {},
       false,
       FailureClass::kNeedsPerson,
       {"consent_required"}},
      {"InvalidClient",
       401,
       Error("invalid_client", "AADSTS7000215: Invalid client secret."),
       {},
       false,
       FailureClass::kNeedsAdmin,
       {"client credentials were refused", "not its ID"}},
      {"UnauthorizedClient",
       400,
       Error("unauthorized_client", "AADSTS700016"),
       {},
       false,
       FailureClass::kConfiguration,
       {"misconfigured"}},
      {"InvalidScope",
       400,
       Error("invalid_scope", "AADSTS70011: scope"),
       {},
       false,
       FailureClass::kConfiguration,
       {"invalid_scope"}},
      {"InvalidRequest900144",
       400,
       Error("invalid_request",
             "AADSTS900144: The request body must contain "
             "the following parameter: 'scope'."),
       {},
       false,
       FailureClass::kConfiguration,
       {"AADSTS900144"}},
      {"UnsupportedGrantType",
       400,
       Error("unsupported_grant_type", "x"),
       {},
       false,
       FailureClass::kConfiguration,
       {"unsupported_grant_type"}},
      {"OtherTenant7000012",
       400,
       Error("invalid_grant",
             "AADSTS7000012: The grant was obtained for a different tenant."),
       {},
       false,
       FailureClass::kConfiguration,
       {"issued for a different tenant than contoso.onmicrosoft.com",
        "set tenant to the tenant used at sign-in"}},
      {"ErrorWithoutDescription",
       400,
       R"({"error":"invalid_grant"})",
       {},
       false,
       FailureClass::kNeedsPerson,
       {"invalid_grant"}},
      {"ErrorNotString",
       400,
       R"({"error":7})",
       {},
       false,
       FailureClass::kConfiguration,
       {"no error code"}},
      {"NoErrorField",
       404,
       R"({"message":"not found"})",
       {},
       false,
       kTemp,
       {"HTTP 404 without an OAuth error"}},
  };
}

class HelperTokenResponse : public ::testing::TestWithParam<Case> {};

TEST_P(HelperTokenResponse, ParsesAndClassifies) {
  const Case& c = GetParam();
  auto result = ParseTokenResponse(HttpAnswer{c.status, c.body, c.retry_after},
                                   "contoso.onmicrosoft.com", SecretMask());
  ASSERT_EQ(result.has_value(), c.ok)
      << (result ? "accepted" : result.error().message);
  if (c.ok) {
    EXPECT_FALSE(result->access_token.empty());
    EXPECT_GT(result->expires_in, 0);
    return;
  }
  const TokenFailure& failure = result.error();
  EXPECT_EQ(FailureClassName(failure.failure_class),
            FailureClassName(c.failure_class));
  EXPECT_EQ(failure.http_status, c.status);
  for (const std::string& part : c.message_parts) {
    EXPECT_NE(failure.message.find(part), std::string::npos)
        << failure.message << "\nmissing: " << part;
  }
  // A failure message never repeats token material from the body.
  EXPECT_EQ(failure.message.find("eyJ0"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Table, HelperTokenResponse,
                         ::testing::ValuesIn(Cases()),
                         [](const auto& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(HelperTokenResponse, SuccessFields) {
  auto result = ParseTokenResponse(
      HttpAnswer{200,
                 R"({"token_type":"Bearer","expires_in":"4000",)"
                 R"("access_token":"A.B.C","refresh_token":"0.R"})",
                 {}},
      "t", SecretMask());
  ASSERT_TRUE(result);
  EXPECT_EQ(result->access_token.Reveal(), "A.B.C");
  EXPECT_EQ(result->expires_in, 4000);
  EXPECT_EQ(result->refresh_token.Reveal(), "0.R");
}

// F07: the fields the operator needs are kept, description cut at line end.
TEST(HelperTokenResponse, F07SignInFrequencyFields) {
  auto result = ParseTokenResponse(
      HttpAnswer{400,
                 Error("invalid_grant", "AADSTS70043: expired",
                       R"(,"error_codes":[70043],"suberror":"token_expired")"),
                 {}},
      "t", SecretMask());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().error, "invalid_grant");
  EXPECT_EQ(result.error().aadsts, "AADSTS70043");
  EXPECT_EQ(result.error().suberror, "token_expired");
  EXPECT_EQ(result.error().description, "AADSTS70043: expired");
  EXPECT_EQ(result.error().trace_id, "t-1");
  EXPECT_EQ(result.error().correlation_id, "c-1");
}

TEST(HelperTokenResponse, AadstsFromErrorCodesWhenNotInText) {
  auto result = ParseTokenResponse(
      HttpAnswer{400, R"({"error":"invalid_grant","error_codes":[53003]})", {}},
      "t", SecretMask());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().aadsts, "AADSTS53003");
}

TEST(HelperTokenResponse, RetryAfterHeaderValues) {
  EXPECT_EQ(ParseRetryAfter(" 60\r\n"), 60);
  EXPECT_EQ(ParseRetryAfter("0"), 0);
  EXPECT_FALSE(ParseRetryAfter("-1"));
  EXPECT_FALSE(ParseRetryAfter("soon"));
  EXPECT_FALSE(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 CET", 0));
}

// F11: Retry-After as an HTTP-date counts from now, in each of the three
// forms RFC 9110 makes recipients accept; a past date means now.
TEST(HelperTokenResponse, RetryAfterHttpDate) {
  constexpr std::int64_t kNow = 1445412420;  // 2015-10-21T07:27:00Z
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT\r\n", kNow), 60);
  EXPECT_EQ(ParseRetryAfter("Wednesday, 21-Oct-15 07:28:00 GMT", kNow), 60);
  EXPECT_EQ(ParseRetryAfter("Wed Oct 21 07:28:00 2015", kNow), 60);
  EXPECT_EQ(ParseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", kNow), 0);
  EXPECT_EQ(ParseRetryAfter("120", kNow), 120);
}

}  // namespace
}  // namespace xoauth2::helper
