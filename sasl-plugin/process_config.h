// SPDX-License-Identifier: MIT
//
// The plugin's per-process part, built once at plugin init (before the
// MTA chroots): where token-helper listens, how long a request may take,
// and the identities of the socket's ancestor directories used to find it
// again from inside the chroot (socket_path.h).
//
// Main type: ProcessConfig, immutable after LoadProcessConfig returns and
// owned by the SASL glue (the mechanism's glob_context). A bad setting
// does not stop the plugin from loading: it is kept in `error` and every
// exchange fails with it, so the MTA logs a reason instead of "no
// mechanism available". Nothing here logs.
//
// Environment (read with getenv at init only; Postfix passes variables
// through import_environment):
//   XOAUTH2_RELAY_SOCKET      host path of the token socket, default
//                             XOAUTH2_DEFAULT_SOCKET
//   XOAUTH2_RELAY_TIMEOUT_MS  budget for one helper request in ms,
//                             kMinTimeoutMs..kMaxTimeoutMs, default 5000

#ifndef XOAUTH2_SASL_PLUGIN_PROCESS_CONFIG_H
#define XOAUTH2_SASL_PLUGIN_PROCESS_CONFIG_H

#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "socket_path.h"

namespace xoauth2::plugin {

inline constexpr int kDefaultTimeoutMs = 5000;
inline constexpr int kMinTimeoutMs = 10;
inline constexpr int kMaxTimeoutMs = 300000;

// Settings shared by every exchange of this process.
struct ProcessConfig {
  std::string socket_path;  // normalized host path
  int timeout_ms = kDefaultTimeoutMs;
  std::vector<Ancestor> ancestors;  // recorded at init, for the chroot
  std::string error;                // non-empty: configuration problem
};

// Parses XOAUTH2_RELAY_TIMEOUT_MS: a decimal integer in range.
std::expected<int, std::string> ParseTimeoutMs(std::string_view text);

// Builds the configuration from the two variables' values (nullptr when
// unset) and records the socket's ancestors.
ProcessConfig LoadProcessConfig(const char* socket_env,
                                const char* timeout_env);

// LoadProcessConfig with the values from the process environment.
ProcessConfig LoadProcessConfigFromEnvironment();

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_PROCESS_CONFIG_H
