"""End-to-end tests: Postfix + libxoauth2.so + token-helper + Office 365
stand-ins, one fresh environment per test (harness.RelayEnvironment).

What it checks, by field report (/work/shared/cases/field-reports.md):
  relay, F01, F02  a message arrives byte-intact, authenticated with
                   XOAUTH2 as the mailbox, through a chrooted smtp(8) whose
                   jail holds nothing we put there and no CA bundle
  F03              a helper config with a missing comma is refused with
                   file:line:column; Postfix defers (the reply.sock lookup
                   fails first, naming the socket), never "no mechanism"
  F09              535 5.7.3 defers (never bounces), delivery once accepted;
                   a refused token is replaced before the next attempt,
                   both after a Gmail-style challenge (the plugin reports
                   it) and after Office 365's immediate 535 (the helper
                   sees it through smtp_reply_filter on reply.sock)
  F10              535 5.7.139 defers; the helper logs the tenant
                   configuration problem with the PowerShell fix
  echoed secret    the token endpoint refuses the client secret and
                   repeats it (raw and percent-encoded) in its error
                   text: the helper's log, `status` and the reason the
                   plugin logs in the maillog show <redacted> instead
  F16              no / empty sasl_passwd entry: clean deferral, no crash
  F19              the plugin's lines carry Postfix's ident postfix/smtp,
                   and Postfix defers with the plugin's reason
  F20              example placeholders refused by name and absolute path
  own user         the helper as an unprivileged user, its files and socket
                   folder handed over as token-helper.service has them:
                   relay works, socket folder 0750 group postfix, socket
                   0666 inside it; a user of group postfix outside the
                   allowlist gets `denied` (logged by uid and pid), one
                   outside the group cannot reach the socket; as root the
                   helper warns
  helper down      deferred, then delivered once the helper runs
  reply.sock bad   a file in place of reply.sock: smtp_reply_filter lookup
                   error, deferred (4.3.0); once the file is removed the
                   helper binds reply.sock again and the message leaves
  sockets removed  the socket directory removed while Postfix relays: the
                   helper binds both sockets again (socket_recreated),
                   mail flows, and a refused token is again noticed
                   through reply.sock and replaced

Run as root: /usr/bin/python3 -m unittest -v test_relay (from this
directory), with XOAUTH2_BUILD_DIR naming the build tree; ctest runs it
with label e2e (tests/e2e/e2e.cmake). Each test owns its processes and
stops them through addCleanup, failing or not.

What it deliberately does not do: check the helper's token cache policy or
the endpoint error classification (unit tests do), or use the network
beyond 127.0.0.1.
"""

import base64
import grp
import hashlib
import os
import pathlib
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import unittest
import urllib.parse
from typing import Optional

import harness

# What Postfix itself creates in its queue directory (the smtp chroot).
POSTFIX_QUEUE_DIRS = {
    "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
    "incoming", "maildrop", "pid", "private", "public", "saved", "trace"}
CRASH_LINES = re.compile(
    r"(fatal:|panic:|killed by signal|terminated on signal"
    r"|pid \d+ exit status)", re.IGNORECASE)
PLUGIN_LINE = (r"postfix/smtp\[(\d+)\]: warning: SASL authentication "
               r"\w+: xoauth2: event=")
TENANT_DISABLED = ("535 5.7.139 Authentication unsuccessful, "
                   "SmtpClientAuthentication is disabled for the Tenant. "
                   "Visit https://aka.ms/smtp_auth_disabled for more "
                   "information.")


