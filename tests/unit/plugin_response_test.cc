// SPDX-License-Identifier: MIT
//
// Unit tests of the plugin's pure parts (sasl-plugin/response.h and
// process_config.h): the XOAUTH2 initial response byte for byte against
// the worked example of the reference notes, the OAUTHBEARER initial
// response byte for byte (RFC 7628 §3.1: with and without host= and
// port=, saslname escaping of ',' and '=') against a worked example
// computed by hand, the reply to an error challenge of each mechanism,
// the server address taken from the host's parameters, the mailbox check
// with its operator message, sanitizing of server challenges for the log
// (cut at exactly kMaxLoggedText, tested at and one byte past it),
// and the parsing of the plugin's environment variables.

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "process_config.h"
#include "response.h"

namespace xoauth2::plugin {
namespace {

// Plain RFC 4648 base64, local to the test so that it checks the plugin
// against an independent encoder.
std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < in.size(); i += 3) {
    unsigned n = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size())
      n |= static_cast<unsigned char>(in[i + 1]) << 8;
    if (i + 2 < in.size())
      n |= static_cast<unsigned char>(in[i + 2]);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

TEST(InitialResponse, MatchesTheWorkedExampleByteForByte) {
  std::string response = BuildInitialResponse(
      Mechanism::kXoauth2, "relay@example.com", "eyJ0eXAi.TEST.SIG");

  EXPECT_EQ(response, std::string("user=relay@example.com\x01"
                                  "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"));
  EXPECT_EQ(Base64(response),
            "dXNlcj1yZWxheUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciBleUowZVhBaS5URV"
            "NULlNJRwEB");
}

TEST(InitialResponse, IsAllocatedAtItsFinalSize) {
  std::string token(4000, 'T');
  std::string response =
      BuildInitialResponse(Mechanism::kXoauth2, "a@b.example", token);

  EXPECT_EQ(response.size(), 5 + 11 + 13 + 4000 + 2);
  EXPECT_EQ(response.capacity(), response.size());
}

TEST(InitialResponse, XOAUTH2IgnoresTheServerAddress) {
  ServerAddress server{"smtp.office365.com", "587"};

  EXPECT_EQ(BuildInitialResponse(Mechanism::kXoauth2, "relay@example.com",
                                 "eyJ0eXAi.TEST.SIG", server),
            BuildInitialResponse(Mechanism::kXoauth2, "relay@example.com",
                                 "eyJ0eXAi.TEST.SIG"));
}

// Worked example, computed by hand from RFC 7628 §3.1: mailbox
// relay@example.com, host smtp.gmail.com, port 587, token
// eyJ0eXAi.TEST.SIG. The 83 bytes are
//   "n,a=" (4) "relay@example.com" (17) "," (1)
//   0x01 "host=" (6) "smtp.gmail.com" (14)
//   0x01 "port=" (6) "587" (3)
//   0x01 "auth=Bearer " (13) "eyJ0eXAi.TEST.SIG" (17) 0x01 0x01 (2)
// and their base64 starts "bixh" (bytes 6E 2C 61 of "n,a" are the 6-bit
// groups 27 34 49 33).
TEST(OauthBearerResponse, MatchesTheWorkedExampleByteForByte) {
  ServerAddress server{"smtp.gmail.com", "587"};
  std::string response =
      BuildInitialResponse(Mechanism::kOauthBearer, "relay@example.com",
                           "eyJ0eXAi.TEST.SIG", server);

  EXPECT_EQ(response, std::string("n,a=relay@example.com,\x01"
                                  "host=smtp.gmail.com\x01"
                                  "port=587\x01"
                                  "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"));
  EXPECT_EQ(response.size(), 83u);
  EXPECT_EQ(response.capacity(), response.size());
  EXPECT_EQ(Base64(response),
            "bixhPXJlbGF5QGV4YW1wbGUuY29tLAFob3N0PXNtdHAuZ21haWwuY29tAXBvcnQ9"
            "NTg3AWF1dGg9QmVhcmVyIGV5SjBlWEFpLlRFU1QuU0lHAQE=");
}

struct OauthBearerCase {
  std::string_view mailbox;
  ServerAddress server;
  std::string_view expected;  // raw bytes before base64
};

class OauthBearerResponse : public ::testing::TestWithParam<OauthBearerCase> {};

TEST_P(OauthBearerResponse, LeavesOutUnknownPairsAndEscapesTheSaslname) {
  const OauthBearerCase& c = GetParam();

  EXPECT_EQ(BuildInitialResponse(Mechanism::kOauthBearer, c.mailbox,
                                 "eyJ0eXAi.TEST.SIG", c.server),
            c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OauthBearerResponse,
    ::testing::Values(
        // Postfix: serverFQDN given, no addresses, so no port= pair.
        OauthBearerCase{"relay@example.com",
                        {"smtp.gmail.com", ""},
                        "n,a=relay@example.com,\x01"
                        "host=smtp.gmail.com\x01"
                        "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"},
        // Nothing known about the server.
        OauthBearerCase{"relay@example.com",
                        {"", ""},
                        "n,a=relay@example.com,\x01"
                        "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"},
        // A port without a host name.
        OauthBearerCase{"relay@example.com",
                        {"", "25"},
                        "n,a=relay@example.com,\x01"
                        "port=25\x01"
                        "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"},
        // RFC 5801 saslname: ',' is =2C and '=' is =3D, in that order.
        OauthBearerCase{"a,b=c@example.com",
                        {"smtp.gmail.com", "587"},
                        "n,a=a=2Cb=3Dc@example.com,\x01"
                        "host=smtp.gmail.com\x01"
                        "port=587\x01"
                        "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"},
        OauthBearerCase{"==,,@x",
                        {"", ""},
                        "n,a==3D=3D=2C=2C@x,\x01"
                        "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01"}));

struct EscapeCase {
  std::string_view input;
  std::string_view output;
};

class SaslName : public ::testing::TestWithParam<EscapeCase> {};

TEST_P(SaslName, EscapesCommaAndEqualsOnly) {
  EXPECT_EQ(EscapeSaslName(GetParam().input), GetParam().output);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SaslName,
    ::testing::Values(EscapeCase{"", ""},
                      EscapeCase{"relay@example.com", "relay@example.com"},
                      EscapeCase{",", "=2C"}, EscapeCase{"=", "=3D"},
                      EscapeCase{"=2C", "=3D2C"},
                      EscapeCase{"a+b.c-d@x", "a+b.c-d@x"}));

TEST(ErrorChallengeReply, IsEmptyForXOAUTH2AndKvsepForOAUTHBEARER) {
  EXPECT_EQ(ErrorChallengeReply(Mechanism::kXoauth2), "");
  EXPECT_EQ(ErrorChallengeReply(Mechanism::kOauthBearer),
            std::string_view("\x01", 1));
}

TEST(MechanismName, IsTheRegisteredName) {
  EXPECT_STREQ(MechanismName(Mechanism::kXoauth2), "XOAUTH2");
  EXPECT_STREQ(MechanismName(Mechanism::kOauthBearer), "OAUTHBEARER");
}

struct AddressCase {
  std::string_view fqdn;
  std::string_view ipremoteport;
  std::string_view host;  // expected; "" when left out
  std::string_view port;  // expected; "" when left out
};

class ServerAddressParse : public ::testing::TestWithParam<AddressCase> {};

TEST_P(ServerAddressParse, KeepsOnlyUsableHostAndPort) {
  const AddressCase& c = GetParam();
  ServerAddress server = ServerAddressFrom(c.fqdn, c.ipremoteport);

  EXPECT_EQ(server.host, c.host);
  EXPECT_EQ(server.port, c.port);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ServerAddressParse,
    ::testing::Values(
        AddressCase{"smtp.gmail.com", "142.250.1.108;587", "smtp.gmail.com",
                    "587"},
        AddressCase{"smtp.gmail.com", "", "smtp.gmail.com", ""},  // Postfix
        AddressCase{"", "", "", ""},
        AddressCase{"mx.example", "2001:db8::1;25", "mx.example", "25"},
        AddressCase{"mx.example", "127.0.0.1;65535", "mx.example", "65535"},
        AddressCase{"mx.example", "127.0.0.1;0", "mx.example", ""},
        AddressCase{"mx.example", "127.0.0.1;65536", "mx.example", ""},
        AddressCase{"mx.example", "127.0.0.1;smtp", "mx.example", ""},
        AddressCase{"mx.example", "127.0.0.1;", "mx.example", ""},
        AddressCase{"mx.example", "127.0.0.1;+25", "mx.example", ""},
        AddressCase{"mx.example", "127.0.0.1", "mx.example", ""},
        AddressCase{"mx example", "", "", ""},
        AddressCase{"mx\x01.example", "", "", ""},
        AddressCase{"caf\xc3\xa9.example", "", "", ""}));

TEST(ServerAddressParse, LeavesOutAnOverlongHost) {
  std::string fqdn(kMaxHostBytes + 1, 'h');

  EXPECT_EQ(ServerAddressFrom(fqdn, "").host, "");
  EXPECT_EQ(ServerAddressFrom(fqdn.substr(1), "").host, fqdn.substr(1));
}

TEST(Wipe, ZeroesAndEmpties) {
  std::string secret = "eyJ0eXAi.TEST.SIG";
  const char* bytes = secret.data();
  Wipe(secret);

  EXPECT_TRUE(secret.empty());
  EXPECT_EQ(std::string_view(bytes, 17), std::string(17, '\0'));
}

struct MailboxCase {
  std::string_view mailbox;
  bool ok;
  std::string_view message_part;  // expected in the error message
};

class MailboxCheck : public ::testing::TestWithParam<MailboxCase> {};

TEST_P(MailboxCheck, AcceptsOnlyPlainAddressesAndNamesTheFix) {
  const MailboxCase& c = GetParam();
  auto result = CheckMailbox(c.mailbox);

  EXPECT_EQ(result.has_value(), c.ok) << c.mailbox;
  if (!c.ok) {
    EXPECT_NE(result.error().find(c.message_part), std::string::npos)
        << result.error();
    EXPECT_NE(result.error().find("smtp_sasl_password_maps"),
              std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MailboxCheck,
    ::testing::Values(
        MailboxCase{"relay@example.com", true, ""},
        MailboxCase{"a@b", true, ""},
        MailboxCase{"first.last+tag@sub.example.co.uk", true, ""},
        // Allowed by the protocol; escaped for OAUTHBEARER's gs2 header.
        MailboxCase{"a,b=c@example.com", true, ""},
        MailboxCase{"", false, "no mailbox given"},
        MailboxCase{"relay", false, "\"relay\" is not an address"},
        MailboxCase{"@example.com", false, "is not an address"},
        MailboxCase{"relay@", false, "is not an address"},
        MailboxCase{"a@b@c", false, "is not an address"},
        MailboxCase{"relay @example.com", false, "is not an address"},
        MailboxCase{"relay@exa\nmple.com", false, "relay@exa?mple.com"},
        MailboxCase{"-", false, "\"-\" is not an address"}));

TEST(MailboxCheck, RefusesOverlongMailbox) {
  std::string mailbox = std::string(250, 'a') + "@b.cd";
  EXPECT_FALSE(CheckMailbox(mailbox).has_value());
}

// Gmail's error challenge, decoded: logged as it is.
constexpr std::string_view kGmailError =
    R"({"status":"400","schemes":"Bearer",)"
    R"("scope":"https://mail.google.com/"})";

struct SanitizeCase {
  std::string_view input;
  std::string_view output;
};

// Challenge text exactly at the logged length and one byte longer.
const std::string kAtLoggedLimit(kMaxLoggedText, 'x');
const std::string kPastLoggedLimit(kMaxLoggedText + 1, 'x');
const std::string kCutAtLoggedLimit = kAtLoggedLimit + "...";

class Sanitize : public ::testing::TestWithParam<SanitizeCase> {};

TEST_P(Sanitize, KeepsPrintableAsciiOnly) {
  EXPECT_EQ(SanitizeForLog(GetParam().input), GetParam().output);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Sanitize,
    ::testing::Values(SanitizeCase{kGmailError, kGmailError},
                      SanitizeCase{"", ""},
                      SanitizeCase{"a\r\nb\tc\x01\x7f", "a??b?c??"},
                      SanitizeCase{"caf\xc3\xa9", "caf??"},
                      // The logged length limit, at it and one past it.
                      SanitizeCase{kAtLoggedLimit, kAtLoggedLimit},
                      SanitizeCase{kPastLoggedLimit, kCutAtLoggedLimit}));

TEST(Sanitize, CutsLongTextAndMarksIt) {
  std::string long_text(kMaxLoggedText + 50, 'x');
  std::string out = SanitizeForLog(long_text);

  EXPECT_EQ(out, std::string(kMaxLoggedText, 'x') + "...");
}

struct TimeoutCase {
  std::string_view text;
  int value;  // 0: refused
};

class TimeoutParse : public ::testing::TestWithParam<TimeoutCase> {};

TEST_P(TimeoutParse, AcceptsMillisecondsInRange) {
  auto result = ParseTimeoutMs(GetParam().text);
  if (GetParam().value == 0) {
    ASSERT_FALSE(result.has_value());
    EXPECT_NE(result.error().find("XOAUTH2_RELAY_TIMEOUT_MS"),
              std::string::npos);
  } else {
    ASSERT_TRUE(result.has_value()) << result.error();
    EXPECT_EQ(*result, GetParam().value);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, TimeoutParse,
    ::testing::Values(TimeoutCase{"5000", 5000}, TimeoutCase{"10", 10},
                      TimeoutCase{"300000", 300000}, TimeoutCase{"9", 0},
                      TimeoutCase{"300001", 0}, TimeoutCase{"", 0},
                      TimeoutCase{"5s", 0}, TimeoutCase{"-5", 0},
                      TimeoutCase{" 50", 0}));

TEST(ProcessConfig, DefaultsWhenUnset) {
  ProcessConfig config = LoadProcessConfig(nullptr, nullptr);

  EXPECT_EQ(config.error, "");
  EXPECT_EQ(config.socket_path, XOAUTH2_DEFAULT_SOCKET);
  EXPECT_EQ(config.timeout_ms, kDefaultTimeoutMs);
  ASSERT_FALSE(config.ancestors.empty());
  EXPECT_EQ(config.ancestors.front().path, "/");
}

TEST(ProcessConfig, NormalizesTheSocketPath) {
  ProcessConfig config = LoadProcessConfig("//tmp///x/token.sock", "250");

  EXPECT_EQ(config.error, "");
  EXPECT_EQ(config.socket_path, "/tmp/x/token.sock");
  EXPECT_EQ(config.timeout_ms, 250);
}

struct BadConfigCase {
  const char* socket;
  const char* timeout;
  std::string_view message_part;
};

class BadConfig : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(BadConfig, KeepsAnErrorNamingTheVariable) {
  const BadConfigCase& c = GetParam();
  ProcessConfig config = LoadProcessConfig(c.socket, c.timeout);

  EXPECT_NE(config.error.find(c.message_part), std::string::npos)
      << config.error;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfig,
    ::testing::Values(
        BadConfigCase{"token.sock", nullptr, "XOAUTH2_RELAY_SOCKET"},
        BadConfigCase{"", nullptr, "is not absolute"},
        BadConfigCase{"/var/../tmp/token.sock", nullptr, "\"..\""},
        BadConfigCase{"/tmp/token.sock", "soon", "XOAUTH2_RELAY_TIMEOUT_MS"}));

TEST(ProcessConfig, RefusesAPathTooLongForAUnixSocket) {
  std::string path = "/" + std::string(120, 'd') + "/token.sock";
  ProcessConfig config = LoadProcessConfig(path.c_str(), nullptr);

  EXPECT_NE(config.error.find("longer than 107 bytes"), std::string::npos)
      << config.error;
}

}  // namespace
}  // namespace xoauth2::plugin
