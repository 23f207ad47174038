// SPDX-License-Identifier: MIT
//
// The "proxy" setting: checked with libcurl's URL parser, named in
// messages with its password hidden, and proxy failures put into words.
// See proxy_setting.h for the policy.

#include "proxy_setting.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <memory>

#include "ascii.h"

namespace xoauth2::helper {
namespace {

struct UrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
using UrlHandle = std::unique_ptr<CURLU, UrlDeleter>;

// True when `part` of `url` is present and not just "/".
bool HasPart(CURLU* url, CURLUPart part) {
  char* value = nullptr;
  if (curl_url_get(url, part, &value, 0) != CURLUE_OK)
    return false;
  bool present = value != nullptr && std::string_view(value) != "/" &&
                 std::string_view(value) != "";
  curl_free(value);
  return present;
}

// Where the password of a proxy URL's user information lies: [start, end).
struct PasswordSpan {
  std::size_t start;
  std::size_t end;
};

// The password's place in `url`, or nullopt when it has none. The user
// information ends at the last '@'; hiding too much in an odd URL is
// better than showing a password.
std::optional<PasswordSpan> FindPassword(std::string_view url) {
  std::size_t scheme_end = url.find("://");
  std::size_t start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  std::size_t at = url.rfind('@');
  if (at == std::string_view::npos || at < start)
    return std::nullopt;
  std::size_t colon = url.find(':', start);
  if (colon == std::string_view::npos || colon > at)
    return std::nullopt;
  return PasswordSpan{colon + 1, at};
}

// "the proxy URL" for the setting, or the environment's proxy.
std::string ProxyName(std::string_view proxy) {
  if (proxy.empty()) {
    return "the proxy named by the environment (https_proxy or all_proxy)";
  }
  return "the proxy " + ProxyForLog(proxy);
}

// Where the operator changes the proxy.
std::string_view ProxyPlace(std::string_view proxy) {
  return proxy.empty() ? "that environment variable" : "the proxy setting";
}

// The message for an error answer to CONNECT.
std::string TunnelMessage(const ProxyFailureFacts& facts) {
  std::string name = ProxyName(facts.proxy);
  std::string answer = "HTTP " + std::to_string(facts.connect_code) +
                       " to CONNECT for " + std::string(facts.url);
  // 407 is the standard answer; some proxies (tinyproxy) answer a wrong
  // password with 401, which on CONNECT can only be the proxy's too.
  if (facts.connect_code == 407 || facts.connect_code == 401) {
    return name + " did not accept the credentials given (" + answer +
           "); put the proxy's user name and password in " +
           std::string(ProxyPlace(facts.proxy)) +
           " as http://USER:PASSWORD@HOST:PORT";
  }
  return name + " did not open a tunnel (" + answer +
         "); make the proxy allow CONNECT to the token endpoint's host "
         "and port, and check that it can reach them";
}

}  // namespace

std::expected<void, std::string> CheckProxySetting(std::string_view url) {
  std::string shown = "is " + ProxyForLog(url);
  std::size_t scheme_end = url.find("://");
  std::string scheme = AsciiLower(url.substr(0, scheme_end));
  if (scheme_end == std::string_view::npos ||
      (scheme != "http" && scheme != "https")) {
    return std::unexpected(
        shown +
        "; write it as http://HOST:PORT (https:// for a proxy reached "
        "over TLS); other kinds of proxy are not supported");
  }

  // libcurl's own parser decides what libcurl will accept.
  UrlHandle parsed(curl_url());
  if (!parsed)
    return std::unexpected(std::string("cannot be checked: out of memory"));
  std::string text(url);
  CURLUcode code = curl_url_set(parsed.get(), CURLUPART_URL, text.c_str(), 0);
  if (code != CURLUE_OK) {
    return std::unexpected(shown + ", which is not a valid URL (" +
                           curl_url_strerror(code) +
                           "); write it as http://HOST:PORT");
  }
  if (HasPart(parsed.get(), CURLUPART_PATH) ||
      HasPart(parsed.get(), CURLUPART_QUERY) ||
      HasPart(parsed.get(), CURLUPART_FRAGMENT)) {
    return std::unexpected(shown +
                           ", which has a path or query; a proxy is named "
                           "by scheme, host and port only: http://HOST:PORT");
  }
  return {};
}

std::string ProxyForLog(std::string_view url) {
  std::optional<PasswordSpan> span = FindPassword(url);
  if (!span)
    return std::string(url);
  return std::string(url.substr(0, span->start)) + "***" +
         std::string(url.substr(span->end));
}

std::vector<Secret> ProxyPasswords(std::string_view url) {
  std::optional<PasswordSpan> span = FindPassword(url);
  if (!span || span->start == span->end)
    return {};
  std::vector<Secret> passwords;
  passwords.emplace_back(
      std::string(url.substr(span->start, span->end - span->start)));

  // libcurl decodes %XX in the URL before it sends the password.
  const std::string& written = passwords.front().Reveal();
  int length = 0;
  char* decoded = curl_easy_unescape(nullptr, written.data(),
                                     static_cast<int>(written.size()), &length);
  if (decoded != nullptr) {
    Secret plain{std::string(decoded, static_cast<std::size_t>(length))};
    OPENSSL_cleanse(decoded, static_cast<std::size_t>(length));
    curl_free(decoded);
    if (!(plain == passwords.front()))
      passwords.push_back(std::move(plain));
  }
  return passwords;
}

std::optional<std::string> ProxyFailureMessage(const ProxyFailureFacts& facts) {
  // An error answer to CONNECT comes from a proxy, whichever named it.
  if (facts.connect_code >= 300)
    return TunnelMessage(facts);

  std::string name = ProxyName(facts.proxy);
  std::string detail(facts.detail);
  if (facts.curl_code == CURLE_COULDNT_RESOLVE_PROXY) {
    return "cannot resolve the host of " + name + ": " + detail + "; correct " +
           std::string(ProxyPlace(facts.proxy)) + " or check DNS";
  }
  // With a configured proxy, the only connection libcurl opens is the
  // one to the proxy.
  if (!facts.proxy.empty() && facts.curl_code == CURLE_COULDNT_CONNECT) {
    return "cannot connect to " + name + " (setting proxy): " + detail +
           "; start the proxy or correct its host and port in the proxy "
           "setting";
  }
  return std::nullopt;
}

}  // namespace xoauth2::helper
