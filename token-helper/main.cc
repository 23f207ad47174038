// SPDX-License-Identifier: MIT
//
// token-helper's command line (CLI11): `run`, `check`, `token MAILBOX`,
// `status [--json]` and `authorize ACCOUNT`, with --config PATH (default
// XOAUTH2_DEFAULT_CONFIG),
// --help, --version. Exit codes: 0 ok, 1 runtime failure, 2 usage, 3 bad
// configuration. Everything but argument parsing and printing lives in
// token_helper_lib. `token` never prints the access token, only its expiry
// and short hash, and refuses (exit 2) a MAILBOX the protocol cannot
// carry before reading or sending anything; `check` names each account's
// credential kind (secret, certificate or public) but never a secret,
// each account's send_as and the sender guard's socket (warning when its
// folder is missing); `authorize` (the device code sign-in,
// grant_device_code.h) prints the sign-in instructions and where the
// refresh token was stored, never a token. `status` asks the running
// daemon for every account's state and prints a table (or the JSON line).
// `token` and `status` read only the configuration's "socket" (or take
// --socket), never a secret, so the postfix user can run them. `milter`
// runs the sender guard (milter.h) in the foreground; it reads the
// mailboxes and send_as of the configuration and no secret file.

#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <iostream>
#include <optional>

#include "account_status.h"
#include "config.h"
#include "daemon.h"
#include "grant_device_code.h"
#include "log.h"
#include "milter.h"
#include "reply_server.h"
#include "secret.h"
#include "socket_client.h"
#include "token_endpoint.h"
#include "unix_listener.h"

