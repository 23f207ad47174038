// SPDX-License-Identifier: MIT
//
// Unit tests of masking what a token request sent wherever the token
// endpoint's answer is kept or reported (SecretMask, applied in
// ParseTokenResponse). A scripted endpoint behind a real CurlTokenFetcher
// and TokenCache issues one access token, then answers every refresh with
// invalid_client whose texts repeat the client secret, refresh token or
// client assertion of the request (decoded and as sent, percent-encoded),
// the proxy password and the access token the cache holds. None of them,
// nor a prefix of one, may reach a log line, Status() or the socket's
// `err unavailable` answer; the masks must be there instead. Table-driven
// over a confidential refresh_token account and a certificate account.
// The parser is also checked alone: a secret that straddles the cut at 300
// characters leaves no prefix behind.

#include <curl/curl.h>
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "helper_test_keys.h"
#include "helper_test_util.h"
#include "token_cache.h"
#include "token_endpoint.h"

namespace xoauth2::helper {
namespace {

using json = nlohmann::json;
using testing::LogCapture;
using testing::TempDir;
using testing::WaitUntil;

constexpr const char* kMailbox = "relay@example.com";
constexpr const char* kClientSecret = "Cs~8Q+/=echo secret";
constexpr const char* kRefreshToken = "0.AR-echo~refresh+/token";
constexpr const char* kAccessToken = "at.HELD~echo-access-token";
constexpr const char* kProxy = "http://relay:Px%2Fecho~pass@127.0.0.1:3128";
constexpr const char* kProxyPassword = "Px/echo~pass";

// The form body's fields that carry a secret, by name: as sent
// (percent-encoded) and decoded.
std::map<std::string, std::vector<std::string>> SentSecrets(
    const std::string& body) {
  std::map<std::string, std::vector<std::string>> found;
  std::size_t start = 0;
  while (start < body.size()) {
    std::size_t end = std::min(body.find('&', start), body.size());
    std::string pair = body.substr(start, end - start);
    std::size_t equals = pair.find('=');
    std::string name = pair.substr(0, equals);
    std::string sent = pair.substr(equals + 1);
    if (name == "client_secret" || name == "refresh_token" ||
        name == "client_assertion") {
      int length = 0;
      char* decoded = curl_easy_unescape(
          nullptr, sent.data(), static_cast<int>(sent.size()), &length);
      found[name] = {sent, std::string(decoded, length)};
      curl_free(decoded);
    }
    start = end + 1;
  }
  return found;
}

// Issues kAccessToken once, then answers invalid_client echoing every
// secret of each request (and, while `holds` says the cache holds it, the
// access token); keeps every value echoed.
class EchoingEndpoint {
 public:
  FormPoster Poster() {
    return [this](const std::string& /*url*/, const Secret& body) {
      HttpReply reply;
      if (calls_++ == 0) {
        reply.status = 200;
        reply.body = Secret(json{
            {"token_type", "Bearer"},
            {"expires_in", 3600},
            {"access_token",
             kAccessToken}}.dump());
        return std::expected<HttpReply, TokenFailure>(std::move(reply));
      }
      std::vector<std::string> echo = {kAccessToken, kProxyPassword,
                                       "Px%2Fecho~pass"};
      for (const auto& [name, forms] : SentSecrets(body.Reveal()))
        echo.insert(echo.end(), forms.begin(), forms.end());
      echoed.insert(echoed.end(), echo.begin(), echo.end());
      reply.status = 401;
      reply.body = Secret(Answer(echo));
      return std::expected<HttpReply, TokenFailure>(std::move(reply));
    };
  }

  std::vector<std::string> echoed;

 private:
  // The error answer, each field repeating values (the suberror the held
  // access token); the description puts the first one across the 300
  // characters that are kept of it.
  static std::string Answer(const std::vector<std::string>& echo) {
    std::string description = "AADSTS7000215: Invalid client secret: ";
    description.resize(290, '.');
    for (const std::string& value : echo)
      description += value + " ";
    json answer;
    answer["error"] = "invalid_client";
    answer["error_description"] = description;
    answer["error_codes"] = {7000215};
    answer["suberror"] = echo.front();
    answer["trace_id"] = echo.back();
    answer["correlation_id"] = echo[echo.size() / 2];
    return answer.dump();
  }

