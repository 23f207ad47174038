// SPDX-License-Identifier: MIT
//
// Integration tests of the real plugin loaded by the real libsasl2: each
// test points libsasl2 at the build directory holding only libxoauth2.so
// (SASL_CB_GETPATH), sets the plugin's environment, initialises the
// library (the plugin reads its environment at init, so every test has
// its own sasl_client_init/sasl_client_done), and runs sasl_client_start
// and sasl_client_step against the scripted FakeHelper, as Postfix
// smtp(8) does. Checks the bytes sent, the requests the helper got, the
// SASL codes, and the lines given to the host's SASL_CB_LOG callback
// (field reports F03, F16, F19: failures reported through the host's log,
// clean and named; no token in any line). Both mechanisms of the plugin
// are driven: XOAUTH2 throughout, OAUTHBEARER (RFC 7628) for its own
// response bytes, its host= and port= pairs taken from sasl_client_new's
// arguments, and its 0x01 reply to an error challenge.

#include <gtest/gtest.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "plugin_fake_helper.h"

namespace xoauth2::testing {
namespace {

constexpr std::string_view kMailbox = "relay@example.com";
constexpr std::string_view kToken = "eyJ0eXAi.TEST.SIG";
const std::string kOkLine = "ok eyJ0eXAi.TEST.SIG 1900000000\n";
const std::string kResponse =
    "user=relay@example.com\x01"
    "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01";
constexpr std::string_view kResponseBase64 =
    "dXNlcj1yZWxheUBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciBleUowZVhBaS5URVNULlNJR"
    "wEB";
constexpr std::string_view kGmailError =
    R"({"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"})";
// OAUTHBEARER for the same mailbox and token to smtp.example.com with no
// addresses given (as Postfix calls sasl_client_new): no port= pair.
const std::string kBearerResponse =
    "n,a=relay@example.com,\x01"
    "host=smtp.example.com\x01"
    "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01";
// The worked example of plugin_response_test.cc: host smtp.gmail.com,
// remote address 127.0.0.1;587.
const std::string kBearerResponseWithPort =
    "n,a=relay@example.com,\x01"
    "host=smtp.gmail.com\x01"
    "port=587\x01"
    "auth=Bearer eyJ0eXAi.TEST.SIG\x01\x01";
constexpr std::string_view kBearerResponseWithPortBase64 =
    "bixhPXJlbGF5QGV4YW1wbGUuY29tLAFob3N0PXNtdHAuZ21haWwuY29tAXBvcnQ9NTg3AWF1"
    "dGg9QmVhcmVyIGV5SjBlWEFpLlRFU1QuU0lHAQE=";

// Lines the plugin gave to the host's log callback: (level, text).
std::vector<std::pair<int, std::string>> g_log;

int LogLine(void*, int level, const char* message) {
  g_log.emplace_back(level, message);
  return SASL_OK;
}

int PluginPath(void*, const char** path) {
  *path = XOAUTH2_PLUGIN_DIR;
  return SASL_OK;
}

// The mailbox callback; the context is the std::string to hand out.
int Simple(void* context, int, const char** result, unsigned* len) {
  const auto* value = static_cast<const std::string*>(context);
  *result = value->c_str();
  if (len != nullptr)
    *len = static_cast<unsigned>(value->size());
  return SASL_OK;
}

// Cyrus stores callbacks as int (*)(void); void (*)() bridges the types.
using CallbackProc = int (*)(void);
template <typename F>
CallbackProc Callback(F* function) {
  return reinterpret_cast<CallbackProc>(reinterpret_cast<void (*)()>(function));
}

class SaslTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/xoauth2-sasl-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = (dir_ / "token.sock").string();
    g_log.clear();
  }

  void TearDown() override {
    if (conn_ != nullptr)
      sasl_dispose(&conn_);
    if (initialized_)
      sasl_client_done();
    unsetenv("XOAUTH2_RELAY_SOCKET");
    unsetenv("XOAUTH2_RELAY_TIMEOUT_MS");
    std::filesystem::remove_all(dir_);
  }

  // Sets the plugin's environment, then loads it through libsasl2.
  void Init(const std::string& socket, const char* timeout_ms = nullptr) {
    setenv("XOAUTH2_RELAY_SOCKET", socket.c_str(), 1);
    if (timeout_ms != nullptr) {
      setenv("XOAUTH2_RELAY_TIMEOUT_MS", timeout_ms, 1);
    }
    ASSERT_EQ(sasl_client_init(kGlobalCallbacks), SASL_OK);
    initialized_ = true;
  }

