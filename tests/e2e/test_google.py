"""End-to-end tests of a Gmail relay: Postfix + libxoauth2.so +
token-helper with a "provider": "google" account + the Google stand-ins
(Google's token endpoint at POST /token, and the SMTP stand-in playing
smtp.gmail.com: "smtp_persona": "gmail"), one fresh
harness.RelayEnvironment per test.

What it checks:
  xoauth2      a refresh-token account (client secret, refresh token file
               0600) relays with the example's mechanism filter (xoauth2):
               the helper's request to {authority}/token carried the
               secret and no scope, Google's answer rotated nothing and
               the refresh token file is unchanged; the message arrived
               intact, authenticated with XOAUTH2 as the mailbox with a
               token the endpoint issued; no secret or token in the log.
  oauthbearer  the same with smtp_sasl_mechanism_filter = oauthbearer (the
               only main.cf change): the stand-in saw OAUTHBEARER with
               the gs2 header n,a=MAILBOX, and host= the relay host
               Postfix connected to, byte for byte.
  refused      (XOAUTH2 and OAUTHBEARER) the stand-in invalidates the
               token in use: Gmail's error challenge; the plugin answers
               it as its mechanism must (an empty line, or base64 of one
               0x01 byte), Postfix defers (never bounces), the helper
               logs token_rejected for that token, and after
               `postqueue -f` the message goes out exactly once with a
               token fetched after the refusal.
  revoked      the refresh token is revoked (invalid_grant, "Token has
               been expired or revoked."): deferred, the helper's log and
               `status` say a person must act and name the fix (replace
               the refresh token file's content, by absolute path, since
               `token-helper authorize` cannot sign in Google accounts),
               and the refresh token file is left exactly as it was.

Run as root: /usr/bin/python3 -m unittest -v test_google (from this
directory), with XOAUTH2_BUILD_DIR naming the build tree; ctest runs it as
e2e_google (label e2e, tests/e2e/e2e.cmake). Waiting is polling with
deadlines (harness.wait_until); each test stops what it started.

What it deliberately does not do: talk to Google, test the stand-ins
case by case, or test the helper's retry timing (unit tests do).
"""

import base64
import hashlib
import json
import re
import stat
import unittest

import harness

GMAIL = "relay@gmail.example"
CLIENT_ID = ("123456789012-e2etestclient0123456789abcdef"
             ".apps.googleusercontent.com")
CLIENT_SECRET = "GOCSPX-e2e~Test+/=SECRET"  # test value; shows encoding
REFRESH_TOKEN = "1//0gE2E-test-refresh-token_Ab-Cd"  # test value
GMAIL_SCOPE = "https://mail.google.com/"
ERROR_CHALLENGE = (
    "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodH"
    "RwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==")
# What each mechanism must answer Gmail's error challenge with, as the
# SMTP line and as the decoded bytes in hex (RFC 7628 3.2.3 for 0x01).
CHALLENGE_REPLY = {"XOAUTH2": ("\r\n", ""), "OAUTHBEARER": ("AQ==\r\n", "01")}


def token_hash(token: str) -> str:
    """How the helper logs a token: sha256: and 12 hex digits."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


def body_of(message: bytes) -> bytes:
    """A message's body, CRLF turned into LF."""
    return message.replace(b"\r\n", b"\n").partition(b"\n\n")[2]


