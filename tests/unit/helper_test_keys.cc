// SPDX-License-Identifier: MIT
//
// Implementation of the run-time test key material (helper_test_keys.h):
// EVP_PKEY_Q_keygen for the key, an X509 v3 self-signed certificate valid
// for a day, PEM and DER written through memory BIOs. Failures abort the
// test process with a message: they mean the test environment is broken.

#include "helper_test_keys.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

namespace xoauth2::helper::testing {
namespace {

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr, "test key generation failed: %s\n", what);
  std::abort();
}

// A fresh key of `kind`.
EVP_PKEY* NewKey(KeyKind kind) {
  EVP_PKEY* key = nullptr;
  switch (kind) {
    case KeyKind::kRsa2048:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048});
      break;
    case KeyKind::kRsa1024:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{1024});
      break;
    case KeyKind::kEcP256:
      key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
      break;
  }
  if (key == nullptr)
    Die("keygen");
  return key;
}

// A self-signed certificate for `key`, valid from now for one day.
X509* SelfSigned(EVP_PKEY* key) {
  X509* certificate = X509_new();
  X509_set_version(certificate, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(certificate), 1);
  X509_gmtime_adj(X509_getm_notBefore(certificate), 0);
  X509_gmtime_adj(X509_getm_notAfter(certificate), 86400);
  X509_set_pubkey(certificate, key);
  X509_NAME* name = X509_get_subject_name(certificate);
  X509_NAME_add_entry_by_txt(
      name, "CN", MBSTRING_ASC,
      reinterpret_cast<const unsigned char*>("xoauth2-relay test"), -1, -1, 0);
  X509_set_issuer_name(certificate, name);
  if (X509_sign(certificate, key, EVP_sha256()) == 0)
    Die("sign");
  return certificate;
}

// Everything written to a memory BIO by `write`, as text.
template <typename Write>
std::string Pem(Write write) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (write(bio) != 1)
    Die("pem");
  char* data = nullptr;
  long length = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<std::size_t>(length));
  BIO_free(bio);
  return text;
}

TestKeys Make(KeyKind kind) {
  EVP_PKEY* key = NewKey(kind);
  X509* certificate = SelfSigned(key);
  TestKeys keys;
  keys.certificate_pem =
      Pem([&](BIO* bio) { return PEM_write_bio_X509(bio, certificate); });
  keys.key_pem = Pem([&](BIO* bio) {
    return PEM_write_bio_PKCS8PrivateKey(bio, key, nullptr, nullptr, 0, nullptr,
                                         nullptr);
  });
  keys.traditional_pem = Pem([&](BIO* bio) {
    return PEM_write_bio_PrivateKey_traditional(bio, key, nullptr, nullptr, 0,
                                                nullptr, nullptr);
  });
  char passphrase[] = "secret";
  keys.encrypted_key_pem = Pem([&](BIO* bio) {
    return PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(),
                                         passphrase, 6, nullptr, nullptr);
  });
  int length = i2d_X509(certificate, nullptr);
  keys.certificate_der.resize(static_cast<std::size_t>(length));
  unsigned char* out = keys.certificate_der.data();
  i2d_X509(certificate, &out);
  X509_free(certificate);
  EVP_PKEY_free(key);
  return keys;
}

}  // namespace

const TestKeys& MakeTestKeys(KeyKind kind, int variant) {
  static std::map<std::pair<KeyKind, int>, TestKeys> cache;
  auto key = std::make_pair(kind, variant);
  auto it = cache.find(key);
  if (it == cache.end())
    it = cache.emplace(key, Make(kind)).first;
  return it->second;
}

}  // namespace xoauth2::helper::testing
