// SPDX-License-Identifier: MIT
//
// Token endpoint answer parsing: success fields (access_token, expires_in
// as number or numeric string, token_type, refresh_token) and error fields
// (error, error_description, error_codes, trace_id, correlation_id,
// suberror), then classification into a FailureClass. nlohmann::json
// exceptions are caught here.

#include "token_response.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>

#include "ascii.h"
#include "protocol.h"

namespace xoauth2::helper {
namespace {

using json = nlohmann::json;

// Longest description kept for logs and error answers.
constexpr std::size_t kMaxDescription = 300;

struct ErrorRule {
  std::string_view error;
  FailureClass failure_class;
};

constexpr ErrorRule kErrorRules[] = {
    {"invalid_grant", FailureClass::kNeedsPerson},
    {"interaction_required", FailureClass::kNeedsPerson},
    {"consent_required", FailureClass::kNeedsPerson},
    {"invalid_client", FailureClass::kNeedsAdmin},
    {"unauthorized_client", FailureClass::kConfiguration},
    {"invalid_scope", FailureClass::kConfiguration},
    {"invalid_request", FailureClass::kConfiguration},
    {"unsupported_grant_type", FailureClass::kConfiguration},
    {"temporarily_unavailable", FailureClass::kTemporary},
};

// A string member or "" when absent or not a string.
std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string())
    return {};
  return it->get<std::string>();
}

// Largest lifetime believed (about 31 years): far above any real token's,
// and small enough that callers may add it to a clock counting nanoseconds
// without overflow.
constexpr long kMaxSeconds = 1'000'000'000;

