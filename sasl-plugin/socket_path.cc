// SPDX-License-Identifier: MIT
//
// Implementation of socket_path.h: socket path checks and chroot-aware
// resolution. See the header for the method and its limits.

#include "socket_path.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace xoauth2::plugin {
namespace {

// Room for the path in sockaddr_un, keeping the terminating NUL.
constexpr std::size_t kMaxSocketPath = sizeof(sockaddr_un{}.sun_path) - 1;

// Splits an absolute path into its non-empty components.
std::vector<std::string_view> Components(std::string_view path) {
  std::vector<std::string_view> parts;
  while (!path.empty()) {
    std::size_t slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty())
      parts.push_back(part);
    if (slash == std::string_view::npos)
      break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

// Why a socket outside the jail cannot be reached, and the two fixes.
std::string OutsideChrootMessage(std::string_view path) {
  return "token socket " + std::string(path) +
         " is outside the MTA's chroot jail: put the socket under the "
         "Postfix queue directory (e.g. /var/spool/postfix/xoauth2-relay/"
         "token.sock, set as \"socket\" in the helper's config and as "
         "XOAUTH2_RELAY_SOCKET), or run smtp unchrooted (chroot=n in "
         "master.cf)";
}

}  // namespace

std::expected<std::string, std::string> NormalizeSocketPath(
    std::string_view path) {
  if (path.empty() || path.front() != '/') {
    return std::unexpected("socket path \"" + std::string(path) +
                           "\" is not absolute");
  }

  // Rebuild the path from its components, refusing "." and "..".
  std::string out;
  std::vector<std::string_view> parts = Components(path);
  for (std::string_view part : parts) {
    if (part == "." || part == "..") {
      return std::unexpected("socket path " + std::string(path) +
                             " must not contain \".\" or \"..\"");
    }
    out += '/';
    out += part;
  }
  if (parts.empty()) {
    return std::unexpected("socket path \"/\" names no socket");
  }
  if (out.size() > kMaxSocketPath) {
    return std::unexpected("socket path " + out + " is longer than " +
                           std::to_string(kMaxSocketPath) + " bytes");
  }
  return out;
}

std::vector<std::string> AncestorDirs(std::string_view path) {
  std::vector<std::string> dirs{"/"};
  std::vector<std::string_view> parts = Components(path);
  std::string prefix;
  for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
    prefix += '/';
    prefix += parts[i];
    dirs.push_back(prefix);
  }
  return dirs;
}

std::vector<Ancestor> RecordAncestors(std::string_view path) {
  std::vector<Ancestor> found;
  for (std::string& dir : AncestorDirs(path)) {
    struct stat st {};
    if (stat(dir.c_str(), &st) != 0)
      continue;
    found.push_back(Ancestor{std::move(dir), FileId{st.st_dev, st.st_ino}});
  }
  return found;
}

std::expected<std::string, std::string> ResolveForRoot(
    std::string_view path, const std::vector<Ancestor>& ancestors,
    FileId root) {
  for (const Ancestor& ancestor : ancestors) {
    if (ancestor.id != root)
      continue;

    // Not chrooted (or chrooted to the real root): use the path as is.
    if (ancestor.path == "/")
      return std::string(path);

    // Chrooted into this ancestor: strip it, keep the slash after it.
    if (path.starts_with(ancestor.path) && path.size() > ancestor.path.size() &&
        path[ancestor.path.size()] == '/') {
      return std::string(path.substr(ancestor.path.size()));
    }
  }
  return std::unexpected(OutsideChrootMessage(path));
}

std::expected<std::string, std::string> ResolveForCurrentRoot(
    std::string_view path, const std::vector<Ancestor>& ancestors) {
  struct stat st {};
  if (stat("/", &st) != 0) {
    return std::unexpected(std::string("cannot stat \"/\": ") +
                           std::strerror(errno));
  }
  return ResolveForRoot(path, ancestors, FileId{st.st_dev, st.st_ino});
}

}  // namespace xoauth2::plugin
