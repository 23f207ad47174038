// SPDX-License-Identifier: MIT
//
// TokenCache: per-account state guarded by one mutex, one worker thread
// per account doing all fetches, requesters waiting with a bound. See
// token_cache.h for the contract.

#include "token_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <ctime>

#include "log.h"

namespace xoauth2::helper {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;
using std::chrono::steady_clock;

struct TokenCache::State {
  explicit State(Account a) : account(std::move(a)) {}

  Account account;
  Secret token;                   // empty when none is cached
  SteadyTime expires{};           // when `token` expires
  std::int64_t expires_unix = 0;  // the same, as Unix seconds
  seconds lifetime{0};
  SteadyTime next_fetch{};   // scheduled refresh
  SteadyTime not_before{};   // no fetch before this (backoff, 429)
  SteadyTime last_forced{};  // last reject-forced refresh
  bool forced_once = false;
  bool demand = false;  // a requester waits for a token
  bool fetching = false;
  std::uint64_t generation = 0;  // fetches finished so far
  int failures = 0;              // consecutive failed fetches
  std::string last_error;        // message of the last failure
  std::thread worker;
};

namespace {

// Refresh tokens expire after 90 days unused (AADSTS700082); warn at 80.
constexpr long kRefreshTokenWarnDays = 80;

std::int64_t UnixNow() {
  return std::chrono::duration_cast<seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

protocol::Response Unavailable(std::string text) {
  protocol::Response response;
  response.code = protocol::ErrorCode::kUnavailable;
  response.text = std::move(text);
  return response;
}

protocol::Response NoAccount() {
  protocol::Response response;
  response.code = protocol::ErrorCode::kNoAccount;
  response.text =
      "the helper has no account for this mailbox; add it to the "
      "helper's configuration";
  return response;
}

bool NeedsSomeone(FailureClass failure_class) {
  return failure_class == FailureClass::kNeedsPerson ||
         failure_class == FailureClass::kNeedsAdmin ||
         failure_class == FailureClass::kConfiguration;
}

// Warns when a refresh token file has not been rewritten for 80 days.
void WarnIfRefreshTokenOld(const Account& account) {
  struct stat info {};
  if (account.grant != Grant::kRefreshToken ||
      stat(account.refresh_token_file.c_str(), &info) != 0) {
    return;
  }
  long age_days =
      static_cast<long>((std::time(nullptr) - info.st_mtime) / 86400);
  if (age_days < kRefreshTokenWarnDays)
    return;
  Log(LogLevel::kWarn, "refresh_token_old",
      {{"account", account.name},
       {"mailbox", account.mailbox},
       {"file", account.refresh_token_file},
       {"age_days", age_days},
       {"fix",
        "refresh tokens expire after 90 days unused (AADSTS700082); "
        "keep the helper running so it refreshes, or sign in again"}});
}

}  // namespace

CacheOptions CacheOptions::FromConfig(const Config& config) {
  CacheOptions options;
  options.refresh_margin = seconds(config.refresh_margin_seconds);
  return options;
}

TokenCache::TokenCache(std::vector<Account> accounts, TokenFetcher& fetcher,
                       CacheOptions options)
    : fetcher_(fetcher), options_(options) {
  for (Account& account : accounts) {
    states_.push_back(std::make_unique<State>(std::move(account)));
  }
}

TokenCache::~TokenCache() {
  Stop();
}

void TokenCache::Start() {
  for (auto& state : states_) {
    WarnIfRefreshTokenOld(state->account);
    state->next_fetch = steady_clock::now();
    state->worker = std::thread(&TokenCache::Work, this, std::ref(*state));
  }
}

void TokenCache::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  fetcher_.Cancel();
  wake_.notify_all();
  done_.notify_all();
  for (auto& state : states_) {
    if (state->worker.joinable())
      state->worker.join();
  }
}

std::size_t TokenCache::WaitingRequests() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

TokenCache::State* TokenCache::Find(std::string_view mailbox) {
  std::string wanted(mailbox);
  for (char& c : wanted)
    c = static_cast<char>(std::tolower(c));
  for (auto& state : states_) {
    std::string have = state->account.mailbox;
    for (char& c : have)
      c = static_cast<char>(std::tolower(c));
    if (have == wanted)
      return state.get();
  }
  return nullptr;
}

// A token is handed out only with enough life left for an SMTP session.
bool TokenCache::Usable(const State& state, SteadyTime now) const {
  if (state.token.empty())
    return false;
  seconds needed = std::min(options_.min_remaining, state.lifetime / 2);
  return state.expires - now > needed;
}

protocol::Response TokenCache::Answer(const State& state) const {
  protocol::Response response;
  response.ok = true;
  response.token = state.token.Reveal();
  response.expires = state.expires_unix;
  return response;
}

protocol::Response TokenCache::Get(std::string_view mailbox) {
  State* state = Find(mailbox);
  if (state == nullptr)
    return NoAccount();

