"""Tests of the Office 365 stand-ins themselves, against the reference.

What it is for: the e2e suite trusts the stand-ins to behave like
Microsoft. These tests pin that behaviour down byte for byte where
/work/shared/reference/office365-smtp-oauth.md gives bytes: token endpoint
success and error bodies (F06 scope, public vs confidential client F12,
rotating refresh tokens F04, tenant mismatch F05, invalid_client 401),
injected faults, and the SMTP dialogue (greeting, no AUTH before TLS,
XOAUTH2 on the AUTH line and after an empty 334, immediate 535 5.7.3,
530 5.7.57, LOGIN refused, exact message storage).

One stand-in process serves the whole class (setUpClass/addClassCleanup);
no root needed. Run: /usr/bin/python3 -m unittest -v test_o365 (here).

What it deliberately does not do: test Postfix or our binaries.
"""

import base64
import json
import pathlib
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from o365 import DEFAULT_CONFIG  # noqa: E402

CONFIDENTIAL, PUBLIC = DEFAULT_CONFIG["apps"]
TENANT = CONFIDENTIAL["tenant"]
APP_SCOPE = "https://outlook.office365.com/.default"
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"


class StandinTest(unittest.TestCase):
    """One running o365.py with its default configuration."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = pathlib.Path(tempfile.mkdtemp(prefix="xoauth2-standin-"))
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        cls.proc = subprocess.Popen(
            ["/usr/bin/python3", str(HERE / "o365.py"), "--state-dir",
             str(cls.dir)], stderr=subprocess.PIPE)
        cls.addClassCleanup(cls.proc.wait, 10)
        cls.addClassCleanup(cls.proc.terminate)
        deadline = time.monotonic() + 20
        while not (cls.dir / "ready.json").exists():
            if time.monotonic() > deadline or cls.proc.poll() is not None:
                raise AssertionError("stand-ins did not start")
            time.sleep(0.05)
        cls.ready = json.loads((cls.dir / "ready.json").read_text())
        cls.tls = ssl.create_default_context(cafile=cls.ready["ca_file"])

    def token(self, form: dict, tenant: str = TENANT) -> tuple[int, dict]:
        """POSTs a form to the token endpoint; returns status and JSON."""
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.ready['token_port']}/{tenant}"
            "/oauth2/v2.0/token",
            data=urllib.parse.urlencode(form).encode())
        try:
            with urllib.request.urlopen(request, context=self.tls,
                                        timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def control(self, method: str, path: str, body=None) -> dict:
        """One control API call."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ready['control_port']}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def app_token(self) -> str:
        """A valid client-credentials access token for relay@example.com."""
        status, body = self.token({
            "grant_type": "client_credentials",
            "client_id": CONFIDENTIAL["client_id"],
            "client_secret": CONFIDENTIAL["client_secret"],
            "scope": APP_SCOPE})
        self.assertEqual(status, 200, body)
        return body["access_token"]


class TokenEndpointTest(StandinTest):
    """POST /{tenant}/oauth2/v2.0/token."""

    def test_client_credentials_success_body(self) -> None:
        """Fields and order of a success body; no refresh token."""
        self.app_token()
        body = self.control("GET", "/state")["token_requests"][-1]
        self.assertEqual(list(body["response"]),
                         ["token_type", "scope", "expires_in",
                          "ext_expires_in", "access_token"])
        self.assertEqual(body["form"]["client_secret"],
                         CONFIDENTIAL["client_secret"])

    def test_errors_by_case(self) -> None:
        """Table: request -> HTTP status, error, AADSTS number."""
        cc = {"grant_type": "client_credentials",
              "client_id": CONFIDENTIAL["client_id"],
              "client_secret": CONFIDENTIAL["client_secret"],
              "scope": APP_SCOPE}
        rt = {"grant_type": "refresh_token",
              "client_id": PUBLIC["client_id"], "refresh_token": "rt.user",
              "scope": SMTP_SCOPE}
        cases = [
            ("no scope on refresh (F06)", dict(rt, scope=None), TENANT,
             400, "invalid_request", 900144),
            ("wrong secret", dict(cc, client_secret="x"), TENANT,
             401, "invalid_client", 7000215),
            ("no secret, confidential", dict(cc, client_secret=None),
             TENANT, 401, "invalid_client", 7000218),
            ("secret sent by public client (F12)",
             dict(rt, client_secret="x"), TENANT, 401, "invalid_client",
             700025),
            ("graph scope", dict(cc, scope="https://graph.microsoft.com/"
                                 ".default"), TENANT, 400,
             "invalid_resource", 500011),
            ("unknown refresh token", dict(rt, refresh_token="nope"),
             TENANT, 400, "invalid_grant", 70000),
            ("other tenant (F05)", rt, "organizations", 400,
             "invalid_grant", 7000012),
            ("unknown app", dict(cc, client_id="nobody"), TENANT, 400,
             "unauthorized_client", 700016),
        ]
        for name, form, tenant, status, error, code in cases:
            with self.subTest(name):
                form = {k: v for k, v in form.items() if v is not None}
                got_status, body = self.token(form, tenant)
                self.assertEqual((got_status, body["error"],
                                  body["error_codes"]),
                                 (status, error, [code]))
                self.assertRegex(
                    body["error_description"],
                    rf"^AADSTS{code}: .*\r\nTrace ID: {body['trace_id']}"
                    rf"\r\nCorrelation ID: {body['correlation_id']}"
                    rf"\r\nTimestamp: {body['timestamp']}$")

    def test_refresh_rotates_and_old_token_stays_valid(self) -> None:
        """F04: every refresh answers a new refresh token; old ones work."""
        form = {"grant_type": "refresh_token",
                "client_id": PUBLIC["client_id"],
                "refresh_token": "rt.user", "scope": SMTP_SCOPE}
        first = self.token(form)[1]
        second = self.token(dict(form, refresh_token=first["refresh_token"]))
        again = self.token(form)
        self.assertNotEqual(first["refresh_token"], "rt.user")
        self.assertNotEqual(second[1]["refresh_token"],
                            first["refresh_token"])
        self.assertEqual(again[0], 200)

    def test_injected_fault_then_recovery(self) -> None:
        """A counted fault answers once (HTML 500), then normal service."""
        self.control("POST", "/token/fault", {
            "status": 500, "body": "<html>busy</html>", "count": 1})
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.ready['token_port']}/{TENANT}"
            "/oauth2/v2.0/token", data=b"grant_type=client_credentials")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, context=self.tls, timeout=10)
        self.assertEqual((caught.exception.code, caught.exception.read()),
                         (500, b"<html>busy</html>"))
        self.app_token()