  // A connection as Postfix makes it, with smtp_sasl_security_options =
  // noanonymous and the given per-connection callbacks; Postfix gives the
  // server's name and no addresses (`remote` "ADDRESS;PORT" or nullptr).
  void Connect(const sasl_callback_t* callbacks,
               const char* server = "smtp.example.com",
               const char* remote = nullptr) {
    const char* local = remote != nullptr ? "127.0.0.1;40000" : nullptr;
    ASSERT_EQ(
        sasl_client_new("smtp", server, local, remote, callbacks, 0, &conn_),
        SASL_OK);
    sasl_security_properties_t props{};
    props.max_ssf = 1;
    props.maxbufsize = 4096;
    props.security_flags = SASL_SEC_NOANONYMOUS;
    ASSERT_EQ(sasl_setprop(conn_, SASL_SEC_PROPS, &props), SASL_OK);
  }

  // Init + Connect with an authname callback returning `authname`.
  void Ready(const char* timeout_ms = nullptr) {
    Init(path_, timeout_ms);
    Connect(authname_callbacks_);
  }

  // sasl_client_start with room for an initial response; `mechlist` is
  // what the server advertised. The chosen mechanism goes to mech_.
  int Start(const char* mechlist = "XOAUTH2") {
    return sasl_client_start(conn_, mechlist, nullptr, &out_, &out_len_,
                             &mech_);
  }

  int Step(std::string_view server_in) {
    return sasl_client_step(conn_, server_in.data(),
                            static_cast<unsigned>(server_in.size()), nullptr,
                            &out_, &out_len_);
  }

  std::string Out() const { return std::string(out_, out_len_); }

  // The first log line holding `part`, or "" when there is none.
  static std::string LogWith(std::string_view part, int level) {
    for (const auto& [line_level, line] : g_log) {
      if (line_level == level && line.find(part) != std::string::npos) {
        return line;
      }
    }
    return "";
  }

  static std::size_t CountLogged(std::string_view part) {
    std::size_t count = 0;
    for (const auto& entry : g_log) {
      if (entry.second.find(part) != std::string::npos)
        ++count;
    }
    return count;
  }

  static void ExpectNoTokenLogged() {
    for (const auto& [level, line] : g_log) {
      EXPECT_EQ(line.find(kToken), std::string::npos) << line;
    }
  }

  static inline const sasl_callback_t kGlobalCallbacks[] = {
      {SASL_CB_GETPATH, Callback(&PluginPath), nullptr},
      {SASL_CB_LOG, Callback(&LogLine), nullptr},
      {SASL_CB_LIST_END, nullptr, nullptr},
  };

  std::filesystem::path dir_;
  std::string path_;
  std::string authname_{kMailbox};
  sasl_callback_t authname_callbacks_[2] = {
      {SASL_CB_AUTHNAME, Callback(&Simple), &authname_},
      {SASL_CB_LIST_END, nullptr, nullptr},
  };
  bool initialized_ = false;
  sasl_conn_t* conn_ = nullptr;
  const char* out_ = nullptr;
  unsigned out_len_ = 0;
  const char* mech_ = nullptr;
};

TEST_F(SaslTest, SendsTheInitialResponseOnTheAuthLine) {
  FakeHelper helper(path_, {kOkLine});
  Ready();

  ASSERT_EQ(Start(), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kResponse);
  char b64[256];
  unsigned b64_len = 0;
  ASSERT_EQ(sasl_encode64(out_, out_len_, b64, sizeof(b64), &b64_len), SASL_OK);
  EXPECT_EQ(std::string_view(b64, b64_len), kResponseBase64);
  EXPECT_EQ(helper.Requests(),
            std::vector<std::string>{"v1 token relay@example.com\n"});

  // 235 from the server; a final empty step completes the exchange.
  EXPECT_EQ(Step(""), SASL_OK);
  const void* user = nullptr;
  ASSERT_EQ(sasl_getprop(conn_, SASL_USERNAME, &user), SASL_OK);
  EXPECT_STREQ(static_cast<const char*>(user), "relay@example.com");
  EXPECT_NE(
      LogWith("event=token-sent mailbox=relay@example.com", SASL_LOG_NOTE), "");
  ExpectNoTokenLogged();
}

