// SPDX-License-Identifier: MIT
//
// TokenCache: per-account state guarded by one mutex, one worker thread
// per account doing all fetches and file checks, requesters waiting with
// a bound. See token_cache.h for the contract and refresh_policy.h for
// the numbers.

#include "token_cache.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "ascii.h"
#include "log.h"

namespace xoauth2::helper {

using std::chrono::duration_cast;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct TokenCache::State {
  explicit State(Account a) : account(std::move(a)) {}

  Account account;
  Secret token;                   // empty when none is cached
  SteadyTime expires{};           // when `token` expires
  std::int64_t expires_unix = 0;  // the same, as Unix seconds
  seconds lifetime{0};
  seconds margin{0};           // the effective margin for `token`
  bool margin_logged = false;  // refresh_margin_shortened logged once
  SteadyTime next_fetch{};     // scheduled refresh
  SteadyTime not_before{};     // no fetch before this (backoff, 429)
  SteadyTime last_forced{};    // last reject-forced refresh
  bool forced_once = false;
  bool demand = false;   // a requester waits for a token
  bool refetch = false;  // a reload changed the credential: fetch again
  bool fetching = false;
  std::uint64_t generation = 0;  // fetches finished so far
  int failures = 0;              // consecutive failed fetches
  std::string last_error;        // message of the last failure

  // What `status` shows beyond the above.
  AccountHealth health = AccountHealth::kStarting;
  std::string error_class;
  std::string aadsts;
  std::string trace_id;
  std::int64_t last_success_unix = 0;

  // The refresh token file, as last seen by the worker.
  SteadyTime next_file_check{};
  std::int64_t file_mtime = 0;  // 0: not seen (or no file)
  bool aging_warned = false;
  SteadyTime last_aging_warning{};

  // A reload replaced or removed the account: the worker ends after any
  // fetch in flight (retired), then says so (ended).
  bool retired = false;
  bool ended = false;

  std::thread worker;
};

namespace {

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

// The modification time of `path` in Unix seconds, 0 if it cannot be seen.
std::int64_t FileMtime(const std::string& path) {
  struct stat info {};
  if (path.empty() || stat(path.c_str(), &info) != 0)
    return 0;
  return static_cast<std::int64_t>(info.st_mtime);
}

const SystemCacheClock kSystemClock;

// The thumbprint of a loaded certificate, "" when there is none.
std::string Thumbprint(const Account& account) {
  return account.certificate ? account.certificate->ThumbprintS256() : "";
}

// The account in `accounts` whose mailbox is `mailbox`, or nullptr.
const Account* FindIn(std::span<const Account> accounts,
                      std::string_view mailbox) {
  for (const Account& account : accounts) {
    if (SameMailbox(account.mailbox, mailbox))
      return &account;
  }
  return nullptr;
}

}  // namespace

AccountChange ClassifyChange(const Account& running, const Account& loaded) {
  // Which token the endpoint issues, to which app, for whom.
  auto identity = [](const Account& x) {
    return std::tie(x.mailbox, x.provider, x.cloud, x.authority, x.tenant,
                    x.client_id, x.grant, x.refresh_token_file, x.scope);
  };
  if (identity(running) != identity(loaded))
    return AccountChange::kIdentity;

  // How the same app proves itself (whether a secret sits in the file or
  // in a secret file does not change what is sent).
  auto credential = [](const Account& x) {
    return std::tie(x.client_secret, x.certificate_file, x.private_key_file,
                    x.assertion_alg);
  };
  if (credential(running) != credential(loaded) ||
      Thumbprint(running) != Thumbprint(loaded)) {
    return AccountChange::kCredential;
  }

  if (running.name != loaded.name ||
      running.refresh_margin_seconds != loaded.refresh_margin_seconds) {
    return AccountChange::kSettings;
  }
  return AccountChange::kNone;
}

AccountDiff DiffAccounts(std::span<const Account> before,
                         std::span<const Account> after) {
  AccountDiff diff;
  for (const Account& account : after) {
    const Account* old = FindIn(before, account.mailbox);
    if (old == nullptr) {
      diff.added.push_back(account.mailbox);
      continue;
    }
    AccountChange change = ClassifyChange(*old, account);
    if (change == AccountChange::kIdentity) {
      diff.changed.push_back(account.mailbox);
      continue;
    }
    diff.kept.push_back(account.mailbox);
    if (change == AccountChange::kSettings)
      diff.updated.push_back(account.mailbox);
    if (change == AccountChange::kCredential)
      diff.rotated.push_back(account.mailbox);
  }
  for (const Account& account : before) {
    if (FindIn(after, account.mailbox) == nullptr)
      diff.removed.push_back(account.mailbox);
  }
  return diff;
}

std::chrono::steady_clock::time_point SystemCacheClock::Now() const {
  return std::chrono::steady_clock::now();
}

std::int64_t SystemCacheClock::UnixNow() const {
  return duration_cast<seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CacheOptions CacheOptions::FromConfig(const Config& config) {
  CacheOptions options;
  options.refresh_margin = seconds(config.refresh_margin_seconds);
  options.refresh_token_warn_age =
      seconds(config.refresh_token_warn_days * 86400);
  return options;
}

TokenCache::TokenCache(std::vector<Account> accounts, TokenFetcher& fetcher,
                       CacheOptions options)
    : fetcher_(fetcher),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? options_.clock : &kSystemClock),
      random_(std::random_device{}()) {
  for (Account& account : accounts) {
    states_.push_back(std::make_shared<State>(std::move(account)));
  }
}

TokenCache::~TokenCache() {
  Stop();
}

void TokenCache::Start() {
  std::lock_guard lock(mutex_);
  started_ = true;
  SteadyTime now = clock_->Now();
  for (auto& state : states_)
    StartWorker(*state, now);
}

// Starts the worker of `state`, due to fetch at once; mutex_ held.
void TokenCache::StartWorker(State& state, SteadyTime now) {
  state.next_fetch = now;
  state.next_file_check = now;
  state.worker = std::thread(&TokenCache::Work, this, std::ref(state));
}

void TokenCache::Stop() {
  std::vector<StatePtr> workers;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    workers = states_;
    workers.insert(workers.end(), retired_.begin(), retired_.end());
    retired_.clear();
  }
  fetcher_.Cancel();
  wake_.notify_all();
  done_.notify_all();
  for (auto& state : workers) {
    if (state->worker.joinable())
      state->worker.join();
  }
}

