// SPDX-License-Identifier: MIT
//
// Loading and checking the certificate and RSA key (OpenSSL PEM readers),
// signing with EVP_DigestSign, and assembling the JWT client assertion
// with nlohmann::json. OpenSSL errors are drained from the thread's error
// queue here so that they cannot surface later in libcurl's TLS messages.

#include "client_assertion.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <vector>

#include "secret_file.h"

namespace xoauth2::helper {

// The OpenSSL objects behind a ClientCertificate.
struct ClientCertificate::Keys {
  EVP_PKEY* key = nullptr;
  X509* certificate = nullptr;

  ~Keys() {
    EVP_PKEY_free(key);
    X509_free(certificate);
  }
};

namespace {

// Microsoft Entra refuses shorter RSA keys for certificate credentials.
constexpr int kMinRsaBits = 2048;

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

// The oldest queued OpenSSL error as text; empties the queue.
std::string DrainOpenSslErrors() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return "unknown OpenSSL error";
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return text;
}

// Refuses to prompt for a passphrase: encrypted keys fail to load.
int NoPassphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void*) {
  return -1;
}

// A read-only memory BIO over `text`.
BioPtr MemoryBio(const std::string& text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

// Reads the first PEM certificate in `path`.
std::expected<X509*, KeyMaterialError> ReadCertificate(
    const std::string& path) {
  auto fail = [](std::string message) {
    return std::unexpected(KeyMaterialError{"certificate_file", message});
  };
  // A certificate is public: no access check, unlike the private key.
  auto text = ReadSecretFile(path, kMaxSecretFileBytes, FileAccess::kPublic);
  if (!text)
    return fail(text.error());
  BioPtr bio = MemoryBio(text->Reveal());
  X509* certificate =
      bio ? PEM_read_bio_X509(bio.get(), nullptr, NoPassphrase, nullptr)
          : nullptr;
  if (certificate == nullptr) {
    DrainOpenSslErrors();
    return fail(path +
                " holds no PEM certificate (a -----BEGIN CERTIFICATE----- "
                "block); convert DER or PFX files with openssl x509 or "
                "openssl pkcs12");
  }
  return certificate;
}

// Reads the unencrypted PEM private key in `path`.
std::expected<EVP_PKEY*, KeyMaterialError> ReadPrivateKey(
    const std::string& path) {
  auto fail = [](std::string message) {
    return std::unexpected(KeyMaterialError{"private_key_file", message});
  };
  auto text = ReadSecretFile(path);
  if (!text)
    return fail(text.error());
  BioPtr bio = MemoryBio(text->Reveal());
  EVP_PKEY* key =
      bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr)
          : nullptr;
  if (key != nullptr)
    return key;

  DrainOpenSslErrors();
  if (text->Reveal().find("ENCRYPTED") != std::string::npos) {
    return fail(path +
                " holds an encrypted private key; store it unencrypted "
                "with mode 0600 (openssl pkey -in OLD -out NEW)");
  }
  return fail(path +
              " holds no PEM private key (a -----BEGIN PRIVATE KEY----- or "
              "-----BEGIN RSA PRIVATE KEY----- block)");
}

// Checks that `key` is an RSA key of a usable size for the certificate.
std::expected<void, KeyMaterialError> CheckKeys(
    X509* certificate, EVP_PKEY* key, const std::string& certificate_file,
    const std::string& private_key_file) {
  auto fail = [](std::string message) {
    return std::unexpected(KeyMaterialError{"private_key_file", message});
  };
  if (EVP_PKEY_is_a(key, "RSA") != 1) {
    const char* type = EVP_PKEY_get0_type_name(key);
    return fail(private_key_file + " holds " +
                std::string(type != nullptr ? type : "a non-RSA") +
                " key; certificate credentials need an RSA key");
  }
  if (EVP_PKEY_get_bits(key) < kMinRsaBits) {
    return fail(private_key_file + " holds a " +
                std::to_string(EVP_PKEY_get_bits(key)) +
                "-bit RSA key; use at least 2048 bits");
  }
  if (EVP_PKEY_eq(X509_get0_pubkey(certificate), key) != 1) {
    ERR_clear_error();
    return fail("the private key in " + private_key_file +
                " does not match the certificate in " + certificate_file +
                "; give the key the certificate was made from");
  }
  return {};
}

// The DER encoding of `certificate`, or empty on failure.
std::vector<unsigned char> DerBytes(X509* certificate) {
  int length = i2d_X509(certificate, nullptr);
  if (length <= 0)
    return {};
  std::vector<unsigned char> der(static_cast<std::size_t>(length));
  unsigned char* out = der.data();
  i2d_X509(certificate, &out);
  return der;
}

// The `md` digest of `bytes`.
std::vector<unsigned char> Digest(std::span<const unsigned char> bytes,
                                  const EVP_MD* md) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, md,
                 nullptr) != 1) {
    return {};
  }
  return std::vector<unsigned char>(digest.begin(), digest.begin() + length);
}

// Upper-case hex of `bytes` without separators.
std::string Hex(std::span<const unsigned char> bytes) {
  std::string text(bytes.size() * 2 + 1, '\0');
  std::size_t length = 0;
  if (OPENSSL_buf2hexstr_ex(text.data(), text.size(), &length, bytes.data(),
                            static_cast<long>(bytes.size()), '\0') != 1) {
    return {};
  }
  text.resize(std::strlen(text.c_str()));  // length counts the NUL
  return text;
}

