// SPDX-License-Identifier: MIT
//
// Unit tests of Secret masking, ShortHash and the log line format: a
// formatted Secret shows only the mask, log values are quoted when needed,
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
