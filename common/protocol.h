// SPDX-License-Identifier: MIT
//
// The token socket protocol, version 1, shared by the SASL plugin (client)
// and the token-helper (server). docs/protocol.md is its specification.
//
// Defines Request and Response, their one-line wire forms, and the limits
// on every field. Parsing never throws for bad input: it returns a
// ProtocolError naming what was wrong. Nothing here does I/O, logs or holds
// state, so both the plugin (inside the MTA) and the helper can link it.
// Memory allocation failures surface as std::bad_alloc; callers at module
// edges catch them.

#ifndef XOAUTH2_COMMON_PROTOCOL_H
#define XOAUTH2_COMMON_PROTOCOL_H

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace xoauth2::protocol {

inline constexpr std::string_view kVersion = "v1";

// Wire limits, each including the terminating LF where it applies. A
// request line holds the longest valid request, `v1 reject MAILBOX
// ACCESS_TOKEN` with both fields at their limits (12554 bytes): an
// Entra ID access token is commonly 1.5 to 2.5 KB, so reporting one must
// never be refused for its length alone.
inline constexpr std::size_t kMaxMailboxBytes = 254;
inline constexpr std::size_t kMaxTokenBytes = 12288;
inline constexpr std::size_t kMaxRequestBytes =
    kVersion.size() + std::string_view(" reject ").size() + kMaxMailboxBytes +
    1 + kMaxTokenBytes + 1;
inline constexpr std::size_t kMaxResponseBytes = 16384;

// The `ok-status ` prefix and the LF leave this much room for the JSON.
inline constexpr std::size_t kMaxStatusBytes = kMaxResponseBytes - 11;

enum class Verb { kToken, kReject, kStatus };

// One request: `token MAILBOX`, `reject MAILBOX ACCESS_TOKEN` or
// `status` (no mailbox: the state of every account).
struct Request {
  Verb verb = Verb::kToken;
  std::string mailbox;  // empty for kStatus
  std::string token;    // only for kReject
};

// Stable error codes; their wire names are in docs/protocol.md.
enum class ErrorCode {
  kBadRequest,
  kUnsupportedVersion,
  kDenied,
  kNoAccount,
  kUnavailable,
  kInternal,
};

// One response: success (with a token, a status or nothing) or an error.
struct Response {
  bool ok = false;
  std::string token;         // empty for a bare `ok`
  std::int64_t expires = 0;  // Unix seconds; meaningful when token is set
  ErrorCode code = ErrorCode::kInternal;  // when !ok
  std::string text;                       // when !ok
  // `ok-status` only: one line of compact JSON, printable ASCII, at most
  // kMaxStatusBytes; it never holds a token or secret (docs/protocol.md).
  std::string status;
};

// Why a line could not be parsed; `code` is what a server answers with.
struct ProtocolError {
  ErrorCode code = ErrorCode::kBadRequest;
  std::string text;
};

// The wire name of an error code ("bad-request", ...).
std::string_view ErrorCodeName(ErrorCode code);

// True when `mailbox` is 1..254 visible ASCII bytes holding exactly one '@'
// that is neither first nor last.
bool IsValidMailbox(std::string_view mailbox);

// True when `token` is 1..kMaxTokenBytes visible ASCII bytes.
bool IsValidToken(std::string_view token);

// Parses one request line; `line` may or may not end with LF.
std::expected<Request, ProtocolError> ParseRequest(std::string_view line);

// The reason given for a request line over kMaxRequestBytes.
std::string RequestTooLongText();

// The wire form of `request`, ending in LF. The caller validates fields.
std::string FormatRequest(const Request& request);

// Parses one response line; `line` may or may not end with LF.
std::expected<Response, ProtocolError> ParseResponse(std::string_view line);

// The wire form of `response`, ending in LF and never longer than
// kMaxResponseBytes: error text is cut to fit and any byte outside
// printable ASCII in it becomes '?'. A status that does not fit or is not
// printable ASCII becomes `err internal` (the caller must make it fit).
std::string FormatResponse(const Response& response);

}  // namespace xoauth2::protocol

#endif  // XOAUTH2_COMMON_PROTOCOL_H
