// SPDX-License-Identifier: MIT
//
// The device authorization grant (RFC 8628; Microsoft identity platform
// v2.0 device code flow), used once per refresh_token account by
// `token-helper authorize ACCOUNT` to get the first refresh token.
//
// Main types: DeviceAuthorization (the devicecode endpoint's answer),
// DevicePoller (the polling state machine: Waiting -> Polling -> Waiting
// ... -> Succeeded or Failed, one function per state) and FlowClock (time
// and sleeping, injected so that tests never wait); posts go through a
// FormPoster (token_endpoint.h: PostForm() in production, a script in
// tests). What a poll sends (device code, client secret or assertion) and
// what the poster sends besides (`transport`, the proxy password) are
// masked in the endpoint's answers (SecretMask).
// AuthorizeAccount() runs the whole flow and stores the refresh token with
// WriteSecretFileAtomically() (mode 0600).
//
// Polling follows RFC 8628 section 3.5: wait `interval` seconds (default
// 5) before each poll; authorization_pending polls again; slow_down adds
// 5 s to the interval for good; authorization_declined, expired_token and
// bad_verification_code stop; the flow also stops when the code's
// expires_in has passed. Failures that RFC 6749 calls temporary (transport
// errors, HTTP 5xx, answers that are not JSON) keep polling within
// expires_in; HTTP 429 waits at least its Retry-After.
//
// Single-threaded, runs in the foreground of the CLI. Nothing is logged:
// instructions and progress notes go to the streams the caller passes,
// and no token or device code is ever printed (the user code is, as the
// user must type it). Deliberately not done: opening a browser, checking
// which user signed in (the token's mailbox is not verified here).

#ifndef XOAUTH2_TOKEN_HELPER_GRANT_DEVICE_CODE_H
#define XOAUTH2_TOKEN_HELPER_GRANT_DEVICE_CODE_H

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <ostream>
#include <string>

#include "config.h"
#include "secret.h"
#include "token_endpoint.h"
#include "token_response.h"

namespace xoauth2::helper {

// RFC 8628 section 3.4 grant_type.
inline constexpr std::string_view kDeviceCodeGrantType =
    "urn:ietf:params:oauth:grant-type:device_code";

// Time for the device flow; tests substitute a clock that jumps.
class FlowClock {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  virtual ~FlowClock() = default;
  virtual TimePoint Now() = 0;
  virtual void SleepFor(std::chrono::seconds duration) = 0;
};

// The steady clock and a real sleep.
class SystemFlowClock : public FlowClock {
 public:
  TimePoint Now() override;
  void SleepFor(std::chrono::seconds duration) override;
};

// The devicecode endpoint's answer (RFC 8628 section 3.2).
struct DeviceAuthorization {
  Secret device_code;
  std::string user_code;
  std::string verification_uri;
  std::string message;  // Microsoft's sentence for the user; may be empty
  long expires_in = 900;
  long interval = 5;
};

// Parses a devicecode answer; an error answer becomes a sentence naming
// the OAuth error and the likely fix, with `sent` masked in its text.
std::expected<DeviceAuthorization, std::string> ParseDeviceAuthorization(
    const HttpReply& reply, const SecretMask& sent);

// The form body of the devicecode request: client_id and scope.
std::expected<FormBody, std::string> BuildDeviceCodeRequestBody(
    const Account& account);

// The form body of one poll: grant_type, client_id, device_code and the
// client authentication when one is configured.
std::expected<FormBody, std::string> BuildDevicePollBody(
    const Account& account, const Secret& device_code);

// What to show the user: Microsoft's message, or the URI and user code.
std::string SignInInstructions(const DeviceAuthorization& authorization);

// Polls the token endpoint until the user signs in or the flow fails.
class DevicePoller {
 public:
  enum class State { kWaiting, kPolling, kSucceeded, kFailed };

  // `notes` receives one line per temporary failure (never a secret);
  // `transport` masks what the poster sends besides the body.
  DevicePoller(const Account& account, const DeviceAuthorization& auth,
               FormPoster poster, const SecretMask& transport, FlowClock& clock,
               std::ostream& notes);

  // Steps until Succeeded or Failed; the grant or the reason.
  std::expected<TokenGrant, std::string> Run();

  // Performs one transition and returns the new state.
  State Step();

  State state() const { return state_; }
  long interval() const { return interval_; }
  int polls() const { return polls_; }

 private:
  State Wait();
  State Poll();
  State OnFailure(const TokenFailure& failure);
  State Fail(std::string reason);

  const Account& account_;
  const DeviceAuthorization& auth_;
  FormPoster poster_;
  SecretMask transport_;
  FlowClock& clock_;
  std::ostream& notes_;
  FlowClock::TimePoint deadline_;
  State state_ = State::kWaiting;
  long interval_;
  long next_wait_;
  int polls_ = 0;
  TokenGrant grant_;
  std::string reason_;
};

// Where the refresh token went and how long the access token lives.
struct SignInResult {
  std::string refresh_token_file;
  long expires_in = 0;
};

// Runs the device flow for `account` (grant refresh_token): requests a
// code, writes the instructions to `out`, polls, stores the new refresh
// token atomically (0600) at account.refresh_token_file. `transport`
// masks what `poster` sends besides the body (TransportSecrets()).
std::expected<SignInResult, std::string> AuthorizeAccount(
    const Account& account, const FormPoster& poster,
    const SecretMask& transport, FlowClock& clock, std::ostream& out,
    std::ostream& notes);

// "refresh token for MAILBOX stored in PATH (mode 0600); access token
// expires at 2024-01-02T03:04:05Z (in N s)", with `now` the Unix time.
std::string SignInSummary(const Account& account, const SignInResult& result,
                          std::int64_t now);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_GRANT_DEVICE_CODE_H