TEST_F(SaslTest, AnswersAnEmptyServerFirst334) {
  FakeHelper helper(path_, {kOkLine});
  Ready();
  const char* mech = nullptr;

  // No room for an initial response: the library waits for the server.
  ASSERT_EQ(
      sasl_client_start(conn_, "XOAUTH2", nullptr, nullptr, nullptr, &mech),
      SASL_CONTINUE);
  EXPECT_STREQ(mech, "XOAUTH2");
  EXPECT_TRUE(helper.Requests().empty());

  ASSERT_EQ(Step(""), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kResponse);
}

TEST_F(SaslTest, ErrorChallengeGetsAnEmptyReplyAndIsReported) {
  FakeHelper helper(path_, {kOkLine, "ok\n"});
  Ready();
  ASSERT_EQ(Start(), SASL_CONTINUE);

  // Gmail's 334 error (Postfix hands the decoded text to the step).
  ASSERT_EQ(Step(kGmailError), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(out_len_, 0u);
  ASSERT_TRUE(helper.WaitForRequests(2, std::chrono::seconds(5)));
  EXPECT_EQ(helper.Requests().at(1),
            "v1 reject relay@example.com eyJ0eXAi.TEST.SIG\n");
  std::string line = LogWith("event=token-refused", SASL_LOG_WARN);
  EXPECT_NE(line.find("mailbox=relay@example.com"), std::string::npos);
  // The JSON's quotes become single quotes so the field stays one value.
  std::string logged(kGmailError);
  std::replace(logged.begin(), logged.end(), '"', '\'');
  EXPECT_NE(line.find("challenge=\"" + logged + "\" "), std::string::npos)
      << line;
  EXPECT_NE(line.find("helper=told"), std::string::npos) << line;
  ExpectNoTokenLogged();

  // Nothing more is expected from the server but its 535.
  EXPECT_EQ(Step("again"), SASL_BADPROT);
}

TEST_F(SaslTest, ErrorChallengeStillAnsweredWhenTheHelperIsGone) {
  auto helper = std::make_unique<FakeHelper>(path_, std::vector{kOkLine});
  Ready("300");
  ASSERT_EQ(Start(), SASL_CONTINUE);
  helper.reset();

  EXPECT_EQ(Step(kGmailError), SASL_CONTINUE);
  EXPECT_EQ(out_len_, 0u);
  EXPECT_NE(LogWith("helper=not-told", SASL_LOG_WARN), "");
}

TEST_F(SaslTest, MissingHelperIsLoggedWithTheSocketPath) {
  Ready();

  EXPECT_EQ(Start(), SASL_UNAVAIL);
  std::string line = LogWith("event=auth-failed", SASL_LOG_WARN);
  EXPECT_NE(line.find("socket=" + path_), std::string::npos) << line;
  EXPECT_NE(line.find("code=SASL_UNAVAIL"), std::string::npos) << line;
  EXPECT_NE(line.find("start token-helper"), std::string::npos) << line;
  EXPECT_NE(std::string(sasl_errdetail(conn_)).find(path_ + " does not exist"),
            std::string::npos);
}

struct HelperAnswerCase {
  std::string reply;
  int sasl_code;
  int level;
  std::string_view log_part;
};

class HelperAnswer : public SaslTest,
                     public ::testing::WithParamInterface<HelperAnswerCase> {};

TEST_P(HelperAnswer, FailsWithACodeAndALoggedFix) {
  FakeHelper helper(path_, {GetParam().reply});
  Ready();

  EXPECT_EQ(Start(), GetParam().sasl_code);
  std::string line = LogWith("event=auth-failed", GetParam().level);
  EXPECT_NE(line.find("mailbox=relay@example.com"), std::string::npos) << line;
  EXPECT_NE(line.find(GetParam().log_part), std::string::npos) << line;
  EXPECT_EQ(CountLogged("event=auth-failed"), 1u);  // logged once
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HelperAnswer,
    ::testing::Values(
        HelperAnswerCase{"err no-account no account for relay@example.com\n",
                         SASL_NOUSER, SASL_LOG_WARN,
                         "add an account for mailbox relay@example.com"},
        HelperAnswerCase{"err unavailable token endpoint unreachable\n",
                         SASL_TRYAGAIN, SASL_LOG_WARN,
                         "token endpoint unreachable"},
        HelperAnswerCase{"err denied peer not allowed\n", SASL_UNAVAIL,
                         SASL_LOG_WARN, "allowed_users"},
        HelperAnswerCase{"garbage\n", SASL_BADPROT, SASL_LOG_ERR,
                         "malformed answer from token-helper"},
        HelperAnswerCase{std::string(20000, 'x'), SASL_BADPROT, SASL_LOG_ERR,
                         "line too long"}));

TEST_F(SaslTest, DeniedNamesTheUid) {
  FakeHelper helper(path_, {"err denied peer not allowed\n"});
  Ready();

  EXPECT_EQ(Start(), SASL_UNAVAIL);
  EXPECT_NE(LogWith("uid " + std::to_string(geteuid()) + " is not allowed",
                    SASL_LOG_WARN),
            "");
}

TEST_F(SaslTest, SilentHelperTimesOut) {
  FakeHelper helper(path_, {kSilent});
  Ready("300");
  auto start = std::chrono::steady_clock::now();

  EXPECT_EQ(Start(), SASL_UNAVAIL);
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, std::chrono::milliseconds(300));
  EXPECT_LT(took, std::chrono::milliseconds(3000));
  EXPECT_NE(LogWith("did not answer", SASL_LOG_WARN), "");
}

