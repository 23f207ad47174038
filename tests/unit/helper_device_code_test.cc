// SPDX-License-Identifier: MIT
//
// Unit tests of the device code sign-in (grant_device_code.h), driven by a
// scripted form poster and a fake clock whose SleepFor only moves time
// forward, so no test waits: the state machine's transitions, slow_down
// growing the interval, the answers that stop the flow, the code's
// expires_in, temporary failures that keep polling, 429 Retry-After, the
// devicecode request and answer, `authorize` storing the refresh token
// atomically with mode 0600 and never printing a token, and what a request
// sent masked where the endpoint's answer echoes it.

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "grant_device_code.h"
#include "helper_test_util.h"
#include "secret_file.h"

namespace xoauth2::helper {
namespace {

using testing::TempDir;
using PostResult = std::expected<HttpReply, TokenFailure>;
using State = DevicePoller::State;

// Steady time that only SleepFor moves; records every sleep in seconds.
class FakeClock : public FlowClock {
 public:
  TimePoint Now() override { return now_; }
  void SleepFor(std::chrono::seconds duration) override {
    sleeps.push_back(duration.count());
    now_ += duration;
  }
  long Elapsed() const {
    return static_cast<long>(
        std::chrono::duration_cast<std::chrono::seconds>(now_ - TimePoint{})
            .count());
  }

  std::vector<long> sleeps;

 private:
  TimePoint now_{};
};

// Answers POSTs from a script (the last entry repeats) and records them.
class ScriptedPoster {
 public:
  explicit ScriptedPoster(std::vector<PostResult> script)
      : script_(std::move(script)) {}

  FormPoster Poster() {
    return [this](const std::string& url, const Secret& body) {
      calls.push_back({url, body.Reveal()});
      std::size_t index = std::min(calls.size(), script_.size()) - 1;
      return script_[index];
    };
  }

  struct Call {
    std::string url;
    std::string body;
  };
  std::vector<Call> calls;

 private:
  std::vector<PostResult> script_;
};

PostResult Reply(long status, std::string body, long retry_after = -1) {
  HttpReply reply;
  reply.status = status;
  reply.body = Secret(std::move(body));
  if (retry_after >= 0)
    reply.retry_after = retry_after;
  return reply;
}

// A poll answer carrying OAuth error `error` (RFC 8628 section 3.5).
PostResult OAuthError(const std::string& error, long status = 400) {
  return Reply(status, R"({"error":")" + error +
                           R"(","error_description":"AADSTS70016: pending.)" +
                           R"(\r\nTrace ID: t","error_codes":[70016]})");
}

PostResult Pending() {
  return OAuthError("authorization_pending");
}

PostResult Granted(bool with_refresh_token = true) {
  std::string refresh =
      with_refresh_token ? R"(,"refresh_token":"rt-new+/=")" : "";
  return Reply(200, R"({"token_type":"Bearer","scope":"SMTP.Send",)"
                    R"("expires_in":3599,"access_token":"at-1")" +
                        refresh + "}");
}

PostResult Unreachable() {
  return std::unexpected(TransportFailure("cannot connect to the endpoint"));
}

// A public refresh_token account whose token file is in `dir`.
Account DelegatedAccount(const TempDir& dir) {
  Account account = testing::TestAccount();
  account.name = "relay";
  account.grant = Grant::kRefreshToken;
  account.client_secret = Secret();
  account.tenant = "organizations";
  account.scope = DefaultScope(Cloud::kGlobal, Grant::kRefreshToken);
  account.refresh_token_file = dir.path() + "/relay.refresh";
  return account;
}

DeviceAuthorization Authorization(long expires_in = 900) {
  DeviceAuthorization auth;
  auth.device_code = Secret("dc-1");
  auth.user_code = "ABCD-EFGH";
  auth.verification_uri = "https://microsoft.com/devicelogin";
  auth.expires_in = expires_in;
  auth.interval = 5;
  return auth;
}

const std::string kPollBody =
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code"
    "&client_id=11111111-2222-3333-4444-555555555555&device_code=dc-1";

