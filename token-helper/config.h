// SPDX-License-Identifier: MIT
//
// The token-helper configuration: loading the JSON file (comments allowed)
// and validating every field before anything starts.
//
// Main types: Config (process-wide settings) holding Accounts (one per
// mailbox). LoadConfig() reads the file (at most 1 MiB), ParseConfig()
// validates text already read; both return the first problem as a message
// that starts with the ABSOLUTE path of the file, names the field (for
// example "accounts[0].tenant") and says how to fix it. JSON syntax errors
// carry "path:line:column:". Values left from the shipped examples
// ("REPLACE-WITH-...", the all-zero GUID) are refused by name.
//
// "sender_guard" ({"socket": ABSOLUTE PATH}) and each account's "send_as"
// (an array of addresses; no wildcards) configure the sender guard
// milter. Socket paths are compared after lexical normalisation: the
// milter socket may be neither the token socket nor the helper's reply
// socket, and the token socket may not be named reply.sock.
//
// Client secret files are read here (so `check` proves they are readable
// and kept from other users: secret_file.h's access rule, which also
// applies to private keys, refresh token files and to this file itself
// when it holds an inline client_secret);
// so are certificate credentials (certificate_file and private_key_file,
// loaded and cross-checked by client_assertion.h and then kept in memory).
// Refresh token files are only checked here (not at all for ConfigUse::
// kSignIn, which is about to create them) and re-read before each refresh
// because the helper rewrites them. Users and groups (the global
// allowed_users/allowed_groups and each account's own) are resolved
// with getpwnam_r/getgrnam_r; numbers are taken as ids. Nothing is logged
// and no exception escapes.
//
// Scopes and authorities per cloud follow Microsoft identity platform v2.0
// (see the reference table "Authorities and SMTP scopes per cloud").
// "provider": "google" accounts use Google's token endpoint and the Gmail
// scope, with the refresh_token grant and a client secret only (Google
// offers no client_credentials grant for Gmail SMTP).

#ifndef XOAUTH2_TOKEN_HELPER_CONFIG_H
#define XOAUTH2_TOKEN_HELPER_CONFIG_H

#include <sys/types.h>

#include <cstddef>
#include <expected>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "client_assertion.h"
#include "log.h"
#include "secret.h"

namespace xoauth2::helper {

inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

enum class Cloud { kGlobal, kUsGov, kChina };
enum class Provider { kMicrosoft, kGoogle };
enum class Grant { kClientCredentials, kRefreshToken };

// How the client proves who it is at the token endpoint.
enum class Credential { kPublic, kSecret, kCertificate };

// What the configuration is loaded for: serving tokens needs every
// refresh token file; a first sign-in (`authorize`) is about to write one;
// the sender guard milter (`milter`) needs only the mailboxes and
// send_as, and opens no secret, key or refresh token file at all.
enum class ConfigUse { kServe, kSignIn, kSenderGuard };

// "client_credentials" or "refresh_token".
std::string_view GrantName(Grant grant);

// "public", "secret" or "certificate".
std::string_view CredentialName(Credential credential);

// "microsoft" or "google".
std::string_view ProviderName(Provider provider);

// Google's OAuth 2.0 token endpoint host and its Gmail scope (reference
// section 4); {authority}/token is the token URL.
inline constexpr std::string_view kGoogleAuthority =
    "https://oauth2.googleapis.com";
inline constexpr std::string_view kGoogleMailScope = "https://mail.google.com/";

// Refresh margins below this are raised to it (High Volume Email refuses
// tokens with less than about 10 minutes left).
inline constexpr long kMinRefreshMarginSeconds = 600;

// One mailbox and how to get access tokens for it.
struct Account {
  std::string name;     // for logs; defaults to the mailbox
  std::string mailbox;  // protocol::IsValidMailbox
  Provider provider = Provider::kMicrosoft;
  Cloud cloud = Cloud::kGlobal;  // Microsoft only
  std::string authority;         // https://..., no trailing slash
  std::string tenant;  // GUID, domain, organizations/...; empty for Google
  std::string client_id;
  Grant grant = Grant::kClientCredentials;
  Secret client_secret;  // empty for a public client or a certificate
  bool client_secret_inline = false;  // set in the file, not client_secret_file
  std::string certificate_file;       // absolute; certificate credential only
  std::string private_key_file;       // absolute; certificate credential only
  std::shared_ptr<const ClientCertificate> certificate;  // loaded, checked
  AssertionAlg assertion_alg = AssertionAlg::kPs256;
  std::string refresh_token_file;  // absolute; refresh_token grant only
  std::string scope;               // the cloud's default unless overridden
  // Refresh this long before expiry; the global value unless the account
  // sets its own; 0 (only in tests) means the cache's default.
  long refresh_margin_seconds = 0;
  // Set when the account has allowed_users or allowed_groups: only those
  // users and groups (and root) get its tokens, after the global check.
  bool restricts_peers = false;
  std::vector<uid_t> allowed_uids;
  std::vector<gid_t> allowed_gids;
  // Further addresses the mailbox may send as (Exchange "Send As" rights);
  // the sender guard lets them pass (protocol::IsValidMailbox each).
  std::vector<std::string> send_as;