class GoogleRelayTestCase(unittest.TestCase):
    """A fresh RelayEnvironment with a Google account, cleaned up."""

    def setUp(self) -> None:
        self.env = harness.relay_environment_for(self)
        self.refresh_file = self.env.helper.dir / "gmail.refresh"

    def start(self, mechanism: str = "XOAUTH2",
              revoked: bool = False) -> None:
        """Stand-ins playing Google and Gmail; a helper with the Google
        account; Postfix with the example's main.cf, its mechanism filter
        changed only for OAUTHBEARER."""
        self.refresh_file.write_text(REFRESH_TOKEN + "\n")
        self.refresh_file.chmod(0o600)
        self.refresh_before = self.refresh_file.stat()
        secret = self.env.helper.dir / "gmail.secret"
        secret.write_text(CLIENT_SECRET)
        secret.chmod(0o600)
        standins = {
            "token_lifetime_seconds": 3599, "smtp_persona": "gmail",
            "apps": [],
            "google": {
                "clients": [{"client_id": CLIENT_ID,
                             "client_secret": CLIENT_SECRET}],
                "refresh_tokens": [{"refresh_token": REFRESH_TOKEN,
                                    "client_id": CLIENT_ID,
                                    "mailbox": GMAIL,
                                    "revoked": revoked}]}}
        account = {"name": "gmail", "mailbox": GMAIL, "provider": "google",
                   "client_id": CLIENT_ID, "grant": "refresh_token",
                   "client_secret_file": str(secret),
                   "refresh_token_file": str(self.refresh_file)}
        main_cf_set = ({"smtp_sasl_mechanism_filter": "oauthbearer"}
                       if mechanism == "OAUTHBEARER" else None)
        self.env.start(standin_config=standins, account=account,
                       sasl_passwd=f"{{relay}} {GMAIL}:-",
                       main_cf_set=main_cf_set)

    def token_requests(self) -> list[dict]:
        """What reached the stand-in's Google token endpoint."""
        return [r for r in self.env.standins.state()["token_requests"]
                if r.get("endpoint") == "google-token"]

    def issued_tokens(self) -> list[str]:
        """Every access token the Google endpoint handed out."""
        return [r["response"]["access_token"] for r in self.token_requests()
                if r["status"] == 200]

    def submit(self, subject: str) -> tuple[bytes, str]:
        """Submits a message from the Gmail mailbox; (bytes, queue id)."""
        message, _ = harness.make_message(subject, mailbox=GMAIL)
        return message, self.env.submit(message, sender=GMAIL)

    def wait_sent(self, queue_id: str) -> re.Match:
        """Waits for status=sent, with the logs in the failure message."""
        try:
            return self.env.wait_for_status(queue_id, "sent")
        except AssertionError as err:
            raise AssertionError(f"{err}{self.env.diagnostics()}") from err

    def received(self, message: bytes) -> list[dict]:
        """The stored copies of `message` (matched by Message-ID)."""
        msgid = re.search(rb"^Message-ID: (.*)$", message, re.M).group(1)
        return [m for m in self.env.standins.messages()
                if re.search(rb"^Message-ID: " + re.escape(msgid) + rb"\r?$",
                             m["content"], re.M | re.I)]

    def deliver(self, subject: str, mechanism: str) -> dict:
        """Relays one message; checks it arrived once, intact, sent with
        `mechanism` as the mailbox and a token the endpoint issued;
        returns that AUTH attempt."""
        message, queue_id = self.submit(subject)
        self.wait_sent(queue_id)
        copies = self.received(message)
        self.assertEqual(len(copies), 1, self.env.diagnostics())
        self.assertEqual(body_of(copies[0]["content"]), body_of(message))
        self.assertTrue(copies[0]["tls"])
        self.assertEqual((copies[0]["mail_from"], copies[0]["auth"]["mailbox"],
                          copies[0]["auth"]["mechanism"]),
                         (GMAIL, GMAIL, mechanism))
        attempt = self.env.standins.auth_attempts()[-1]
        self.assertEqual((attempt["mechanism"], attempt["reply"]),
                         (mechanism, "235 2.7.0 Accepted"))
        self.assertIn(attempt["token"], self.issued_tokens())
        return attempt

    def assertSecretsNotLogged(self) -> None:
        """No secret, refresh token or issued access token in the
        helper's log or the maillog."""
        logs = self.env.helper.log() + self.env.postfix.log()
        for secret in [CLIENT_SECRET, REFRESH_TOKEN] + self.issued_tokens():
            self.assertNotIn(secret, logs)

    def assertDeferred(self, queue_id: str) -> re.Match:
        """Deferred with a 4.x.x status, still queued, nothing bounced
        and nothing delivered."""
        line = self.env.wait_for_status(queue_id, "deferred")
        self.assertRegex(line.group(0), r"dsn=4\.", self.env.diagnostics())
        self.assertIn(queue_id, [e["queue_id"]
                                 for e in self.env.postfix.queue_entries()])
        log = self.env.postfix.log()
        self.assertNotIn("status=bounced", log)
        self.assertNotIn("sender non-delivery notification", log)
        return line