// Whole seconds from a JSON number or a numeric string, unbounded;
// nullopt otherwise.
std::optional<long> AnySeconds(const json& value) {
  if (value.is_number_integer())
    return value.get<long>();
  if (value.is_number_float()) {
    // Casting a double outside long's range is undefined: check first.
    double seconds = value.get<double>();
    if (!std::isfinite(seconds) || std::fabs(seconds) > kMaxSeconds)
      return std::nullopt;
    return static_cast<long>(seconds);
  }
  if (!value.is_string())
    return std::nullopt;
  const std::string& text = value.get_ref<const std::string&>();
  long seconds = 0;
  auto [end, err] =
      std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (err != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return seconds;
}

// Whole seconds within +-kMaxSeconds from a JSON number or a numeric
// string; nullopt otherwise.
std::optional<long> LenientSeconds(const json& value) {
  std::optional<long> seconds = AnySeconds(value);
  if (seconds && (*seconds > kMaxSeconds || *seconds < -kMaxSeconds))
    return std::nullopt;
  return seconds;
}

// First line of `text`, made printable and bounded.
std::string FirstLine(std::string_view text) {
  std::string line(text.substr(0, text.find_first_of("\r\n")));
  if (line.size() > kMaxDescription)
    line.resize(kMaxDescription);
  for (char& c : line) {
    if (c < 0x20 || c > 0x7e)
      c = '?';
  }
  return line;
}

// "AADSTS" followed by digits from the description, else from error_codes.
std::string FindAadsts(std::string_view description, const json& body) {
  std::size_t at = description.find("AADSTS");
  if (at != std::string_view::npos) {
    std::size_t end = at + 6;
    while (end < description.size() && description[end] >= '0' &&
           description[end] <= '9') {
      ++end;
    }
    if (end > at + 6)
      return std::string(description.substr(at, end - at));
  }
  auto codes = body.find("error_codes");
  if (codes != body.end() && codes->is_array() && !codes->empty() &&
      (*codes)[0].is_number_integer()) {
    return "AADSTS" + std::to_string((*codes)[0].get<long long>());
  }
  return {};
}

FailureClass ClassifyError(const std::string& error, long status) {
  if (status >= 500)
    return FailureClass::kTemporary;
  for (const ErrorRule& rule : kErrorRules) {
    if (rule.error == error)
      return rule.failure_class;
  }
  // An error code this table does not know needs someone to look at it.
  return FailureClass::kConfiguration;
}

// The operator-facing sentence for a classified OAuth error.
std::string ErrorMessage(const TokenFailure& failure, std::string_view tenant) {
  std::string cause = FailureCause(failure);
  if (failure.aadsts == "AADSTS7000012") {
    return "the refresh token was issued for a different tenant than " +
           std::string(tenant) + " (" + cause +
           "); set tenant to the tenant used at sign-in (for example "
           "organizations or your tenant ID) or sign in again";
  }
  switch (failure.failure_class) {
    case FailureClass::kNeedsPerson:
      return "the grant was refused: " + cause +
             "; the user must sign in again to get a new refresh token";
    case FailureClass::kNeedsAdmin:
      return "the client credentials were refused: " + cause +
             "; check the client secret's value (not its ID) and its "
             "expiry in the app registration";
    case FailureClass::kConfiguration:
      return "the token request was refused as misconfigured: " + cause +
             "; check client_id, tenant, scope and the app registration";
    default:
      return "the token endpoint failed (HTTP " +
             std::to_string(failure.http_status) + "): " + cause +
             "; retrying with backoff";
  }
}

TokenFailure Temporary(long status, std::string message) {
  TokenFailure failure;
  failure.http_status = status;
  failure.message = std::move(message);
  return failure;
}

// Builds the failure for a JSON error body (RFC 6749 section 5.2).
TokenFailure ErrorFailure(long status, const json& body,
                          std::string_view tenant, const SecretMask& sent) {
  // The one place where the endpoint's words enter a failure: each text
  // is masked whole, before FirstLine could cut a secret in two.
  auto kept = [&](const char* key) {
    return FirstLine(sent.Apply(StringField(body, key)));
  };
  TokenFailure failure;
  failure.http_status = status;
  std::string description = sent.Apply(StringField(body, "error_description"));
  failure.description = FirstLine(description);
  failure.aadsts = sent.Apply(FindAadsts(description, body));
  failure.error = kept("error");
  failure.suberror = kept("suberror");
  failure.trace_id = kept("trace_id");
  failure.correlation_id = kept("correlation_id");

  failure.failure_class = ClassifyError(failure.error, status);
  if (failure.aadsts == "AADSTS7000012") {
    failure.failure_class = FailureClass::kConfiguration;
  }
  failure.message = ErrorMessage(failure, tenant);
  return failure;
}

// Reads the fields of a 200 answer (RFC 6749 section 5.1).
std::expected<TokenGrant, TokenFailure> SuccessGrant(const json& body) {
  auto bad = [](std::string what) {
    return std::unexpected(
        Temporary(200, "the token endpoint's answer " + what + "; retrying"));
  };
  std::string token = StringField(body, "access_token");
  if (token.empty())
    return bad("has no access_token");
  if (!protocol::IsValidToken(token)) {
    return bad("holds an access_token with bytes or length we cannot pass on");
  }

  auto expires = body.find("expires_in");
  std::optional<long> seconds;
  if (expires != body.end())
    seconds = LenientSeconds(*expires);
  if (!seconds)
    return bad("has no numeric expires_in");
  if (*seconds <= 0)
    return bad("has a non-positive expires_in");

  auto type = body.find("token_type");
  if (type != body.end() &&
      (!type->is_string() ||
       AsciiLower(type->get<std::string>()) != "bearer")) {
    return bad("has a token_type other than Bearer");
  }

  TokenGrant grant;
  grant.access_token = Secret(std::move(token));
  grant.expires_in = *seconds;
  grant.refresh_token = Secret(StringField(body, "refresh_token"));
  return grant;
}

// Classifies an answer whose body is not usable JSON.
TokenFailure NonJsonFailure(const HttpAnswer& answer, bool truncated) {
  std::string what = truncated ? "truncated JSON" : "a body that is not JSON";
  return Temporary(answer.status, "the token endpoint answered HTTP " +
                                      std::to_string(answer.status) + " with " +
                                      what + "; retrying");
}

// Drops spaces, tabs and the CR LF around a header value.
std::string_view TrimHeader(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
    value.remove_prefix(1);
  }
  while (!value.empty() && (value.back() == ' ' || value.back() == '\r' ||
                            value.back() == '\n' || value.back() == '\t')) {
    value.remove_suffix(1);
  }
  return value;
}

