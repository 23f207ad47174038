// SPDX-License-Identifier: MIT
//
// The sender guard's judgement, free of libmilter so that unit and fuzz
// tests drive it directly: may this message's envelope sender and From
// header go to Office 365, which refuses a sender that is not the
// authenticated mailbox or one it has Send As rights on (554 5.2.252
// SendAsDenied, reference "SMTP replies")?
//
// Main types: SenderGuard (the allowed addresses, built once from the
// configuration, then read-only and shared by every thread) and
// SenderGuardSession (one milter connection's per-message state, used by
// one thread at a time). A Refusal is the SMTP reply to give: code,
// enhanced code and a one-line printable-ASCII text that names the
// address, the configuration file and the fix.
//
// Rules (README "Refusing senders Office 365 would refuse"):
// - the envelope sender (MAIL FROM, RFC 5321 4.1.2) must be an account's
//   mailbox or one of its send_as addresses, compared ignoring ASCII case;
//   the null sender <> is refused (Office 365 sends as a mailbox only);
// - every address of every From header (RFC 5322 3.6.2, address-list of
//   3.4 with display names, quoted strings, comments, groups and folding;
//   RFC 2047 encoded words in a display name are skipped, not decoded)
//   must be allowed too; a message without From, a From without an
//   address and a From that cannot be parsed are refused.
// Sender: and Resent-From: are not judged.
//
// Bounds: a header value over kMaxFromHeaderBytes, more than
// kMaxFromAddresses addresses or comments nested deeper than
// kMaxCommentDepth are refused as unparseable; nothing here allocates
// more than a small multiple of its input. Nothing throws on bad input
// (only std::bad_alloc could escape; the milter's callbacks catch it) and
// nothing is logged here: the milter logs each refusal once, and each
// accepted sender at debug level (SenderGuardSession::accepted()).

#ifndef XOAUTH2_TOKEN_HELPER_SENDER_GUARD_H
#define XOAUTH2_TOKEN_HELPER_SENDER_GUARD_H

#include <cstddef>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"

namespace xoauth2::helper {

inline constexpr std::size_t kMaxFromHeaderBytes = 8192;
inline constexpr std::size_t kMaxFromAddresses = 32;
inline constexpr std::size_t kMaxCommentDepth = 16;

// The SMTP reply refusing a message, e.g. 550 5.7.1 "sender ... is not".
struct Refusal {
  std::string code;     // "550"
  std::string xcode;    // "5.7.1"
  std::string text;     // one line, printable ASCII, no '%'
  std::string stage;    // "mail_from" or "header_from", for the log
  std::string address;  // the refused address ("" when none), for the log
};

// Accepted (nullopt) or refused with the reply to give.
using Verdict = std::optional<Refusal>;

// The address of a MAIL FROM argument ("<a@b>" or "a@b", possibly with a
// source route); "" for the null sender "<>"; an error text for anything
// that is not one address.
std::expected<std::string, std::string> ParseEnvelopeSender(
    std::string_view argument);

// The addresses of a From header value (folding and comments allowed), in
// order, each as local@domain (a local part that is not a dot-atom stays
// quoted); an error text when it cannot be parsed or is too large.
std::expected<std::vector<std::string>, std::string> ParseFromHeader(
    std::string_view value);

// The addresses that may send and what a refusal tells the operator.
class SenderGuard {
 public:
  // Every account's mailbox and send_as; `config.path` goes into replies.
  explicit SenderGuard(const Config& config);

  // `allowed` addresses, `config_path` as the file to fix (for tests).
  SenderGuard(const std::vector<std::string>& allowed, std::string config_path);

  // True when `address` is allowed (ASCII case ignored).
  bool Allows(std::string_view address) const;

  // The verdict on the first MAIL FROM argument as libmilter gives it;
  // when it passes and `accepted` is given, the sender's address goes
  // there.
  Verdict JudgeEnvelopeSender(std::string_view argument,
                              std::string* accepted = nullptr) const;

  // The verdict on one From header value; when it passes and `accepted`
  // is given, its addresses go there, separated by ','.
  Verdict JudgeFromHeader(std::string_view value,
                          std::string* accepted = nullptr) const;

  // The refusal of a message that has no From header.
  Refusal MissingFrom() const;

  std::size_t size() const { return allowed_.size(); }

 private:
  // A 550 5.7.1 refusal at `stage` with `text`.
  Refusal Refuse(std::string_view stage, std::string_view address,
                 std::string text) const;

  // The shared tail of a refusal: where to list the address.
  std::string FixText() const;

  std::vector<std::string> allowed_;  // lower-case, sorted
  std::string config_path_;
};

// One milter connection: judges each message's envelope sender at MAIL
// FROM and its From headers at the end of the headers.
class SenderGuardSession {
 public:
  explicit SenderGuardSession(const SenderGuard& guard) : guard_(guard) {}

  // MAIL FROM: starts a new message and judges its envelope sender.
  Verdict OnEnvelopeFrom(std::string_view argument);

  // One header; only From headers are kept (their first refusal).
  void OnHeader(std::string_view name, std::string_view value);

  // The end of the headers: the verdict on the From headers seen.
  Verdict OnEndOfHeaders() const;

  // Forgets the current message (milter abort).
  void ResetMessage();

  // What the last OnEnvelopeFrom or OnHeader call let pass, for the
  // milter's debug log: the envelope sender, or one From header's
  // addresses separated by ','; "" when that call refused or judged
  // nothing.
  const std::string& accepted() const { return accepted_; }

 private:
  const SenderGuard& guard_;
  std::string accepted_;
  std::size_t from_headers_ = 0;
  Verdict from_refusal_;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SENDER_GUARD_H
