// SPDX-License-Identifier: MIT
//
// The refresh and retry arithmetic of refresh_policy.h. Durations are
// whole seconds except the refresh delay, which keeps milliseconds so that
// the jitter of short-lived tokens is not rounded away.

#include "refresh_policy.h"

#include <algorithm>

namespace xoauth2::helper {

using std::chrono::milliseconds;
using std::chrono::seconds;

MarginChoice EffectiveMargin(seconds configured, seconds lifetime,
                             const RefreshSettings& settings) {
  seconds margin = std::max(configured, settings.min_margin);
  if (lifetime >= 2 * margin)
    return {margin, false};
  return {lifetime / 2, true};
}

milliseconds RefreshDelay(seconds lifetime, seconds margin, double draw,
                          const RefreshSettings& settings) {
  // Jitter is a fraction of the lifetime, chosen by the draw.
  double span =
      settings.jitter_fraction * static_cast<double>(lifetime.count());
  auto jitter = milliseconds(
      static_cast<std::int64_t>(std::clamp(draw, 0.0, 1.0) * span * 1000));
  milliseconds delay = lifetime - margin - jitter;
  return std::max(delay, milliseconds(0));
}

bool NeedsAttention(FailureClass failure_class) {
  return failure_class == FailureClass::kNeedsPerson ||
         failure_class == FailureClass::kNeedsAdmin ||
         failure_class == FailureClass::kConfiguration;
}

bool IsConditionalAccessBlock(const TokenFailure& failure) {
  return failure.aadsts == "AADSTS53003";
}

namespace {

// base * 2^(failures - 1) plus up to backoff_jitter_fraction, capped.
seconds TemporaryDelay(int failures, double draw,
                       const RefreshSettings& settings) {
  int shift = std::clamp(failures - 1, 0, 20);
  seconds cap = settings.temporary_backoff_cap;
  seconds delay = std::min(settings.temporary_backoff * (1L << shift), cap);
  double extra = static_cast<double>(delay.count()) *
                 settings.backoff_jitter_fraction * std::clamp(draw, 0.0, 1.0);
  return std::min(delay + seconds(static_cast<long>(extra)), cap);
}

}  // namespace

seconds RetryDelay(const TokenFailure& failure, int failures, double draw,
                   const RefreshSettings& settings) {
  // Throttled: exactly what the server asked for (F11).
  if (failure.failure_class == FailureClass::kThrottled &&
      failure.retry_after_seconds > 0) {
    return std::min(seconds(failure.retry_after_seconds),
                    settings.max_retry_after);
  }

  // A person must act: one attempt per long interval, no storm. A
  // Conditional Access location block may clear by itself (F08).
  if (NeedsAttention(failure.failure_class) &&
      !IsConditionalAccessBlock(failure)) {
    return settings.attention_backoff;
  }
  return TemporaryDelay(failures, draw, settings);
}

bool RefreshTokenAging(std::int64_t mtime, std::int64_t now,
                       seconds threshold) {
  return now - mtime >= threshold.count();
}

}  // namespace xoauth2::helper
