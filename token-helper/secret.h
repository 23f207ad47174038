// SPDX-License-Identifier: MIT
//
// Secret: the one type that carries client secrets, refresh tokens, access
// tokens and request bodies holding them through the token-helper.
//
// Formatting a Secret (operator<<) always prints the fixed mask
// "<redacted>", so a Secret that slips into a log line or an error message
// shows nothing. The value is reached only through Reveal(), which makes
// every place that hands a secret to the network or a file easy to find.
// ShortHash() gives the first 12 hex digits of a token's SHA-256 (OpenSSL
// libcrypto), the only form in which a token may be logged.
//
// Secret owns its bytes and wipes them (OPENSSL_cleanse) when destroyed or
// overwritten. It does not lock memory or guard against core dumps.
//
// SecretMask: the secrets one request sent (client secret, refresh token,
// client assertion, device code, proxy password) and the access token
// held, so that whatever the other side answers can be kept and logged
// without them. It masks each value written raw or with any of its bytes
// percent-encoded (hex digits in either case, a space also as '+'), as
// any encoder may write it. Not thread-safe; values are kept as Secrets.
// It cannot find a fragment of a value (a token cut short) or another
// encoding (base64).

#ifndef XOAUTH2_TOKEN_HELPER_SECRET_H
#define XOAUTH2_TOKEN_HELPER_SECRET_H

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace xoauth2::helper {

// The text every formatted Secret prints instead of its value.
inline constexpr std::string_view kRedacted = "<redacted>";

class Secret {
 public:
  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}
  Secret(const Secret& other) = default;
  Secret(Secret&& other) noexcept;
  Secret& operator=(const Secret& other);
  Secret& operator=(Secret&& other) noexcept;
  ~Secret();

  // The secret itself; only for the network, files and comparisons.
  const std::string& Reveal() const { return value_; }
  bool empty() const { return value_.empty(); }

  friend bool operator==(const Secret& a, const Secret& b) {
    return a.value_ == b.value_;
  }

 private:
  void Wipe();

  std::string value_;
};

// Prints kRedacted, never the value.
std::ostream& operator<<(std::ostream& out, const Secret& secret);

// "sha256:" followed by the first 12 lowercase hex digits of the SHA-256 of
// `token`: enough to tell tokens apart in logs, useless to an attacker.
std::string ShortHash(std::string_view token);

class SecretMask {
 public:
  // Masks `secret` (a password or client secret; nothing when empty) with
  // kRedacted: no hash, as a short password could be guessed from one.
  void AddSecret(std::string_view secret);

  // Masks `token` (nothing when empty) with "<redacted sha256:...>", its
  // ShortHash, so that a log still tells which token came back.
  void AddToken(std::string_view token);

  // Masks what `other` masks, too.
  void Merge(const SecretMask& other);

  // `text` with every masked value replaced, the longest one first where
  // several start at the same place.
  std::string Apply(std::string_view text) const;

 private:
  struct Entry {
    Secret value;
    std::string shown;
  };

  void AddValue(std::string_view value, const std::string& shown);

  std::vector<Entry> entries_;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SECRET_H