AccountDiff TokenCache::Reconfigure(std::vector<Account> accounts) {
  std::vector<StatePtr> ended;
  AccountDiff diff;
  {
    std::lock_guard lock(mutex_);
    std::vector<Account> before;
    for (const auto& state : states_)
      before.push_back(state->account);
    diff = DiffAccounts(before, accounts);

    // Kept accounts bring their state along, updated; the others get
    // new ones.
    std::vector<StatePtr> next;
    SteadyTime now = clock_->Now();
    for (Account& account : accounts)
      next.push_back(Adopt(std::move(account), now));

    // What the new list does not hold is retired (see the header).
    for (auto& state : states_) {
      if (std::find(next.begin(), next.end(), state) != next.end())
        continue;
      state->retired = true;
      retired_.push_back(state);
    }
    states_ = std::move(next);
    ended = TakeEndedWorkers();
  }
  wake_.notify_all();
  done_.notify_all();
  for (auto& state : ended)
    state->worker.join();
  return diff;
}

// The running state for `account`, updated, unless the token it would
// get changed; else a new state (with its worker, once started); mutex_
// held.
TokenCache::StatePtr TokenCache::Adopt(Account account, SteadyTime now) {
  StatePtr old = Find(account.mailbox);
  if (old != nullptr) {
    AccountChange change = ClassifyChange(old->account, account);
    if (change != AccountChange::kIdentity) {
      Update(*old, std::move(account), change, now);
      return old;
    }
  }
  auto state = std::make_shared<State>(std::move(account));
  if (started_ && !stopping_)
    StartWorker(*state, now);
  return state;
}

// Gives a kept state its reloaded account; the cached token stays (see
// the header for why, also when the credential changed); mutex_ held.
void TokenCache::Update(State& state, Account account, AccountChange change,
                        SteadyTime now) {
  bool new_margin =
      account.refresh_margin_seconds != state.account.refresh_margin_seconds;
  state.account = std::move(account);

  // A new credential is tried at once, past any backoff of the old one.
  if (change == AccountChange::kCredential) {
    state.refetch = true;
    state.failures = 0;
    state.not_before = now;
    state.next_fetch = now;
  }

  // A new margin decides from now on whether the cached token is fresh
  // and, unless a fetch is due anyway, when it is refreshed.
  if (!new_margin || state.token.empty())
    return;
  state.margin_logged = false;
  if (!state.fetching && !state.refetch && state.failures == 0) {
    ScheduleRefresh(state, state.expires - state.lifetime);
    return;
  }
  seconds configured = ConfiguredMargin(state);
  state.margin =
      EffectiveMargin(configured, state.lifetime, options_.policy).margin;
}

