// SPDX-License-Identifier: MIT
//
// The `run` command: wires configuration, fetcher, cache and socket server
// together and runs until SIGTERM or SIGINT.
//
// RunDaemon() blocks the termination signals in every thread and waits for
// them with sigwait(), so no work happens in a signal handler. It returns
// the process exit code (0 after a signal, 1 when the socket cannot be set
// up). HandleRequest() maps one protocol request onto the cache; it is
// separate so that tests can serve from a cache with a fake fetcher.
// Logs helper_started / helper_stopping / helper_stopped events.

#ifndef XOAUTH2_TOKEN_HELPER_DAEMON_H
#define XOAUTH2_TOKEN_HELPER_DAEMON_H

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

// Runs the daemon in the foreground; the process exit code.
int RunDaemon(const Config& config);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_DAEMON_H
