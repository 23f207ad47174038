// SPDX-License-Identifier: MIT
//
// RunDaemon and the request dispatch. Start order: socket first (so a
// second helper fails before it touches any refresh token), then the
// cache's workers. Stop order: cache (wakes waiting requests, cancels
// fetches), then the socket (waits for connections, unlinks).

#include "daemon.h"

#include <signal.h>

#include <cstring>

#include "log.h"
#include "token_endpoint.h"

namespace xoauth2::helper {
namespace {

// Blocks SIGTERM and SIGINT (inherited by threads started later) and
// ignores SIGPIPE; returns the blocked set.
sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace

AccessPolicy PolicyFromConfig(const Config& config) {
  AccessPolicy policy;
  policy.uids = config.allowed_uids;
  policy.gids = config.allowed_gids;
  return policy;
}

protocol::Response HandleRequest(TokenCache& cache,
                                 const protocol::Request& request) {
  if (request.verb == protocol::Verb::kReject) {
    return cache.Reject(request.mailbox, request.token);
  }
  return cache.Get(request.mailbox);
}

int RunDaemon(const Config& config) {
  sigset_t signals = BlockTerminationSignals();
  SetLogLevel(config.log_level);

  CurlTokenFetcher fetcher(HttpSettings::FromConfig(config));
  TokenCache cache(config.accounts, fetcher, CacheOptions::FromConfig(config));
  ServerOptions options{config.socket, PolicyFromConfig(config)};
  SocketServer server(std::move(options), [&cache](const auto& request) {
    return HandleRequest(cache, request);
  });

  auto started = server.Start();
  if (!started) {
    Log(LogLevel::kError, "socket_failed",
        {{"socket", config.socket}, {"reason", started.error()}});
    return 1;
  }
  cache.Start();
  Log(LogLevel::kInfo, "helper_started",
      {{"version", XOAUTH2_VERSION},
       {"config", config.path},
       {"socket", config.socket},
       {"accounts", config.accounts.size()}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "helper_stopping",
      {{"signal", sigabbrev_np(signal_number)}});
  cache.Stop();
  server.Stop();
  Log(LogLevel::kInfo, "helper_stopped", {});
  return 0;
}

}  // namespace xoauth2::helper
