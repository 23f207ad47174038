// SPDX-License-Identifier: MIT
//
// libmilter glue for the sender guard (milter.h): the callback table, the
// per-connection SenderGuardSession kept with smfi_setpriv, and the socket
// set-up around smfi_main. The judgement itself is sender_guard.cc.

#include "milter.h"

#include <libmilter/mfapi.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <new>
#include <optional>
#include <string>

#include "log.h"
#include "sender_guard.h"

namespace xoauth2::helper {
namespace {

// Built before smfi_main() starts any thread; read-only afterwards.
const SenderGuard* g_guard = nullptr;

char kFilterName[] = "xoauth2-relay-sender-guard";

// The connection's session, made on first use (Postfix's non-SMTP
// emulation and a missed connect callback included); nullptr only when
// memory runs out.
SenderGuardSession* SessionOf(SMFICTX* ctx) {
  auto* session = static_cast<SenderGuardSession*>(smfi_getpriv(ctx));
  if (session != nullptr || g_guard == nullptr)
    return session;
  session = new (std::nothrow) SenderGuardSession(*g_guard);
  if (session != nullptr && smfi_setpriv(ctx, session) != MI_SUCCESS) {
    delete session;
    session = nullptr;
  }
  return session;
}

// A macro's value from the MTA, or "" when it did not send it.
std::string Macro(SMFICTX* ctx, const char* name) {
  const char* value = smfi_getsymval(ctx, const_cast<char*>(name));
  return value == nullptr ? std::string() : std::string(value);
}

// Logs the refusal and hands its reply to the MTA; SMFIS_REJECT.
sfsistat Reject(SMFICTX* ctx, const Refusal& refusal) {
  Log(LogLevel::kWarn, "sender_refused",
      {{"stage", refusal.stage},
       {"address", refusal.address},
       {"client", Macro(ctx, "_")},
       {"reply", refusal.code + " " + refusal.xcode + " " + refusal.text}});
  std::string code = refusal.code;
  std::string xcode = refusal.xcode;
  std::string text = refusal.text;
  if (smfi_setreply(ctx, code.data(), xcode.data(), text.data()) !=
      MI_SUCCESS) {
    Log(LogLevel::kError, "milter_reply_failed", {{"stage", refusal.stage}});
  }
  return SMFIS_REJECT;
}

// Logs, at debug level, an envelope sender or From header that passed,
// so that an operator running `milter -v` sees why mail went through.
void LogAccepted(SMFICTX* ctx, std::string_view stage,
                 const std::string& address) {
  if (address.empty())
    return;
  Log(LogLevel::kDebug, "sender_accepted",
      {{"stage", stage}, {"address", address}, {"client", Macro(ctx, "_")}});
}

// Answers a callback that failed inside (no memory, an exception).
sfsistat Internal(std::string_view stage, std::string_view what) {
  Log(LogLevel::kError, "milter_internal_error",
      {{"stage", stage}, {"error", what}});
  return SMFIS_TEMPFAIL;
}

// Runs `body` for the connection's session, turning failures into
// SMFIS_TEMPFAIL so that nothing escapes into libmilter.
template <typename Body>
sfsistat Guarded(SMFICTX* ctx, std::string_view stage, Body body) {
  try {
    SenderGuardSession* session = SessionOf(ctx);
    if (session == nullptr)
      return Internal(stage, "cannot allocate the connection state");
    return body(*session);
  } catch (const std::exception& error) {
    return Internal(stage, error.what());
  } catch (...) {
    return Internal(stage, "unknown exception");
  }
}

sfsistat OnConnect(SMFICTX* ctx, char*, _SOCK_ADDR*) {
  return Guarded(ctx, "connect",
                 [](SenderGuardSession&) { return SMFIS_CONTINUE; });
}

sfsistat OnEnvelopeFrom(SMFICTX* ctx, char** argv) {
  return Guarded(ctx, "mail_from", [&](SenderGuardSession& session) {
    const char* sender = argv != nullptr && argv[0] != nullptr ? argv[0] : "";
    Verdict verdict = session.OnEnvelopeFrom(sender);
    if (verdict)
      return Reject(ctx, *verdict);
    LogAccepted(ctx, "mail_from", session.accepted());
    return SMFIS_CONTINUE;
  });
}

sfsistat OnHeader(SMFICTX* ctx, char* name, char* value) {
  return Guarded(ctx, "header", [&](SenderGuardSession& session) {
    session.OnHeader(name != nullptr ? name : "",
                     value != nullptr ? value : "");
    LogAccepted(ctx, "header_from", session.accepted());
    return SMFIS_CONTINUE;
  });
}

sfsistat OnEndOfHeaders(SMFICTX* ctx) {
  return Guarded(ctx, "header_from", [&](SenderGuardSession& session) {
    Verdict verdict = session.OnEndOfHeaders();
    return verdict ? Reject(ctx, *verdict) : SMFIS_CONTINUE;
  });
}

sfsistat OnAbort(SMFICTX* ctx) {
  return Guarded(ctx, "abort", [](SenderGuardSession& session) {
    session.ResetMessage();
    return SMFIS_CONTINUE;
  });
}

// Frees the connection's session; nothing can fail here.
sfsistat OnClose(SMFICTX* ctx) {
  delete static_cast<SenderGuardSession*>(smfi_getpriv(ctx));
  smfi_setpriv(ctx, nullptr);
  return SMFIS_CONTINUE;
}

// The callback table: no body, no recipients, no modifications.
smfiDesc MakeDescription() {
  smfiDesc desc{};
  desc.xxfi_name = kFilterName;
  desc.xxfi_version = SMFI_VERSION;
  desc.xxfi_flags = 0;
  desc.xxfi_connect = OnConnect;
  desc.xxfi_envfrom = OnEnvelopeFrom;
  desc.xxfi_header = OnHeader;
  desc.xxfi_eoh = OnEndOfHeaders;
  desc.xxfi_abort = OnAbort;
  desc.xxfi_close = OnClose;
  return desc;
}

std::string ErrnoText() {
  return std::strerror(errno);
}

// True when something accepts connections on the Unix socket `path`.
bool SocketAnswers(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  path.copy(address.sun_path, sizeof address.sun_path - 1);
  bool answers =
      connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  close(fd);
  return answers;
}

// Why the socket cannot be created at `path`, or nullopt when it can.
std::optional<std::string> CheckSocketPath(const std::string& path) {
  std::string dir = path.substr(0, path.rfind('/') + 1);
  struct stat info {};
  if (stat(dir.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    return "the folder " + dir +
           " of the milter socket does not exist; "
           "create it (token-helper-milter.service does) or change "
           "sender_guard.socket";
  }
  if (lstat(path.c_str(), &info) != 0)
    return std::nullopt;
  if (!S_ISSOCK(info.st_mode)) {
    return path +
           " exists and is not a socket; remove it or change "
           "sender_guard.socket";
  }
  if (SocketAnswers(path)) {
    return "another process already listens on " + path +
           "; stop the other milter first";
  }
  return std::nullopt;  // stale: smfi_opensocket replaces it
}

// Registers the filter and creates its socket (mode 0666); the socket's
// inode, or an error text.
std::expected<ino_t, std::string> OpenMilterSocket(const std::string& path) {
  if (auto problem = CheckSocketPath(path))
    return std::unexpected(*problem);
  std::string conn = "unix:" + path;
  if (smfi_setconn(conn.data()) != MI_SUCCESS)
    return std::unexpected("libmilter refused the socket " + conn);
  if (smfi_register(MakeDescription()) != MI_SUCCESS)
    return std::unexpected("libmilter refused to register the filter");

  // Postfix (user postfix) must connect; the socket's folder is the gate.
  mode_t old_umask = umask(0111);
  int opened = smfi_opensocket(true);
  umask(old_umask);
  struct stat info {};
  if (opened != MI_SUCCESS || stat(path.c_str(), &info) != 0) {
    return std::unexpected("cannot create the milter socket " + path + ": " +
                           ErrnoText());
  }
  return info.st_ino;
}

// Removes the socket at `path` if it is still the one this process made
// (libmilter leaves it behind when running as root).
void RemoveOwnSocket(const std::string& path, ino_t inode) {
  struct stat info {};
  if (lstat(path.c_str(), &info) == 0 && S_ISSOCK(info.st_mode) &&
      info.st_ino == inode) {
    unlink(path.c_str());
  }
}

}  // namespace

int RunMilter(const Config& config) {
  SetLogLevel(config.log_level);
  static const SenderGuard guard(config);
  g_guard = &guard;

  const std::string& path = config.sender_guard.socket;
  auto inode = OpenMilterSocket(path);
  if (!inode) {
    Log(LogLevel::kError, "milter_failed",
        {{"socket", path}, {"reason", inode.error()}});
    return 1;
  }
  Log(LogLevel::kInfo, "milter_started",
      {{"socket", path},
       {"config", config.path},
       {"allowed_senders", guard.size()}});

  int result = smfi_main();
  RemoveOwnSocket(path, *inode);
  if (result != MI_SUCCESS) {
    Log(LogLevel::kError, "milter_failed",
        {{"socket", path}, {"reason", "libmilter's main loop failed"}});
    return 1;
  }
  // libmilter stops on SIGHUP as on SIGTERM and SIGINT and does not say
  // which signal it was, so the line says what applies to all of them.
  Log(LogLevel::kInfo, "milter_stopped",
      {{"socket", path},
       {"note",
        "SIGHUP, SIGTERM and SIGINT all stop the milter; `systemctl "
        "restart token-helper-milter` applies a changed configuration"}});
  return 0;
}

}  // namespace xoauth2::helper
