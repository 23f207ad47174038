// SPDX-License-Identifier: MIT
//
// Unit tests of the token endpoint client (token_endpoint.h) and secret
// files (secret_file.h): percent-encoding of secrets with ~ + / =, which
// fields each grant sends (F06 scope always, F12 secret only when set),
// atomic refresh token replacement with mode 0600 under any umask (F04),
// size limits at and one byte past the limit (secret files written, token
// endpoint answers parsed, deep JSON nesting), and transport limits: only
// https, bounded time on a silent peer (F14).

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "helper_test_util.h"
#include "secret_file.h"
#include "token_endpoint.h"

namespace xoauth2::helper {
namespace {

using testing::TempDir;
using testing::TestAccount;

struct EncodeCase {
  const char* name;
  std::string value;
  std::string encoded;
};

class HelperFormEncoding : public ::testing::TestWithParam<EncodeCase> {};

TEST_P(HelperFormEncoding, PercentEncodesValue) {
  FormField fields[] = {{"client_secret", GetParam().value}};
  auto body = EncodeForm(fields);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->text.Reveal(), "client_secret=" + GetParam().encoded);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperFormEncoding,
    ::testing::Values(EncodeCase{"Unreserved", "Ab9-._~", "Ab9-._~"},
                      EncodeCase{"Plus", "a+b", "a%2Bb"},
                      EncodeCase{"Slash", "a/b", "a%2Fb"},
                      EncodeCase{"Equals", "a==", "a%3D%3D"},
                      EncodeCase{"AzureSecret",
                                 "Xy8Q~abc+/d=", "Xy8Q~abc%2B%2Fd%3D"},
                      EncodeCase{"AmpersandSpace", "a&b c", "a%26b%20c"},
                      EncodeCase{"Percent", "100%", "100%25"},
                      EncodeCase{"Utf8", "\xc3\xa9", "%C3%A9"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HelperTokenEndpoint, ClientCredentialsBody) {
  Account account = TestAccount();
  account.client_secret = Secret("Xy8Q~a+b/c=");
  auto body = BuildTokenRequestBody(account, Secret());
  ASSERT_TRUE(body);
  EXPECT_EQ(body->text.Reveal(),
            "grant_type=client_credentials"
            "&client_id=11111111-2222-3333-4444-555555555555"
            "&client_secret=Xy8Q~a%2Bb%2Fc%3D"
            "&scope=https%3A%2F%2Foutlook.office365.com%2F.default");
}

// F06 and F12: scope always; a secret only for a confidential client.
TEST(HelperTokenEndpoint, RefreshTokenBodyPublicAndConfidential) {
  Account account = TestAccount();
  account.grant = Grant::kRefreshToken;
  account.client_secret = Secret();
  account.scope = DefaultScope(Cloud::kGlobal, Grant::kRefreshToken);
  std::string expected =
      "grant_type=refresh_token"
      "&client_id=11111111-2222-3333-4444-555555555555"
      "&refresh_token=0.AR%2Bx%2Fy%3D"
      "&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send%20offline_access";

  auto public_body = BuildTokenRequestBody(account, Secret("0.AR+x/y="));
  ASSERT_TRUE(public_body);
  EXPECT_EQ(public_body->text.Reveal(), expected);

  account.client_secret = Secret("s~");
  auto confidential = BuildTokenRequestBody(account, Secret("0.AR+x/y="));
  ASSERT_TRUE(confidential);
  EXPECT_EQ(confidential->text.Reveal(), expected + "&client_secret=s~");
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Sets the umask for the lifetime of the object.
class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : old_(umask(mask)) {}
  ~ScopedUmask() { umask(old_); }

 private:
  mode_t old_;
};

class HelperAtomicWrite : public ::testing::TestWithParam<mode_t> {};

// F04: the new refresh token replaces the old file atomically, mode 0600
// whatever the umask, and no temporary file is left.
TEST_P(HelperAtomicWrite, ReplacesWithMode0600) {
  TempDir dir;
  std::string file = dir.Write("relay.refresh", "old-token\n", 0644);
  ScopedUmask mask(GetParam());

  auto written = WriteSecretFileAtomically(file, Secret("new+token/="));
  ASSERT_TRUE(written) << written.error();

  struct stat info {};
  ASSERT_EQ(stat(file.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_EQ(ReadAll(file), "new+token/=\n");
  auto read = ReadSecretFile(file);
  ASSERT_TRUE(read);
  EXPECT_EQ(read->Reveal(), "new+token/=");
  std::size_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}

INSTANTIATE_TEST_SUITE_P(Umasks, HelperAtomicWrite,
                         ::testing::Values(mode_t{0}, mode_t{077},
                                           mode_t{022}));

TEST(HelperAtomicWrite, CreatesMissingFile) {
  TempDir dir;
  std::string file = dir.path() + "/fresh.refresh";
  ASSERT_TRUE(WriteSecretFileAtomically(file, Secret("t")));
  EXPECT_EQ(ReadAll(file), "t\n");
}

TEST(HelperAtomicWrite, FailureNamesPathAndLeavesNothing) {
  TempDir dir;
  std::string file = dir.path() + "/no-such-dir/relay.refresh";
  auto written = WriteSecretFileAtomically(file, Secret("t"));
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().find(file), std::string::npos);
  EXPECT_EQ(written.error().find("t\n"), std::string::npos);
}

TEST(HelperSecretFile, EmptyAndMissingFilesRefused) {
  TempDir dir;
  std::string empty = dir.Write("empty", " \n");
  EXPECT_NE(ReadSecretFile(empty).error().find("is empty"), std::string::npos);
  EXPECT_NE(ReadSecretFile(dir.path() + "/none").error().find("cannot open"),
            std::string::npos);
  EXPECT_NE(ReadSecretFile(dir.path()).error().find("not a regular file"),
            std::string::npos);
}

// The writer keeps the reader's limit: a value whose file (with its
// newline) is exactly kMaxSecretFileBytes is written and read back; one
// byte more is refused and the old file stays, with no temporary left.
TEST(HelperSecretFileLimit, WritesUpToTheLimitTheReaderAccepts) {
  TempDir dir;
  std::string file = dir.Write("relay.refresh", "old-token\n");
  std::string at(kMaxSecretFileBytes - 1, 'A');

  ASSERT_TRUE(WriteSecretFileAtomically(file, Secret(at)));
  EXPECT_EQ(std::filesystem::file_size(file), kMaxSecretFileBytes);
  auto read = ReadSecretFile(file);
  ASSERT_TRUE(read) << read.error();
  EXPECT_EQ(read->Reveal(), at);

  auto refused = WriteSecretFileAtomically(file, Secret(at + "B"));
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().find("cannot replace " + file +
                                 ": the new value with its newline is 65537 "
                                 "bytes, over the 65536-byte limit"),
            std::string::npos)
      << refused.error();
  EXPECT_EQ(ReadSecretFile(file)->Reveal(), at);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
}

// A success body of exactly `size` bytes: valid JSON padded with spaces.
std::string SuccessBodyOfSize(std::size_t size) {
  std::string body =
      R"({"token_type":"Bearer","expires_in":3599,"access_token":"at.1"})";
  return body + std::string(size - body.size(), ' ');
}

// The parser's side of the 64 KiB answer limit (the transport's side is
// tests/e2e/test_limits.py): exactly the limit is used, one byte more is
// a temporary failure naming the limit.
TEST(HelperTokenResponseLimit, ExactlyTheLimitIsUsedOneMoreIsRefused) {
  std::string at = SuccessBodyOfSize(kMaxTokenResponseBytes);
  auto grant = ParseTokenResponse(HttpAnswer{200, at, {}}, "t", SecretMask());
  ASSERT_TRUE(grant) << grant.error().message;
  EXPECT_EQ(grant->access_token.Reveal(), "at.1");

  std::string past = SuccessBodyOfSize(kMaxTokenResponseBytes + 1);
  auto refused =
      ParseTokenResponse(HttpAnswer{200, past, {}}, "t", SecretMask());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().failure_class, FailureClass::kTemporary);
  EXPECT_NE(refused.error().message.find("exceeds 64 KiB"), std::string::npos)
      << refused.error().message;
}

// Nesting as deep as the size limit allows: no stack overflow, just a
// temporary failure (nlohmann::json neither parses nor destroys
// recursively).
TEST(HelperTokenResponseLimit, DeepNestingAtTheSizeLimitFailsCleanly) {
  std::string prefix = R"({"access_token":)";
  std::size_t depth = (kMaxTokenResponseBytes - prefix.size() - 1) / 2;
  std::string body =
      prefix + std::string(depth, '[') + std::string(depth, ']') + "}";
  ASSERT_LE(body.size(), kMaxTokenResponseBytes);
  auto result =
      ParseTokenResponse(HttpAnswer{200, body, {}}, "t", SecretMask());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().failure_class, FailureClass::kTemporary);
}

TEST(HelperTokenEndpoint, PlainHttpRefused) {
  Account account = TestAccount();
  account.authority = "http://127.0.0.1:9";
  CurlTokenFetcher fetcher(HttpSettings{});
  auto result = fetcher.Fetch(account, Secret());
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().failure_class, FailureClass::kTemporary);
  EXPECT_EQ(result.error().http_status, 0);
  EXPECT_NE(result.error().message.find("http://127.0.0.1:9/"),
            std::string::npos)
      << result.error().message;
}

// F14: a peer that accepts the connection and never answers costs at most
// request_timeout_seconds. The kernel completes the TCP handshake for the
// listening socket; nobody ever reads.
TEST(HelperTokenEndpoint, F14SilentEndpointTimesOut) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(
      bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t length = sizeof address;
  getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);

  Account account = TestAccount();
  account.authority =
      "https://127.0.0.1:" + std::to_string(ntohs(address.sin_port));
  HttpSettings settings;
  settings.connect_timeout_seconds = 1;
  settings.request_timeout_seconds = 1;
  CurlTokenFetcher fetcher(settings);

  auto started = std::chrono::steady_clock::now();
  auto result = fetcher.Fetch(account, Secret());
  auto took = std::chrono::steady_clock::now() - started;
  close(listener);

  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().failure_class, FailureClass::kTemporary);
  EXPECT_NE(result.error().message.find("within 1 s"), std::string::npos)
      << result.error().message;
  EXPECT_LT(took, std::chrono::seconds(5));
}

}  // namespace
}  // namespace xoauth2::helper
