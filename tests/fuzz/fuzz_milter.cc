// SPDX-License-Identifier: MIT
//
// Fuzz target for the sender guard milter's input handling
// (sender_guard.h): what libmilter hands the callbacks, driven through a
// SenderGuardSession exactly as milter.cc does, plus the two parsers.
//
// Input: elements separated by NUL bytes (libmilter's strings cannot hold
// one): the first is the MAIL FROM argument, then header name and value
// pairs (values may hold folding CR LF and any other byte). Invariants
// checked for every input:
// - every refusal is 550 5.7.1 with a non-empty one-line printable ASCII
//   text without '%', and names its stage;
// - a From value that parses yields at most kMaxFromAddresses addresses,
//   each with an '@', and the addresses joined with ", " parse back to
//   the same list (the canonical form is stable);
// - an envelope sender that parses reads back the same inside <...>;
// - the session's verdict at the end of the headers is a refusal exactly
//   when no From header came or some From value is refused.
// No I/O, no threads.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "sender_guard.h"

namespace {

using namespace xoauth2::helper;

// Checks the reply a refusal would give.
void CheckRefusal(const Verdict& verdict) {
  if (!verdict)
    return;
  FUZZ_CHECK(verdict->code == "550" && verdict->xcode == "5.7.1");
  FUZZ_CHECK(!verdict->text.empty());
  FUZZ_CHECK(xoauth2::fuzz::IsPrintable(verdict->text));
  FUZZ_CHECK(verdict->text.find('%') == std::string::npos);
  FUZZ_CHECK(verdict->stage == "mail_from" || verdict->stage == "header_from");
}

// Checks ParseFromHeader's result for `value` and its stability.
void CheckFromParse(std::string_view value) {
  auto parsed = ParseFromHeader(value);
  if (!parsed) {
    FUZZ_CHECK(!parsed.error().empty());
    return;
  }
  FUZZ_CHECK(parsed->size() <= kMaxFromAddresses);
  std::string joined;
  for (const std::string& address : *parsed) {
    FUZZ_CHECK(address.find('@') != std::string::npos);
    joined += (joined.empty() ? "" : ", ") + address;
  }
  auto again = ParseFromHeader(joined);
  FUZZ_CHECK(joined.size() > kMaxFromHeaderBytes ||
             (again && *again == *parsed));
}

// Checks ParseEnvelopeSender's result for `argument` and its stability.
void CheckEnvelopeParse(std::string_view argument) {
  auto parsed = ParseEnvelopeSender(argument);
  if (!parsed || parsed->empty())
    return;
  auto again = ParseEnvelopeSender("<" + *parsed + ">");
  FUZZ_CHECK(again && *again == *parsed);
}

// True for "From" in any ASCII case.
bool IsFromName(std::string_view name) {
  constexpr std::string_view kFrom = "from";
  if (name.size() != kFrom.size())
    return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i];
    if (c != kFrom[i])
      return false;
  }
  return true;
}

// The input's NUL-separated elements.
std::vector<std::string_view> Split(std::string_view input) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t nul = input.find('\0', start);
    parts.push_back(input.substr(start, nul - start));
    if (nul == std::string_view::npos)
      return parts;
    start = nul + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  static const SenderGuard guard(
      {"relay@example.com", "alerts@example.com", "\"a b\"@example.com"},
      "/etc/xoauth2-relay/config.json");
  std::vector<std::string_view> parts =
      Split(xoauth2::fuzz::AsText(data, size));

  SenderGuardSession session(guard);
  CheckEnvelopeParse(parts[0]);
  CheckRefusal(session.OnEnvelopeFrom(parts[0]));

  bool saw_from = false;
  bool from_refused = false;
  for (std::size_t i = 1; i + 1 < parts.size(); i += 2) {
    session.OnHeader(parts[i], parts[i + 1]);
    if (!IsFromName(parts[i]))
      continue;
    CheckFromParse(parts[i + 1]);
    saw_from = true;
    from_refused = from_refused || guard.JudgeFromHeader(parts[i + 1]);
  }
  Verdict end = session.OnEndOfHeaders();
  CheckRefusal(end);
  FUZZ_CHECK(end.has_value() == (!saw_from || from_refused));
  return 0;
}
