// SPDX-License-Identifier: MIT
//
// The sender guard's address parsing and verdicts (sender_guard.h). The
// From header is read in two passes: a tokenizer that knows RFC 5322's
// lexical rules (3.2.2 folding white space and comments, 3.2.3 atoms and
// specials, 3.2.4 quoted strings, 3.4.1 domain literals) and a small
// parser over the tokens for address-list, group, name-addr and addr-spec
// (3.4), including the obsolete route and empty list elements of 4.4.
// The envelope sender reuses the addr-spec half (RFC 5321 4.1.2 Mailbox is
// a subset). Errors are short texts that end up in the SMTP reply.

#include "sender_guard.h"

#include <algorithm>
#include <cstdint>

#include "ascii.h"
#include "protocol.h"

namespace xoauth2::helper {
namespace {

enum class TokenKind { kWord, kQuoted, kLiteral, kSpecial };

// One lexical token: an atom run, a quoted string's content (unescaped), a
// domain literal with its brackets, or one special character.
struct Token {
  TokenKind kind;
  std::string text;

  bool Is(char special) const {
    return kind == TokenKind::kSpecial && text.size() == 1 &&
           text[0] == special;
  }
};

using Tokens = std::vector<Token>;
using Parsed = std::expected<std::string, std::string>;

// The specials of RFC 5322 3.2.3 that end an atom.
bool IsSpecial(char c) {
  return std::string_view("()<>[]:;@\\,.\"").find(c) != std::string_view::npos;
}

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

// Control bytes other than folding white space have no place in a header.
bool IsControl(char c) {
  auto byte = static_cast<unsigned char>(c);
  return (byte < 0x20 && !IsSpace(c)) || byte == 0x7f;
}

// Skips a comment starting at text[pos] == '('; false if unterminated or
// nested too deep.
bool SkipComment(std::string_view text, std::size_t& pos) {
  std::size_t depth = 0;
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '\\') {
      ++pos;
    } else if (c == '(') {
      if (++depth > kMaxCommentDepth)
        return false;
    } else if (c == ')' && --depth == 0) {
      ++pos;
      return true;
    }
  }
  return false;
}

// Reads a quoted string starting at text[pos] == '"' into `out` (escapes
// removed, folding line breaks dropped); false if unterminated.
bool ReadQuoted(std::string_view text, std::size_t& pos, std::string& out) {
  for (++pos; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '"') {
      ++pos;
      return true;
    }
    if (c == '\\' && pos + 1 < text.size())
      c = text[++pos];
    else if (c == '\r' || c == '\n')
      continue;
    out.push_back(c);
  }
  return false;
}

// Reads a domain literal starting at text[pos] == '[' (brackets kept).
bool ReadLiteral(std::string_view text, std::size_t& pos, std::string& out) {
  for (; pos < text.size(); ++pos) {
    char c = text[pos];
    if (c == '[' && !out.empty())
      return false;
    if (c == '\\' || IsControl(c))
      return false;
    if (!IsSpace(c))
      out.push_back(c);
    if (c == ']') {
      ++pos;
      return true;
    }
  }
  return false;
}

// Reads the next token at text[pos] (white space and comments already
// skipped) into `tokens`; an error text when the input is malformed.
std::optional<std::string> ReadToken(std::string_view text, std::size_t& pos,
                                     Tokens& tokens) {
  char c = text[pos];
  if (IsControl(c))
    return "a control character";
  if (c == '"') {
    Token token{TokenKind::kQuoted, {}};
    if (!ReadQuoted(text, pos, token.text))
      return "an unterminated quoted string";
    tokens.push_back(std::move(token));
    return std::nullopt;
  }
  if (c == '[') {
    Token token{TokenKind::kLiteral, {}};
    if (!ReadLiteral(text, pos, token.text))
      return "a malformed domain literal";
    tokens.push_back(std::move(token));
    return std::nullopt;
  }
  if (c == ')' || c == ']' || c == '\\')
    return std::string("a stray '") + c + "'";
  if (IsSpecial(c)) {
    tokens.push_back({TokenKind::kSpecial, std::string(1, c)});
    ++pos;
    return std::nullopt;
  }

  // An atom: every other byte, UTF-8 included (RFC 6532 3.2).
  std::size_t start = pos;
  while (pos < text.size() && !IsSpace(text[pos]) && !IsSpecial(text[pos]) &&
         !IsControl(text[pos])) {
    ++pos;
  }
  tokens.push_back(
      {TokenKind::kWord, std::string(text.substr(start, pos - start))});
  return std::nullopt;
}

