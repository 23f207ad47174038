// SPDX-License-Identifier: MIT
//
// Parsing and classifying answers of the Microsoft identity platform v2.0
// token endpoint (RFC 6749 sections 5.1 and 5.2, plus Microsoft's
// error_codes/trace_id/correlation_id/suberror fields).
//
// Pure functions: no I/O, no logging, no state. Any input, however
// malformed (HTML, truncated JSON, numbers as strings, wrong types, huge
// bodies), gives a TokenGrant or a TokenFailure; no exception escapes.
//
// Classification follows the reference table: decide on the OAuth `error`
// code and the HTTP status, never on AADSTS numbers, with one exception
// (AADSTS7000012, a refresh token used at another tenant, whose fix is a
// configuration change). AADSTS codes, trace and correlation ids are kept
// for the operator's log. Failure messages never contain a token or secret:
// every text taken from an answer first passes through the SecretMask of
// what the request sent, so a value the endpoint echoes is masked before
// it is kept, logged, shown by `status` or sent in a socket answer.

#ifndef XOAUTH2_TOKEN_HELPER_TOKEN_RESPONSE_H
#define XOAUTH2_TOKEN_HELPER_TOKEN_RESPONSE_H

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "secret.h"

namespace xoauth2::helper {

// Largest token endpoint answer we accept; real ones are a few KiB.
inline constexpr std::size_t kMaxTokenResponseBytes = 64 * 1024;

// Whose action a failure needs, and so how the helper reacts.
enum class FailureClass {
  kNeedsPerson,    // the user must sign in again
  kNeedsAdmin,     // the app's credentials are wrong or expired
  kConfiguration,  // our configuration or the app registration is wrong
  kThrottled,      // HTTP 429: wait what Retry-After says
  kTemporary,      // network, TLS, 5xx, garbage: back off and retry
};

// "needs-person", "needs-admin", "configuration", "throttled", "temporary".
std::string_view FailureClassName(FailureClass failure_class);

// A usable answer.
struct TokenGrant {
  Secret access_token;
  long expires_in = 0;   // seconds, > 0
  Secret refresh_token;  // empty when the answer carries none
};

// Why no token was had, with what the operator needs to act.
struct TokenFailure {
  FailureClass failure_class = FailureClass::kTemporary;
  long http_status = 0;     // 0 when no HTTP answer arrived
  std::string error;        // OAuth error code, e.g. invalid_grant
  std::string aadsts;       // e.g. AADSTS70043, or empty
  std::string description;  // first line of error_description
  std::string suberror;     // e.g. token_expired
  std::string trace_id;
  std::string correlation_id;
  long retry_after_seconds = 0;  // from Retry-After on 429, else 0
  std::string message;           // one sentence naming cause and fix
};

// One HTTP answer as the transport saw it.
struct HttpAnswer {
  long status = 0;
  std::string_view body;
  std::optional<long> retry_after;  // Retry-After in seconds, if sent
};

// Parses and classifies `answer`; `tenant` is the configured tenant, used
// in the message for a refresh token issued at another tenant; `sent`
// masks what the request carried in every text the answer supplies.
std::expected<TokenGrant, TokenFailure> ParseTokenResponse(
    const HttpAnswer& answer, std::string_view tenant, const SecretMask& sent);

// The cause in words: "invalid_grant (AADSTS70043: ...)", or the code
// alone.
std::string FailureCause(const TokenFailure& failure);

// A temporary failure with no HTTP answer (DNS, connect, TLS, timeout).
TokenFailure TransportFailure(std::string message);

// Parses a Retry-After header value (RFC 9110 section 10.2.3): delay
// seconds, or an HTTP-date (IMF-fixdate, RFC 850 or asctime form) turned
// into the seconds from `now` (Unix seconds; 0 for a date in the past).
// nullopt for anything else.
std::optional<long> ParseRetryAfter(std::string_view value, std::int64_t now);

// The same with the current time.
std::optional<long> ParseRetryAfter(std::string_view value);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_TOKEN_RESPONSE_H
