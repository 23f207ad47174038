// SPDX-License-Identifier: MIT
//
// NAME
//   libxoauth2.so - Cyrus SASL v2 client mechanisms XOAUTH2 and OAUTHBEARER
//
// SYNOPSIS
//   int sasl_client_plug_init(utils, max_version, out_version, pluglist,
//                             plugcount);   (the only exported symbol)
//
// DESCRIPTION
//   Lets an MTA (Postfix smtp(8), Sendmail) authenticate to Office 365 or
//   Gmail with an OAuth 2.0 access token. The plugin holds no secret and
//   opens no network connection: it asks token-helper, over a Unix socket,
//   for a current token for the mailbox (helper_client.h) and sends it in
//   the initial client response (on the AUTH line when the host allows
//   it, else after an empty 334). It offers two mechanisms that run the
//   same code and differ only in that response and in the reply to an
//   error challenge (response.h):
//     XOAUTH2      "user=" MAILBOX "\x01auth=Bearer " TOKEN "\x01\x01"
//                  (what Office 365 offers for SMTP);
//     OAUTHBEARER  "n,a=" MAILBOX ",\x01host=" HOST "\x01port=" PORT
//                  "\x01auth=Bearer " TOKEN "\x01\x01" (RFC 7628; Gmail),
//                  with ',' and '=' in MAILBOX written "=2C" and "=3D".
//   OAUTHBEARER's HOST is the serverFQDN the application passed to
//   sasl_client_new (Postfix: the relay host's name); host= is left out
//   when it is empty or not visible ASCII. PORT is the port of the
//   application's ipremoteport ("ADDRESS;PORT"); Postfix passes no
//   addresses, so with Postfix port= is always left out. Both pairs are
//   optional in RFC 7628 §3.1, and no server we know checks them.
//   Both have the same features and security flags. When a server
//   advertises both (Gmail does; Office 365 offers only XOAUTH2),
//   libsasl2 (2.1.28) chooses XOAUTH2, the first in the plugin table;
//   Postfix's smtp_sasl_mechanism_filter = oauthbearer selects the other.
//
//   Split like Postfix's xsasl glue: sasl_client_plug_init builds the
//   per-process part (ProcessConfig: environment read with getenv before
//   the MTA chroots, socket ancestors recorded for the chroot), shared by
//   both mechanisms, and mech_new/mech_step/mech_dispose drive one
//   Exchange per authentication.
//
//   The mailbox comes from SASL_CB_AUTHNAME (falling back to SASL_CB_USER)
//   or a SASL_INTERACT prompt; for Postfix it is the user part of the
//   smtp_sasl_password_maps entry, `[relayhost]:port mailbox:-`. No
//   password is asked for.
//
//   When the server answers the response with a non-empty challenge (the
//   Gmail-style base64 JSON error), the plugin logs it, tells the helper
//   `reject MAILBOX TOKEN` so that the next attempt gets a fresh token, and
//   answers with an empty response (XOAUTH2) or a single 0x01 byte
//   (OAUTHBEARER, RFC 7628 §3.2.3); the server then sends 535.
//
// ENVIRONMENT
//   XOAUTH2_RELAY_SOCKET, XOAUTH2_RELAY_TIMEOUT_MS: see process_config.h.
//
// DIAGNOSTICS
//   No entry point throws, exits, aborts or raises a signal; each catches
//   everything and returns a SASL code. Every failure returns SASL_UNAVAIL
//   (helper not reachable, timed out, refused the uid, or a configuration
//   error), SASL_TRYAGAIN (helper has no token now), SASL_NOUSER (no or
//   bad mailbox, no helper account), SASL_BADPROT (malformed helper answer
//   or server sequence), SASL_NOMEM or SASL_FAIL (bugs); Postfix turns each
//   into "4.7.0 SASL authentication failed" and defers the message.
//   Each failure is logged once, as one line through the host's SASL_CB_LOG
//   callback (never syslog directly), with key=value fields event=,
//   mailbox=, socket=, mech= (XOAUTH2 or OAUTHBEARER), code= and reason=
//   (the fix), at SASL_LOG_WARN for configuration, helper and server
//   problems and SASL_LOG_ERR for bugs; the same reason is set with
//   sasl_seterror for sasl_errdetail(3). A refused token is logged at
//   SASL_LOG_WARN, a token handed out at SASL_LOG_NOTE. No log line at
//   any level carries a token. Plugin init logs nothing (libsasl2 would
//   send it to syslog(3), not to the host): a bad environment is reported
//   by every exchange instead.
//
// BUGS
//   Office 365 refuses a bad token with an immediate 535, which Postfix
//   never passes to the mechanism, so the plugin reports only Gmail-style
//   error challenges. The helper learns of the 535 itself, from the reply
//   lines smtp(8) shows its reply socket through smtp_reply_filter
//   (token-helper/reply_watcher.h).
//
// STANDARDS
//   RFC 4422 (SASL), RFC 4954 (SMTP AUTH), RFC 7628 (OAUTHBEARER), RFC 5801
//   §4 (gs2 header saslname escaping), Microsoft "Authenticate an IMAP,
//   POP or SMTP connection using OAuth", Google "OAuth 2.0 Mechanism".

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <exception>
#include <iterator>
#include <memory>
#include <new>
#include <string>
#include <string_view>

#include "exchange.h"
#include "process_config.h"
#include "response.h"

