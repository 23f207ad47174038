// SPDX-License-Identifier: MIT
//
// Implementation of exchange.h: the client state machine shared by
// XOAUTH2 and OAUTHBEARER. Which layer logs: this one, once per failure (Fail);
// the modules it calls return Failure values and log nothing.

#include "exchange.h"

#include <algorithm>
#include <utility>

namespace xoauth2::plugin {
namespace {

// A SASL result code's name, for log lines.
std::string_view CodeName(int code) {
  static constexpr std::pair<int, std::string_view> kNames[] = {
      {SASL_FAIL, "SASL_FAIL"},         {SASL_NOMEM, "SASL_NOMEM"},
      {SASL_BADPROT, "SASL_BADPROT"},   {SASL_BADPARAM, "SASL_BADPARAM"},
      {SASL_TRYAGAIN, "SASL_TRYAGAIN"}, {SASL_NOUSER, "SASL_NOUSER"},
      {SASL_UNAVAIL, "SASL_UNAVAIL"},
  };
  for (const auto& [value, name] : kNames) {
    if (value == code)
      return name;
  }
  return "SASL_OTHER";
}

}  // namespace

Exchange::~Exchange() {
  Wipe(token_);
  Wipe(output_);
}

int Exchange::Step(sasl_client_params_t* params, std::string_view server_in,
                   sasl_interact_t** prompt_need, const char** out,
                   unsigned* out_len, sasl_out_params_t* oparams) {
  switch (state_) {
    case State::kStart:
      // RFC 4422 §5: a server-first exchange starts with empty data.
      if (!server_in.empty()) {
        return Fail(Warn(SASL_BADPROT,
                         "server sent a challenge before the initial "
                         "response: \"" +
                             SanitizeForLog(server_in) + "\""));
      }
      return Start(params, prompt_need, out, out_len, oparams);
    case State::kSent:
      // Empty data after our response: the server accepted it.
      if (server_in.empty())
        return Finish(oparams);
      return Refused(server_in, out, out_len);
    case State::kRejected:
      return Fail(Warn(SASL_BADPROT,
                       "server sent another challenge after refusing the "
                       "token"));
    case State::kDone:
      break;
  }
  return Fail(Bug(SASL_BADPROT, "step called after the exchange ended"));
}

// First step: mailbox, token, initial response.
int Exchange::Start(sasl_client_params_t* params, sasl_interact_t** prompt_need,
                    const char** out, unsigned* out_len,
                    sasl_out_params_t* oparams) {
  if (!config_.error.empty()) {
    return Fail(Warn(SASL_UNAVAIL, config_.error));
  }

  // The mailbox, possibly after a round of host prompts.
  auto lookup = mailbox_source_.Get(utils_, prompt_need);
  if (!lookup)
    return Fail(lookup.error());
  if (lookup->needs_interaction)
    return SASL_INTERACT;
  if (auto ok = CheckMailbox(lookup->mailbox); !ok) {
    return Fail(Warn(SASL_NOUSER, ok.error()));
  }
  mailbox_ = std::move(lookup->mailbox);

  if (int rc = GetToken(); rc != SASL_OK)
    return rc;

  // Record who we are for the host (sasl_getprop SASL_USERNAME).
  int rc = params->canon_user(utils_->conn, mailbox_.data(),
                              static_cast<unsigned>(mailbox_.size()),
                              SASL_CU_AUTHID | SASL_CU_AUTHZID, oparams);
  if (rc != SASL_OK) {
    return Fail(Bug(rc, "the SASL library refused mailbox " + mailbox_));
  }

  return Respond(params, out, out_len);
}

// Builds the mechanism's initial response and hands it to the host.
int Exchange::Respond(const sasl_client_params_t* params, const char** out,
                      unsigned* out_len) {
  // OAUTHBEARER names the server; unknown parts are left out (response.h).
  ServerAddress server =
      ServerAddressFrom(params->serverFQDN ? params->serverFQDN : "",
                        params->ipremoteport ? params->ipremoteport : "");
  output_ = BuildInitialResponse(mechanism_, mailbox_, token_, server);
  *out = output_.data();
  *out_len = static_cast<unsigned>(output_.size());
  state_ = State::kSent;
  return SASL_CONTINUE;
}

// Finds the socket from the current root and fetches the token.
int Exchange::GetToken() {
  auto path = ResolveForCurrentRoot(config_.socket_path, config_.ancestors);
  if (!path)
    return Fail(Warn(SASL_UNAVAIL, path.error()));
  endpoint_ = HelperEndpoint{config_.socket_path, *path, config_.timeout_ms};

  auto token = FetchToken(endpoint_, mailbox_);
  if (!token)
    return Fail(token.error());
  token_ = std::move(token->token);
  Log(SASL_LOG_NOTE,
      Fields("token-sent") + " expires=" + std::to_string(token->expires));
  return SASL_OK;
}

// The server answered our response with an error challenge: log it, tell
// the helper, and send the mechanism's reply (empty for XOAUTH2, 0x01 for
// OAUTHBEARER) so that the server sends its final 535.
int Exchange::Refused(std::string_view challenge, const char** out,
                      unsigned* out_len) {
  auto told = ReportRejected(endpoint_, mailbox_, token_);
  std::string helper =
      told ? "told" : "not-told reason=" + told.error().message;
  // The challenge is JSON: its quotes would end the quoted field early.
  std::string text = SanitizeForLog(challenge);
  std::replace(text.begin(), text.end(), '"', '\'');
  Log(SASL_LOG_WARN,
      Fields("token-refused") + " challenge=\"" + text + "\" helper=" + helper);
  utils_->seterror(utils_->conn, SASL_NOLOG,
                   "server refused the access token for %s", mailbox_.c_str());

  Wipe(token_);
  Wipe(output_);
  output_ = ErrorChallengeReply(mechanism_);
  *out = output_.data();
  *out_len = static_cast<unsigned>(output_.size());
  state_ = State::kRejected;
  return SASL_CONTINUE;
}

// The host stepped once more after the server's success reply.
int Exchange::Finish(sasl_out_params_t* oparams) {
  oparams->doneflag = 1;
  oparams->mech_ssf = 0;
  oparams->maxoutbuf = 0;
  oparams->encode = nullptr;
  oparams->decode = nullptr;
  state_ = State::kDone;
  return SASL_OK;
}

// Logs `failure` once, sets it as the error detail, ends the exchange.
int Exchange::Fail(const Failure& failure) {
  Log(failure.level, Fields("auth-failed") +
                         " code=" + std::string(CodeName(failure.code)) +
                         " reason=" + failure.message);
  utils_->seterror(utils_->conn, SASL_NOLOG, "%s", failure.message.c_str());
  Wipe(token_);
  state_ = State::kDone;
  return failure.code;
}

// Never throws: it runs inside mech_step's exception handlers.
int Exchange::Internal(int code, const char* what) noexcept {
  try {
    return Fail(Bug(code, std::string("internal error in the SASL "
                                      "plugin libxoauth2.so: ") +
                              what));
  } catch (...) {
    state_ = State::kDone;
    return code;
  }
}

// "xoauth2: event=E mailbox=M socket=S mech=X", the start of every log
// line.
std::string Exchange::Fields(std::string_view event) const {
  return "xoauth2: event=" + std::string(event) +
         " mailbox=" + (mailbox_.empty() ? "-" : mailbox_) + " socket=" +
         (config_.socket_path.empty() ? "-" : config_.socket_path) +
         " mech=" + MechanismName(mechanism_);
}

void Exchange::Log(int level, const std::string& line) const {
  utils_->log(utils_->conn, level, "%s", line.c_str());
}

}  // namespace xoauth2::plugin