TEST_F(SaslTest, EmptyMailboxIsACleanNamedFailure) {
  FakeHelper helper(path_, {kOkLine});
  authname_.clear();  // sasl_passwd entry with an empty user part (F16)
  Ready();

  EXPECT_EQ(Start(), SASL_NOUSER);
  std::string line = LogWith("no mailbox given", SASL_LOG_WARN);
  EXPECT_NE(line.find("smtp_sasl_password_maps"), std::string::npos) << line;
  EXPECT_TRUE(helper.Requests().empty());
}

TEST_F(SaslTest, FallsBackToTheUserCallback) {
  FakeHelper helper(path_, {kOkLine});
  std::string user(kMailbox);
  sasl_callback_t callbacks[] = {
      {SASL_CB_USER, Callback(&Simple), &user},
      {SASL_CB_LIST_END, nullptr, nullptr},
  };
  Init(path_);
  Connect(callbacks);

  ASSERT_EQ(Start(), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kResponse);
}

TEST_F(SaslTest, AsksForTheMailboxThroughInteraction) {
  FakeHelper helper(path_, {kOkLine});
  sasl_callback_t callbacks[] = {
      {SASL_CB_AUTHNAME, nullptr, nullptr},  // "prompt me"
      {SASL_CB_LIST_END, nullptr, nullptr},
  };
  Init(path_);
  Connect(callbacks);
  sasl_interact_t* prompts = nullptr;
  const char* mech = nullptr;

  ASSERT_EQ(
      sasl_client_start(conn_, "XOAUTH2", &prompts, &out_, &out_len_, &mech),
      SASL_INTERACT);
  ASSERT_NE(prompts, nullptr);
  EXPECT_EQ(prompts[0].id, static_cast<unsigned long>(SASL_CB_AUTHNAME));
  EXPECT_EQ(prompts[1].id, static_cast<unsigned long>(SASL_CB_LIST_END));
  EXPECT_TRUE(helper.Requests().empty());

  prompts[0].result = kMailbox.data();
  prompts[0].len = static_cast<unsigned>(kMailbox.size());
  ASSERT_EQ(
      sasl_client_start(conn_, "XOAUTH2", &prompts, &out_, &out_len_, &mech),
      SASL_CONTINUE)
      << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kResponse);
}

TEST_F(SaslTest, PromptWithoutAPromptListIsAnError) {
  FakeHelper helper(path_, {kOkLine});
  sasl_callback_t callbacks[] = {
      {SASL_CB_AUTHNAME, nullptr, nullptr},
      {SASL_CB_LIST_END, nullptr, nullptr},
  };
  Init(path_);
  Connect(callbacks);

  EXPECT_EQ(Start(), SASL_BADPARAM);  // Start() passes no prompt list
  EXPECT_NE(LogWith("no prompt list", SASL_LOG_ERR), "");
  EXPECT_TRUE(helper.Requests().empty());
}

