// SPDX-License-Identifier: MIT
//
// Implementation of response.h: XOAUTH2 response building, mailbox check
// and challenge sanitizing. Pure functions; see the header for the
// contract.

#include "response.h"

#include <string.h>  // explicit_bzero

#include "protocol.h"

namespace xoauth2::plugin {
namespace {

constexpr std::string_view kUserPrefix = "user=";
constexpr std::string_view kAuthPrefix =
    "\x01"
    "auth=Bearer ";
constexpr std::string_view kEnd = "\x01\x01";

// What the operator must add to Postfix for this relay.
constexpr std::string_view kPasswdHint =
    "add `[relayhost]:port MAILBOX:-` to smtp_sasl_password_maps "
    "(the password part is not used)";

bool IsPrintable(char c) {
  return c >= 0x20 && c <= 0x7e;
}

}  // namespace

std::string BuildInitialResponse(std::string_view mailbox,
                                 std::string_view token) {
  std::string out;
  out.reserve(kUserPrefix.size() + mailbox.size() + kAuthPrefix.size() +
              token.size() + kEnd.size());
  out.append(kUserPrefix);
  out.append(mailbox);
  out.append(kAuthPrefix);
  out.append(token);
  out.append(kEnd);
  return out;
}

std::expected<void, std::string> CheckMailbox(std::string_view mailbox) {
  if (mailbox.empty()) {
    return std::unexpected("no mailbox given for this relay: " +
                           std::string(kPasswdHint));
  }
  if (!protocol::IsValidMailbox(mailbox)) {
    return std::unexpected("mailbox \"" + SanitizeForLog(mailbox) +
                           "\" is not an address of the form local@domain: " +
                           std::string(kPasswdHint));
  }
  return {};
}

std::string SanitizeForLog(std::string_view text) {
  bool cut = text.size() > kMaxLoggedText;
  if (cut)
    text = text.substr(0, kMaxLoggedText);

  std::string out(text);
  for (char& c : out) {
    if (!IsPrintable(c))
      c = '?';
  }
  if (cut)
    out += "...";
  return out;
}

void Wipe(std::string& secret) {
  if (!secret.empty())
    explicit_bzero(secret.data(), secret.size());
  secret.clear();
}

}  // namespace xoauth2::plugin