// Runs a poller over `script`; the outcome, the clock and the poster.
struct PollRun {
  std::expected<TokenGrant, std::string> result;
  FakeClock clock;
  ScriptedPoster poster;
  std::ostringstream notes;
  int polls = 0;
  long interval = 0;

  PollRun(const Account& account, const DeviceAuthorization& auth,
          std::vector<PostResult> script)
      : poster(std::move(script)) {
    DevicePoller poller(account, auth, poster.Poster(), SecretMask(), clock,
                        notes);
    result = poller.Run();
    polls = poller.polls();
    interval = poller.interval();
  }
};

TEST(HelperDeviceCode, PendingPendingSuccessStepByStep) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  DeviceAuthorization auth = Authorization();
  FakeClock clock;
  ScriptedPoster poster({Pending(), Pending(), Granted()});
  std::ostringstream notes;
  DevicePoller poller(account, auth, poster.Poster(), SecretMask(), clock,
                      notes);

  EXPECT_EQ(poller.state(), State::kWaiting);
  const State expected[] = {State::kPolling, State::kWaiting,
                            State::kPolling, State::kWaiting,
                            State::kPolling, State::kSucceeded};
  for (State state : expected)
    EXPECT_EQ(poller.Step(), state);
  EXPECT_EQ(poller.Step(), State::kSucceeded);  // terminal stays put

  EXPECT_EQ(clock.sleeps, (std::vector<long>{5, 5, 5}));
  ASSERT_EQ(poster.calls.size(), 3u);
  for (const auto& call : poster.calls) {
    EXPECT_EQ(call.url, account.TokenUrl());
    EXPECT_EQ(call.body, kPollBody);
  }
  EXPECT_EQ(notes.str(), "");
}

TEST(HelperDeviceCode, RunReturnsGrantWithRefreshToken) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(),
              {Pending(), Pending(), Granted()});
  ASSERT_TRUE(run.result) << run.result.error();
  EXPECT_EQ(run.result->refresh_token.Reveal(), "rt-new+/=");
  EXPECT_EQ(run.result->expires_in, 3599);
  EXPECT_EQ(run.polls, 3);
}

// RFC 8628 section 3.5: each slow_down adds 5 s for all later polls.
TEST(HelperDeviceCode, SlowDownIncreasesInterval) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(),
              {Pending(), OAuthError("slow_down"), Pending(),
               OAuthError("slow_down"), Granted()});
  ASSERT_TRUE(run.result) << run.result.error();
  EXPECT_EQ(run.clock.sleeps, (std::vector<long>{5, 5, 10, 10, 15}));
  EXPECT_EQ(run.interval, 15);
}

struct StopCase {
  const char* name;
  PostResult answer;
  std::string reason;
};

class HelperDeviceCodeStop : public ::testing::TestWithParam<StopCase> {};

// Answers that end the flow at once, with a reason and the way out.
TEST_P(HelperDeviceCodeStop, StopsAfterOnePoll) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(),
              {GetParam().answer, Granted()});
  ASSERT_FALSE(run.result);
  EXPECT_NE(run.result.error().find(GetParam().reason), std::string::npos)
      << run.result.error();
  EXPECT_EQ(run.polls, 1);
  EXPECT_EQ(run.clock.sleeps, (std::vector<long>{5}));
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperDeviceCodeStop,
    ::testing::Values(
        StopCase{"Declined", OAuthError("authorization_declined"),
                 "the user declined the sign-in; run token-helper authorize "
                 "relay again"},
        StopCase{"ExpiredToken", OAuthError("expired_token"),
                 "the code expired before the sign-in finished; run "
                 "token-helper authorize relay again"},
        StopCase{"BadVerificationCode", OAuthError("bad_verification_code"),
                 "does not know this code"},
        StopCase{"InvalidClient", OAuthError("invalid_client", 401),
                 "the client credentials were refused: invalid_client"},
        StopCase{"NoRefreshToken", Granted(false),
                 "no refresh token; add offline_access"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// The flow ends when the code's own lifetime has passed, even while the
// endpoint keeps answering authorization_pending.
TEST(HelperDeviceCode, StopsWhenExpiresInReached) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(12), {Pending()});
  ASSERT_FALSE(run.result);
  EXPECT_NE(run.result.error().find("the code expired after 12 s"),
            std::string::npos)
      << run.result.error();
  EXPECT_EQ(run.polls, 2);
  EXPECT_EQ(run.clock.sleeps, (std::vector<long>{5, 5, 2}));
  EXPECT_EQ(run.clock.Elapsed(), 12);
}

