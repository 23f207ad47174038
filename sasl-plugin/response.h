// SPDX-License-Identifier: MIT
//
// Pure builders and checkers for the client side of the two mechanisms
// the plugin offers, XOAUTH2 and OAUTHBEARER: the initial client
// response, the reply to an error challenge, the mailbox check with its
// operator message, and the sanitizing of outside text (a server's error
// challenge) before it is logged.
//
// The two mechanisms share one exchange (exchange.h) and differ only in
// what this file formats for them (Mechanism):
//   XOAUTH2      "user=" MAILBOX "\x01auth=Bearer " TOKEN "\x01\x01";
//                an error challenge is answered with an empty response.
//   OAUTHBEARER  "n,a=" SASLNAME "," "\x01host=" HOST "\x01port=" PORT
//                "\x01auth=Bearer " TOKEN "\x01\x01", where SASLNAME is
//                the mailbox with ',' as "=2C" and '=' as "=3D", and the
//                host= and port= pairs are each left out when unknown
//                (ServerAddress); an error challenge is answered with a
//                single 0x01 byte.
//
// Nothing here does I/O, logs or keeps state; every function is safe to
// call from any thread. Allocation failures surface as std::bad_alloc and
// are caught by the SASL glue.
//
// Follows the XOAUTH2 format documented by Microsoft ("Authenticate an
// IMAP, POP or SMTP connection using OAuth") and Google ("OAuth 2.0
// Mechanism"), RFC 7628 §3.1 and §3.2.3 (OAUTHBEARER) and RFC 5801 §4
// (the gs2 header's saslname), summarised in the project's
// office365-smtp-oauth notes §1.

#ifndef XOAUTH2_SASL_PLUGIN_RESPONSE_H
#define XOAUTH2_SASL_PLUGIN_RESPONSE_H

#include <cstddef>
#include <expected>
#include <string>
#include <string_view>

namespace xoauth2::plugin {

// Longest outside text we log, in bytes, before "...".
inline constexpr std::size_t kMaxLoggedText = 200;

// Longest serverFQDN sent as OAUTHBEARER's host= value (RFC 1035 name).
inline constexpr std::size_t kMaxHostBytes = 255;

// The mechanisms the plugin offers; see the file comment for how they
// differ.
enum class Mechanism { kXoauth2, kOauthBearer };

// The registered SASL name of `mechanism` ("XOAUTH2", "OAUTHBEARER").
constexpr const char* MechanismName(Mechanism mechanism) {
  return mechanism == Mechanism::kOauthBearer ? "OAUTHBEARER" : "XOAUTH2";
}

// The server the client talks to, for OAUTHBEARER's host= and port=
// pairs. An empty field means unknown, and its pair is left out.
struct ServerAddress {
  std::string host;
  std::string port;
};

// The server address from the host application's connection parameters:
// `fqdn` is sasl_client_params_t.serverFQDN and `ipremoteport` its
// ipremoteport ("ADDRESS;PORT", or empty when the application gave no
// addresses, as Postfix does). The host is kept only when it is 1 to
// kMaxHostBytes visible ASCII bytes, the port only when it is a decimal
// number from 1 to 65535; anything else is treated as unknown.
ServerAddress ServerAddressFrom(std::string_view fqdn,
                                std::string_view ipremoteport);

// The initial client response (before base64) of `mechanism` for
// `mailbox` and `token`; `server` is used by OAUTHBEARER only. The string
// is allocated once at its final size so that no stray copy of the token
// is left in freed memory; the caller wipes it with Wipe().
std::string BuildInitialResponse(Mechanism mechanism, std::string_view mailbox,
                                 std::string_view token,
                                 const ServerAddress& server = {});

// What the client sends after the server answered the initial response
// with an error challenge: empty for XOAUTH2 (Google's documentation), a
// single 0x01 byte (kvsep) for OAUTHBEARER (RFC 7628 §3.2.3).
std::string_view ErrorChallengeReply(Mechanism mechanism);

// `name` as an RFC 5801 saslname: ',' becomes "=2C" and '=' becomes
// "=3D"; every other byte is kept.
std::string EscapeSaslName(std::string_view name);

// Checks the mailbox given by the host (Postfix: the user part of the
// smtp_sasl_password_maps entry). Returns the operator message naming the
// fix when it is missing or not a plain address. ',' and '=' pass (they
// are escaped by EscapeSaslName for OAUTHBEARER).
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
