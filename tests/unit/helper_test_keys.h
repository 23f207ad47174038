// SPDX-License-Identifier: MIT
//
// Key material for the token-helper unit tests, made at run time with
// OpenSSL (no key is checked in): an RSA or EC private key and a
// self-signed certificate for it, as PEM text, plus the certificate's DER
// bytes. Keys are made once per (kind, variant) and cached for the test
// process, because RSA key generation is slow. Not thread-safe; tests
// call it from the main thread.

#ifndef XOAUTH2_TESTS_UNIT_HELPER_TEST_KEYS_H
#define XOAUTH2_TESTS_UNIT_HELPER_TEST_KEYS_H

#include <string>
#include <vector>

namespace xoauth2::helper::testing {

enum class KeyKind { kRsa2048, kRsa1024, kEcP256 };

struct TestKeys {
  std::string certificate_pem;    // -----BEGIN CERTIFICATE-----
  std::string key_pem;            // PKCS#8 -----BEGIN PRIVATE KEY-----
  std::string traditional_pem;    // -----BEGIN RSA PRIVATE KEY----- (RSA)
  std::string encrypted_key_pem;  // PKCS#8 encrypted with "secret"
  std::vector<unsigned char> certificate_der;
};

// A key of `kind` and its self-signed certificate; a different `variant`
// gives a different key of the same kind.
const TestKeys& MakeTestKeys(KeyKind kind, int variant = 0);

}  // namespace xoauth2::helper::testing

#endif  // XOAUTH2_TESTS_UNIT_HELPER_TEST_KEYS_H
