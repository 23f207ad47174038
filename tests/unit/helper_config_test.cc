// SPDX-License-Identifier: MIT
//
// Unit tests of the token-helper configuration (config.h): a valid minimal
// file, every kind of malformed file (table-driven: each message must name
// the absolute path and the field), JSON syntax errors with line and
// column (F03), example placeholders refused by name (F20), size limits
// tested at exactly the limit and one byte past it (the file itself, and
// the secret, refresh token, certificate and key files it names), deep
// JSON nesting, per-account refresh margins, per-account
// allowed_users/allowed_groups and Google accounts.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <tuple>

#include "config.h"
#include "helper_test_keys.h"
#include "helper_test_util.h"
#include "secret_file.h"

namespace xoauth2::helper {
namespace {

using testing::TempDir;

// A valid account object; `extra` is spliced in before the closing brace.
std::string AccountJson(const std::string& extra = "") {
  return R"({"mailbox": "relay@example.com",
             "tenant": "contoso.onmicrosoft.com",
             "client_id": "11111111-2222-3333-4444-555555555555",
             "grant": "client_credentials",
             "client_secret": "s3cr~t+/=")" +
         extra + "}";
}

std::string ConfigJson(const std::string& accounts,
                       const std::string& top = "") {
  return R"({"socket": "/tmp/helper-test/token.sock",
             "allowed_users": ["root", 0],)" +
         top + R"( "accounts": [)" + accounts + "]}";
}

