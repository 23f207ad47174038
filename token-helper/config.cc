// SPDX-License-Identifier: MIT
//
// Configuration loading and validation. Each Read* helper checks one field
// and returns the operator-facing message for the first problem; the
// message always starts with the configuration file's absolute path.
// nlohmann::json exceptions are caught here and never leave this file.
//
// The file may hold secrets (an inline client_secret, a proxy password),
// so no message quotes its text: a syntax error names the line, column
// and a fix but drops what nlohmann quotes from the file ("last read"),
// and the value of a key that may hold a secret (MayHoldSecret) is never
// shown. Values of other keys are quoted to help find them.

#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "ascii.h"
#include "protocol.h"
#include "proxy_setting.h"
#include "reply_server.h"
#include "secret_file.h"

namespace xoauth2::helper {
namespace {

using json = nlohmann::json;
using Status = std::expected<void, std::string>;

#define RETURN_IF_ERROR(expr)                             \
  do {                                                    \
    if (auto status_ = (expr); !status_) {                \
      return std::unexpected(std::move(status_).error()); \
    }                                                     \
  } while (false)

constexpr std::string_view kZeroGuid = "00000000-0000-0000-0000-000000000000";

struct CloudInfo {
  Cloud cloud;
  std::string_view name;
  std::string_view authority;
  std::string_view delegated_scope;
  std::string_view app_scope;
};

constexpr CloudInfo kClouds[] = {
    {Cloud::kGlobal, "global", "https://login.microsoftonline.com",
     "https://outlook.office.com/SMTP.Send",
     "https://outlook.office365.com/.default"},
    {Cloud::kUsGov, "usgov", "https://login.microsoftonline.us",
     "https://outlook.office365.us/SMTP.Send",
     "https://outlook.office365.us/.default"},
    {Cloud::kChina, "china", "https://login.partner.microsoftonline.cn",
     "https://partner.outlook.cn/SMTP.Send",
     "https://partner.outlook.cn/.default"},
};

const CloudInfo& InfoFor(Cloud cloud) {
  for (const CloudInfo& info : kClouds) {
    if (info.cloud == cloud)
      return info;
  }
  return kClouds[0];
}

constexpr std::string_view kTopKeys[] = {
    "socket",
    "allowed_users",
    "allowed_groups",
    "ca_file",
    "proxy",
    "connect_timeout_seconds",
    "request_timeout_seconds",
    "refresh_margin_seconds",
    "refresh_token_warn_days",
    "log_level",
    "sender_guard",
    "accounts",
};

constexpr std::string_view kSenderGuardKeys[] = {"socket"};

constexpr std::string_view kAccountKeys[] = {
    "name",
    "mailbox",
    "provider",
    "cloud",
    "authority",
    "tenant",
    "client_id",
    "grant",
    "client_secret_file",
    "client_secret",
    "certificate_file",
    "private_key_file",
    "assertion_alg",
    "refresh_token_file",
    "scope",
    "refresh_margin_seconds",
    "allowed_users",
    "allowed_groups",
    "send_as",
};

// Where in the file a value sits ("accounts[0]") and which file it is.
struct Where {
  const std::string& path;
  std::string prefix;  // "" at the top level, "accounts[N]." inside

