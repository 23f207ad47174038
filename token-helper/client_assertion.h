// SPDX-License-Identifier: MIT
//
// Certificate credentials for confidential clients: the signed JWT client
// assertion that replaces a client secret at the token endpoint (RFC 7521
// and RFC 7523 section 2.2; RFC 7515 JWS; Microsoft identity platform
// "certificate credentials" with the x5t#S256 header).
//
// Main types: ClientCertificate, an RSA private key and the certificate
// that holds its public key, loaded and cross-checked once (at config
// load) and then kept in memory, immutable, shared between the copies of
// an Account. BuildClientAssertion() makes a fresh JWT for each request:
// header {"alg", "typ": "JWT", "x5t#S256"}, claims aud (the token URL),
// iss = sub (the client id), a random jti (a UUID from RAND_bytes),
// nbf = iat = now and exp = now + 600 s (Microsoft allows 10 minutes).
// PS256 is RSA-PSS with SHA-256, MGF1 SHA-256 and a 32-byte salt; RS256
// is RSASSA-PKCS1-v1_5 with SHA-256. Base64url comes from OpenSSL's
// EVP_EncodeBlock with the alphabet translated and padding dropped.
//
// Thread safety: a ClientCertificate is never modified after Load(), and
// OpenSSL 3 allows concurrent use of an unmodified EVP_PKEY, so Sign() may
// run in several threads. Deliberately: no encrypted keys (no passphrase
// prompt in a daemon), no EC keys (Microsoft Entra needs RSA), nothing
// logged; the private key never appears in a message, and the assertion,
// a bearer credential for 10 minutes, travels as a Secret.

#ifndef XOAUTH2_TOKEN_HELPER_CLIENT_ASSERTION_H
#define XOAUTH2_TOKEN_HELPER_CLIENT_ASSERTION_H

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "secret.h"

namespace xoauth2::helper {

// The longest lifetime Microsoft accepts for a client assertion.
inline constexpr std::int64_t kAssertionLifetimeSeconds = 600;

// RFC 7521 section 4.2 client_assertion_type for a JWT.
inline constexpr std::string_view kJwtBearerAssertionType =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

enum class AssertionAlg { kPs256, kRs256 };

// "PS256" or "RS256".
std::string_view AssertionAlgName(AssertionAlg alg);

// Why key material could not be used, and which config field to blame:
// "certificate_file" or "private_key_file".
struct KeyMaterialError {
  std::string_view field;
  std::string message;  // names the absolute file path and the fix
};

class ClientCertificate {
 public:
  // Reads the PEM certificate at `certificate_file` and the unencrypted
  // PEM RSA private key at `private_key_file` (both absolute) and checks
  // that the key is RSA, at least 2048 bits, and matches the certificate.
  static std::expected<std::shared_ptr<const ClientCertificate>,
                       KeyMaterialError>
  Load(const std::string& certificate_file,
       const std::string& private_key_file);

  ~ClientCertificate();
  ClientCertificate(const ClientCertificate&) = delete;
  ClientCertificate& operator=(const ClientCertificate&) = delete;

  // base64url(SHA-256(DER certificate)), the x5t#S256 header value.
  const std::string& ThumbprintS256() const { return thumbprint_s256_; }

  // Upper-case hex SHA-1 of the DER certificate, as the Azure portal
  // shows it next to an uploaded certificate.
  const std::string& ThumbprintSha1Hex() const { return thumbprint_sha1_; }

  // The signature over `input` with `alg`; error only if OpenSSL fails.
  std::expected<std::string, std::string> Sign(std::string_view input,
                                               AssertionAlg alg) const;

 private:
  struct Keys;
  explicit ClientCertificate(std::unique_ptr<Keys> keys);

  std::unique_ptr<Keys> keys_;
  std::string thumbprint_s256_;
  std::string thumbprint_sha1_;
};

// base64url without padding (RFC 7515 section 2) of `bytes`.
std::string Base64Url(std::span<const unsigned char> bytes);

// A random (version 4) UUID in lower-case 8-4-4-4-12 form; error if the
// random generator is not seeded.
std::expected<std::string, std::string> RandomUuid();

// A signed client assertion for `client_id` at `token_url`, valid from
// `now` (seconds since the epoch) for kAssertionLifetimeSeconds.
std::expected<Secret, std::string> BuildClientAssertion(
    const ClientCertificate& certificate, AssertionAlg alg,
    std::string_view token_url, std::string_view client_id, std::int64_t now);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_CLIENT_ASSERTION_H
