// SPDX-License-Identifier: MIT
//
// Unit tests of the plugin's token-helper client (sasl-plugin/
// helper_client.h) against the scripted FakeHelper: request lines byte for
// byte, each way a request can fail (socket missing, stale socket,
// timeout, malformed or over-long answer) with its SASL code and operator
// message, the answer line limit at exactly the limit and one byte past, the
// helper's own reason when it answered and closed before reading (too many
// connections), and the mapping of every `err CODE` answer.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "helper_client.h"
#include "plugin_fake_helper.h"

namespace xoauth2::plugin {
namespace {

using testing_fake = xoauth2::testing::FakeHelper;
using std::chrono::milliseconds;

class HelperClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xoauth2-client-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "token.sock").string();
    endpoint_ = HelperEndpoint{path_, path_, 2000};
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::string path_;
  HelperEndpoint endpoint_;
};

TEST_F(HelperClientTest, FetchesAToken) {
  testing_fake helper(path_, {"ok eyJ0eXAi.TEST.SIG 1900000000\n"});
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(token->token, "eyJ0eXAi.TEST.SIG");
  EXPECT_EQ(token->expires, 1900000000);
  EXPECT_EQ(helper.Requests(),
            std::vector<std::string>{"v1 token relay@example.com\n"});
}

TEST_F(HelperClientTest, AcceptsAnAnswerEndedByCloseInsteadOfLf) {
  testing_fake helper(path_, {"ok eyJ0eXAi.TEST.SIG 1900000000"});
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_TRUE(token.has_value()) << token.error().message;
  EXPECT_EQ(token->token, "eyJ0eXAi.TEST.SIG");
}

TEST_F(HelperClientTest, ReportsARejectedToken) {
  testing_fake helper(path_, {"ok\n"});
  auto told = ReportRejected(endpoint_, "relay@example.com", "tok.EN");

  EXPECT_TRUE(told.has_value());
  EXPECT_EQ(helper.Requests(),
            std::vector<std::string>{"v1 reject relay@example.com tok.EN\n"});
}

TEST_F(HelperClientTest, MissingSocketSaysToStartTheHelper) {
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, SASL_UNAVAIL);
  EXPECT_NE(token.error().message.find(path_ + " does not exist"),
            std::string::npos);
  EXPECT_NE(token.error().message.find("start token-helper"),
            std::string::npos);
}

TEST_F(HelperClientTest, NamesThePathInsideTheChroot) {
  endpoint_.connect_path = "/nonexistent-jail-path/token.sock";
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_FALSE(token.has_value());
  EXPECT_NE(token.error().message.find(
                "(/nonexistent-jail-path/token.sock inside the chroot)"),
            std::string::npos)
      << token.error().message;
}

TEST_F(HelperClientTest, StaleSocketSaysNothingListens) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  close(fd);  // the file stays, nobody listens
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, SASL_UNAVAIL);
  EXPECT_NE(token.error().message.find("nothing listens"), std::string::npos);
}

TEST_F(HelperClientTest, SilentHelperTimesOutWithinTheBudget) {
  testing_fake helper(path_, {xoauth2::testing::kSilent});
  endpoint_.timeout_ms = 300;
  auto start = std::chrono::steady_clock::now();
  auto token = FetchToken(endpoint_, "relay@example.com");
  auto took = std::chrono::steady_clock::now() - start;

  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, SASL_UNAVAIL);
  EXPECT_NE(token.error().message.find("within 300 ms"), std::string::npos);
  EXPECT_GE(took, milliseconds(300));
  EXPECT_LT(took, milliseconds(3000));
}

// The helper answered and closed before reading the request: whether the
// send then fails or not, its reason is reported, not "Broken pipe".
TEST_F(HelperClientTest, ReportsTheReasonOfAHelperThatClosedUnread) {
  testing_fake helper(path_, {xoauth2::testing::kAnswerUnread +
                              "err unavailable too many connections; "
                              "try again\n"});
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, SASL_TRYAGAIN);
  EXPECT_NE(token.error().message.find("too many connections"),
            std::string::npos)
      << token.error().message;
  EXPECT_EQ(token.error().message.find("Broken pipe"), std::string::npos);
}

// The same with the order fixed: the answer is in and the peer gone
// before the request is sent, so send fails with EPIPE.
TEST_F(HelperClientTest, ReadsTheAnswerAfterBrokenPipe) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  std::string answer = "err unavailable too many connections; try again\n";
  ASSERT_EQ(write(fds[1], answer.data(), answer.size()),
            static_cast<ssize_t>(answer.size()));
  close(fds[1]);
  auto line = ExchangeOnSocket(endpoint_, fds[0], "v1 token a@b\n");
  close(fds[0]);

  ASSERT_TRUE(line.has_value()) << line.error().message;
  EXPECT_EQ(*line, "err unavailable too many connections; try again");
}

// Nothing to read after the broken pipe: the send error is reported.
TEST_F(HelperClientTest, BrokenPipeWithoutAnswerNamesTheSendError) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  close(fds[1]);
  auto line = ExchangeOnSocket(endpoint_, fds[0], "v1 token a@b\n");
  close(fds[0]);

  ASSERT_FALSE(line.has_value());
  EXPECT_EQ(line.error().code, SASL_UNAVAIL);
  EXPECT_NE(line.error().message.find("cannot send to token-helper on " +
                                      path_ + ": Broken pipe"),
            std::string::npos)
      << line.error().message;
}

struct MalformedCase {
  std::string reply;
  std::string_view message_part;
};