def token_hash(token: str) -> str:
    """How the helper logs a token: sha256: and 12 hex digits."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


def split_message(data: bytes) -> tuple[list[bytes], bytes]:
    """Header lines and body of a message, CRLF turned into LF."""
    data = data.replace(b"\r\n", b"\n")
    head, _, body = data.partition(b"\n\n")
    return head.split(b"\n"), body


def ask_as(user: str, groups: list[int], path: pathlib.Path
           ) -> tuple[str, int]:
    """Asks the helper's socket for MAILBOX's token from a process of
    `user` with supplementary `groups`: the answer line (or the name of
    the exception met) and the process's pid."""
    script = (
        "import os, socket, sys\n"
        "print(os.getpid(), flush=True)\n"
        "try:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    s.connect(sys.argv[1])\n"
        f"    s.sendall(b'v1 token {harness.MAILBOX}\\n')\n"
        "    print(s.makefile().readline().strip())\n"
        "except OSError as err:\n"
        "    print(type(err).__name__)\n")
    result = subprocess.run(
        [harness.PYTHON, "-c", script, str(path)], user=user, group=user,
        extra_groups=groups, capture_output=True, text=True, timeout=20)
    pid, answer = result.stdout.splitlines()
    return answer, int(pid)


class RelayTestCase(unittest.TestCase):
    """Common set-up: a fresh RelayEnvironment, always cleaned up."""

    def setUp(self) -> None:
        self.env = harness.relay_environment_for(self)

    def assertDeferredNotBounced(self, queue_id: str) -> re.Match:
        """The message is deferred, still queued, and nothing bounced."""
        line = self.env.wait_for_status(queue_id, "deferred")
        self.assertRegex(line.group(0), r"dsn=4\.", self.env.diagnostics())
        queued = [e["queue_id"] for e in self.env.postfix.queue_entries()]
        self.assertIn(queue_id, queued)
        log = self.env.postfix.log()
        self.assertNotIn("status=bounced", log)
        self.assertNotIn("sender non-delivery notification", log)
        self.assertEqual(self.env.standins.messages(), [])
        return line

    def assertNoCrash(self) -> None:
        """No fatal, panic or abnormal exit anywhere in the maillog."""
        bad = [line for line in self.env.postfix.log().splitlines()
               if CRASH_LINES.search(line)]
        self.assertEqual(bad, [])

    def deliver_after_flush(self, queue_id: str, message: bytes) -> dict:
        """Flushes the queue; the message arrives exactly once."""
        self.env.postfix.flush()
        self.env.wait_for_status(queue_id, "sent")
        harness.wait_until(lambda: not self.env.postfix.queue_entries(), 10,
                           "an empty queue")
        received = self.env.standins.messages()
        self.assertEqual(len(received), 1, self.env.diagnostics())
        self.assertEqual(split_message(received[0]["content"])[1],
                         split_message(message)[1])
        return received[0]


