// SPDX-License-Identifier: MIT
//
// libcurl transport for the token endpoint (one POST function for every
// grant), form encoding with the mask of what it sends, client
// authentication fields and the refresh token hand-over to disk. Every
// libcurl error is turned into a temporary TokenFailure whose message
// names the likely fix.

#include "token_endpoint.h"

#include <curl/curl.h>
#include <openssl/crypto.h>

#include <ctime>
#include <memory>
#include <mutex>
#include <vector>

#include "client_assertion.h"
#include "proxy_setting.h"
#include "secret_file.h"

namespace xoauth2::helper {
namespace {

// What the write and header callbacks collect.
struct Transfer {
  std::string body;
  bool overflow = false;
  std::optional<long> retry_after;

  ~Transfer() { OPENSSL_cleanse(body.data(), body.size()); }
};

// CURLOPT_WRITEFUNCTION: keeps at most kMaxTokenResponseBytes.
size_t OnBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  if (transfer->body.size() + bytes > kMaxTokenResponseBytes) {
    transfer->overflow = true;
    return 0;  // makes libcurl abort with CURLE_WRITE_ERROR
  }
  transfer->body.append(data, bytes);
  return bytes;
}

// CURLOPT_HEADERFUNCTION: picks up Retry-After.
size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  std::string_view line(data, bytes);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size() &&
      curl_strnequal(line.data(), kName.data(), kName.size())) {
    transfer->retry_after = ParseRetryAfter(line.substr(kName.size()));
  }
  return bytes;
}

// CURLOPT_XFERINFOFUNCTION: aborts the transfer once shutdown began.
int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using CurlList = std::unique_ptr<curl_slist, SlistDeleter>;

// Turns a libcurl failure into words an operator can act on;
// `connect_code` is a proxy's answer to CONNECT (0: none).
std::string TransportMessage(CURLcode code, const char* detail,
                             long connect_code, const Transfer& transfer,
                             const HttpSettings& settings,
                             const std::string& url) {
  std::string why = *detail != '\0' ? detail : curl_easy_strerror(code);
  auto proxy_message = ProxyFailureMessage(
      {settings.proxy, static_cast<int>(code), connect_code, why, url});
  if (proxy_message)
    return *proxy_message;
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
      return "no answer from " + url + " within " +
             std::to_string(settings.request_timeout_seconds) +
             " s (request_timeout_seconds): " + why;
    case CURLE_COULDNT_RESOLVE_HOST:
      return "cannot resolve the host of " + url + ": " + why +
             "; check DNS, or set a proxy";
    case CURLE_COULDNT_CONNECT:
      return "cannot connect to " + url + ": " + why +
             "; check the network, the firewall and any https_proxy, "
             "all_proxy or no_proxy environment variable";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CONNECT_ERROR:
      return "TLS with " + url + " failed: " + why +
             "; check ca_file and the system CA store";
    case CURLE_ABORTED_BY_CALLBACK:
      return "request to " + url + " cancelled: the helper is stopping";
    case CURLE_WRITE_ERROR:
      if (transfer.overflow) {
        return "the answer from " + url +
               " exceeds 64 KiB; not a token "
               "endpoint?";
      }
      [[fallthrough]];
    default:
      return "request to " + url + " failed: " + why;
  }
}

// Applies the fixed safety options and the configured transport settings.
void SetOptions(CURL* curl, const HttpSettings& settings, Transfer& transfer,
                char* error_buffer, const std::atomic<bool>& cancelled) {
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
  if (!settings.ca_file.empty()) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, settings.ca_file.c_str());
  }
  // A configured proxy takes every request; the environment's proxy
  // variables (no_proxy too) count only without one.
  if (!settings.proxy.empty()) {
    curl_easy_setopt(curl, CURLOPT_PROXY, settings.proxy.c_str());
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "");
  }
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT,
                   settings.connect_timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, settings.request_timeout_seconds);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "xoauth2-relay/" XOAUTH2_VERSION);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, OnProgress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &cancelled);
}

