// SPDX-License-Identifier: MIT
//
// token-helper's command line (CLI11): `run`, `check` and `token MAILBOX`,
// with --config PATH (default XOAUTH2_DEFAULT_CONFIG), --help, --version.
// Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 bad configuration.
// Everything but argument parsing and printing lives in token_helper_lib.
// `token` never prints the access token, only its expiry and short hash.

#include <CLI/CLI.hpp>
#include <chrono>
#include <ctime>
#include <iostream>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "secret.h"
#include "socket_client.h"

namespace {

using namespace xoauth2::helper;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;

// `check`: validate and summarise the configuration.
int Check(const std::string& path) {
  auto config = LoadConfig(path);
  if (!config) {
    std::cerr << config.error() << "\n";
    return kExitConfig;
  }
  std::cout << "configuration OK: " << config->path << " ("
            << config->accounts.size() << " accounts)\n";
  for (const Account& account : config->accounts) {
    std::cout << "  " << account.name << ": mailbox=" << account.mailbox
              << " grant=" << GrantName(account.grant)
              << " token_url=" << account.TokenUrl() << " scope=\""
              << account.scope << "\"\n";
  }
  return 0;
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

// `token MAILBOX`: ask the running helper, print expiry and hash only.
int Token(const std::string& path, const std::string& mailbox) {
  auto config = LoadConfig(path);
  if (!config) {
    std::cerr << config.error() << "\n";
    return kExitConfig;
  }
  xoauth2::protocol::Request request{
      xoauth2::protocol::Verb::kToken, mailbox, {}};
  auto response = AskHelper(config->socket, request, std::chrono::seconds(6));
  if (!response) {
    std::cerr << "token-helper: " << response.error()
              << "; is `token-helper run` running?\n";
    return kExitRuntime;
  }
  if (!response->ok) {
    std::cerr << "token-helper: the helper answered: err "
              << xoauth2::protocol::ErrorCodeName(response->code) << " "
              << response->text << "\n";
    return kExitRuntime;
  }
  std::int64_t left = response->expires - std::time(nullptr);
  std::cout << "mailbox=" << mailbox
            << " expires=" << IsoTime(response->expires)
            << " expires_in=" << left << " token=" << ShortHash(response->token)
            << "\n";
  return 0;
}

// `run`: load the configuration and serve until a signal.
int Run(const std::string& path, bool syslog, bool verbose) {
  if (syslog)
    EnableSyslog();
  auto config = LoadConfig(path);
  if (!config) {
    Log(LogLevel::kError, "config_invalid", {{"reason", config.error()}});
    return kExitConfig;
  }
  if (verbose)
    config->log_level = LogLevel::kDebug;
  return RunDaemon(*config);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "token-helper: fetches OAuth 2.0 access tokens for Office 365 SMTP and "
      "serves them to the xoauth2 SASL plugin over a Unix socket."};
  app.set_version_flag("--version", "token-helper " XOAUTH2_VERSION);
  app.require_subcommand(1);
  app.fallthrough();

  std::string config_path = XOAUTH2_DEFAULT_CONFIG;
  app.add_option("-c,--config", config_path, "configuration file (JSON)")
      ->capture_default_str();

  bool syslog = false;
  bool verbose = false;
  auto* run = app.add_subcommand("run", "run the helper in the foreground");
  run->add_flag("--syslog", syslog, "also log to syslog (facility mail)");
  run->add_flag("-v,--verbose", verbose, "log debug events too");
  auto* check = app.add_subcommand("check", "validate the configuration");
  std::string mailbox;
  auto* token = app.add_subcommand(
      "token",
      "ask the running helper for MAILBOX's token; prints its "
      "expiry and hash, never the token");
  token->add_option("MAILBOX", mailbox, "the mailbox")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : kExitUsage;
  }

  if (run->parsed())
    return Run(config_path, syslog, verbose);
  if (check->parsed())
    return Check(config_path);
  return Token(config_path, mailbox);
}
