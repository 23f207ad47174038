// SPDX-License-Identifier: MIT
//
// The `run` command: wires configuration, fetcher, cache and socket server
// together and runs until SIGTERM or SIGINT, reloading the configuration
// on SIGHUP.
//
// RunDaemon() blocks SIGTERM, SIGINT and SIGHUP in every thread and waits
// for them with sigwait(), so no work happens in a signal handler. It
// returns the process exit code (0 after a signal, 1 when the socket
// cannot be set up). HandleRequest() maps one protocol request onto the
// cache; it is separate so that tests can serve from a cache with a fake
// fetcher. Logs helper_started / helper_stopping / helper_stopped events.
//
// SIGHUP: the file is read again as at start (secret files and
// certificates included), on the signal thread. A configuration that does
// not load is logged as event=reload_failed (error, with the reason, which
// names the file and the fix) and the running one stays. A good one is
// applied: accounts by TokenCache::Reconfigure(), the global and account
// allowlists on both sockets for connections checked from then on, and
// log_level. Settings bound at start (socket, ca_file, proxy, the
// timeouts, refresh_token_warn_days) keep their running values; each that
// differs is logged as event=reload_restart_needed (warn). Then one
// event=config_reloaded (info) line counts the accounts: kept (state and
// cached token kept), of those updated (name or refresh margin applied)
// and rotated (new credential, refresh started), changed (token dropped
// and fetched anew), added and removed. RestartOnlyChanges() is separate for
// tests.

#ifndef XOAUTH2_TOKEN_HELPER_DAEMON_H
#define XOAUTH2_TOKEN_HELPER_DAEMON_H

#include <optional>
#include <string>
#include <vector>

#include "config.h"
#include "protocol.h"
#include "socket_server.h"
#include "token_cache.h"

namespace xoauth2::helper {

// The access policy from allowed_users/allowed_groups (root always allowed).
AccessPolicy PolicyFromConfig(const Config& config);

// The allowlists of the accounts that set their own allowed_users or
// allowed_groups, with their index in accounts.
std::vector<AccountPolicy> AccountPoliciesFromConfig(const Config& config);

// Answers one request from `cache`: a token, a rejection, or the status
// of every account as one line of JSON (account_status.h).
protocol::Response HandleRequest(TokenCache& cache,
                                 const protocol::Request& request);

// The settings of `running` and `loaded` that differ but take effect only
// after a restart, by their configuration key; in a fixed order.
std::vector<std::string> RestartOnlyChanges(const Config& running,
                                            const Config& loaded);

struct DaemonOptions {
  // How the configuration was loaded; a reload loads it the same way.
  ConfigUse use = ConfigUse::kServe;
  // Replaces the configuration's log_level, at start and on every reload
  // (`run --verbose`).
  std::optional<LogLevel> log_level;
};

// Runs the daemon in the foreground; the process exit code.
int RunDaemon(const Config& config, const DaemonOptions& options = {});

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_DAEMON_H
