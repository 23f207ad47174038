"""Tests of the Google and Gmail stand-ins themselves.

What it is for: tests/e2e/test_google.py trusts standin_google.py (POST
/token) and gmail_smtp.py (the "gmail" SMTP persona) to behave like
Google. These tests pin that down: the token endpoint's answers, table
driven (success body without a refresh token, invalid_client 401,
invalid_grant "Token has been expired or revoked." for unknown and
revoked refresh tokens, malformed requests), and the SMTP dialogue byte
for byte where the reference gives bytes (greeting, EHLO before and after
STARTTLS, the AUTH line, OAUTHBEARER with =2C/=3D in the authzid, the
error challenge, the client's recorded reply and the two-line 535).

One stand-in process for the module (setUpModule/tearDownModule); no
root needed. Run: /usr/bin/python3 -m unittest -v test_google_standin.

What it deliberately does not do: test Postfix or our binaries.
"""

import base64
import json
import pathlib
import shutil
import smtplib
import socket
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
CLIENT = "42-e2e.apps.googleusercontent.com"
SECRET = "GOCSPX-a~b+/=c"
MAILBOX = "a,b=c@gmail.example"  # needs =2C and =3D in OAUTHBEARER
CONFIG = {
    "smtp_persona": "gmail", "apps": [],
    "google": {
        "clients": [{"client_id": CLIENT, "client_secret": SECRET}],
        "refresh_tokens": [
            {"refresh_token": "1//live", "client_id": CLIENT,
             "mailbox": MAILBOX},
            {"refresh_token": "1//to-revoke", "client_id": CLIENT,
             "mailbox": MAILBOX},
            {"refresh_token": "1//revoked", "client_id": CLIENT,
             "mailbox": MAILBOX, "revoked": True}]}}
CHALLENGE = (b"334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUi"
             b"OiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==")
SERVER: dict = {}


