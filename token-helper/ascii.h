// SPDX-License-Identifier: MIT
//
// ASCII case folding for the helper: mailbox matching, tenant names, OAuth
// token types and SMTP reply texts all compare without regard to ASCII
// case, and all of them go through these two functions. No locale is
// consulted, so results do not depend on the environment.

#ifndef XOAUTH2_TOKEN_HELPER_ASCII_H
#define XOAUTH2_TOKEN_HELPER_ASCII_H

#include <string>
#include <string_view>

namespace xoauth2::helper {

// `text` with A-Z turned into a-z; every other byte as it is.
inline std::string AsciiLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// True when two mailboxes name the same account (ASCII case ignored).
inline bool SameMailbox(std::string_view a, std::string_view b) {
  return AsciiLower(a) == AsciiLower(b);
}

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_ASCII_H
