// SPDX-License-Identifier: MIT
//
// Unit tests of the proxy setting (proxy_setting.h) and of the sign-in
// advice for refused grants (SignInAdvice in token_endpoint.h):
// - which "proxy" values `check` accepts, and that a refused one is
//   named without its password (table-driven, and through ParseConfig);
// - ProxyForLog hiding the password, byte for byte, and ProxyPasswords
//   giving that password as written and percent-decoded;
// - the exact words for proxy failures (refused connection, 407, other
//   CONNECT answers, the environment's proxy) and nullopt otherwise;
// - PostForm against sockets that are bound but not listening (so every
//   connection is refused at once): a configured proxy is used even when
//   no_proxy names the host, the environment's https_proxy is used when
//   none is configured, and no message holds the proxy's password;
// - the exact invalid_grant text for Google and Microsoft accounts.
//
// Uses only 127.0.0.1; environment variables set here are restored.

#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "proxy_setting.h"
#include "token_endpoint.h"
#include "token_response.h"

namespace xoauth2::helper {
namespace {

constexpr std::string_view kPassword = "hunter2-Proxy";

// ---- CheckProxySetting ------------------------------------------------

TEST(HelperProxy, AcceptsHttpAndHttpsProxies) {
  for (std::string_view url :
       {"http://proxy.example.net:3128", "https://proxy.example.net",
        "HTTP://proxy:3128/", "http://user:pass@127.0.0.1:3128",
        "http://[::1]:8080"}) {
    auto checked = CheckProxySetting(url);
    EXPECT_TRUE(checked) << url << ": " << checked.error();
  }
}

struct RefusedProxy {
  std::string_view name;
  std::string_view url;
  std::string_view expected;
};

class HelperProxyRefused : public ::testing::TestWithParam<RefusedProxy> {};

TEST_P(HelperProxyRefused, NamesTheFixWithoutPassword) {
  auto checked = CheckProxySetting(GetParam().url);
  ASSERT_FALSE(checked) << "accepted: " << GetParam().url;
  EXPECT_NE(checked.error().find(GetParam().expected), std::string::npos)
      << checked.error();
  EXPECT_EQ(checked.error().find(kPassword), std::string::npos)
      << checked.error();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperProxyRefused,
    ::testing::Values(
        RefusedProxy{"Socks", "socks5://proxy:1080",
                     "is socks5://proxy:1080; write it as http://HOST:PORT "
                     "(https:// for a proxy reached over TLS); other kinds "
                     "of proxy are not supported"},
        RefusedProxy{"NoScheme", "proxy:3128", "write it as http://HOST:PORT"},
        RefusedProxy{"FtpWithPassword", "ftp://u:hunter2-Proxy@proxy",
                     "is ftp://u:***@proxy;"},
        RefusedProxy{"NoHost", "http://", "which is not a valid URL"},
        RefusedProxy{"BadPort", "http://proxy:99999",
                     "is http://proxy:99999, which is not a valid URL"},
        RefusedProxy{"Space", "http://pro xy:3128", "not a valid URL"},
        RefusedProxy{"Path", "http://proxy:3128/pac",
                     "which has a path or query"},
        RefusedProxy{"Query", "http://u:hunter2-Proxy@proxy:3128?x=1",
                     "is http://u:***@proxy:3128?x=1, which has a path"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HelperProxy, ConfigRefusesGarbageProxyByPathAndField) {
  const std::string path = "/etc/xoauth2-relay/config.json";
  std::string text = R"({"socket": "/tmp/helper-test/token.sock",
    "allowed_users": ["root"], "proxy": "socks5://u:hunter2-Proxy@p:1080",
    "accounts": [{"mailbox": "relay@example.com",
      "tenant": "contoso.onmicrosoft.com",
      "client_id": "11111111-2222-3333-4444-555555555555",
      "grant": "client_credentials", "client_secret": "s3cr~t"}]})";
  auto config = ParseConfig(text, path);
  ASSERT_FALSE(config);
  EXPECT_TRUE(config.error().starts_with(
      path + ": proxy is socks5://u:***@p:1080; write it as"))
      << config.error();
  EXPECT_EQ(config.error().find(kPassword), std::string::npos);
}

// ---- ProxyForLog ------------------------------------------------------

TEST(HelperProxy, ProxyForLogHidesOnlyThePassword) {
  struct Case {
    std::string_view url;
    std::string_view shown;
  };
  for (const Case& c : std::vector<Case>{
           {"http://proxy:3128", "http://proxy:3128"},
           {"http://user@proxy:3128", "http://user@proxy:3128"},
           {"http://user:pw@proxy:3128", "http://user:***@proxy:3128"},
           {"user:pw@proxy:3128", "user:***@proxy:3128"},
           {"http://u:p@ss@proxy:3128/", "http://u:***@proxy:3128/"},
           {"http://u:p/w@proxy:3128", "http://u:***@proxy:3128"},
           {"http://u:@proxy", "http://u:***@proxy"},
           {"", ""}}) {
    EXPECT_EQ(ProxyForLog(c.url), c.shown) << c.url;
  }
}

TEST(HelperProxy, ProxyPasswordsAsWrittenAndDecoded) {
  struct Case {
    std::string_view url;
    std::vector<std::string> passwords;
  };
  for (const Case& c : std::vector<Case>{
           {"http://proxy:3128", {}},
           {"http://user@proxy:3128", {}},
           {"http://u:@proxy", {}},
           {"http://user:pw@proxy:3128", {"pw"}},
           {"http://u:p@ss@proxy:3128/", {"p@ss"}},
           {"http://u:pr%2Fxy%40z@proxy:3128", {"pr%2Fxy%40z", "pr/xy@z"}},
           {"", {}}}) {
    std::vector<std::string> found;
    for (const Secret& password : ProxyPasswords(c.url))
      found.push_back(password.Reveal());
    EXPECT_EQ(found, c.passwords) << c.url;
  }
}

// ---- ProxyFailureMessage ----------------------------------------------

constexpr std::string_view kUrl = "https://login.example/t/oauth2/v2.0/token";

struct FailureCase {
  std::string_view name;
  ProxyFailureFacts facts;
  std::optional<std::string_view> message;
};

class HelperProxyFailure : public ::testing::TestWithParam<FailureCase> {};

TEST_P(HelperProxyFailure, ExactWords) {
  auto message = ProxyFailureMessage(GetParam().facts);
  ASSERT_EQ(message.has_value(), GetParam().message.has_value())
      << message.value_or("(none)");
  if (message) {
    EXPECT_EQ(*message, *GetParam().message);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperProxyFailure,
    ::testing::Values(
        FailureCase{"ConfiguredProxyDown",
                    {"http://u:pw@127.0.0.1:3128", CURLE_COULDNT_CONNECT, 0,
                     "Failed to connect to 127.0.0.1 port 3128", kUrl},
                    "cannot connect to the proxy http://u:***@127.0.0.1:3128 "
                    "(setting proxy): Failed to connect to 127.0.0.1 port "
                    "3128; start the proxy or correct its host and port in "
                    "the proxy setting"},
        FailureCase{"ConfiguredProxyWantsCredentials",
                    {"http://127.0.0.1:3128", CURLE_RECV_ERROR, 407,
                     "CONNECT tunnel failed, response 407", kUrl},
                    "the proxy http://127.0.0.1:3128 did not accept the "
                    "credentials given (HTTP 407 to CONNECT for "
                    "https://login.example/t/oauth2/v2.0/token); put the "
                    "proxy's user name and password in the proxy setting "
                    "as http://USER:PASSWORD@HOST:PORT"},
        FailureCase{"ConfiguredProxyRefusesPassword",
                    {"http://u:pw@127.0.0.1:3128", CURLE_RECV_ERROR, 401,
                     "CONNECT tunnel failed, response 401", kUrl},
                    "the proxy http://u:***@127.0.0.1:3128 did not accept "
                    "the credentials given (HTTP 401 to CONNECT for "
                    "https://login.example/t/oauth2/v2.0/token); put the "
                    "proxy's user name and password in the proxy setting "
                    "as http://USER:PASSWORD@HOST:PORT"},
        FailureCase{"ConfiguredProxyRefusesTunnel",
                    {"http://127.0.0.1:3128", CURLE_RECV_ERROR, 403,
                     "CONNECT tunnel failed, response 403", kUrl},
                    "the proxy http://127.0.0.1:3128 did not open a tunnel "
                    "(HTTP 403 to CONNECT for "
                    "https://login.example/t/oauth2/v2.0/token); make the "
                    "proxy allow CONNECT to the token endpoint's host and "
                    "port, and check that it can reach them"},
        FailureCase{"EnvironmentProxyWantsCredentials",
                    {"", CURLE_RECV_ERROR, 407, "", kUrl},
                    "the proxy named by the environment (https_proxy or "
                    "all_proxy) did not accept the credentials given (HTTP "
                    "407 to CONNECT for "
                    "https://login.example/t/oauth2/v2.0/token); put "
                    "the proxy's user name and password in that environment "
                    "variable as http://USER:PASSWORD@HOST:PORT"},
        FailureCase{"ConfiguredProxyUnresolved",
                    {"http://proxy.invalid:3128", CURLE_COULDNT_RESOLVE_PROXY,
                     0, "Could not resolve proxy: proxy.invalid", kUrl},
                    "cannot resolve the host of the proxy "
                    "http://proxy.invalid:3128: Could not resolve proxy: "
                    "proxy.invalid; correct the proxy setting or check DNS"},
        FailureCase{"NoProxyConnectFailure",
                    {"", CURLE_COULDNT_CONNECT, 0, "Failed", kUrl},
                    std::nullopt},
        FailureCase{"ProxyButTlsFailure",
                    {"http://127.0.0.1:3128", CURLE_PEER_FAILED_VERIFICATION,
                     200, "certificate", kUrl},
                    std::nullopt}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// ---- PostForm through proxies (connections refused at once) ------------

// A TCP socket bound to a free 127.0.0.1 port but not listening: every
// connection to that port is refused while it lives.
class RefusingPort {
 public:
  RefusingPort() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    auto* raw = reinterpret_cast<sockaddr*>(&address);
    if (fd_ >= 0 && bind(fd_, raw, size) == 0 &&
        getsockname(fd_, raw, &size) == 0) {
      port_ = ntohs(address.sin_port);
    }
  }
  ~RefusingPort() {
    if (fd_ >= 0)
      close(fd_);
  }
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  int port() const { return port_; }

 private:
  int fd_;
  int port_ = 0;
};

// Sets (or with nullopt unsets) one environment variable while alive.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name))
      old_ = old;
    if (value)
      setenv(name, value->c_str(), 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_, old_->c_str(), 1);
    else
      unsetenv(name_);
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// Clears every proxy variable libcurl reads, restoring them afterwards.
struct CleanProxyEnvironment {
  ScopedEnv vars[7] = {
      {"http_proxy", std::nullopt},  {"https_proxy", std::nullopt},
      {"HTTPS_PROXY", std::nullopt}, {"all_proxy", std::nullopt},
      {"ALL_PROXY", std::nullopt},   {"no_proxy", std::nullopt},
      {"NO_PROXY", std::nullopt}};
};

// The failure message of one POST to https://127.0.0.1:TARGET/token.
std::string PostMessage(const std::string& proxy, int target_port) {
  HttpSettings settings;
  settings.proxy = proxy;
  settings.connect_timeout_seconds = 5;
  settings.request_timeout_seconds = 5;
  std::atomic<bool> cancelled{false};
  std::string url =
      "https://127.0.0.1:" + std::to_string(target_port) + "/token";
  auto reply = PostForm(settings, url, Secret(std::string("a=b")), cancelled);
  EXPECT_FALSE(reply) << "the refused ports answered";
  return reply ? std::string() : reply.error().message;
}

TEST(HelperProxy, ConfiguredProxyIsUsedEvenWhenNoProxyNamesTheHost) {
  CleanProxyEnvironment clean;
  ScopedEnv no_proxy("no_proxy", "127.0.0.1,localhost");
  RefusingPort proxy_port;
  RefusingPort target_port;
  ASSERT_NE(proxy_port.port(), 0);
  ASSERT_NE(target_port.port(), 0);
  std::string proxy = "http://relay:" + std::string(kPassword) +
                      "@127.0.0.1:" + std::to_string(proxy_port.port());

  std::string message = PostMessage(proxy, target_port.port());
  EXPECT_TRUE(message.starts_with(
      "cannot connect to the proxy http://relay:"
      "***@127.0.0.1:" +
      std::to_string(proxy_port.port()) + " (setting proxy): "))
      << message;
  // libcurl names the port it failed to reach: the proxy's, not the
  // token endpoint's.
  EXPECT_NE(message.find("port " + std::to_string(proxy_port.port())),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find(kPassword), std::string::npos) << message;
}

TEST(HelperProxy, EnvironmentProxyIsUsedWithoutSetting) {
  CleanProxyEnvironment clean;
  RefusingPort proxy_port;
  RefusingPort target_port;
  ScopedEnv https_proxy(
      "https_proxy", "http://127.0.0.1:" + std::to_string(proxy_port.port()));

  // libcurl names the port it failed to reach: the proxy's.
  std::string message = PostMessage("", target_port.port());
  EXPECT_NE(message.find("port " + std::to_string(proxy_port.port())),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("https_proxy"), std::string::npos) << message;
}

TEST(HelperProxy, NoProxyStillBypassesTheEnvironmentProxy) {
  CleanProxyEnvironment clean;
  RefusingPort proxy_port;
  RefusingPort target_port;
  ScopedEnv https_proxy(
      "https_proxy", "http://127.0.0.1:" + std::to_string(proxy_port.port()));
  ScopedEnv no_proxy("no_proxy", "127.0.0.1");

  std::string message = PostMessage("", target_port.port());
  EXPECT_NE(message.find("port " + std::to_string(target_port.port())),
            std::string::npos)
      << message;
}

// ---- SignInAdvice -------------------------------------------------------

// The failure ParseTokenResponse makes of an invalid_grant answer.
TokenFailure InvalidGrant(std::string_view description) {
  std::string body = R"({"error":"invalid_grant","error_description":")" +
                     std::string(description) + R"("})";
  auto parsed = ParseTokenResponse(HttpAnswer{400, body, {}}, "", SecretMask());
  EXPECT_FALSE(parsed);
  return parsed ? TokenFailure{} : parsed.error();
}

Account RefreshAccount(Provider provider) {
  Account account;
  account.name = provider == Provider::kGoogle ? "gmail" : "relay";
  account.provider = provider;
  account.grant = Grant::kRefreshToken;
  account.scope = provider == Provider::kGoogle
                      ? "https://mail.google.com/"
                      : "https://outlook.office.com/SMTP.Send offline_access";
  account.refresh_token_file =
      "/var/lib/xoauth2-relay/" + account.name + ".refresh";
  return account;
}

TEST(HelperSignInAdvice, GoogleNamesTheRefreshTokenFile) {
  TokenFailure failure = InvalidGrant("Token has been expired or revoked.");
  EXPECT_EQ(
      SignInAdvice(RefreshAccount(Provider::kGoogle), failure),
      "Google refused the refresh token in "
      "/var/lib/xoauth2-relay/gmail.refresh: invalid_grant (Token has been "
      "expired or revoked.); replace the file's content (mode 0600) with a "
      "new refresh token got with the desktop OAuth client of the account's "
      "client_id, as token-helper authorize cannot sign in Google accounts "
      "(see token-helper(8)); the helper retries when the file changes");
}

TEST(HelperSignInAdvice, MicrosoftRunsAuthorize) {
  TokenFailure failure = InvalidGrant(
      "AADSTS70043: The refresh token has "
      "expired");
  EXPECT_EQ(SignInAdvice(RefreshAccount(Provider::kMicrosoft), failure),
            "the grant was refused: invalid_grant (AADSTS70043: The refresh "
            "token has expired); the user must sign in again to get a new "
            "refresh token: run token-helper authorize relay");
}

TEST(HelperSignInAdvice, OtherFailuresUnchanged) {
  TokenFailure temporary = TransportFailure("cannot connect");
  EXPECT_EQ(SignInAdvice(RefreshAccount(Provider::kGoogle), temporary),
            "cannot connect");

  Account app = RefreshAccount(Provider::kMicrosoft);
  app.grant = Grant::kClientCredentials;
  TokenFailure refused = InvalidGrant("AADSTS50173");
  EXPECT_EQ(SignInAdvice(app, refused), refused.message);
}

}  // namespace
}  // namespace xoauth2::helper
