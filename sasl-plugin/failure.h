// SPDX-License-Identifier: MIT
//
// Failure: why one exchange (XOAUTH2 or OAUTHBEARER) cannot go on, as a
// value.
//
// Every module of the plugin reports a failure by returning a Failure
// (inside std::expected); only the SASL glue (xoauth2_mech.cc) logs it and
// hands its code to libsasl2, so each failure is logged exactly once.
// The message names the fix and never holds a token. Header only; no
// state, no threads, no I/O.

#ifndef XOAUTH2_SASL_PLUGIN_FAILURE_H
#define XOAUTH2_SASL_PLUGIN_FAILURE_H

#include <sasl/sasl.h>

#include <string>

namespace xoauth2::plugin {

// One failure: the SASL result code returned to the host, the SASL log
// level matching whose fault it is, and a one-line message for operators.
struct Failure {
  int code = SASL_FAIL;
  int level = SASL_LOG_WARN;
  std::string message;
};

// A failure caused outside the plugin (helper, configuration, server):
// logged as a warning that names the fix.
inline Failure Warn(int code, std::string message) {
  return Failure{code, SASL_LOG_WARN, std::move(message)};
}

// A failure that is a bug (in the plugin, the helper or the host):
// logged as an error.
inline Failure Bug(int code, std::string message) {
  return Failure{code, SASL_LOG_ERR, std::move(message)};
}

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_FAILURE_H
