// SPDX-License-Identifier: MIT
//
// Secret's wiping and masking, and ShortHash() over OpenSSL's one-shot
// EVP_Digest. No state, no logging.

#include "secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>

namespace xoauth2::helper {

Secret::Secret(Secret&& other) noexcept : value_(std::move(other.value_)) {
  other.Wipe();
}

Secret& Secret::operator=(const Secret& other) {
  if (this != &other) {
    Wipe();
    value_ = other.value_;
  }
  return *this;
}

Secret& Secret::operator=(Secret&& other) noexcept {
  if (this != &other) {
    Wipe();
    value_ = std::move(other.value_);
    other.Wipe();
  }
  return *this;
}

Secret::~Secret() {
  Wipe();
}

// Overwrites the bytes before the string lets go of them.
void Secret::Wipe() {
  if (!value_.empty())
    OPENSSL_cleanse(value_.data(), value_.size());
  value_.clear();
}

std::ostream& operator<<(std::ostream& out, const Secret& /*secret*/) {
  return out << kRedacted;
}

std::string ShortHash(std::string_view token) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(token.data(), token.size(), digest.data(), &length,
                 EVP_sha256(), nullptr) != 1) {
    return "sha256:unavailable";
  }

  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (std::size_t i = 0; i < 6; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0x0f];
  }
  return out;
}

}  // namespace xoauth2::helper