// Initialises libcurl once per process, before the first handle.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Sets the form body, its headers and the URL on `curl`.
CurlList SetRequest(CURL* curl, const std::string& url, const Secret& body) {
  CurlList headers(curl_slist_append(
      nullptr, "Content-Type: application/x-www-form-urlencoded"));
  headers.reset(
      curl_slist_append(headers.release(), "Accept: application/json"));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.Reveal().data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                   static_cast<curl_off_t>(body.Reveal().size()));
  return headers;
}

// curl_easy_escape of `text`, which may be a secret; nullopt on failure.
std::optional<Secret> Escape(CURL* curl, std::string_view text) {
  char* escaped =
      curl_easy_escape(curl, text.data(), static_cast<int>(text.size()));
  if (escaped == nullptr)
    return std::nullopt;
  Secret result{std::string(escaped)};
  OPENSSL_cleanse(escaped, std::char_traits<char>::length(escaped));
  curl_free(escaped);
  return result;
}

// Stores a rotated refresh token before its access token is handed out.
std::expected<void, TokenFailure> KeepRefreshToken(const Account& account,
                                                   const Secret& old_token,
                                                   const Secret& new_token) {
  if (new_token.empty() || new_token == old_token)
    return {};
  auto written =
      WriteSecretFileAtomically(account.refresh_token_file, new_token);
  if (written)
    return {};
  TokenFailure failure = TransportFailure(
      "cannot store the new refresh token: " + written.error() +
      "; the previous one stays in place and is retried");
  return std::unexpected(failure);
}

}  // namespace

HttpSettings HttpSettings::FromConfig(const Config& config) {
  return HttpSettings{config.ca_file, config.proxy,
                      config.connect_timeout_seconds,
                      config.request_timeout_seconds};
}

CurlTokenFetcher::CurlTokenFetcher(HttpSettings settings, FormPoster poster)
    : settings_(std::move(settings)), poster_(std::move(poster)) {
  InitCurlOnce();
}

std::expected<HttpReply, TokenFailure> PostForm(
    const HttpSettings& settings, const std::string& url, const Secret& body,
    const std::atomic<bool>& cancelled) {
  InitCurlOnce();
  CurlHandle curl(curl_easy_init());
  if (!curl)
    return std::unexpected(TransportFailure("libcurl init failed"));
  Transfer transfer;
  char error_buffer[CURL_ERROR_SIZE] = {};
  SetOptions(curl.get(), settings, transfer, error_buffer, cancelled);
  CurlList headers = SetRequest(curl.get(), url, body);

  CURLcode code = curl_easy_perform(curl.get());
  if (code != CURLE_OK) {
    long connect_code = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_HTTP_CONNECTCODE, &connect_code);
    return std::unexpected(TransportFailure(TransportMessage(
        code, error_buffer, connect_code, transfer, settings, url)));
  }
  HttpReply reply;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &reply.status);
  reply.body = Secret(std::move(transfer.body));
  reply.retry_after = transfer.retry_after;
  return reply;
}

std::string SignInAdvice(const Account& account, const TokenFailure& failure) {
  if (failure.failure_class != FailureClass::kNeedsPerson)
    return failure.message;
  std::string cause = FailureCause(failure);
  if (account.provider == Provider::kGoogle) {
    // The file and the fix come first: `status` shows 240 characters.
    return "Google refused the refresh token in " + account.refresh_token_file +
           ": " + cause +
           "; replace the file's content (mode 0600) with a new refresh "
           "token got with the desktop OAuth client of the account's "
           "client_id, as token-helper authorize cannot sign in Google "
           "accounts (see token-helper(8)); the helper retries when the "
           "file changes";
  }
  if (account.grant == Grant::kRefreshToken) {
    return failure.message + ": run token-helper authorize " + account.name;
  }
  return failure.message;
}

SecretMask TransportSecrets(const HttpSettings& settings) {
  SecretMask mask;
  for (const Secret& password : ProxyPasswords(settings.proxy))
    mask.AddSecret(password.Reveal());
  return mask;
}

