// SPDX-License-Identifier: MIT
//
// Unit tests of the access rules around secrets and sockets: the rule for
// files holding a secret, key or refresh token (secret_file.h), table-driven
// over modes, owners and directories, both on synthetic stat data and on
// real temporary files read through ReadSecretFile and LoadConfig (an
// inline-secret configuration at 0644 included; certificates exempt);
// the socket directory check; the rate-limited peer_denied log
// (DenialLog, with explicit time points); answers to connections over the
// cap; and the socket recreated when its directory is removed.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "config.h"
#include "helper_test_keys.h"
#include "helper_test_util.h"
#include "secret_file.h"
#include "socket_client.h"
#include "socket_server.h"
#include "unix_listener.h"

namespace xoauth2::helper {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::LogCapture;
using testing::TempDir;
using testing::WaitUntil;

struct AccessCase {
  const char* name;
  mode_t file_mode;
  uid_t owner;
  mode_t dir_mode;
  uid_t euid;
  std::string expected;  // empty: accepted; else part of the message
};

class HelperPrivateFile : public ::testing::TestWithParam<AccessCase> {};

TEST_P(HelperPrivateFile, Rule) {
  const AccessCase& c = GetParam();
  struct stat file {};
  struct stat dir {};
  file.st_mode = S_IFREG | c.file_mode;
  file.st_uid = c.owner;
  dir.st_mode = S_IFDIR | c.dir_mode;
  auto checked = CheckPrivateFile("/etc/x/relay.secret", file, dir, c.euid);
  if (c.expected.empty()) {
    EXPECT_TRUE(checked) << checked.error();
    return;
  }
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().find(c.expected), std::string::npos)
      << checked.error();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperPrivateFile,
    ::testing::Values(
        AccessCase{"Owner0600", 0600, 107, 0755, 107, ""},
        AccessCase{"Owner0400", 0400, 107, 0700, 107, ""},
        AccessCase{"RootOwnedForUnprivileged", 0600, 0, 0755, 107, ""},
        AccessCase{"GroupWritableDirIsFine", 0600, 107, 0775, 107, ""},
        AccessCase{"StickyWorldWritableDir", 0600, 107, 01777, 107, ""},
        AccessCase{"GroupRead", 0640, 107, 0755, 107,
                   "/etc/x/relay.secret holds a secret but has mode 0640 "
                   "and owner uid 107"},
        AccessCase{"OtherRead", 0604, 107, 0755, 107,
                   "fix: chmod 0600 /etc/x/relay.secret"},
        AccessCase{"GroupWrite", 0620, 107, 0755, 107, "mode 0620"},
        AccessCase{"OtherWrite", 0602, 107, 0755, 107, "mode 0602"},
        AccessCase{"Usual0644", 0644, 0, 0755, 0,
                   "mode 0644 and owner root (uid 0); it must be readable "
                   "and writable by its owner only and owned by root "
                   "(uid 0), the user token-helper runs as; fix: chmod "
                   "0600 /etc/x/relay.secret"},
        AccessCase{"ForeignOwner", 0600, 4242, 0755, 65534,
                   "fix: chown nobody /etc/x/relay.secret"},
        AccessCase{"ForeignOwnerAndMode", 0644, 4242, 0755, 65534,
                   "fix: chmod 0600 /etc/x/relay.secret; chown nobody "
                   "/etc/x/relay.secret"},
        AccessCase{"ForeignOwnerForRoot", 0600, 4242, 0755, 0,
                   "fix: chown root"},
        AccessCase{"WorldWritableDir", 0600, 107, 0777, 107,
                   "its directory /etc/x has mode 0777 (writable by "
                   "others, no sticky bit)"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

struct FileModeCase {
  const char* name;
  mode_t mode;
  bool accepted;
};

class HelperSecretFileMode : public ::testing::TestWithParam<FileModeCase> {};

// Real files read through ReadSecretFile (owned by the test's own uid).
TEST_P(HelperSecretFileMode, ReadSecretFile) {
  TempDir dir;
  std::string file = dir.Write("relay.secret", "s3cr3t\n", GetParam().mode);
  auto read = ReadSecretFile(file);
  EXPECT_EQ(read.has_value(), GetParam().accepted);
  if (!GetParam().accepted) {
    EXPECT_NE(read.error().find(file + " holds a secret but has mode " +
                                ModeText(GetParam().mode)),
              std::string::npos)
        << read.error();
    EXPECT_EQ(read.error().find("s3cr3t"), std::string::npos);
  }
  // Public files (certificates) are not checked.
  EXPECT_TRUE(ReadSecretFile(file, kMaxSecretFileBytes, FileAccess::kPublic));
}

INSTANTIATE_TEST_SUITE_P(Table, HelperSecretFileMode,
                         ::testing::Values(FileModeCase{"M0600", 0600, true},
                                           FileModeCase{"M0400", 0400, true},
                                           FileModeCase{"M0640", 0640, false},
                                           FileModeCase{"M0644", 0644, false},
                                           FileModeCase{"M0660", 0660, false},
                                           FileModeCase{"M0606", 0606, false},
                                           FileModeCase{"M0666", 0666, false}),
                         [](const auto& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(HelperSecretAccess, WorldWritableDirectoryRefused) {
  TempDir dir;
  std::string file = dir.Write("relay.secret", "s3cr3t\n");
  chmod(dir.path().c_str(), 0777);
  auto read = ReadSecretFile(file);
  ASSERT_FALSE(read);
  EXPECT_NE(read.error().find("fix: chmod o-w " + dir.path()),
            std::string::npos)
      << read.error();
  chmod(dir.path().c_str(), 01777);
  EXPECT_TRUE(ReadSecretFile(file));
}

// Every directory up to the root counts, and a link is judged by the
// directories of the file it points to.
TEST(HelperSecretAccess, DirectoriesAboveAndLinkTargetsChecked) {
  TempDir dir;
  std::string open = dir.path() + "/open";
  ASSERT_EQ(mkdir(open.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((open + "/sub").c_str(), 0700), 0);
  std::string deep = dir.Write("open/sub/relay.secret", "s3cr3t\n");
  std::string link = dir.path() + "/relay.link";
  ASSERT_EQ(symlink(deep.c_str(), link.c_str()), 0);
  ASSERT_TRUE(ReadSecretFile(deep));
  ASSERT_TRUE(ReadSecretFile(link));

  chmod(open.c_str(), 0777);
  auto read = ReadSecretFile(deep);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(), deep + " holds a secret but the directory " + open +
                              " on its way has mode 0777 (writable by "
                              "others, no sticky bit), so any local user "
                              "could replace it; fix: chmod o-w " +
                              open);
  read = ReadSecretFile(link);
  ASSERT_FALSE(read);
  EXPECT_TRUE(read.error().starts_with(link + " (a link to " + deep +
                                       ") holds a secret but the directory " +
                                       open + " on its way has mode 0777"))
      << read.error();

  chmod(open.c_str(), 01777);
  EXPECT_TRUE(ReadSecretFile(link));
}

// Links met anywhere on the way are followed and the directories holding
// them judged: a link below a shared folder, or one in the middle of a
// chain, could be swapped for another.
TEST(HelperSecretAccess, EveryLinkOnTheWayJudged) {
  TempDir dir;
  std::string open = dir.path() + "/open";
  std::string safe = dir.path() + "/safe";
  ASSERT_EQ(mkdir(open.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((open + "/x").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(safe.c_str(), 0700), 0);
  std::string file = dir.Write("safe/relay.secret", "s3cr3t\n");
  std::string below = open + "/x/link";
  std::string middle = open + "/middle";
  std::string first = dir.path() + "/first";
  ASSERT_EQ(symlink(file.c_str(), below.c_str()), 0);
  ASSERT_EQ(symlink(file.c_str(), middle.c_str()), 0);
  ASSERT_EQ(symlink(middle.c_str(), first.c_str()), 0);
  ASSERT_TRUE(ReadSecretFile(below));
  ASSERT_TRUE(ReadSecretFile(first));

  chmod(open.c_str(), 0777);
  for (const std::string& path : {below, first}) {
    auto read = ReadSecretFile(path);
    ASSERT_FALSE(read) << path;
    EXPECT_NE(read.error().find("but the directory " + open +
                                " on its way has mode 0777"),
              std::string::npos)
        << read.error();
  }
}

// A folder its group may write is refused unless the group is root's or
// the helper's own.
TEST(HelperSecretAccess, GroupWritableFolderRefused) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to give a directory to another group";
  TempDir dir;
  std::string shared = dir.path() + "/shared";
  ASSERT_EQ(mkdir(shared.c_str(), 0755), 0);
  std::string file = dir.Write("shared/relay.secret", "s3cr3t\n");
  chmod(shared.c_str(), 0775);
  EXPECT_TRUE(ReadSecretFile(file));  // group root
  ASSERT_EQ(chown(shared.c_str(), 0, 65534), 0);
  auto read = ReadSecretFile(file);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(), file + " holds a secret but its directory " + shared +
                              " has mode 0775 and group nogroup (gid 65534), "
                              "whose members could replace it; fix: chmod "
                              "g-w " +
                              shared);
}

// Storing a rotated or first refresh token where another user could swap
// the file is refused: the new file would keep that user as its owner.
TEST(HelperSecretAccess, NoSecretWrittenWhereAnotherUserCouldSwapIt) {
  TempDir dir;
  std::string open = dir.path() + "/open";
  ASSERT_EQ(mkdir(open.c_str(), 0755), 0);
  chmod(open.c_str(), 0777);
  std::string file = open + "/user.refresh";
  auto written = WriteSecretFileAtomically(file, Secret("rt.value"));
  ASSERT_FALSE(written);
  EXPECT_TRUE(written.error().starts_with(
      "cannot replace " + file + ": " + file +
      " holds a secret but its directory " + open + " has mode 0777"))
      << written.error();
  EXPECT_FALSE(std::filesystem::exists(file));
  chmod(open.c_str(), 0700);
  EXPECT_TRUE(WriteSecretFileAtomically(file, Secret("rt.value")));
}

// A directory on the way that another user owns is refused; run as root
// the message says how to check as the user the helper runs as.
TEST(HelperSecretAccess, DirectoryOfAnotherUserRefused) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to give a directory to another user";
  TempDir dir;
  std::string theirs = dir.path() + "/theirs";
  ASSERT_EQ(mkdir(theirs.c_str(), 0755), 0);
  std::string file = dir.Write("theirs/relay.secret", "s3cr3t\n");
  ASSERT_EQ(chown(theirs.c_str(), 65534, 65534), 0);
  auto read = ReadSecretFile(file);
  ASSERT_FALSE(read);
  EXPECT_EQ(read.error(),
            file + " holds a secret but its directory " + theirs +
                " is owned by nobody (uid 65534), who could replace it; fix: "
                "chown root " +
                theirs +
                "; if token-helper runs as nobody (token-helper.service runs "
                "it as xoauth2-relay), run the same command as that user "
                "instead: runuser -u nobody -- token-helper ...");
}

// A client secret or refresh token file holds one value; two lines (a
// value pasted with a line break, or two values) are refused without
// showing either.
TEST(HelperSecretAccess, ValueFileHoldsOneValue) {
  TempDir dir;
  std::string one = dir.Write("one.secret", "  s3cr3t~value\n\n");
  auto read = ReadSecretValue(one);
  ASSERT_TRUE(read) << read.error();
  EXPECT_EQ(read->Reveal(), "s3cr3t~value");
  for (const char* content : {"s3cr3t\nsecond\n", "s3cr3t second", "a\tb"}) {
    std::string two = dir.Write("two.secret", content);
    read = ReadSecretValue(two);
    ASSERT_FALSE(read) << content;
    EXPECT_EQ(read.error(), two +
                                " holds more than one line or word; it must "
                                "hold the value alone, on one line");
  }
}

// A file that cannot be opened is named with the fix that fits why.
TEST(HelperSecretAccess, OpenFailureNamesTheFix) {
  TempDir dir;
  std::string none = dir.path() + "/none.secret";
  EXPECT_EQ(ReadSecretFile(none).error(),
            "cannot open " + none +
                ": No such file or directory; create it (mode 0600, owned "
                "by " +
                ChownName(geteuid()) + ") or correct the path");
  EXPECT_EQ(
      ReadSecretFile(none, kMaxSecretFileBytes, FileAccess::kPublic).error(),
      "cannot open " + none +
          ": No such file or directory; create it or correct the path");
  EXPECT_EQ(OpenFailureText("/etc/x/relay.secret", EACCES, "unused"),
            "cannot open /etc/x/relay.secret: Permission denied; "
            "token-helper runs as " +
                UserText(geteuid()) +
                ", who may not read it: give that user read access to it (for "
                "a secret file: chown " +
                ChownName(geteuid()) +
                " /etc/x/relay.secret) and to the folders on its way");
}

// A valid configuration with one account; `credential` is its JSON.
std::string ConfigWith(const std::string& credential) {
  return R"({"socket": "/tmp/x/token.sock", "accounts": [
    {"mailbox": "relay@example.com", "tenant": "t", "client_id": "c",
     "grant": "client_credentials", )" +
         credential + "}]}";
}

struct ConfigModeCase {
  const char* name;
  mode_t config_mode;
  bool inline_secret;
  mode_t secret_mode;
  std::string expected;  // empty: loads
};

class HelperConfigAccess : public ::testing::TestWithParam<ConfigModeCase> {};

TEST_P(HelperConfigAccess, Load) {
  const ConfigModeCase& c = GetParam();
  TempDir dir;
  std::string secret = dir.Write("relay.secret", "s3cr3t", c.secret_mode);
  std::string credential = c.inline_secret
                               ? R"("client_secret": "s3cr3t")"
                               : R"("client_secret_file": ")" + secret + "\"";
  std::string file =
      dir.Write("config.json", ConfigWith(credential), c.config_mode);
  auto config = LoadConfig(file);
  if (c.expected.empty()) {
    EXPECT_TRUE(config) << config.error();
    return;
  }
  ASSERT_FALSE(config);
  std::string expected = c.expected == "CONFIG" ? file : secret;
  EXPECT_NE(config.error().find("chmod 0600 " + expected), std::string::npos)
      << config.error();
  EXPECT_TRUE(config.error().starts_with(file + ": ")) << config.error();
}

INSTANTIATE_TEST_SUITE_P(
    Table, HelperConfigAccess,
    ::testing::Values(
        ConfigModeCase{"InlineSecret0600", 0600, true, 0600, ""},
        ConfigModeCase{"InlineSecret0644", 0644, true, 0600, "CONFIG"},
        ConfigModeCase{"InlineSecret0640", 0640, true, 0600, "CONFIG"},
        ConfigModeCase{"SecretFileConfig0644", 0644, false, 0600, ""},
        ConfigModeCase{"SecretFile0644", 0600, false, 0644, "SECRET"},
        ConfigModeCase{"SecretFile0640", 0644, false, 0640, "SECRET"}),
    [](const auto& param_info) { return std::string(param_info.param.name); });

// The private key is checked, the certificate is not.
TEST(HelperSecretAccess, PrivateKeyCheckedCertificateExempt) {
  TempDir dir;
  const testing::TestKeys& keys =
      testing::MakeTestKeys(testing::KeyKind::kRsa2048);
  std::string cert = dir.Write("c.pem", keys.certificate_pem, 0644);
  std::string key = dir.Write("k.pem", keys.key_pem, 0600);
  std::string credential = R"("certificate_file": ")" + cert +
                           R"(", "private_key_file": ")" + key + "\"";
  std::string file = dir.Write("config.json", ConfigWith(credential), 0644);
  auto config = LoadConfig(file);
  EXPECT_TRUE(config) << config.error();

  chmod(key.c_str(), 0640);
  config = LoadConfig(file);
  ASSERT_FALSE(config);
  EXPECT_NE(config.error().find("private_key_file"), std::string::npos);
  EXPECT_NE(config.error().find("fix: chmod 0600 " + key), std::string::npos)
      << config.error();
}

// Only "socket" is read for `token` and `status`: secrets are not.
TEST(HelperSecretAccess, LoadSocketPathReadsNoSecret) {
  TempDir dir;
  std::string file = dir.Write(
      "config.json",
      ConfigWith(R"("client_secret_file": "/nonexistent/relay.secret")"), 0644);
  auto socket = LoadSocketPath(file);
  ASSERT_TRUE(socket) << socket.error();
  EXPECT_EQ(*socket, "/tmp/x/token.sock");
  EXPECT_FALSE(LoadConfig(file));

  std::string bare = dir.Write("bare.json", "{}", 0644);
  EXPECT_EQ(LoadSocketPath(bare).value_or(""), XOAUTH2_DEFAULT_SOCKET);
}

protocol::Response AlwaysOk(const protocol::Request& /*request*/) {
  protocol::Response response;
  response.ok = true;
  return response;
}

TEST(HelperSocketAccess, WorldWritableSocketDirectoryRefused) {
  TempDir dir;
  std::string run = dir.path() + "/run";
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  chmod(run.c_str(), 0777);
  ServerOptions options{run + "/token.sock", {}};
  SocketServer refused(options, AlwaysOk);
  auto started = refused.Start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("the socket directory " + run +
                                 " has mode 0777 (writable by others, no "
                                 "sticky bit)"),
            std::string::npos)
      << started.error();

  // The sticky bit keeps no one from binding the socket's name first.
  chmod(run.c_str(), 01777);
  SocketServer sticky(options, AlwaysOk);
  started = sticky.Start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("has mode 1777 (writable by others; the "
                                 "sticky bit keeps no one from taking a new "
                                 "name)"),
            std::string::npos)
      << started.error();