  std::unique_lock lock(mutex_);
  SteadyTime now = steady_clock::now();
  if (Usable(*state, now))
    return Answer(*state);

  // In a backoff or Retry-After window no fetch will happen: say so now.
  if (!state->fetching && now < state->not_before) {
    long wait = duration_cast<seconds>(state->not_before - now).count() + 1;
    return Unavailable(state->last_error + " (next attempt in " +
                       std::to_string(wait) + " s)");
  }

  // Ask the account's worker for a token and wait, bounded, for any fetch
  // to finish.
  state->demand = true;
  wake_.notify_all();
  std::uint64_t generation = state->generation;
  ++waiting_;
  bool finished = done_.wait_for(lock, options_.wait_bound, [&] {
    return stopping_ || state->generation != generation ||
           Usable(*state, steady_clock::now());
  });
  --waiting_;

  if (Usable(*state, steady_clock::now()))
    return Answer(*state);
  if (stopping_)
    return Unavailable("the helper is stopping");
  if (!finished) {
    return Unavailable(
        "the token endpoint has not answered yet; the helper "
        "keeps trying");
  }
  return Unavailable(state->last_error);
}

protocol::Response TokenCache::Reject(std::string_view mailbox,
                                      std::string_view token) {
  State* state = Find(mailbox);
  if (state == nullptr)
    return NoAccount();

  std::lock_guard lock(mutex_);
  protocol::Response ok;
  ok.ok = true;
  if (state->token.empty() || state->token.Reveal() != token)
    return ok;

  // Drop the token unless one was dropped moments ago: a server refusing
  // every token must not turn into a stream of token requests.
  SteadyTime now = steady_clock::now();
  std::string hash = ShortHash(token);
  if (state->forced_once &&
      now - state->last_forced < options_.reject_interval) {
    Log(LogLevel::kInfo, "token_reject_ignored",
        {{"account", state->account.name},
         {"token", hash},
         {"reason", "a rejected token was already dropped within 30 s"}});
    return ok;
  }
  state->token = Secret();
  state->forced_once = true;
  state->last_forced = now;
  state->next_fetch = now;
  wake_.notify_all();
  Log(LogLevel::kInfo, "token_rejected",
      {{"account", state->account.name},
       {"mailbox", state->account.mailbox},
       {"token", hash}});
  return ok;
}

void TokenCache::RefreshSoon(std::string_view mailbox) {
  State* state = Find(mailbox);
  if (state == nullptr)
    return;
  std::lock_guard lock(mutex_);
  state->next_fetch = steady_clock::now();
  wake_.notify_all();
}

// When the worker should fetch next.
TokenCache::SteadyTime TokenCache::DueTime(const State& state) const {
  SteadyTime now = steady_clock::now();
  SteadyTime due = state.next_fetch;
  if (state.demand && !Usable(state, now))
    due = std::min(due, now);
  return std::max(due, state.not_before);
}

// The worker loop of one account: sleep until due, fetch, repeat.
void TokenCache::Work(State& state) {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    SteadyTime due = DueTime(state);
    if (due > steady_clock::now()) {
      wake_.wait_until(lock, due);
      continue;
    }
    FetchOnce(state, lock);
  }
}