  std::string Field(std::string_view key) const {
    return prefix + std::string(key);
  }
  std::unexpected<std::string> Fail(std::string_view key,
                                    std::string_view text) const {
    return std::unexpected(path + ": " + Field(key) + " " + std::string(text));
  }
};

std::string JoinKeys(std::span<const std::string_view> keys) {
  std::string out;
  for (std::string_view key : keys) {
    if (!out.empty())
      out += ", ";
    out += key;
  }
  return out;
}

// Refuses keys the schema does not know, naming the first one.
Status CheckKeys(const Where& where, const json& object,
                 std::span<const std::string_view> known) {
  for (const auto& item : object.items()) {
    if (std::find(known.begin(), known.end(), item.key()) != known.end()) {
      continue;
    }
    std::string place = where.prefix.empty()
                            ? std::string("the top level")
                            : where.prefix.substr(0, where.prefix.size() - 1);
    return std::unexpected(where.path + ": unknown key \"" + item.key() +
                           "\" in " + place + "; known keys are " +
                           JoinKeys(known));
  }
  return {};
}

// The fix to suggest when `key` still holds an example placeholder.
std::string_view PlaceholderFix(std::string_view key) {
  if (key == "tenant")
    return "put your tenant ID or domain there";
  if (key == "client_id") {
    return "put the application (client) ID of your app registration there";
  }
  if (key == "mailbox")
    return "put the mailbox that sends mail there";
  if (key == "client_secret") {
    return "put the client secret's value (not its secret ID) there";
  }
  if (key.starts_with("send_as")) {
    return "put an address the mailbox has Send As rights on there, or "
           "remove it";
  }
  return "put your own value there";
}

bool IsPlaceholder(std::string_view value) {
  return value.find("REPLACE-WITH") != std::string_view::npos ||
         value == kZeroGuid;
}

// Keys whose value is or may contain a secret: no message quotes it.
bool MayHoldSecret(std::string_view key) {
  return key == "client_secret" || key == "proxy";
}

// Refuses a value left over from the shipped examples, by field name.
Status CheckPlaceholder(const Where& where, std::string_view key,
                        std::string_view value) {
  if (!IsPlaceholder(value))
    return {};
  std::string shown =
      MayHoldSecret(key) ? std::string() : " " + std::string(value);
  return where.Fail(key, "is still the example placeholder" + shown + "; " +
                             std::string(PlaceholderFix(key)));
}

// Reads an optional string field into `out`; an empty string is refused.
Status ReadString(const Where& where, const json& object, std::string_view key,
                  std::string& out, bool required) {
  auto it = object.find(key);
  if (it == object.end()) {
    if (required)
      return where.Fail(key, "is missing; it is required");
    return {};
  }
  if (!it->is_string()) {
    return where.Fail(key,
                      "must be a string, not " + std::string(it->type_name()));
  }
  const std::string& value = it->get_ref<const std::string&>();
  if (value.empty())
    return where.Fail(key, "is empty; give a value or remove it");
  RETURN_IF_ERROR(CheckPlaceholder(where, key, value));
  out = value;
  return {};
}

// Reads an optional absolute path.
Status ReadPath(const Where& where, const json& object, std::string_view key,
                std::string& out, bool required) {
  RETURN_IF_ERROR(ReadString(where, object, key, out, required));
  if (!out.empty() && out.front() != '/') {
    return where.Fail(key, "must be an absolute path, not " + out);
  }
  return {};
}

// Reads an optional whole number of `unit` within [low, high].
Status ReadSeconds(const Where& where, const json& object, std::string_view key,
                   long low, long high, long& out,
                   std::string_view unit = "seconds") {
  auto it = object.find(key);
  if (it == object.end())
    return {};
  std::string range =
      "between " + std::to_string(low) + " and " + std::to_string(high);
  if (!it->is_number_integer()) {
    return where.Fail(key, "must be a whole number of " + std::string(unit) +
                               " " + range + ", not " +
                               std::string(it->type_name()));
  }
  long long value = it->get<long long>();
  if (value < low || value > high) {
    return where.Fail(key,
                      "is " + std::to_string(value) + "; it must be " + range);
  }
  out = static_cast<long>(value);
  return {};
}

}  // namespace

namespace {

// Parses a decimal id; nullopt unless the whole text is digits.
std::optional<unsigned> ParseId(std::string_view text) {
  unsigned value = 0;
  auto [end, err] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  if (err != std::errc() || end != text.data() + text.size()) {
    return std::nullopt;
  }
  return value;
}

// Resolves a user or group name with the reentrant NSS calls.
std::optional<unsigned> LookUpName(const std::string& name, bool user) {
  std::vector<char> buffer(16384);
  if (user) {
    struct passwd entry {};
    struct passwd* found = nullptr;
    getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (found != nullptr)
      return found->pw_uid;
  } else {
    struct group entry {};
    struct group* found = nullptr;
    getgrnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (found != nullptr)
      return found->gr_gid;
  }
  return std::nullopt;
}

// Turns one allowed_users/allowed_groups element into an id.
std::expected<unsigned, std::string> ResolveId(const Where& where,
                                               const std::string& field,
                                               const json& item, bool user) {
  const char* kind = user ? "user" : "group";
  if (item.is_number_unsigned()) {
    return static_cast<unsigned>(item.get<unsigned long long>());
  }
  if (!item.is_string()) {
    return std::unexpected(where.path + ": " + field + " must hold " + kind +
                           " names or numeric ids, not " +
                           std::string(item.type_name()));
  }
  const std::string& name = item.get_ref<const std::string&>();
  if (auto id = ParseId(name))
    return *id;
  if (auto id = LookUpName(name, user))
    return *id;
  return std::unexpected(where.path + ": " + field + " names " + kind + " \"" +
                         name + "\", which does not exist on this system; " +
                         "create it or fix the name");
}

// Reads allowed_users or allowed_groups into `out`.
Status ReadIds(const Where& where, const json& object, std::string_view key,
               bool user, std::vector<unsigned>& out) {
  auto it = object.find(key);
  if (it == object.end())
    return {};
  if (!it->is_array()) {
    return where.Fail(key,
                      "must be an array, not " + std::string(it->type_name()));
  }
  for (std::size_t i = 0; i < it->size(); ++i) {
    std::string field = where.Field(key) + "[" + std::to_string(i) + "]";
    auto id = ResolveId(where, field, (*it)[i], user);
    if (!id)
      return std::unexpected(id.error());
    out.push_back(*id);
  }
  return {};
}

// Reads an account's optional allowed_users and allowed_groups.
Status ReadAccountPeers(const Where& where, const json& object, Account& out) {
  std::vector<unsigned> uids;
  std::vector<unsigned> gids;
  RETURN_IF_ERROR(ReadIds(where, object, "allowed_users", true, uids));
  RETURN_IF_ERROR(ReadIds(where, object, "allowed_groups", false, gids));
  out.restricts_peers =
      object.contains("allowed_users") || object.contains("allowed_groups");
  out.allowed_uids.assign(uids.begin(), uids.end());
  out.allowed_gids.assign(gids.begin(), gids.end());
  return {};
}

// Reads the optional cloud name.
Status ReadCloud(const Where& where, const json& object, Cloud& out) {
  std::string name;
  RETURN_IF_ERROR(ReadString(where, object, "cloud", name, false));
  if (name.empty())
    return {};
  for (const CloudInfo& info : kClouds) {
    if (info.name == name) {
      out = info.cloud;
      return {};
    }
  }
  return where.Fail("cloud", "is \"" + name +
                                 "\", an unknown cloud; use global, usgov "
                                 "or china");
}

// Reads the optional authority override; defaults to the cloud's.
Status ReadAuthority(const Where& where, const json& object, Account& out) {
  std::string authority;
  RETURN_IF_ERROR(ReadString(where, object, "authority", authority, false));
  if (authority.empty()) {
    out.authority = std::string(DefaultAuthority(out.cloud));
    return {};
  }
  if (!authority.starts_with("https://") || authority.size() <= 8) {
    return where.Fail("authority",
                      "is " + authority + "; it must be an https:// URL");
  }
  while (authority.ends_with('/'))
    authority.pop_back();
  out.authority = authority;
  return {};
}

bool IsTenantChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

// Reads the tenant: a GUID or domain, becoming part of the token URL.
Status ReadTenant(const Where& where, const json& object, Account& out) {
  RETURN_IF_ERROR(ReadString(where, object, "tenant", out.tenant, true));
  if (!std::all_of(out.tenant.begin(), out.tenant.end(), IsTenantChar)) {
    return where.Fail("tenant", "is \"" + out.tenant +
                                    "\"; a tenant is a GUID or a domain "
                                    "(letters, digits, '.', '-')");
  }
  return {};
}

// Reads the optional provider (microsoft, the default, or google).
Status ReadProvider(const Where& where, const json& object, Provider& out) {
  std::string name;
  RETURN_IF_ERROR(ReadString(where, object, "provider", name, false));
  if (name.empty() || name == "microsoft") {
    out = Provider::kMicrosoft;
  } else if (name == "google") {
    out = Provider::kGoogle;
  } else {
    return where.Fail("provider", "is \"" + name +
                                      "\"; use microsoft (the default) or "
                                      "google");
  }
  return {};
}

// Reads where a Google account gets tokens: no cloud, no tenant.
Status ReadGoogleEndpoint(const Where& where, const json& object,
                          Account& out) {
  for (std::string_view key : {"cloud", "tenant"}) {
    if (object.contains(key)) {
      return where.Fail(key,
                        "is set but provider is google, which has no "
                        "clouds or tenants; remove it");
    }
  }
  RETURN_IF_ERROR(ReadAuthority(where, object, out));
  if (!object.contains("authority"))
    out.authority = std::string(kGoogleAuthority);
  return {};
}

// Reads cloud, authority and tenant for the account's provider.
Status ReadEndpoint(const Where& where, const json& object, Account& out) {
  RETURN_IF_ERROR(ReadProvider(where, object, out.provider));
  if (out.provider == Provider::kGoogle)
    return ReadGoogleEndpoint(where, object, out);
  RETURN_IF_ERROR(ReadCloud(where, object, out.cloud));
  RETURN_IF_ERROR(ReadAuthority(where, object, out));
  return ReadTenant(where, object, out);
}

// Reads name, mailbox, provider, cloud, authority, tenant and client_id.
Status ReadIdentity(const Where& where, const json& object, Account& out) {
  RETURN_IF_ERROR(ReadString(where, object, "mailbox", out.mailbox, true));
  if (!protocol::IsValidMailbox(out.mailbox)) {
    return where.Fail("mailbox", "is \"" + out.mailbox +
                                     "\", not a mailbox address like "
                                     "relay@example.com");
  }
  RETURN_IF_ERROR(ReadString(where, object, "name", out.name, false));
  if (out.name.empty())
    out.name = out.mailbox;
  RETURN_IF_ERROR(ReadEndpoint(where, object, out));
  RETURN_IF_ERROR(ReadString(where, object, "client_id", out.client_id, true));
  if (!protocol::IsValidToken(out.client_id)) {
    return where.Fail("client_id", "must be printable text without spaces");
  }
  return {};
}

// Reads the grant type.
Status ReadGrant(const Where& where, const json& object, Grant& out) {
  std::string grant;
  RETURN_IF_ERROR(ReadString(where, object, "grant", grant, true));
  if (grant == "client_credentials") {
    out = Grant::kClientCredentials;
  } else if (grant == "refresh_token") {
    out = Grant::kRefreshToken;
  } else {
    return where.Fail("grant", "is \"" + grant +
                                   "\"; use client_credentials or "
                                   "refresh_token");
  }
  return {};
}

// Reads client_secret or client_secret_file (at most one of them).
Status ReadClientSecret(const Where& where, const json& object, Account& out) {
  if (object.contains("client_secret") &&
      object.contains("client_secret_file")) {
    return where.Fail("client_secret", "and " +
                                           where.Field("client_secret_file") +
                                           " are both set; keep only one");
  }
  std::string inline_secret;
  RETURN_IF_ERROR(
      ReadString(where, object, "client_secret", inline_secret, false));
  if (!inline_secret.empty()) {
    out.client_secret = Secret(std::move(inline_secret));
    out.client_secret_inline = true;
    return {};
  }

  std::string file;
  RETURN_IF_ERROR(ReadPath(where, object, "client_secret_file", file, false));
  if (file.empty())
    return {};
  auto secret = ReadSecretValue(file);
  if (!secret)
    return where.Fail("client_secret_file",
                      "cannot be used: " + secret.error());
  if (IsPlaceholder(secret->Reveal())) {
    return where.Fail("client_secret_file",
                      "points to " + file +
                          ", which still holds the example placeholder; " +
                          std::string(PlaceholderFix("client_secret")));
  }
  out.client_secret = std::move(*secret);
  return {};
}

// Reads assertion_alg, which only a certificate credential uses.
Status ReadAssertionAlg(const Where& where, const json& object,
                        AssertionAlg& out) {
  std::string name;
  RETURN_IF_ERROR(ReadString(where, object, "assertion_alg", name, false));
  if (name.empty() || name == "PS256") {
    out = AssertionAlg::kPs256;
  } else if (name == "RS256") {
    out = AssertionAlg::kRs256;
  } else {
    return where.Fail("assertion_alg",
                      "is \"" + name + "\"; use PS256 (the default) or RS256");
  }
  return {};
}

// Refuses a certificate half-configured or next to a client secret.
Status CheckCertificateKeys(const Where& where, const json& object) {
  bool has_certificate = object.contains("certificate_file");
  bool has_key = object.contains("private_key_file");
  if (!has_certificate && !has_key) {
    if (!object.contains("assertion_alg"))
      return {};
    return where.Fail("assertion_alg",
                      "is set but certificate_file is not; remove it or "
                      "configure a certificate");
  }
  for (std::string_view secret_key : {"client_secret", "client_secret_file"}) {
    if (object.contains(secret_key)) {
      return where.Fail(secret_key, "and " + where.Field("certificate_file") +
                                        " are both set; keep only one "
                                        "credential");
    }
  }
  if (!has_key) {
    return where.Fail("private_key_file",
                      "is missing; certificate_file needs the matching "
                      "private key");
  }
  if (!has_certificate) {
    return where.Fail("certificate_file",
                      "is missing; private_key_file needs its certificate");
  }
  return {};
}

// Reads certificate_file, private_key_file and assertion_alg and loads the
// certificate and key, which stay in memory.
Status ReadClientCertificate(const Where& where, const json& object,
                             Account& out) {
  RETURN_IF_ERROR(CheckCertificateKeys(where, object));
  if (!object.contains("certificate_file"))
    return {};
  RETURN_IF_ERROR(
      ReadPath(where, object, "certificate_file", out.certificate_file, true));
  RETURN_IF_ERROR(
      ReadPath(where, object, "private_key_file", out.private_key_file, true));
  RETURN_IF_ERROR(ReadAssertionAlg(where, object, out.assertion_alg));

  auto loaded =
      ClientCertificate::Load(out.certificate_file, out.private_key_file);
  if (!loaded) {
    return where.Fail(loaded.error().field,
                      "cannot be used: " + loaded.error().message);
  }
  out.certificate = std::move(*loaded);
  return {};
}

// Checks what the client_credentials grant needs.
Status ReadClientCredentialsNeeds(const Where& where, const json& object,
                                  const Account& out) {
  if (out.credential() == Credential::kPublic) {
    return where.Fail("client_secret_file",
                      "is missing; the client_credentials grant needs "
                      "client_secret_file, client_secret, or "
                      "certificate_file with private_key_file");
  }
  if (object.contains("refresh_token_file")) {
    return where.Fail("refresh_token_file",
                      "is set but grant is client_credentials, which uses "
                      "no refresh token; remove it or change the grant");
  }
  std::string tenant = AsciiLower(out.tenant);
  if (tenant == "common" || tenant == "organizations" ||
      tenant == "consumers") {
    return where.Fail("tenant", "is " + out.tenant +
                                    ", which only works for delegated "
                                    "sign-ins; client_credentials needs "
                                    "your tenant ID or domain");
  }
  return {};
}

// Checks what Google needs: the refresh_token grant and a client secret.
Status CheckGoogleNeeds(const Where& where, const Account& out) {
  if (out.grant == Grant::kClientCredentials) {
    return where.Fail("grant",
                      "is client_credentials but provider is google, which "
                      "offers no client_credentials grant for Gmail SMTP; "
                      "use grant refresh_token with a refresh_token_file");
  }
  if (out.credential() != Credential::kSecret) {
    return where.Fail("client_secret_file",
                      "is missing; a google account needs the OAuth "
                      "client's secret (client_secret_file or "
                      "client_secret; certificates are not supported)");
  }
  return {};
}

// Checks what each grant needs and refuses what it cannot use.
Status ReadGrantNeeds(const Where& where, const json& object, ConfigUse use,
                      Account& out) {
  if (out.provider == Provider::kGoogle)
    RETURN_IF_ERROR(CheckGoogleNeeds(where, out));
  if (out.grant == Grant::kClientCredentials)
    return ReadClientCredentialsNeeds(where, object, out);

  RETURN_IF_ERROR(ReadPath(where, object, "refresh_token_file",
                           out.refresh_token_file, true));
  if (use == ConfigUse::kSignIn)
    return {};  // `authorize` is about to write it
  auto token = ReadSecretValue(out.refresh_token_file);
  if (!token) {
    return where.Fail("refresh_token_file",
                      "cannot be used: " + token.error() +
                          "; store the refresh token from the first "
                          "sign-in there (token-helper authorize " +
                          out.name + ")");
  }
  return {};
}

// Reads the optional "send_as": addresses the mailbox may also send as.
Status ReadSendAs(const Where& where, const json& object,
                  std::vector<std::string>& out) {
  auto it = object.find("send_as");
  if (it == object.end())
    return {};
  if (!it->is_array()) {
    return where.Fail("send_as", "must be an array of addresses, not " +
                                     std::string(it->type_name()));
  }
  for (std::size_t i = 0; i < it->size(); ++i) {
    std::string key = "send_as[" + std::to_string(i) + "]";
    const json& item = (*it)[i];
    if (!item.is_string()) {
      return where.Fail(
          key, "must be a string, not " + std::string(item.type_name()));
    }
    const std::string& address = item.get_ref<const std::string&>();
    RETURN_IF_ERROR(CheckPlaceholder(where, key, address));
    if (address.starts_with("*@") || address.starts_with("@")) {
      return where.Fail(key, "is \"" + address +
                                 "\": wildcards are not supported; list "
                                 "each address the mailbox may send as "
                                 "(Office 365 grants Send As per address)");
    }
    if (!protocol::IsValidMailbox(address)) {
      return where.Fail(key, "is \"" + address +
                                 "\", not an address like "
                                 "alerts@example.com");
    }
    out.push_back(address);
  }
  return {};
}

// Reads one element of "accounts".
Status ReadAccount(const std::string& path, const json& object,
                   std::size_t index, ConfigUse use, Account& out) {
  Where where{path, "accounts[" + std::to_string(index) + "]."};
  if (!object.is_object()) {
    return std::unexpected(path + ": accounts[" + std::to_string(index) +
                           "] must be an object, not " +
                           std::string(object.type_name()));
  }
  RETURN_IF_ERROR(CheckKeys(where, object, kAccountKeys));
  RETURN_IF_ERROR(ReadIdentity(where, object, out));
  RETURN_IF_ERROR(ReadSendAs(where, object, out.send_as));
  if (use == ConfigUse::kSenderGuard)
    return {};  // the milter opens no secret, key or refresh token file
  RETURN_IF_ERROR(ReadGrant(where, object, out.grant));
  RETURN_IF_ERROR(ReadClientCertificate(where, object, out));
  RETURN_IF_ERROR(ReadClientSecret(where, object, out));
  RETURN_IF_ERROR(ReadGrantNeeds(where, object, use, out));
  RETURN_IF_ERROR(ReadAccountPeers(where, object, out));
  RETURN_IF_ERROR(ReadString(where, object, "scope", out.scope, false));
  if (out.scope.empty() && out.provider == Provider::kGoogle)
    out.scope = std::string(kGoogleMailScope);
  if (out.scope.empty())
    out.scope = DefaultScope(out.cloud, out.grant);
  return ReadSeconds(where, object, "refresh_margin_seconds",
                     kMinRefreshMarginSeconds, 3000,
                     out.refresh_margin_seconds);
}

// Reads "accounts": a non-empty array with one entry per mailbox.
Status ReadAccounts(const std::string& path, const json& root, ConfigUse use,
                    std::vector<Account>& out) {
  auto it = root.find("accounts");
  if (it == root.end() || !it->is_array() || it->empty()) {
    return std::unexpected(path +
                           ": accounts is missing or empty; add one entry "
                           "per mailbox that relays mail");
  }
  for (std::size_t i = 0; i < it->size(); ++i) {
    Account account;
    RETURN_IF_ERROR(ReadAccount(path, (*it)[i], i, use, account));
    for (std::size_t j = 0; j < out.size(); ++j) {
      if (!SameMailbox(out[j].mailbox, account.mailbox))
        continue;
      return std::unexpected(
          path + ": accounts[" + std::to_string(i) + "].mailbox " +
          account.mailbox + " is already used by accounts[" +
          std::to_string(j) + "]; each mailbox may appear once");
    }
    out.push_back(std::move(account));
  }
  return {};
}

// Reads the socket path, which must fit in sockaddr_un.
Status ReadSocket(const Where& where, const json& root, std::string& out) {
  RETURN_IF_ERROR(ReadPath(where, root, "socket", out, false));
  if (out.size() >= sizeof(sockaddr_un::sun_path)) {
    return where.Fail("socket",
                      "is longer than " +
                          std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                          " bytes; choose a shorter path");
  }
  return {};
}

// Reads the optional "sender_guard" object: the milter's socket.
Status ReadSenderGuard(const Where& where, const json& root,
                       SenderGuardSettings& out) {
  auto it = root.find("sender_guard");
  if (it == root.end())
    return {};
  if (!it->is_object()) {
    return where.Fail("sender_guard",
                      "must be an object like {\"socket\": "
                      "\"/path/milter.sock\"}, not " +
                          std::string(it->type_name()));
  }
  Where inner{where.path, "sender_guard."};
  RETURN_IF_ERROR(CheckKeys(inner, *it, kSenderGuardKeys));
  return ReadSocket(inner, *it, out.socket);
}

// Refuses socket paths that would collide once `//`, `/./` and `..` are
// resolved lexically: the token socket named like the helper's reply
// socket, or the milter on the token or the reply socket. (Symbolic links
// are not followed; the files need not exist yet.)
Status CheckSocketsApart(const Where& where, const Config& config) {
  namespace fs = std::filesystem;
  std::string token = fs::path(config.socket).lexically_normal().string();
  std::string guard =
      fs::path(config.sender_guard.socket).lexically_normal().string();
  const std::string& written = config.sender_guard.socket;
  const std::string fix =
      "; give the milter a path of its own, such as milter.sock in the "
      "same folder";

  // The helper itself listens on reply.sock beside the token socket.
  if (fs::path(token).filename() == "reply.sock") {
    return where.Fail("socket", "is " + config.socket +
                                    ", but the helper listens on reply.sock "
                                    "in the token socket's folder itself; "
                                    "name the token socket otherwise, such "
                                    "as token.sock");
  }
  if (guard == token) {
    std::string what =
        written == config.socket
            ? "is the token socket " + config.socket
            : "is " + written + ", which is the token socket " + config.socket;
    return where.Fail("sender_guard.socket", what + fix);
  }
  if (guard == ReplySocketPath(token)) {
    return where.Fail("sender_guard.socket",
                      "is " + written +
                          ", which is the helper's reply socket (reply.sock "
                          "beside the token socket " +
                          config.socket + ")" + fix);
  }
  return {};
}

// Reads ca_file, which must exist when given.
Status ReadCaFile(const Where& where, const json& root, std::string& out) {
  RETURN_IF_ERROR(ReadPath(where, root, "ca_file", out, false));
  struct stat info {};
  if (!out.empty() && stat(out.c_str(), &info) != 0) {
    return where.Fail("ca_file", "is " + out + ", which cannot be read: " +
                                     std::strerror(errno));
  }
  return {};
}

// Reads the optional log_level.
Status ReadLogLevel(const Where& where, const json& root, LogLevel& out) {
  std::string name;
  RETURN_IF_ERROR(ReadString(where, root, "log_level", name, false));
  if (name.empty())
    return {};
  auto level = ParseLogLevel(name);
  if (!level) {
    return where.Fail("log_level",
                      "is \"" + name + "\"; use debug, info, warn or error");
  }
  out = *level;
  return {};
}

// Reads every top-level setting except accounts.
Status ReadSettings(const Where& where, const json& root, Config& out) {
  RETURN_IF_ERROR(ReadSocket(where, root, out.socket));
  std::vector<unsigned> uids;
  std::vector<unsigned> gids;
  RETURN_IF_ERROR(ReadIds(where, root, "allowed_users", true, uids));
  RETURN_IF_ERROR(ReadIds(where, root, "allowed_groups", false, gids));
  out.allowed_uids.assign(uids.begin(), uids.end());
  out.allowed_gids.assign(gids.begin(), gids.end());
  RETURN_IF_ERROR(ReadCaFile(where, root, out.ca_file));
  RETURN_IF_ERROR(ReadString(where, root, "proxy", out.proxy, false));
  auto proxy = CheckProxySetting(out.proxy);
  if (!out.proxy.empty() && !proxy)
    return where.Fail("proxy", proxy.error());
  RETURN_IF_ERROR(ReadSeconds(where, root, "connect_timeout_seconds", 1, 300,
                              out.connect_timeout_seconds));
  RETURN_IF_ERROR(ReadSeconds(where, root, "request_timeout_seconds", 1, 600,
                              out.request_timeout_seconds));
  RETURN_IF_ERROR(ReadSeconds(where, root, "refresh_margin_seconds",
                              kMinRefreshMarginSeconds, 3000,
                              out.refresh_margin_seconds));
  RETURN_IF_ERROR(ReadSeconds(where, root, "refresh_token_warn_days", 1, 80,
                              out.refresh_token_warn_days, "days"));
  RETURN_IF_ERROR(ReadSenderGuard(where, root, out.sender_guard));
  RETURN_IF_ERROR(CheckSocketsApart(where, out));
  return ReadLogLevel(where, root, out.log_level);
}

// What nlohmann::json names as expected after a token; of the text that
// follows its "last read" quote, only these words are repeated.
constexpr std::string_view kExpectedTokens[] = {
    "true literal",
    "false literal",
    "null literal",
    "string literal",
    "number literal",
    "'['",
    "'{'",
    "']'",
    "'}'",
    "':'",
    "','",
    "end of input",
    "'[', '{', or a literal",
};

// A fix for a syntax error, chosen by the words of nlohmann's message.
struct SyntaxHint {
  std::string_view words;
  std::string_view fix;
};

constexpr std::string_view kCloseQuote =
    "is a closing quote missing? a string ends on the line it starts";
constexpr std::string_view kEscape =
    "a backslash in a string starts an escape such as \\n or \\u0041; "
    "write \\\\ for a backslash itself";
constexpr std::string_view kComma = "is a comma missing before this point?";

constexpr SyntaxHint kSyntaxHints[] = {
    {"missing closing quote", kCloseQuote},
    {"U+000A", kCloseQuote},
    {"U+000D", kCloseQuote},
    {"control character", "write the character as the escape named"},
    {"backslash", kEscape},
    {"'\\u'", kEscape},
    {"surrogate", kEscape},
    {"UTF-8", "save the file as UTF-8"},
    {"BOM", "save the file as UTF-8"},
    {"invalid literal",
     "put text in double quotes; true, false and null are lower case"},
    {"invalid number",
     "write a number as digits, such as 30, or put text in double quotes"},
    {"invalid comment", "close a /* comment with */, or use // instead"},
    {"end of input", "is a closing quote, } or ] missing?"},
    {"unexpected '}'", "is there a comma after the last entry?"},
    {"unexpected ']'", "is there a comma after the last entry?"},
    {"expected '}'", kComma},
    {"expected ']'", kComma},
    {"expected ':'", "is the colon after a key missing?"},
};

// The fix suggested for nlohmann's `problem` text.
std::string_view SyntaxFix(std::string_view problem) {
  for (const SyntaxHint& hint : kSyntaxHints) {
    if (problem.find(hint.words) != std::string_view::npos)
      return hint.fix;
  }
  return "compare this point with the shipped example configuration";
}

// What a parse_error says went wrong, in nlohmann's own words but without
// any of the file's text, followed by a fix in parentheses. nlohmann
// quotes the bytes it last read ("; last read: '...'"), which may be an
// inline secret or a proxy password: everything from there on is dropped
// but for a known "; expected ..." at the very end.
std::string SyntaxProblem(std::string_view what) {
  std::string_view detail = what;
  std::size_t column = detail.find(", column ");
  std::size_t colon =
      column == std::string_view::npos ? column : detail.find(": ", column);
  if (colon != std::string_view::npos)
    detail.remove_prefix(colon + 2);
  if (detail.starts_with("syntax error "))
    detail.remove_prefix(13);

  std::string problem(detail.substr(0, detail.find("; last read: ")));
  if (problem.size() < detail.size()) {
    for (std::string_view token : kExpectedTokens) {
      std::string tail = "; expected " + std::string(token);
      if (what.ends_with(tail)) {
        problem += tail;
        break;
      }
    }
  }
  return problem + " (" + std::string(SyntaxFix(problem)) + ")";
}

// A key given twice in one object: nlohmann keeps the later value
// without a word, so an edited copy of an account could silently lose.
struct DuplicateKey {
  std::string key;
};

// Parses the configuration's JSON, comments allowed, refusing a key given
// twice in one object. A message names the file and, where nlohmann tells
// it, the line and column, never a byte of the file (a key name is
// shown: keys are the configuration's own words, never secrets).
std::expected<json, std::string> ParseJson(std::string_view text,
                                           const std::string& abs_path) {
  std::vector<std::vector<std::string>> open_objects;
  auto refuse_duplicates = [&](int /*depth*/, json::parse_event_t event,
                               json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key) {
      std::vector<std::string>& keys = open_objects.back();
      const auto& key = parsed.get_ref<const std::string&>();
      if (std::find(keys.begin(), keys.end(), key) != keys.end())
        throw DuplicateKey{key};
      keys.push_back(key);
    }
    return true;
  };
  try {
    return json::parse(text, refuse_duplicates, true, true);
  } catch (DuplicateKey& duplicate) {
    std::string& key = duplicate.key;
    if (key.size() > 64)
      key = key.substr(0, 64) + "...";
    std::replace_if(
        key.begin(), key.end(), [](char c) { return c < 0x20 || c > 0x7e; },
        '?');
    return std::unexpected(abs_path + ": \"" + key +
                           "\" is given twice in one object; only the later "
                           "value would count: remove one of them");
  } catch (const json::parse_error& error) {
    return std::unexpected(SyntaxErrorPosition(text, error.byte, abs_path) +
                           ": syntax error: " + SyntaxProblem(error.what()));
  } catch (const json::out_of_range&) {
    // Only a number beyond a double's range; nlohmann gives no position.
    return std::unexpected(abs_path +
                           ": syntax error: a number is too large to read "
                           "(write whole numbers such as 30)");
  } catch (const std::exception&) {
    return std::unexpected(abs_path +
                           ": cannot parse: the JSON reader failed (out of "
                           "memory?)");
  }
}

}  // namespace