class GoogleRelayTest(GoogleRelayTestCase):
    """A Google account relays through Gmail, with either mechanism."""

    def test_xoauth2_relays_with_google_refresh_token(self) -> None:
        """(a) provider google: form without scope and with the secret,
        no rotation, XOAUTH2 with the issued token, file unchanged."""
        self.start()
        before = self.refresh_before
        attempt = self.deliver("gmail xoauth2", "XOAUTH2")
        self.assertEqual(
            base64.b64decode(attempt["raw"]),
            f"user={GMAIL}\x01auth=Bearer {attempt['token']}\x01\x01"
            .encode())

        request = self.token_requests()[0]
        self.assertEqual((request["method"], request["path"],
                          request["status"]), ("POST", "/token", 200))
        self.assertTrue(request["content_type"].startswith(
            "application/x-www-form-urlencoded"))
        self.assertEqual(request["form"], {
            "grant_type": "refresh_token", "client_id": CLIENT_ID,
            "refresh_token": REFRESH_TOKEN,
            "client_secret": CLIENT_SECRET})
        self.assertEqual(sorted(request["response"]),
                         ["access_token", "expires_in", "scope",
                          "token_type"])
        self.assertEqual(request["response"]["scope"], GMAIL_SCOPE)

        # Google did not rotate: the file is as the operator wrote it.
        after = self.refresh_file.stat()
        self.assertEqual(self.refresh_file.read_text(), REFRESH_TOKEN + "\n")
        self.assertEqual((after.st_ino, after.st_mtime_ns),
                         (before.st_ino, before.st_mtime_ns))
        self.assertEqual(stat.S_IMODE(after.st_mode), 0o600)
        self.assertSecretsNotLogged()

    def test_oauthbearer_relays_with_mailbox_and_host(self) -> None:
        """(b) smtp_sasl_mechanism_filter = oauthbearer: the stand-in saw
        OAUTHBEARER, a= the mailbox, host= the relay host."""
        self.start("OAUTHBEARER")
        main_cf = (self.env.postfix.conf / "main.cf").read_text()
        self.assertEqual(re.findall(r"^smtp_sasl_mechanism_filter = .*$",
                                    main_cf, re.M),
                         ["smtp_sasl_mechanism_filter = oauthbearer"])
        attempt = self.deliver("gmail oauthbearer", "OAUTHBEARER")

        # Postfix's relay host is [127.0.0.1]:PORT, so its server name is
        # 127.0.0.1; Postfix passes no addresses, so no port= (plugin doc).
        self.assertEqual((attempt["cb_flag"], attempt["user"],
                          attempt["authzid_raw"], attempt["host"]),
                         ("n", GMAIL, GMAIL, "127.0.0.1"))
        self.assertEqual(
            base64.b64decode(attempt["raw"]),
            f"n,a={GMAIL},\x01host=127.0.0.1\x01auth=Bearer "
            f"{attempt['token']}\x01\x01".encode())
        self.assertNotIn("scope", self.token_requests()[0]["form"])
        self.assertSecretsNotLogged()