// Splits `text` into tokens, dropping white space and comments.
std::expected<Tokens, std::string> Tokenize(std::string_view text) {
  Tokens tokens;
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (IsSpace(text[pos])) {
      ++pos;
      continue;
    }
    if (text[pos] == '(') {
      if (!SkipComment(text, pos))
        return std::unexpected("an unterminated or too deeply nested comment");
      continue;
    }
    if (auto error = ReadToken(text, pos, tokens))
      return std::unexpected(*error);
  }
  return tokens;
}

// True when `text` is a dot-atom (RFC 5322 3.2.3): atext runs joined by
// single dots.
bool IsDotAtom(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.')
    return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '.' && text[i + 1] == '.')
      return false;
    if (c != '.' && (IsSpace(c) || IsSpecial(c) || IsControl(c)))
      return false;
  }
  return true;
}

// `text` as a quoted string with '"', '\', CR and LF escaped, so that it
// reads back as the same text.
std::string Quote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\' || c == '\r' || c == '\n')
      out.push_back('\\');
    out.push_back(c);
  }
  return out + "\"";
}

// Joins word ('.' word)* from tokens[begin, end) into `out`; false when
// the sequence is not words separated by single dots.
bool JoinDotted(const Tokens& tokens, std::size_t begin, std::size_t end,
                bool allow_quoted, std::string& out) {
  if (begin >= end)
    return false;
  for (std::size_t i = begin; i < end; ++i) {
    bool want_word = (i - begin) % 2 == 0;
    const Token& token = tokens[i];
    if (!want_word) {
      if (!token.Is('.'))
        return false;
      out.push_back('.');
      continue;
    }
    bool word = token.kind == TokenKind::kWord ||
                (allow_quoted && token.kind == TokenKind::kQuoted);
    if (!word)
      return false;
    out += token.text;
  }
  return (end - begin) % 2 == 1;
}

// The addr-spec in tokens[begin, end): local-part "@" domain.
Parsed BuildAddrSpec(const Tokens& tokens, std::size_t begin, std::size_t end) {
  std::size_t at = end;
  for (std::size_t i = begin; i < end; ++i) {
    if (tokens[i].Is('@')) {
      if (at != end)
        return std::unexpected("an address with two '@'");
      at = i;
    }
  }
  if (at == end)
    return std::unexpected("an address without '@'");

  // A quoted local part equal to a dot-atom is the same address unquoted.
  std::string local;
  if (!JoinDotted(tokens, begin, at, true, local))
    return std::unexpected("an address with a malformed local part");
  if (!IsDotAtom(local))
    local = Quote(local);

  std::string domain;
  bool literal = at + 2 == end && tokens[at + 1].kind == TokenKind::kLiteral;
  if (literal)
    domain = tokens[at + 1].text;
  else if (!JoinDotted(tokens, at + 1, end, false, domain))
    return std::unexpected("an address with a malformed domain");
  return local + "@" + domain;
}

// The addr-spec inside <...> at tokens[begin, end), after an optional
// obsolete route "@a,@b:" (RFC 5322 4.4, RFC 5321 4.1.2).
Parsed BuildAngleAddr(const Tokens& tokens, std::size_t begin,
                      std::size_t end) {
  if (begin < end && tokens[begin].Is('@')) {
    while (begin < end && !tokens[begin].Is(':'))
      ++begin;
    if (begin == end)
      return std::unexpected("a route without ':'");
    ++begin;
  }
  return BuildAddrSpec(tokens, begin, end);
}

// Parser state over a From header's tokens.
struct ListParser {
  const Tokens& tokens;
  std::size_t pos = 0;
  bool in_group = false;
  std::vector<std::string> addresses;

  bool AtDelimiter() const {
    const Token& token = tokens[pos];
    return token.Is('<') || token.Is(',') || token.Is(';') || token.Is(':');
  }

