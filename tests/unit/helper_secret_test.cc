// SPDX-License-Identifier: MIT
//
// Unit tests of Secret masking, ShortHash, SecretMask and the log line
// format: a formatted Secret shows only the mask, SecretMask hides a value
// raw and percent-encoded in any text, log values are quoted when needed,
// and a Secret cannot be passed as a log field.

#include <gtest/gtest.h>

#include <sstream>
#include <type_traits>

#include "helper_test_util.h"
#include "log.h"
#include "secret.h"

namespace xoauth2::helper {
namespace {

static_assert(
    !std::is_constructible_v<LogField, std::string_view, const Secret&>,
    "a Secret must not be loggable as a field");

TEST(HelperSecret, FormattingPrintsMaskOnly) {
  Secret secret("eyJ0eXAi.TEST.SIG");
  std::ostringstream out;
  out << "token=" << secret;
  EXPECT_EQ(out.str(), "token=<redacted>");
  EXPECT_EQ(secret.Reveal(), "eyJ0eXAi.TEST.SIG");
}

TEST(HelperSecret, MoveLeavesSourceEmpty) {
  Secret source("abc");
  Secret target(std::move(source));
  EXPECT_TRUE(source.empty());  // NOLINT: moved-from state is specified
  EXPECT_EQ(target.Reveal(), "abc");
}

TEST(HelperSecret, ShortHashIsSha256Prefix) {
  // SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223...
  EXPECT_EQ(ShortHash("abc"), "sha256:ba7816bf8f01");
  EXPECT_EQ(ShortHash(""), "sha256:e3b0c44298fc");
}

struct MaskCase {
  const char* name;
  std::string text;
  std::string masked;
};

// Masks the secret "Xy7~Q8+/=a b" and the token "0.AR-tok/en".
class HelperSecretMask : public ::testing::TestWithParam<MaskCase> {};

TEST_P(HelperSecretMask, ReplacesEveryForm) {
  SecretMask mask;
  mask.AddSecret("Xy7~Q8+/=a b");
  mask.AddToken("0.AR-tok/en");
  mask.AddSecret("");
  mask.AddToken("");
  EXPECT_EQ(mask.Apply(GetParam().text), GetParam().masked);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperSecretMask,
    ::testing::Values(
        MaskCase{"Nothing", "AADSTS7000215: Invalid client secret.",
                 "AADSTS7000215: Invalid client secret."},
        MaskCase{"Empty", "", ""},
        MaskCase{"Raw", "got 'Xy7~Q8+/=a b'.", "got '<redacted>'."},
        MaskCase{"PercentUpper", "client_secret=Xy7~Q8%2B%2F%3Da%20b&x",
                 "client_secret=<redacted>&x"},
        MaskCase{"PercentLower", "Xy7~Q8%2b%2f%3da%20b", "<redacted>"},
        MaskCase{"FormPlus", "Xy7~Q8%2B%2F%3Da+b", "<redacted>"},
        MaskCase{
            "TwiceAndToken", "Xy7~Q8+/=a bXy7~Q8+/=a b 0.AR-tok%2Fen",
            "<redacted><redacted> <redacted " + ShortHash("0.AR-tok/en") + ">"},
        MaskCase{"Prefix", "Xy7~Q8+/=a", "Xy7~Q8+/=a"},
        MaskCase{"UnreservedEncodedToo", "(Xy7%7EQ8%2b%2F%3Da%20b)",
                 "(<redacted>)"},
        MaskCase{"MixedEncoding", "Xy7~Q8+%2F=a+b", "<redacted>"},
        MaskCase{"EveryByteEncoded", "%58%79%37%7e%51%38%2b%2f%3d%61%20%62",
                 "<redacted>"},
        MaskCase{"BadEscapeIsText", "Xy7~Q8%2G/=a b", "Xy7~Q8%2G/=a b"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// Where one value starts another, the longer is masked whole.
TEST(HelperSecretMask, LongestValueWins) {
  SecretMask inner;
  inner.AddSecret("pass");
  SecretMask mask;
  mask.AddSecret("password1");
  mask.Merge(inner);
  EXPECT_EQ(mask.Apply("password1 pass password"),
            "<redacted> <redacted> <redacted>word");
}

struct LogCase {
  const char* name;
  std::string value;
  std::string shown;
};

class HelperLogValue : public ::testing::TestWithParam<LogCase> {};

TEST_P(HelperLogValue, Quoting) {
  EXPECT_EQ(FormatLogFields(LogLevel::kWarn, "e", {{"k", GetParam().value}}),
            "level=warn event=e k=" + GetParam().shown);
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperLogValue,
    ::testing::Values(LogCase{"Plain", "relay@example.com",
                              "relay@example.com"},
                      LogCase{"Space", "a b", "\"a b\""},
                      LogCase{"Quote", "say \"hi\"", "\"say \\\"hi\\\"\""},
                      LogCase{"Equals", "a=b", "\"a=b\""},
                      LogCase{"Newline", "a\nb", "a?b"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

TEST(HelperLog, LineFormatAndThreshold) {
  testing::LogCapture capture;
  SetLogLevel(LogLevel::kInfo);
  Log(LogLevel::kDebug, "hidden", {});
  Log(LogLevel::kInfo, "token_fetched",
      {{"account", "relay"},
       {"expires_in", 3599},
       {"token", ShortHash("abc")}});
  auto lines = capture.Lines();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0], "xoauth2-relay[" + std::to_string(getpid()) +
                          "]: level=info event=token_fetched account=relay "
                          "expires_in=3599 token=sha256:ba7816bf8f01");
}

TEST(HelperLog, EmptyFieldsLeftOut) {
  EXPECT_EQ(FormatLogFields(LogLevel::kInfo, "e", {{"a", ""}, {"b", "1"}}),
            "level=info event=e b=1");
}

TEST(HelperLog, LevelNames) {
  for (LogLevel level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    EXPECT_EQ(ParseLogLevel(LogLevelName(level)), level);
  }
  EXPECT_FALSE(ParseLogLevel("verbose"));
}

}  // namespace
}  // namespace xoauth2::helper
