// SPDX-License-Identifier: MIT
//
// Implementation of the shared unit test helpers (helper_test_util.h).

#include "helper_test_util.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "log.h"

namespace xoauth2::helper::testing {

TempDir::TempDir() {
  std::string pattern = "/tmp/helper-test-XXXXXX";
  char* made = mkdtemp(pattern.data());
  path_ = made != nullptr ? made : "/tmp";
}

TempDir::~TempDir() {
  std::error_code ignored;
  if (path_ != "/tmp")
    std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::Write(const std::string& name, const std::string& content,
                           unsigned mode) const {
  std::string file = path_ + "/" + name;
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
  chmod(file.c_str(), mode);
  return file;
}

LogCapture::LogCapture() {
  SetLogSink([this](std::string_view line) {
    std::lock_guard lock(mutex_);
    lines_.emplace_back(line);
  });
}

LogCapture::~LogCapture() {
  SetLogSink({});
}

std::vector<std::string> LogCapture::Lines() const {
  std::lock_guard lock(mutex_);
  return lines_;
}

bool LogCapture::Has(std::initializer_list<std::string> parts) const {
  for (const std::string& line : Lines()) {
    bool all = true;
    for (const std::string& part : parts) {
      all = all && line.find(part) != std::string::npos;
    }
    if (all)
      return true;
  }
  return false;
}

bool WaitUntil(const std::function<bool()>& condition,
               std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void Gate::Pass() {
  std::unique_lock lock(mutex_);
  ++entered_;
  opened_.wait(lock, [this] { return open_; });
}

void Gate::Open() {
  {
    std::lock_guard lock(mutex_);
    open_ = true;
  }
  opened_.notify_all();
}

void Gate::Close() {
  std::lock_guard lock(mutex_);
  open_ = false;
}

int Gate::Entered() {
  std::lock_guard lock(mutex_);
  return entered_;
}

FakeFetcher::FakeFetcher(std::vector<FetchResult> script)
    : script_(std::move(script)) {}

FetchResult FakeFetcher::Fetch(const Account& /*account*/,
                               const Secret& /*held_token*/) {
  int call = calls_++;
  gate_.Pass();
  std::size_t index =
      std::min(static_cast<std::size_t>(call), script_.size() - 1);
  return script_[index];
}

FetchResult Granted(const std::string& token, long expires_in) {
  TokenGrant grant;
  grant.access_token = Secret(token);
  grant.expires_in = expires_in;
  return grant;
}

FetchResult Failed(FailureClass failure_class, std::string message,
                   long retry_after) {
  TokenFailure failure;
  failure.failure_class = failure_class;
  failure.message = std::move(message);
  failure.retry_after_seconds = retry_after;
  return std::unexpected(failure);
}

std::chrono::steady_clock::time_point ManualClock::Now() const {
  return start_ + std::chrono::seconds(offset_.load());
}

std::int64_t ManualClock::UnixNow() const {
  return kStartUnix + offset_.load();
}

Account TestAccount(const std::string& mailbox) {
  Account account;
  account.name = mailbox.substr(0, mailbox.find('@'));
  account.mailbox = mailbox;
  account.authority = "https://127.0.0.1:1";
  account.tenant = "contoso.onmicrosoft.com";
  account.client_id = "11111111-2222-3333-4444-555555555555";
  account.client_secret = Secret("s3cret");
  account.scope = DefaultScope(Cloud::kGlobal, Grant::kClientCredentials);
  return account;
}

}  // namespace xoauth2::helper::testing