class RelayTest(RelayTestCase):
    """The working chain."""

    def test_relay_delivers_intact_message_with_xoauth2(self) -> None:
        """relay, F01, F02: byte-intact delivery, XOAUTH2 as the mailbox,
        chrooted smtp(8), empty queue, nothing copied into the jail."""
        self.env.start()
        message, _ = harness.make_message("relay test")
        queue_id = self.env.submit(message)
        sent = self.env.wait_for_status(queue_id, "sent")
        harness.wait_until(lambda: not self.env.postfix.queue_entries(), 10,
                           "an empty queue")

        # Exactly our message arrived: our header lines in order, Postfix's
        # additions (Received, Date) around them, the body byte for byte.
        received = self.env.standins.messages()
        self.assertEqual(len(received), 1, self.env.diagnostics())
        got_head, got_body = split_message(received[0]["content"])
        sent_head, sent_body = split_message(message)
        self.assertEqual(got_body, sent_body)
        self.assertEqual([h for h in got_head if h in sent_head], sent_head)
        self.assertEqual(received[0]["mail_from"], harness.MAILBOX)
        self.assertEqual(received[0]["rcpt_tos"], ["someone@example.org"])
        self.assertTrue(received[0]["tls"])

        # The session authenticated with XOAUTH2 as the mailbox, using the
        # token the stand-in endpoint issued to the helper.
        auth = received[0]["auth"]
        self.assertEqual((auth["mechanism"], auth["mailbox"]),
                         ("XOAUTH2", harness.MAILBOX))
        issued = [r["response"]["access_token"]
                  for r in self.env.standins.state()["token_requests"]
                  if r["status"] == 200]
        attempt = self.env.standins.auth_attempts()[-1]
        self.assertEqual(
            base64.b64decode(attempt["raw"]),
            f"user={harness.MAILBOX}\x01auth=Bearer {attempt['token']}"
            "\x01\x01".encode())
        self.assertIn(attempt["token"], issued)
        self.check_token_request()
        self.check_chroot(int(re.search(r"smtp\[(\d+)\]",
                                        sent.group(0)).group(1)))

    def check_token_request(self) -> None:
        """The helper asked for an app-only token with the secret, the
        .default scope and the tenant in the path."""
        first = self.env.standins.state()["token_requests"][0]
        self.assertEqual(first["path"],
                         f"/{harness.TENANT}/oauth2/v2.0/token")
        self.assertEqual(first["form"], {
            "grant_type": "client_credentials",
            "client_id": harness.CLIENT_ID,
            "client_secret": harness.CLIENT_SECRET,
            "scope": "https://outlook.office365.com/.default"})

    def check_chroot(self, smtp_pid: int) -> None:
        """F01, F02: smtp(8) ran jailed in the queue directory, which holds
        only Postfix's directories and the helper's socket, no CA file."""
        queue = self.env.postfix.queue
        self.assertEqual(os.readlink(f"/proc/{smtp_pid}/root"), str(queue))
        extra = {p.name for p in queue.iterdir()} - POSTFIX_QUEUE_DIRS
        self.assertEqual(extra, {"xoauth2-relay"})
        self.assertEqual(
            sorted(p.name for p in (queue / "xoauth2-relay").iterdir()),
            ["reply.sock", "token.sock"])
        certs = [str(p) for p in queue.rglob("*")
                 if p.suffix in (".pem", ".crt") or p.name in ("ssl",
                                                               "certs")]
        self.assertEqual(certs, [])
        self.assertIn("Trusted TLS connection established",
                      self.env.postfix.log())

    def test_helper_as_own_user_relays_and_refuses_others(self) -> None:
        """The helper as an unprivileged user (nobody, standing in for
        xoauth2-relay) with its files and socket folder handed over as
        token-helper.service has them: the relay works, the sockets have
        the narrowest modes that work, no root warning; a local user in
        group postfix but outside the allowlist is refused with `denied`
        and logged by uid and pid, one outside the group cannot reach the
        socket at all."""
        self.env.helper.user = "nobody"
        self.env.start()
        message, _ = harness.make_message("unprivileged helper")
        queue_id = self.env.submit(message)
        self.env.wait_for_status(queue_id, "sent")

        nobody = pwd.getpwnam("nobody").pw_uid
        log = self.env.helper.log()
        self.assertRegex(log, rf"event=helper_started .*socket_mode=0666 "
                              rf"dir_mode=0750 .*euid={nobody}\b")
        self.assertNotIn("running_as_root", log)
        folder = self.env.helper.socket.parent.stat()
        self.assertEqual((folder.st_uid, grp.getgrgid(folder.st_gid).gr_name,
                          stat.S_IMODE(folder.st_mode)),
                         (nobody, "postfix", 0o750))
        self.assertEqual(self.env.helper.socket.stat().st_uid, nobody)

        # daemon in group postfix reaches the socket; the allowlist
        # (postfix, root) refuses it.
        postfix_gid = grp.getgrnam("postfix").gr_gid
        answer, pid = ask_as("daemon", [postfix_gid], self.env.helper.socket)
        self.assertRegex(answer, r"^err denied ")
        line = self.wait_for_helper_line("peer_denied", None, f"pid={pid}")
        self.assertIn(f"socket=token uid={pwd.getpwnam('daemon').pw_uid} ",
                      line)
        answer, _ = ask_as("daemon", [], self.env.helper.socket)
        self.assertEqual(answer, "PermissionError")

    def test_helper_as_root_warns(self) -> None:
        """The helper run as root says so and how to change it."""
        self.env.start()
        self.wait_for_helper_line("running_as_root", None,
                                  "User=xoauth2-relay")

    def test_helper_not_running_defers_then_delivers(self) -> None:
        """Helper down: deferred with a reason; helper up: delivered."""
        self.env.start(helper=False)
        message, _ = harness.make_message("helper down")
        queue_id = self.env.submit(message)
        self.assertDeferredNotBounced(queue_id)

        self.env.helper.start()
        self.deliver_after_flush(queue_id, message)
        self.assertNoCrash()

    def test_reply_socket_replaced_defers_then_delivers(self) -> None:
        """smtp_reply_filter lookup error (a plain file in place of
        reply.sock): smtp(8) logs the table error and defers with 4.3.0,
        never bounces; the helper says it cannot bind reply.sock, and once
        the file is gone it binds it again and the message is delivered,
        without restarting the helper."""
        self.env.start()
        reply_sock = self.env.postfix.queue / "xoauth2-relay" / "reply.sock"
        blocker = reply_sock.with_name("blocker")
        blocker.write_text("not a socket\n")
        os.replace(blocker, reply_sock)  # no moment without a file
        message, _ = harness.make_message("reply socket replaced")
        queue_id = self.env.submit(message)
        line = self.assertDeferredNotBounced(queue_id)
        self.assertIn("dsn=4.3.0", line.group(0))
        self.assertIn("local data error", line.group(0))
        self.assertRegex(self.env.postfix.log(),
                         r"table socketmap:unix:xoauth2-relay/reply\.sock:"
                         r"xoauth2 lookup error")
        self.wait_for_helper_line("socket_recreate_failed", reply_sock,
                                  "is not a socket")

        reply_sock.unlink()
        self.wait_for_helper_line("socket_recreated", reply_sock,
                                  "reason=missing")
        self.deliver_after_flush(queue_id, message)
        self.assertNoCrash()

    def test_socket_directory_removed_sockets_recreated(self) -> None:
        """The socket directory removed while Postfix relays (an smtp(8)
        process still holding its reply.sock connection): the helper binds
        token.sock and reply.sock again, mail flows, and Office 365's
        immediate 535 is again seen through reply.sock, so the refused
        token is dropped and the next attempt gets a fresh one."""
        self.env.start()
        first, _ = harness.make_message("before the removal")
        self.env.wait_for_status(self.env.submit(first), "sent")

        sockets = self.env.postfix.queue / "xoauth2-relay"
        shutil.rmtree(sockets)
        for name in ("token.sock", "reply.sock"):
            line = self.wait_for_helper_line("socket_recreated",
                                             sockets / name, "reason=missing")
            self.assertIn("socket_mode=0666", line)
        self.assertEqual(sorted(p.name for p in sockets.iterdir()),
                         ["reply.sock", "token.sock"])

        # Refused: deferred by Office 365's reply, not by a lookup error.
        self.env.standins.set_smtp_auth_mode("refuse")
        message, _ = harness.make_message("after the removal")
        queue_id = self.env.submit(message)
        deferred = self.env.wait_for_status(queue_id, "deferred")
        self.assertIn("535 5.7.3 Authentication unsuccessful",
                      deferred.group(0))
        refused = self.env.standins.auth_attempts()[-1]["token"]
        warn = self.wait_for_helper_line("smtp_token_refused", None,
                                         f"token={token_hash(refused)}")
        self.assertIn('reply="535 5.7.3"', warn)

        # Accepted: delivered once with a freshly fetched token.
        self.env.standins.set_smtp_auth_mode("accept")
        self.env.postfix.flush()
        self.env.wait_for_status(queue_id, "sent")
        self.assertEqual(len(self.env.standins.messages()), 2,
                         self.env.diagnostics())
        self.assertNotEqual(self.env.standins.auth_attempts()[-1]["token"],
                            refused)
        self.assertEqual(len(self.env.standins.state()["token_requests"]), 2)
        self.assertNoCrash()

    def wait_for_helper_line(self, event: str,
                             socket: Optional[pathlib.Path],
                             part: str) -> str:
        """The helper's first `event` line (for `socket`, if given) that
        holds `part`; waits up to 15 s (the helper checks its sockets
        every 5 s)."""
        pattern = rf"event={event} "
        if socket is not None:
            pattern += rf"socket={re.escape(str(socket))} "
        pattern += r".*$"

        def found():
            for match in re.finditer(pattern, self.env.helper.log(),
                                     re.MULTILINE):
                if part in match.group(0):
                    return match.group(0)
            return None
        return harness.wait_until(found, 15,
                                  f"the helper's {event} line with {part}")