// Sets RSA-PSS padding with MGF1 SHA-256 and a digest-sized salt.
bool UsePss(EVP_PKEY_CTX* context) {
  return EVP_PKEY_CTX_set_rsa_padding(context, RSA_PKCS1_PSS_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_pss_saltlen(context, RSA_PSS_SALTLEN_DIGEST) ==
             1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(context, EVP_sha256()) == 1;
}

// Base64url of the bytes of `text`.
std::string Base64UrlText(std::string_view text) {
  return Base64Url(std::span(
      reinterpret_cast<const unsigned char*>(text.data()), text.size()));
}

}  // namespace

std::string_view AssertionAlgName(AssertionAlg alg) {
  return alg == AssertionAlg::kPs256 ? "PS256" : "RS256";
}

ClientCertificate::ClientCertificate(std::unique_ptr<Keys> keys)
    : keys_(std::move(keys)) {
  std::vector<unsigned char> der = DerBytes(keys_->certificate);
  thumbprint_s256_ = Base64Url(Digest(der, EVP_sha256()));
  thumbprint_sha1_ = Hex(Digest(der, EVP_sha1()));
}

ClientCertificate::~ClientCertificate() = default;

std::expected<std::shared_ptr<const ClientCertificate>, KeyMaterialError>
ClientCertificate::Load(const std::string& certificate_file,
                        const std::string& private_key_file) {
  auto keys = std::make_unique<Keys>();
  auto certificate = ReadCertificate(certificate_file);
  if (!certificate)
    return std::unexpected(certificate.error());
  keys->certificate = *certificate;

  auto key = ReadPrivateKey(private_key_file);
  if (!key)
    return std::unexpected(key.error());
  keys->key = *key;

  auto checked = CheckKeys(keys->certificate, keys->key, certificate_file,
                           private_key_file);
  if (!checked)
    return std::unexpected(checked.error());
  return std::shared_ptr<const ClientCertificate>(
      new ClientCertificate(std::move(keys)));
}

std::expected<std::string, std::string> ClientCertificate::Sign(
    std::string_view input, AssertionAlg alg) const {
  MdCtxPtr context(EVP_MD_CTX_new());
  EVP_PKEY_CTX* key_context = nullptr;
  if (!context || EVP_DigestSignInit(context.get(), &key_context, EVP_sha256(),
                                     nullptr, keys_->key) != 1) {
    return std::unexpected("cannot start signing: " + DrainOpenSslErrors());
  }
  if (alg == AssertionAlg::kPs256 && !UsePss(key_context)) {
    return std::unexpected("cannot select RSA-PSS: " + DrainOpenSslErrors());
  }

  // The first call gives the signature's size, the second makes it.
  const auto* data = reinterpret_cast<const unsigned char*>(input.data());
  std::size_t length = 0;
  if (EVP_DigestSign(context.get(), nullptr, &length, data, input.size()) !=
      1) {
    return std::unexpected("cannot sign: " + DrainOpenSslErrors());
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(context.get(),
                     reinterpret_cast<unsigned char*>(signature.data()),
                     &length, data, input.size()) != 1) {
    return std::unexpected("cannot sign: " + DrainOpenSslErrors());
  }
  signature.resize(length);
  return signature;
}

std::string Base64Url(std::span<const unsigned char> bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                               bytes.data(), static_cast<int>(bytes.size()));
  text.resize(static_cast<std::size_t>(length));

  // RFC 4648 section 5: '-' and '_' replace '+' and '/', no padding.
  while (!text.empty() && text.back() == '=')
    text.pop_back();
  for (char& c : text) {
    if (c == '+')
      c = '-';
    else if (c == '/')
      c = '_';
  }
  return text;
}

std::expected<std::string, std::string> RandomUuid() {
  std::array<unsigned char, 16> bytes{};
  if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
    return std::unexpected("no random bytes: " + DrainOpenSslErrors());
  }

  // RFC 9562 section 5.4: version 4, variant 10.
  bytes[6] = static_cast<unsigned char>((bytes[6] & 0x0f) | 0x40);
  bytes[8] = static_cast<unsigned char>((bytes[8] & 0x3f) | 0x80);
  char text[37];
  std::snprintf(text, sizeof text,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                "%02x%02x%02x%02x%02x%02x",
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5],
                bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11],
                bytes[12], bytes[13], bytes[14], bytes[15]);
  return std::string(text);
}

std::expected<Secret, std::string> BuildClientAssertion(
    const ClientCertificate& certificate, AssertionAlg alg,
    std::string_view token_url, std::string_view client_id, std::int64_t now) {
  auto jti = RandomUuid();
  if (!jti)
    return std::unexpected(jti.error());

  // Header and claims as Microsoft's certificate credentials require.
  std::string input;
  try {
    nlohmann::json header = {{"alg", AssertionAlgName(alg)},
                             {"typ", "JWT"},
                             {"x5t#S256", certificate.ThumbprintS256()}};
    nlohmann::json claims = {{"aud", token_url},
                             {"iss", client_id},
                             {"sub", client_id},
                             {"jti", *jti},
                             {"nbf", now},
                             {"iat", now},
                             {"exp", now + kAssertionLifetimeSeconds}};
    input = Base64UrlText(header.dump()) + "." + Base64UrlText(claims.dump());
  } catch (const std::exception& error) {
    return std::unexpected(std::string("cannot build the assertion: ") +
                           error.what());
  }

  auto signature = certificate.Sign(input, alg);
  if (!signature)
    return std::unexpected(signature.error());
  return Secret(input + "." + Base64UrlText(*signature));
}

}  // namespace xoauth2::helper
