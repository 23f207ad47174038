// SPDX-License-Identifier: MIT
//
// Helpers shared by the token-helper unit tests: a temporary directory
// removed at scope exit, file writing, a log capture, a scriptable fake
// TokenFetcher with a gate, a manual clock for the token cache, and
// polling a condition with a deadline (tests never sleep for something
// they can observe).

#ifndef XOAUTH2_TESTS_UNIT_HELPER_TEST_UTIL_H
#define XOAUTH2_TESTS_UNIT_HELPER_TEST_UTIL_H

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "token_cache.h"
#include "token_endpoint.h"

namespace xoauth2::helper::testing {

// A fresh directory under /tmp, removed with its content on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string Write(const std::string& name, const std::string& content,
                    unsigned mode = 0600) const;

 private:
  std::string path_;
};

// Collects log lines while alive.
class LogCapture {
 public:
  LogCapture();
  ~LogCapture();
  std::vector<std::string> Lines() const;
  // True when some line contains every one of `parts`.
  bool Has(std::initializer_list<std::string> parts) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

// Polls `condition` until it holds or `limit` passes.
bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds limit = std::chrono::seconds(10));

// Holds test threads back while closed: Pass() counts its caller as
// entered and returns once the gate is open. Thread-safe.
class Gate {
 public:
  explicit Gate(bool open) : open_(open) {}
  void Pass();
  void Open();
  void Close();
  int Entered();  // callers of Pass(), through or still waiting

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_;
  int entered_ = 0;
};

using FetchResult = std::expected<TokenGrant, TokenFailure>;

// Returns scripted results in order (the last one repeats), counting
// calls; while the gate is closed, fetches block until it opens.
class FakeFetcher : public TokenFetcher {
 public:
  explicit FakeFetcher(std::vector<FetchResult> script);
  FetchResult Fetch(const Account& account, const Secret& held_token) override;
  void Cancel() override { Open(); }

  void Close() { gate_.Close(); }
  void Open() { gate_.Open(); }
  int calls() const { return calls_; }

 private:
  std::vector<FetchResult> script_;
  std::atomic<int> calls_{0};
  Gate gate_{true};
};

// A successful fetch result.
FetchResult Granted(const std::string& token, long expires_in = 3600);

// A failed fetch result of `failure_class`.
FetchResult Failed(FailureClass failure_class, std::string message,
                   long retry_after = 0);

// A clock that moves only when told; starts at a fixed steady time and
// at Unix time kStartUnix.
class ManualClock : public CacheClock {
 public:
  static constexpr std::int64_t kStartUnix = 1700000000;
  std::chrono::steady_clock::time_point Now() const override;
  std::int64_t UnixNow() const override;
  void Advance(std::chrono::seconds by) { offset_ += by.count(); }
  std::int64_t Elapsed() const { return offset_; }

 private:
  std::chrono::steady_clock::time_point start_ =
      std::chrono::steady_clock::now();
  std::atomic<std::int64_t> offset_{0};  // seconds
};

// A client_credentials account for `mailbox`.
Account TestAccount(const std::string& mailbox = "relay@example.com");

}  // namespace xoauth2::helper::testing

#endif  // XOAUTH2_TESTS_UNIT_HELPER_TEST_UTIL_H
