// SPDX-License-Identifier: MIT
//
// Implementation of process_config.h: reads and checks the plugin's two
// environment variables once per process.

#include "process_config.h"

#include <charconv>
#include <cstdlib>

namespace xoauth2::plugin {

std::expected<int, std::string> ParseTimeoutMs(std::string_view text) {
  int value = 0;
  auto [end, err] =
      std::from_chars(text.data(), text.data() + text.size(), value);
  bool whole = err == std::errc() && end == text.data() + text.size();
  if (!whole || value < kMinTimeoutMs || value > kMaxTimeoutMs) {
    return std::unexpected("XOAUTH2_RELAY_TIMEOUT_MS=\"" + std::string(text) +
                           "\" is not a number of milliseconds from " +
                           std::to_string(kMinTimeoutMs) + " to " +
                           std::to_string(kMaxTimeoutMs) +
                           "; fix it or unset it for the default " +
                           std::to_string(kDefaultTimeoutMs));
  }
  return value;
}

ProcessConfig LoadProcessConfig(const char* socket_env,
                                const char* timeout_env) {
  ProcessConfig config;

  // The socket path: the compiled-in default unless the variable is set.
  std::string_view raw = socket_env ? socket_env : XOAUTH2_DEFAULT_SOCKET;
  auto path = NormalizeSocketPath(raw);
  if (!path) {
    config.error = "XOAUTH2_RELAY_SOCKET: " + path.error() +
                   "; set it to the \"socket\" path of token-helper's "
                   "configuration (default " XOAUTH2_DEFAULT_SOCKET ")";
    return config;
  }
  config.socket_path = *path;

  // The request budget.
  if (timeout_env) {
    auto timeout = ParseTimeoutMs(timeout_env);
    if (!timeout) {
      config.error = timeout.error();
      return config;
    }
    config.timeout_ms = *timeout;
  }

  // Identities of the ancestors, for finding the socket after chroot(2).
  config.ancestors = RecordAncestors(config.socket_path);
  return config;
}

ProcessConfig LoadProcessConfigFromEnvironment() {
  return LoadProcessConfig(std::getenv("XOAUTH2_RELAY_SOCKET"),
                           std::getenv("XOAUTH2_RELAY_TIMEOUT_MS"));
}

}  // namespace xoauth2::plugin