  chmod(run.c_str(), 0750);
  SocketServer closed(options, AlwaysOk);
  ASSERT_TRUE(closed.Start());
  EXPECT_EQ(closed.dir_mode(), 0750u);
  EXPECT_EQ(closed.socket_mode(), 0666u);
  closed.Stop();
}

// A folder above the socket's that another user owns could be moved
// aside and replaced, socket and all.
TEST(HelperSocketAccess, FolderAboveTheSocketsOfAnotherUserRefused) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to give a directory to another user";
  TempDir dir;
  std::string outer = dir.path() + "/outer";
  ASSERT_EQ(mkdir(outer.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((outer + "/run").c_str(), 0755), 0);
  ASSERT_EQ(chown(outer.c_str(), 65534, 65534), 0);
  auto place = CheckSocketPlace(outer + "/run/token.sock", 0);
  ASSERT_FALSE(place);
  EXPECT_TRUE(place.error().starts_with(
      "the directory " + outer + " above the socket " + outer +
      "/run/token.sock is owned by nobody (uid 65534)"))
      << place.error();
}

// A socket folder that another user owns: that user could put a socket
// of their own in place of ours.
TEST(HelperSocketAccess, SocketDirectoryOfAnotherUserRefused) {
  if (geteuid() != 0)
    GTEST_SKIP() << "needs root to give a directory to another user";
  TempDir dir;
  std::string run = dir.path() + "/run";
  ASSERT_EQ(mkdir(run.c_str(), 0755), 0);
  ASSERT_EQ(chown(run.c_str(), 65534, 65534), 0);
  SocketServer refused(ServerOptions{run + "/token.sock", {}}, AlwaysOk);
  auto started = refused.Start();
  ASSERT_FALSE(started);
  EXPECT_NE(started.error().find("the socket directory " + run +
                                 " is owned by nobody (uid 65534), who could "
                                 "replace it; fix: chown root " +
                                 run),
            std::string::npos)
      << started.error();
  EXPECT_EQ(CheckSocketPlace(run + "/token.sock", 0).error(), started.error());
  EXPECT_TRUE(CheckSocketPlace(run + "/token.sock", 65534));
}