// Removes from retired_ the states whose workers have ended (or never
// ran) and returns them for joining; mutex_ held.
std::vector<TokenCache::StatePtr> TokenCache::TakeEndedWorkers() {
  std::vector<StatePtr> ended;
  std::erase_if(retired_, [&ended](const StatePtr& state) {
    if (!state->ended && state->worker.joinable())
      return false;
    ended.push_back(state);
    return true;
  });
  return ended;
}

std::size_t TokenCache::WaitingRequests() const {
  std::lock_guard lock(mutex_);
  return waiting_;
}

void TokenCache::ClockChanged() {
  std::lock_guard lock(mutex_);
  wake_.notify_all();
  done_.notify_all();
}

// The state serving `mailbox` (case-insensitive) or nullptr; mutex_ held.
TokenCache::StatePtr TokenCache::Find(std::string_view mailbox) const {
  std::string wanted = AsciiLower(mailbox);
  for (const auto& state : states_) {
    if (AsciiLower(state->account.mailbox) == wanted)
      return state;
  }
  return nullptr;
}

// Fresh: at least the refresh margin left, what every answer should have.
bool TokenCache::Fresh(const State& state, SteadyTime now) const {
  return !state.token.empty() && state.expires - now >= state.margin;
}

// Still valid: enough life left for an SMTP session; served only while a
// fresh token cannot be had.
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
  std::unique_lock lock(mutex_);
  StatePtr state = Find(mailbox);
  if (state == nullptr)
    return NoAccount();

  SteadyTime now = clock_->Now();
  if (Fresh(*state, now))
    return Answer(*state);

  // A refresh in flight or failing: the still-valid token, if any.
  bool backing_off = !state->fetching && now < state->not_before;
  if (Usable(*state, now) && (state->fetching || backing_off))
    return Answer(*state);

  // In a backoff or Retry-After window no fetch will happen: say so now.
  if (backing_off) {
    auto left = state->not_before - now + milliseconds(999);
    long wait = static_cast<long>(duration_cast<seconds>(left).count());
    return Unavailable(state->last_error + " (next attempt in " +
                       std::to_string(wait) + " s)");
  }
  return WaitForFetch(std::move(state), lock);
}

