// SPDX-License-Identifier: MIT
//
// Unit tests of certificate credentials (client_assertion.h) and their
// configuration: base64url and UUID helpers, the JWT client assertion
// (signature verified with the certificate's public key for PS256 and
// RS256, x5t#S256 against SHA-256 of the DER certificate, exact header and
// claims, a fresh jti each time, a lifetime of at most 600 s), the token
// request body of a certificate account, and a table of configuration
// errors, each naming the absolute file path and the fix. Keys and
// certificates are made at run time (helper_test_keys.h).

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "client_assertion.h"
#include "config.h"
#include "helper_test_keys.h"
#include "helper_test_util.h"
#include "token_endpoint.h"

namespace xoauth2::helper {
namespace {

using json = nlohmann::json;
using testing::KeyKind;
using testing::MakeTestKeys;
using testing::TempDir;

constexpr std::int64_t kNow = 1700000000;
constexpr const char* kTokenUrl =
    "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/"
    "token";
constexpr const char* kClientId = "11111111-2222-3333-4444-555555555555";

// Decodes base64url without padding; the test's own, independent path.
std::string DecodeBase64Url(std::string text) {
  for (char& c : text) {
    if (c == '-')
      c = '+';
    else if (c == '_')
      c = '/';
  }
  std::size_t padding = (4 - text.size() % 4) % 4;
  text.append(padding, '=');
  std::string out(text.size() / 4 * 3, '\0');
  int length = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                               reinterpret_cast<unsigned char*>(text.data()),
                               static_cast<int>(text.size()));
  EXPECT_GE(length, 0) << text;
  out.resize(static_cast<std::size_t>(std::max(length, 0)) - padding);
  return out;
}

std::vector<std::string> SplitJwt(const std::string& jwt) {
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (std::size_t dot; (dot = jwt.find('.', start)) != std::string::npos;) {
    parts.push_back(jwt.substr(start, dot - start));
    start = dot + 1;
  }
  parts.push_back(jwt.substr(start));
  return parts;
}

// The public key of the PEM certificate `pem`; the caller frees it.
EVP_PKEY* PublicKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  EVP_PKEY* key = X509_get_pubkey(certificate);
  X509_free(certificate);
  return key;
}

// True if `signature` over `input` verifies as `alg` with `key`; PS256 is
// checked strictly: MGF1 SHA-256 and a salt as long as the digest.
bool Verifies(EVP_PKEY* key, AssertionAlg alg, const std::string& input,
              const std::string& signature) {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  EVP_PKEY_CTX* key_context = nullptr;
  int rc =
      EVP_DigestVerifyInit(context, &key_context, EVP_sha256(), nullptr, key);
  if (rc == 1 && alg == AssertionAlg::kPs256) {
    EVP_PKEY_CTX_set_rsa_padding(key_context, RSA_PKCS1_PSS_PADDING);
    EVP_PKEY_CTX_set_rsa_pss_saltlen(key_context, RSA_PSS_SALTLEN_DIGEST);
    EVP_PKEY_CTX_set_rsa_mgf1_md(key_context, EVP_sha256());
  }
  if (rc == 1) {
    rc = EVP_DigestVerify(
        context, reinterpret_cast<const unsigned char*>(signature.data()),
        signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
        input.size());
  }
  EVP_MD_CTX_free(context);
  ERR_clear_error();
  return rc == 1;
}

std::string Sha256Base64Url(const std::vector<unsigned char>& bytes) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(bytes.data(), bytes.size(), digest, &length, EVP_sha256(),
             nullptr);
  return Base64Url(std::span<const unsigned char>(digest, length));
}

// Writes the RSA test certificate and key into `dir`; loads them.
std::shared_ptr<const ClientCertificate> LoadTestCertificate(
    const TempDir& dir) {
  const testing::TestKeys& keys = MakeTestKeys(KeyKind::kRsa2048);
  auto loaded =
      ClientCertificate::Load(dir.Write("c.pem", keys.certificate_pem),
                              dir.Write("k.pem", keys.key_pem));
  EXPECT_TRUE(loaded) << loaded.error().message;
  return loaded ? *loaded : nullptr;
}

