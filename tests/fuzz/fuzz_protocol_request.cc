// SPDX-License-Identifier: MIT
//
// Fuzz target for protocol::ParseRequest, the helper's parser of the
// request line every allowed local client sends (docs/protocol.md).
//
// Invariants checked for every input:
// - a request that parses has a valid mailbox (none for `status`, and a
//   valid token for `reject` only), and FormatRequest gives back exactly the
//   input line (with one LF), which is at most kMaxRequestBytes and parses to
//   the same request;
// - a refused line gets kBadRequest or kUnsupportedVersion and a
//   non-empty, printable reason.
// No I/O, no state.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "protocol.h"

namespace {

using namespace xoauth2::protocol;
using xoauth2::fuzz::IsPrintable;

bool SameRequest(const Request& a, const Request& b) {
  return a.verb == b.verb && a.mailbox == b.mailbox && a.token == b.token;
}

// Checks a request that parsed.
void CheckParsed(std::string_view line, const Request& request) {
  FUZZ_CHECK(request.verb == Verb::kStatus ? request.mailbox.empty()
                                           : IsValidMailbox(request.mailbox));
  FUZZ_CHECK(request.verb == Verb::kReject ? IsValidToken(request.token)
                                           : request.token.empty());

  // The wire form is canonical: it is the input, LF-terminated.
  std::string wire = FormatRequest(request);
  std::string expected(line);
  if (expected.empty() || expected.back() != '\n')
    expected += '\n';
  FUZZ_CHECK(wire == expected);
  FUZZ_CHECK(wire.size() <= kMaxRequestBytes);

  auto again = ParseRequest(wire);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(SameRequest(*again, request));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view line = xoauth2::fuzz::AsText(data, size);
  auto request = ParseRequest(line);
  if (request) {
    CheckParsed(line, *request);
    return 0;
  }
  FUZZ_CHECK(request.error().code == ErrorCode::kBadRequest ||
             request.error().code == ErrorCode::kUnsupportedVersion);
  FUZZ_CHECK(!request.error().text.empty());
  FUZZ_CHECK(IsPrintable(request.error().text));
  return 0;
}