// Transport errors, 5xx and HTML pages are temporary: keep polling.
TEST(HelperDeviceCode, TemporaryFailuresKeepPolling) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(),
              {Unreachable(), Reply(503, "<html>busy</html>"), Granted()});
  ASSERT_TRUE(run.result) << run.result.error();
  EXPECT_EQ(run.polls, 3);
  EXPECT_EQ(run.clock.sleeps, (std::vector<long>{5, 5, 5}));
  std::string notes = run.notes.str();
  EXPECT_NE(notes.find("still waiting: cannot connect"), std::string::npos);
  EXPECT_NE(notes.find("HTTP 503"), std::string::npos) << notes;
  EXPECT_EQ(notes.find("dc-1"), std::string::npos);
}

TEST(HelperDeviceCode, TransportFailuresStopAtExpiresIn) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(20), {Unreachable()});
  ASSERT_FALSE(run.result);
  EXPECT_NE(run.result.error().find("expired after 20 s"), std::string::npos);
  EXPECT_EQ(run.polls, 3);
  EXPECT_EQ(run.clock.Elapsed(), 20);
}

TEST(HelperDeviceCode, ThrottledWaitsRetryAfter) {
  TempDir dir;
  PollRun run(DelegatedAccount(dir), Authorization(),
              {Reply(429, "", 30), Pending(), Granted()});
  ASSERT_TRUE(run.result) << run.result.error();
  EXPECT_EQ(run.clock.sleeps, (std::vector<long>{5, 30, 5}));
}

// F12: a confidential client adds its secret to each poll.
TEST(HelperDeviceCode, ConfidentialClientSendsSecret) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  account.client_secret = Secret("s~+");
  PollRun run(account, Authorization(), {Granted()});
  ASSERT_EQ(run.poster.calls.size(), 1u);
  EXPECT_EQ(run.poster.calls[0].body, kPollBody + "&client_secret=s~%2B");
}

// What the endpoint echoes of a poll (device code, client secret) or of
// the transport (proxy password), raw and percent-encoded.
const std::string kEcho =
    "DAQ.echo~device+code DAQ.echo~device%2Bcode Cs~echo+/=secret "
    "Cs~echo%2B%2F%3Dsecret Px/echo~pass";

PostResult Echo(const std::string& error, long status) {
  return Reply(status, R"({"error":")" + error +
                           R"(","error_description":"AADSTS90: )" + kEcho +
                           R"(","trace_id":"DAQ.echo~device+code"})");
}

// None of the echoed values in `text`, and the mask in their place.
void ExpectMasked(const std::string& text) {
  EXPECT_NE(text.find("<redacted"), std::string::npos) << text;
  for (const char* leak : {"DAQ.echo", "Cs~echo", "Px/echo"})
    EXPECT_EQ(text.find(leak), std::string::npos) << text;
}

// The notes of a temporary failure and the reason the flow stops hold
// none of what the poll or the transport sent.
TEST(HelperDeviceCode, EchoedSecretsMasked) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  account.client_secret = Secret("Cs~echo+/=secret");
  DeviceAuthorization auth = Authorization();
  auth.device_code = Secret("DAQ.echo~device+code");
  SecretMask transport;
  transport.AddSecret("Px/echo~pass");
  FakeClock clock;
  ScriptedPoster poster(
      {Echo("temporarily_unavailable", 503), Echo("invalid_client", 401)});
  std::ostringstream notes;
  DevicePoller poller(account, auth, poster.Poster(), transport, clock, notes);
  auto result = poller.Run();
  ASSERT_FALSE(result);
  EXPECT_EQ(poller.polls(), 2);
  ExpectMasked(notes.str());
  ExpectMasked(result.error());
}