TEST(HelperConfig, MinimalClientCredentialsIsValid) {
  auto config = ParseConfig(ConfigJson(AccountJson()), "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  ASSERT_EQ(config->accounts.size(), 1u);
  const Account& account = config->accounts[0];
  EXPECT_EQ(account.name, "relay@example.com");
  EXPECT_EQ(account.client_secret.Reveal(), "s3cr~t+/=");
  EXPECT_EQ(account.scope, "https://outlook.office365.com/.default");
  EXPECT_EQ(account.TokenUrl(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/"
            "oauth2/v2.0/token");
  EXPECT_EQ(config->allowed_uids, (std::vector<uid_t>{0, 0}));
  EXPECT_EQ(config->connect_timeout_seconds, 10);
  EXPECT_EQ(config->request_timeout_seconds, 30);
  EXPECT_EQ(config->refresh_margin_seconds, 600);
  EXPECT_NE(config->FindAccount("RELAY@example.com"), nullptr);
  EXPECT_EQ(config->FindAccount("other@example.com"), nullptr);
}

TEST(HelperConfig, CommentsAllowed) {
  std::string text =
      "// the helper\n" + ConfigJson(AccountJson()) + "\n/* trailing */\n";
  auto config = ParseConfig(text, "/etc/x/config.json");
  EXPECT_TRUE(config) << config.error();
}

TEST(HelperConfig, RefreshTokenPublicClientUsGov) {
  TempDir dir;
  std::string refresh = dir.Write("relay.refresh", "0.AAA-refresh\n");
  std::string account = R"({"mailbox": "relay@example.com", "cloud": "usgov",
      "tenant": "organizations", "client_id": "abc",
      "grant": "refresh_token", "refresh_token_file": ")" +
                        refresh + R"("})";
  auto config = ParseConfig(ConfigJson(account, R"("allowed_groups": [0],)"),
                            "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  const Account& parsed = config->accounts[0];
  EXPECT_TRUE(parsed.client_secret.empty());
  EXPECT_EQ(parsed.authority, "https://login.microsoftonline.us");
  EXPECT_EQ(parsed.scope,
            "https://outlook.office365.us/SMTP.Send offline_access");
  EXPECT_EQ(config->allowed_gids, (std::vector<gid_t>{0}));
}

TEST(HelperConfig, SecretFileReadAndTrimmed) {
  TempDir dir;
  std::string secret = dir.Write("relay.secret", "  a~b+c/d=\r\n");
  std::string account = AccountJson();
  account.replace(account.find(R"("client_secret": "s3cr~t+/=")"),
                  std::string(R"("client_secret": "s3cr~t+/=")").size(),
                  R"("client_secret_file": ")" + secret + "\"");
  auto config = ParseConfig(ConfigJson(account), "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->accounts[0].client_secret.Reveal(), "a~b+c/d=");
}

TEST(HelperConfig, AuthorityOverrideLosesTrailingSlash) {
  auto config = ParseConfig(
      ConfigJson(AccountJson(R"(, "authority": "https://127.0.0.1:8443/")")),
      "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->accounts[0].TokenUrl(),
            "https://127.0.0.1:8443/contoso.onmicrosoft.com/oauth2/v2.0/token");
}

struct BadCase {
  const char* name;
  std::string text;
  std::vector<std::string> expected;  // substrings of the message
};

std::vector<BadCase> BadCases() {
  std::string two = AccountJson() + "," +
                    R"({"mailbox": "RELAY@example.com", "tenant": "t",
                        "client_id": "c", "grant": "client_credentials",
                        "client_secret": "x"})";
  return {
      {"UnknownTopKey",
       ConfigJson(AccountJson(), R"("sockt": "/x",)"),
       {"unknown key \"sockt\" in the top level"}},
      {"UnknownAccountKey",
       ConfigJson(AccountJson(R"(, "clientid": "x")")),
       {"unknown key \"clientid\" in accounts[0]"}},
      {"TimeoutAsString",
       ConfigJson(AccountJson(), R"("connect_timeout_seconds": "10",)"),
       {"connect_timeout_seconds must be a whole number", "not string"}},
      {"MarginBelowMinimum",
       ConfigJson(AccountJson(), R"("refresh_margin_seconds": 300,)"),
       {"refresh_margin_seconds is 300; it must be between 600 and 3000"}},
      {"AccountMarginBelowMinimum",
       ConfigJson(AccountJson(R"(, "refresh_margin_seconds": 0)")),
       {"accounts[0].refresh_margin_seconds is 0"}},
      {"WarnDaysOutOfRange",
       ConfigJson(AccountJson(), R"("refresh_token_warn_days": 90,)"),
       {"refresh_token_warn_days is 90; it must be between 1 and 80"}},
      {"ProviderUnknown",
       ConfigJson(AccountJson(R"(, "provider": "yahoo")")),
       {"accounts[0].provider is \"yahoo\"; use microsoft"}},
      {"GoogleClientCredentials",
       ConfigJson(R"({"provider": "google", "mailbox": "a@gmail.com",
           "client_id": "c", "client_secret": "s",
           "grant": "client_credentials"})"),
       {"accounts[0].grant is client_credentials but provider is google",
        "use grant refresh_token"}},
      {"GoogleWithTenant",
       ConfigJson(R"({"provider": "google", "mailbox": "a@gmail.com",
           "tenant": "t", "client_id": "c", "client_secret": "s",
           "grant": "refresh_token", "refresh_token_file": "/x"})"),
       {"accounts[0].tenant is set but provider is google"}},
      {"GoogleWithoutSecret",
       ConfigJson(R"({"provider": "google", "mailbox": "a@gmail.com",
           "client_id": "c", "grant": "refresh_token",
           "refresh_token_file": "/x"})"),
       {"accounts[0].client_secret_file is missing; a google account"}},
      {"TimeoutOutOfRange",
       ConfigJson(AccountJson(), R"("request_timeout_seconds": 0,)"),
       {"request_timeout_seconds is 0"}},
      {"MailboxMissing",
       ConfigJson(R"({"tenant": "t", "client_id": "c",
                      "grant": "client_credentials", "client_secret": "x"})"),
       {"accounts[0].mailbox is missing"}},
      {"TenantMissing",
       ConfigJson(R"({"mailbox": "a@b", "client_id": "c",
                      "grant": "client_credentials", "client_secret": "x"})"),
       {"accounts[0].tenant is missing"}},
      {"ClientIdWrongType",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": 5,
                      "grant": "client_credentials", "client_secret": "x"})"),
       {"accounts[0].client_id must be a string, not number"}},
      {"GrantUnknown",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
                      "grant": "password", "client_secret": "x"})"),
       {"accounts[0].grant is \"password\""}},
      {"MailboxInvalid",
       ConfigJson(R"({"mailbox": "relay", "tenant": "t", "client_id": "c",
                      "grant": "client_credentials", "client_secret": "x"})"),
       {"accounts[0].mailbox is \"relay\", not a mailbox"}},
      {"DuplicateMailbox",
       ConfigJson(two),
       {"accounts[1].mailbox RELAY@example.com is already used by "
        "accounts[0]"}},
      {"UnknownCloud",
       ConfigJson(AccountJson(R"(, "cloud": "germany")")),
       {"accounts[0].cloud is \"germany\", an unknown cloud"}},
      {"BothSecrets",
       ConfigJson(AccountJson(R"(, "client_secret_file": "/x")")),
       {"accounts[0].client_secret and accounts[0].client_secret_file are "
        "both set"}},
      {"AuthorityNotHttps",
       ConfigJson(AccountJson(R"(, "authority": "http://login.example")")),
       {"accounts[0].authority is http://login.example; it must be an "
        "https:// URL"}},
      {"PlaceholderTenant",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "REPLACE-WITH-TENANT-ID",
                      "client_id": "c", "grant": "client_credentials",
                      "client_secret": "x"})"),
       {"accounts[0].tenant is still the example placeholder "
        "REPLACE-WITH-TENANT-ID; put your tenant ID or domain there"}},
      {"PlaceholderClientId",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t",
                      "client_id": "00000000-0000-0000-0000-000000000000",
                      "grant": "client_credentials", "client_secret": "x"})"),
       {"accounts[0].client_id is still the example placeholder "
        "00000000-0000-0000-0000-000000000000"}},
      {"PlaceholderProxyNotEchoed",
       ConfigJson(AccountJson(),
                  R"("proxy": "http://REPLACE-WITH-USER:Pw-SECRET@p:3128",)"),
       {"proxy is still the example placeholder;"}},
      {"PlaceholderSecretNotEchoed",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
                      "grant": "client_credentials",
                      "client_secret": "REPLACE-WITH-SECRET"})"),
       {"accounts[0].client_secret is still the example placeholder;"}},
      {"ClientCredentialsWithoutSecret",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
                      "grant": "client_credentials"})"),
       {"accounts[0].client_secret_file is missing"}},
      {"ClientCredentialsAtCommonTenant",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "common", "client_id": "c",
                      "grant": "client_credentials", "client_secret": "x"})"),
       {"accounts[0].tenant is common"}},
      {"RefreshWithoutFile",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
                      "grant": "refresh_token"})"),
       {"accounts[0].refresh_token_file is missing"}},
      {"RefreshFileAbsent",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
                      "grant": "refresh_token",
                      "refresh_token_file": "/nonexistent/relay.refresh"})"),
       {"accounts[0].refresh_token_file", "/nonexistent/relay.refresh",
        "No such file"}},
      {"SecretFileRelative",
       ConfigJson(R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
                      "grant": "client_credentials",
                      "client_secret_file": "relay.secret"})"),
       {"accounts[0].client_secret_file must be an absolute path"}},
      {"UnknownUser",
       ConfigJson(AccountJson(), R"("allowed_groups": ["no-such-group-x"],)"),
       {"allowed_groups[0] names group \"no-such-group-x\", which does not "
        "exist"}},
      {"AccountUnknownUser",
       ConfigJson(AccountJson(R"(, "allowed_users": [0, "no-such-user-x"])")),
       {"accounts[0].allowed_users[1] names user \"no-such-user-x\", which "
        "does not exist on this system; create it or fix the name"}},
      {"AccountUnknownGroup",
       ConfigJson(AccountJson(R"(, "allowed_groups": ["no-such-group-x"])")),
       {"accounts[0].allowed_groups[0] names group \"no-such-group-x\""}},
      {"AccountUsersNotArray",
       ConfigJson(AccountJson(R"(, "allowed_users": "postfix")")),
       {"accounts[0].allowed_users must be an array, not string"}},
      {"SocketRelative",
       R"({"socket": "token.sock", "accounts": [)" + AccountJson() + "]}",
       {"socket must be an absolute path"}},
      {"AccountsEmpty",
       R"({"accounts": []})",
       {"accounts is missing or empty"}},
      {"TopLevelArray", "[1, 2]", {"the top level must be a JSON object"}},
      {"LogLevelUnknown",
       ConfigJson(AccountJson(), R"("log_level": "loud",)"),
       {"log_level is \"loud\""}},
  };
}

class HelperConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(HelperConfigBad, NamesPathAndField) {
  const std::string path = "/etc/xoauth2-relay/config.json";
  auto config = ParseConfig(GetParam().text, path);
  ASSERT_FALSE(config) << "accepted: " << GetParam().text;
  EXPECT_TRUE(config.error().starts_with(path + ": ")) << config.error();
  for (const std::string& part : GetParam().expected) {
    EXPECT_NE(config.error().find(part), std::string::npos)
        << "message: " << config.error() << "\nmissing: " << part;
  }
  EXPECT_EQ(config.error().find("s3cr~t"), std::string::npos);
  EXPECT_EQ(config.error().find("Pw-SECRET"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Table, HelperConfigBad,
                         ::testing::ValuesIn(BadCases()),
                         [](const auto& param_info) {
                           return std::string(param_info.param.name);
                         });

// F03: a missing comma is reported as path:line:column at the token that
// follows the place where the comma belongs.
TEST(HelperConfig, F03MissingCommaNamesLineAndColumn) {
  std::string text =
      "{\n"
      "  // token-helper configuration\n"
      "  \"socket\": \"/tmp/x.sock\",\n"
      "  \"accounts\": [\n"
      "    {\n"
      "      \"mailbox\": \"relay@example.com\"\n"
      "      \"tenant\": \"contoso.onmicrosoft.com\"\n"
      "    }\n"
      "  ]\n"
      "}\n";
  auto config = ParseConfig(text, "/abs/config.json");
  ASSERT_FALSE(config);
  EXPECT_TRUE(
      config.error().starts_with("/abs/config.json:7:7: syntax "
                                 "error: "))
      << config.error();
  EXPECT_NE(config.error().find("comma missing"), std::string::npos);
}

struct SyntaxCase {
  const char* name;
  std::string text;
  std::string position;
};

class HelperConfigSyntax : public ::testing::TestWithParam<SyntaxCase> {};

TEST_P(HelperConfigSyntax, Position) {
  auto config = ParseConfig(GetParam().text, "/c.json");
  ASSERT_FALSE(config);
  EXPECT_TRUE(config.error().starts_with("/c.json:" + GetParam().position +
                                         ": syntax error: "))
      << config.error();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperConfigSyntax,
    ::testing::Values(SyntaxCase{"MissingCommaInArray", "{\"a\": [1 2]}",
                                 "1:10"},
                      SyntaxCase{"UnexpectedEnd", "{\"a\": 1", "1:7"},
                      SyntaxCase{"TrailingComma", "{\"a\": 1,\n}", "2:1"},
                      SyntaxCase{"Empty", "", "1:1"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// A syntax error names the file, line, column and a fix, but never quotes
// the file: nlohmann's "last read: '...'" would show what follows an open
// quote, an inline client secret or a proxy password.
struct QuietSyntaxCase {
  const char* name;
  std::string text;
  std::string position;  // "line:column", or "" when none can be given
  std::string hint;      // part of the fix suggested
};

// Every fragment of the values planted in the cases below.
constexpr const char* kPlanted[] = {"Xy7", "SECRET", "PXSECRET", "99999"};

class HelperConfigSyntaxQuotesNothing
    : public ::testing::TestWithParam<QuietSyntaxCase> {};

TEST_P(HelperConfigSyntaxQuotesNothing, NamesPlaceNotContent) {
  const QuietSyntaxCase& c = GetParam();
  TempDir dir;
  std::string file = dir.Write("config.json", c.text);
  std::string where = file + ":" + c.position + (c.position.empty() ? "" : ":");
  auto parsed = ParseConfig(c.text, file);
  auto loaded = LoadConfig(file);
  auto socket = LoadSocketPath(file);
  ASSERT_FALSE(parsed);
  ASSERT_FALSE(loaded);
  ASSERT_FALSE(socket);
  for (const std::string& message :
       {parsed.error(), loaded.error(), socket.error()}) {
    EXPECT_TRUE(message.starts_with(where + " syntax error: ")) << message;
    EXPECT_NE(message.find(c.hint), std::string::npos) << message;
    EXPECT_EQ(message.find("last read"), std::string::npos) << message;
    for (const char* planted : kPlanted)
      EXPECT_EQ(message.find(planted), std::string::npos) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperConfigSyntaxQuotesNothing,
    ::testing::Values(
        QuietSyntaxCase{"SecretWithoutClosingQuote",
                        "{\"accounts\": [{\n"
                        "  \"client_secret\": \"Xy7~Q8.abc+/=def_SECRET\n"
                        "}]}\n",
                        "2:44", "closing quote"},
        QuietSyntaxCase{"SecretWithBadEscape",
                        "{\"accounts\": [{\n"
                        "  \"client_secret\": \"Xy7~Q8.a\\qbc_SECRET\"\n"
                        "}]}\n",
                        "2:30", "backslash"},
        QuietSyntaxCase{"SecretWithShortUnicodeEscape",
                        "{\"client_secret\": \"Xy7\\u12SECRET\"}", "1:24",
                        "backslash"},
        QuietSyntaxCase{"ProxyWithoutClosingQuote",
                        "{\n"
                        "  \"proxy\": \"http://u:PXSECRET@127.0.0.1:3128,\n"
                        "  \"accounts\": []\n"
                        "}\n",
                        "2:46", "closing quote"},
        QuietSyntaxCase{"KeyWithoutClosingQuote", "{\"Xy7SECRET\n: 1}", "1:12",
                        "closing quote"},
        QuietSyntaxCase{"SecretUnquoted", "{\"client_secret\": Xy7SECRET}",
                        "1:19", "double quotes"},
        QuietSyntaxCase{"SecretAfterMinus", "{\"client_secret\": -Xy7SECRET}",
                        "1:19", "digits"},
        QuietSyntaxCase{"SecretWithBadUtf8",
                        "{\"client_secret\": \"Xy7\xff_SECRET\"}", "1:23",
                        "UTF-8"},
        QuietSyntaxCase{"SecretInOpenComment",
                        "{\"accounts\": []} /* Xy7SECRET", "1:21", "*/"},
        QuietSyntaxCase{"NumberTooLarge",
                        "{\"refresh_margin_seconds\": 1e99999}", "",
                        "too large"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// A key given twice in one object is refused by name (the same key in
// two objects, such as two accounts' names, is fine).
TEST(HelperConfig, DuplicateKeyRefused) {
  std::string twice = ConfigJson(
      AccountJson(), R"("log_level": "debug", "log_level": "info",)");
  auto config = ParseConfig(twice, "/etc/x/config.json");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error(),
            "/etc/x/config.json: \"log_level\" is given twice in one object; "
            "only the later value would count: remove one of them");

  std::string two_accounts =
      ConfigJson(AccountJson() + "," +
                 R"({"name": "b", "mailbox": "b@example.com",
                     "tenant": "contoso.onmicrosoft.com", "client_id": "c",
                     "grant": "client_credentials", "client_secret": "x"})");
  config = ParseConfig(two_accounts, "/etc/x/config.json");
  EXPECT_TRUE(config) << config.error();

  std::string in_account = ConfigJson(
      R"({"mailbox": "a@example.com", "mailbox": "b@example.com",
          "tenant": "t", "client_id": "c", "grant": "client_credentials",
          "client_secret": "x"})");
  config = ParseConfig(in_account, "/etc/x/config.json");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("\"mailbox\" is given twice"),
            std::string::npos)
      << config.error();
}

TEST(HelperConfig, LoadMakesPathAbsolute) {
  TempDir dir;
  std::string file = dir.Write("config.json", ConfigJson(AccountJson()));
  std::string relative =
      std::filesystem::relative(file, std::filesystem::current_path());
  auto config = LoadConfig(relative);
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->path, file);
}

TEST(HelperConfig, LoadMissingFileNamesAbsolutePath) {
  TempDir dir;
  auto config = LoadConfig(dir.path() + "/./missing.json");
  ASSERT_FALSE(config);
  EXPECT_TRUE(config.error().starts_with(dir.path() + "/missing.json: "))
      << config.error();
}

// `text` followed by a JSON comment that makes it exactly `size` bytes.
std::string PadWithComment(const std::string& text, std::size_t size) {
  std::string open = "\n/*", close = "*/\n";
  std::size_t fill = size - text.size() - open.size() - close.size();
  return text + open + std::string(fill, 'x') + close;
}

// The configuration file itself: exactly 1 MiB (a valid file padded with
// a comment) loads, one byte more is refused naming the path and limit.
TEST(HelperConfigLimit, FileOfExactly1MiBLoadsOneMoreIsRefused) {
  TempDir dir;
  std::string valid = ConfigJson(AccountJson());
  std::string at = dir.Write("at.json", PadWithComment(valid, kMaxConfigBytes));
  std::string past =
      dir.Write("past.json", PadWithComment(valid, kMaxConfigBytes + 1));
  ASSERT_EQ(std::filesystem::file_size(at), 1048576u);

  auto loaded = LoadConfig(at);
  ASSERT_TRUE(loaded) << loaded.error();
  EXPECT_EQ(loaded->accounts.at(0).client_secret.Reveal(), "s3cr~t+/=");
  EXPECT_EQ(LoadSocketPath(at).value_or(""), "/tmp/helper-test/token.sock");

  for (const auto& refused :
       {LoadConfig(past).error(), LoadSocketPath(past).error()}) {
    EXPECT_TRUE(refused.starts_with(past + ": is larger than 1 MiB (1048576 "
                                           "bytes), the limit"))
        << refused;
  }
}

TEST(HelperConfigLimit, DirectoryIsNotARegularFile) {
  TempDir dir;
  auto config = LoadConfig(dir.path());
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error(), dir.path() +
                                ": is not a regular file; is this the "
                                "configuration file?");
}

// A configuration too deeply nested for a recursive parser: refused as
// not an object, no stack overflow (nlohmann::json parses and destroys
// without recursion), inside the 1 MiB limit.
TEST(HelperConfigLimit, DeepNestingAtTheSizeLimitIsRefusedCleanly) {
  TempDir dir;
  std::size_t depth = kMaxConfigBytes / 2;
  std::string file =
      dir.Write("deep.json", std::string(depth, '[') + std::string(depth, ']'));
  auto config = LoadConfig(file);
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find(file + ": the top level must be a JSON "
                                       "object"),
            std::string::npos)
      << config.error();
}

// One file an account points to, with how its content is made.
struct FileLimitCase {
  const char* name;
  const char* field;
  // The account's credential members, given the path of the file tested.
  std::string (*account)(const TempDir& dir, const std::string& path);
  // Valid content of exactly `size` bytes.
  std::string (*content)(std::size_t size);
};

std::string SecretAccount(const TempDir&, const std::string& path) {
  return R"("grant": "client_credentials", "client_secret_file": ")" + path +
         "\"";
}

std::string RefreshAccount(const TempDir&, const std::string& path) {
  return R"("grant": "refresh_token", "refresh_token_file": ")" + path + "\"";
}

