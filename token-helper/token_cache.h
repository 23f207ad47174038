// SPDX-License-Identifier: MIT
//
// The per-account access token cache and its refreshers.
//
// TokenCache answers `token`, `reject` and `status` requests
// (docs/protocol.md) from memory. Each account has one worker thread,
// owned by the cache, which is the only caller of the fetcher for that
// account: so at most one fetch per account is ever in flight, however
// many requests arrive (F13). A worker fetches at start, then on the
// schedule of refresh_policy.h (expiry - margin - jitter), whether or not
// anyone asks, so idle accounts stay refreshed and their refresh tokens
// keep rotating (F18); on demand when a request finds no fresh token; and
// after failures when RetryDelay() says (exactly Retry-After for a 429,
// F11; exponential for temporary failures; one long interval for
// failures a person must fix). Requesters never fetch: they wait on a
// condition variable for at most wait_bound (below the plugin's 5 s
// budget), then get `err unavailable`.
//
// Which token is handed out: a fresh one (at least the margin left); when
// a refresh is in flight or failing, the still-valid one (more than
// min_remaining left, F07/F08); never an expired one. Nothing here deletes
// a refresh token; the fetcher re-reads the file before every attempt, and
// a file rewritten by `token-helper authorize` while the account needs
// attention is tried at once. The worker also checks the refresh token
// file every file_check_interval and warns (event refresh_token_aging, at
// most once per aging_warn_interval) when it has not been rewritten for
// refresh_token_warn_age, well before the 90-day limit (AADSTS700082).
//
// Time comes from a CacheClock, which tests replace with a manual one
// (then calling ClockChanged() after moving it).
//
// Reconfigure() applies a reloaded account list (SIGHUP, daemon.h) under
// the cache's mutex, so a request sees the old list or the new one,
// never a mix. ClassifyChange() decides per mailbox what a change means
// for the cached token:
//  - kNone, kSettings (name, refresh margin): the state and cached token
//    stay; the new settings apply at once (the margin to the current
//    token's Fresh() test and its scheduled refresh, the name to logs
//    and status). Allowlists and send_as do not reach the cache.
//  - kCredential (client secret, certificate, key, assertion algorithm,
//    with the same app, tenant, scope and grant): the state and cached
//    token stay, and a refresh with the new credential starts at once.
//    The old token is still the same app's token for the same mailbox
//    and scope, and the endpoint does not revoke issued tokens when a
//    secret is replaced, so dropping it would protect nothing and would
//    stop service while the endpoint is down; it is served (while
//    valid) until the refresh succeeds, and a refused new credential
//    shows at once as token_fetch_failed.
//  - kIdentity (provider, cloud, authority, tenant, client id, grant,
//    refresh token file, scope, mailbox spelling): the cached token is
//    another token than the configuration asks for (another app,
//    tenant, audience or, for a refresh token, possibly another user),
//    so it is dropped: a fresh state and worker fetch at once.
// An added account gets a fresh state too; a removed one is no longer
// found (`err no-account`). The state and worker of an identity-changed
// or removed account are retired: the worker finishes a fetch in flight
// (a requester waiting for it gets its token; one waiting on a changed
// account follows it to its new state), then ends; retired workers are
// joined at the next Reconfigure() or at Stop(). So for a moment after a
// reload a changed account may have two fetches in flight, the old
// one's and the new one's. A fetch in flight works on a copy of the
// account taken when it started, and is given the token then held so
// that an answer echoing it is masked (TokenFetcher::Fetch).
//
// Logging: this layer logs
// every fetch outcome once (info on success, warn with class, HTTP status,
// AADSTS code and trace id on failure), rejected tokens and the aging
// warning; tokens appear only as ShortHash. Start(), Stop() and
// Reconfigure() are called from one thread; the other methods from any
// number of threads.

#ifndef XOAUTH2_TOKEN_HELPER_TOKEN_CACHE_H
#define XOAUTH2_TOKEN_HELPER_TOKEN_CACHE_H

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "account_status.h"
#include "config.h"
#include "protocol.h"
#include "refresh_policy.h"
#include "token_endpoint.h"

namespace xoauth2::helper {

// Where the cache reads the time; tests substitute a manual clock.
class CacheClock {
 public:
  virtual ~CacheClock() = default;
  virtual std::chrono::steady_clock::time_point Now() const = 0;
  virtual std::int64_t UnixNow() const = 0;  // seconds since the epoch
};

// The steady clock and the system's Unix time.
class SystemCacheClock : public CacheClock {
 public:
  std::chrono::steady_clock::time_point Now() const override;
  std::int64_t UnixNow() const override;
};

struct CacheOptions {
  // How long a requester waits for a fetch in flight.
  std::chrono::milliseconds wait_bound{4000};
  // A token with less left than this (or half its lifetime, if smaller) is
  // never handed out, even while a refresh fails.
  std::chrono::seconds min_remaining{60};
  // The margin for accounts whose refresh_margin_seconds is 0.
  std::chrono::seconds refresh_margin{600};
  // At most one `reject`-forced refresh per account in this interval.
  std::chrono::seconds reject_interval{30};
  // Margins, jitter and retry delays.
  RefreshSettings policy;
  // Warn when a refresh token file has not been rewritten for this long.
  std::chrono::seconds refresh_token_warn_age{14 * 86400};
  // How often the worker looks at the refresh token file.
  std::chrono::seconds file_check_interval{60};
  // At most one aging warning per account in this interval.
  std::chrono::seconds aging_warn_interval{86400};
  // The clock (nullptr: the system's); must outlive the cache.
  const CacheClock* clock = nullptr;
  // Uniform draws in [0, 1) for jitter (empty: a seeded generator).
  std::function<double()> random;

