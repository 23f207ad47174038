// SPDX-License-Identifier: MIT
//
// The log line formatter and its writers (stderr, syslog, a test sink).
// Global settings are guarded by one mutex, which also keeps lines whole.

#include "log.h"

#include <syslog.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

namespace xoauth2::helper {
namespace {

struct LogState {
  std::mutex mutex;
  LogLevel threshold = LogLevel::kInfo;
  bool syslog = false;
  std::function<void(std::string_view)> sink;
};

LogState& State() {
  static LogState state;
  return state;
}

bool NeedsQuotes(std::string_view value) {
  return value.find_first_of(" \"=\\") != std::string_view::npos;
}

// Appends `value`, quoted when needed, with control bytes made visible.
void AppendValue(std::string& line, std::string_view value) {
  bool quote = NeedsQuotes(value);
  if (quote)
    line += '"';
  for (char c : value) {
    if (quote && (c == '"' || c == '\\'))
      line += '\\';
    line += (c < 0x20 || c == 0x7f) ? '?' : c;
  }
  if (quote)
    line += '"';
}

int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return LOG_DEBUG;
    case LogLevel::kInfo:
      return LOG_INFO;
    case LogLevel::kWarn:
      return LOG_WARNING;
    case LogLevel::kError:
      return LOG_ERR;
  }
  return LOG_ERR;
}

}  // namespace

std::string_view LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

std::optional<LogLevel> ParseLogLevel(std::string_view name) {
  for (LogLevel level :
       {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (LogLevelName(level) == name)
      return level;
  }
  return std::nullopt;
}

std::string FormatLogFields(LogLevel level, std::string_view event,
                            std::initializer_list<LogField> fields) {
  std::string line = "level=";
  line += LogLevelName(level);
  line += " event=";
  AppendValue(line, event);
  for (const LogField& field : fields) {
    if (field.value.empty())
      continue;  // absent facts stay out of the line
    line += ' ';
    line += field.key;
    line += '=';
    AppendValue(line, field.value);
  }
  return line;
}

void SetLogLevel(LogLevel level) {
  std::lock_guard lock(State().mutex);
  State().threshold = level;
}

void EnableSyslog() {
  std::lock_guard lock(State().mutex);
  if (!State().syslog)
    openlog("xoauth2-relay", LOG_PID, LOG_MAIL);
  State().syslog = true;
}

void SetLogSink(std::function<void(std::string_view)> sink) {
  std::lock_guard lock(State().mutex);
  State().sink = std::move(sink);
}

void Log(LogLevel level, std::string_view event,
         std::initializer_list<LogField> fields) {
  LogState& state = State();
  std::lock_guard lock(state.mutex);
  if (level < state.threshold)
    return;

  std::string body = FormatLogFields(level, event, fields);
  std::string line = "xoauth2-relay[" + std::to_string(getpid()) + "]: " + body;
  if (state.sink) {
    state.sink(line);
  } else {
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fflush(stderr);
  }
  if (state.syslog)
    syslog(SyslogPriority(level), "%s", body.c_str());
}

}  // namespace xoauth2::helper