// Unix seconds of an HTTP-date in any of the three forms RFC 9110 section
// 5.6.7 says a recipient must accept; all are GMT.
std::optional<std::int64_t> ParseHttpDate(std::string_view value) {
  if (value.size() > 64)
    return std::nullopt;
  std::string text(value);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
        "%a %b %e %H:%M:%S %Y"}) {
    std::tm parts{};
    const char* end = strptime(text.c_str(), format, &parts);
    if (end != nullptr && *end == '\0')
      return static_cast<std::int64_t>(timegm(&parts));
  }
  return std::nullopt;
}

}  // namespace

std::string_view FailureClassName(FailureClass failure_class) {
  switch (failure_class) {
    case FailureClass::kNeedsPerson:
      return "needs-person";
    case FailureClass::kNeedsAdmin:
      return "needs-admin";
    case FailureClass::kConfiguration:
      return "configuration";
    case FailureClass::kThrottled:
      return "throttled";
    case FailureClass::kTemporary:
      return "temporary";
  }
  return "temporary";
}

std::string FailureCause(const TokenFailure& failure) {
  std::string cause = failure.error.empty() ? "no error code" : failure.error;
  if (!failure.description.empty()) {
    cause += " (" + failure.description + ")";
  } else if (!failure.aadsts.empty()) {
    cause += " (" + failure.aadsts + ")";
  }
  return cause;
}

TokenFailure TransportFailure(std::string message) {
  return Temporary(0, std::move(message));
}

std::optional<long> ParseRetryAfter(std::string_view value, std::int64_t now) {
  value = TrimHeader(value);
  long seconds = 0;
  auto [end, err] =
      std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (err == std::errc() && end == value.data() + value.size() &&
      seconds >= 0) {
    return seconds;
  }
  auto date = ParseHttpDate(value);
  if (!date)
    return std::nullopt;
  return static_cast<long>(std::max<std::int64_t>(0, *date - now));
}

std::optional<long> ParseRetryAfter(std::string_view value) {
  return ParseRetryAfter(value, std::time(nullptr));
}

std::expected<TokenGrant, TokenFailure> ParseTokenResponse(
    const HttpAnswer& answer, std::string_view tenant, const SecretMask& sent) {
  // Status-only decisions come first: redirects are never followed with
  // credentials, and 429 means wait whatever the body says.
  if (answer.status >= 300 && answer.status < 400) {
    return std::unexpected(Temporary(
        answer.status, "the token endpoint answered with a redirect (HTTP " +
                           std::to_string(answer.status) +
                           "), which is not followed; check authority"));
  }
  if (answer.status == 429) {
    TokenFailure failure = Temporary(429, "");
    failure.failure_class = FailureClass::kThrottled;
    failure.retry_after_seconds = answer.retry_after.value_or(0);
    failure.message = "the token endpoint is throttling (HTTP 429); waiting " +
                      std::to_string(failure.retry_after_seconds) +
                      " s as Retry-After asks";
    return std::unexpected(failure);
  }
  if (answer.body.size() > kMaxTokenResponseBytes) {
    return std::unexpected(
        Temporary(answer.status, "the token endpoint's answer exceeds 64 KiB"));
  }

  try {
    json body = json::parse(answer.body);
    if (!body.is_object())
      return std::unexpected(NonJsonFailure(answer, false));
    if (answer.status == 200)
      return SuccessGrant(body);
    if (body.contains("error")) {
      return std::unexpected(ErrorFailure(answer.status, body, tenant, sent));
    }
    return std::unexpected(
        Temporary(answer.status, "the token endpoint answered HTTP " +
                                     std::to_string(answer.status) +
                                     " without an OAuth error; retrying"));
  } catch (const json::parse_error& error) {
    bool truncated =
        error.byte > answer.body.size() &&
        answer.body.find_first_not_of(" \t\r\n") != std::string_view::npos &&
        answer.body[answer.body.find_first_not_of(" \t\r\n")] == '{';
    return std::unexpected(NonJsonFailure(answer, truncated));
  } catch (const std::exception&) {
    // Not error.what(): nlohmann quotes the answer's bytes in some (a
    // number too large, for one).
    return std::unexpected(Temporary(
        answer.status, "the token endpoint answered HTTP " +
                           std::to_string(answer.status) +
                           " with JSON that cannot be read; retrying"));
  }
}

}  // namespace xoauth2::helper