class SubmissionTest(StandinTest):
    """The SMTP stand-in."""

    def connect(self) -> smtplib.SMTP:
        """A connection after EHLO, STARTTLS, EHLO."""
        smtp = smtplib.SMTP("127.0.0.1", self.ready["smtp_port"],
                            timeout=10)
        self.addCleanup(smtp.close)
        smtp.ehlo("relay.example.net")
        self.assertNotIn("auth", smtp.esmtp_features)
        smtp.starttls(context=self.tls)
        smtp.ehlo("relay.example.net")
        self.assertEqual(smtp.esmtp_features["auth"], " LOGIN XOAUTH2")
        return smtp

    def test_greeting_and_tls_first(self) -> None:
        """The Office 365 banner; MAIL before STARTTLS refused."""
        smtp = smtplib.SMTP(timeout=10)
        self.addCleanup(smtp.close)
        code, banner = smtp.connect("127.0.0.1", self.ready["smtp_port"])
        self.assertEqual(code, 220)
        self.assertRegex(banner.decode(),
                         r"^\S+\.outlook\.office365\.com Microsoft ESMTP "
                         r"MAIL Service ready at \w{3}, ")
        smtp.ehlo("relay.example.net")
        self.assertEqual(smtp.docmd("MAIL FROM:<relay@example.com>")[0],
                         530)

    def test_xoauth2_both_styles_and_refusals(self) -> None:
        """AUTH line and empty 334 accepted; a bad token gets 535 5.7.3
        at once; MAIL without AUTH gets 530 5.7.57."""
        token = self.app_token()
        good = base64.b64encode(
            f"user=relay@example.com\x01auth=Bearer {token}\x01\x01"
            .encode()).decode()
        bad = base64.b64encode(
            b"user=relay@example.com\x01auth=Bearer forged\x01\x01").decode()
        smtp = self.connect()
        self.assertEqual(smtp.docmd("MAIL FROM:<relay@example.com>")[1][:6],
                         b"5.7.57")
        code, text = smtp.docmd("AUTH XOAUTH2 " + bad)
        self.assertEqual((code, text[:35]),
                         (535, b"5.7.3 Authentication unsuccessful ["))
        self.assertEqual(smtp.docmd("AUTH XOAUTH2 " + good),
                         (235, b"2.7.0 Authentication successful"))
        other = self.connect()
        self.assertEqual(other.docmd("AUTH XOAUTH2"), (334, b""))
        self.assertEqual(other.docmd(good)[0], 235)

    def test_login_refused(self) -> None:
        """Basic authentication is off."""
        smtp = self.connect()
        self.assertEqual(smtp.docmd("AUTH LOGIN")[0], 334)
        self.assertEqual(smtp.docmd("cmVsYXk=")[0], 334)
        code, text = smtp.docmd("cGFzcw==")
        self.assertEqual((code, text[:7]), (535, b"5.7.139"))

    def test_message_stored_exactly(self) -> None:
        """DATA bytes (dot-unstuffed) and the authentication are stored."""
        token = self.app_token()
        smtp = self.connect()
        smtp.docmd("AUTH XOAUTH2 " + base64.b64encode(
            f"user=relay@example.com\x01auth=Bearer {token}\x01\x01"
            .encode()).decode())
        content = b"Subject: x\r\n\r\n.dot\r\n\xc3\xa9\r\n"
        smtp.sendmail("relay@example.com", ["a@example.org"], content)
        stored = sorted((self.dir / "messages").glob("*.json"))[-1]
        meta = json.loads(stored.read_text())
        self.assertEqual(pathlib.Path(meta["eml"]).read_bytes(), content)
        self.assertEqual(meta["auth"]["mailbox"], "relay@example.com")
        self.assertEqual(meta["auth"]["style"], "initial-response")


if __name__ == "__main__":
    unittest.main()