class RefusalTest(RelayTestCase):
    """Office 365 refusing authentication."""

    def test_f09_refused_token_defers_then_delivers_once(self) -> None:
        """F09: 535 5.7.3 defers, nothing bounces; accepted later, the
        message is delivered exactly once."""
        self.env.start()
        self.env.standins.set_smtp_auth_mode("refuse")
        message, _ = harness.make_message("refused token")
        queue_id = self.env.submit(message)
        line = self.assertDeferredNotBounced(queue_id)
        self.assertIn("535 5.7.3 Authentication unsuccessful", line.group(0))

        self.env.standins.set_smtp_auth_mode("accept")
        self.deliver_after_flush(queue_id, message)

    def test_f09_error_challenge_gets_fresh_token(self) -> None:
        """F09 (Gmail-style error challenge): the plugin reports the
        refused token, and the next attempt uses a freshly fetched one."""
        self.env.start()
        self.env.standins.set_smtp_auth_mode("challenge")
        message, _ = harness.make_message("error challenge")
        queue_id = self.env.submit(message)
        self.assertDeferredNotBounced(queue_id)

        self.env.standins.set_smtp_auth_mode("accept")
        self.deliver_after_flush(queue_id, message)
        first, last = (self.env.standins.auth_attempts()[i] for i in (0, -1))
        self.assertNotEqual(first["token"], last["token"])
        self.assertEqual(len(self.env.standins.state()["token_requests"]), 2)

    def test_f09_immediate_535_gets_fresh_token(self) -> None:
        """F09 (Office 365 style): the helper sees the 535 5.7.3 through
        smtp_reply_filter, drops the token, and the next attempt uses a
        freshly fetched one: exactly one extra token request."""
        self.env.start()
        self.env.standins.set_smtp_auth_mode("refuse")
        message, _ = harness.make_message("immediate 535")
        queue_id = self.env.submit(message)
        self.assertDeferredNotBounced(queue_id)
        refused = self.env.standins.auth_attempts()[0]["token"]
        warn = harness.wait_until(
            lambda: re.search(r"level=warn event=smtp_token_refused .*$",
                              self.env.helper.log(), re.MULTILINE),
            10, "the helper's smtp_token_refused line")
        self.assertIn("account=relay", warn.group(0))
        self.assertIn(f"mailbox={harness.MAILBOX}", warn.group(0))
        self.assertIn('reply="535 5.7.3"', warn.group(0))
        self.assertIn(f"token={token_hash(refused)}", warn.group(0))

        self.env.standins.set_smtp_auth_mode("accept")
        self.deliver_after_flush(queue_id, message)
        first, last = (self.env.standins.auth_attempts()[i] for i in (0, -1))
        self.assertNotEqual(first["token"], last["token"])
        self.assertEqual(len(self.env.standins.state()["token_requests"]), 2)
        self.assertNoTokenInHelperLog()

    def test_f10_tenant_disabled_defers(self) -> None:
        """F10: 535 5.7.139 (SMTP AUTH disabled) defers, never bounces;
        the helper names the tenant configuration problem and the
        PowerShell fix, and keeps the token (no extra token request)."""
        self.env.start()
        self.env.standins.set_smtp_auth_mode("reply", TENANT_DISABLED)
        message, _ = harness.make_message("tenant disabled")
        queue_id = self.env.submit(message)
        line = self.assertDeferredNotBounced(queue_id)
        self.assertIn("5.7.139", line.group(0))

        warn = harness.wait_until(
            lambda: re.search(
                r"level=warn event=smtp_auth_configuration .*$",
                self.env.helper.log(), re.MULTILINE),
            10, "the helper's smtp_auth_configuration line")
        self.assertIn('reply="535 5.7.139"', warn.group(0))
        self.assertIn("tenant configuration", warn.group(0))
        self.assertIn("SMTP AUTH is switched off for the tenant", warn.group(0))
        self.assertIn(f"Set-CASMailbox -Identity {harness.MAILBOX} "
                      "-SmtpClientAuthenticationDisabled $false",
                      warn.group(0))
        self.assertIn("token_kept=yes", warn.group(0))
        self.assertNotIn("event=smtp_token_refused", self.env.helper.log())
        self.assertEqual(len(self.env.standins.state()["token_requests"]), 1)
        self.assertNoTokenInHelperLog()

    def test_echoed_client_secret_masked(self) -> None:
        """The endpoint's invalid_client text repeats the client secret
        the helper sent, raw and as sent (percent-encoded): the
        token_fetch_failed line, `status` and the plugin's reason in the
        maillog show <redacted> in its place (and the leak scan at close
        finds it nowhere)."""
        self.env.start()
        secret = harness.CLIENT_SECRET
        sent = urllib.parse.quote(secret, safe="")
        self.env.standins.set_token_fault({
            "status": 401, "label": "echo", "aad_error": {
                "error": "invalid_client", "code": 7000215,
                "message": f"Invalid client secret provided: {secret} "
                           f"(sent as {sent})."}})
        # The 535 makes the helper drop its token and fetch: refused.
        self.env.standins.set_smtp_auth_mode("refuse")
        message, _ = harness.make_message("echoed secret")
        queue_id = self.env.submit(message)
        self.assertDeferredNotBounced(queue_id)
        failed = harness.wait_until(
            lambda: re.search(r"^.*event=token_fetch_failed .*$",
                              self.env.helper.log(), re.MULTILINE),
            20, "the helper's token_fetch_failed line").group(0)
        self.assertIn("class=needs-admin", failed)
        self.assertIn("Invalid client secret provided: <redacted> (sent as "
                      "<redacted>).", failed)

        # The next attempt gets `err unavailable` with the masked text.
        self.env.standins.set_smtp_auth_mode("accept")
        self.env.postfix.flush()
        self.env.postfix.wait_for_log(
            PLUGIN_LINE + r".*reason=.*provided: <redacted> \(sent as")
        status = self.env.helper.command("status")
        self.assertIn("provided: <redacted>", status.stdout)
        for text in (self.env.helper.log(), self.env.postfix.log(),
                     status.stdout):
            self.assertNotIn(secret, text)
            self.assertNotIn(sent, text)

    def assertNoTokenInHelperLog(self) -> None:
        """No access token the stand-in issued appears in the helper's
        log, at any level."""
        log = self.env.helper.log()
        for request in self.env.standins.state()["token_requests"]:
            token = request["response"].get("access_token")
            if token:
                self.assertNotIn(token, log)