def setUpModule() -> None:  # noqa: N802 (unittest API)
    """Starts one o365.py in the Gmail persona and waits for it."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="google-standin-"))
    (directory / "config.json").write_text(json.dumps(CONFIG))
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "o365.py"), "--state-dir",
         str(directory), "--config", str(directory / "config.json")])
    SERVER.update(dir=directory, proc=proc)
    deadline = time.monotonic() + 20
    while not (directory / "ready.json").exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            tearDownModule()
            raise RuntimeError("o365.py did not become ready")
        time.sleep(0.05)
    SERVER["ready"] = json.loads((directory / "ready.json").read_text())
    SERVER["tls"] = ssl.create_default_context(
        cafile=SERVER["ready"]["ca_file"])


def tearDownModule() -> None:  # noqa: N802 (unittest API)
    """Stops the stand-in and removes its directory."""
    proc = SERVER["proc"]
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    shutil.rmtree(SERVER["dir"], ignore_errors=True)


def control(method: str, path: str, body=None) -> dict:
    """One control API call."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{SERVER['ready']['control_port']}{path}",
        data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def token(form: dict) -> tuple[int, bytes]:
    """POST /token with `form`; (status, raw body)."""
    request = urllib.request.Request(
        f"https://127.0.0.1:{SERVER['ready']['token_port']}/token",
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, context=SERVER["tls"],
                                    timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def refresh(presented: str, **changes) -> dict:
    """A Google refresh request for `presented`, fields changed (None
    leaves a field out)."""
    form = {"grant_type": "refresh_token", "client_id": CLIENT,
            "client_secret": SECRET, "refresh_token": presented}
    form.update(changes)
    return {k: v for k, v in form.items() if v is not None}


def bearer_token() -> str:
    """A fresh access token for MAILBOX."""
    return json.loads(token(refresh("1//live"))[1])["access_token"]


class GoogleTokenEndpointTest(unittest.TestCase):
    """POST /token answers as Google's endpoint does."""

    def test_success_body(self) -> None:
        """Pretty JSON, no refresh_token, the Gmail scope, Bearer."""
        status, raw = token(refresh("1//live"))
        self.assertEqual(status, 200)
        body = json.loads(raw)
        self.assertEqual(raw, json.dumps(body, indent=2).encode() + b"\n")
        self.assertEqual(sorted(body), ["access_token", "expires_in",
                                        "scope", "token_type"])
        self.assertEqual((body["expires_in"], body["scope"],
                          body["token_type"]),
                         (3599, "https://mail.google.com/", "Bearer"))
        self.assertTrue(body["access_token"].startswith("ya29."))

    def test_errors(self) -> None:
        """Each refused request: status and exact error body."""
        revoked = ("invalid_grant", "Token has been expired or revoked.")
        cases = [
            ("wrong secret", refresh("1//live", client_secret="x"),
             401, ("invalid_client", "Unauthorized")),
            ("no secret", refresh("1//live", client_secret=None),
             401, ("invalid_client", "Unauthorized")),
            ("unknown client", refresh("1//live", client_id="nope"),
             401, ("invalid_client", "The OAuth client was not found.")),
            ("unknown refresh token", refresh("1//nope"), 400, revoked),
            ("revoked in config", refresh("1//revoked"), 400, revoked),
            ("no refresh token", refresh("1//live", refresh_token=None),
             400, ("invalid_request",
                   "Missing required parameter: refresh_token")),
            ("client credentials",
             refresh("1//live", grant_type="client_credentials"), 400,
             ("unsupported_grant_type",
              "Invalid grant_type: client_credentials")),
        ]
        for name, form, status, (error, description) in cases:
            with self.subTest(name):
                got_status, raw = token(form)
                self.assertEqual(got_status, status)
                self.assertEqual(json.loads(raw), {
                    "error": error, "error_description": description})

    def test_revoke_through_control_api(self) -> None:
        """POST /google/revoke: the token works, then invalid_grant."""
        self.assertEqual(token(refresh("1//to-revoke"))[0], 200)
        control("POST", "/google/revoke", {"refresh_token": "1//to-revoke"})
        status, raw = token(refresh("1//to-revoke"))
        self.assertEqual((status, json.loads(raw)["error"]),
                         (400, "invalid_grant"))
        self.assertIn("1//to-revoke", control("GET", "/state")[
            "google_revoked"])


class GmailSmtpTest(unittest.TestCase):
    """The Gmail SMTP persona's dialogue."""

    def connect(self) -> smtplib.SMTP:
        """A client after EHLO, STARTTLS, EHLO."""
        client = smtplib.SMTP("127.0.0.1", SERVER["ready"]["smtp_port"],
                              timeout=10)
        self.addCleanup(client.close)
        client.ehlo("client.example")
        self.assertIn(b"STARTTLS", client.ehlo_resp)
        self.assertNotIn(b"AUTH", client.ehlo_resp)
        client.starttls(context=SERVER["tls"])
        client.ehlo("client.example")
        return client

    def last_attempt(self) -> dict:
        """The most recent AUTH the stand-in recorded."""
        sessions = control("GET", "/state")["smtp_sessions"]
        return [a for s in sessions for a in s["auth"]][-1]

    def test_greeting_and_ehlo(self) -> None:
        """Greeting and the AUTH line after TLS, as smtp.gmail.com."""
        with socket.create_connection(
                ("127.0.0.1", SERVER["ready"]["smtp_port"]), 10) as raw:
            greeting = raw.makefile("rb").readline()
        self.assertRegex(greeting,
                         rb"^220 smtp\.gmail\.com ESMTP \S+ - gsmtp\r\n$")
        client = self.connect()
        self.assertEqual(client.ehlo_resp.split(b"\n"), [
            b"smtp.gmail.com at your service, [127.0.0.1]",
            b"SIZE 35882577", b"8BITMIME",
            b"AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH",
            b"ENHANCEDSTATUSCODES", b"PIPELINING"])

    def test_oauthbearer_escaped_authzid_accepted(self) -> None:
        """a=a=2Cb=3Dc@... is the mailbox a,b=c@...; 235 2.7.0."""
        bearer = bearer_token()
        blob = (b"n,a=a=2Cb=3Dc@gmail.example,\x01host=smtp.gmail.com"
                b"\x01port=587\x01auth=Bearer " + bearer.encode()
                + b"\x01\x01")
        client = self.connect()
        reply = client.docmd("AUTH", "OAUTHBEARER "
                             + base64.b64encode(blob).decode())
        self.assertEqual(reply, (235, b"2.7.0 Accepted"))
        attempt = self.last_attempt()
        self.assertEqual((attempt["user"], attempt["host"], attempt["port"]),
                         (MAILBOX, "smtp.gmail.com", "587"))

    def test_refused_token_error_challenge(self) -> None:
        """Invalidated token: exact challenge; the reply is recorded;
        then the two-line 535-5.7.8."""
        bearer = bearer_token()
        control("POST", "/token/invalidate", {"access_token": bearer})
        cases = [("XOAUTH2", f"user={MAILBOX}\x01auth=Bearer {bearer}"
                  "\x01\x01", "", ""),
                 ("OAUTHBEARER", f"n,a=a=2Cb=3Dc@gmail.example,\x01auth="
                  f"Bearer {bearer}\x01\x01", "AQ==", "01")]
        for mechanism, blob, answer, hex_reply in cases:
            with self.subTest(mechanism):
                client = self.connect()
                client.send(f"AUTH {mechanism} ".encode()
                            + base64.b64encode(blob.encode()) + b"\r\n")
                self.assertEqual(client.file.readline(), CHALLENGE + b"\r\n")
                client.send(answer.encode() + b"\r\n")
                code, text = client.getreply()
                self.assertEqual(code, 535)
                self.assertRegex(text, rb"^5\.7\.8 Username and Password not "
                                 rb"accepted\. For more information, go to\n"
                                 rb"5\.7\.8  https://support\.google\.com/"
                                 rb"mail/\?p=BadCredentials \S+ - gsmtp$")
                attempt = self.last_attempt()
                self.assertEqual((attempt["challenge_reply_line"],
                                  attempt["challenge_reply_hex"],
                                  attempt["reason"]),
                                 (answer + "\r\n", hex_reply,
                                  "token was invalidated"))


if __name__ == "__main__":
    unittest.main()
