// SPDX-License-Identifier: MIT
//
// ClassifyReply, ServedTokens and ReplyWatcher; see reply_watcher.h.

#include "reply_watcher.h"

#include <algorithm>

#include "ascii.h"
#include "log.h"

namespace xoauth2::helper {
namespace {

// Longest part of a server reply copied into a log line.
constexpr std::size_t kMaxLoggedReply = 200;

bool StartsWithCode(std::string_view line, std::string_view code) {
  return line.size() >= 3 && line.substr(0, 3) == code &&
         (line.size() == 3 || line[3] == ' ' || line[3] == '-');
}

// The reply as it may appear in a log line: bounded, printable.
std::string LoggedReply(std::string_view line) {
  std::string out(line.substr(0, kMaxLoggedReply));
  for (char& c : out) {
    if (c < 0x20 || c > 0x7e)
      c = '?';
  }
  return out;
}

}  // namespace

ReplyKind ClassifyReply(std::string_view line) {
  std::string lower = AsciiLower(line);
  auto has = [&lower](std::string_view part) {
    return lower.find(part) != std::string::npos;
  };
  if (StartsWithCode(line, "235"))
    return ReplyKind::kAccepted;
  if (StartsWithCode(line, "334"))
    return ReplyKind::kChallenge;
  if (StartsWithCode(line, "501") &&
      (has(" 5.5.127") || has("token will expire soon"))) {
    return ReplyKind::kExpiresSoon;
  }
  if (!StartsWithCode(line, "535"))
    return ReplyKind::kOther;
  if (!has("5.7.139"))
    return ReplyKind::kTokenRefused;
  if (has("smtpclientauthentication is disabled"))
    return ReplyKind::kAuthDisabled;
  if (has("organization configuration doesn't allow"))
    return ReplyKind::kSecurityDefaults;
  return ReplyKind::kPolicyRefused;
}

std::string_view ReplyKindName(ReplyKind kind) {
  switch (kind) {
    case ReplyKind::kChallenge:
      return "challenge";
    case ReplyKind::kAccepted:
      return "accepted";
    case ReplyKind::kTokenRefused:
      return "token_refused";
    case ReplyKind::kAuthDisabled:
      return "smtp_auth_disabled";
    case ReplyKind::kSecurityDefaults:
      return "security_defaults";
    case ReplyKind::kPolicyRefused:
      return "policy_refused";
    case ReplyKind::kExpiresSoon:
      return "token_expires_soon";
    case ReplyKind::kOther:
      break;
  }
  return "other";
}

std::string ReplyStatus(std::string_view line) {
  std::string status(line.substr(0, std::min<std::size_t>(line.size(), 3)));
  std::size_t start = line.find_first_not_of(' ', 4);
  if (line.size() <= 4 || start == std::string_view::npos)
    return status;
  std::size_t end = line.find(' ', start);
  std::string_view word = line.substr(start, end - start);
  bool enhanced = !word.empty() && word.size() <= 11 &&
                  word.find_first_not_of("0123456789.") == std::string::npos &&
                  std::count(word.begin(), word.end(), '.') == 2;
  return enhanced ? status + " " + std::string(word) : status;
}

ServedTokens::ServedTokens(std::chrono::seconds window, std::size_t capacity)
    : window_(window), capacity_(std::max<std::size_t>(capacity, 1)) {}

void ServedTokens::Record(pid_t pid, std::string mailbox, Secret token,
                          SteadyTime now) {
  // Make room: first drop what expired, then the oldest entry.
  if (!entries_.contains(pid) && entries_.size() >= capacity_) {
    Purge(now);
    if (entries_.size() >= capacity_) {
      auto oldest = std::min_element(entries_.begin(), entries_.end(),
                                     [](const auto& a, const auto& b) {
                                       return a.second.served < b.second.served;
                                     });
      entries_.erase(oldest);
    }
  }
  entries_[pid] = ServedToken{std::move(mailbox), std::move(token), now};
}

const ServedToken* ServedTokens::Find(pid_t pid, SteadyTime now) const {
  auto found = entries_.find(pid);
  if (found == entries_.end() || now - found->second.served > window_)
    return nullptr;
  return &found->second;
}

void ServedTokens::Forget(pid_t pid) {
  entries_.erase(pid);
}

void ServedTokens::Purge(SteadyTime now) {
  std::erase_if(entries_, [&](const auto& entry) {
    return now - entry.second.served > window_;
  });
}

ReplyWatcher::ReplyWatcher(ReplyActions actions, WatcherOptions options)
    : actions_(std::move(actions)), served_(options.window, options.capacity) {}

void ReplyWatcher::TokenServed(pid_t pid, std::string_view mailbox,
                               std::string_view token, SteadyTime now) {
  std::lock_guard lock(mutex_);
  served_.Record(pid, std::string(mailbox), Secret(std::string(token)), now);
}

void ReplyWatcher::ReplySeen(pid_t pid, std::string_view line, SteadyTime now) {
  // Only the reply that follows a token served to this process counts.
  ReplyKind kind = ClassifyReply(line);
  Log(LogLevel::kDebug, "smtp_reply_seen",
      {{"pid", pid},
       {"kind", ReplyKindName(kind)},
       {"line", LoggedReply(line)}});
  std::optional<ServedToken> served;
  {
    std::lock_guard lock(mutex_);
    const ServedToken* found = served_.Find(pid, now);
    if (found == nullptr)
      return;

    // A challenge, or a continuation line that says nothing yet, is not
    // the result; anything else is, and ends the wait.
    bool continuation = line.size() > 3 && line[3] == '-';
    if (kind == ReplyKind::kChallenge ||
        (kind == ReplyKind::kOther && continuation)) {
      return;
    }
    served = *found;
    served_.Forget(pid);
  }
  Act(kind, *served, line);
}

std::size_t ReplyWatcher::Remembered() const {
  std::lock_guard lock(mutex_);
  return served_.size();
}

// Carries out what the reply to a served token asks for.
void ReplyWatcher::Act(ReplyKind kind, const ServedToken& served,
                       std::string_view line) {
  std::string account = actions_.account_name(served.mailbox);
  switch (kind) {
    case ReplyKind::kTokenRefused:
      Log(LogLevel::kWarn, "smtp_token_refused",
          {{"account", account},
           {"mailbox", served.mailbox},
           {"reply", ReplyStatus(line)},
           {"token", ShortHash(served.token.Reveal())},
           {"action",
            "dropping the token; the next attempt fetches a new "
            "one"},
           {"server_said", LoggedReply(line)}});
      actions_.drop(served.mailbox, served.token.Reveal());
      return;
    case ReplyKind::kExpiresSoon:
      Log(LogLevel::kWarn, "smtp_token_expires_soon",
          {{"account", account},
           {"mailbox", served.mailbox},
           {"reply", ReplyStatus(line)},
           {"token", ShortHash(served.token.Reveal())},
           {"action", "refreshing the token now"},
           {"fix",
            "High Volume Email refuses tokens with less than about "
            "10 minutes left; set refresh_margin_seconds to 1200 or "
            "more"}});
      actions_.refresh(served.mailbox);
      return;
    case ReplyKind::kAuthDisabled:
    case ReplyKind::kSecurityDefaults:
    case ReplyKind::kPolicyRefused:
      WarnConfiguration(kind, served, line);
      return;
    default:
      return;
  }
}

// Logs a tenant or mailbox configuration problem with its fix.
void ReplyWatcher::WarnConfiguration(ReplyKind kind, const ServedToken& served,
                                     std::string_view line) {
  std::string fix;
  bool mailbox = AsciiLower(line).find("for the mailbox") != std::string::npos;
  if (kind == ReplyKind::kAuthDisabled) {
    fix = std::string("SMTP AUTH is switched off for the ") +
          (mailbox ? "mailbox" : "tenant") +
          "; an Exchange Online administrator runs Set-CASMailbox "
          "-Identity " +
          served.mailbox + " -SmtpClientAuthenticationDisabled $false" +
          (mailbox ? ""
                   : " (or Set-TransportConfig "
                     "-SmtpClientAuthenticationDisabled $false for "
                     "the whole tenant)");
  } else if (kind == ReplyKind::kSecurityDefaults) {
    fix =
        "Security Defaults block SMTP AUTH; an administrator turns them "
        "off in Microsoft Entra ID (or replaces them with Conditional "
        "Access policies that allow it)";
  } else {
    fix =
        "a tenant or mailbox policy refuses SMTP AUTH; see the server's "
        "text and ask the Exchange Online administrator";
  }
  Log(LogLevel::kWarn, "smtp_auth_configuration",
      {{"account", actions_.account_name(served.mailbox)},
       {"mailbox", served.mailbox},
       {"reply", ReplyStatus(line)},
       {"problem", std::string("tenant configuration (") +
                       std::string(ReplyKindName(kind)) + ")"},
       {"token_kept", "yes"},
       {"fix", fix},
       {"server_said", LoggedReply(line)}});
}

}  // namespace xoauth2::helper