std::string_view GrantName(Grant grant) {
  return grant == Grant::kClientCredentials ? "client_credentials"
                                            : "refresh_token";
}

std::string_view CredentialName(Credential credential) {
  switch (credential) {
    case Credential::kSecret:
      return "secret";
    case Credential::kCertificate:
      return "certificate";
    case Credential::kPublic:
      break;
  }
  return "public";
}

std::string_view ProviderName(Provider provider) {
  return provider == Provider::kGoogle ? "google" : "microsoft";
}

std::string DefaultMilterSocket() {
  std::string_view token = XOAUTH2_DEFAULT_SOCKET;
  std::size_t slash = token.rfind('/');
  return std::string(token.substr(0, slash + 1)) + "milter.sock";
}

std::string Account::TokenUrl() const {
  if (provider == Provider::kGoogle)
    return authority + "/token";
  return authority + "/" + tenant + "/oauth2/v2.0/token";
}

std::string Account::DeviceCodeUrl() const {
  return authority + "/" + tenant + "/oauth2/v2.0/devicecode";
}

Credential Account::credential() const {
  if (certificate)
    return Credential::kCertificate;
  return client_secret.empty() ? Credential::kPublic : Credential::kSecret;
}

const Account* Config::FindAccount(std::string_view mailbox) const {
  std::string wanted = AsciiLower(mailbox);
  for (const Account& account : accounts) {
    if (AsciiLower(account.mailbox) == wanted)
      return &account;
  }
  return nullptr;
}

