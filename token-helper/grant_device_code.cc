// SPDX-License-Identifier: MIT
//
// Device code flow: the devicecode request and answer, the polling state
// machine and the hand-over of the first refresh token to disk. Token
// endpoint answers are parsed by ParseTokenResponse(); only the device
// flow's own error codes are decided here. nlohmann::json exceptions are
// caught in this file.

#include "grant_device_code.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "secret_file.h"

namespace xoauth2::helper {
namespace {

using json = nlohmann::json;

// RFC 8628 section 3.5: slow_down adds 5 seconds to the interval.
constexpr long kSlowDownSeconds = 5;
// Bounds for what the server may ask: no busy loop, no endless flow.
constexpr long kMinInterval = 1;
constexpr long kMaxInterval = 60;
constexpr long kMaxExpiresIn = 3600;
// Longest text shown to the user from the server's answer.
constexpr std::size_t kMaxShownText = 1000;

// A string member or "" when absent or not a string.
std::string StringField(const json& object, const char* key) {
  auto it = object.find(key);
  if (it == object.end() || !it->is_string())
    return {};
  return it->get<std::string>();
}

// Seconds from a number or numeric string member; `fallback` otherwise.
long SecondsField(const json& object, const char* key, long fallback) {
  auto it = object.find(key);
  if (it == object.end())
    return fallback;
  if (it->is_number_integer())
    return it->get<long>();
  if (!it->is_string())
    return fallback;
  const std::string& text = it->get_ref<const std::string&>();
  long seconds = 0;
  auto [end, err] =
      std::from_chars(text.data(), text.data() + text.size(), seconds);
  bool whole = err == std::errc() && end == text.data() + text.size();
  return whole ? seconds : fallback;
}

// Server text made safe for a terminal: no control bytes, bounded.
std::string Shown(std::string text) {
  if (text.size() > kMaxShownText)
    text.resize(kMaxShownText);
  for (char& c : text) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      c = ' ';
  }
  return text;
}

// The sentence for a devicecode answer that is not a code.
std::string DeviceCodeRefused(const HttpReply& reply, const SecretMask& sent) {
  std::string cause = "HTTP " + std::to_string(reply.status);
  if (reply.status != 200) {
    auto parsed = ParseTokenResponse(
        HttpAnswer{reply.status, reply.body.Reveal(), reply.retry_after}, "",
        sent);
    if (!parsed && !parsed.error().error.empty())
      cause += ", " + parsed.error().error;
    if (!parsed && !parsed.error().description.empty())
      cause += " (" + parsed.error().description + ")";
  }
  return "the devicecode endpoint gave no code (" + cause +
         "); check authority, client_id, tenant, scope and that the app "
         "registration allows public client flows";
}

// Reads a 200 devicecode answer; an error when a field is missing.
std::expected<DeviceAuthorization, std::string> ReadAuthorization(
    const json& body) {
  DeviceAuthorization auth;
  auth.device_code = Secret(StringField(body, "device_code"));
  auth.user_code = Shown(StringField(body, "user_code"));
  auth.verification_uri = StringField(body, "verification_uri");
  if (auth.verification_uri.empty())  // the v1 endpoint's spelling
    auth.verification_uri = StringField(body, "verification_url");
  auth.verification_uri = Shown(auth.verification_uri);
  auth.message = Shown(StringField(body, "message"));
  if (auth.device_code.empty() || auth.user_code.empty() ||
      auth.verification_uri.empty()) {
    return std::unexpected(
        "the devicecode endpoint's answer lacks device_code, user_code or "
        "verification_uri; check authority");
  }
  auth.expires_in =
      std::clamp(SecondsField(body, "expires_in", 900), 1L, kMaxExpiresIn);
  auth.interval =
      std::clamp(SecondsField(body, "interval", 5), kMinInterval, kMaxInterval);
  return auth;
}

// Refuses to start a sign-in whose refresh token could not be stored.
std::expected<void, std::string> CheckStorable(const Account& account) {
  if (account.grant != Grant::kRefreshToken) {
    return std::unexpected("account " + account.name + " uses grant " +
                           std::string(GrantName(account.grant)) +
                           ", which needs no sign-in");
  }
  std::string dir =
      std::filesystem::path(account.refresh_token_file).parent_path();
  if (access(dir.c_str(), W_OK) != 0) {
    return std::unexpected("cannot write the refresh token into " + dir + ": " +
                           std::strerror(errno) +
                           "; create the directory or fix its owner");
  }
  return {};
}

// UTC time as 2024-01-02T03:04:05Z.
std::string IsoTime(std::int64_t unix_seconds) {
  std::time_t time = static_cast<std::time_t>(unix_seconds);
  std::tm parts{};
  gmtime_r(&time, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

}  // namespace

FlowClock::TimePoint SystemFlowClock::Now() {
  return std::chrono::steady_clock::now();
}

void SystemFlowClock::SleepFor(std::chrono::seconds duration) {
  std::this_thread::sleep_for(duration);
}

std::expected<DeviceAuthorization, std::string> ParseDeviceAuthorization(
    const HttpReply& reply, const SecretMask& sent) {
  if (reply.status != 200)
    return std::unexpected(DeviceCodeRefused(reply, sent));
  try {
    json body = json::parse(reply.body.Reveal());
    if (!body.is_object())
      return std::unexpected(DeviceCodeRefused(reply, sent));
    return ReadAuthorization(body);
  } catch (const std::exception&) {
    return std::unexpected(DeviceCodeRefused(reply, sent));
  }
}

std::expected<FormBody, std::string> BuildDeviceCodeRequestBody(
    const Account& account) {
  FormField fields[] = {{"client_id", account.client_id},
                        {"scope", account.scope}};
  return EncodeForm(fields);
}

std::expected<FormBody, std::string> BuildDevicePollBody(
    const Account& account, const Secret& device_code) {
  std::vector<FormField> fields = {
      {"grant_type", kDeviceCodeGrantType},
      {"client_id", account.client_id},
      {"device_code", device_code.Reveal(), FieldMask::kToken}};
  Secret assertion;
  auto added =
      AddClientAuthentication(account, std::time(nullptr), fields, assertion);
  if (!added)
    return std::unexpected(added.error());
  return EncodeForm(fields);
}

std::string SignInInstructions(const DeviceAuthorization& authorization) {
  if (!authorization.message.empty())
    return authorization.message;
  return "To sign in, open " + authorization.verification_uri +
         " in a web browser and enter the code " + authorization.user_code +
         ".";
}

DevicePoller::DevicePoller(const Account& account,
                           const DeviceAuthorization& auth, FormPoster poster,
                           const SecretMask& transport, FlowClock& clock,
                           std::ostream& notes)
    : account_(account),
      auth_(auth),
      poster_(std::move(poster)),
      transport_(transport),
      clock_(clock),
      notes_(notes),
      deadline_(clock.Now() + std::chrono::seconds(auth.expires_in)),
      interval_(auth.interval),
      next_wait_(auth.interval) {}

std::expected<TokenGrant, std::string> DevicePoller::Run() {
  while (state_ != State::kSucceeded && state_ != State::kFailed)
    Step();
  if (state_ == State::kFailed)
    return std::unexpected(reason_);
  return grant_;
}

DevicePoller::State DevicePoller::Step() {
  switch (state_) {
    case State::kWaiting:
      state_ = Wait();
      break;
    case State::kPolling:
      state_ = Poll();
      break;
    case State::kSucceeded:
    case State::kFailed:
      break;
  }
  return state_;
}

// Sleeps until the next poll is due, or reports the code expired.
DevicePoller::State DevicePoller::Wait() {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(deadline_ -
                                                               clock_.Now());
  if (left.count() > 0) {
    clock_.SleepFor(std::min(std::chrono::seconds(next_wait_), left));
  }
  next_wait_ = interval_;
  if (clock_.Now() >= deadline_) {
    return Fail("the code expired after " + std::to_string(auth_.expires_in) +
                " s before the sign-in finished; run token-helper authorize " +
                account_.name + " again and sign in sooner");
  }
  return State::kPolling;
}

// Asks the token endpoint once whether the user has signed in.
DevicePoller::State DevicePoller::Poll() {
  ++polls_;
  auto body = BuildDevicePollBody(account_, auth_.device_code);
  if (!body)
    return Fail("cannot build the poll request: " + body.error());
  auto reply = poster_(account_.TokenUrl(), body->text);
  if (!reply)
    return OnFailure(reply.error());

  SecretMask sent = transport_;
  sent.Merge(body->sent);
  auto grant = ParseTokenResponse(
      HttpAnswer{reply->status, reply->body.Reveal(), reply->retry_after},
      account_.tenant, sent);
  if (!grant)
    return OnFailure(grant.error());
  if (grant->refresh_token.empty()) {
    return Fail(
        "the sign-in succeeded but the answer carries no refresh token; "
        "add offline_access to the account's scope");
  }
  grant_ = std::move(*grant);
  return State::kSucceeded;
}

// Decides whether a failed poll means wait, slow down or stop.
DevicePoller::State DevicePoller::OnFailure(const TokenFailure& failure) {
  const std::string& error = failure.error;
  std::string again =
      "; run token-helper authorize " + account_.name + " again";
  if (error == "authorization_pending")
    return State::kWaiting;
  if (error == "slow_down") {
    interval_ += kSlowDownSeconds;
    next_wait_ = interval_;
    return State::kWaiting;
  }
  if (error == "authorization_declined")
    return Fail("the user declined the sign-in" + again);
  if (error == "expired_token")
    return Fail("the code expired before the sign-in finished" + again);
  if (error == "bad_verification_code")
    return Fail("the token endpoint does not know this code" + again);
  if (failure.failure_class == FailureClass::kThrottled) {
    // Never wait past the code's own life, whatever Retry-After says.
    next_wait_ =
        std::max(interval_, std::min(failure.retry_after_seconds, 3600L));
  }
  if (failure.failure_class == FailureClass::kTemporary ||
      failure.failure_class == FailureClass::kThrottled) {
    notes_ << "token-helper: still waiting: " << failure.message << "\n";
    return State::kWaiting;
  }
  return Fail(failure.message);
}

DevicePoller::State DevicePoller::Fail(std::string reason) {
  reason_ = std::move(reason);
  return State::kFailed;
}

std::expected<SignInResult, std::string> AuthorizeAccount(
    const Account& account, const FormPoster& poster,
    const SecretMask& transport, FlowClock& clock, std::ostream& out,
    std::ostream& notes) {
  auto storable = CheckStorable(account);
  if (!storable)
    return std::unexpected(storable.error());

  // Ask for a code and tell the user what to do with it.
  auto body = BuildDeviceCodeRequestBody(account);
  if (!body)
    return std::unexpected(body.error());
  auto reply = poster(account.DeviceCodeUrl(), body->text);
  if (!reply)
    return std::unexpected(reply.error().message);
  SecretMask sent = transport;
  sent.Merge(body->sent);
  auto auth = ParseDeviceAuthorization(*reply, sent);
  if (!auth)
    return std::unexpected(auth.error());
  out << SignInInstructions(*auth) << "\n"
      << "Sign in as " << account.mailbox << " within " << auth->expires_in
      << " s; waiting..." << std::endl;

  // Poll, then put the refresh token on disk before saying anything else.
  DevicePoller poller(account, *auth, poster, transport, clock, notes);
  auto grant = poller.Run();
  if (!grant)
    return std::unexpected(grant.error());
  auto written = WriteSecretFileAtomically(account.refresh_token_file,
                                           grant->refresh_token);
  if (!written) {
    return std::unexpected("signed in, but " + written.error() +
                           "; fix that and run authorize again");
  }
  return SignInResult{account.refresh_token_file, grant->expires_in};
}

std::string SignInSummary(const Account& account, const SignInResult& result,
                          std::int64_t now) {
  return "refresh token for " + account.mailbox + " stored in " +
         result.refresh_token_file + " (mode 0600); access token expires at " +
         IsoTime(now + result.expires_in) + " (in " +
         std::to_string(result.expires_in) + " s)";
}

}  // namespace xoauth2::helper