// Runs one fetch with the lock released, then records its outcome.
void TokenCache::FetchOnce(State& state, std::unique_lock<std::mutex>& lock) {
  state.fetching = true;
  lock.unlock();
  SteadyTime started = steady_clock::now();
  auto result = fetcher_.Fetch(state.account);
  long duration_ms = static_cast<long>(
      duration_cast<milliseconds>(steady_clock::now() - started).count());
  lock.lock();

  state.fetching = false;
  state.demand = false;
  if (result) {
    RecordSuccess(state, std::move(*result), started, duration_ms);
  } else if (!stopping_) {
    RecordFailure(state, result.error(), duration_ms);
  }
  ++state.generation;
  done_.notify_all();
}

void TokenCache::RecordSuccess(State& state, TokenGrant grant,
                               SteadyTime started, long duration_ms) {
  // Expiry counts from when the request was sent, to err on the safe side.
  state.lifetime = seconds(grant.expires_in);
  state.expires = started + state.lifetime;
  state.expires_unix = UnixNow() - duration_ms / 1000 + grant.expires_in;
  state.token = std::move(grant.access_token);

  seconds margin = std::min(options_.refresh_margin, state.lifetime / 2);
  state.next_fetch = state.expires - margin;
  state.not_before = {};
  state.failures = 0;
  state.last_error.clear();

  Log(LogLevel::kInfo, "token_fetched",
      {{"account", state.account.name},
       {"mailbox", state.account.mailbox},
       {"grant", GrantName(state.account.grant)},
       {"expires_in", grant.expires_in},
       {"token", ShortHash(state.token.Reveal())},
       {"refresh_token_rotated", grant.refresh_token.empty() ? "no" : "yes"},
       {"duration_ms", duration_ms}});
}

void TokenCache::RecordFailure(State& state, const TokenFailure& failure,
                               long duration_ms) {
  // Back off; the cached token, if any, stays and is served while valid.
  ++state.failures;
  seconds delay = Backoff(state, failure);
  state.not_before = steady_clock::now() + delay;
  state.next_fetch = state.not_before;
  state.last_error = failure.message;

  Log(LogLevel::kWarn, "token_fetch_failed",
      {{"account", state.account.name},
       {"mailbox", state.account.mailbox},
       {"grant", GrantName(state.account.grant)},
       {"class", FailureClassName(failure.failure_class)},
       {"http_status", failure.http_status},
       {"error", failure.error},
       {"aadsts", failure.aadsts},
       {"suberror", failure.suberror},
       {"trace_id", failure.trace_id},
       {"correlation_id", failure.correlation_id},
       {"retry_in_s", static_cast<long>(delay.count())},
       {"token_kept", state.token.empty() ? "no" : "yes"},
       {"duration_ms", duration_ms},
       {"reason", failure.message}});
}

// Exponential backoff with up to 20% added jitter, never shorter than a
// 429's Retry-After (capped at one hour).
seconds TokenCache::Backoff(const State& state, const TokenFailure& failure) {
  bool manual = NeedsSomeone(failure.failure_class);
  seconds base = manual ? options_.manual_backoff : options_.temporary_backoff;
  seconds cap =
      manual ? options_.manual_backoff_cap : options_.temporary_backoff_cap;
  int shift = std::min(state.failures - 1, 16);
  seconds delay = std::min(base * (1L << shift), cap);

  jitter_state_ ^= jitter_state_ << 13;
  jitter_state_ ^= jitter_state_ >> 7;
  jitter_state_ ^= jitter_state_ << 17;
  delay += delay * static_cast<long>(jitter_state_ % 21) / 100;

  if (failure.failure_class == FailureClass::kThrottled) {
    delay =
        std::max(delay, seconds(std::min(failure.retry_after_seconds, 3600L)));
  }
  return delay;
}

}  // namespace xoauth2::helper