class ConfigurationTest(RelayTestCase):
    """Operator mistakes in the helper's or Postfix's configuration."""

    def test_f03_syntax_error_named_and_postfix_defers(self) -> None:
        """F03: missing comma -> check and run exit 3 naming
        file:line:column; Postfix defers with a reason naming the
        helper's reply socket, not "no mechanism available" (F19 covers
        the plugin's own reason)."""
        self.env.start(helper=False)
        config = self.env.helper.config_path
        lines = config.read_text().splitlines()
        index = next(i for i, line in enumerate(lines)
                     if line.strip() == '"cloud": "global",')
        lines[index] = lines[index].rstrip(",")
        config.write_text("\n".join(lines) + "\n")

        # The error is seen at the next member, one line further down.
        for command in ("check", "run"):
            result = self.env.helper.command(command)
            self.assertEqual(result.returncode, 3, result.stderr)
            self.assertRegex(result.stderr, re.escape(str(config))
                             + rf":{index + 2}:\d+: ")
        self.assertFalse(self.env.helper.socket.exists())

        # With no helper there is no reply.sock: smtp(8) fails the
        # smtp_reply_filter lookup of the server's greeting, logs the
        # table and socket, and defers before SASL starts.
        message, _ = harness.make_message("bad helper config")
        queue_id = self.env.submit(message)
        line = self.assertDeferredNotBounced(queue_id)
        self.assertIn("dsn=4.3.0", line.group(0))
        log = self.env.postfix.log()
        self.assertIn("connect to xoauth2-relay/reply.sock: No such file",
                      log)
        self.assertNotIn("no mechanism available", log)
        self.assertNotIn("No worthy mechs", log)

    def test_f16_no_sasl_passwd_entry_defers_cleanly(self) -> None:
        """F16: no entry for the relay -> deferred (4.7.57), no crash."""
        self.env.start(sasl_passwd="[other.example]:587 other@example.com:-")
        message, _ = harness.make_message("no sasl_passwd entry")
        queue_id = self.env.submit(message)
        line = self.assertDeferredNotBounced(queue_id)
        self.assertIn("dsn=4.7.57", line.group(0))
        self.assertNoCrash()

    def test_f16_empty_sasl_passwd_entry_defers_cleanly(self) -> None:
        """F16: an empty user for the relay -> deferred, no crash."""
        self.env.start(sasl_passwd="{relay} :")
        message, _ = harness.make_message("empty sasl_passwd entry")
        queue_id = self.env.submit(message)
        self.assertDeferredNotBounced(queue_id)
        self.assertNoCrash()

    def test_f19_plugin_logs_with_postfix_ident(self) -> None:
        """F19: the plugin's failure line (the helper has no account for
        the mailbox) comes out of the SASL log callback: Postfix's ident
        and pid, never its own; Postfix loads XOAUTH2 and defers with the
        plugin's reason."""
        self.env.start(sasl_passwd="{relay} other@example.com:-")
        message, _ = harness.make_message("plugin log ident")
        queue_id = self.env.submit(message)
        status = self.assertDeferredNotBounced(queue_id)
        plugin = self.env.postfix.wait_for_log(PLUGIN_LINE)
        self.assertEqual(plugin.group(1),
                         re.search(r"smtp\[(\d+)\]", status.group(0))[1])
        foreign = [line for line in self.env.postfix.log().splitlines()
                   if "xoauth2:" in line and "postfix/smtp[" not in line]
        self.assertEqual(foreign, [])
        log = self.env.postfix.log()
        self.assertRegex(log, PLUGIN_LINE + r".* reason=\S")
        self.assertNotIn("no mechanism available", log)