class Malformed : public HelperClientTest,
                  public ::testing::WithParamInterface<MalformedCase> {};

TEST_P(Malformed, IsAProtocolErrorThatNeverEchoesTheAnswer) {
  testing_fake helper(path_, {GetParam().reply});
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, SASL_BADPROT);
  EXPECT_EQ(token.error().level, SASL_LOG_ERR);
  EXPECT_NE(token.error().message.find(GetParam().message_part),
            std::string::npos)
      << token.error().message;
  EXPECT_EQ(token.error().message.find("secretish"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Malformed,
    ::testing::Values(MalformedCase{"hello secretish\n", "neither ok nor err"},
                      MalformedCase{std::string(20000, 'a'), "line too long"},
                      MalformedCase{"ok secretish\n", "malformed ok line"},
                      MalformedCase{"ok secretish soon\n", "malformed expiry"},
                      MalformedCase{"ok\n", "ok without a token"},
                      MalformedCase{"err bogus secretish\n",
                                    "unknown error code"},
                      MalformedCase{"\n", "empty answer"}));

TEST_F(HelperClientTest, AcceptsTheLongestAllowedToken) {
  std::string token(protocol::kMaxTokenBytes, 't');
  testing_fake helper(path_, {"ok " + token + " 1900000000\n"});
  auto fetched = FetchToken(endpoint_, "relay@example.com");

  ASSERT_TRUE(fetched.has_value()) << fetched.error().message;
  EXPECT_EQ(fetched->token, token);
}

// The answer line limit (protocol::kMaxResponseBytes, with its LF): an
// `err unavailable` line of exactly that size is read and mapped; one byte
// more is a protocol error naming the limit. Also when the answer ends by
// close instead of LF (the LF's byte then counts as the one more).
struct LineLimitCase {
  const char* name;
  std::size_t bytes;  // the whole answer, LF included when `lf`
  bool lf;
  int code;
  std::string_view message_part;
};

class ResponseLineLimit : public HelperClientTest,
                          public ::testing::WithParamInterface<LineLimitCase> {
};

TEST_P(ResponseLineLimit, AtTheLimitIsReadPastItIsRefused) {
  const LineLimitCase& limit_case = GetParam();
  std::string prefix = "err unavailable ";
  std::size_t text = limit_case.bytes - prefix.size() - (limit_case.lf ? 1 : 0);
  std::string answer =
      prefix + std::string(text, 'x') + (limit_case.lf ? "\n" : "");
  ASSERT_EQ(answer.size(), limit_case.bytes);
  testing_fake helper(path_, {answer});
  auto token = FetchToken(endpoint_, "relay@example.com");

  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.error().code, limit_case.code);
  EXPECT_NE(token.error().message.find(limit_case.message_part),
            std::string::npos)
      << token.error().message.substr(0, 300);
}

constexpr std::size_t kLimit = protocol::kMaxResponseBytes;

INSTANTIATE_TEST_SUITE_P(
    Cases, ResponseLineLimit,
    ::testing::Values(
        LineLimitCase{"AtLimit", kLimit, true, SASL_TRYAGAIN,
                      "answered unavailable"},
        LineLimitCase{"PastLimit", kLimit + 1, true, SASL_BADPROT,
                      "line too long (over 16384 bytes with its LF)"},
        LineLimitCase{"AtLimitClosed", kLimit - 1, false, SASL_TRYAGAIN,
                      "answered unavailable"},
        LineLimitCase{"PastLimitClosed", kLimit, false, SASL_BADPROT,
                      "line too long (over 16384 bytes with its LF)"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

struct HelperErrCase {
  protocol::ErrorCode code;
  int sasl_code;
  int level;
  std::string_view message_part;
};

class HelperErr : public ::testing::TestWithParam<HelperErrCase> {};

TEST_P(HelperErr, MapsToACodeAndNamesTheFix) {
  protocol::Response response;
  response.code = GetParam().code;
  response.text = "the helper's words";
  Failure failure =
      FailureFromHelper(response, "relay@example.com", "/run/t.sock", 107);

  EXPECT_EQ(failure.code, GetParam().sasl_code);
  EXPECT_EQ(failure.level, GetParam().level);
  EXPECT_NE(failure.message.find(GetParam().message_part), std::string::npos)
      << failure.message;
  EXPECT_NE(failure.message.find("the helper's words"), std::string::npos);
  EXPECT_NE(failure.message.find("/run/t.sock"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HelperErr,
    ::testing::Values(
        HelperErrCase{protocol::ErrorCode::kDenied, SASL_UNAVAIL, SASL_LOG_WARN,
                      "uid 107 is not allowed; add it to "
                      "allowed_users"},
        HelperErrCase{protocol::ErrorCode::kNoAccount, SASL_NOUSER,
                      SASL_LOG_WARN,
                      "add an account for mailbox relay@example.com"},
        HelperErrCase{protocol::ErrorCode::kUnavailable, SASL_TRYAGAIN,
                      SASL_LOG_WARN, "answered unavailable"},
        HelperErrCase{protocol::ErrorCode::kBadRequest, SASL_FAIL, SASL_LOG_ERR,
                      "same release"},
        HelperErrCase{protocol::ErrorCode::kUnsupportedVersion, SASL_FAIL,
                      SASL_LOG_ERR, "same release"},
        HelperErrCase{protocol::ErrorCode::kInternal, SASL_FAIL, SASL_LOG_ERR,
                      "a bug in token-helper"}));

}  // namespace
}  // namespace xoauth2::plugin
