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
// SIGHUP reloads on the signal thread (daemon.h): allowlists are widened
// to keep removed accounts' own lists, then the cache switches accounts,
// then the removed accounts' lists go, so no peer ever gets a token the
// old or the new configuration would refuse it.

#include "daemon.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "log.h"
#include "reply_server.h"
#include "reply_watcher.h"
#include "secret_file.h"
#include "token_endpoint.h"

namespace xoauth2::helper {
namespace {

// Blocks SIGTERM, SIGINT and SIGHUP (inherited by threads started later)
// and ignores SIGPIPE; returns the blocked set.
sigset_t BlockControlSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

// The configuration in force: the signal thread replaces it on a reload
// while the reply watcher's thread reads account names from it.
class CurrentConfig {
 public:
  explicit CurrentConfig(const Config& config)
      : config_(std::make_shared<const Config>(config)) {}

  std::shared_ptr<const Config> Get() const {
    std::lock_guard lock(mutex_);
    return config_;
  }

  void Set(Config config) {
    auto next = std::make_shared<const Config>(std::move(config));
    std::lock_guard lock(mutex_);
    config_ = std::move(next);
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Config> config_;
};

// The configured name of the account whose mailbox is `mailbox`.
std::string AccountName(const Config& config, std::string_view mailbox) {
  const Account* account = config.FindAccount(mailbox);
  return account == nullptr ? std::string() : account->name;
}

// What the reply watcher may do to the cache.
ReplyActions CacheActions(TokenCache& cache, const CurrentConfig& config) {
  ReplyActions actions;
  actions.drop = [&cache](std::string_view mailbox, std::string_view token) {
    cache.Reject(mailbox, token);
  };
  actions.refresh = [&cache](std::string_view mailbox) {
    cache.RefreshSoon(mailbox);
  };
  actions.account_name = [&config](std::string_view mailbox) {
    return AccountName(*config.Get(), mailbox);
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

// Logs helper_started with the sockets' paths and modes, and a warning
// when the helper runs as root.
void LogStarted(const Config& config, const SocketServer& server,
                const std::string& reply_path) {
  Log(LogLevel::kInfo, "helper_started",
      {{"version", XOAUTH2_VERSION},
       {"config", config.path},
       {"socket", config.socket},
       {"socket_mode", ModeText(server.socket_mode())},
       {"dir_mode", ModeText(server.dir_mode())},
       {"reply_socket", reply_path},
       {"euid", geteuid()},
       {"accounts", config.accounts.size()}});

  // Root could read every secret file on the machine; a leak of this
  // process should give away only the accounts it holds.
  if (geteuid() == 0) {
    Log(LogLevel::kWarn, "running_as_root",
        {{"fix",
          "run it as its own unprivileged user, as token-helper.service "
          "does (User=xoauth2-relay)"}});
  }
}

// What a reload changes, all owned by RunDaemon.
struct Running {
  CurrentConfig& config;
  TokenCache& cache;
  SocketServer& server;
  ReplyServer& replies;
  const DaemonOptions& options;
};

// The account allowlists of `next` plus those of accounts of `running`
// that `next` removes (kept until the cache no longer serves them).
std::vector<AccountPolicy> PoliciesDuringSwitch(const Config& running,
                                                const Config& next) {
  std::vector<AccountPolicy> policies = AccountPoliciesFromConfig(next);
  for (AccountPolicy& old : AccountPoliciesFromConfig(running)) {
    if (next.FindAccount(old.mailbox) == nullptr)
      policies.push_back(std::move(old));
  }
  return policies;
}

// Logs each setting that needs a restart, then keeps its running value
// in `next`, so that later reloads compare against what really runs.
void KeepRestartOnlySettings(const Config& running, Config& next) {
  for (const std::string& key : RestartOnlyChanges(running, next)) {
    Log(LogLevel::kWarn, "reload_restart_needed",
        {{"config", next.path},
         {"setting", key},
         {"fix",
          "restart token-helper (systemctl restart token-helper) to "
          "apply " +
              key + "; the running value stays until then"}});
  }
  next.socket = running.socket;
  next.ca_file = running.ca_file;
  next.proxy = running.proxy;
  next.connect_timeout_seconds = running.connect_timeout_seconds;
  next.request_timeout_seconds = running.request_timeout_seconds;
  next.refresh_token_warn_days = running.refresh_token_warn_days;
}

// Switches allowlists and accounts to `next` (see the file comment) and
// logs config_reloaded.
void Apply(Running& running, const Config& current, Config next) {
  AccessPolicy global = PolicyFromConfig(next);
  running.server.SetPolicies(global, PoliciesDuringSwitch(current, next));
  running.replies.SetPolicy(global);
  AccountDiff diff = running.cache.Reconfigure(next.accounts);
  running.server.SetPolicies(global, AccountPoliciesFromConfig(next));

  Log(LogLevel::kInfo, "config_reloaded",
      {{"config", next.path},
       {"accounts", next.accounts.size()},
       {"kept", diff.kept.size()},
       {"updated", diff.updated.size()},
       {"rotated", diff.rotated.size()},
       {"changed", diff.changed.size()},
       {"added", diff.added.size()},
       {"removed", diff.removed.size()}});
  running.config.Set(std::move(next));
}

// SIGHUP: reads the file again as at start and applies it; a file that
// does not load is logged and the running configuration stays.
void Reload(Running& running) {
  std::shared_ptr<const Config> current = running.config.Get();
  auto loaded = LoadConfig(current->path, running.options.use);
  if (!loaded) {
    Log(LogLevel::kError, "reload_failed",
        {{"config", current->path},
         {"reason", loaded.error()},
         {"action", "still serving the previous configuration"}});
    return;
  }
  KeepRestartOnlySettings(*current, *loaded);
  loaded->log_level = running.options.log_level.value_or(loaded->log_level);
  SetLogLevel(loaded->log_level);
  Apply(running, *current, std::move(*loaded));
}

// Waits for signals, reloading on SIGHUP; returns the one that stops.
int WaitForStop(const sigset_t& signals, Running& running) {
  while (true) {
    int signal_number = 0;
    if (sigwait(&signals, &signal_number) != 0)
      continue;
    if (signal_number != SIGHUP)
      return signal_number;
    Log(LogLevel::kInfo, "reload_requested",
        {{"config", running.config.Get()->path}});
    Reload(running);
  }
}

}  // namespace

std::vector<std::string> RestartOnlyChanges(const Config& running,
                                            const Config& loaded) {
  std::vector<std::string> keys;
  auto check = [&keys](std::string_view key, bool same) {
    if (!same)
      keys.emplace_back(key);
  };
  check("socket", running.socket == loaded.socket);
  check("ca_file", running.ca_file == loaded.ca_file);
  check("proxy", running.proxy == loaded.proxy);
  check("connect_timeout_seconds",
        running.connect_timeout_seconds == loaded.connect_timeout_seconds);
  check("request_timeout_seconds",
        running.request_timeout_seconds == loaded.request_timeout_seconds);
  check("refresh_token_warn_days",
        running.refresh_token_warn_days == loaded.refresh_token_warn_days);
  return keys;
}

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

int RunDaemon(const Config& config, const DaemonOptions& options) {
  sigset_t signals = BlockControlSignals();
  CurrentConfig current(config);
  SetLogLevel(options.log_level.value_or(config.log_level));

  CurlTokenFetcher fetcher(HttpSettings::FromConfig(config));
  TokenCache cache(config.accounts, fetcher, CacheOptions::FromConfig(config));
  ReplyWatcher watcher(CacheActions(cache, current), WatcherOptions{});

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
  LogStarted(config, server, reply_path);

  Running running{current, cache, server, replies, options};
  int signal_number = WaitForStop(signals, running);
  Log(LogLevel::kInfo, "helper_stopping",
      {{"signal", sigabbrev_np(signal_number)}});
  cache.Stop();
  replies.Stop();
  server.Stop();
  Log(LogLevel::kInfo, "helper_stopped", {});
  return 0;
}

}  // namespace xoauth2::helper
