// SPDX-License-Identifier: MIT
//
// Unit tests of the sender guard (sender_guard.h, field report F17): the
// MAIL FROM argument forms libmilter hands over, From header values
// (display names, quoted local parts with commas, comments, groups,
// several addresses, folding, case, size bounds and garbage), each as a
// table of input and expected verdict; the exact reply texts; the
// per-message session (missing From, several From headers, reset, what
// each call let pass); and the configuration's "send_as" and
// "sender_guard" with their errors (socket paths compared after lexical
// normalisation, send_as wildcards).

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config.h"
#include "sender_guard.h"

namespace xoauth2::helper {
namespace {

constexpr const char* kPath = "/etc/xoauth2-relay/config.json";

SenderGuard TestGuard() {
  return SenderGuard({"relay@example.com", "Alerts@Example.com"}, kPath);
}

struct EnvelopeCase {
  const char* name;
  std::string argument;
  bool accepted;
};

class EnvelopeSender : public ::testing::TestWithParam<EnvelopeCase> {};

TEST_P(EnvelopeSender, Judged) {
  const EnvelopeCase& c = GetParam();
  Verdict verdict = TestGuard().JudgeEnvelopeSender(c.argument);
  EXPECT_EQ(!verdict.has_value(), c.accepted)
      << c.argument << ": " << (verdict ? verdict->text : "accepted");
  if (verdict) {
    EXPECT_EQ(verdict->code, "550");
    EXPECT_EQ(verdict->xcode, "5.7.1");
    EXPECT_EQ(verdict->stage, "mail_from");
  }
}

INSTANTIATE_TEST_SUITE_P(
    SenderGuard, EnvelopeSender,
    ::testing::Values(
        EnvelopeCase{"Angle", "<relay@example.com>", true},
        EnvelopeCase{"Bare", "relay@example.com", true},
        EnvelopeCase{"UpperCase", "<RELAY@EXAMPLE.COM>", true},
        EnvelopeCase{"SendAsMixedCase", "<alerts@EXAMPLE.com>", true},
        EnvelopeCase{"SourceRoute", "<@a.example,@b.example:relay@example.com>",
                     true},
        EnvelopeCase{"QuotedDotAtom", "<\"relay\"@example.com>", true},
        EnvelopeCase{"Foreign", "<other@example.com>", false},
        EnvelopeCase{"OtherDomain", "<relay@example.org>", false},
        EnvelopeCase{"Subdomain", "<relay@mail.example.com>", false},
        EnvelopeCase{"NullSender", "<>", false},
        EnvelopeCase{"Empty", "", false},
        EnvelopeCase{"NoAt", "<relay>", false},
        EnvelopeCase{"TwoAts", "<relay@example.com@example.com>", false},
        EnvelopeCase{"Unclosed", "<relay@example.com", false},
        EnvelopeCase{"QuotedComma", "<\"relay,x\"@example.com>", false},
        EnvelopeCase{"TooLong", "<" + std::string(600, 'a') + "@example.com>",
                     false},
        EnvelopeCase{"ControlByte", "<relay\x01@example.com>", false}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

struct FromCase {
  const char* name;
  std::string value;
  std::vector<std::string> addresses;  // empty: unparseable
};

class FromHeaderParse : public ::testing::TestWithParam<FromCase> {};

TEST_P(FromHeaderParse, Addresses) {
  const FromCase& c = GetParam();
  auto parsed = ParseFromHeader(c.value);
  if (c.addresses.empty()) {
    EXPECT_FALSE(parsed) << c.value;
    return;
  }
  ASSERT_TRUE(parsed) << c.value << ": " << parsed.error();
  EXPECT_EQ(*parsed, c.addresses);
}

INSTANTIATE_TEST_SUITE_P(
    SenderGuard, FromHeaderParse,
    ::testing::Values(
        FromCase{"Bare", "relay@example.com", {"relay@example.com"}},
        FromCase{"DisplayName",
                 "Relay Host <relay@example.com>",
                 {"relay@example.com"}},
        FromCase{"QuotedDisplayNameWithComma",
                 "\"Host, Relay\" <relay@example.com>",
                 {"relay@example.com"}},
        FromCase{"QuotedDisplayNameWithAngle",
                 "\"a <x@y.z>\" <relay@example.com>",
                 {"relay@example.com"}},
        FromCase{
            "Comment", "relay@example.com (Relay Host)", {"relay@example.com"}},
        FromCase{"NestedComment",
                 "(a (b) c) relay (d) @ example.com",
                 {"relay@example.com"}},
        FromCase{"EncodedWord",
                 "=?UTF-8?B?w4RyZ2Vy?= <relay@example.com>",
                 {"relay@example.com"}},
        FromCase{"Utf8DisplayName",
                 "J\xc3\xbcrgen <relay@example.com>",
                 {"relay@example.com"}},
        FromCase{"Folded",
                 "Relay\r\n Host\r\n\t<relay@example.com>",
                 {"relay@example.com"}},
        FromCase{
            "FoldedLf", "Relay\n <relay@example.com>", {"relay@example.com"}},
        FromCase{"QuotedLocalWithComma",
                 "\"a,b\"@example.com",
                 {"\"a,b\"@example.com"}},
        FromCase{"QuotedLocalDotAtom",
                 "\"relay\"@example.com",
                 {"relay@example.com"}},
        FromCase{"Two",
                 "relay@example.com, Other <other@example.org>",
                 {"relay@example.com", "other@example.org"}},
        FromCase{"Group",
                 "Team: relay@example.com, b@example.com;",
                 {"relay@example.com", "b@example.com"}},
        FromCase{
            "EmptyElements", ", relay@example.com ,,", {"relay@example.com"}},
        FromCase{
            "Route", "<@hop.example:relay@example.com>", {"relay@example.com"}},
        FromCase{"DomainLiteral", "relay@[192.0.2.1]", {"relay@[192.0.2.1]"}},
        FromCase{"NoAt", "Relay Host", {}},
        FromCase{"UnclosedAngle", "Relay <relay@example.com", {}},
        FromCase{"UnclosedQuote", "\"Relay <relay@example.com>", {}},
        FromCase{"UnclosedComment", "relay@example.com (Relay", {}},
        FromCase{"TextAfterAngle", "<relay@example.com> junk", {}},
        FromCase{"StraySemicolon", "relay@example.com;", {}},
        FromCase{"NestedGroup", "a: b: c@d.e;;", {}},
        FromCase{"UnclosedGroup", "a: c@d.e", {}},
        FromCase{"ControlByte", "relay\x07@example.com", {}},
        FromCase{"DeepComment",
                 std::string(40, '(') + "x" + std::string(40, ')') + " a@b.c",
                 {}},
        FromCase{"TooLong", std::string(9000, 'a') + "@example.com", {}},
        FromCase{"TooMany",
                 [] {
                   std::string list;
                   for (int i = 0; i < 40; ++i)
                     list += "a" + std::to_string(i) + "@example.com,";
                   return list;
                 }(),
                 {}}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

struct FromVerdictCase {
  const char* name;
  std::string value;
  bool accepted;
};

class FromHeaderVerdict : public ::testing::TestWithParam<FromVerdictCase> {};

TEST_P(FromHeaderVerdict, Judged) {
  const FromVerdictCase& c = GetParam();
  Verdict verdict = TestGuard().JudgeFromHeader(c.value);
  EXPECT_EQ(!verdict.has_value(), c.accepted)
      << c.value << ": " << (verdict ? verdict->text : "accepted");
  if (verdict) {
    EXPECT_EQ(verdict->stage, "header_from");
  }
}

INSTANTIATE_TEST_SUITE_P(
    SenderGuard, FromHeaderVerdict,
    ::testing::Values(
        FromVerdictCase{"Mailbox", "Relay <relay@example.com>", true},
        FromVerdictCase{"MailboxUpper", "RELAY@Example.COM", true},
        FromVerdictCase{"SendAs", "Alerts <alerts@example.com>", true},
        FromVerdictCase{"BothAllowed", "relay@example.com, alerts@example.com",
                        true},
        FromVerdictCase{"OneForeign", "relay@example.com, x@example.com",
                        false},
        FromVerdictCase{"DisplayNameLooksAllowed",
                        "\"relay@example.com\" <evil@example.org>", false},
        FromVerdictCase{"EmptyGroup", "undisclosed-recipients:;", false},
        FromVerdictCase{"Empty", "", false},
        FromVerdictCase{"Garbage", "<<<>>>", false}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// The replies, byte for byte: they are what the SMTP client shows.
TEST(SenderGuard, ReplyTextsNameAddressFileAndFix) {
  SenderGuard guard = TestGuard();
  Verdict foreign = guard.JudgeEnvelopeSender("<Other@example.org>");
  ASSERT_TRUE(foreign);
  EXPECT_EQ(foreign->address, "Other@example.org");
  EXPECT_EQ(foreign->text,
            "sender Other@example.org is not a mailbox xoauth2-relay holds "
            "a token for; add it to \"send_as\" of an account in "
            "/etc/xoauth2-relay/config.json (Office 365 refuses it as "
            "SendAsDenied otherwise)");

  Verdict header = guard.JudgeFromHeader("Boss <boss@example.org>");
  ASSERT_TRUE(header);
  EXPECT_EQ(header->text,
            "From header address boss@example.org is not a mailbox "
            "xoauth2-relay holds a token for; add it to \"send_as\" of an "
            "account in /etc/xoauth2-relay/config.json (Office 365 refuses "
            "it as SendAsDenied otherwise)");

  Verdict null_sender = guard.JudgeEnvelopeSender("<>");
  ASSERT_TRUE(null_sender);
  EXPECT_EQ(null_sender->text,
            "the null sender <> cannot be relayed: Office 365 sends only as "
            "a mailbox; give the message an envelope sender listed in "
            "/etc/xoauth2-relay/config.json");
}

// A hostile address cannot put a line break or '%' into the reply.
TEST(SenderGuard, ReplyTextIsOneSafeLine) {
  Verdict verdict = TestGuard().JudgeFromHeader("\"a%n\\\r\nb\"@example.org");
  ASSERT_TRUE(verdict);
  for (char c : verdict->text) {
    EXPECT_TRUE(c >= 0x20 && c <= 0x7e && c != '%') << verdict->text;
  }
}

TEST(SenderGuardSession, MissingFromIsRefused) {
  SenderGuard guard = TestGuard();
  SenderGuardSession session(guard);
  EXPECT_FALSE(session.OnEnvelopeFrom("<relay@example.com>"));
  session.OnHeader("Subject", "hello");
  Verdict verdict = session.OnEndOfHeaders();
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->text,
            "the message has no From header; Office 365 checks it against "
            "the mailbox, so the sending program must add From: with an "
            "address listed in /etc/xoauth2-relay/config.json");
}

TEST(SenderGuardSession, EveryFromHeaderCountsAndNameIgnoresCase) {
  SenderGuard guard = TestGuard();
  SenderGuardSession session(guard);
  EXPECT_FALSE(session.OnEnvelopeFrom("<relay@example.com>"));
  session.OnHeader("FROM", "relay@example.com");
  EXPECT_FALSE(session.OnEndOfHeaders());
  session.OnHeader("from", "other@example.com");
  Verdict verdict = session.OnEndOfHeaders();
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->address, "other@example.com");
}

// A new MAIL FROM (or an abort) forgets the previous message's headers.
TEST(SenderGuardSession, NextMessageStartsClean) {
  SenderGuard guard = TestGuard();
  SenderGuardSession session(guard);
  EXPECT_FALSE(session.OnEnvelopeFrom("<relay@example.com>"));
  session.OnHeader("From", "other@example.com");
  EXPECT_TRUE(session.OnEndOfHeaders());

  EXPECT_FALSE(session.OnEnvelopeFrom("<alerts@example.com>"));
  session.OnHeader("From", "alerts@example.com");
  EXPECT_FALSE(session.OnEndOfHeaders());

  session.OnHeader("From", "other@example.com");
  session.ResetMessage();
  session.OnHeader("From", "relay@example.com");
  EXPECT_FALSE(session.OnEndOfHeaders());
}

// What each call let pass, for the milter's sender_accepted debug line:
// the parsed address, never the raw argument; "" after a refusal, a header
// other than From, and once the message is reset.
TEST(SenderGuardSession, AcceptedNamesWhatPassed) {
  SenderGuard guard = TestGuard();
  SenderGuardSession session(guard);
  EXPECT_FALSE(session.OnEnvelopeFrom("<@relay.example:Relay@Example.com>"));
  EXPECT_EQ(session.accepted(), "Relay@Example.com");

  session.OnHeader("From", "Relay <relay@example.com>, alerts@example.com");
  EXPECT_EQ(session.accepted(), "relay@example.com,alerts@example.com");
  session.OnHeader("Subject", "alerts@example.com");
  EXPECT_EQ(session.accepted(), "");
  session.OnHeader("From", "other@example.com");
  EXPECT_EQ(session.accepted(), "");
  session.OnHeader("From", "relay@example.com");
  EXPECT_EQ(session.accepted(), "") << "judged no more after a refusal";

  EXPECT_TRUE(session.OnEnvelopeFrom("<other@example.com>"));
  EXPECT_EQ(session.accepted(), "");
  EXPECT_FALSE(session.OnEnvelopeFrom("alerts@example.com"));
  session.ResetMessage();
  EXPECT_EQ(session.accepted(), "");
}

// --- configuration: send_as and sender_guard -----------------------------

std::string GuardConfig(const std::string& account_extra,
                        const std::string& top = "") {
  return R"({"socket": "/tmp/t/token.sock", )" + top +
         R"("accounts": [{"mailbox": "relay@example.com", "tenant": "t",
              "client_id": "c", "grant": "client_credentials",
              "client_secret_file": "/nonexistent/secret")" +
         account_extra + "}]}";
}

TEST(SenderGuardConfig, SendAsAndSocketAreRead) {
  auto config = ParseConfig(
      GuardConfig(R"(, "send_as": ["Alerts@example.com", "b@example.org"])",
                  R"("sender_guard": {"socket": "/tmp/t/milter.sock"}, )"),
      kPath, ConfigUse::kSenderGuard);
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->sender_guard.socket, "/tmp/t/milter.sock");
  EXPECT_EQ(config->accounts[0].send_as,
            (std::vector<std::string>{"Alerts@example.com", "b@example.org"}));
  SenderGuard guard(*config);
  EXPECT_TRUE(guard.Allows("alerts@EXAMPLE.com"));
  EXPECT_TRUE(guard.Allows("relay@example.com"));
  EXPECT_FALSE(guard.Allows("c@example.org"));
}

// The milter's configuration use opens no secret file: the secret file
// named above does not exist, which only the token server minds.
TEST(SenderGuardConfig, MilterUseReadsNoSecretFile) {
  EXPECT_TRUE(ParseConfig(GuardConfig(""), kPath, ConfigUse::kSenderGuard));
  auto serve = ParseConfig(GuardConfig(""), kPath, ConfigUse::kServe);
  ASSERT_FALSE(serve);
  EXPECT_NE(serve.error().find("client_secret_file"), std::string::npos);
}

// Paths that only look alike, or sit in other folders, are accepted.
TEST(SenderGuardConfig, DistinctSocketsAccepted) {
  for (const char* socket : {"/tmp/t/milter.sock", "/tmp/u/reply.sock",
                             "/tmp/t/reply.sock.d", "/tmp/t/x/token.sock"}) {
    std::string top =
        std::string(R"("sender_guard": {"socket": ")") + socket + "\"}, ";
    auto config =
        ParseConfig(GuardConfig("", top), kPath, ConfigUse::kSenderGuard);
    EXPECT_TRUE(config) << socket << ": " << config.error();
  }
}

TEST(SenderGuardConfig, DefaultSocketBesideTokenSocket) {
  auto config = ParseConfig(GuardConfig(""), kPath, ConfigUse::kSenderGuard);
  ASSERT_TRUE(config) << config.error();
  EXPECT_EQ(config->sender_guard.socket,
            "/var/spool/postfix/xoauth2-relay/milter.sock");
}

struct GuardConfigErrorCase {
  const char* name;
  std::string text;
  std::string message;  // after "PATH: "
};

class SenderGuardConfigError
    : public ::testing::TestWithParam<GuardConfigErrorCase> {};

TEST_P(SenderGuardConfigError, NamesPathAndField) {
  const GuardConfigErrorCase& c = GetParam();
  auto config = ParseConfig(c.text, kPath, ConfigUse::kSenderGuard);
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error(), std::string(kPath) + ": " + c.message);
}

INSTANTIATE_TEST_SUITE_P(
    SenderGuard, SenderGuardConfigError,
    ::testing::Values(
        GuardConfigErrorCase{"SendAsNotArray",
                             GuardConfig(R"(, "send_as": "a@b.c")"),
                             "accounts[0].send_as must be an array of "
                             "addresses, not string"},
        GuardConfigErrorCase{"SendAsNotString",
                             GuardConfig(R"(, "send_as": ["a@b.c", 5])"),
                             "accounts[0].send_as[1] must be a string, not "
                             "number"},
        GuardConfigErrorCase{"SendAsInvalid",
                             GuardConfig(R"(, "send_as": ["alerts"])"),
                             "accounts[0].send_as[0] is \"alerts\", not an "
                             "address like alerts@example.com"},
        GuardConfigErrorCase{
            "SendAsPlaceholder",
            GuardConfig(R"(, "send_as": ["a@REPLACE-WITH-YOUR-DOMAIN"])"),
            "accounts[0].send_as[0] is still the example placeholder "
            "a@REPLACE-WITH-YOUR-DOMAIN; put an address the mailbox has Send "
            "As rights on there, or remove it"},
        GuardConfigErrorCase{"GuardNotObject",
                             GuardConfig("", R"("sender_guard": "x", )"),
                             "sender_guard must be an object like "
                             "{\"socket\": \"/path/milter.sock\"}, not "
                             "string"},
        GuardConfigErrorCase{
            "GuardUnknownKey",
            GuardConfig("", R"("sender_guard": {"port": 1}, )"),
            "unknown key \"port\" in sender_guard; known keys are socket"},
        GuardConfigErrorCase{
            "GuardSocketRelative",
            GuardConfig("", R"("sender_guard": {"socket": "m.sock"}, )"),
            "sender_guard.socket must be an absolute path, not m.sock"},
        GuardConfigErrorCase{
            "GuardSocketIsTokenSocket",
            GuardConfig("",
                        R"("sender_guard": {"socket": "/tmp/t/token.sock"}, )"),
            "sender_guard.socket is the token socket /tmp/t/token.sock; give "
            "the milter a path of its own, such as milter.sock in the same "
            "folder"},
        GuardConfigErrorCase{
            "GuardSocketIsTokenSocketSpeltOtherwise",
            GuardConfig("", R"("sender_guard": {"socket": "/tmp//t/./x/../)"
                            R"(token.sock"}, )"),
            "sender_guard.socket is /tmp//t/./x/../token.sock, which is the "
            "token socket /tmp/t/token.sock; give the milter a path of its "
            "own, such as milter.sock in the same folder"},
        GuardConfigErrorCase{
            "GuardSocketIsReplySocket",
            GuardConfig("",
                        R"("sender_guard": {"socket": "/tmp/t/reply.sock"}, )"),
            "sender_guard.socket is /tmp/t/reply.sock, which is the helper's "
            "reply socket (reply.sock beside the token socket "
            "/tmp/t/token.sock); give the milter a path of its own, such as "
            "milter.sock in the same folder"},
        GuardConfigErrorCase{
            "GuardSocketIsReplySocketSpeltOtherwise",
            GuardConfig("", R"("sender_guard": {"socket": "/tmp/./t//)"
                            R"(reply.sock"}, )"),
            "sender_guard.socket is /tmp/./t//reply.sock, which is the "
            "helper's reply socket (reply.sock beside the token socket "
            "/tmp/t/token.sock); give the milter a path of its own, such as "
            "milter.sock in the same folder"},
        GuardConfigErrorCase{
            "TokenSocketNamedReplySock",
            R"({"socket": "/tmp/t/reply.sock", "accounts": [
                {"mailbox": "relay@example.com"}]})",
            "socket is /tmp/t/reply.sock, but the helper listens on "
            "reply.sock in the token socket's folder itself; name the token "
            "socket otherwise, such as token.sock"},
        GuardConfigErrorCase{
            "TokenSocketNamedReplySockSpeltOtherwise",
            R"({"socket": "/tmp/t/run/../reply.sock", "accounts": [
                {"mailbox": "relay@example.com"}]})",
            "socket is /tmp/t/run/../reply.sock, but the helper listens on "
            "reply.sock in the token socket's folder itself; name the token "
            "socket otherwise, such as token.sock"},
        GuardConfigErrorCase{"SendAsStarWildcard",
                             GuardConfig(R"(, "send_as": ["*@example.com"])"),
                             "accounts[0].send_as[0] is \"*@example.com\": "
                             "wildcards are not supported; list each address "
                             "the mailbox may send as (Office 365 grants "
                             "Send As per address)"},
        GuardConfigErrorCase{
            "SendAsDomainWildcard",
            GuardConfig(R"(, "send_as": ["a@example.com", "@example.com"])"),
            "accounts[0].send_as[1] is \"@example.com\": wildcards are not "
            "supported; list each address the mailbox may send as (Office "
            "365 grants Send As per address)"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

}  // namespace
}  // namespace xoauth2::helper