class GoogleRefusalTest(GoogleRelayTestCase):
    """Gmail refusing a token; Google refusing the refresh token."""

    def check_refused_token_replaced(self, mechanism: str) -> None:
        """(c) One message goes out with token T; the stand-in then
        invalidates T. The next message: error challenge, the plugin's
        answer for `mechanism`, deferral, token_rejected for T; after a
        flush it goes out once with a token fetched after the refusal."""
        self.start(mechanism)
        first = self.deliver(f"gmail {mechanism} first", mechanism)
        self.env.standins.invalidate_access_token(first["token"])

        message, queue_id = self.submit(f"gmail {mechanism} refused")
        line = self.assertDeferred(queue_id)
        self.assertIn("535-5.7.8 Username and Password not accepted",
                      line.group(0))
        refused = self.env.standins.auth_attempts()[-1]
        self.assertEqual((refused["mechanism"], refused["token"],
                          refused["reason"], refused["challenge"]),
                         (mechanism, first["token"], "token was invalidated",
                          ERROR_CHALLENGE))
        self.assertEqual((refused["challenge_reply_line"],
                          refused["challenge_reply_hex"]),
                         CHALLENGE_REPLY[mechanism])
        self.assertFalse(refused["hung_up"])
        self.assertEqual(self.received(message), [])

        # The plugin reported the challenge; the helper dropped T.
        self.env.postfix.wait_for_log(
            r"postfix/smtp\[\d+\]: warning: SASL authentication \w+: "
            rf"xoauth2: event=token-refused mailbox={re.escape(GMAIL)} "
            rf".*mech={mechanism}\b", 10)
        rejected = harness.wait_until(
            lambda: re.search(r"event=token_rejected .*$",
                              self.env.helper.log(), re.M),
            10, "the helper's token_rejected line")
        self.assertIn(f"token={token_hash(first['token'])}",
                      rejected.group(0))
        self.assertIn(f"mailbox={GMAIL}", rejected.group(0))

        # Flushed: delivered once, with a token fetched after the refusal.
        self.env.postfix.flush()
        self.wait_sent(queue_id)
        harness.wait_until(lambda: not self.env.postfix.queue_entries(), 10,
                           "an empty queue")
        copies = self.received(message)
        self.assertEqual(len(copies), 1, self.env.diagnostics())
        self.assertEqual(body_of(copies[0]["content"]), body_of(message))
        self.assertEqual(len(self.env.standins.messages()), 2)
        last = self.env.standins.auth_attempts()[-1]
        self.assertEqual((last["mechanism"], last["reply"]),
                         (mechanism, "235 2.7.0 Accepted"))
        self.assertNotEqual(last["token"], first["token"])
        fetched = [r for r in self.token_requests()
                   if r["status"] == 200
                   and r["response"]["access_token"] == last["token"]]
        self.assertEqual(len(fetched), 1)
        self.assertGreater(fetched[0]["time"], refused["time"])
        self.assertSecretsNotLogged()

    def test_refused_xoauth2_token_replaced(self) -> None:
        """(c) XOAUTH2: empty reply to the challenge, fresh token."""
        self.check_refused_token_replaced("XOAUTH2")

    def test_refused_oauthbearer_token_replaced(self) -> None:
        """(c) OAUTHBEARER: 0x01 reply to the challenge, fresh token."""
        self.check_refused_token_replaced("OAUTHBEARER")

    def test_revoked_refresh_token_defers_and_needs_person(self) -> None:
        """(d) invalid_grant: deferred; the helper's log and status say a
        person must act and name the file to replace; the refresh token
        file is kept unchanged."""
        self.start(revoked=True)
        before = self.refresh_before
        _, queue_id = self.submit("gmail revoked")
        self.assertDeferred(queue_id)
        self.assertEqual(self.env.standins.messages(), [])

        request = self.token_requests()[0]
        self.assertEqual((request["status"], request["error"],
                          request["response"]["error_description"]),
                         (400, "invalid_grant",
                          "Token has been expired or revoked."))
        failed = harness.wait_until(
            lambda: re.search(r"level=warn event=token_fetch_failed .*$",
                              self.env.helper.log(), re.M),
            10, "the helper's token_fetch_failed line")
        for field in ("account=gmail", "class=needs-person",
                      "error=invalid_grant", "state=needs-attention"):
            self.assertIn(field, failed.group(0))
        fix = (f"Google refused the refresh token in {self.refresh_file}: "
               "invalid_grant (Token has been expired or revoked.); replace "
               "the file's content (mode 0600) with a new refresh token got "
               "with the desktop OAuth client of the account's client_id, "
               "as token-helper authorize cannot sign in Google accounts "
               "(see token-helper(8)); the helper retries when the file "
               "changes")
        self.assertIn(f'reason="{fix}"', failed.group(0))

        status = self.env.helper.command("status", "--json")
        self.assertEqual(status.returncode, 0, status.stderr)
        account = json.loads(status.stdout)["accounts"][0]
        self.assertEqual((account["name"], account["provider"],
                          account["state"], account["error_class"]),
                         ("gmail", "google", "needs-attention",
                          "needs-person"))
        # `status` shows the message's start: the file and the fix.
        self.assertTrue(fix.startswith(account["error"]), account["error"])
        self.assertIn(f"{self.refresh_file}: invalid_grant", account["error"])
        self.assertIn("desktop OAuth client", account["error"])

        # Never delete or rewrite the refresh token on invalid_grant.
        after = self.refresh_file.stat()
        self.assertEqual(self.refresh_file.read_text(), REFRESH_TOKEN + "\n")
        self.assertEqual((after.st_ino, after.st_mtime_ns,
                          stat.S_IMODE(after.st_mode)),
                         (before.st_ino, before.st_mtime_ns, 0o600))
        self.assertSecretsNotLogged()


if __name__ == "__main__":
    unittest.main()
