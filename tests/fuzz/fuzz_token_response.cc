// SPDX-License-Identifier: MIT
//
// Fuzz target for helper::ParseTokenResponse and helper::ParseRetryAfter:
// what the helper makes of the token endpoint's answer (HTTP status,
// Retry-After header and body), the input that comes from the network.
//
// Input: line 1 is the HTTP status in decimal (cut to 0..999), line 2 the
// Retry-After header value (absent when the line is empty), the rest the
// body. Invariants checked for every input:
// - a grant only from HTTP 200, with a token the socket protocol can
//   carry and a positive lifetime;
// - a failure's message is non-empty and printable; every field kept for
//   the log is printable and bounded; HTTP 429 is throttled with a
//   non-negative wait; the aadsts field is "AADSTS" and digits or empty;
// - no failure message contains the body's access_token or refresh_token
//   (unless the server itself echoed it in a text field that is logged).
//   Only tokens holding a '~' are looked for: the helper's own texts never
//   contain one, while a token like "00 without an OAuth error;" is a
//   piece of them without any leak;
// - no failure field or message holds a value the request sent (the mask
//   passed in, kSent), raw or percent-encoded, even where the body
//   repeats it.
// No I/O, no state.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "fuzz_check.h"
#include "protocol.h"
#include "token_response.h"

namespace {

using namespace xoauth2::helper;
using xoauth2::fuzz::IsPrintable;

// A field kept for the operator's log: printable, one bounded line.
bool IsLoggable(std::string_view text) {
  return IsPrintable(text) && text.size() <= 300;
}

bool IsAadsts(std::string_view code) {
  if (code.empty())
    return true;
  if (!code.starts_with("AADSTS") || code.size() == 6)
    return false;
  for (char c : code.substr(6)) {
    if ((c < '0' || c > '9') && c != '-')
      return false;
  }
  return true;
}

// What the fuzzed request "sent"; the seeds repeat it in error texts.
constexpr std::string_view kSent = "sent~Secret+/=value";
constexpr std::string_view kSentEncoded = "sent~Secret%2B%2F%3Dvalue";

// No field kept of `failure` holds kSent in either form.
void CheckSentMasked(const TokenFailure& failure) {
  for (const std::string* field :
       {&failure.message, &failure.error, &failure.description, &failure.aadsts,
        &failure.suberror, &failure.trace_id, &failure.correlation_id}) {
    FUZZ_CHECK(field->find(kSent) == std::string::npos);
    FUZZ_CHECK(field->find(kSentEncoded) == std::string::npos);
  }
}

// The body's tokens that must never reach a message: those of at least 16
// bytes, holding a '~', that the server did not also put into a logged
// text field.
void CheckNoTokenInMessage(std::string_view body, const TokenFailure& failure) {
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object())
    return;
  std::string echoed;
  for (const char* key : {"error", "error_description", "suberror", "trace_id",
                          "correlation_id"}) {
    auto it = json.find(key);
    if (it != json.end() && it->is_string())
      echoed += it->get<std::string>();
  }
  for (const char* key : {"access_token", "refresh_token"}) {
    auto it = json.find(key);
    if (it == json.end() || !it->is_string())
      continue;
    const std::string& token = it->get_ref<const std::string&>();
    if (token.size() < 16 || token.find('~') == std::string::npos ||
        echoed.find(token) != std::string::npos)
      continue;
    FUZZ_CHECK(failure.message.find(token) == std::string::npos);
  }
}

// Checks a failure's fields.
void CheckFailure(const HttpAnswer& answer, const TokenFailure& failure) {
  FUZZ_CHECK(!failure.message.empty());
  FUZZ_CHECK(IsPrintable(failure.message));
  for (const std::string* field :
       {&failure.error, &failure.description, &failure.suberror,
        &failure.trace_id, &failure.correlation_id}) {
    FUZZ_CHECK(IsLoggable(*field));
  }
  FUZZ_CHECK(IsAadsts(failure.aadsts));
  FUZZ_CHECK(failure.http_status == answer.status);
  FUZZ_CHECK((answer.status == 429) ==
             (failure.failure_class == FailureClass::kThrottled));
  FUZZ_CHECK(failure.retry_after_seconds >= 0);
  CheckNoTokenInMessage(answer.body, failure);
  CheckSentMasked(failure);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view input = xoauth2::fuzz::AsText(data, size);
  std::string_view status_line = xoauth2::fuzz::TakeLine(input);
  std::string_view retry_line = xoauth2::fuzz::TakeLine(input);

  HttpAnswer answer;
  long status = 0;
  std::from_chars(status_line.data(), status_line.data() + status_line.size(),
                  status);
  answer.status = status < 0 || status > 999 ? 0 : status;
  if (!retry_line.empty()) {
    answer.retry_after = ParseRetryAfter(retry_line);
    if (answer.retry_after)
      FUZZ_CHECK(*answer.retry_after >= 0);
  }
  answer.body = input;

  SecretMask sent;
  sent.AddSecret(kSent);
  auto grant = ParseTokenResponse(answer, "contoso.onmicrosoft.com", sent);
  if (grant) {
    FUZZ_CHECK(answer.status == 200);
    FUZZ_CHECK(xoauth2::protocol::IsValidToken(grant->access_token.Reveal()));
    FUZZ_CHECK(grant->expires_in > 0);
  } else {
    CheckFailure(answer, grant.error());
  }
  return 0;
}