  static CacheOptions FromConfig(const Config& config);
};

// What a reload changed in one account, by its effect on the cached
// token (see the file comment); the strongest change wins.
enum class AccountChange {
  kNone,        // nothing the cache uses (allowlists, send_as may differ)
  kSettings,    // name or refresh margin: applied, token kept
  kCredential,  // secret or certificate of the same app: token kept,
                // refreshed at once
  kIdentity,    // which token is issued: token dropped, fetched anew
};

// How `loaded` differs from `running` (the same mailbox, compared
// case-insensitively) for the cache.
AccountChange ClassifyChange(const Account& running, const Account& loaded);

// How a reloaded account list differs from the running one, by mailbox
// (compared case-insensitively); each list holds mailboxes as configured.
// `updated` and `rotated` are subsets of `kept`.
struct AccountDiff {
  std::vector<std::string> kept;     // state and cached token kept
  std::vector<std::string> updated;  // kept, name or margin applied
  std::vector<std::string> rotated;  // kept, credential changed
  std::vector<std::string> changed;  // token identity changed: dropped
  std::vector<std::string> added;    // only in the new list
  std::vector<std::string> removed;  // only in the old list
};

// The difference between `before` and `after`, in `after`'s order
// (removed: in `before`'s).
AccountDiff DiffAccounts(std::span<const Account> before,
                         std::span<const Account> after);

class TokenCache {
 public:
  // `accounts` are copied; `fetcher` must outlive the cache.
  TokenCache(std::vector<Account> accounts, TokenFetcher& fetcher,
             CacheOptions options);
  ~TokenCache();
  TokenCache(const TokenCache&) = delete;
  TokenCache& operator=(const TokenCache&) = delete;

  // Starts one worker per account; each fetches at once.
  void Start();

  // Stops the workers (cancelling fetches in flight) and joins them.
  void Stop();

  // Serves `accounts` from now on (see the file comment); accounts
  // whose token identity is unchanged keep their state and cached token
  // and take the new settings. Returns what changed. Joins the workers
  // of accounts retired earlier that have ended.
  AccountDiff Reconfigure(std::vector<Account> accounts);

  // Answers `token MAILBOX`: `ok TOKEN EXPIRES`, `err no-account` or
  // `err unavailable` with the reason.
  protocol::Response Get(std::string_view mailbox);

  // Answers `reject MAILBOX TOKEN` with `ok` (or `err no-account`); drops
  // the cached token if it is TOKEN, at most once per reject_interval.
  protocol::Response Reject(std::string_view mailbox, std::string_view token);

  // Schedules a refresh of `mailbox`'s token now while the current one
  // stays in use (backoff windows still apply).
  void RefreshSoon(std::string_view mailbox);

  // Every account's state, in configuration order; never a token.
  std::vector<AccountStatus> Status() const;

  // Makes the workers look at the clock again; for tests that move a
  // manual clock.
  void ClockChanged();

  // Requesters currently waiting for a fetch; for tests.
  std::size_t WaitingRequests() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct State;

  using StatePtr = std::shared_ptr<State>;

  StatePtr Find(std::string_view mailbox) const;
  void StartWorker(State& state, SteadyTime now);
  std::vector<StatePtr> TakeEndedWorkers();
  bool Fresh(const State& state, SteadyTime now) const;
  bool Usable(const State& state, SteadyTime now) const;
  protocol::Response Answer(const State& state) const;
  protocol::Response WaitForFetch(StatePtr state,
                                  std::unique_lock<std::mutex>& lock);
  bool WaitOnce(State& state, std::unique_lock<std::mutex>& lock,
                std::chrono::steady_clock::time_point deadline);
  StatePtr Adopt(Account account, SteadyTime now);
  void Update(State& state, Account account, AccountChange change,
              SteadyTime now);
  std::chrono::seconds ConfiguredMargin(const State& state) const;
  void Work(State& state);
  SteadyTime DueTime(const State& state, SteadyTime now) const;
  void FetchOnce(State& state, std::unique_lock<std::mutex>& lock);
  void RecordSuccess(State& state, TokenGrant grant, SteadyTime started,
                     long duration_ms);
  void ScheduleRefresh(State& state, SteadyTime started);
  void RecordFailure(State& state, const TokenFailure& failure,
                     long duration_ms);
  void CheckRefreshTokenFile(State& state, std::unique_lock<std::mutex>& lock);
  void WarnIfAging(State& state, SteadyTime now);
  AccountStatus StatusOf(const State& state, SteadyTime now,
                         std::int64_t unix_now) const;
  double Draw();

  std::vector<StatePtr> states_;   // guarded by mutex_
  std::vector<StatePtr> retired_;  // guarded by mutex_; not yet joined
  TokenFetcher& fetcher_;
  CacheOptions options_;
  const CacheClock* clock_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // workers: demand, reject or stop
  std::condition_variable done_;  // requesters: a fetch finished
  bool stopping_ = false;
  bool started_ = false;
  std::size_t waiting_ = 0;
  std::mt19937_64 random_;  // guarded by mutex_
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_TOKEN_CACHE_H