TEST_F(SaslTest, BadEnvironmentStillLoadsAndExplainsEveryFailure) {
  Init("relative/token.sock");
  Connect(authname_callbacks_);

  EXPECT_EQ(Start(), SASL_UNAVAIL);  // offered, not SASL_NOMECH
  std::string line = LogWith("event=auth-failed", SASL_LOG_WARN);
  EXPECT_NE(line.find("XOAUTH2_RELAY_SOCKET: socket path "
                      "\"relative/token.sock\" is not absolute"),
            std::string::npos)
      << line;
}

// F01: loaded before chroot(2), as Postfix smtp(8) does, with the socket
// configured as a host path under the jail; nothing copied into the jail.
TEST_F(SaslTest, LoadedBeforeChrootFindsTheHelperInsideTheJail) {
  if (geteuid() != 0)
    GTEST_SKIP() << "chroot(2) needs root";
  std::filesystem::path jail = dir_ / "spool";
  std::filesystem::create_directories(jail / "xoauth2-relay");
  std::string socket = (jail / "xoauth2-relay/token.sock").string();
  FakeHelper helper(socket, {kOkLine});

  pid_t pid = fork();
  if (pid == 0) {
    setenv("XOAUTH2_RELAY_SOCKET", socket.c_str(), 1);
    if (sasl_client_init(kGlobalCallbacks) != SASL_OK)
      _exit(10);
    if (chroot(jail.c_str()) != 0 || chdir("/") != 0)
      _exit(11);
    Connect(authname_callbacks_);
    if (Start() != SASL_CONTINUE)
      _exit(12);
    _exit(Out() == kResponse ? 0 : 13);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);

  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: init, 11: chroot, 12: start failed, 13: wrong response";
  EXPECT_EQ(helper.Requests(),
            std::vector<std::string>{"v1 token relay@example.com\n"});
}

TEST_F(SaslTest, IsNotOfferedWhenTheHostForbidsPlaintext) {
  Ready();
  sasl_security_properties_t props{};
  props.max_ssf = 1;
  props.security_flags = SASL_SEC_NOANONYMOUS | SASL_SEC_NOPLAINTEXT;
  ASSERT_EQ(sasl_setprop(conn_, SASL_SEC_PROPS, &props), SASL_OK);

  EXPECT_EQ(Start("XOAUTH2 OAUTHBEARER"), SASL_NOMECH);
}

// --- OAUTHBEARER (RFC 7628): same exchange, its own bytes. ---

TEST_F(SaslTest, OffersBothMechanisms) {
  Ready();
  const char* list = nullptr;

  ASSERT_EQ(sasl_listmech(conn_, nullptr, "", " ", "", &list, nullptr, nullptr),
            SASL_OK);
  std::string mechs = " " + std::string(list) + " ";
  EXPECT_NE(mechs.find(" XOAUTH2 "), std::string::npos) << mechs;
  EXPECT_NE(mechs.find(" OAUTHBEARER "), std::string::npos) << mechs;
}

// A server advertising both (Gmail) still gets XOAUTH2, as before
// OAUTHBEARER existed; smtp_sasl_mechanism_filter picks OAUTHBEARER.
TEST_F(SaslTest, XOAUTH2IsChosenWhenTheServerOffersBoth) {
  FakeHelper helper(path_, {kOkLine});
  Ready();

  ASSERT_EQ(Start("LOGIN PLAIN OAUTHBEARER XOAUTH2"), SASL_CONTINUE)
      << sasl_errdetail(conn_);
  EXPECT_STREQ(mech_, "XOAUTH2");
  EXPECT_EQ(Out(), kResponse);
}