const Account* Config::FindAccountByName(std::string_view name) const {
  for (const Account& account : accounts) {
    if (account.name == name)
      return &account;
  }
  return FindAccount(name);
}

std::string_view DefaultAuthority(Cloud cloud) {
  return InfoFor(cloud).authority;
}

std::string DefaultScope(Cloud cloud, Grant grant) {
  const CloudInfo& info = InfoFor(cloud);
  if (grant == Grant::kClientCredentials)
    return std::string(info.app_scope);
  return std::string(info.delegated_scope) + " offline_access";
}

std::string SyntaxErrorPosition(std::string_view text, std::size_t byte,
                                const std::string& abs_path) {
  if (text.empty())
    return abs_path + ":1:1";
  std::size_t index = std::min(byte == 0 ? 1 : byte, text.size()) - 1;

  // nlohmann reports the last byte it read; step back to where that token
  // starts, which is where an editor should put the cursor.
  if (text[index] == '"' && index > 0) {
    std::size_t open = text.rfind('"', index - 1);
    while (open != std::string_view::npos && open > 0 &&
           text[open - 1] == '\\') {
      open = text.rfind('"', open - 1);
    }
    if (open != std::string_view::npos)
      index = open;
  } else {
    auto in_word = [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
             c == '-' || c == '+';
    };
    while (index > 0 && in_word(text[index]) && in_word(text[index - 1])) {
      --index;
    }
  }

  std::size_t line = 1 + static_cast<std::size_t>(std::count(
                             text.begin(), text.begin() + index, '\n'));
  std::size_t line_start = text.rfind('\n', index == 0 ? 0 : index - 1);
  bool first_line = line_start == std::string_view::npos || line == 1;
  std::size_t column = first_line ? index + 1 : index - line_start;
  return abs_path + ":" + std::to_string(line) + ":" + std::to_string(column);
}