namespace {

using namespace xoauth2::helper;

constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
constexpr int kExitConfig = 3;

// How `account` authenticates, as key=value fields; never a secret.
std::string CredentialFields(const Account& account) {
  std::string fields =
      "credential=" + std::string(CredentialName(account.credential()));
  if (account.certificate) {
    fields +=
        " assertion_alg=" +
        std::string(AssertionAlgName(account.assertion_alg)) +
        " certificate_thumbprint=" + account.certificate->ThumbprintSha1Hex();
  }
  return fields;
}

// The addresses `account` may also send as, comma-separated, or "none".
std::string SendAsField(const Account& account) {
  std::string list;
  for (const std::string& address : account.send_as)
    list += (list.empty() ? "" : ",") + address;
  return "send_as=" + (list.empty() ? std::string("none") : list);
}

// The sender guard's line of `check`, and a warning (not a failure) when
// the milter could not create its socket because the folder is missing;
// none when it is the token socket's folder, which `run` and both units
// create.
void PrintSenderGuard(const Config& config) {
  const std::string& socket = config.sender_guard.socket;
  std::cout << "sender guard: socket=" << socket << "\n";
  std::string dir = socket.substr(0, socket.rfind('/') + 1);
  if (dir == config.socket.substr(0, config.socket.rfind('/') + 1))
    return;
  struct stat info {};
  bool missing = stat(dir.c_str(), &info) == 0
                     ? !S_ISDIR(info.st_mode)
                     : errno == ENOENT || errno == ENOTDIR;
  if (!missing)
    return;  // there, or not ours to see (the milter will say)
  std::cerr << "warning: " << config.path << ": sender_guard.socket is "
            << socket << ", but its folder " << dir
            << " does not exist; create it (token-helper-milter.service "
               "does) or change sender_guard.socket before running "
               "`token-helper milter` (ignore this if you do not run it)\n";
}

// `check`: validate and summarise the configuration. Files and folders
// are judged for the user running it, so root refuses those of the
// helper's own user (KNOWN_ISSUES.md).
int Check(const std::string& path) {
  auto config = LoadConfig(path);
  if (!config) {
    std::cerr << config.error() << "\n";
    return kExitConfig;
  }
  for (const std::string& socket :
       {config->socket, ReplySocketPath(config->socket)}) {
    if (auto place = CheckSocketPlace(socket, geteuid()); !place) {
      std::cerr << config->path << ": socket: " << place.error() << "\n";
      return kExitConfig;
    }
  }
  std::size_t count = config->accounts.size();
  std::cout << "configuration OK: " << config->path << " (" << count
            << (count == 1 ? " account)\n" : " accounts)\n");
  for (const Account& account : config->accounts) {
    std::cout << "  " << account.name << ": mailbox=" << account.mailbox
              << " grant=" << GrantName(account.grant) << " "
              << CredentialFields(account)
              << " token_url=" << account.TokenUrl() << " scope=\""
              << account.scope << "\" " << SendAsField(account) << "\n";
  }
  PrintSenderGuard(*config);
  return 0;
}

// `authorize ACCOUNT`: the first sign-in of a refresh_token account.
int Authorize(const std::string& path, const std::string& name) {
  auto config = LoadConfig(path, ConfigUse::kSignIn);
  if (!config) {
    std::cerr << config.error() << "\n";
    return kExitConfig;
  }
  const Account* account = config->FindAccountByName(name);
  if (account == nullptr || account->grant != Grant::kRefreshToken) {
    std::cerr << config->path << ": no account with grant refresh_token is "
              << "named " << name << " or has that mailbox; "
              << "`token-helper check` lists the accounts\n";
    return kExitUsage;
  }
  if (account->provider == Provider::kGoogle) {
    std::cerr << config->path << ": account " << account->name
              << " is a google account; Google's device sign-in does not "
              << "grant the Gmail scope, so get its refresh token with a "
              << "desktop OAuth client and store it in "
              << account->refresh_token_file << " (mode 0600)\n";
    return kExitUsage;
  }

  HttpSettings settings = HttpSettings::FromConfig(*config);
  std::atomic<bool> never_cancelled{false};
  FormPoster poster = [&](const std::string& url, const Secret& body) {
    return PostForm(settings, url, body, never_cancelled);
  };
  SystemFlowClock clock;
  auto result = AuthorizeAccount(*account, poster, TransportSecrets(settings),
                                 clock, std::cout, std::cerr);
  if (!result) {
    std::cerr << "token-helper: " << result.error() << "\n";
    return kExitRuntime;
  }
  std::cout << SignInSummary(*account, *result, std::time(nullptr)) << "\n";
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

// The socket to ask: --socket when given, else the configuration's
// "socket" (nothing else of the file is read, so no secret is needed).
std::optional<std::string> SocketToAsk(const std::string& config_path,
                                       const std::string& socket_option) {
  if (!socket_option.empty())
    return socket_option;
  auto socket = LoadSocketPath(config_path);
  if (!socket) {
    std::cerr << socket.error()
              << " (token and status need only the socket path: pass "
                 "--socket PATH to skip the configuration)\n";
    return std::nullopt;
  }
  return *socket;
}

// `token MAILBOX`: ask the running helper, print expiry and hash only.
int Token(const std::string& path, const std::string& socket_option,
          const std::string& mailbox) {
  // A mailbox the protocol cannot carry (a line break, a space, no '@')
  // is a usage error: nothing is read or sent.
  if (!xoauth2::protocol::IsValidMailbox(mailbox)) {
    std::cerr << "token-helper token: MAILBOX must be one address like "
                 "relay@example.com (printable ASCII, no spaces or line "
                 "breaks, at most "
              << xoauth2::protocol::kMaxMailboxBytes << " bytes)\n";
    return kExitUsage;
  }
  auto socket = SocketToAsk(path, socket_option);
  if (!socket)
    return kExitConfig;
  xoauth2::protocol::Request request{
      xoauth2::protocol::Verb::kToken, mailbox, {}};
  auto response = AskHelper(*socket, request, std::chrono::seconds(6));
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

// `status`: ask the running helper for every account's state.
int Status(const std::string& path, const std::string& socket_option,
           bool as_json) {
  auto socket = SocketToAsk(path, socket_option);
  if (!socket)
    return kExitConfig;
  xoauth2::protocol::Request request{xoauth2::protocol::Verb::kStatus, {}, {}};
  auto response = AskHelper(*socket, request, std::chrono::seconds(6));
  if (!response) {
    std::cerr << "token-helper: " << response.error()
              << "; is `token-helper run` running?\n";
    return kExitRuntime;
  }
  if (!response->ok || response->status.empty()) {
    std::cerr << "token-helper: the helper answered: err "
              << xoauth2::protocol::ErrorCodeName(response->code) << " "
              << response->text << "\n";
    return kExitRuntime;
  }
  if (as_json) {
    std::cout << response->status << "\n";
    return 0;
  }
  auto report = ParseStatusJson(response->status);
  if (!report) {
    std::cerr << "token-helper: " << report.error() << "\n";
    return kExitRuntime;
  }
  std::cout << FormatStatusTable(*report);
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
  DaemonOptions options;  // a reload loads the file as above, kServe
  if (verbose)
    options.log_level = LogLevel::kDebug;
  return RunDaemon(*config, options);
}

// `milter`: load the mailboxes and serve the sender guard until a signal.
int Milter(const std::string& path, bool syslog, bool verbose) {
  if (syslog)
    EnableSyslog();
  auto config = LoadConfig(path, ConfigUse::kSenderGuard);
  if (!config) {
    Log(LogLevel::kError, "config_invalid", {{"reason", config.error()}});
    return kExitConfig;
  }
  if (verbose)
    config->log_level = LogLevel::kDebug;
  return RunMilter(*config) == 0 ? 0 : kExitRuntime;
}

// What the command line asked for.
struct Invocation {
  std::string config_path = XOAUTH2_DEFAULT_CONFIG;
  bool syslog = false;
  bool verbose = false;
  std::string mailbox;  // `token`
  std::string account;  // `authorize`
  bool json = false;    // `status --json`
  std::string socket;   // `token`, `status`: overrides the configuration
};

// Declares the options and subcommands of `app`, filling `args`.
void DefineCommands(CLI::App& app, Invocation& args) {
  app.add_option("-c,--config", args.config_path, "configuration file (JSON)")
      ->capture_default_str();
  auto* run = app.add_subcommand("run", "run the helper in the foreground");
  run->add_flag("--syslog", args.syslog, "also log to syslog (facility mail)");
  run->add_flag("-v,--verbose", args.verbose, "log debug events too");
  app.add_subcommand("check", "validate the configuration");
  auto* milter = app.add_subcommand(
      "milter",
      "run the sender guard milter in the foreground: refuse senders "
      "that are no configured mailbox or send_as address");
  milter->add_flag("--syslog", args.syslog,
                   "also log to syslog (facility mail)");
  milter->add_flag("-v,--verbose", args.verbose, "log debug events too");
  const char* socket_help =
      "the helper's socket; without it the configuration's \"socket\" is "
      "used (no other part of the file is read)";
  auto* token = app.add_subcommand(
      "token",
      "ask the running helper for MAILBOX's token; prints its "
      "expiry and hash, never the token");
  token->add_option("MAILBOX", args.mailbox, "the mailbox")->required();
  token->add_option("--socket", args.socket, socket_help);
  auto* status = app.add_subcommand(
      "status",
      "ask the running helper for every account's state: "
      "token expiry, next refresh, last error; never a token");
  status->add_flag("--json", args.json, "print the helper's JSON line");
  status->add_option("--socket", args.socket, socket_help);
  app.add_subcommand("authorize",
                     "first sign-in (device code) of a refresh_token "
                     "account; stores its refresh token in "
                     "refresh_token_file")
      ->add_option("ACCOUNT", args.account, "account name or mailbox")
      ->required();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "token-helper: fetches OAuth 2.0 access tokens for Office 365 SMTP and "
      "serves them to the xoauth2 SASL plugin over a Unix socket."};
  app.set_version_flag("--version", "token-helper " XOAUTH2_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  Invocation args;
  DefineCommands(app, args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    return app.exit(error) == 0 ? 0 : kExitUsage;
  }

  if (app.got_subcommand("run"))
    return Run(args.config_path, args.syslog, args.verbose);
  if (app.got_subcommand("milter"))
    return Milter(args.config_path, args.syslog, args.verbose);
  if (app.got_subcommand("check"))
    return Check(args.config_path);
  if (app.got_subcommand("authorize"))
    return Authorize(args.config_path, args.account);
  if (app.got_subcommand("status"))
    return Status(args.config_path, args.socket, args.json);
  return Token(args.config_path, args.socket, args.mailbox);
}
