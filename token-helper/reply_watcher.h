// SPDX-License-Identifier: MIT
//
// Acting on Office 365's answer to an access token, which Postfix never
// hands to the SASL mechanism (F09, F10).
//
// Postfix's smtp(8) looks up every reply line of the server in
// smtp_reply_filter; pointed at the helper's reply socket
// (reply_server.h), each line arrives here with the pid of the smtp(8)
// process that read it. The token socket reports, with the same kind of
// pid, every token it served. A reply line from a pid that was served a
// token within the last `window` is that token's AUTH result:
//
//   235 ...                       accepted; forget the pid
//   334 ...                       challenge; keep waiting for the result
//   535 5.7.139 ... SmtpClientAuthentication is disabled ...
//   535 5.7.139 ... organization configuration doesn't allow ...
//   other 5.7.139                 a tenant or mailbox policy refused SMTP
//                                 AUTH: warn with the fix, keep the token
//                                 (a new one would be refused the same way)
//   501 5.5.127 ... Token will expire soon
//                                 High Volume Email wants a longer-lived
//                                 token: warn and refresh now
//   other 535                     the token was refused (5.7.3): warn and
//                                 drop it, so the next attempt fetches a
//                                 new one (TokenCache::Reject rate-limits)
//   anything else                 forget the pid
//
// Lines from pids that were not served a token (EHLO, MAIL, RCPT, DATA
// replies, other transports) are ignored.
//
// Types: ReplyKind and ClassifyReply (pure), ServedTokens (the bounded,
// expiring pid -> token map; not thread-safe), ReplyWatcher (thread-safe
// glue calling ReplyActions). Logging: ReplyWatcher logs one warn line per
// refusal it acts on, with account, mailbox, reply status and ShortHash of
// the token, never the token. References: Postfix smtp_reply_filter
// (postconf(5)) and socketmap_table(5); the Office 365 SMTP AUTH replies
// (535 5.7.3, 535 5.7.139, 501 5.5.127) Microsoft documents for SMTP AUTH
// client submission.

#ifndef XOAUTH2_TOKEN_HELPER_REPLY_WATCHER_H
#define XOAUTH2_TOKEN_HELPER_REPLY_WATCHER_H

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "secret.h"

namespace xoauth2::helper {

enum class ReplyKind {
  kOther,
  kChallenge,         // 334
  kAccepted,          // 235
  kTokenRefused,      // 535 other than 5.7.139
  kAuthDisabled,      // 5.7.139 SmtpClientAuthentication is disabled
  kSecurityDefaults,  // 5.7.139 organization configuration doesn't allow
  kPolicyRefused,     // any other 5.7.139
  kExpiresSoon,       // 501 5.5.127 Token will expire soon
};

// What one SMTP reply line (without CRLF) says about an AUTH attempt;
// matching ignores case.
ReplyKind ClassifyReply(std::string_view line);

// "token_refused", "auth_disabled", ...
std::string_view ReplyKindName(ReplyKind kind);

// The reply code and enhanced status of `line` ("535 5.7.3"), or just the
// code when there is no status.
std::string ReplyStatus(std::string_view line);

using SteadyTime = std::chrono::steady_clock::time_point;

// A token handed to a process.
struct ServedToken {
  std::string mailbox;
  Secret token;
  SteadyTime served{};
};

// The last token served to each pid, for at most `window`, holding at most
// `capacity` pids (the oldest entry goes first).
class ServedTokens {
 public:
  ServedTokens(std::chrono::seconds window, std::size_t capacity);

  // Records that `pid` got `token` for `mailbox` at `now`.
  void Record(pid_t pid, std::string mailbox, Secret token, SteadyTime now);

  // The entry of `pid` if it is younger than the window, left in place.
  const ServedToken* Find(pid_t pid, SteadyTime now) const;

  // Removes the entry of `pid`.
  void Forget(pid_t pid);

  std::size_t size() const { return entries_.size(); }

 private:
  void Purge(SteadyTime now);

  std::chrono::seconds window_;
  std::size_t capacity_;
  std::unordered_map<pid_t, ServedToken> entries_;
};

// What the watcher may do to the token cache.
struct ReplyActions {
  std::function<void(std::string_view mailbox, std::string_view token)> drop;
  std::function<void(std::string_view mailbox)> refresh;
  std::function<std::string(std::string_view mailbox)> account_name;
};

struct WatcherOptions {
  std::chrono::seconds window{120};
  std::size_t capacity = 4096;
};

class ReplyWatcher {
 public:
  ReplyWatcher(ReplyActions actions, WatcherOptions options);

  // The token socket served `token` for `mailbox` to `pid`.
  void TokenServed(pid_t pid, std::string_view mailbox, std::string_view token,
                   SteadyTime now = std::chrono::steady_clock::now());

  // smtp(8) process `pid` read the server reply `line`.
  void ReplySeen(pid_t pid, std::string_view line,
                 SteadyTime now = std::chrono::steady_clock::now());

  // Pids currently remembered; for tests.
  std::size_t Remembered() const;

 private:
  void Act(ReplyKind kind, const ServedToken& served, std::string_view line);
  void WarnConfiguration(ReplyKind kind, const ServedToken& served,
                         std::string_view line);

  ReplyActions actions_;
  mutable std::mutex mutex_;
  ServedTokens served_;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_REPLY_WATCHER_H