bool IsUuidV4(const std::string& text) {
  static const std::regex kUuid(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  return std::regex_match(text, kUuid);
}

struct Base64Case {
  std::vector<unsigned char> bytes;
  std::string encoded;
};

TEST(HelperClientAssertion, Base64UrlHasNoPaddingAndUrlAlphabet) {
  const Base64Case cases[] = {
      {{}, ""},
      {{'f'}, "Zg"},
      {{'f', 'o'}, "Zm8"},
      {{'f', 'o', 'o'}, "Zm9v"},
      {{0xfb, 0xff}, "-_8"},
      {{0xfb, 0xff, 0xbf}, "-_-_"},
  };
  for (const Base64Case& c : cases)
    EXPECT_EQ(Base64Url(c.bytes), c.encoded);
}

TEST(HelperClientAssertion, RandomUuidIsVersion4AndFresh) {
  auto first = RandomUuid();
  auto second = RandomUuid();
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(IsUuidV4(*first)) << *first;
  EXPECT_TRUE(IsUuidV4(*second)) << *second;
  EXPECT_NE(*first, *second);
}

// The JWT `parts` verify with the certificate's key as `alg` only, and
// not once the signed input changes.
void ExpectSignedOnlyAs(AssertionAlg alg, const std::string& certificate_pem,
                        const std::vector<std::string>& parts) {
  EVP_PKEY* key = PublicKey(certificate_pem);
  std::string input = parts[0] + "." + parts[1];
  std::string signature = DecodeBase64Url(parts[2]);
  AssertionAlg other =
      alg == AssertionAlg::kPs256 ? AssertionAlg::kRs256 : AssertionAlg::kPs256;
  EXPECT_TRUE(Verifies(key, alg, input, signature));
  EXPECT_FALSE(Verifies(key, other, input, signature));
  EXPECT_FALSE(Verifies(key, alg, input + "x", signature));
  EVP_PKEY_free(key);
}

class HelperAssertionAlg : public ::testing::TestWithParam<AssertionAlg> {};

// The assertion verifies with the certificate's key for its own alg only,
// and carries exactly the header and claims Microsoft requires.
TEST_P(HelperAssertionAlg, SignedJwtVerifiesWithCertificate) {
  TempDir dir;
  auto certificate = LoadTestCertificate(dir);
  ASSERT_TRUE(certificate);
  auto jwt = BuildClientAssertion(*certificate, GetParam(), kTokenUrl,
                                  kClientId, kNow);
  ASSERT_TRUE(jwt) << jwt.error();
  std::vector<std::string> parts = SplitJwt(jwt->Reveal());
  ASSERT_EQ(parts.size(), 3u);
  for (const std::string& part : parts)
    EXPECT_EQ(part.find_first_of("+/="), std::string::npos) << part;

  const testing::TestKeys& keys = MakeTestKeys(KeyKind::kRsa2048);
  ExpectSignedOnlyAs(GetParam(), keys.certificate_pem, parts);

  json header = json::parse(DecodeBase64Url(parts[0]));
  EXPECT_EQ(header,
            (json{{"alg", AssertionAlgName(GetParam())},
                  {"typ", "JWT"},
                  {"x5t#S256", Sha256Base64Url(keys.certificate_der)}}));
  json claims = json::parse(DecodeBase64Url(parts[1]));
  std::string jti = claims.value("jti", "");
  EXPECT_TRUE(IsUuidV4(jti)) << jti;
  EXPECT_EQ(claims, (json{{"aud", kTokenUrl},
                          {"iss", kClientId},
                          {"sub", kClientId},
                          {"jti", jti},
                          {"nbf", kNow},
                          {"iat", kNow},
                          {"exp", kNow + 600}}));
  EXPECT_LE(claims["exp"].get<std::int64_t>() - claims["iat"].get<int64_t>(),
            600);
}

// Every assertion has its own jti, so none can be replayed as another.
TEST_P(HelperAssertionAlg, JtiDiffersBetweenCalls) {
  TempDir dir;
  auto certificate = LoadTestCertificate(dir);
  ASSERT_TRUE(certificate);
  std::string jti[2];
  for (std::string& one : jti) {
    auto jwt = BuildClientAssertion(*certificate, GetParam(), kTokenUrl,
                                    kClientId, kNow);
    ASSERT_TRUE(jwt);
    one = json::parse(DecodeBase64Url(SplitJwt(jwt->Reveal())[1]))["jti"];
  }
  EXPECT_NE(jti[0], jti[1]);
}

INSTANTIATE_TEST_SUITE_P(Algs, HelperAssertionAlg,
                         ::testing::Values(AssertionAlg::kPs256,
                                           AssertionAlg::kRs256),
                         [](const auto& param_info) {
                           return std::string(
                               AssertionAlgName(param_info.param));
                         });

TEST(HelperClientAssertion, TraditionalRsaKeyLoadsAndThumbprints) {
  TempDir dir;
  const testing::TestKeys& keys = MakeTestKeys(KeyKind::kRsa2048);
  auto loaded =
      ClientCertificate::Load(dir.Write("c.pem", keys.certificate_pem),
                              dir.Write("k.pem", keys.traditional_pem));
  ASSERT_TRUE(loaded) << loaded.error().message;
  EXPECT_EQ((*loaded)->ThumbprintS256(), Sha256Base64Url(keys.certificate_der));

  unsigned char sha1[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(keys.certificate_der.data(), keys.certificate_der.size(), sha1,
             &length, EVP_sha1(), nullptr);
  char* hex = OPENSSL_buf2hexstr(sha1, static_cast<long>(length));
  std::string expected(hex);
  OPENSSL_free(hex);
  std::erase(expected, ':');
  EXPECT_EQ((*loaded)->ThumbprintSha1Hex(), expected);
}

// The form fields of `body`, percent-decoded.
std::map<std::string, std::string> FormFields(const std::string& body) {
  std::map<std::string, std::string> fields;
  CURL* curl = curl_easy_init();
  std::size_t start = 0;
  while (start <= body.size()) {
    std::size_t end = std::min(body.find('&', start), body.size());
    std::string pair = body.substr(start, end - start);
    std::size_t equals = pair.find('=');
    int length = 0;
    char* value =
        curl_easy_unescape(curl, pair.c_str() + equals + 1, 0, &length);
    fields[pair.substr(0, equals)] = std::string(value, length);
    curl_free(value);
    start = end + 1;
  }
  curl_easy_cleanup(curl);
  return fields;
}

// Client credentials with a certificate: an assertion, never a secret.
TEST(HelperClientAssertion, ClientCredentialsBodyCarriesAssertion) {
  TempDir dir;
  Account account = testing::TestAccount();
  account.client_secret = Secret();
  account.certificate = LoadTestCertificate(dir);
  ASSERT_TRUE(account.certificate);
  ASSERT_EQ(account.credential(), Credential::kCertificate);

  auto body = BuildTokenRequestBody(account, Secret());
  ASSERT_TRUE(body) << body.error();
  EXPECT_TRUE(body->text.Reveal().starts_with(
      "grant_type=client_credentials&client_id=" + account.client_id +
      "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-"
      "type%3Ajwt-bearer&client_assertion=ey"))
      << body->text.Reveal();
  auto fields = FormFields(body->text.Reveal());
  EXPECT_EQ(fields.size(), 5u);
  EXPECT_EQ(fields.count("client_secret"), 0u);
  EXPECT_EQ(fields["scope"], "https://outlook.office365.com/.default");
  json claims =
      json::parse(DecodeBase64Url(SplitJwt(fields["client_assertion"])[1]));
  EXPECT_EQ(claims["aud"], account.TokenUrl());
  EXPECT_EQ(claims["iss"], account.client_id);
}

// A confidential refresh_token client may authenticate with a certificate.
TEST(HelperClientAssertion, RefreshTokenBodyEndsWithAssertion) {
  TempDir dir;
  Account account = testing::TestAccount();
  account.grant = Grant::kRefreshToken;
  account.client_secret = Secret();
  account.certificate = LoadTestCertificate(dir);
  account.assertion_alg = AssertionAlg::kRs256;
  auto body = BuildTokenRequestBody(account, Secret("0.AR"));
  ASSERT_TRUE(body);
  auto fields = FormFields(body->text.Reveal());
  EXPECT_EQ(fields["refresh_token"], "0.AR");
  EXPECT_EQ(fields["client_assertion_type"],
            std::string(kJwtBearerAssertionType));
  EXPECT_EQ(fields.count("client_secret"), 0u);
  json header =
      json::parse(DecodeBase64Url(SplitJwt(fields["client_assertion"])[0]));
  EXPECT_EQ(header["alg"], "RS256");
}

// A config with one account; `credential` is spliced into it.
std::string CertificateConfig(const std::string& credential,
                              const std::string& grant = "client_credentials") {
  return R"({"socket": "/tmp/helper-test/token.sock", "accounts": [
      {"mailbox": "relay@example.com", "tenant": "contoso.onmicrosoft.com",
       "client_id": "11111111-2222-3333-4444-555555555555",
       "grant": ")" +
         grant + "\", " + credential + "}]}";
}

std::string Files(const std::string& certificate, const std::string& key) {
  return R"("certificate_file": ")" + certificate +
         R"(", "private_key_file": ")" + key + "\"";
}

TEST(HelperCertificateConfig, ValidCertificateAccounts) {
  TempDir dir;
  const testing::TestKeys& keys = MakeTestKeys(KeyKind::kRsa2048);
  std::string files = Files(dir.Write("c.pem", keys.certificate_pem),
                            dir.Write("k.pem", keys.key_pem));

  auto config = ParseConfig(CertificateConfig(files), "/c.json");
  ASSERT_TRUE(config) << config.error();
  const Account& account = config->accounts[0];
  EXPECT_EQ(account.credential(), Credential::kCertificate);
  EXPECT_EQ(account.assertion_alg, AssertionAlg::kPs256);
  EXPECT_TRUE(account.client_secret.empty());
  EXPECT_EQ(account.certificate->ThumbprintS256(),
            Sha256Base64Url(keys.certificate_der));

  auto rs256 = ParseConfig(
      CertificateConfig(files + R"(, "assertion_alg": "RS256")"), "/c.json");
  ASSERT_TRUE(rs256) << rs256.error();
  EXPECT_EQ(rs256->accounts[0].assertion_alg, AssertionAlg::kRs256);

  std::string refresh = dir.Write("r", "0.AR");
  auto delegated = ParseConfig(
      CertificateConfig(files + R"(, "refresh_token_file": ")" + refresh + "\"",
                        "refresh_token"),
      "/c.json");
  ASSERT_TRUE(delegated) << delegated.error();
  EXPECT_EQ(delegated->accounts[0].credential(), Credential::kCertificate);
}

struct CertificateBadCase {
  const char* name;
  std::string credential;             // spliced into the account
  std::vector<std::string> expected;  // substrings of the message
};

// Every refused certificate configuration, with the words that must
// appear; paths are absolute paths in a fresh directory.
std::vector<CertificateBadCase> CertificateBadCases(const TempDir& dir) {
  const testing::TestKeys& rsa = MakeTestKeys(KeyKind::kRsa2048);
  const testing::TestKeys& other = MakeTestKeys(KeyKind::kRsa2048, 1);
  const testing::TestKeys& ec = MakeTestKeys(KeyKind::kEcP256);
  const testing::TestKeys& small = MakeTestKeys(KeyKind::kRsa1024);
  std::string cert = dir.Write("c.pem", rsa.certificate_pem);
  std::string key = dir.Write("k.pem", rsa.key_pem);
  std::string der = dir.Write("c.der", std::string(rsa.certificate_der.begin(),
                                                   rsa.certificate_der.end()));
  std::string junk = dir.Write("junk.pem", "not a pem file\n");
  std::string encrypted = dir.Write("enc.pem", rsa.encrypted_key_pem);
  std::string other_key = dir.Write("other.pem", other.key_pem);
  std::string ec_cert = dir.Write("ec-c.pem", ec.certificate_pem);
  std::string ec_key = dir.Write("ec-k.pem", ec.key_pem);
  std::string small_cert = dir.Write("s-c.pem", small.certificate_pem);
  std::string small_key = dir.Write("s-k.pem", small.key_pem);
  std::string none = dir.path() + "/none.pem";
  return {
      {"CertificateMissing",
       Files(none, key),
       {"accounts[0].certificate_file cannot be used: cannot open " + none,
        "No such file"}},
      {"CertificateIsDirectory",
       Files(dir.path(), key),
       {"accounts[0].certificate_file", dir.path() + " is not a regular"}},
      {"CertificateNotPem",
       Files(junk, key),
       {"accounts[0].certificate_file", junk + " holds no PEM certificate"}},
      {"CertificateIsDer",
       Files(der, key),
       {der + " holds no PEM certificate", "openssl x509"}},
      {"KeyMissing",
       Files(cert, none),
       {"accounts[0].private_key_file cannot be used: cannot open " + none}},
      {"KeyNotPem",
       Files(cert, junk),
       {"accounts[0].private_key_file", junk + " holds no PEM private key"}},
      {"KeyIsCertificate",
       Files(cert, cert),
       {"accounts[0].private_key_file", cert + " holds no PEM private key"}},
      {"KeyEncrypted",
       Files(cert, encrypted),
       {encrypted + " holds an encrypted private key", "unencrypted"}},
      {"KeyDoesNotMatch",
       Files(cert, other_key),
       {"accounts[0].private_key_file",
        "the private key in " + other_key +
            " does not match the certificate in " + cert}},
      {"KeyNotRsa",
       Files(ec_cert, ec_key),
       {ec_key + " holds EC key", "need an RSA key"}},
      {"KeyTooSmall",
       Files(small_cert, small_key),
       {small_key + " holds a 1024-bit RSA key; use at least 2048 bits"}},
      {"CertificateWithoutKey",
       R"("certificate_file": ")" + cert + "\"",
       {"accounts[0].private_key_file is missing"}},
      {"KeyWithoutCertificate",
       R"("private_key_file": ")" + key + "\"",
       {"accounts[0].certificate_file is missing"}},
      {"CertificateAndSecret",
       Files(cert, key) + R"(, "client_secret": "s")",
       {"accounts[0].client_secret and accounts[0].certificate_file are "
        "both set; keep only one"}},
      {"CertificateAndSecretFile",
       Files(cert, key) + R"(, "client_secret_file": "/x")",
       {"accounts[0].client_secret_file and accounts[0].certificate_file"}},
      {"CertificateRelative",
       Files("c.pem", key),
       {"accounts[0].certificate_file must be an absolute path"}},
      {"AlgUnknown",
       Files(cert, key) + R"(, "assertion_alg": "ES256")",
       {"accounts[0].assertion_alg is \"ES256\"; use PS256"}},
      {"AlgWithoutCertificate",
       R"("client_secret": "s", "assertion_alg": "RS256")",
       {"accounts[0].assertion_alg is set but certificate_file is not"}},
  };
}

TEST(HelperCertificateConfig, BadConfigurationsNamePathAndFix) {
  TempDir dir;
  const std::string path = "/etc/xoauth2-relay/config.json";
  std::string key_body = MakeTestKeys(KeyKind::kRsa2048).key_pem.substr(40, 40);
  for (const CertificateBadCase& bad : CertificateBadCases(dir)) {
    SCOPED_TRACE(bad.name);
    ERR_clear_error();  // earlier tests in this thread may have left some
    auto config = ParseConfig(CertificateConfig(bad.credential), path);
    ASSERT_FALSE(config) << "accepted: " << bad.credential;
    EXPECT_TRUE(config.error().starts_with(path + ": ")) << config.error();
    for (const std::string& part : bad.expected) {
      EXPECT_NE(config.error().find(part), std::string::npos)
          << "message: " << config.error() << "\nmissing: " << part;
    }
    EXPECT_EQ(config.error().find(key_body), std::string::npos);
    EXPECT_EQ(ERR_peek_error(), 0u) << "OpenSSL error queue left dirty";
  }
}

}  // namespace
}  // namespace xoauth2::helper
