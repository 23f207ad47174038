// SPDX-License-Identifier: MIT
//
// AccountStatus to JSON and back (nlohmann::json, dumped compact with
// ensure_ascii so that the line is printable ASCII), and the text table.

#include "account_status.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>

#include "protocol.h"

namespace xoauth2::helper {
namespace {

using json = nlohmann::json;

// Longest error text kept per account, so that many accounts fit.
constexpr std::size_t kMaxErrorChars = 240;

constexpr std::array<std::string_view, 4> kHealthNames = {
    "starting", "healthy", "retrying", "needs-attention"};

json AccountJson(const AccountStatus& status) {
  return json{
      {"name", status.name},
      {"mailbox", status.mailbox},
      {"provider", status.provider},
      {"grant", status.grant},
      {"state", AccountHealthName(status.health)},
      {"error_class", status.error_class},
      {"aadsts", status.aadsts},
      {"error", status.error.substr(0, kMaxErrorChars)},
      {"trace_id", status.trace_id},
      {"failures", status.failures},
      {"last_success", status.last_success},
      {"token_expires", status.token_expires},
      {"token_hash", status.token_hash},
      {"next_refresh", status.next_refresh},
      {"refresh_token_age", status.refresh_token_age},
      {"refresh_token_aging", status.refresh_token_aging},
  };
}

// Compact JSON made of ASCII only (non-ASCII escaped as \uXXXX).
std::string Dump(const json& value) {
  return value.dump(-1, ' ', true, json::error_handler_t::replace);
}

AccountHealth HealthFromName(std::string_view name) {
  for (std::size_t i = 0; i < kHealthNames.size(); ++i) {
    if (kHealthNames[i] == name)
      return static_cast<AccountHealth>(i);
  }
  return AccountHealth::kStarting;
}

AccountStatus AccountFromJson(const json& item) {
  AccountStatus status;
  status.name = item.value("name", "");
  status.mailbox = item.value("mailbox", "");
  status.provider = item.value("provider", "");
  status.grant = item.value("grant", "");
  status.health = HealthFromName(item.value("state", ""));
  status.error_class = item.value("error_class", "");
  status.aadsts = item.value("aadsts", "");
  status.error = item.value("error", "");
  status.trace_id = item.value("trace_id", "");
  status.failures = item.value("failures", 0);
  status.last_success = item.value("last_success", std::int64_t{0});
  status.token_expires = item.value("token_expires", std::int64_t{0});
  status.token_hash = item.value("token_hash", "");
  status.next_refresh = item.value("next_refresh", std::int64_t{0});
  status.refresh_token_age = item.value("refresh_token_age", std::int64_t{-1});
  status.refresh_token_aging = item.value("refresh_token_aging", false);
  return status;
}

// "3d4h", "2h5m", "41m", "30s"; "-" for none.
std::string Span(std::int64_t seconds) {
  if (seconds < 0)
    return "-";
  if (seconds >= 86400) {
    return std::to_string(seconds / 86400) + "d" +
           std::to_string(seconds % 86400 / 3600) + "h";
  }
  if (seconds >= 3600) {
    return std::to_string(seconds / 3600) + "h" +
           std::to_string(seconds % 3600 / 60) + "m";
  }
  if (seconds >= 60)
    return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

// The cells of one table row.
std::vector<std::string> Row(const AccountStatus& a, std::int64_t now) {
  auto in = [now](std::int64_t at) {
    return at == 0 ? std::string("-") : Span(at - now);
  };
  auto ago = [now](std::int64_t at) {
    return at == 0 ? std::string("never") : Span(now - at) + " ago";
  };
  std::string age = Span(a.refresh_token_age);
  if (a.refresh_token_aging)
    age += " (aging)";
  std::string problem = a.error_class.empty() ? "-" : a.error_class;
  if (!a.aadsts.empty())
    problem += " " + a.aadsts;
  if (!a.error.empty())
    problem += ": " + a.error;
  return {a.name,
          a.mailbox,
          std::string(AccountHealthName(a.health)),
          in(a.token_expires),
          in(a.next_refresh),
          ago(a.last_success),
          age,
          problem};
}

}  // namespace

std::string_view AccountHealthName(AccountHealth health) {
  return kHealthNames[static_cast<std::size_t>(health)];
}

std::string StatusJson(const std::vector<AccountStatus>& accounts,
                       std::int64_t now) {
  // Count how many accounts fit, from the size of each one's JSON; 64
  // bytes leave room for the envelope.
  std::size_t used = 64;
  std::size_t kept = 0;
  for (const AccountStatus& account : accounts) {
    used += Dump(AccountJson(account)).size() + 1;
    if (used > protocol::kMaxStatusBytes)
      break;
    ++kept;
  }

  json list = json::array();
  for (std::size_t i = 0; i < kept; ++i)
    list.push_back(AccountJson(accounts[i]));
  json root{{"now", now},
            {"accounts", std::move(list)},
            {"omitted", accounts.size() - kept}};
  return Dump(root);
}

std::expected<StatusReport, std::string> ParseStatusJson(
    std::string_view text) {
  try {
    json root = json::parse(text);
    if (!root.is_object() || !root.contains("accounts") ||
        !root["accounts"].is_array()) {
      return std::unexpected("the status has no accounts list");
    }
    StatusReport report;
    report.now = root.value("now", std::int64_t{0});
    report.omitted = root.value("omitted", 0);
    for (const json& item : root["accounts"]) {
      if (item.is_object())
        report.accounts.push_back(AccountFromJson(item));
    }
    return report;
  } catch (const std::exception& error) {
    return std::unexpected(std::string("the status is not valid JSON: ") +
                           error.what());
  }
}

std::string FormatStatusTable(const StatusReport& report) {
  std::vector<std::vector<std::string>> rows = {
      {"ACCOUNT", "MAILBOX", "STATE", "TOKEN-LEFT", "NEXT-REFRESH",
       "LAST-SUCCESS", "REFRESH-TOKEN-AGE", "LAST-ERROR"}};
  for (const AccountStatus& account : report.accounts)
    rows.push_back(Row(account, report.now));

  // Pad every column but the last to its widest cell.
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : rows) {
    for (std::size_t i = 0; i + 1 < row.size(); ++i)
      out += row[i] + std::string(width[i] - row[i].size() + 2, ' ');
    out += row.back() + "\n";
  }
  if (report.omitted > 0) {
    out += "(" + std::to_string(report.omitted) +
           " more accounts did not fit in the answer)\n";
  }
  return out;
}

}  // namespace xoauth2::helper