class ExampleConfigTest(unittest.TestCase):
    """F20: the shipped example is refused until its placeholders go."""

    def test_f20_placeholders_refused_by_name_and_path(self) -> None:
        """`check` and `run` on each untouched example exit 3, naming the
        placeholder and the absolute path; --help names the default."""
        helper = str(harness.helper_path())
        self.assertTrue(harness.helper_path().exists(),
                        f"missing {helper}: build the tree")
        examples = [harness.EXAMPLES / "config.json"]
        work = pathlib.Path(tempfile.mkdtemp(prefix="xoauth2-f20-"))
        self.addCleanup(shutil.rmtree, work, True)
        for example in examples:
            shutil.copyfile(example, work / "config.json")
            for command in ("check", "run"):
                with self.subTest(example=str(example), command=command):
                    result = subprocess.run(
                        [helper, "--config", "config.json", command],
                        cwd=work, capture_output=True, text=True,
                        timeout=20)
                    self.assertEqual(result.returncode, 3, result.stderr)
                    self.assertIn(str(work / "config.json"), result.stderr)
                    self.assertIn("REPLACE-WITH-", result.stderr)
        usage = subprocess.run([helper, "--help"], capture_output=True,
                               text=True, timeout=20)
        self.assertIn("/etc/xoauth2-relay/config.json", usage.stdout)


if __name__ == "__main__":
    unittest.main()