// ParseConfig's work; its messages may quote values byte for byte.
static std::expected<Config, std::string> ParseConfigQuoting(
    std::string_view text, const std::string& abs_path, ConfigUse use) {
  auto parsed = ParseJson(text, abs_path);
  if (!parsed)
    return std::unexpected(parsed.error());
  const json& root = *parsed;

  try {
    if (!root.is_object()) {
      return std::unexpected(abs_path +
                             ": the top level must be a JSON "
                             "object ({ ... })");
    }
    Config config;
    config.path = abs_path;
    Where where{abs_path, ""};
    RETURN_IF_ERROR(CheckKeys(where, root, kTopKeys));
    RETURN_IF_ERROR(ReadSettings(where, root, config));
    RETURN_IF_ERROR(ReadAccounts(abs_path, root, use, config.accounts));
    for (Account& account : config.accounts) {
      if (account.refresh_margin_seconds == 0)
        account.refresh_margin_seconds = config.refresh_margin_seconds;
    }
    return config;
  } catch (const std::exception& error) {
    return std::unexpected(abs_path + ": cannot read: " + error.what());
  }
}

std::expected<Config, std::string> ParseConfig(std::string_view text,
                                               const std::string& abs_path,
                                               ConfigUse use) {
  // A quoted value could hold a line break or a control byte and forge a
  // second log line: every message is printable ASCII on one line.
  auto config = ParseConfigQuoting(text, abs_path, use);
  if (!config) {
    std::string message = std::move(config.error());
    for (char& c : message) {
      if (c < 0x20 || c > 0x7e)
        c = '?';
    }
    return std::unexpected(std::move(message));
  }
  return config;
}

