// SPDX-License-Identifier: MIT
//
// Secret's wiping and masking, ShortHash() over OpenSSL's one-shot
// EVP_Digest, and SecretMask's search and replace. No state, no logging.

#include "secret.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
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

namespace {

// The value of a hex digit, or -1.
int HexValue(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

// How many bytes of `text` from `at` spell `value` with each of its bytes
// written as itself or percent-encoded (hex digits in either case, a
// space also as '+'), as any encoder may write a form or a URL; 0 when
// they do not.
std::size_t SpelledLength(std::string_view text, std::size_t at,
                          std::string_view value) {
  std::size_t pos = at;
  for (char wanted : value) {
    if (pos < text.size() &&
        (text[pos] == wanted || (wanted == ' ' && text[pos] == '+'))) {
      ++pos;
      continue;
    }
    if (pos + 2 < text.size() && text[pos] == '%') {
      int high = HexValue(text[pos + 1]);
      int low = HexValue(text[pos + 2]);
      if (high >= 0 && low >= 0 &&
          high * 16 + low == static_cast<unsigned char>(wanted)) {
        pos += 3;
        continue;
      }
    }
    return 0;
  }
  return pos - at;
}

}  // namespace

void SecretMask::AddSecret(std::string_view secret) {
  AddValue(secret, std::string(kRedacted));
}

void SecretMask::AddToken(std::string_view token) {
  if (!token.empty())
    AddValue(token, "<redacted " + ShortHash(token) + ">");
}

void SecretMask::Merge(const SecretMask& other) {
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
}

// Adds `value` once; Apply finds its encoded spellings too.
void SecretMask::AddValue(std::string_view value, const std::string& shown) {
  if (value.empty())
    return;
  Secret form{std::string(value)};
  bool known = std::ranges::any_of(
      entries_, [&](const Entry& entry) { return entry.value == form; });
  if (!known)
    entries_.push_back({std::move(form), shown});
}

std::string SecretMask::Apply(std::string_view text) const {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    const Entry* longest = nullptr;
    std::size_t spelled = 0;
    for (const Entry& entry : entries_) {
      std::size_t length = SpelledLength(text, at, entry.value.Reveal());
      if (length > spelled) {
        spelled = length;
        longest = &entry;
      }
    }
    if (longest == nullptr) {
      out += text[at++];
      continue;
    }
    out += longest->shown;
    at += spelled;
  }
  return out;
}

}  // namespace xoauth2::helper
