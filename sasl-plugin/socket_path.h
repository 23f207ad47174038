// SPDX-License-Identifier: MIT
//
// Finds the token socket from inside the MTA's chroot jail.
//
// Postfix loads SASL plugins before smtp(8) calls chroot(2) into its queue
// directory, and the socket is configured as a host path such as
// /var/spool/postfix/xoauth2-relay/token.sock. At plugin init we record
// the identity (st_dev, st_ino) of every existing ancestor directory of
// that path (RecordAncestors). At connect time the identity of "/" tells
// which ancestor became the root, and the path inside the jail is the
// configured path with that ancestor stripped (ResolveForRoot). No file
// has to be copied into the jail.
//
// Types: FileId, Ancestor. Pure functions except RecordAncestors and
// ResolveForCurrentRoot, which call stat(2). No state, no threads, no
// logging; errors are returned as operator messages.
//
// Deliberately not handled: a symbolic link among the ancestors that
// points outside the jail (the stripped path would then not exist inside
// it; the connect error names the path tried).

#ifndef XOAUTH2_SASL_PLUGIN_SOCKET_PATH_H
#define XOAUTH2_SASL_PLUGIN_SOCKET_PATH_H

#include <sys/types.h>

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace xoauth2::plugin {

// The identity of a directory: what stat(2) reports as st_dev and st_ino.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

// One ancestor directory of the socket path as found at plugin init.
struct Ancestor {
  std::string path;  // "/", "/var", ... without a trailing slash
  FileId id;
};

// Checks a configured socket path: absolute, no "." or ".." component, and
// short enough for sockaddr_un. Returns the path with repeated slashes
// collapsed, or a message naming the problem.
std::expected<std::string, std::string> NormalizeSocketPath(
    std::string_view path);

// The ancestor directories of a normalized path, from "/" down to its
// parent: "/a/b/s" gives "/", "/a", "/a/b".
std::vector<std::string> AncestorDirs(std::string_view path);

// stat(2)s every ancestor of `path`; those that do not exist are left out.
std::vector<Ancestor> RecordAncestors(std::string_view path);

// The path to connect to when the current root directory is `root`: the
// configured path itself when root is the recorded "/", the path with
// ancestor A stripped when root is A, or an error saying the socket is
// outside the chroot and how to fix it.
std::expected<std::string, std::string> ResolveForRoot(
    std::string_view path, const std::vector<Ancestor>& ancestors, FileId root);

// ResolveForRoot with the identity of the process's current "/".
std::expected<std::string, std::string> ResolveForCurrentRoot(
    std::string_view path, const std::vector<Ancestor>& ancestors);

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_SOCKET_PATH_H