std::expected<FormBody, std::string> EncodeForm(
    std::span<const FormField> fields) {
  CurlHandle curl(curl_easy_init());
  if (!curl)
    return std::unexpected("libcurl init failed");

  FormBody form;
  std::string body;
  for (const FormField& field : fields) {
    auto name = Escape(curl.get(), field.name);
    auto value = Escape(curl.get(), field.value);
    if (!name || !value)
      return std::unexpected("out of memory");
    if (!body.empty())
      body += '&';
    body += name->Reveal() + "=" + value->Reveal();
    if (field.mask == FieldMask::kSecret)
      form.sent.AddSecret(field.value);
    else if (field.mask == FieldMask::kToken)
      form.sent.AddToken(field.value);
  }
  form.text = Secret(body);
  OPENSSL_cleanse(body.data(), body.size());
  return form;
}

std::expected<void, std::string> AddClientAuthentication(
    const Account& account, std::int64_t now, std::vector<FormField>& fields,
    Secret& assertion) {
  if (account.certificate) {
    auto signed_jwt =
        BuildClientAssertion(*account.certificate, account.assertion_alg,
                             account.TokenUrl(), account.client_id, now);
    if (!signed_jwt)
      return std::unexpected(signed_jwt.error());
    assertion = std::move(*signed_jwt);
    fields.push_back({"client_assertion_type", kJwtBearerAssertionType});
    fields.push_back(
        {"client_assertion", assertion.Reveal(), FieldMask::kToken});
  } else if (!account.client_secret.empty()) {
    fields.push_back(
        {"client_secret", account.client_secret.Reveal(), FieldMask::kSecret});
  }
  return {};
}

std::expected<FormBody, std::string> BuildTokenRequestBody(
    const Account& account, const Secret& refresh_token) {
  std::int64_t now = std::time(nullptr);
  Secret assertion;
  std::vector<FormField> fields;
  if (account.grant == Grant::kClientCredentials) {
    fields = {{"grant_type", "client_credentials"},
              {"client_id", account.client_id}};
    auto added = AddClientAuthentication(account, now, fields, assertion);
    if (!added)
      return std::unexpected(added.error());
    fields.push_back({"scope", account.scope});
    return EncodeForm(fields);
  }

  // Google's refresh request names no scope: the grant keeps the scopes
  // of the sign-in. Microsoft demands one (AADSTS900144, F06).
  fields = {{"grant_type", "refresh_token"},
            {"client_id", account.client_id},
            {"refresh_token", refresh_token.Reveal(), FieldMask::kToken}};
  if (account.provider == Provider::kMicrosoft)
    fields.push_back({"scope", account.scope});
  // A public client has no credential; send one only when configured.
  auto added = AddClientAuthentication(account, now, fields, assertion);
  if (!added)
    return std::unexpected(added.error());
  return EncodeForm(fields);
}

std::expected<TokenGrant, TokenFailure> CurlTokenFetcher::Fetch(
    const Account& account, const Secret& held_token) {
  // The refresh token is re-read each time: it rotates on disk.
  Secret refresh_token;
  if (account.grant == Grant::kRefreshToken) {
    auto read = ReadSecretValue(account.refresh_token_file);
    if (!read) {
      TokenFailure failure =
          TransportFailure("cannot read the refresh token: " + read.error());
      failure.failure_class = FailureClass::kConfiguration;
      return std::unexpected(failure);
    }
    refresh_token = std::move(*read);
  }

  auto body = BuildTokenRequestBody(account, refresh_token);
  if (!body)
    return std::unexpected(TransportFailure(body.error()));
  std::string url = account.TokenUrl();
  auto reply = poster_ ? poster_(url, body->text)
                       : PostForm(settings_, url, body->text, cancelled_);
  if (!reply)
    return std::unexpected(reply.error());

  // Whatever the answer repeats of this request stays out of the failure.
  SecretMask sent = TransportSecrets(settings_);
  sent.Merge(body->sent);
  sent.AddToken(held_token.Reveal());
  auto grant = ParseTokenResponse(
      HttpAnswer{reply->status, reply->body.Reveal(), reply->retry_after},
      account.tenant, sent);
  if (!grant) {
    grant.error().message = SignInAdvice(account, grant.error());
    return grant;
  }
  auto kept = KeepRefreshToken(account, refresh_token, grant->refresh_token);
  if (!kept)
    return std::unexpected(kept.error());
  return grant;
}

}  // namespace xoauth2::helper
