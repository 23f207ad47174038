// SPDX-License-Identifier: MIT
//
// Fuzz target for helper::ParseNetstring, the framing of the reply socket
// that Postfix's smtp(8) writes to (socketmap_table(5)).
//
// Input: the first byte picks the payload limit (0..255, or 100000 for
// 255), the rest is the stream. Invariants checked for every input:
// - kComplete: the payload is within the limit and inside the consumed
//   bytes, and FormatNetstring(payload) is exactly the consumed prefix;
//   that prefix cut by one byte is kIncomplete;
// - kIncomplete: the input is a prefix of some valid netstring, so it is
//   all digits or digits ':' and at most limit+1 bytes more;
// - kInvalid: a non-empty printable reason.
// No I/O, no state.

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_check.h"
#include "netstring.h"

namespace {

using namespace xoauth2::helper;

// Checks a complete netstring and its canonical form.
void CheckComplete(std::string_view input, const NetstringParse& parse,
                   std::size_t limit) {
  FUZZ_CHECK(parse.payload.size() <= limit);
  FUZZ_CHECK(parse.consumed <= input.size());
  FUZZ_CHECK(parse.payload.data() >= input.data() &&
             parse.payload.data() + parse.payload.size() <=
                 input.data() + parse.consumed);
  std::string_view used = input.substr(0, parse.consumed);
  FUZZ_CHECK(FormatNetstring(parse.payload) == used);

  // One byte short of the end, the same bytes are still a prefix.
  NetstringParse shorter =
      ParseNetstring(used.substr(0, used.size() - 1), limit);
  FUZZ_CHECK(shorter.status == NetstringStatus::kIncomplete);
}

// An incomplete input is digits, optionally ':' and part of a payload.
void CheckIncomplete(std::string_view input, std::size_t limit) {
  std::size_t digits = 0;
  while (digits < input.size() && input[digits] >= '0' &&
         input[digits] <= '9') {
    ++digits;
  }
  if (digits == input.size())
    return;
  FUZZ_CHECK(input[digits] == ':' && digits > 0);
  FUZZ_CHECK(input.size() - digits - 1 <= limit);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0)
    return 0;
  std::size_t limit = data[0] == 255 ? 100000 : data[0];
  std::string_view input = xoauth2::fuzz::AsText(data + 1, size - 1);

  NetstringParse parse = ParseNetstring(input, limit);
  switch (parse.status) {
    case NetstringStatus::kComplete:
      CheckComplete(input, parse, limit);
      break;
    case NetstringStatus::kIncomplete:
      CheckIncomplete(input, limit);
      break;
    case NetstringStatus::kInvalid:
      FUZZ_CHECK(!parse.error.empty());
      FUZZ_CHECK(xoauth2::fuzz::IsPrintable(parse.error));
      break;
  }
  return 0;
}