// What `check` can tell before the helper binds: the folder's risks and
// a path taken by something that is not a socket; a folder not made yet
// is no error (the helper makes it).
TEST(HelperSocketAccess, SocketPlaceCheckedBeforeBinding) {
  TempDir dir;
  uid_t me = geteuid();
  EXPECT_TRUE(CheckSocketPlace(dir.path() + "/token.sock", me));
  EXPECT_TRUE(CheckSocketPlace(dir.path() + "/later/token.sock", me));

  std::string file = dir.Write("token.sock", "");
  auto place = CheckSocketPlace(file, me);
  ASSERT_FALSE(place);
  EXPECT_EQ(place.error(), file +
                               " exists and is not a socket; remove it or set "
                               "another socket path");
  place = CheckSocketPlace(file + "/token.sock", me);
  ASSERT_FALSE(place);
  EXPECT_NE(place.error().find("is not a directory"), std::string::npos);

  std::string run = dir.path() + "/run";
  ASSERT_EQ(mkdir(run.c_str(), 0700), 0);
  EXPECT_FALSE(CheckSocketPlace(run + "/", me));  // the folder itself
  chmod(run.c_str(), 0777);
  place = CheckSocketPlace(run + "/token.sock", me);
  ASSERT_FALSE(place);
  EXPECT_NE(place.error().find("has mode 0777 (writable by others"),
            std::string::npos);
}