// Asks the account's worker for a token and waits, bounded, for a fetch.
// When a reload retires the state meanwhile, the fetch in flight is
// waited for and its token served; otherwise the wait goes on with the
// account's new state, or ends with no-account when it was removed.
protocol::Response TokenCache::WaitForFetch(
    StatePtr state, std::unique_lock<std::mutex>& lock) {
  auto deadline = std::chrono::steady_clock::now() + options_.wait_bound;
  ++waiting_;
  bool finished = WaitOnce(*state, lock, deadline);
  while (state->retired && !stopping_ && !Usable(*state, clock_->Now())) {
    state = Find(state->account.mailbox);
    if (state == nullptr) {
      --waiting_;
      return NoAccount();
    }
    finished = WaitOnce(*state, lock, deadline);
  }
  --waiting_;

  if (Usable(*state, clock_->Now()))
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

// Wakes the worker of `state` for a token and waits until a fetch ends,
// the token is fresh, the state is retired with no fetch in flight, the
// cache stops or `deadline` passes (false).
bool TokenCache::WaitOnce(State& state, std::unique_lock<std::mutex>& lock,
                          std::chrono::steady_clock::time_point deadline) {
  state.demand = true;
  wake_.notify_all();
  std::uint64_t generation = state.generation;
  return done_.wait_until(lock, deadline, [&] {
    return stopping_ || (state.retired && !state.fetching) ||
           state.generation != generation || Fresh(state, clock_->Now());
  });
}

protocol::Response TokenCache::Reject(std::string_view mailbox,
                                      std::string_view token) {
  std::lock_guard lock(mutex_);
  StatePtr state = Find(mailbox);
  if (state == nullptr)
    return NoAccount();

  protocol::Response ok;
  ok.ok = true;
  if (state->token.empty() || state->token.Reveal() != token)
    return ok;

  // Drop the token unless one was dropped moments ago: a server refusing
  // every token must not turn into a stream of token requests.
  SteadyTime now = clock_->Now();
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
  std::lock_guard lock(mutex_);
  StatePtr state = Find(mailbox);
  if (state == nullptr)
    return;
  state->next_fetch = clock_->Now();
  wake_.notify_all();
}

// When the worker should fetch next.
TokenCache::SteadyTime TokenCache::DueTime(const State& state,
                                           SteadyTime now) const {
  SteadyTime due = state.next_fetch;
  if (state.demand && !Fresh(state, now))
    due = std::min(due, now);
  return std::max(due, state.not_before);
}

// The worker loop of one account: fetch when due, look at the refresh
// token file when due, otherwise sleep until the earlier of the two;
// until the cache stops or a reload retires the account.
void TokenCache::Work(State& state) {
  std::unique_lock lock(mutex_);
  while (!stopping_ && !state.retired) {
    SteadyTime now = clock_->Now();
    SteadyTime due = DueTime(state, now);
    if (due <= now) {
      FetchOnce(state, lock);
    } else if (state.next_file_check <= now) {
      CheckRefreshTokenFile(state, lock);
    } else {
      wake_.wait_for(lock, std::min(due, state.next_file_check) - now);
    }
  }
  state.ended = true;
}

// Runs one fetch with the lock released, then records its outcome.
// The fetch uses a copy of the account, which a reload may replace
// meanwhile; a credential replaced during the fetch is tried right after.
void TokenCache::FetchOnce(State& state, std::unique_lock<std::mutex>& lock) {
  state.fetching = true;
  state.refetch = false;
  Account account = state.account;
  Secret held = state.token;
  lock.unlock();
  SteadyTime started = clock_->Now();
  auto real_start = std::chrono::steady_clock::now();
  auto result = fetcher_.Fetch(account, held);
  long duration_ms = static_cast<long>(
      duration_cast<milliseconds>(std::chrono::steady_clock::now() - real_start)
          .count());
  lock.lock();

  state.fetching = false;
  state.demand = false;
  if (result) {
    RecordSuccess(state, std::move(*result), started, duration_ms);
  } else if (!stopping_) {
    RecordFailure(state, result.error(), duration_ms);
  }
  if (state.refetch) {
    state.not_before = clock_->Now();
    state.next_fetch = state.not_before;
  }
  ++state.generation;
  done_.notify_all();
}

void TokenCache::RecordSuccess(State& state, TokenGrant grant,
                               SteadyTime started, long duration_ms) {
  // Expiry counts from when the request was sent, to err on the safe side.
  state.lifetime = seconds(grant.expires_in);
  state.expires = started + state.lifetime;
  state.expires_unix =
      clock_->UnixNow() - duration_ms / 1000 + grant.expires_in;
  state.token = std::move(grant.access_token);
  ScheduleRefresh(state, started);

  state.not_before = {};
  state.failures = 0;
  state.last_error.clear();
  state.error_class.clear();
  state.aadsts.clear();
  state.trace_id.clear();
  state.health = AccountHealth::kHealthy;
  state.last_success_unix = clock_->UnixNow();
  if (!grant.refresh_token.empty())
    state.file_mtime = clock_->UnixNow();

  Log(LogLevel::kInfo, "token_fetched",
      {{"account", state.account.name},
       {"mailbox", state.account.mailbox},
       {"grant", GrantName(state.account.grant)},
       {"expires_in", grant.expires_in},
       {"token", ShortHash(state.token.Reveal())},
       {"refresh_token_rotated", grant.refresh_token.empty() ? "no" : "yes"},
       {"next_refresh_in_s",
        duration_cast<seconds>(state.next_fetch - started).count()},
       {"duration_ms", duration_ms}});
}

// The account's refresh margin, or the cache's default when it has none.
seconds TokenCache::ConfiguredMargin(const State& state) const {
  return state.account.refresh_margin_seconds > 0
             ? seconds(state.account.refresh_margin_seconds)
             : options_.refresh_margin;
}

// Sets the margin for the token fetched at `started` and its refresh
// time with jitter.
void TokenCache::ScheduleRefresh(State& state, SteadyTime started) {
  seconds configured = ConfiguredMargin(state);
  MarginChoice choice =
      EffectiveMargin(configured, state.lifetime, options_.policy);
  state.margin = choice.margin;
  state.next_fetch = started + RefreshDelay(state.lifetime, choice.margin,
                                            Draw(), options_.policy);
  if (!choice.shortened || state.margin_logged)
    return;
  state.margin_logged = true;
  Log(LogLevel::kInfo, "refresh_margin_shortened",
      {{"account", state.account.name},
       {"lifetime_s", static_cast<long>(state.lifetime.count())},
       {"configured_margin_s", static_cast<long>(configured.count())},
       {"margin_s", static_cast<long>(choice.margin.count())},
       {"reason",
        "tokens live too briefly for the margin; using half the "
        "lifetime"}});
}

void TokenCache::RecordFailure(State& state, const TokenFailure& failure,
                               long duration_ms) {
  // Back off; the cached token, if any, stays and is served while valid.
  ++state.failures;
  seconds delay = RetryDelay(failure, state.failures, Draw(), options_.policy);
  state.not_before = clock_->Now() + delay;
  state.next_fetch = state.not_before;
  state.last_error = failure.message;
  state.error_class = std::string(FailureClassName(failure.failure_class));
  state.aadsts = failure.aadsts;
  state.trace_id = failure.trace_id;
  state.health = NeedsAttention(failure.failure_class)
                     ? AccountHealth::kNeedsAttention
                     : AccountHealth::kRetrying;

  Log(LogLevel::kWarn, "token_fetch_failed",
      {{"account", state.account.name},
       {"mailbox", state.account.mailbox},
       {"grant", GrantName(state.account.grant)},
       {"class", FailureClassName(failure.failure_class)},
       {"state", AccountHealthName(state.health)},
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

// Looks at the refresh token file (with the lock released): warns when
// it is aging, and retries at once when someone rewrote it while the
// account needed attention (`token-helper authorize`).
void TokenCache::CheckRefreshTokenFile(State& state,
                                       std::unique_lock<std::mutex>& lock) {
  SteadyTime now = clock_->Now();
  state.next_file_check = now + options_.file_check_interval;
  if (state.account.grant != Grant::kRefreshToken)
    return;
  std::string path = state.account.refresh_token_file;
  lock.unlock();
  std::int64_t mtime = FileMtime(path);
  lock.lock();

  bool rewritten = state.file_mtime != 0 && mtime > state.file_mtime;
  state.file_mtime = std::max(mtime, state.file_mtime);
  if (rewritten && state.health == AccountHealth::kNeedsAttention) {
    state.not_before = now;
    state.next_fetch = now;
    Log(LogLevel::kInfo, "refresh_token_file_changed",
        {{"account", state.account.name},
         {"file", state.account.refresh_token_file},
         {"action", "retrying now"}});
  }
  WarnIfAging(state, now);
}

// Logs refresh_token_aging at most once per aging_warn_interval.
void TokenCache::WarnIfAging(State& state, SteadyTime now) {
  if (state.file_mtime == 0 ||
      !RefreshTokenAging(state.file_mtime, clock_->UnixNow(),
                         options_.refresh_token_warn_age)) {
    return;
  }
  if (state.aging_warned &&
      now - state.last_aging_warning < options_.aging_warn_interval) {
    return;
  }
  state.aging_warned = true;
  state.last_aging_warning = now;
  Log(LogLevel::kWarn, "refresh_token_aging",
      {{"account", state.account.name},
       {"mailbox", state.account.mailbox},
       {"file", state.account.refresh_token_file},
       {"age_days", (clock_->UnixNow() - state.file_mtime) / 86400},
       {"fix",
        "refresh tokens expire after 90 days unused (AADSTS700082) and the "
        "helper has not rotated this one lately; check token_fetch_failed "
        "events, or sign in again with token-helper authorize"}});
}

std::vector<AccountStatus> TokenCache::Status() const {
  std::lock_guard lock(mutex_);
  SteadyTime now = clock_->Now();
  std::int64_t unix_now = clock_->UnixNow();
  std::vector<AccountStatus> out;
  for (const auto& state : states_)
    out.push_back(StatusOf(*state, now, unix_now));
  return out;
}

// One account's status; the token only as its short hash.
AccountStatus TokenCache::StatusOf(const State& state, SteadyTime now,
                                   std::int64_t unix_now) const {
  AccountStatus status;
  status.name = state.account.name;
  status.mailbox = state.account.mailbox;
  status.provider = std::string(ProviderName(state.account.provider));
  status.grant = std::string(GrantName(state.account.grant));
  status.health = state.health;
  status.error_class = state.error_class;
  status.aadsts = state.aadsts;
  status.error = state.last_error.substr(0, state.last_error.find('\n'));
  status.trace_id = state.trace_id;
  status.failures = state.failures;
  status.last_success = state.last_success_unix;
  if (!state.token.empty()) {
    status.token_expires = state.expires_unix;
    status.token_hash = ShortHash(state.token.Reveal());
  }
  SteadyTime due = std::max(DueTime(state, now), now);
  status.next_refresh = unix_now + duration_cast<seconds>(due - now).count();
  if (state.file_mtime != 0) {
    status.refresh_token_age = unix_now - state.file_mtime;
    status.refresh_token_aging = RefreshTokenAging(
        state.file_mtime, unix_now, options_.refresh_token_warn_age);
  }
  return status;
}

// A uniform draw in [0, 1) for jitter; called with mutex_ held.
double TokenCache::Draw() {
  if (options_.random)
    return options_.random();
  return std::uniform_real_distribution<double>(0.0, 1.0)(random_);
}

}  // namespace xoauth2::helper