namespace {

// The configuration file's text and the status of it and its directory.
struct ConfigFile {
  std::string abs_path;
  std::string text;
  OpenedFile stats;
};

// `path` made absolute and normal, for every message.
std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  return ec ? path : abs.lexically_normal().string();
}

// Reads at most kMaxConfigBytes from `fd` into `out`; false on a read error
// or when the file is larger.
bool ReadBounded(int fd, std::string& out) {
  char buffer[8192];
  while (out.size() <= kMaxConfigBytes) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return false;
    if (n == 0)
      return true;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  return false;
}

// Opens and reads the configuration file, keeping its fstat status.
std::expected<ConfigFile, std::string> ReadConfigFile(const std::string& path) {
  ConfigFile file;
  file.abs_path = AbsolutePath(path);
  auto opened =
      OpenFileAndDirectory(file.abs_path, "create it or pass --config PATH");
  if (!opened) {
    return std::unexpected(
        file.abs_path + ": cannot read the configuration: " + opened.error());
  }
  file.stats = *opened;

  // Bound the size so a wrong path (a log file, a device) fails fast.
  std::string too_big = file.abs_path + ": is larger than 1 MiB (" +
                        std::to_string(kMaxConfigBytes) +
                        " bytes), the limit for the configuration; is this "
                        "the configuration file?";
  if (!S_ISREG(file.stats.file.st_mode)) {
    close(file.stats.fd);
    return std::unexpected(file.abs_path +
                           ": is not a regular file; is this the "
                           "configuration file?");
  }
  if (static_cast<std::size_t>(file.stats.file.st_size) > kMaxConfigBytes) {
    close(file.stats.fd);
    return std::unexpected(too_big);
  }
  bool read_ok = ReadBounded(file.stats.fd, file.text);
  int error = errno;
  close(file.stats.fd);
  file.stats.fd = -1;
  if (!read_ok && file.text.size() > kMaxConfigBytes)
    return std::unexpected(too_big);
  if (!read_ok) {
    return std::unexpected(file.abs_path + ": cannot read the configuration: " +
                           std::strerror(error));
  }
  return file;
}

}  // namespace

