// SPDX-License-Identifier: MIT
//
// Exchange: one XOAUTH2 or OAUTHBEARER authentication, the per-exchange
// half of the plugin (the per-process half is ProcessConfig). Created by
// mech_new, driven by mech_step, destroyed by mech_dispose
// (xoauth2_mech.cc). Both mechanisms run this same code; the Mechanism
// given at creation only selects the response format (response.h).
//
// A small state machine (State): kStart -> kSent on the initial response;
// kSent -> kDone when the host steps once more after the server's success,
// or kSent -> kRejected on an error challenge (answered with the
// mechanism's ErrorChallengeReply after telling the helper). Any failure
// goes to kDone.
//
// Owns the client output buffer handed to libsasl2 (valid until the next
// step or dispose) and the token, wiped when no longer needed and on
// destruction. Single-threaded, like a SASL connection. Logs every failure
// once through utils->log (the host's SASL_CB_LOG) and sets it with
// utils->seterror; may throw std::bad_alloc, which mech_step catches.

#ifndef XOAUTH2_SASL_PLUGIN_EXCHANGE_H
#define XOAUTH2_SASL_PLUGIN_EXCHANGE_H

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <string>
#include <string_view>

#include "failure.h"
#include "helper_client.h"
#include "mailbox_source.h"
#include "process_config.h"
#include "response.h"

namespace xoauth2::plugin {

// The stages of one exchange.
enum class State {
  kStart,     // nothing sent yet
  kSent,      // initial response sent, waiting for the server's verdict
  kRejected,  // server refused the token; error reply sent
  kDone,      // finished (success or failure); no further step allowed
};

// One authentication with `mechanism`: created by mech_new, driven by
// mech_step, destroyed by mech_dispose. Owns the client output buffer and
// wipes the token on destruction.
class Exchange {
 public:
  Exchange(const ProcessConfig& config, const sasl_utils_t* utils,
           Mechanism mechanism)
      : config_(config),
        utils_(utils),
        mechanism_(mechanism),
        mailbox_source_(MechanismName(mechanism)) {}
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  // One mech_step. `server_in` is the decoded server data (empty for the
  // first step and for an empty 334). On return *out and *out_len hold the
  // client response, owned by this object until the next step or its
  // destruction. Returns SASL_CONTINUE (response ready), SASL_OK (the
  // server accepted; done), SASL_INTERACT (*prompt_need filled for the
  // host to answer), or a failure code, logged once before returning.
  int Step(sasl_client_params_t* params, std::string_view server_in,
           sasl_interact_t** prompt_need, const char** out, unsigned* out_len,
           sasl_out_params_t* oparams);

  // Logs an unexpected exception as a bug and ends the exchange.
  int Internal(int code, const char* what) noexcept;

 private:
  int Start(sasl_client_params_t* params, sasl_interact_t** prompt_need,
            const char** out, unsigned* out_len, sasl_out_params_t* oparams);
  int GetToken();
  int Respond(const sasl_client_params_t* params, const char** out,
              unsigned* out_len);
  int Refused(std::string_view challenge, const char** out, unsigned* out_len);
  int Finish(sasl_out_params_t* oparams);
  int Fail(const Failure& failure);
  void Log(int level, const std::string& line) const;
  std::string Fields(std::string_view event) const;

  const ProcessConfig& config_;
  const sasl_utils_t* utils_;
  Mechanism mechanism_;
  State state_ = State::kStart;
  MailboxSource mailbox_source_;
  std::string mailbox_;
  HelperEndpoint endpoint_;
  std::string token_;
  std::string output_;  // what *clientout points to
};

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_EXCHANGE_H
