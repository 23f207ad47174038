"""Unit tests of the leak scan (tests/e2e/leak_scan.py): it must find a
planted secret in every form it claims to cover, at the right line, name
the kind and never the value, stay quiet on clean text, and a failing
scan run from a cleanup must fail the test (as RelayEnvironment.close()
does from addCleanup in every e2e and fault test). Also: the collectors
find the secrets in configurations and stand-in recordings, and the
harness's copy of a spawned command's output (harness._tee) is whole
while the caller reads its pipe as before.

No root, no processes, no network. Run: /usr/bin/python3 -m unittest -v
test_leak_scan (ctest e2e_leak_scan, label e2e).

What it deliberately does not do: start the relay chain (every e2e test
runs the scan for real in its cleanup).
"""

import base64
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest
import urllib.parse

import harness
import leak_scan

SECRET = "CANARY~secret+/=Zq7Wd3Kx"  # needs percent-encoding
# Escaped by JSON and by form encoding (the space); its base64 differs
# between the two alphabets.
REFRESH = 'rt.CANARY>>>???~~~"refresh token'
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.CANARY-access_token"
CLEAN_LOG = (
    "xoauth2-relay[42]: level=info event=token_fetched account=relay "
    "mailbox=relay@example.com token=sha256:0123456789ab expires_in=3599\n"
    "xoauth2-relay[42]: level=debug event=request peer_uid=0 "
    "client_id=11111111-2222-3333-4444-555555555555\n"
    "Jan  1 00:00:00 relay postfix/smtp[7]: 3F2A: to=<someone@example.org>"
    ", relay=127.0.0.1[127.0.0.1]:2525, status=sent (250 2.0.0 OK)\n")


def secret_set() -> leak_scan.SecretSet:
    """A client secret and an access token to look for."""
    secrets = leak_scan.SecretSet()
    secrets.add("client secret", SECRET)
    secrets.add("refresh token", REFRESH)
    secrets.add("access token", TOKEN)
    return secrets


def xoauth2_b64(token: str) -> str:
    """An XOAUTH2 initial response as sent on the wire."""
    blob = f"user=relay@example.com\x01auth=Bearer {token}\x01\x01"
    return base64.b64encode(blob.encode()).decode()


def b64(data: str, prefix: bytes = b"", encode=base64.b64encode) -> str:
    """`data` base64-encoded after `prefix` (which shifts its alignment)."""
    return encode(prefix + data.encode()).decode()


# form the leak takes, kind, text planted on line 2 of CLEAN_LOG
PLANTED = [
    ("raw", "client secret", f"secret={SECRET}"),
    ("percent-encoded", "client secret",
     "client_secret=" + urllib.parse.quote(SECRET, safe="")),
    ("percent-encoded", "client secret",
     "client_secret=CANARY~secret%2b%2f%3dZq7Wd3Kx"),
    ("form-encoded", "refresh token",
     "x=" + urllib.parse.quote_plus(REFRESH)),
    ("JSON-escaped", "refresh token", json.dumps({"rt": REFRESH})),
    ("base64@0", "client secret", b64(SECRET)),
    ("base64@1", "client secret", b64(SECRET, b"x")),
    ("base64@2", "client secret", b64(SECRET, b"xy")),
    ("base64url@0", "refresh token",
     b64(REFRESH, b"", base64.urlsafe_b64encode)),
    ("base64url@1", "refresh token",
     b64(REFRESH, b"?", base64.urlsafe_b64encode).rstrip("=")),
    ("base64url@2", "refresh token",
     b64(REFRESH, b"?!", base64.urlsafe_b64encode)),
]


