// SPDX-License-Identifier: MIT
//
// Fuzz target for the SASL plugin's handling of what the server and the
// helper send it: the plugin's real entry points (sasl_client_plug_init,
// mech_new/mech_step/mech_dispose from xoauth2_mech.cc, compiled in) are
// driven the way libsasl2 drives them, with a fake sasl_utils_t that
// records every log line and error detail, against a fake token-helper
// thread on a Unix socket in a temporary directory.
//
// Input: byte 0 holds flags, the rest is split into lines as the flags
// ask:
//   bit 0  mechanism: XOAUTH2 (0) or OAUTHBEARER (1);
//   bit 1  the helper's answer to `token` is the next line (else a fixed
//          valid answer);
//   bit 2  the helper's answer to `reject` is the next line (else "ok");
//   bit 3  serverFQDN and ipremoteport are the next two lines;
//   bit 4  the server sends the challenge first (before the initial
//          response), else after it, and then once more;
// what remains is the server's challenge (already base64-decoded, as the
// host hands it over).
//
// Invariants checked for every input:
// - every step returns a SASL code the plugin documents, never throws;
// - the initial response has the exact XOAUTH2 or OAUTHBEARER layout for
//   the token the helper handed out (host= only without 0x01 bytes);
// - an error challenge is answered with "" (XOAUTH2) or "\x01"
//   (OAUTHBEARER) and makes the plugin send `reject` to the helper;
// - every log line and error detail is one printable line, and none holds
//   the access token (unless the outside input itself contained it: the
//   challenge, the server name or the helper's error text). Only tokens
//   holding a '~' are looked for: the plugin's own texts never contain
//   one, while a token made of letters and '=' can be a piece of them
//   ("ode=SASL_BADPROT" is in every BADPROT line) without any leak.
// The helper thread is never stopped; it ends with the process, whose
// normal exit removes the socket and its temporary directory.

#include <sasl/sasl.h>
#include <sasl/saslplug.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_check.h"

extern "C" int sasl_client_plug_init(const sasl_utils_t* utils, int max_version,
                                     int* out_version,
                                     sasl_client_plug_t** pluglist,
                                     int* plugcount) noexcept;