struct ParseCase {
  const char* name;
  PostResult reply;
  std::string error;  // empty: must parse
};

class HelperDeviceAuthorization : public ::testing::TestWithParam<ParseCase> {};

TEST_P(HelperDeviceAuthorization, Parses) {
  auto parsed = ParseDeviceAuthorization(*GetParam().reply, SecretMask());
  if (GetParam().error.empty()) {
    ASSERT_TRUE(parsed) << parsed.error();
    return;
  }
  ASSERT_FALSE(parsed);
  EXPECT_NE(parsed.error().find(GetParam().error), std::string::npos)
      << parsed.error();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperDeviceAuthorization,
    ::testing::Values(
        ParseCase{"Complete", Reply(200, R"({"device_code":"d","user_code":"U",
                    "verification_uri":"https://microsoft.com/devicelogin",
                    "expires_in":900,"interval":5,"message":"Go."})"),
                  ""},
        ParseCase{"NoDeviceCode",
                  Reply(200, R"({"user_code":"U","verification_uri":"x"})"),
                  "lacks device_code, user_code or verification_uri"},
        ParseCase{"HtmlPage", Reply(200, "<html></html>"),
                  "gave no code (HTTP 200)"},
        ParseCase{"NotPublicClient",
                  Reply(400, R"({"error":"unauthorized_client",
                    "error_description":"AADSTS700016: no such app"})"),
                  "gave no code (HTTP 400, unauthorized_client "
                  "(AADSTS700016: no such app)); check authority, "
                  "client_id, tenant, scope and that the app registration "
                  "allows public client flows"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HelperDeviceAuthorization, LenientNumbersAndSafeText) {
  auto parsed = ParseDeviceAuthorization(
      *Reply(200, R"({"device_code":"d","user_code":"AB\u001b[2JCD",
               "verification_url":"https://microsoft.com/devicelogin",
               "expires_in":"600","interval":"0"})"),
      SecretMask());
  ASSERT_TRUE(parsed) << parsed.error();
  EXPECT_EQ(parsed->expires_in, 600);
  EXPECT_EQ(parsed->interval, 1);  // never a busy loop
  EXPECT_EQ(parsed->user_code, "AB [2JCD");
  EXPECT_EQ(SignInInstructions(*parsed),
            "To sign in, open https://microsoft.com/devicelogin in a web "
            "browser and enter the code AB [2JCD.");

  auto defaults = ParseDeviceAuthorization(
      *Reply(200,
             R"({"device_code":"d","user_code":"U","verification_uri":"v"})"),
      SecretMask());
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->expires_in, 900);
  EXPECT_EQ(defaults->interval, 5);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

PostResult DeviceCodeAnswer() {
  return Reply(200, R"({"device_code":"dc-1","user_code":"ABCD-EFGH",
      "verification_uri":"https://microsoft.com/devicelogin",
      "expires_in":900,"interval":5,
      "message":"To sign in, use a web browser to open the page )"
                    R"(https://microsoft.com/devicelogin and enter the code )"
                    R"(ABCD-EFGH to authenticate."})");
}