const testing::TestKeys& Keys() {
  return testing::MakeTestKeys(testing::KeyKind::kRsa2048);
}

std::string CertificateAccount(const TempDir& dir, const std::string& path) {
  return R"("grant": "client_credentials", "certificate_file": ")" + path +
         R"(", "private_key_file": ")" + dir.Write("k.pem", Keys().key_pem) +
         "\"";
}

std::string KeyAccount(const TempDir& dir, const std::string& path) {
  return R"("grant": "client_credentials", "certificate_file": ")" +
         dir.Write("c.pem", Keys().certificate_pem) +
         R"(", "private_key_file": ")" + path + "\"";
}

// Token characters only, no newline: the largest realistic file.
std::string TokenChars(std::size_t size) {
  std::string token = "0.AR";
  token.resize(size, 'A');
  return token;
}

// A PEM block followed by blank lines (trimmed when read).
std::string PaddedPem(const std::string& pem, std::size_t size) {
  return pem + std::string(size - pem.size(), '\n');
}

std::string CertificateContent(std::size_t size) {
  return PaddedPem(Keys().certificate_pem, size);
}

std::string KeyContent(std::size_t size) {
  return PaddedPem(Keys().key_pem, size);
}

class HelperConfigFileLimit
    : public ::testing::TestWithParam<std::tuple<FileLimitCase, bool>> {};