TEST(HelperDenialLog, FirstRefusalLoggedLaterOnesSummarised) {
  LogCapture log;
  DenialLog denials("token");
  auto t0 = DenialLog::Clock::now();
  PeerCredentials peer{4321, 1234, 1234};
  denials.Denied(peer, t0);
  denials.Denied(peer, t0 + seconds(1));
  denials.Denied(peer, t0 + seconds(2));
  denials.Denied(PeerCredentials{99, 77, 77}, t0 + seconds(3));
  denials.Flush(t0 + seconds(30));
  EXPECT_EQ(log.Lines().size(), 2u);
  EXPECT_TRUE(
      log.Has({"level=warn event=peer_denied socket=token uid=1234 "
               "gid=1234 pid=4321"}));

  denials.Flush(t0 + seconds(61));
  ASSERT_EQ(log.Lines().size(), 3u);
  EXPECT_TRUE(
      log.Has({"level=warn event=peer_denied socket=token uid=1234 "
               "suppressed=2 window_seconds=60"}));
  denials.Flush(t0 + seconds(200));
  EXPECT_EQ(log.Lines().size(), 3u);  // uid 77 had nothing suppressed
}

TEST(HelperDenialLog, NextRefusalAfterTheWindowSummarisesFirst) {
  LogCapture log;
  DenialLog denials("reply");
  auto t0 = DenialLog::Clock::now();
  PeerCredentials peer{4321, 1234, 1234};
  denials.Denied(peer, t0);
  denials.Denied(peer, t0 + seconds(59));
  denials.Denied(peer, t0 + seconds(60));
  auto lines = log.Lines();
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[1].find("uid=1234 suppressed=1"), std::string::npos);
  EXPECT_NE(lines[2].find("uid=1234 gid=1234 pid=4321"), std::string::npos);
}