class LeakScanTest(unittest.TestCase):
    """SecretSet.scan and LeakReport."""

    def test_clean_text_has_no_leak(self) -> None:
        """Logs with hashes, ids and mailboxes only: nothing found."""
        report = secret_set().scan_all({"helper log": CLEAN_LOG})
        self.assertEqual(report.leaks, [])
        self.assertEqual(report.failure(), "")
        report.check()

    def test_planted_secret_found_in_each_form(self) -> None:
        """Each form is found at its line, named by kind and form."""
        for form, kind, planted in PLANTED:
            with self.subTest(form=form, kind=kind):
                lines = CLEAN_LOG.splitlines()
                lines.insert(1, f"level=debug event=oops {planted} x=1")
                found = secret_set().scan("helper log",
                                          "\n".join(lines) + "\n")
                self.assertIn(leak_scan.Leak("helper log", 2, kind, form),
                              found)
                self.assertEqual({leak.line for leak in found}, {2})

    def test_token_inside_xoauth2_response_found(self) -> None:
        """A token inside a base64 initial response is found even when
        only the response was logged."""
        found = secret_set().scan("maillog", "AUTH XOAUTH2 "
                                  + xoauth2_b64(TOKEN) + "\n")
        self.assertEqual([(leak.kind, leak.line) for leak in found],
                         [("access token", 1)])

    def test_failure_names_kind_source_line_not_value(self) -> None:
        """The message says what leaked where, never the value."""
        report = secret_set().scan_all({
            "output of `token-helper status` (stdout)":
                "ok\n\nrefresh " + urllib.parse.quote_plus(SECRET) + "\n"})
        message = report.failure()
        self.assertIn("client secret (percent-encoded) in output of "
                      "`token-helper status` (stdout) at line 3", message)
        for form, text in leak_scan.forms(SECRET):
            self.assertNotIn(text, message, form)
        with self.assertRaises(AssertionError):
            report.check()

    def test_short_value_is_a_problem_not_ignored(self) -> None:
        """A value too short to scan for makes the scan incomplete."""
        secrets = leak_scan.SecretSet()
        secrets.add("refresh token", "rt.short")
        report = secrets.scan_all({"helper log": CLEAN_LOG})
        self.assertEqual(report.leaks, [])
        self.assertIn("refresh token of 8 characters", report.failure())

    def test_failing_scan_in_cleanup_fails_the_test(self) -> None:
        """A scan raising from addCleanup (as RelayEnvironment.close()
        does) turns a passing test into a failed one."""
        report = secret_set().scan_all({"helper log": SECRET})

        class Inner(unittest.TestCase):
            def test_passes(self) -> None:
                self.addCleanup(report.check)

        result = unittest.TestResult()
        Inner("test_passes").run(result)
        self.assertFalse(result.wasSuccessful())
        self.assertIn("client secret (raw) in helper log at line 1",
                      (result.failures + result.errors)[0][1])


