// SPDX-License-Identifier: MIT
//
// RunDaemon and the request dispatch. Start order: token socket first (so
// a second helper fails before it touches any refresh token), the reply
// socket beside it, then the cache's workers. Stop order: cache (wakes
// waiting requests, cancels fetches), then the reply socket, then the
// token socket (waits for connections, unlinks). The ReplyWatcher links
// the two sockets: tokens served on one, SMTP replies seen on the other.
// Accounts with their own allowed_users/allowed_groups hand their
// allowlists to the token socket, which checks them per request.

#include "daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "log.h"
#include "reply_server.h"
#include "reply_watcher.h"
#include "secret_file.h"
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

// The configured name of the account whose mailbox is `mailbox`.
std::string AccountName(const Config& config, std::string_view mailbox) {
  const Account* account = config.FindAccount(mailbox);
  return account == nullptr ? std::string() : account->name;
}

// What the reply watcher may do to the cache.
ReplyActions CacheActions(TokenCache& cache, const Config& config) {
  ReplyActions actions;
  actions.drop = [&cache](std::string_view mailbox, std::string_view token) {
    cache.Reject(mailbox, token);
  };
  actions.refresh = [&cache](std::string_view mailbox) {
    cache.RefreshSoon(mailbox);
  };
  actions.account_name = [&config](std::string_view mailbox) {
    return AccountName(config, mailbox);
  };
  return actions;
}

// The token socket's options; it reports served tokens to `watcher`.
ServerOptions TokenServerOptions(const Config& config, ReplyWatcher& watcher) {
  ServerOptions options{config.socket, PolicyFromConfig(config)};
  options.accounts = AccountPoliciesFromConfig(config);
  options.on_served = [&watcher](const PeerCredentials& peer,
                                 const protocol::Request& request,
                                 const protocol::Response& response) {
    watcher.TokenServed(peer.pid, request.mailbox, response.token);
  };
  return options;
}

// Starts the token socket, then the reply socket; logs a failure.
bool StartSockets(SocketServer& server, const std::string& token_path,
                  ReplyServer& replies, const std::string& reply_path) {
  auto started = server.Start();
  if (!started) {
    Log(LogLevel::kError, "socket_failed",
        {{"socket", token_path}, {"reason", started.error()}});
    return false;
  }
  started = replies.Start();
  if (!started) {
    Log(LogLevel::kError, "socket_failed",
        {{"socket", reply_path}, {"reason", started.error()}});
    server.Stop();
    return false;
  }
  return true;
}

}  // namespace

AccessPolicy PolicyFromConfig(const Config& config) {
  AccessPolicy policy;
  policy.uids = config.allowed_uids;
  policy.gids = config.allowed_gids;
  return policy;
}

std::vector<AccountPolicy> AccountPoliciesFromConfig(const Config& config) {
  std::vector<AccountPolicy> policies;
  for (std::size_t i = 0; i < config.accounts.size(); ++i) {
    const Account& account = config.accounts[i];
    if (!account.restricts_peers)
      continue;
    policies.push_back({account.mailbox, account.name, i, account.allowed_uids,
                        account.allowed_gids});
  }
  return policies;
}

protocol::Response HandleRequest(TokenCache& cache,
                                 const protocol::Request& request) {
  if (request.verb == protocol::Verb::kReject) {
    return cache.Reject(request.mailbox, request.token);
  }
  if (request.verb == protocol::Verb::kStatus) {
    protocol::Response response;
    response.ok = true;
    response.status = StatusJson(cache.Status(), std::time(nullptr));
    return response;
  }
  return cache.Get(request.mailbox);
}

int RunDaemon(const Config& config) {
  sigset_t signals = BlockTerminationSignals();
  SetLogLevel(config.log_level);

  CurlTokenFetcher fetcher(HttpSettings::FromConfig(config));
  TokenCache cache(config.accounts, fetcher, CacheOptions::FromConfig(config));
  ReplyWatcher watcher(CacheActions(cache, config), WatcherOptions{});

  // The token socket tells the watcher which process got which token.
  SocketServer server(
      TokenServerOptions(config, watcher),
      [&cache](const auto& request) { return HandleRequest(cache, request); });

  // The reply socket tells it what the server answered that process.
  std::string reply_path = ReplySocketPath(config.socket);
  ReplyServer replies(
      {reply_path, PolicyFromConfig(config)},
      [&watcher](const PeerCredentials& peer, std::string_view line) {
        watcher.ReplySeen(peer.pid, line);
      });

  if (!StartSockets(server, config.socket, replies, reply_path))
    return 1;
  cache.Start();
  Log(LogLevel::kInfo, "helper_started",
      {{"version", XOAUTH2_VERSION},
       {"config", config.path},
       {"socket", config.socket},
       {"socket_mode", ModeText(server.socket_mode())},
       {"dir_mode", ModeText(server.dir_mode())},
       {"reply_socket", reply_path},
       {"euid", geteuid()},
       {"accounts", config.accounts.size()}});

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  Log(LogLevel::kInfo, "helper_stopping",
      {{"signal", sigabbrev_np(signal_number)}});
  cache.Stop();
  replies.Stop();
  server.Stop();
  Log(LogLevel::kInfo, "helper_stopped", {});
  return 0;
}

}  // namespace xoauth2::helper
