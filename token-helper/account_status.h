// SPDX-License-Identifier: MIT
//
// What the helper knows about each account's tokens, for operators: the
// snapshot TokenCache::Status() returns, its compact JSON form carried by
// the socket protocol's `ok-status` line (docs/protocol.md) and the table
// `token-helper status` prints.
//
// Main types: AccountHealth (starting, healthy, retrying,
// needs-attention) and AccountStatus (one account). StatusJson() makes one
// line of ASCII JSON no longer than protocol::kMaxStatusBytes, leaving
// accounts out (and counting them in "omitted") when too many to fit;
// ParseStatusJson() reads it back; FormatStatusTable() prints one line per
// account. A status never holds a token or secret: tokens appear only as
// ShortHash, errors only as their first line. nlohmann::json exceptions
// are caught here. Pure functions, no I/O, no logging.

#ifndef XOAUTH2_TOKEN_HELPER_ACCOUNT_STATUS_H
#define XOAUTH2_TOKEN_HELPER_ACCOUNT_STATUS_H

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace xoauth2::helper {

// starting: no answer from the endpoint yet; healthy: the last refresh
// worked; retrying: a temporary failure or throttling, retried on its own;
// needs-attention: a person must act (sign in again, fix a secret or the
// configuration); the still-valid token is served meanwhile.
enum class AccountHealth { kStarting, kHealthy, kRetrying, kNeedsAttention };

// "starting", "healthy", "retrying" or "needs-attention".
std::string_view AccountHealthName(AccountHealth health);

// One account's state; times are Unix seconds, 0 when unknown or none.
struct AccountStatus {
  std::string name;
  std::string mailbox;
  std::string provider;  // microsoft | google
  std::string grant;     // client_credentials | refresh_token
  AccountHealth health = AccountHealth::kStarting;
  std::string error_class;  // FailureClassName of the last failure
  std::string aadsts;       // e.g. AADSTS70043
  std::string error;        // first line of the last failure's message
  std::string trace_id;
  int failures = 0;  // consecutive failed refreshes
  std::int64_t last_success = 0;
  std::int64_t token_expires = 0;
  std::string token_hash;  // ShortHash of the cached token, or empty
  std::int64_t next_refresh = 0;
  std::int64_t refresh_token_age = -1;  // seconds; -1 without a file
  bool refresh_token_aging = false;     // older than the warning age
};

// The one-line JSON for `accounts` at `now`:
// {"now":N,"accounts":[{...},...],"omitted":K}.
std::string StatusJson(const std::vector<AccountStatus>& accounts,
                       std::int64_t now);

// A status line as the helper sent it.
struct StatusReport {
  std::int64_t now = 0;
  std::vector<AccountStatus> accounts;
  int omitted = 0;
};

// Parses StatusJson() output; an error names what was wrong.
std::expected<StatusReport, std::string> ParseStatusJson(std::string_view text);

// A header line and one line per account, durations relative to `now`.
std::string FormatStatusTable(const StatusReport& report);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_ACCOUNT_STATUS_H