TEST_F(SaslTest, OauthBearerSendsHostAndNoPortAsWithPostfix) {
  FakeHelper helper(path_, {kOkLine});
  Ready();

  ASSERT_EQ(Start("OAUTHBEARER"), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_STREQ(mech_, "OAUTHBEARER");
  EXPECT_EQ(Out(), kBearerResponse);
  EXPECT_EQ(helper.Requests(),
            std::vector<std::string>{"v1 token relay@example.com\n"});

  // 235 from the server; a final empty step completes the exchange.
  EXPECT_EQ(Step(""), SASL_OK);
  const void* user = nullptr;
  ASSERT_EQ(sasl_getprop(conn_, SASL_USERNAME, &user), SASL_OK);
  EXPECT_STREQ(static_cast<const char*>(user), "relay@example.com");
  EXPECT_NE(LogWith("event=token-sent mailbox=relay@example.com", SASL_LOG_NOTE)
                .find("mech=OAUTHBEARER"),
            std::string::npos);
  ExpectNoTokenLogged();
}

TEST_F(SaslTest, OauthBearerSendsThePortWhenTheHostGivesAddresses) {
  FakeHelper helper(path_, {kOkLine});
  Init(path_);
  Connect(authname_callbacks_, "smtp.gmail.com", "127.0.0.1;587");

  ASSERT_EQ(Start("OAUTHBEARER"), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kBearerResponseWithPort);
  char b64[256];
  unsigned b64_len = 0;
  ASSERT_EQ(sasl_encode64(out_, out_len_, b64, sizeof(b64), &b64_len), SASL_OK);
  EXPECT_EQ(std::string_view(b64, b64_len), kBearerResponseWithPortBase64);
}

TEST_F(SaslTest, OauthBearerAnswersAnEmptyServerFirst334) {
  FakeHelper helper(path_, {kOkLine});
  Ready();

  ASSERT_EQ(sasl_client_start(conn_, "OAUTHBEARER", nullptr, nullptr, nullptr,
                              &mech_),
            SASL_CONTINUE);
  ASSERT_EQ(Step(""), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kBearerResponse);
}

TEST_F(SaslTest, OauthBearerErrorChallengeGetsKvsepAndIsReported) {
  FakeHelper helper(path_, {kOkLine, "ok\n"});
  Ready();
  ASSERT_EQ(Start("OAUTHBEARER"), SASL_CONTINUE);

  // RFC 7628 §3.2.3: the client answers the error with a single 0x01.
  ASSERT_EQ(Step(kGmailError), SASL_CONTINUE) << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), std::string("\x01"));
  ASSERT_TRUE(helper.WaitForRequests(2, std::chrono::seconds(5)));
  EXPECT_EQ(helper.Requests().at(1),
            "v1 reject relay@example.com eyJ0eXAi.TEST.SIG\n");
  std::string line = LogWith("event=token-refused", SASL_LOG_WARN);
  EXPECT_NE(line.find("mech=OAUTHBEARER"), std::string::npos) << line;
  EXPECT_NE(line.find("helper=told"), std::string::npos) << line;
  ExpectNoTokenLogged();

  // Nothing more is expected from the server but its 535.
  EXPECT_EQ(Step("again"), SASL_BADPROT);
}

TEST_F(SaslTest, OauthBearerFailuresAreLoggedLikeXOAUTH2) {
  FakeHelper helper(path_, {"err unavailable token endpoint unreachable\n"});
  Ready();

  EXPECT_EQ(Start("OAUTHBEARER"), SASL_TRYAGAIN);
  std::string line = LogWith("event=auth-failed", SASL_LOG_WARN);
  EXPECT_NE(line.find("mech=OAUTHBEARER"), std::string::npos) << line;
  EXPECT_NE(line.find("token endpoint unreachable"), std::string::npos) << line;
  EXPECT_EQ(CountLogged("event=auth-failed"), 1u);
}

TEST_F(SaslTest, OauthBearerPromptNamesTheMechanism) {
  FakeHelper helper(path_, {kOkLine});
  sasl_callback_t callbacks[] = {
      {SASL_CB_AUTHNAME, nullptr, nullptr},  // "prompt me"
      {SASL_CB_LIST_END, nullptr, nullptr},
  };
  Init(path_);
  Connect(callbacks);
  sasl_interact_t* prompts = nullptr;

  ASSERT_EQ(sasl_client_start(conn_, "OAUTHBEARER", &prompts, &out_, &out_len_,
                              &mech_),
            SASL_INTERACT);
  ASSERT_NE(prompts, nullptr);
  EXPECT_STREQ(prompts[0].challenge, "OAUTHBEARER");

  prompts[0].result = kMailbox.data();
  prompts[0].len = static_cast<unsigned>(kMailbox.size());
  ASSERT_EQ(sasl_client_start(conn_, "OAUTHBEARER", &prompts, &out_, &out_len_,
                              &mech_),
            SASL_CONTINUE)
      << sasl_errdetail(conn_);
  EXPECT_EQ(Out(), kBearerResponse);
}

}  // namespace
}  // namespace xoauth2::testing
