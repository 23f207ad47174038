// SPDX-License-Identifier: MIT
//
// Parsing and formatting of the token socket protocol (docs/protocol.md).
// Pure functions over strings: no I/O, no logging, no global state.

#include "protocol.h"

#include <algorithm>
#include <charconv>
#include <vector>

namespace xoauth2::protocol {
namespace {

struct CodeName {
  ErrorCode code;
  std::string_view name;
};

constexpr CodeName kCodeNames[] = {
    {ErrorCode::kBadRequest, "bad-request"},
    {ErrorCode::kUnsupportedVersion, "unsupported-version"},
    {ErrorCode::kDenied, "denied"},
    {ErrorCode::kNoAccount, "no-account"},
    {ErrorCode::kUnavailable, "unavailable"},
    {ErrorCode::kInternal, "internal"},
};

bool IsVisible(char c) {
  return c >= 0x21 && c <= 0x7e;
}

bool AllVisible(std::string_view s) {
  return std::all_of(s.begin(), s.end(), IsVisible);
}

// Printable ASCII including the space: what a status line may carry.
bool AllPrintable(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

// Strips one trailing LF, if present.
std::string_view WithoutLf(std::string_view line) {
  if (!line.empty() && line.back() == '\n')
    line.remove_suffix(1);
  return line;
}

// Splits on single spaces, at most `max_fields` fields; the last field
// takes the rest of the line.
std::vector<std::string_view> SplitFields(std::string_view line,
                                          std::size_t max_fields) {
  std::vector<std::string_view> fields;
  while (fields.size() + 1 < max_fields) {
    std::size_t space = line.find(' ');
    if (space == std::string_view::npos)
      break;
    fields.push_back(line.substr(0, space));
    line.remove_prefix(space + 1);
  }
  fields.push_back(line);
  return fields;
}

ProtocolError Bad(std::string text) {
  return ProtocolError{ErrorCode::kBadRequest, std::move(text)};
}

std::expected<ErrorCode, ProtocolError> CodeFromName(std::string_view name) {
  for (const CodeName& entry : kCodeNames) {
    if (entry.name == name)
      return entry.code;
  }
  return std::unexpected(Bad("unknown error code in response"));
}

// Parses the fields after "ok".
std::expected<Response, ProtocolError> ParseOk(std::string_view rest) {
  Response response;
  response.ok = true;
  if (rest.empty())
    return response;

  std::vector<std::string_view> fields = SplitFields(rest, 3);
  if (fields.size() != 2)
    return std::unexpected(Bad("malformed ok line"));
  if (!IsValidToken(fields[0])) {
    return std::unexpected(Bad("malformed token in ok line"));
  }
  std::int64_t expires = 0;
  auto [end, err] = std::from_chars(
      fields[1].data(), fields[1].data() + fields[1].size(), expires);
  if (err != std::errc() || end != fields[1].data() + fields[1].size() ||
      expires <= 0) {
    return std::unexpected(Bad("malformed expiry in ok line"));
  }
  response.token = std::string(fields[0]);
  response.expires = expires;
  return response;
}

// Parses the JSON after "ok-status "; only its bytes are checked here.
std::expected<Response, ProtocolError> ParseStatus(std::string_view rest) {
  if (rest.empty() || rest.size() > kMaxStatusBytes || !AllPrintable(rest))
    return std::unexpected(Bad("malformed ok-status line"));
  Response response;
  response.ok = true;
  response.status = std::string(rest);
  return response;
}

// Parses the fields after "err".
std::expected<Response, ProtocolError> ParseErr(std::string_view rest) {
  std::vector<std::string_view> fields = SplitFields(rest, 2);
  auto code = CodeFromName(fields[0]);
  if (!code)
    return std::unexpected(code.error());

  Response response;
  response.code = *code;
  response.text = fields.size() > 1 ? std::string(fields[1]) : std::string();
  for (char& c : response.text) {
    if (c < 0x20 || c > 0x7e)
      c = '?';
  }
  return response;
}

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  for (const CodeName& entry : kCodeNames) {
    if (entry.code == code)
      return entry.name;
  }
  return "internal";
}

bool IsValidMailbox(std::string_view mailbox) {
  if (mailbox.empty() || mailbox.size() > kMaxMailboxBytes)
    return false;
  if (!AllVisible(mailbox))
    return false;
  std::size_t at = mailbox.find('@');
  return at != std::string_view::npos && at != 0 && at + 1 != mailbox.size() &&
         mailbox.find('@', at + 1) == std::string_view::npos;
}

bool IsValidToken(std::string_view token) {
  return !token.empty() && token.size() <= kMaxTokenBytes && AllVisible(token);
}

std::string RequestTooLongText() {
  return "request longer than " + std::to_string(kMaxRequestBytes) + " bytes";
}

std::expected<Request, ProtocolError> ParseRequest(std::string_view line) {
  if (line.size() > kMaxRequestBytes) {
    return std::unexpected(Bad(RequestTooLongText()));
  }
  line = WithoutLf(line);

  // The version comes first so that a future client gets a precise answer.
  std::vector<std::string_view> fields = SplitFields(line, 5);
  if (fields[0] != kVersion) {
    return std::unexpected(
        ProtocolError{ErrorCode::kUnsupportedVersion,
                      "this helper speaks protocol v1 only; upgrade the "
                      "helper or use a matching plugin"});
  }
  if (fields.size() == 2 && fields[1] == "status")
    return Request{Verb::kStatus, {}, {}};
  if (fields.size() < 3)
    return std::unexpected(Bad("missing fields"));

  Request request;
  if (fields[1] == "token" && fields.size() == 3) {
    request.verb = Verb::kToken;
  } else if (fields[1] == "reject" && fields.size() == 4) {
    request.verb = Verb::kReject;
    if (!IsValidToken(fields[3])) {
      return std::unexpected(Bad("malformed token in reject request"));
    }
    request.token = std::string(fields[3]);
  } else {
    return std::unexpected(Bad("unknown verb or wrong number of fields"));
  }
  if (!IsValidMailbox(fields[2])) {
    return std::unexpected(Bad("malformed mailbox"));
  }
  request.mailbox = std::string(fields[2]);
  return request;
}

std::string FormatRequest(const Request& request) {
  std::string line(kVersion);
  if (request.verb == Verb::kStatus)
    return line + " status\n";
  line += request.verb == Verb::kToken ? " token " : " reject ";
  line += request.mailbox;
  if (request.verb == Verb::kReject) {
    line += ' ';
    line += request.token;
  }
  line += '\n';
  return line;
}

std::expected<Response, ProtocolError> ParseResponse(std::string_view line) {
  if (line.size() > kMaxResponseBytes) {
    return std::unexpected(Bad("response longer than 16384 bytes"));
  }
  line = WithoutLf(line);

  if (line.starts_with("ok-status "))
    return ParseStatus(line.substr(10));
  if (line == "ok")
    return ParseOk({});
  if (line.starts_with("ok "))
    return ParseOk(line.substr(3));
  if (line.starts_with("err "))
    return ParseErr(line.substr(4));
  return std::unexpected(Bad("response is neither ok nor err"));
}

std::string FormatResponse(const Response& response) {
  if (response.ok && !response.status.empty()) {
    if (response.status.size() <= kMaxStatusBytes &&
        AllPrintable(response.status)) {
      return "ok-status " + response.status + "\n";
    }
    return "err internal the status does not fit in one response line\n";
  }
  if (response.ok) {
    if (response.token.empty())
      return "ok\n";
    return "ok " + response.token + " " + std::to_string(response.expires) +
           "\n";
  }

  std::string line = "err ";
  line += ErrorCodeName(response.code);
  line += ' ';
  std::size_t room = kMaxResponseBytes - line.size() - 1;
  std::string text = response.text.substr(0, room);
  for (char& c : text) {
    if (c < 0x20 || c > 0x7e)
      c = '?';
  }
  line += text;
  line += '\n';
  return line;
}

}  // namespace xoauth2::protocol
