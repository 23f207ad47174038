// SPDX-License-Identifier: MIT
//
// Netstrings (D. J. Bernstein, "Netstrings", 1997): the framing of
// Postfix's socketmap protocol (socketmap_table(5)), used by the reply
// socket (reply_server.h). A netstring is the payload length in decimal,
// ':', the payload, ','; "12:hello world!," carries "hello world!".
//
// ParseNetstring() is a pure function over a byte buffer: no I/O, no
// allocation, no exceptions, so it can be fed arbitrary bytes by a fuzzer.
// It says whether the buffer starts with a complete netstring, needs more
// bytes, or can never become valid (then the connection must be dropped,
// since the stream has lost its framing). Leading zeros in the length are
// refused, as the definition requires, and so is a length above the
// caller's limit, as soon as its digits show it.

#ifndef XOAUTH2_TOKEN_HELPER_NETSTRING_H
#define XOAUTH2_TOKEN_HELPER_NETSTRING_H

#include <cstddef>
#include <string>
#include <string_view>

namespace xoauth2::helper {

enum class NetstringStatus { kComplete, kIncomplete, kInvalid };

// The outcome of ParseNetstring.
struct NetstringParse {
  NetstringStatus status = NetstringStatus::kIncomplete;
  std::string_view payload;  // kComplete: points into the input
  std::size_t consumed = 0;  // kComplete: bytes of the input used
  std::string_view error;    // kInvalid: a fixed, printable reason
};

// Parses the netstring at the start of `input`, whose payload may hold at
// most `max_payload` bytes.
NetstringParse ParseNetstring(std::string_view input, std::size_t max_payload);

// The netstring carrying `payload`.
std::string FormatNetstring(std::string_view payload);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_NETSTRING_H