// The whole flow: the devicecode request, the instructions, and the new
// refresh token replacing the old file atomically with mode 0600.
TEST(HelperAuthorize, StoresRefreshTokenWithMode0600) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  dir.Write("relay.refresh", "old-token\n", 0644);
  mode_t old_mask = umask(022);
  FakeClock clock;
  ScriptedPoster poster({DeviceCodeAnswer(), Pending(), Granted()});
  std::ostringstream out;
  std::ostringstream notes;
  auto result = AuthorizeAccount(account, poster.Poster(), SecretMask(), clock,
                                 out, notes);
  umask(old_mask);

  ASSERT_TRUE(result) << result.error();
  EXPECT_EQ(result->refresh_token_file, account.refresh_token_file);
  EXPECT_EQ(result->expires_in, 3599);
  struct stat info {};
  ASSERT_EQ(stat(account.refresh_token_file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadAll(account.refresh_token_file), "rt-new+/=\n");

  ASSERT_EQ(poster.calls.size(), 3u);
  EXPECT_EQ(poster.calls[0].url,
            "https://127.0.0.1:1/organizations/oauth2/v2.0/devicecode");
  EXPECT_EQ(poster.calls[0].body,
            "client_id=11111111-2222-3333-4444-555555555555&scope=https%3A%2F%"
            "2Foutlook.office.com%2FSMTP.Send%20offline_access");
  EXPECT_TRUE(out.str().starts_with(
      "To sign in, use a web browser to open the page "
      "https://microsoft.com/devicelogin and enter the code ABCD-EFGH to "
      "authenticate.\nSign in as relay@example.com within 900 s"))
      << out.str();
  for (const char* token : {"rt-new", "at-1", "dc-1"}) {
    EXPECT_EQ(out.str().find(token), std::string::npos) << token;
    EXPECT_EQ(notes.str().find(token), std::string::npos) << token;
  }
}

TEST(HelperAuthorize, FailedSignInKeepsOldRefreshToken) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  dir.Write("relay.refresh", "old-token\n");
  FakeClock clock;
  ScriptedPoster poster(
      {DeviceCodeAnswer(), OAuthError("authorization_declined")});
  std::ostringstream out;
  auto result =
      AuthorizeAccount(account, poster.Poster(), SecretMask(), clock, out, out);
  ASSERT_FALSE(result);
  EXPECT_EQ(ReadAll(account.refresh_token_file), "old-token\n");
}

// A refused devicecode request names the error without the proxy
// password the endpoint echoes.
TEST(HelperAuthorize, RefusedDeviceCodeMasksTransportSecret) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  FakeClock clock;
  ScriptedPoster poster({Echo("invalid_client", 400)});
  SecretMask transport;
  transport.AddSecret("Px/echo~pass");
  std::ostringstream out;
  auto result =
      AuthorizeAccount(account, poster.Poster(), transport, clock, out, out);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find("gave no code (HTTP 400, invalid_client"),
            std::string::npos)
      << result.error();
  EXPECT_NE(result.error().find("<redacted>"), std::string::npos)
      << result.error();
  EXPECT_EQ(result.error().find("Px/echo"), std::string::npos)
      << result.error();
}

TEST(HelperAuthorize, RefusesBeforeAnyRequest) {
  TempDir dir;
  FakeClock clock;
  ScriptedPoster poster({DeviceCodeAnswer()});
  std::ostringstream out;

  Account missing_dir = DelegatedAccount(dir);
  missing_dir.refresh_token_file = dir.path() + "/absent/relay.refresh";
  auto result = AuthorizeAccount(missing_dir, poster.Poster(), SecretMask(),
                                 clock, out, out);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find("cannot write the refresh token into " +
                                dir.path() + "/absent"),
            std::string::npos)
      << result.error();

  Account app_only = testing::TestAccount();
  result = AuthorizeAccount(app_only, poster.Poster(), SecretMask(), clock, out,
                            out);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().find("uses grant client_credentials, which needs "
                                "no sign-in"),
            std::string::npos);
  EXPECT_TRUE(poster.calls.empty());
}

TEST(HelperAuthorize, SummaryNamesFileAndExpiry) {
  TempDir dir;
  Account account = DelegatedAccount(dir);
  EXPECT_EQ(
      SignInSummary(account, {account.refresh_token_file, 3599}, 1700000000),
      "refresh token for relay@example.com stored in " +
          account.refresh_token_file +
          " (mode 0600); access token expires at 2023-11-14T23:13:19Z "
          "(in 3599 s)");
}

}  // namespace
}  // namespace xoauth2::helper
