// SPDX-License-Identifier: MIT
//
// `token-helper milter`: the sender guard as a libmilter filter (Sendmail
// milter protocol, as Postfix speaks it: MILTER_README). It refuses at
// MAIL FROM an envelope sender that is not a configured mailbox or
// send_as address, and at the end of the headers a message whose From
// header is not (sender_guard.h has the rules), each with smfi_setreply's
// 550 5.7.1 and a text naming the fix; everything else is accepted
// unchanged (the filter asks for no modification rights).
//
// Process model: RunMilter() runs libmilter's smfi_main() in the calling
// thread until SIGTERM, SIGINT or SIGHUP (libmilter's own signal thread,
// which treats SIGHUP as SIGTERM: the milter stops and does not reload its
// send_as lists; KNOWN_ISSUES.md, token-helper-milter.service restarts it);
// libmilter runs each MTA connection on a thread of its own. The
// SenderGuard is built before smfi_main and only read afterwards; each
// connection owns one SenderGuardSession, made in the connect callback,
// stored with smfi_setpriv and deleted in the close callback.
//
// The socket (sender_guard.socket, a Unix socket) is created with mode
// 0666, like token.sock: its folder (0750, group postfix under systemd)
// decides who may connect. A stale socket is replaced, a live one (another
// milter answers) is refused. The process never opens a secret, key or
// refresh token file (ConfigUse::kSenderGuard).
//
// Failure contract: no exception leaves a callback (a failure there
// answers SMFIS_TEMPFAIL and logs an error); refusals are logged as warn
// events (sender_refused) with the stage and address, senders and From
// headers that pass as debug events (sender_accepted); start-up problems
// are logged once and returned as exit code 1. milter_stopped notes that
// every stop signal, SIGHUP included, stops the milter (libmilter does
// not tell which one came). It never calls exit().

#ifndef XOAUTH2_TOKEN_HELPER_MILTER_H
#define XOAUTH2_TOKEN_HELPER_MILTER_H

#include "config.h"

namespace xoauth2::helper {

// Serves the sender guard on config.sender_guard.socket until a signal;
// 0 after a clean stop, 1 when the socket cannot be set up or libmilter
// fails.
int RunMilter(const Config& config);

}  // namespace xoauth2::helper

#endif  // XOAUTH2_TOKEN_HELPER_MILTER_H