namespace {

using xoauth2::fuzz::IsPrintable;
using xoauth2::fuzz::TakeLine;

constexpr std::string_view kMailbox = "relay@example.com";
constexpr std::string_view kFixedToken = "tok~SECRET-7f3a9c.payload.sig";

// What the fake helper answers and what it was asked, for one input.
struct HelperScript {
  std::mutex mutex;
  std::string token_reply;
  std::string reject_reply;
  std::vector<std::string> requests;
};

HelperScript g_helper;
std::string g_socket_dir;
std::string g_socket_path;
std::vector<std::string> g_logged;  // log lines and error details

// Answers one connection: reads the request line, sends the scripted
// reply for its verb, closes.
void ServeOne(int fd) {
  std::string request;
  char buffer[2048];
  while (request.find('\n') == std::string::npos && request.size() < 4096) {
    ssize_t n = read(fd, buffer, sizeof buffer);
    if (n <= 0)
      break;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  std::string reply;
  {
    std::lock_guard lock(g_helper.mutex);
    g_helper.requests.push_back(request);
    reply = request.starts_with("v1 reject ") ? g_helper.reject_reply
                                              : g_helper.token_reply;
  }
  if (write(fd, reply.data(), reply.size()) < 0)
    std::perror("fake helper write");
  close(fd);
}

// Listens on a socket in a fresh temporary directory, forever.
void StartHelper() {
  char dir[] = "/tmp/xoauth2-fuzz-XXXXXX";
  FUZZ_CHECK(mkdtemp(dir) != nullptr);
  g_socket_dir = dir;
  g_socket_path = g_socket_dir + "/token.sock";
  std::atexit([] {
    unlink(g_socket_path.c_str());
    rmdir(g_socket_dir.c_str());
  });

  int listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  g_socket_path.copy(address.sun_path, sizeof address.sun_path - 1);
  FUZZ_CHECK(listener >= 0);
  FUZZ_CHECK(bind(listener, reinterpret_cast<sockaddr*>(&address),
                  sizeof address) == 0);
  FUZZ_CHECK(listen(listener, 16) == 0);
  std::thread([listener] {
    for (;;) {
      int fd = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0)
        ServeOne(fd);
    }
  }).detach();
}

// --- The fake host: what libsasl2 would provide. ---

std::string Format(const char* format, va_list args) {
  char text[8192];
  std::vsnprintf(text, sizeof text, format, args);
  return text;
}

void Log(sasl_conn_t*, int, const char* format, ...) {
  va_list args;
  va_start(args, format);
  g_logged.push_back(Format(format, args));
  va_end(args);
}

void SetError(sasl_conn_t*, unsigned, const char* format, ...) {
  va_list args;
  va_start(args, format);
  g_logged.push_back(Format(format, args));
  va_end(args);
}

int GetAuthname(void*, int id, const char** result, unsigned* len) {
  if (id != SASL_CB_AUTHNAME)
    return SASL_FAIL;
  *result = kMailbox.data();
  *len = static_cast<unsigned>(kMailbox.size());
  return SASL_OK;
}

int GetCallback(sasl_conn_t*, unsigned long id, sasl_callback_ft* proc,
                void** context) {
  if (id != SASL_CB_AUTHNAME)
    return SASL_FAIL;
  *proc = reinterpret_cast<sasl_callback_ft>(&GetAuthname);
  *context = nullptr;
  return SASL_OK;
}

int CanonUser(sasl_conn_t*, const char*, unsigned, unsigned,
              sasl_out_params_t*) {
  return SASL_OK;
}

sasl_utils_t MakeUtils() {
  sasl_utils_t utils{};
  utils.getcallback = &GetCallback;
  utils.log = &Log;
  utils.seterror = &SetError;
  return utils;
}

const sasl_utils_t g_utils = MakeUtils();
sasl_client_plug_t* g_plugins = nullptr;

// --- One input. ---

// The parts of one input.
struct Scenario {
  bool bearer = false;
  bool server_first = false;
  std::string fqdn = "smtp.example.com";
  std::string ipremoteport;
  std::string challenge;
};

Scenario ReadScenario(const std::uint8_t* data, std::size_t size) {
  Scenario scenario;
  std::uint8_t flags = size > 0 ? data[0] : 0;
  std::string_view rest =
      xoauth2::fuzz::AsText(data, size).substr(size > 0 ? 1 : 0);
  std::string token_reply = "ok " + std::string(kFixedToken) + " 4102444800\n";
  std::string reject_reply = "ok\n";
  if (flags & 2)
    token_reply = std::string(TakeLine(rest)) + "\n";
  if (flags & 4)
    reject_reply = std::string(TakeLine(rest)) + "\n";
  if (flags & 8) {
    scenario.fqdn = std::string(TakeLine(rest));
    scenario.ipremoteport = std::string(TakeLine(rest));
  }
  scenario.bearer = flags & 1;
  scenario.server_first = flags & 16;
  scenario.challenge = std::string(rest);

  std::lock_guard lock(g_helper.mutex);
  g_helper.token_reply = token_reply;
  g_helper.reject_reply = reject_reply;
  g_helper.requests.clear();
  return scenario;
}

bool IsDocumentedCode(int rc) {
  for (int code : {SASL_OK, SASL_CONTINUE, SASL_UNAVAIL, SASL_TRYAGAIN,
                   SASL_NOUSER, SASL_BADPROT, SASL_NOMEM, SASL_FAIL}) {
    if (rc == code)
      return true;
  }
  return false;
}

// The token in the helper's `ok TOKEN EXPIRES` answer, or "".
std::string HandedOutToken() {
  std::lock_guard lock(g_helper.mutex);
  std::string_view reply = g_helper.token_reply;
  if (!reply.starts_with("ok "))
    return {};
  reply.remove_prefix(3);
  return std::string(reply.substr(0, reply.find(' ')));
}

// Checks the initial response `out` for `token`.
void CheckInitialResponse(const Scenario& scenario, std::string_view out,
                          const std::string& token) {
  std::string tail =
      "\x01"
      "auth=Bearer " +
      token + "\x01\x01";
  if (!scenario.bearer) {
    FUZZ_CHECK(out == "user=" + std::string(kMailbox) + tail);
    return;
  }
  FUZZ_CHECK(out.starts_with("n,a=" + std::string(kMailbox) + ","));
  FUZZ_CHECK(out.ends_with(tail));
  // Exactly one 0x01 before each pair plus the final one: at most 5.
  auto separators = std::count(out.begin(), out.end(), '\x01');
  FUZZ_CHECK(separators >= 3 && separators <= 5);
}

// One step through the plugin's mech_step.
int Step(void* context, sasl_client_params_t* params, std::string_view in,
         std::string& out) {
  const char* out_data = nullptr;
  unsigned out_len = 0;
  sasl_out_params_t oparams{};
  sasl_interact_t* prompts = nullptr;
  int rc = g_plugins[0].mech_step(context, params, in.data(),
                                  static_cast<unsigned>(in.size()), &prompts,
                                  &out_data, &out_len, &oparams);
  FUZZ_CHECK(IsDocumentedCode(rc));
  out.assign(out_data ? out_data : "", out_data ? out_len : 0);
  return rc;
}

// Runs the exchange the scenario describes and checks each answer.
void RunExchange(const Scenario& scenario, sasl_client_params_t* params) {
  sasl_client_plug_t& plug = g_plugins[scenario.bearer ? 1 : 0];
  void* context = nullptr;
  FUZZ_CHECK(plug.mech_new(plug.glob_context, params, &context) == SASL_OK);
  std::string out;

  if (scenario.server_first && !scenario.challenge.empty()) {
    FUZZ_CHECK(Step(context, params, scenario.challenge, out) == SASL_BADPROT);
  } else if (Step(context, params, "", out) == SASL_CONTINUE) {
    CheckInitialResponse(scenario, out, HandedOutToken());
    int rc = Step(context, params, scenario.challenge, out);
    if (!scenario.challenge.empty()) {
      FUZZ_CHECK(rc == SASL_CONTINUE);
      FUZZ_CHECK(out == (scenario.bearer ? "\x01" : ""));
      std::lock_guard lock(g_helper.mutex);
      FUZZ_CHECK(g_helper.requests.size() == 2);
      FUZZ_CHECK(g_helper.requests[1].starts_with("v1 reject "));
      rc = Step(context, params, scenario.challenge, out);
    }
    FUZZ_CHECK(rc == (scenario.challenge.empty() ? SASL_OK : SASL_BADPROT));
  }
  plug.mech_dispose(context, &g_utils);
}

// Every line the plugin logged is printable and free of the token.
void CheckLogged(const Scenario& scenario, const std::string& token) {
  std::string reject_reply;
  {
    std::lock_guard lock(g_helper.mutex);
    reject_reply = g_helper.reject_reply;
  }
  bool check_token = token.size() >= 12 &&
                     token.find('~') != std::string::npos &&
                     scenario.challenge.find(token) == std::string::npos &&
                     reject_reply.find(token) == std::string::npos &&
                     scenario.fqdn.find(token) == std::string::npos &&
                     g_socket_path.find(token) == std::string::npos;
  for (const std::string& line : g_logged) {
    FUZZ_CHECK(IsPrintable(line));
    if (check_token)
      FUZZ_CHECK(line.find(token) == std::string::npos);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  StartHelper();
  setenv("XOAUTH2_RELAY_SOCKET", g_socket_path.c_str(), 1);
  setenv("XOAUTH2_RELAY_TIMEOUT_MS", "2000", 1);
  int version = 0;
  int count = 0;
  FUZZ_CHECK(sasl_client_plug_init(&g_utils, SASL_CLIENT_PLUG_VERSION, &version,
                                   &g_plugins, &count) == SASL_OK);
  FUZZ_CHECK(count == 2);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  Scenario scenario = ReadScenario(data, size);
  g_logged.clear();

  sasl_client_params_t params{};
  params.utils = &g_utils;
  params.canon_user = &CanonUser;
  params.serverFQDN = scenario.fqdn.c_str();
  params.ipremoteport =
      scenario.ipremoteport.empty() ? nullptr : scenario.ipremoteport.c_str();
  RunExchange(scenario, &params);
  CheckLogged(scenario, HandedOutToken());
  return 0;
}
