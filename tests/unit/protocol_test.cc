// SPDX-License-Identifier: MIT
//
// Unit tests of the token socket protocol codec (common/protocol.h): every
// request and response form byte for byte, each malformed input with the
// error code a server answers it with, and every field and line limit at
// exactly the limit and one byte past it.

#include "protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <tuple>

namespace xoauth2::protocol {
namespace {

TEST(ProtocolRequest, FormatsTokenRequestByteForByte) {
  Request request{Verb::kToken, "relay@example.com", ""};
  EXPECT_EQ(FormatRequest(request), "v1 token relay@example.com\n");
}

TEST(ProtocolRequest, FormatsRejectRequestByteForByte) {
  Request request{Verb::kReject, "relay@example.com", "eyJ0.A.B"};
  EXPECT_EQ(FormatRequest(request), "v1 reject relay@example.com eyJ0.A.B\n");
}

TEST(ProtocolRequest, FormatsStatusRequestByteForByte) {
  EXPECT_EQ(FormatRequest(Request{Verb::kStatus, "", ""}), "v1 status\n");
}

TEST(ProtocolRequest, RoundTripsEveryVerb) {
  for (const Request& in :
       {Request{Verb::kToken, "a@b", ""}, Request{Verb::kReject, "a@b", "t"},
        Request{Verb::kStatus, "", ""}}) {
    auto out = ParseRequest(FormatRequest(in));
    ASSERT_TRUE(out.has_value()) << out.error().text;
    EXPECT_EQ(out->verb, in.verb);
    EXPECT_EQ(out->mailbox, in.mailbox);
    EXPECT_EQ(out->token, in.token);
  }
}

struct BadRequestCase {
  std::string line;
  ErrorCode code;
};

class ProtocolBadRequest : public testing::TestWithParam<BadRequestCase> {};

TEST_P(ProtocolBadRequest, IsRefusedWithCode) {
  auto out = ParseRequest(GetParam().line);
  ASSERT_FALSE(out.has_value());
  EXPECT_EQ(out.error().code, GetParam().code);
  EXPECT_FALSE(out.error().text.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ProtocolBadRequest,
    testing::Values(
        BadRequestCase{"", ErrorCode::kUnsupportedVersion},
        BadRequestCase{"v2 token a@b\n", ErrorCode::kUnsupportedVersion},
        BadRequestCase{"token a@b\n", ErrorCode::kUnsupportedVersion},
        BadRequestCase{"v1\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 fetch a@b\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token a@b extra\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token nobody\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token a@b@c\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token @b\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token a@\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token a@b\r\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token a\x01@b\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1  token a@b\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 reject a@b\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 reject a@b t u\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 status a@b\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 status \n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 STATUS\n", ErrorCode::kBadRequest},
        BadRequestCase{"v1 token " + std::string(255, 'a') + "@b\n",
                       ErrorCode::kBadRequest},
        BadRequestCase{"v1 token a@b\n" + std::string(kMaxRequestBytes, 'x'),
                       ErrorCode::kBadRequest}));

// The longest valid request, a reject with mailbox and token at their
// limits, fits the line exactly; one byte more is refused for its length.
TEST(ProtocolRequest, AcceptsRequestExactlyAtTheLimit) {
  std::string mailbox = std::string(kMaxMailboxBytes - 2, 'm') + "@b";
  std::string token(kMaxTokenBytes, 't');
  std::string line = "v1 reject " + mailbox + " " + token + "\n";
  ASSERT_EQ(line.size(), kMaxRequestBytes);
  auto parsed = ParseRequest(line);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().text;
  EXPECT_EQ(parsed->token, token);

  auto longer = ParseRequest("v1 reject " + mailbox + " " + token + "t\n");
  ASSERT_FALSE(longer.has_value());
  EXPECT_EQ(longer.error().text, "request longer than 12554 bytes");
}

TEST(ProtocolResponse, FormatsEachFormByteForByte) {
  EXPECT_EQ(FormatResponse(Response{true, "tok", 1700000000, {}, "", ""}),
            "ok tok 1700000000\n");
  EXPECT_EQ(FormatResponse(Response{true, "", 0, {}, "", ""}), "ok\n");
  Response err{false, "", 0, ErrorCode::kNoAccount, "no account for a@b", ""};
  EXPECT_EQ(FormatResponse(err), "err no-account no account for a@b\n");
}

TEST(ProtocolResponse, ParsesEachForm) {
  auto ok = ParseResponse("ok tok 1700000000\n");
  ASSERT_TRUE(ok.has_value());
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->token, "tok");
  EXPECT_EQ(ok->expires, 1700000000);

  auto bare = ParseResponse("ok\n");
  ASSERT_TRUE(bare.has_value());
  EXPECT_TRUE(bare->ok);
  EXPECT_TRUE(bare->token.empty());

  auto err = ParseResponse("err unavailable token endpoint unreachable\n");
  ASSERT_TRUE(err.has_value());
  EXPECT_FALSE(err->ok);
  EXPECT_EQ(err->code, ErrorCode::kUnavailable);
  EXPECT_EQ(err->text, "token endpoint unreachable");
}

TEST(ProtocolResponse, RefusesMalformedLines) {
  for (std::string line : {"", "OK tok 1\n", "ok tok\n", "ok tok 12x\n",
                           "ok tok -5\n", "ok tok 1 2\n", "ok t\x01k 1\n",
                           "err\n", "err nonsense text\n", "hello\n"}) {
    EXPECT_FALSE(ParseResponse(line).has_value()) << line;
  }
  EXPECT_FALSE(ParseResponse(std::string(kMaxResponseBytes + 1, 'o')));
}

TEST(ProtocolResponse, ErrorTextIsSanitizedAndBounded) {
  Response err{false,
               "",
               0,
               ErrorCode::kInternal,
               "line\nbreak\x01" + std::string(20000, 'x'),
               ""};
  std::string line = FormatResponse(err);
  EXPECT_EQ(line.size(), kMaxResponseBytes);
  EXPECT_EQ(line.find('\n'), line.size() - 1);
  EXPECT_TRUE(line.starts_with("err internal line?break?x"));
  EXPECT_TRUE(ParseResponse(line).has_value());
}

TEST(ProtocolResponse, LongestTokenFitsInAResponse) {
  Response ok{true, std::string(kMaxTokenBytes, 'T'), 4102444800, {}, "", ""};
  std::string line = FormatResponse(ok);
  EXPECT_LE(line.size(), kMaxResponseBytes);
  auto parsed = ParseResponse(line);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->token.size(), kMaxTokenBytes);
}

// `ok-status` carries one line of JSON; the codec checks only its bytes.
TEST(ProtocolStatus, FormatsAndParsesByteForByte) {
  Response status;
  status.ok = true;
  status.status = R"({"accounts":[{"name":"relay","state":"healthy"}]})";
  std::string line = FormatResponse(status);
  EXPECT_EQ(line,
            "ok-status {\"accounts\":[{\"name\":\"relay\","
            "\"state\":\"healthy\"}]}\n");
  auto parsed = ParseResponse(line);
  ASSERT_TRUE(parsed.has_value()) << parsed.error().text;
  EXPECT_TRUE(parsed->ok);
  EXPECT_TRUE(parsed->token.empty());
  EXPECT_EQ(parsed->status, status.status);
}

TEST(ProtocolStatus, LargestStatusFitsAndLargerIsRefused) {
  Response status;
  status.ok = true;
  status.status = std::string(kMaxStatusBytes, 'x');
  std::string line = FormatResponse(status);
  EXPECT_EQ(line.size(), kMaxResponseBytes);
  EXPECT_TRUE(ParseResponse(line).has_value());

  status.status += 'x';
  EXPECT_TRUE(FormatResponse(status).starts_with("err internal "));
  status.status = "{\"a\":\"line\nbreak\"}";
  EXPECT_TRUE(FormatResponse(status).starts_with("err internal "));
}

// One field limit: a line whose field is exactly at its limit parses,
// the same line with one byte more is refused with `refused_text`.
struct FieldLimitCase {
  const char* name;
  std::string (*line)(std::size_t field_bytes);  // the line around it
  std::size_t limit;
  bool request;  // ParseRequest, else ParseResponse
  const char* refused_text;
};

// `v1 token M@b` with a mailbox of `bytes` bytes.
std::string MailboxRequest(std::size_t bytes) {
  return "v1 token " + std::string(bytes - 2, 'm') + "@b\n";
}

// `v1 reject M T` of `bytes` bytes in all, the mailbox at its limit and
// the token taking the rest (at the line limit, the token's limit too).
std::string RejectRequest(std::size_t bytes) {
  std::string prefix =
      "v1 reject " + std::string(kMaxMailboxBytes - 2, 'm') + "@b ";
  return prefix + std::string(bytes - prefix.size() - 1, 't') + "\n";
}

// `ok T 1900000000` with a token of `bytes` bytes.
std::string TokenResponse(std::size_t bytes) {
  return "ok " + std::string(bytes, 'T') + " 1900000000\n";
}

// `ok-status J` with a status of `bytes` bytes.
std::string StatusResponse(std::size_t bytes) {
  return "ok-status " + std::string(bytes, 'x') + "\n";
}

// An `err` line of `bytes` bytes in all.
std::string ErrResponse(std::size_t bytes) {
  return "err unavailable " + std::string(bytes - 17, 'x') + "\n";
}

class ProtocolFieldLimit
    : public ::testing::TestWithParam<std::tuple<FieldLimitCase, bool>> {};

TEST_P(ProtocolFieldLimit, AtTheLimitParsesOneMoreIsRefused) {
  const auto& [limit_case, past] = GetParam();
  std::string line = limit_case.line(limit_case.limit + (past ? 1 : 0));
  std::string error;
  if (limit_case.request) {
    auto parsed = ParseRequest(line);
    error = parsed ? "" : parsed.error().text;
  } else {
    auto parsed = ParseResponse(line);
    error = parsed ? "" : parsed.error().text;
  }
  if (!past) {
    EXPECT_EQ(error, "");
  } else {
    EXPECT_EQ(error, limit_case.refused_text);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, ProtocolFieldLimit,
    ::testing::Combine(
        ::testing::Values(
            FieldLimitCase{"Mailbox", MailboxRequest, kMaxMailboxBytes, true,
                           "malformed mailbox"},
            FieldLimitCase{"RequestLine", RejectRequest, kMaxRequestBytes, true,
                           "request longer than 12554 bytes"},
            FieldLimitCase{"Token", TokenResponse, kMaxTokenBytes, false,
                           "malformed token in ok line"},
            FieldLimitCase{"Status", StatusResponse, kMaxStatusBytes, false,
                           "response longer than 16384 bytes"},
            FieldLimitCase{"ResponseLine", ErrResponse, kMaxResponseBytes,
                           false, "response longer than 16384 bytes"}),
        ::testing::Bool()),
    [](const auto& param_info) {
      return std::string(std::get<0>(param_info.param).name) +
             (std::get<1>(param_info.param) ? "PastLimit" : "AtLimit");
    });

TEST(ProtocolStatus, RefusesMalformedStatusLines) {
  for (std::string line :
       {"ok-status \n", "ok-status\n", "ok-status {\x01}\n", "ok-status{}\n"}) {
    EXPECT_FALSE(ParseResponse(line).has_value()) << line;
  }
}

}  // namespace
}  // namespace xoauth2::protocol
