// SPDX-License-Identifier: MIT
//
// Pure builders and checkers for the XOAUTH2 client side: the initial
// client response, the mailbox check with its operator message, and the
// sanitizing of outside text (a server's error challenge) before it is
// logged.
//
// Nothing here does I/O, logs or keeps state; every function is safe to
// call from any thread. Allocation failures surface as std::bad_alloc and
// are caught by the SASL glue.
//
// Follows the XOAUTH2 format documented by Microsoft ("Authenticate an
// IMAP, POP or SMTP connection using OAuth") and Google ("OAuth 2.0
// Mechanism"), summarised in the project's office365-smtp-oauth notes §1.

#ifndef XOAUTH2_SASL_PLUGIN_RESPONSE_H
#define XOAUTH2_SASL_PLUGIN_RESPONSE_H

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

namespace xoauth2::plugin {

// Longest outside text we log, in bytes, before "...".
inline constexpr std::size_t kMaxLoggedText = 200;

// The XOAUTH2 initial client response (before base64):
//   "user=" mailbox "\x01auth=Bearer " token "\x01\x01"
// The string is allocated once at its final size so that no stray copy of
// the token is left in freed memory; the caller wipes it with Wipe().
std::string BuildInitialResponse(std::string_view mailbox,
                                 std::string_view token);

// Checks the mailbox given by the host (Postfix: the user part of the
// smtp_sasl_password_maps entry). Returns the operator message naming the
// fix when it is missing or not a plain address.
std::expected<void, std::string> CheckMailbox(std::string_view mailbox);

// Text from outside (a server challenge, a mailbox, the helper's error
// text) made fit for one log line: bytes outside printable ASCII become
// '?', and more than kMaxLoggedText bytes are cut and marked "...".
std::string SanitizeForLog(std::string_view text);

// Overwrites the string's bytes with zeros (not optimised away) and
// empties it. Used for every buffer that held a token.
void Wipe(std::string& secret);

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_RESPONSE_H
