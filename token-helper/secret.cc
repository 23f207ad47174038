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

// True for the characters RFC 3986 calls unreserved, which
// curl_easy_escape leaves as they are.
bool IsUnreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

// `value` percent-encoded with the hex digits of `hex`; a space becomes
// '+' when `plus` is set, as in HTML form encoding.
Secret PercentEncoded(std::string_view value, const char* hex, bool plus) {
  std::string out;
  for (char c : value) {
    auto byte = static_cast<unsigned char>(c);
    if (IsUnreserved(byte)) {
      out += c;
    } else if (plus && c == ' ') {
      out += '+';
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0x0f];
    }
  }
  Secret secret(out);
  OPENSSL_cleanse(out.data(), out.size());
  return secret;
}

}  // namespace

void SecretMask::AddSecret(std::string_view secret) {
  AddForms(secret, std::string(kRedacted));
}

void SecretMask::AddToken(std::string_view token) {
  if (!token.empty())
    AddForms(token, "<redacted " + ShortHash(token) + ">");
}

void SecretMask::Merge(const SecretMask& other) {
  entries_.insert(entries_.end(), other.entries_.begin(), other.entries_.end());
}

// Adds `value` and each of its encoded forms, once each.
void SecretMask::AddForms(std::string_view value, const std::string& shown) {
  if (value.empty())
    return;
  Secret forms[] = {Secret(std::string(value)),
                    PercentEncoded(value, "0123456789ABCDEF", false),
                    PercentEncoded(value, "0123456789abcdef", false),
                    PercentEncoded(value, "0123456789ABCDEF", true),
                    PercentEncoded(value, "0123456789abcdef", true)};
  for (Secret& form : forms) {
    bool known = std::ranges::any_of(
        entries_, [&](const Entry& entry) { return entry.value == form; });
    if (!known)
      entries_.push_back({std::move(form), shown});
  }
}

std::string SecretMask::Apply(std::string_view text) const {
  std::string out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::string_view rest = text.substr(at);
    const Entry* longest = nullptr;
    for (const Entry& entry : entries_) {
      const std::string& value = entry.value.Reveal();
      if (rest.starts_with(value) &&
          (longest == nullptr || value.size() > longest->value.Reveal().size()))
        longest = &entry;
    }
    if (longest == nullptr) {
      out += text[at++];
      continue;
    }
    out += longest->shown;
    at += longest->value.Reveal().size();
  }
  return out;
}

}  // namespace xoauth2::helper
