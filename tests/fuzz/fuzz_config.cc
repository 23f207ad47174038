// SPDX-License-Identifier: MIT
//
// Fuzz target for helper::ParseConfig, the token-helper's reader of its
// JSON configuration (the text LoadConfig reads from the file), with both
// ConfigUse values.
//
// The configuration names files (client_secret_file, refresh_token_file,
// ca_file, certificate files) that ParseConfig opens or stats. So that no
// input can make it touch a real path, LLVMFuzzerInitialize chroots into
// the working directory (run_fuzzer.cmake runs the target there with
// relative corpus and artifact paths) after placing in it a few files the
// seeds refer to: /etc/passwd and /etc/group (glibc >= 2.34 resolves
// names there without loading NSS modules), a client secret and a
// refresh token file. In a private mount namespace it first binds /proc
// (LeakSanitizer reads it) and, read-only, /usr (the sanitizers'
// symbolizer and its libraries) into the jail; the mounts vanish with the
// process. It needs root, or unprivileged user namespaces as a fallback;
// without either it refuses to run.
//
// Invariants checked for every input:
// - an error starts with the absolute path of the configuration file
//   (every configuration message names it) and is printable ASCII, so no
//   value quoted in it can forge a second log line;
// - a syntax error ("PATH[:LINE:COLUMN]: syntax error: ...") quotes none
//   of the input: it never holds nlohmann's "last read: '...'", which
//   could show an inline secret (other messages may quote values of
//   non-secret keys, which may hold those words);
// - a configuration that loads has the path, at least one account, and
//   accounts with valid mailboxes, names, scopes and https token URLs
//   built from their authority and tenant.

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "config.h"
#include "fuzz_check.h"
#include "protocol.h"

namespace {

using namespace xoauth2::helper;

constexpr const char* kConfigPath = "/etc/xoauth2-relay/config.json";

// Writes `content` to `path` (relative to the working directory) with
// `mode`, creating parent directories.
void PlaceFile(const std::string& path, const std::string& content,
               mode_t mode) {
  for (std::size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    mkdir(path.substr(0, slash).c_str(), 0755);
  }
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 || write(fd, content.data(), content.size()) < 0 ||
      fchmod(fd, mode) != 0) {
    std::fprintf(stderr, "fuzz_config: cannot write %s: %s\n", path.c_str(),
                 std::strerror(errno));
    std::exit(1);
  }
  close(fd);
}

[[noreturn]] void Die(const char* what) {
  std::fprintf(stderr,
               "fuzz_config: cannot build the jail (%s: %s); run as root or "
               "enable unprivileged user namespaces\n",
               what, std::strerror(errno));
  std::exit(1);
}

// Enters a fresh user and mount namespace mapping our uid and gid to
// themselves, where we may mount and chroot without being root outside.
bool EnterUserNamespace() {
  uid_t uid = getuid();
  gid_t gid = getgid();
  if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0)
    return false;
  auto put = [](const char* file, const std::string& text) {
    int fd = open(file, O_WRONLY | O_CLOEXEC);
    bool ok = fd >= 0 && write(fd, text.data(), text.size()) >= 0;
    if (fd >= 0)
      close(fd);
    return ok;
  };
  return put("/proc/self/setgroups", "deny") &&
         put("/proc/self/uid_map",
             std::to_string(uid) + " " + std::to_string(uid) + " 1\n") &&
         put("/proc/self/gid_map",
             std::to_string(gid) + " " + std::to_string(gid) + " 1\n");
}

// Turns the working directory into the root directory of this process.
void EnterJail() {
  PlaceFile("etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "postfix:x:101:101::/var/spool/postfix:/usr/sbin/nologin\n",
            0644);
  PlaceFile("etc/group", "root:x:0:\npostfix:x:101:\npostdrop:x:102:\n", 0644);
  PlaceFile("etc/xoauth2-relay/relay.secret", "s3cr~t+/=\n", 0600);
  PlaceFile("var/lib/xoauth2-relay/relay.refresh", "0.AAAA-refresh\n", 0600);
  mkdir("proc", 0755);
  mkdir("usr", 0755);
  for (const char* dir : {"bin", "lib", "lib64"})
    symlink((std::string("usr/") + dir).c_str(), dir);

  // Mounts made here stay in this process's namespace.
  if (unshare(CLONE_NEWNS) != 0 && !EnterUserNamespace())
    Die("unshare");
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    Die("make mounts private");
  if (mount("/proc", "proc", nullptr, MS_BIND | MS_REC, nullptr) != 0)
    Die("bind /proc");
  if (mount("/usr", "usr", nullptr, MS_BIND | MS_REC, nullptr) != 0 ||
      mount(nullptr, "usr", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY,
            nullptr) != 0) {
    Die("bind /usr read-only");
  }
  if (chroot(".") != 0 || chdir("/") != 0)
    Die("chroot");
}

// Checks a configuration that loaded.
void CheckConfig(const Config& config) {
  FUZZ_CHECK(config.path == kConfigPath);
  FUZZ_CHECK(!config.accounts.empty());
  for (const Account& account : config.accounts) {
    FUZZ_CHECK(xoauth2::protocol::IsValidMailbox(account.mailbox));
    FUZZ_CHECK(!account.name.empty());
    FUZZ_CHECK(!account.scope.empty());
    FUZZ_CHECK(account.TokenUrl().starts_with("https://"));
    FUZZ_CHECK(account.TokenUrl() ==
               account.authority + "/" + account.tenant + "/oauth2/v2.0/token");
  }
}

// True for "PATH: syntax error: " or "PATH:LINE:COLUMN: syntax error: ".
bool IsSyntaxError(std::string_view error) {
  std::string_view rest = error.substr(std::strlen(kConfigPath));
  std::size_t digits = rest.find_first_not_of(":0123456789");
  return digits != std::string_view::npos &&
         rest.substr(digits).starts_with(" syntax error: ") &&
         rest.substr(0, digits).ends_with(":");
}

// Checks one parse with `use`.
void CheckOne(std::string_view text, ConfigUse use) {
  auto config = ParseConfig(text, kConfigPath, use);
  if (config) {
    CheckConfig(*config);
    return;
  }
  const std::string& error = config.error();
  FUZZ_CHECK(error.starts_with(kConfigPath));
  FUZZ_CHECK(xoauth2::fuzz::IsPrintable(error));
  if (IsSyntaxError(error))
    FUZZ_CHECK(error.find("last read") == std::string::npos);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  EnterJail();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view text = xoauth2::fuzz::AsText(data, size);
  CheckOne(text, ConfigUse::kServe);
  CheckOne(text, ConfigUse::kSignIn);
  return 0;
}