// Exactly kMaxSecretFileBytes is read and used; one byte more is refused
// naming the field, the file and the limit.
TEST_P(HelperConfigFileLimit, ExactlyTheLimitIsReadOneMoreIsRefused) {
  const auto& [limit_case, past] = GetParam();
  TempDir dir;
  std::size_t size = kMaxSecretFileBytes + (past ? 1 : 0);
  std::string path = dir.Write("tested", limit_case.content(size));
  ASSERT_EQ(std::filesystem::file_size(path), size);
  std::string account =
      R"({"mailbox": "relay@example.com", "tenant": "t", "client_id": "c", )" +
      limit_case.account(dir, path) + "}";

  auto config = ParseConfig(ConfigJson(account), "/c.json");
  if (!past) {
    ASSERT_TRUE(config) << config.error();
    return;
  }
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find(std::string("accounts[0].") + limit_case.field),
            std::string::npos)
      << config.error();
  EXPECT_NE(config.error().find(path + " is larger than 65536 bytes, the "
                                       "limit for a secret file"),
            std::string::npos)
      << config.error();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperConfigFileLimit,
    ::testing::Combine(
        ::testing::Values(FileLimitCase{"ClientSecret", "client_secret_file",
                                        SecretAccount, TokenChars},
                          FileLimitCase{"RefreshToken", "refresh_token_file",
                                        RefreshAccount, TokenChars},
                          FileLimitCase{"Certificate", "certificate_file",
                                        CertificateAccount, CertificateContent},
                          FileLimitCase{"PrivateKey", "private_key_file",
                                        KeyAccount, KeyContent}),
        ::testing::Bool()),
    [](const auto& param_info) {
      return std::string(std::get<0>(param_info.param).name) +
             (std::get<1>(param_info.param) ? "PastLimit" : "AtLimit");
    });