namespace xoauth2::plugin {
namespace {

// --- Entry points called by libsasl2; none lets an exception escape. ---

// mech_new: a fresh Exchange for one authentication with mechanism M.
template <Mechanism M>
int MechNew(void* glob_context, sasl_client_params_t* params,
            void** conn_context) noexcept {
  try {
    const auto* config = static_cast<const ProcessConfig*>(glob_context);
    if (config == nullptr || params == nullptr)
      return SASL_BADPARAM;
    *conn_context = new Exchange(*config, params->utils, M);
    return SASL_OK;
  } catch (const std::bad_alloc&) {
    return SASL_NOMEM;
  } catch (...) {
    return SASL_FAIL;
  }
}

// mech_step: one step of the Exchange; exceptions become logged bugs.
int MechStep(void* conn_context, sasl_client_params_t* params,
             const char* server_in, unsigned server_in_len,
             sasl_interact_t** prompt_need, const char** client_out,
             unsigned* client_out_len, sasl_out_params_t* oparams) noexcept {
  auto* exchange = static_cast<Exchange*>(conn_context);
  if (exchange == nullptr || client_out == nullptr ||
      client_out_len == nullptr || oparams == nullptr) {
    return SASL_BADPARAM;
  }
  *client_out = nullptr;
  *client_out_len = 0;
  std::string_view in;
  if (server_in != nullptr)
    in = std::string_view(server_in, server_in_len);
  try {
    return exchange->Step(params, in, prompt_need, client_out, client_out_len,
                          oparams);
  } catch (const std::bad_alloc&) {
    return exchange->Internal(SASL_NOMEM, "out of memory");
  } catch (const std::exception& e) {
    return exchange->Internal(SASL_FAIL, e.what());
  } catch (...) {
    return exchange->Internal(SASL_FAIL, "unknown exception");
  }
}

// mech_dispose: ends the Exchange, wiping its token and output.
void MechDispose(void* conn_context, const sasl_utils_t*) noexcept {
  delete static_cast<Exchange*>(conn_context);
}

// Frees the per-process part; defined below since it clears g_plugins.
void MechFree(void* glob_context, const sasl_utils_t* utils) noexcept;

// Each mechanism needs only the authentication name, never a password.
const unsigned long kRequiredPrompts[] = {SASL_CB_AUTHNAME, SASL_CB_LIST_END};

// The table entry of mechanism M; the entries differ only in name and
// mech_new.
template <Mechanism M>
constexpr sasl_client_plug_t Plug() {
  return {
      .mech_name = MechanismName(M),
      .max_ssf = 0,
      // A bearer token is replayable: classed with plaintext mechanisms.
      .security_flags = SASL_SEC_NOANONYMOUS,
      // Client-first, so that Postfix sends the response on the AUTH line.
      .features = SASL_FEAT_WANT_CLIENT_FIRST,
      .required_prompts = kRequiredPrompts,
      .glob_context = nullptr,
      .mech_new = MechNew<M>,
      .mech_step = MechStep,
      .mech_dispose = MechDispose,
      .mech_free = MechFree,
      .idle = nullptr,
      .spare_fptr1 = nullptr,
      .spare_fptr2 = nullptr,
  };
}

// The plugin table handed to libsasl2, which keeps pointers into it.
constinit sasl_client_plug_t g_plugins[] = {
    Plug<Mechanism::kXoauth2>(),
    Plug<Mechanism::kOauthBearer>(),
};

// Both entries share one ProcessConfig and libsasl2 calls mech_free once
// per entry: the first call that finds it in the table frees it and
// clears every entry; later calls (with nullptr, or with the same pointer
// if the library kept a copy of the table) free nothing.
void MechFree(void* glob_context, const sasl_utils_t*) noexcept {
  bool ours = false;
  for (sasl_client_plug_t& plug : g_plugins) {
    if (glob_context != nullptr && plug.glob_context == glob_context) {
      plug.glob_context = nullptr;
      ours = true;
    }
  }
  if (ours)
    delete static_cast<ProcessConfig*>(glob_context);
}

// Builds the per-process configuration, shared by both mechanisms.
// Nothing is logged here: at init libsasl2 has no connection, and its
// utils->log would then bypass the host's SASL_CB_LOG and call syslog(3)
// itself. A configuration error is kept and logged by every exchange
// instead.
int InitPlugin() {
  auto config =
      std::make_unique<ProcessConfig>(LoadProcessConfigFromEnvironment());
  ProcessConfig* shared = config.release();  // now owned by the table
  for (sasl_client_plug_t& plug : g_plugins)
    plug.glob_context = shared;
  return SASL_OK;
}

}  // namespace
}  // namespace xoauth2::plugin

// The plugin's entry point, looked up by libsasl2 with dlsym.
extern "C" __attribute__((visibility("default"))) int sasl_client_plug_init(
    const sasl_utils_t* utils, int max_version, int* out_version,
    sasl_client_plug_t** pluglist, int* plugcount) noexcept {
  using xoauth2::plugin::g_plugins;
  if (utils == nullptr || out_version == nullptr || pluglist == nullptr ||
      plugcount == nullptr) {
    return SASL_BADPARAM;
  }
  if (max_version < SASL_CLIENT_PLUG_VERSION)
    return SASL_BADVERS;
  try {
    if (int rc = xoauth2::plugin::InitPlugin(); rc != SASL_OK)
      return rc;
  } catch (const std::bad_alloc&) {
    return SASL_NOMEM;
  } catch (...) {
    return SASL_FAIL;
  }
  *out_version = SASL_CLIENT_PLUG_VERSION;
  *pluglist = g_plugins;
  *plugcount = static_cast<int>(std::size(g_plugins));
  return SASL_OK;
}