std::expected<Config, std::string> LoadConfig(const std::string& path,
                                              ConfigUse use) {
  auto file = ReadConfigFile(path);
  if (!file)
    return std::unexpected(file.error());
  auto config = ParseConfig(file->text, file->abs_path, use);
  if (!config)
    return config;

  // A configuration holding an inline client_secret is itself a secret.
  bool holds_secret = std::ranges::any_of(
      config->accounts,
      [](const Account& account) { return account.client_secret_inline; });
  if (holds_secret) {
    auto checked = CheckPrivateFile(file->abs_path, file->stats.file,
                                    file->stats.dir, geteuid());
    if (checked)
      checked = CheckDirectoryChain(file->abs_path, geteuid());
    if (!checked) {
      return std::unexpected(file->abs_path +
                             ": holds an inline client_secret; " +
                             checked.error());
    }
  }
  return config;
}

std::expected<std::string, std::string> LoadSocketPath(
    const std::string& path) {
  auto file = ReadConfigFile(path);
  if (!file)
    return std::unexpected(file.error());
  auto parsed = ParseJson(file->text, file->abs_path);
  if (!parsed)
    return std::unexpected(parsed.error());
  const json& root = *parsed;
  if (!root.is_object()) {
    return std::unexpected(file->abs_path +
                           ": the top level must be a JSON object ({ ... })");
  }
  std::string socket = XOAUTH2_DEFAULT_SOCKET;
  auto read = ReadSocket(Where{file->abs_path, ""}, root, socket);
  if (!read)
    return std::unexpected(read.error());
  return socket;
}

}  // namespace xoauth2::helper