TEST(HelperConfig, PlaceholderInSecretFileRefused) {
  TempDir dir;
  std::string secret = dir.Write("relay.secret", "REPLACE-WITH-SECRET-VALUE\n");
  std::string account = R"({"mailbox": "a@b", "tenant": "t", "client_id": "c",
      "grant": "client_credentials", "client_secret_file": ")" +
                        secret + "\"}";
  auto config = ParseConfig(ConfigJson(account), "/c.json");
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("still holds the example placeholder"),
            std::string::npos)
      << config.error();
}

// The global margin applies unless an account sets its own.
TEST(HelperConfig, RefreshMarginPerAccount) {
  std::string accounts =
      AccountJson(R"(, "refresh_margin_seconds": 1200)") + "," +
      R"({"mailbox": "b@example.com", "tenant": "t", "client_id": "c",
          "grant": "client_credentials", "client_secret": "x"})";
  auto config =
      ParseConfig(ConfigJson(accounts, R"("refresh_margin_seconds": 900,
                              "refresh_token_warn_days": 20,)"),
                  "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->accounts[0].refresh_margin_seconds, 1200);
  EXPECT_EQ(config->accounts[1].refresh_margin_seconds, 900);
  EXPECT_EQ(config->refresh_token_warn_days, 20);
}

