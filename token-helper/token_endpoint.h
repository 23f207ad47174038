// SPDX-License-Identifier: MIT
//
// The client of the token endpoint: POST {authority}/{tenant}/oauth2/v2.0/
// token with an application/x-www-form-urlencoded body (RFC 6749 sections
// 2.3, 4.4 and 6; RFC 7523 section 2.2 for client assertions; Microsoft
// identity platform v2.0 client credentials and refresh token flows).
//
// Main types: TokenFetcher, the interface the cache uses (tests substitute
// a fake); CurlTokenFetcher, the libcurl implementation; PostForm(), the
// one HTTPS form POST that every grant uses (the device code flow too),
// behind FormPoster so that tests can script answers. One easy handle per
// request, so a fetcher may be used from several threads at once (the
// cache still runs at most one fetch per account).
//
// What a request sends that is secret is marked where the form field is
// added (FieldMask) and collected by EncodeForm() into the FormBody's
// SecretMask; with the proxy password (TransportSecrets()) and the access
// token the cache holds, it masks every text of the answer in
// ParseTokenResponse().
//
// Client authentication (AddClientAuthentication): a client secret, or a
// fresh JWT client assertion per request for a certificate, or nothing for
// a public client; never both.
//
// Deliberately: only https (also for redirects, which are never
// followed: a 3xx is an error), TLS peer and host verification always on,
// bounded connect and total time, answers capped at 64 KiB, no signals.
// A new refresh token is written to disk atomically before the access
// token is returned; a refresh token is never deleted. Nothing here logs:
// failures come back as TokenFailure values for the cache to log once.

#ifndef XOAUTH2_TOKEN_HELPER_TOKEN_ENDPOINT_H
#define XOAUTH2_TOKEN_HELPER_TOKEN_ENDPOINT_H

#include <atomic>
#include <cstdint>
#include <expected>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "secret.h"
#include "token_response.h"

namespace xoauth2::helper {

// Gets one access token for an account.
class TokenFetcher {
 public:
  virtual ~TokenFetcher() = default;

  // `held_token` is the access token the caller holds for `account` (may
  // be empty); like every secret the request sends, it is masked in any
  // text of the answer that a failure keeps.
  virtual std::expected<TokenGrant, TokenFailure> Fetch(
      const Account& account, const Secret& held_token) = 0;

  // Makes running and later fetches fail at once; for shutdown.
  virtual void Cancel() {}
};

// Transport settings shared by all accounts.
struct HttpSettings {
  std::string ca_file;  // empty: system store
  std::string proxy;    // empty: the environment's proxy variables apply
  long connect_timeout_seconds = 10;
  long request_timeout_seconds = 30;

  static HttpSettings FromConfig(const Config& config);
};

// One HTTP answer; the body is a Secret because it may hold tokens.
struct HttpReply {
  long status = 0;
  Secret body;
  std::optional<long> retry_after;  // Retry-After in seconds, if sent
};

// POSTs a form body to a URL; the answer or a transport failure.
using FormPoster = std::function<std::expected<HttpReply, TokenFailure>(
    const std::string& url, const Secret& body)>;

class CurlTokenFetcher : public TokenFetcher {
 public:
  // Posts with PostForm() and `settings`, or with `poster` when given
  // (tests); `settings` also names the proxy password to mask.
  explicit CurlTokenFetcher(HttpSettings settings, FormPoster poster = {});
  std::expected<TokenGrant, TokenFailure> Fetch(
      const Account& account, const Secret& held_token) override;
  void Cancel() override { cancelled_ = true; }

 private:
  HttpSettings settings_;
  FormPoster poster_;
  std::atomic<bool> cancelled_{false};
};

// The message for a failure that needs a person (invalid_grant and the
// like) of `account`: a Microsoft refresh token account signs in again
// with `token-helper authorize`; a Google account cannot, so its message
// names the refresh token file to replace. Other failures: unchanged.
std::string SignInAdvice(const Account& account, const TokenFailure& failure);

// How a form field's value is masked in the answer (SecretMask).
enum class FieldMask {
  kNone,    // not secret: client_id, scope, grant_type
  kSecret,  // a client secret: shown as <redacted>
  kToken,   // a refresh token, assertion or device code: by its hash
};

struct FormField {
  std::string_view name;
  std::string_view value;
  FieldMask mask = FieldMask::kNone;
};

// An encoded form and what it sends that the answer must not repeat.
struct FormBody {
  Secret text;
  SecretMask sent;
};

// POSTs the form `body` to `url` and returns the answer whatever its HTTP
// status, or a temporary TokenFailure naming the fix when no answer came
// (DNS, connect, TLS, timeout, over 64 KiB, `cancelled` set meanwhile).
std::expected<HttpReply, TokenFailure> PostForm(
    const HttpSettings& settings, const std::string& url, const Secret& body,
    const std::atomic<bool>& cancelled);

// What the transport sends besides the body that is secret: the proxy
// password of `settings` (SecretMask::AddSecret), if any.
SecretMask TransportSecrets(const HttpSettings& settings);

// Appends `account`'s client authentication to `fields`: client_secret,
// or client_assertion_type and a fresh client_assertion signed at `now`
// (kept alive in `assertion`, which must outlive `fields`), or nothing
// for a public client; the secret and the assertion are marked for
// masking. Error only if signing fails.
std::expected<void, std::string> AddClientAuthentication(
    const Account& account, std::int64_t now, std::vector<FormField>& fields,
    Secret& assertion);

// name=value pairs joined by '&', every name and value percent-encoded
// with curl_easy_escape, and the mask of the values marked secret. Error
// only if libcurl cannot allocate.
std::expected<FormBody, std::string> EncodeForm(
    std::span<const FormField> fields);

// The form body for `account`: client_credentials sends grant_type,
// client_id, the client authentication and scope; refresh_token sends
// grant_type, client_id, refresh_token, scope (always for Microsoft, never
// for Google) and then the client authentication only when one is
// configured. An assertion is signed now. The secret, refresh token and
// assertion are in the body's mask.
std::expected<FormBody, std::string> BuildTokenRequestBody(
    const Account& account, const Secret& refresh_token);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_TOKEN_ENDPOINT_H
