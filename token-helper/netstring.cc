// SPDX-License-Identifier: MIT
//
// ParseNetstring and FormatNetstring; see netstring.h.

#include "netstring.h"

namespace xoauth2::helper {
namespace {

NetstringParse Invalid(std::string_view why) {
  NetstringParse result;
  result.status = NetstringStatus::kInvalid;
  result.error = why;
  return result;
}

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

NetstringParse ParseNetstring(std::string_view input, std::size_t max_payload) {
  // The length: decimal digits, no leading zero, no larger than the limit.
  std::size_t length = 0;
  std::size_t at = 0;
  for (; at < input.size() && IsDigit(input[at]); ++at) {
    if (at == 1 && input[0] == '0')
      return Invalid("leading zero in netstring length");
    length = length * 10 + static_cast<std::size_t>(input[at] - '0');
    if (length > max_payload)
      return Invalid("netstring longer than the limit");
  }
  if (at == input.size())
    return {};  // only digits so far
  if (input[at] != ':')
    return Invalid("netstring length is not followed by ':'");
  if (at == 0)
    return Invalid("netstring without a length");

  // The payload and the closing comma.
  std::size_t start = at + 1;
  if (input.size() - start < length + 1)
    return {};
  if (input[start + length] != ',')
    return Invalid("netstring does not end with ','");
  NetstringParse result;
  result.status = NetstringStatus::kComplete;
  result.payload = input.substr(start, length);
  result.consumed = start + length + 1;
  return result;
}

std::string FormatNetstring(std::string_view payload) {
  std::string out = std::to_string(payload.size());
  out += ':';
  out += payload;
  out += ',';
  return out;
}

}  // namespace xoauth2::helper