  int calls_ = 0;
};

// Where `text` shows any echoed value or the first 10 bytes of one.
std::string FindLeak(const std::string& text,
                     const std::vector<std::string>& echoed) {
  for (const std::string& value : echoed) {
    if (text.find(value.substr(0, 10)) != std::string::npos)
      return value.substr(0, 10) + "... in: " + text;
  }
  return "";
}

struct EchoCase {
  const char* name;
  bool certificate;  // client_credentials with a certificate
};

class HelperEcho : public ::testing::TestWithParam<EchoCase> {};

TEST_P(HelperEcho, EchoedSecretsReachNoLogStatusOrAnswer) {
  TempDir dir;
  Account account = testing::TestAccount(kMailbox);
  if (GetParam().certificate) {
    const testing::TestKeys& keys =
        testing::MakeTestKeys(testing::KeyKind::kRsa2048);
    auto loaded =
        ClientCertificate::Load(dir.Write("c.pem", keys.certificate_pem),
                                dir.Write("k.pem", keys.key_pem));
    ASSERT_TRUE(loaded) << loaded.error().message;
    account.certificate = *loaded;
    account.client_secret = Secret();
  } else {
    account.grant = Grant::kRefreshToken;
    account.client_secret = Secret(kClientSecret);
    account.refresh_token_file = dir.Write("relay.refresh", kRefreshToken);
    account.scope = DefaultScope(Cloud::kGlobal, Grant::kRefreshToken);
  }
  HttpSettings settings;
  settings.proxy = kProxy;
  EchoingEndpoint endpoint;
  CurlTokenFetcher fetcher(settings, endpoint.Poster());
  LogCapture log;
  TokenCache cache({account}, fetcher, CacheOptions{});
  cache.Start();
  ASSERT_TRUE(WaitUntil([&] { return cache.Get(kMailbox).ok; }));

  // A refresh while the token is held: the endpoint echoes everything.
  cache.RefreshSoon(kMailbox);
  ASSERT_TRUE(WaitUntil([&] { return cache.Status()[0].failures == 1; }));
  // Dropped, so that the answer is the failure (the refresh is backing off).
  cache.Reject(kMailbox, kAccessToken);
  protocol::Response answer = cache.Get(kMailbox);
  std::vector<AccountStatus> status = cache.Status();
  cache.Stop();

  ASSERT_EQ(endpoint.echoed.size(), GetParam().certificate ? 5u : 7u);
  EXPECT_FALSE(answer.ok);
  std::string line = protocol::FormatResponse(answer);
  EXPECT_EQ(FindLeak(line, endpoint.echoed), "");
  EXPECT_NE(line.find("<redacted"), std::string::npos) << line;
  EXPECT_EQ(FindLeak(status[0].error, endpoint.echoed), "");
  EXPECT_EQ(FindLeak(status[0].trace_id, endpoint.echoed), "");
  EXPECT_EQ(status[0].aadsts, "AADSTS7000215");
  bool masked_line = false;
  for (const std::string& logged : log.Lines()) {
    EXPECT_EQ(FindLeak(logged, endpoint.echoed), "");
    if (logged.find("event=token_fetch_failed") != std::string::npos &&
        logged.find("<redacted>") != std::string::npos &&
        logged.find("<redacted " + ShortHash(kAccessToken) + ">") !=
            std::string::npos)
      masked_line = true;
  }
  std::string all;
  for (const std::string& logged : log.Lines())
    all += logged + "\n";
  EXPECT_TRUE(masked_line) << all;
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperEcho,
    ::testing::Values(EchoCase{"ClientSecretAndRefreshToken", false},
                      EchoCase{"ClientAssertion", true}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// The description is masked whole before it is cut to 300 characters, so
// a secret across the cut leaves no prefix behind.
TEST(HelperEchoParse, SecretAcrossTheCutLeavesNoPrefix) {
  std::string description(295, 'x');
  description += kClientSecret;
  std::string body = json{
      {"error", "invalid_client"},
      {"error_description",
       description}}.dump();
  SecretMask sent;
  sent.AddSecret(kClientSecret);
  auto parsed = ParseTokenResponse(HttpAnswer{401, body, {}}, "t", sent);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().description, std::string(295, 'x') + "<reda");
  EXPECT_EQ(parsed.error().message.find("Cs~8"), std::string::npos)
      << parsed.error().message;
}

// A number too large in the answer is not quoted back (nlohmann's
// out_of_range text would quote it).
TEST(HelperEchoParse, UnreadableNumberNotQuoted) {
  auto parsed = ParseTokenResponse(
      HttpAnswer{400, R"({"error":"x","n":1e99999})", {}}, "t", SecretMask());
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().message.find("99999"), std::string::npos)
      << parsed.error().message;
}

}  // namespace
}  // namespace xoauth2::helper