// A client that writes its request first reads the refusal's reason.
TEST(HelperSocketAccess, OverCapClientThatWritesFirstGetsTheReason) {
  TempDir dir;
  ServerOptions options{dir.path() + "/token.sock", {{getuid()}, {}, true}};
  options.max_connections = 1;
  SocketServer server(options, AlwaysOk);
  ASSERT_TRUE(server.Start());
  auto held = ConnectUnix(options.path);  // takes the only slot
  ASSERT_TRUE(held);

  for (int i = 0; i < 20; ++i) {
    auto answer = ExchangeLine(options.path, "v1 token relay@example.com\n",
                               milliseconds(5000));
    ASSERT_TRUE(answer) << answer.error();
    EXPECT_EQ(*answer, "err unavailable too many connections; try again\n");
  }
  close(*held);
  server.Stop();
}

TEST(HelperSocketAccess, SocketRecreatedWhenItsDirectoryIsRemoved) {
  TempDir dir;
  LogCapture log;
  ServerOptions options{dir.path() + "/run/token.sock", {{getuid()}, {}, true}};
  options.check_interval = milliseconds(20);
  SocketServer server(options, AlwaysOk);
  ASSERT_TRUE(server.Start());

  std::filesystem::remove_all(dir.path() + "/run");
  ASSERT_TRUE(WaitUntil([&] {
    return log.Has({"event=socket_recreated", "reason=missing"});
  }));
  auto answer = ExchangeLine(options.path, "v1 token relay@example.com\n",
                             milliseconds(5000));
  ASSERT_TRUE(answer) << answer.error();
  EXPECT_EQ(*answer, "ok\n");
  EXPECT_TRUE(log.Has({"event=socket_recreated", "socket=" + options.path,
                       "socket_mode=0666", "dir_mode=0755"}));
  server.Stop();
  EXPECT_FALSE(std::filesystem::exists(options.path));
}

}  // namespace
}  // namespace xoauth2::helper