class WhereSecretsSitTest(unittest.TestCase):
    """The collectors find every secret in configurations and the
    stand-ins' recordings, so the scan has them to look for."""

    def test_state_secrets(self) -> None:
        """Forms, answers, device codes and AUTH attempts."""
        state = {
            "token_requests": [
                {"form": {"client_secret": "form-secret-CANARY",
                          "client_id": "not-a-secret-client-id"},
                 "response": {"access_token": "at-CANARY-000111",
                              "refresh_token": "rt-CANARY-000111",
                              "expires_in": 3599}},
                {"form": {"device_code": "DAQ.device-CANARY"},
                 "response": {"error": "authorization_pending"}}],
            "device_codes": [{"device_code": "DAQ.device-CANARY",
                              "user_code": "ABCD1234"}],
            "smtp_sessions": [{"auth": [
                {"mechanism": "OAUTHBEARER", "token": "at-CANARY-000111",
                 "raw": xoauth2_b64("at-CANARY-000111")},
                {"mechanism": "LOGIN", "user": "relay@example.com"}]}]}
        found = set(leak_scan.standin_state_secrets(state))
        self.assertLessEqual({
            ("client secret", "form-secret-CANARY"),
            ("access token", "at-CANARY-000111"),
            ("refresh token", "rt-CANARY-000111"),
            ("device code", "DAQ.device-CANARY"),
            ("OAUTHBEARER initial response",
             xoauth2_b64("at-CANARY-000111"))}, found)
        self.assertNotIn("not-a-secret-client-id", {v for _, v in found})
        self.assertNotIn("ABCD1234", {v for _, v in found})

    def test_configuration_secrets(self) -> None:
        """Inline secrets, secret files, a PEM private key's body and
        the proxy URL's password."""
        with tempfile.TemporaryDirectory() as tmp:
            key = pathlib.Path(tmp, "app.key")
            key.write_text("-----BEGIN PRIVATE KEY-----\n" + "A" * 64
                           + "\n" + "B" * 20 + "\n-----END PRIVATE KEY-----\n")
            refresh = pathlib.Path(tmp, "user.refresh")
            refresh.write_text("rt.CANARY-on-disk\n")
            config = {
                "proxy": "http://relay:pr%2Fxy-CANARY@127.0.0.1:3128",
                "accounts": [{
                    "client_secret": "inline-CANARY-secret",
                    "refresh_token_file": str(refresh),
                    "private_key_file": str(key),
                    "client_secret_file": str(pathlib.Path(tmp, "gone"))}]}
            found = set(leak_scan.account_secrets(config))
        self.assertEqual(found, {
            ("proxy password", "pr/xy-CANARY"),
            ("client secret", "inline-CANARY-secret"),
            ("refresh token", "rt.CANARY-on-disk"),
            ("private key", "A" * 64 + "B" * 20),
            ("private key", "A" * 64), ("private key", "B" * 20)})
        registrations = {
            "apps": [{"client_secret": "app-CANARY-secret"},
                     {"client_secret": None}],
            "refresh_tokens": [{"refresh_token": "rt.CANARY-registered"}],
            "google": {"clients": [{"client_secret": "GOCSPX-CANARY"}],
                       "refresh_tokens": [{"refresh_token": "1//CANARY"}]}}
        self.assertEqual(
            set(leak_scan.standin_config_secrets(registrations)),
            {("client secret", "app-CANARY-secret"),
             ("refresh token", "rt.CANARY-registered"),
             ("client secret", "GOCSPX-CANARY"),
             ("refresh token", "1//CANARY")})


CHILD = ("import sys\n"
         "sys.stdout.write('user code ABCD\\n'); sys.stdout.flush()\n"
         "sys.stdin.readline()\n"
         "sys.stdout.write('x' * 200000); sys.stderr.write('done')\n")


class SpawnCopyTest(unittest.TestCase):
    """harness._tee, behind TokenHelper.spawn(): the caller reads what it
    always read, and the leak scan gets all of it, even what the caller
    left unread after closing its end."""

    def spawn(self) -> tuple[subprocess.Popen, list]:
        """CHILD with both outputs copied; returns it and the copies."""
        proc = subprocess.Popen([sys.executable, "-c", CHILD],
                                stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        copies = []
        for stream in ("stdout", "stderr"):
            copies.append(harness._Recording(stream))
            setattr(proc, stream, harness._tee(getattr(proc, stream),
                                               copies[-1]))
        return proc, copies

    def test_caller_reads_everything_and_copy_is_whole(self) -> None:
        """os.read on the pipe, then communicate(), as test_grants does."""
        proc, copies = self.spawn()
        first = os.read(proc.stdout.fileno(), 100).decode()
        self.assertEqual(first, "user code ABCD\n")
        out, err = proc.communicate("go\n", timeout=20)
        self.assertEqual((len(out), err), (200000, "done"))
        self.assertEqual(copies[0].text(), first + out)
        self.assertEqual(copies[1].text(), "done")

    def test_copy_goes_on_after_caller_closes(self) -> None:
        """A caller that stops reading does not lose the copy."""
        proc, copies = self.spawn()
        proc.stdout.close()
        proc.stdin.write("go\n")
        proc.stdin.close()
        self.assertEqual(proc.wait(20), 0)
        self.assertEqual(len(copies[0].text()), 15 + 200000)
        self.assertTrue(copies[0].complete())


if __name__ == "__main__":
    unittest.main()