  // name-addr: display name tokens were skipped; tokens[pos] is '<'.
  std::optional<std::string> AngleAddr() {
    std::size_t open = ++pos;
    while (pos < tokens.size() && !tokens[pos].Is('>'))
      ++pos;
    if (pos == tokens.size())
      return "a '<' without '>'";
    auto address = BuildAngleAddr(tokens, open, pos);
    if (!address)
      return address.error();
    addresses.push_back(std::move(*address));
    ++pos;
    bool ends = pos == tokens.size() || tokens[pos].Is(',') ||
                (in_group && tokens[pos].Is(';'));
    return ends ? std::nullopt : std::optional<std::string>("text after '>'");
  }

  // One element of the list at tokens[pos].
  std::optional<std::string> Element() {
    std::size_t start = pos;
    while (pos < tokens.size() && !AtDelimiter())
      ++pos;
    if (pos < tokens.size() && tokens[pos].Is(':')) {
      if (in_group)
        return "a group inside a group";
      in_group = true;  // the group's display name is not an address
      ++pos;
      return std::nullopt;
    }
    if (pos < tokens.size() && tokens[pos].Is('<'))
      return AngleAddr();
    auto address = BuildAddrSpec(tokens, start, pos);
    if (!address)
      return address.error();
    addresses.push_back(std::move(*address));
    return std::nullopt;
  }

  // address-list: elements separated by ',' with groups closed by ';'.
  std::optional<std::string> Run() {
    while (pos < tokens.size()) {
      if (tokens[pos].Is(',')) {
        ++pos;  // an empty element (RFC 5322 4.4)
      } else if (tokens[pos].Is(';')) {
        if (!in_group)
          return "a ';' outside a group";
        in_group = false;
        ++pos;
      } else if (auto error = Element()) {
        return error;
      }
      if (addresses.size() > kMaxFromAddresses)
        return "more than " + std::to_string(kMaxFromAddresses) + " addresses";
    }
    if (in_group)
      return "a group without its closing ';'";
    return std::nullopt;
  }
};

// `text` made safe for a one-line SMTP reply: printable ASCII without
// '%' (libmilter and MTAs may treat it as a format character), at most
// `limit` bytes.
std::string ForReply(std::string_view text, std::size_t limit = 100) {
  std::string out;
  for (char c : text.substr(0, limit)) {
    bool printable = c >= 0x20 && c <= 0x7e && c != '%';
    out.push_back(printable ? c : '?');
  }
  if (text.size() > limit)
    out += "...";
  return out;
}

// `addresses` separated by ','.
std::string JoinAddresses(const std::vector<std::string>& addresses) {
  std::string out;
  for (const std::string& address : addresses) {
    if (!out.empty())
      out += ',';
    out += address;
  }
  return out;
}

}  // namespace

std::expected<std::string, std::string> ParseEnvelopeSender(
    std::string_view argument) {
  if (argument.size() > 2 * protocol::kMaxMailboxBytes)
    return std::unexpected("an envelope sender longer than 508 bytes");
  auto tokens = Tokenize(argument);
  if (!tokens)
    return std::unexpected(tokens.error());
  const Tokens& list = *tokens;
  bool angle = !list.empty() && list.front().Is('<');
  if (angle && (list.size() < 2 || !list.back().Is('>')))
    return std::unexpected("a '<' without '>'");
  std::size_t begin = angle ? 1 : 0;
  std::size_t end = angle ? list.size() - 1 : list.size();
  if (angle && begin == end)
    return std::string();  // the null sender <>
  return BuildAngleAddr(list, begin, end);
}

std::expected<std::vector<std::string>, std::string> ParseFromHeader(
    std::string_view value) {
  if (value.size() > kMaxFromHeaderBytes) {
    return std::unexpected("longer than " +
                           std::to_string(kMaxFromHeaderBytes) + " bytes");
  }
  auto tokens = Tokenize(value);
  if (!tokens)
    return std::unexpected(tokens.error());
  ListParser parser{*tokens, 0, false, {}};
  if (auto error = parser.Run())
    return std::unexpected(*error);
  return std::move(parser.addresses);
}

