// SPDX-License-Identifier: MIT
//
// Structured logging for the token-helper: one event, one line,
//   xoauth2-relay[PID]: level=info event=token_fetched account=relay ...
// written to stderr and, when enabled, to syslog (facility mail).
//
// Values are key=value fields; a value holding a space, '"' or '=' is
// quoted, control bytes become '?', and a field with an empty value is
// left out. A Field cannot be built from a Secret
// (the constructor is deleted), so secrets need an explicit Reveal() to get
// in, which review catches; tokens are logged only as ShortHash().
//
// Thread-safe: one mutex serialises writes. The process-wide settings
// (level, syslog, test sink) are set once at start-up. This module never
// exits or throws on I/O errors; a failed write is dropped.

#ifndef XOAUTH2_TOKEN_HELPER_LOG_H
#define XOAUTH2_TOKEN_HELPER_LOG_H

#include <concepts>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "secret.h"

namespace xoauth2::helper {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// One key=value pair of a log line.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  template <std::integral T>
  LogField(std::string_view k, T v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, const Secret& v) = delete;

  std::string_view key;
  std::string value;
};

// "debug", "info", "warn" or "error".
std::string_view LogLevelName(LogLevel level);

// Parses a level name; nullopt for anything else.
std::optional<LogLevel> ParseLogLevel(std::string_view name);

// The line for one event without the "xoauth2-relay[PID]: " prefix.
std::string FormatLogFields(LogLevel level, std::string_view event,
                            std::initializer_list<LogField> fields);

// Drops events below `level` (default info).
void SetLogLevel(LogLevel level);

// Also sends every line to syslog(3) with ident xoauth2-relay, LOG_MAIL.
void EnableSyslog();

// Replaces stderr with `sink` (full line, no LF); empty restores stderr.
// For tests.
void SetLogSink(std::function<void(std::string_view)> sink);

// Writes one event line if `level` passes the threshold.
void Log(LogLevel level, std::string_view event,
         std::initializer_list<LogField> fields);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_LOG_H