// Google: its token endpoint and the Gmail scope by default; authority
// overrides the host for tests.
TEST(HelperConfig, GoogleAccount) {
  TempDir dir;
  std::string refresh = dir.Write("g.refresh", "1//0g-refresh\n");
  std::string account = R"({"provider": "google", "mailbox": "a@gmail.com",
      "client_id": "123.apps.googleusercontent.com",
      "client_secret": "GOCSPX-x", "grant": "refresh_token",
      "refresh_token_file": ")" +
                        refresh + R"("})";
  auto config = ParseConfig(ConfigJson(account), "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  const Account& google = config->accounts[0];
  EXPECT_EQ(google.provider, Provider::kGoogle);
  EXPECT_EQ(google.TokenUrl(), "https://oauth2.googleapis.com/token");
  EXPECT_EQ(google.scope, "https://mail.google.com/");

  account.insert(1, R"("authority": "https://127.0.0.1:8443", )");
  config = ParseConfig(ConfigJson(account), "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->accounts[0].TokenUrl(), "https://127.0.0.1:8443/token");
}

struct AccountPeersCase {
  const char* name;
  std::string extra;  // spliced into the account
  bool restricts;
  std::vector<uid_t> uids;
  std::vector<gid_t> gids;
};

class HelperConfigAccountPeers
    : public ::testing::TestWithParam<AccountPeersCase> {};

// An account's allowed_users/allowed_groups are resolved like the global
// ones; an account without them does not restrict peers.
TEST_P(HelperConfigAccountPeers, Resolved) {
  const AccountPeersCase& c = GetParam();
  auto config =
      ParseConfig(ConfigJson(AccountJson(c.extra)), "/etc/x/config.json");
  ASSERT_TRUE(config) << config.error();
  const Account& account = config->accounts[0];
  EXPECT_EQ(account.restricts_peers, c.restricts);
  EXPECT_EQ(account.allowed_uids, c.uids);
  EXPECT_EQ(account.allowed_gids, c.gids);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperConfigAccountPeers,
    ::testing::Values(
        AccountPeersCase{"None", "", false, {}, {}},
        AccountPeersCase{"Users",
                         R"(, "allowed_users": ["root", 107, "1001"])",
                         true,
                         {0, 107, 1001},
                         {}},
        AccountPeersCase{"Groups",
                         R"(, "allowed_groups": ["root", 113])",
                         true,
                         {},
                         {0, 113}},
        AccountPeersCase{
            "EmptyUsers", R"(, "allowed_users": [])", true, {}, {}}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// F20: the shipped example is refused by name until it is filled in.
TEST(HelperConfig, F20ShippedExampleRefusedByName) {
  auto config = LoadConfig(XOAUTH2_EXAMPLE_CONFIG);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error(),
            std::string(XOAUTH2_EXAMPLE_CONFIG) +
                ": accounts[0].mailbox is still the example placeholder "
                "relay@REPLACE-WITH-YOUR-DOMAIN; put the mailbox that "
                "sends mail there");
}

}  // namespace
}  // namespace xoauth2::helper
