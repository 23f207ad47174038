// SPDX-License-Identifier: MIT
//
// The client side of the token socket protocol, for `token-helper token`,
// the start-up check for a running helper, and tests. (The SASL plugin has
// its own client that links nothing of the helper.)
//
// One blocking exchange per call, bounded by a total timeout; errors come
// back as messages naming the socket path. Nothing is logged.

#ifndef XOAUTH2_TOKEN_HELPER_SOCKET_CLIENT_H
#define XOAUTH2_TOKEN_HELPER_SOCKET_CLIENT_H

#include <chrono>
#include <expected>
#include <string>
#include <string_view>

#include "protocol.h"

namespace xoauth2::helper {

// Connects to the Unix socket at `path`; the connected descriptor.
std::expected<int, std::string> ConnectUnix(const std::string& path);

// Sends `bytes` and reads until the peer closes or a LF arrives (at most
// protocol::kMaxResponseBytes); the raw line including its LF.
std::expected<std::string, std::string> ExchangeLine(
    const std::string& path, std::string_view bytes,
    std::chrono::milliseconds timeout);

// Sends `request` and parses the answer; a token or reject request whose
// mailbox protocol::IsValidMailbox refuses is not sent (an error).
std::expected<protocol::Response, std::string> AskHelper(
    const std::string& path, const protocol::Request& request,
    std::chrono::milliseconds timeout);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_SOCKET_CLIENT_H