  // Microsoft: {authority}/{tenant}/oauth2/v2.0/token; Google:
  // {authority}/token.
  std::string TokenUrl() const;

  // {authority}/{tenant}/oauth2/v2.0/devicecode
  std::string DeviceCodeUrl() const;

  // Certificate if one is loaded, else secret if one is set, else public.
  Credential credential() const;
};

// The default socket of the sender guard milter: milter.sock beside the
// default token socket, inside Postfix's queue directory.
std::string DefaultMilterSocket();

// "sender_guard": the milter that refuses senders Office 365 would refuse.
struct SenderGuardSettings {
  std::string socket = DefaultMilterSocket();  // absolute path
};

struct Config {
  std::string path;  // absolute path of the file this was read from
  std::string socket = XOAUTH2_DEFAULT_SOCKET;
  std::vector<uid_t> allowed_uids;
  std::vector<gid_t> allowed_gids;
  std::string ca_file;  // empty: the system's CA store
  std::string proxy;    // empty: none (libcurl's environment rules apply)
  long connect_timeout_seconds = 10;
  long request_timeout_seconds = 30;
  long refresh_margin_seconds = 600;
  long refresh_token_warn_days = 14;  // warn when not rotated for this long
  LogLevel log_level = LogLevel::kInfo;
  SenderGuardSettings sender_guard;
  std::vector<Account> accounts;

  // The account for `mailbox` (compared case-insensitively) or nullptr.
  const Account* FindAccount(std::string_view mailbox) const;

  // The account whose name is `name` (exactly), else the one whose mailbox
  // it is; nullptr if none.
  const Account* FindAccountByName(std::string_view name) const;
};

// The default authority for `cloud`, e.g. https://login.microsoftonline.com
std::string_view DefaultAuthority(Cloud cloud);

// The default scope for an account of `cloud` using `grant`.
std::string DefaultScope(Cloud cloud, Grant grant);

// Reads and validates the file at `path` (made absolute first).
std::expected<Config, std::string> LoadConfig(
    const std::string& path, ConfigUse use = ConfigUse::kServe);

// Reads only the "socket" setting of the file at `path` (the default
// socket when it has none): what `token` and `status` need, so that they
// work for any user who may read the file, without touching secrets.
std::expected<std::string, std::string> LoadSocketPath(const std::string& path);

// Validates `text`, the content of the file whose absolute path is
// `abs_path` (used in every message).
std::expected<Config, std::string> ParseConfig(
    std::string_view text, const std::string& abs_path,
    ConfigUse use = ConfigUse::kServe);

// "path:line:column" for the 1-based byte offset that nlohmann::json
// reports in a parse_error, pointing at the start of the offending token.
std::string SyntaxErrorPosition(std::string_view text, std::size_t byte,
                                const std::string& abs_path);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_CONFIG_H
