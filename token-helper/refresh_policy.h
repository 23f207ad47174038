// SPDX-License-Identifier: MIT
//
// When to refresh an access token and when to retry after a failure: the
// refresh policy of the token cache, as pure functions of durations and a
// random draw so that tests pin every number without a clock or a thread.
//
// Refresh: a token of lifetime L is refreshed at L - margin - jitter after
// it was requested. The margin is the account's refresh_margin_seconds,
// never below kMinRefreshMarginSeconds (600 s, what High Volume Email
// needs), unless L is shorter than twice that: then half of L, and the
// cache logs it once. The jitter is uniform in [0, 10% of L], so accounts
// started together drift apart instead of refreshing in one burst.
//
// Retry, by FailureClass (reference section 3, "How to classify"):
// throttled waits exactly what Retry-After says (at most an hour; the
// temporary schedule when it is missing); temporary backs off
// exponentially from 5 s, doubling, with up to 20% added jitter and a cap
// of 300 s; needs-person, needs-admin and configuration wait one long
// fixed interval (30 min) instead of storming the endpoint, since only a
// person can fix them. A location-based Conditional Access block
// (AADSTS53003, F08) can clear by itself when the network changes, so it
// keeps the temporary schedule while the account still shows
// needs-attention. Nothing here deletes or rewrites a refresh token.
//
// No state, no I/O, no logging; thread-safe.

#ifndef XOAUTH2_TOKEN_HELPER_REFRESH_POLICY_H
#define XOAUTH2_TOKEN_HELPER_REFRESH_POLICY_H

#include <chrono>
#include <cstdint>
#include <string_view>

#include "token_response.h"

namespace xoauth2::helper {

// The policy's numbers; the defaults are the documented behaviour.
struct RefreshSettings {
  std::chrono::seconds min_margin{600};
  double jitter_fraction = 0.10;  // of the lifetime
  std::chrono::seconds temporary_backoff{5};
  std::chrono::seconds temporary_backoff_cap{300};
  double backoff_jitter_fraction = 0.20;  // of the delay
  std::chrono::seconds attention_backoff{1800};
  std::chrono::seconds max_retry_after{3600};
};

// The margin to use and whether the lifetime forced it below min_margin.
struct MarginChoice {
  std::chrono::seconds margin{0};
  bool shortened = false;
};

// max(configured, min_margin), or half of `lifetime` when that is less
// than twice the margin.
MarginChoice EffectiveMargin(std::chrono::seconds configured,
                             std::chrono::seconds lifetime,
                             const RefreshSettings& settings);

// How long after the request that got a token of `lifetime` to refresh it:
// lifetime - margin - jitter, with `draw` in [0, 1) choosing the jitter.
std::chrono::milliseconds RefreshDelay(std::chrono::seconds lifetime,
                                       std::chrono::seconds margin, double draw,
                                       const RefreshSettings& settings);

// Whether a failure can only be fixed by a person (needs-attention).
bool NeedsAttention(FailureClass failure_class);

// True for AADSTS53003, a Conditional Access block that may clear.
bool IsConditionalAccessBlock(const TokenFailure& failure);

// How long to wait before the next attempt after `failure`, the
// `failures`-th failure in a row (1 for the first); `draw` in [0, 1).
std::chrono::seconds RetryDelay(const TokenFailure& failure, int failures,
                                double draw, const RefreshSettings& settings);

// True when a refresh token file last rewritten at `mtime` is at least
// `threshold` old at `now` (both Unix seconds).
bool RefreshTokenAging(std::int64_t mtime, std::int64_t now,
                       std::chrono::seconds threshold);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_REFRESH_POLICY_H
