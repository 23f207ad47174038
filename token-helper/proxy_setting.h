// SPDX-License-Identifier: MIT
//
// The "proxy" setting: what `check` accepts, how the proxy is named in a
// message (its password hidden), its password for masking answers, and
// the words for a token request that failed at the proxy (RFC 9110
// section 9.3.6, CONNECT; RFC 9110 section 11.7.1, 407 Proxy
// Authentication Required).
//
// Policy (also in token-helper(8) and README): with "proxy" set, every
// token request goes through that proxy and the environment's https_proxy,
// all_proxy and no_proxy are ignored; without it, libcurl's environment
// rules apply (https_proxy, all_proxy, no_proxy), as for any daemon.
//
// Pure functions, no state, no logging; libcurl's URL parser (curl_url)
// does the parsing. A proxy password is a secret: no text made here holds
// it, not even for a setting that is refused.
//
// Deliberately not supported: SOCKS and other non-HTTP proxies in the
// setting (libcurl would accept them; we test only HTTP CONNECT), and
// a CA bundle of its own for an https:// proxy (libcurl's default store).

#ifndef XOAUTH2_TOKEN_HELPER_PROXY_SETTING_H
#define XOAUTH2_TOKEN_HELPER_PROXY_SETTING_H

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "secret.h"

namespace xoauth2::helper {

// Checks a "proxy" value: http:// or https://, a host, an optional port,
// nothing after them but "/". The error text follows the setting's name
// ("is ...; write it as ...") and never holds the password.
std::expected<void, std::string> CheckProxySetting(std::string_view url);

// `url` with the password of its user information replaced by "***"
// ("http://user:***@proxy:3128"); unchanged when it has none.
std::string ProxyForLog(std::string_view url);

// The password ProxyForLog hides, as written and percent-decoded as
// libcurl sends it (one entry when both are the same); empty when `url`
// has none. For masking what a peer answers (SecretMask).
std::vector<Secret> ProxyPasswords(std::string_view url);

// What the transport saw of a token request that failed.
struct ProxyFailureFacts {
  std::string_view proxy;   // the "proxy" setting; empty when not set
  int curl_code = 0;        // the CURLcode of the transfer
  long connect_code = 0;    // the proxy's answer to CONNECT; 0: none
  std::string_view detail;  // libcurl's error text
  std::string_view url;     // the token endpoint's URL
};

// The operator's message when the failure lies with a proxy (one named by
// the setting or by the environment); nullopt when it does not.
std::optional<std::string> ProxyFailureMessage(const ProxyFailureFacts& facts);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_PROXY_SETTING_H
