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

#ifndef XOAUTH2_TOKEN_HELPER_SECRET_H
#define XOAUTH2_TOKEN_HELPER_SECRET_H

#include <ostream>
#include <string>
#include <string_view>

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

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SECRET_H
