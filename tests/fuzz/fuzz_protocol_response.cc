// SPDX-License-Identifier: MIT
//
// Fuzz target for protocol::ParseResponse, the plugin's parser of the
// helper's answer line (docs/protocol.md), and for FormatResponse, which
// must turn any error text into a line the plugin can parse.
//
// Invariants checked for every input:
// - a parsed `ok` carries either no token or a valid token with a positive
//   expiry, and a parsed `ok-status` a printable status of at most
//   kMaxStatusBytes and no token; a parsed `err` carries printable text;
// - FormatResponse of a parsed response is at most kMaxResponseBytes and
//   parses back to the same response;
// - FormatResponse of an error whose text is the raw input (any bytes, any
//   length) is a bounded line that parses, with the same code.
// No I/O, no state.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "protocol.h"

namespace {

using namespace xoauth2::protocol;
using xoauth2::fuzz::IsPrintable;

bool SameResponse(const Response& a, const Response& b) {
  if (a.ok != b.ok)
    return false;
  if (a.ok)
    return a.token == b.token && a.status == b.status &&
           (a.token.empty() || a.expires == b.expires);
  return a.code == b.code && a.text == b.text;
}

// Checks a response that parsed, and its round trip.
void CheckParsed(const Response& response) {
  if (response.ok && !response.token.empty()) {
    FUZZ_CHECK(IsValidToken(response.token));
    FUZZ_CHECK(response.expires > 0);
  }
  if (!response.status.empty()) {
    FUZZ_CHECK(response.ok && response.token.empty());
    FUZZ_CHECK(response.status.size() <= kMaxStatusBytes);
    FUZZ_CHECK(IsPrintable(response.status));
  }
  if (!response.ok)
    FUZZ_CHECK(IsPrintable(response.text));

  std::string wire = FormatResponse(response);
  FUZZ_CHECK(wire.size() <= kMaxResponseBytes);
  FUZZ_CHECK(wire.back() == '\n');
  auto again = ParseResponse(wire);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(SameResponse(*again, response));
}

// Any bytes as an error text still make one parseable, bounded line.
void CheckFormattedError(std::string_view text, std::uint8_t selector) {
  Response response;
  response.code = static_cast<ErrorCode>(selector % 6);
  response.text = std::string(text);
  std::string wire = FormatResponse(response);
  FUZZ_CHECK(wire.size() <= kMaxResponseBytes);
  FUZZ_CHECK(wire.find('\n') == wire.size() - 1);
  auto parsed = ParseResponse(wire);
  FUZZ_CHECK(parsed.has_value());
  FUZZ_CHECK(!parsed->ok && parsed->code == response.code);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view line = xoauth2::fuzz::AsText(data, size);
  auto response = ParseResponse(line);
  if (response) {
    CheckParsed(*response);
  } else {
    FUZZ_CHECK(response.error().code == ErrorCode::kBadRequest);
    FUZZ_CHECK(IsPrintable(response.error().text));
  }
  CheckFormattedError(line, size > 0 ? data[0] : 0);
  return 0;
}