SenderGuard::SenderGuard(const Config& config) : config_path_(config.path) {
  for (const Account& account : config.accounts) {
    allowed_.push_back(AsciiLower(account.mailbox));
    for (const std::string& address : account.send_as)
      allowed_.push_back(AsciiLower(address));
  }
  std::ranges::sort(allowed_);
  allowed_.erase(std::unique(allowed_.begin(), allowed_.end()), allowed_.end());
}

SenderGuard::SenderGuard(const std::vector<std::string>& allowed,
                         std::string config_path)
    : config_path_(std::move(config_path)) {
  for (const std::string& address : allowed)
    allowed_.push_back(AsciiLower(address));
  std::ranges::sort(allowed_);
}

bool SenderGuard::Allows(std::string_view address) const {
  return std::ranges::binary_search(allowed_, AsciiLower(address));
}

std::string SenderGuard::FixText() const {
  return "; add it to \"send_as\" of an account in " +
         ForReply(config_path_, 200) +
         " (Office 365 refuses it as SendAsDenied otherwise)";
}

Refusal SenderGuard::Refuse(std::string_view stage, std::string_view address,
                            std::string text) const {
  return Refusal{"550", "5.7.1", std::move(text), std::string(stage),
                 std::string(address)};
}

Verdict SenderGuard::JudgeEnvelopeSender(std::string_view argument,
                                         std::string* accepted) const {
  auto sender = ParseEnvelopeSender(argument);
  if (!sender) {
    return Refuse("mail_from", "",
                  "envelope sender " + ForReply(argument) +
                      " cannot be parsed (" + sender.error() +
                      "); Office 365 accepts only its mailboxes as senders");
  }
  if (sender->empty()) {
    return Refuse("mail_from", "<>",
                  "the null sender <> cannot be relayed: Office 365 sends "
                  "only as a mailbox; give the message an envelope sender "
                  "listed in " +
                      ForReply(config_path_, 200));
  }
  if (Allows(*sender)) {
    if (accepted != nullptr)
      *accepted = *sender;
    return std::nullopt;
  }
  return Refuse("mail_from", *sender,
                "sender " + ForReply(*sender) +
                    " is not a mailbox xoauth2-relay holds a token for" +
                    FixText());
}

Verdict SenderGuard::JudgeFromHeader(std::string_view value,
                                     std::string* accepted) const {
  auto addresses = ParseFromHeader(value);
  if (!addresses) {
    return Refuse("header_from", "",
                  "the From header cannot be parsed (" + addresses.error() +
                      "); the sending program must write From: "
                      "Name <mailbox>");
  }
  if (addresses->empty()) {
    return Refuse("header_from", "",
                  "the From header holds no address; Office 365 needs a "
                  "From address it may send as");
  }
  for (const std::string& address : *addresses) {
    if (!Allows(address)) {
      return Refuse("header_from", address,
                    "From header address " + ForReply(address) +
                        " is not a mailbox xoauth2-relay holds a token "
                        "for" +
                        FixText());
    }
  }
  if (accepted != nullptr)
    *accepted = JoinAddresses(*addresses);
  return std::nullopt;
}

Refusal SenderGuard::MissingFrom() const {
  return Refuse("header_from", "",
                "the message has no From header; Office 365 checks it "
                "against the mailbox, so the sending program must add "
                "From: with an address listed in " +
                    ForReply(config_path_, 200));
}

Verdict SenderGuardSession::OnEnvelopeFrom(std::string_view argument) {
  ResetMessage();
  return guard_.JudgeEnvelopeSender(argument, &accepted_);
}

void SenderGuardSession::OnHeader(std::string_view name,
                                  std::string_view value) {
  accepted_.clear();
  if (AsciiLower(name) != "from")
    return;
  ++from_headers_;
  if (!from_refusal_)
    from_refusal_ = guard_.JudgeFromHeader(value, &accepted_);
}

Verdict SenderGuardSession::OnEndOfHeaders() const {
  if (from_headers_ == 0)
    return guard_.MissingFrom();
  return from_refusal_;
}

void SenderGuardSession::ResetMessage() {
  accepted_.clear();
  from_headers_ = 0;
  from_refusal_.reset();
}

}  // namespace xoauth2::helper
