// SPDX-License-Identifier: MIT
//
// The per-account access token cache and its refreshers.
//
// TokenCache answers `token` and `reject` requests (docs/protocol.md) from
// memory. Each account has one worker thread, owned by the cache, which is
// the only caller of the fetcher for that account: so at most one fetch per
// account is ever in flight, however many requests arrive (F13). A worker
// fetches at start, again refresh_margin_seconds before expiry (capped to
// half the token's lifetime), on demand when a request finds no usable
// token, and after failures with exponential backoff (longer for failures
// that need a person; never sooner than a 429's Retry-After, F11).
// Requesters never fetch: they wait on a condition variable for at most
// wait_bound (below the plugin's 5 s budget), then get `err unavailable`.
// A token that is still valid is kept and served when a refresh fails.
//
// Logging: this layer logs every fetch outcome once (info on success, warn
// with class, HTTP status, AADSTS code and trace id on failure) and
// rejected tokens; tokens appear only as ShortHash. Start() and Stop() are
// called from one thread; Get() and Reject() from any number of threads.

#ifndef XOAUTH2_TOKEN_HELPER_TOKEN_CACHE_H
#define XOAUTH2_TOKEN_HELPER_TOKEN_CACHE_H

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "config.h"
#include "protocol.h"
#include "token_endpoint.h"

namespace xoauth2::helper {

struct CacheOptions {
  // How long a requester waits for a fetch in flight.
  std::chrono::milliseconds wait_bound{4000};
  // A token with less left than this (or half its lifetime, if smaller) is
  // not handed out.
  std::chrono::seconds min_remaining{60};
  // Refresh this long before expiry (capped to half the lifetime).
  std::chrono::seconds refresh_margin{600};
  // At most one `reject`-forced refresh per account in this interval.
  std::chrono::seconds reject_interval{30};
  // First retry delay after a temporary failure, and its cap.
  std::chrono::seconds temporary_backoff{5};
  std::chrono::seconds temporary_backoff_cap{300};
  // First retry delay after a failure that needs a person, and its cap.
  std::chrono::seconds manual_backoff{60};
  std::chrono::seconds manual_backoff_cap{1800};

  static CacheOptions FromConfig(const Config& config);
};

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

  // Answers `token MAILBOX`: `ok TOKEN EXPIRES`, `err no-account` or
  // `err unavailable` with the reason.
  protocol::Response Get(std::string_view mailbox);

  // Answers `reject MAILBOX TOKEN` with `ok` (or `err no-account`); drops
  // the cached token if it is TOKEN, at most once per reject_interval.
  protocol::Response Reject(std::string_view mailbox, std::string_view token);

  // Schedules a refresh of `mailbox`'s token now while the current one
  // stays in use (backoff windows still apply).
  void RefreshSoon(std::string_view mailbox);

  // Requesters currently waiting for a fetch; for tests.
  std::size_t WaitingRequests() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct State;

  State* Find(std::string_view mailbox);
  bool Usable(const State& state, SteadyTime now) const;
  protocol::Response Answer(const State& state) const;
  void Work(State& state);
  SteadyTime DueTime(const State& state) const;
  void FetchOnce(State& state, std::unique_lock<std::mutex>& lock);
  void RecordSuccess(State& state, TokenGrant grant, SteadyTime started,
                     long duration_ms);
  void RecordFailure(State& state, const TokenFailure& failure,
                     long duration_ms);
  std::chrono::seconds Backoff(const State& state, const TokenFailure& failure);

  std::vector<std::unique_ptr<State>> states_;
  TokenFetcher& fetcher_;
  CacheOptions options_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // workers: demand, reject or stop
  std::condition_variable done_;  // requesters: a fetch finished
  bool stopping_ = false;
  std::size_t waiting_ = 0;
  std::uint64_t jitter_state_ = 0x9e3779b97f4a7c15ULL;
};

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_TOKEN_CACHE_H
