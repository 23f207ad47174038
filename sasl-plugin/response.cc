// SPDX-License-Identifier: MIT
//
// Implementation of response.h: XOAUTH2 and OAUTHBEARER response
// building, the server address for OAUTHBEARER, mailbox check and
// challenge sanitizing. Pure functions; see the header for the contract.

#include "response.h"

#include <string.h>  // explicit_bzero

#include <charconv>
#include <initializer_list>

#include "protocol.h"

namespace xoauth2::plugin {
namespace {

// XOAUTH2's pieces around the mailbox and the token.
constexpr std::string_view kUserPrefix = "user=";
constexpr std::string_view kAuthPrefix =
    "\x01"
    "auth=Bearer ";
constexpr std::string_view kEnd = "\x01\x01";

// OAUTHBEARER's gs2 header (RFC 7628 §3.1: no channel binding, "n") and
// its key=value pairs, each ended by kvsep (0x01).
constexpr std::string_view kGs2Prefix = "n,a=";
constexpr std::string_view kGs2End = ",";
constexpr std::string_view kHostKey =
    "\x01"
    "host=";
constexpr std::string_view kPortKey =
    "\x01"
    "port=";

// RFC 7628 §3.2.3: the client's reply to an error challenge is kvsep.
constexpr std::string_view kKvsep = "\x01";

// What the operator must add to Postfix for this relay.
constexpr std::string_view kPasswdHint =
    "add `[relayhost]:port MAILBOX:-` to smtp_sasl_password_maps "
    "(the password part is not used)";

bool IsPrintable(char c) {
  return c >= 0x20 && c <= 0x7e;
}

// The parts concatenated into one string allocated at its final size, so
// that a token among them is never copied into a buffer later freed.
std::string Join(std::initializer_list<std::string_view> parts) {
  std::size_t size = 0;
  for (std::string_view part : parts)
    size += part.size();

  std::string out;
  out.reserve(size);
  for (std::string_view part : parts)
    out.append(part);
  return out;
}

// "\x01host=HOST", or nothing when the host is unknown.
std::string_view HostKey(const ServerAddress& server) {
  return server.host.empty() ? std::string_view() : kHostKey;
}

// "\x01port=PORT", or nothing when the port is unknown.
std::string_view PortKey(const ServerAddress& server) {
  return server.port.empty() ? std::string_view() : kPortKey;
}

// A host name we can put in host=: visible ASCII, so never a kvsep.
bool IsUsableHost(std::string_view host) {
  if (host.empty() || host.size() > kMaxHostBytes)
    return false;
  for (char c : host) {
    if (c <= 0x20 || c > 0x7e)
      return false;
  }
  return true;
}

// The port after the last ';' of "ADDRESS;PORT", or "" when there is no
// decimal port from 1 to 65535 there.
std::string PortOf(std::string_view ipremoteport) {
  std::size_t semicolon = ipremoteport.rfind(';');
  if (semicolon == std::string_view::npos)
    return "";
  std::string_view digits = ipremoteport.substr(semicolon + 1);

  unsigned value = 0;
  const char* end = digits.data() + digits.size();
  auto [stop, err] = std::from_chars(digits.data(), end, value);
  if (err != std::errc() || stop != end || value < 1 || value > 65535)
    return "";
  return std::to_string(value);
}

// "user=" MAILBOX "\x01auth=Bearer " TOKEN "\x01\x01".
std::string BuildXoauth2(std::string_view mailbox, std::string_view token) {
  return Join({kUserPrefix, mailbox, kAuthPrefix, token, kEnd});
}

// "n,a=" SASLNAME "," ["\x01host=" HOST] ["\x01port=" PORT]
// "\x01auth=Bearer " TOKEN "\x01\x01" (RFC 7628 §3.1).
std::string BuildOauthBearer(std::string_view mailbox, std::string_view token,
                             const ServerAddress& server) {
  std::string saslname = EscapeSaslName(mailbox);
  return Join({kGs2Prefix, saslname, kGs2End, HostKey(server), server.host,
               PortKey(server), server.port, kAuthPrefix, token, kEnd});
}

}  // namespace

ServerAddress ServerAddressFrom(std::string_view fqdn,
                                std::string_view ipremoteport) {
  ServerAddress server;
  if (IsUsableHost(fqdn))
    server.host = std::string(fqdn);
  server.port = PortOf(ipremoteport);
  return server;
}

std::string BuildInitialResponse(Mechanism mechanism, std::string_view mailbox,
                                 std::string_view token,
                                 const ServerAddress& server) {
  switch (mechanism) {
    case Mechanism::kOauthBearer:
      return BuildOauthBearer(mailbox, token, server);
    case Mechanism::kXoauth2:
      break;
  }
  return BuildXoauth2(mailbox, token);
}

std::string_view ErrorChallengeReply(Mechanism mechanism) {
  return mechanism == Mechanism::kOauthBearer ? kKvsep : std::string_view();
}

std::string EscapeSaslName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c == ',') {
      out += "=2C";
    } else if (c == '=') {
      out += "=3D";
    } else {
      out += c;
    }
  }
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
