"""Tests of the Office 365 stand-ins themselves, against the reference.

What it is for: the e2e suite trusts the stand-ins to behave like
Microsoft. These tests pin that behaviour down byte for byte where
/work/shared/reference/office365-smtp-oauth.md gives bytes: token endpoint
success and error bodies (F06 scope, public vs confidential client F12,
rotating refresh tokens F04, tenant mismatch F05, invalid_client 401),
certificate client assertions (each check of the verifier, case by case),
the device code flow and its control hooks, injected faults, and the SMTP
dialogue (greeting, no AUTH before TLS,
XOAUTH2 on the AUTH line and after an empty 334, immediate 535 5.7.3,
530 5.7.57, LOGIN refused, exact message storage).

One stand-in process serves each class (setUpClass/addClassCleanup);
no root needed. Keys and certificates are made at test time.
Run: /usr/bin/python3 -m unittest -v test_o365 (here).

What it deliberately does not do: test Postfix or our binaries.
"""

import base64
import datetime
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
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from o365 import DEFAULT_CONFIG  # noqa: E402
from standin_assertion import JWT_BEARER, thumbprint_s256  # noqa: E402
from standin_device import DeviceFlows, DeviceSettings  # noqa: E402

CONFIDENTIAL, PUBLIC = DEFAULT_CONFIG["apps"]
TENANT = CONFIDENTIAL["tenant"]
APP_SCOPE = "https://outlook.office365.com/.default"
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"


class StandinTest(unittest.TestCase):
    """One running o365.py with its default configuration."""

    @classmethod
    def standin_config(cls):
        """The stand-in configuration; None for its default."""
        return None

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = pathlib.Path(tempfile.mkdtemp(prefix="xoauth2-standin-"))
        cls.addClassCleanup(shutil.rmtree, cls.dir, True)
        args = ["/usr/bin/python3", str(HERE / "o365.py"), "--state-dir",
                str(cls.dir)]
        config = cls.standin_config()
        if config is not None:
            (cls.dir / "config.json").write_text(json.dumps(config))
            args += ["--config", str(cls.dir / "config.json")]
        cls.proc = subprocess.Popen(args, stderr=subprocess.PIPE)
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

    def test_padded_answer_has_exact_size_and_a_working_token(self) -> None:
        """pad_to_bytes: a real token in a body of exactly N bytes; a size
        below the natural body is a 500; a size that is no number is a
        400 from the control API."""
        for size in (4096, 65536, 65537):
            with self.subTest(size=size):
                self.control("POST", "/token/fault",
                             {"pad_to_bytes": size, "count": 1})
                token = self.app_token()
                record = self.control("GET", "/state")["token_requests"][-1]
                self.assertEqual(record["response_bytes"], size)
                self.assertEqual(record["response"]["access_token"], token)
        self.control("POST", "/token/fault", {"pad_to_bytes": 10,
                                              "count": 1})
        status, _ = self.token({"grant_type": "client_credentials"})
        self.assertEqual(status, 500)
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.control("POST", "/token/fault", {"pad_to_bytes": "big"})
        self.assertEqual(caught.exception.code, 400)


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


CERT_APP = "22222222-3333-4444-5555-666666666666"


def _b64url(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """A self-signed certificate for `key`, valid today."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))


class ClientAssertionTest(StandinTest):
    """Certificate client credentials: every check of the verifier."""

    @classmethod
    def standin_config(cls) -> dict:
        """One app registered with a certificate made here."""
        cls.key = rsa.generate_private_key(public_exponent=65537,
                                           key_size=2048)
        cls.other_key = rsa.generate_private_key(public_exponent=65537,
                                                 key_size=2048)
        cls.cert = _self_signed(cls.key)
        pem = cls.cert.public_bytes(serialization.Encoding.PEM).decode()
        return {"apps": [{"tenant": TENANT, "client_id": CERT_APP,
                          "client_secret": None, "cloud": "global",
                          "certificates": [pem],
                          "send_as": ["relay@example.com"]}]}

    def url(self) -> str:
        """The token URL a client asks (the assertion's audience)."""
        return (f"https://127.0.0.1:{self.ready['token_port']}/{TENANT}"
                "/oauth2/v2.0/token")

    def assertion(self, header: dict = None, claims: dict = None,
                  alg: str = "PS256", salt: int = 32, key=None) -> str:
        """A signed JWT; `header`/`claims` entries override (None drops)."""
        now = int(time.time())
        head = {"alg": alg, "typ": "JWT",
                "x5t#S256": thumbprint_s256(self.cert)}
        body = {"aud": self.url(), "iss": CERT_APP, "sub": CERT_APP,
                "jti": str(uuid.uuid4()), "nbf": now, "iat": now,
                "exp": now + 600}
        head = {k: v for k, v in dict(head, **(header or {})).items()
                if v is not None}
        body = {k: v for k, v in dict(body, **(claims or {})).items()
                if v is not None}
        signed = ".".join(_b64url(json.dumps(part).encode())
                          for part in (head, body))
        pad = (padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                           salt_length=salt)
               if alg.startswith("PS") else padding.PKCS1v15())
        signature = (key or self.key).sign(signed.encode(), pad,
                                           hashes.SHA256())
        return f"{signed}.{_b64url(signature)}"

    def present(self, assertion: str, **extra) -> tuple[int, dict, dict]:
        """Client credentials with `assertion`: status, body, outcome."""
        form = {"grant_type": "client_credentials", "client_id": CERT_APP,
                "scope": APP_SCOPE, "client_assertion_type": JWT_BEARER,
                "client_assertion": assertion, **extra}
        status, body = self.token({k: v for k, v in form.items()
                                   if v is not None})
        outcome = self.control("GET", "/state")["assertions"][-1]
        return status, body, outcome

    def test_valid_assertions_accepted(self) -> None:
        """PS256 and RS256 with every claim right: 200, recorded as
        verified with their header."""
        for alg in ("PS256", "RS256"):
            with self.subTest(alg):
                status, body, outcome = self.present(
                    self.assertion(alg=alg))
                self.assertEqual(status, 200, body)
                self.assertTrue(outcome["verified"])
                self.assertEqual(outcome["header"]["alg"], alg)

    def test_replayed_jti_refused(self) -> None:
        """The same assertion twice: the second is a replay."""
        assertion = self.assertion()
        self.assertEqual(self.present(assertion)[0], 200)
        status, body, outcome = self.present(assertion)
        self.assertEqual((status, body["error"], outcome["reason"]),
                         (401, "invalid_client", "replay"))

    def test_bad_assertions_refused(self) -> None:
        """Table: what is wrong -> 401 invalid_client, AADSTS, reason."""
        now = int(time.time())
        url = self.url()
        cases = [
            ("PSS salt 20", dict(salt=20), 700027, "signature"),
            ("signed by another key", dict(key=self.other_key), 700027,
             "signature"),
            ("unknown x5t#S256",
             dict(header={"x5t#S256": _b64url(b"x" * 32)}), 700027,
             "key_not_found"),
            ("extra header kid", dict(header={"kid": "k"}), 50027,
             "malformed"),
            ("no x5t#S256", dict(header={"x5t#S256": None}), 50027,
             "malformed"),
            ("alg HS256", dict(header={"alg": "HS256"}), 700027, "alg"),
            ("typ JOSE", dict(header={"typ": "JOSE"}), 50027, "malformed"),
            ("aud of another tenant",
             dict(claims={"aud": url.replace(TENANT, "common")}), 700212,
             "audience"),
            ("aud with trailing slash", dict(claims={"aud": url + "/"}),
             700212, "audience"),
            ("iss not the client", dict(claims={"iss": "x"}), 700021,
             "issuer"),
            ("sub not the client", dict(claims={"sub": "x"}), 700021,
             "issuer"),
            ("expired", dict(claims={"exp": now - 1}), 700024, "time"),
            ("not yet valid", dict(claims={"nbf": now + 60}), 700024,
             "time"),
            ("lifetime over 600 s",
             dict(claims={"iat": now, "exp": now + 601}), 700024, "time"),
            ("no jti", dict(claims={"jti": None}), 50027, "malformed"),
        ]
        for name, args, code, reason in cases:
            with self.subTest(name):
                status, body, outcome = self.present(self.assertion(**args))
                self.assertEqual((status, body["error"], body["error_codes"],
                                  outcome["verified"], outcome["reason"]),
                                 (401, "invalid_client", [code], False,
                                  reason))

    def test_assertion_form_mistakes(self) -> None:
        """Wrong assertion type; a secret next to the assertion; a
        secret instead of it."""
        status, body, outcome = self.present(
            self.assertion(), client_assertion_type="jwt")
        self.assertEqual((status, body["error_codes"], outcome["reason"]),
                         (401, [7000216], "assertion_type"))
        status, body, _ = self.present(self.assertion(), client_secret="s")
        self.assertEqual((status, body["error"]), (400, "invalid_request"))
        status, body = self.token({
            "grant_type": "client_credentials", "client_id": CERT_APP,
            "scope": APP_SCOPE, "client_secret": "s"})
        self.assertEqual((status, body["error_codes"]), (401, [7000215]))


class DeviceCodeTest(StandinTest):
    """POST .../devicecode, polls, and the control hooks."""

    @classmethod
    def standin_config(cls) -> dict:
        """The default registrations with a 1 s polling interval."""
        return dict(DEFAULT_CONFIG, device_flow={"interval": 1})

    def start_flow(self, scope: str = SMTP_SCOPE) -> tuple[int, dict]:
        """POSTs the devicecode request for the public app."""
        request = urllib.request.Request(
            f"https://127.0.0.1:{self.ready['token_port']}/{TENANT}"
            "/oauth2/v2.0/devicecode", data=urllib.parse.urlencode({
                "client_id": PUBLIC["client_id"], "scope": scope}).encode())
        try:
            with urllib.request.urlopen(request, context=self.tls,
                                        timeout=10) as answer:
                return answer.status, json.load(answer)
        except urllib.error.HTTPError as err:
            return err.code, json.load(err)

    def poll(self, device_code: str) -> tuple[int, dict]:
        """One poll of the token endpoint with the device code grant."""
        return self.token({
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": PUBLIC["client_id"], "device_code": device_code})

    def act(self, action: str, user_code: str, **body) -> None:
        """A control hook for the code."""
        self.control("POST", f"/device/{action}",
                     dict(body, user_code=user_code))

    def test_devicecode_answer(self) -> None:
        """Fields in Microsoft's order; a scope without SMTP.Send is
        invalid_scope."""
        status, body = self.start_flow()
        self.assertEqual(status, 200)
        self.assertEqual(list(body), ["user_code", "device_code",
                                      "verification_uri", "expires_in",
                                      "interval", "message"])
        self.assertEqual((body["interval"], body["verification_uri"]),
                         (1, "https://microsoft.com/devicelogin"))
        self.assertIn(body["user_code"], body["message"])
        status, body = self.start_flow("offline_access")
        self.assertEqual((status, body["error"]), (400, "invalid_scope"))

    def test_pending_slow_down_approve_redeemed(self) -> None:
        """pending, slow_down on request, then tokens for the approved
        mailbox (a working refresh token), then already redeemed."""
        code = self.start_flow()[1]
        self.assertEqual(self.poll(code["device_code"])[1]["error"],
                         "authorization_pending")
        self.act("slow-down", code["user_code"])
        self.assertEqual(self.poll(code["device_code"])[1]["error"],
                         "slow_down")
        self.act("approve", code["user_code"], mailbox="user@example.com")
        status, body = self.poll(code["device_code"])
        self.assertEqual(status, 200, body)
        status, again = self.token({
            "grant_type": "refresh_token", "client_id": PUBLIC["client_id"],
            "refresh_token": body["refresh_token"], "scope": SMTP_SCOPE})
        self.assertEqual(status, 200, again)
        self.assertEqual(self.poll(code["device_code"])[1]["error_codes"],
                         [54005])

    def test_stops(self) -> None:
        """Declined, expired and unknown codes end the flow."""
        for action, error in (("decline", "authorization_declined"),
                              ("expire", "expired_token")):
            with self.subTest(action):
                code = self.start_flow()[1]
                self.act(action, code["user_code"])
                status, body = self.poll(code["device_code"])
                self.assertEqual((status, body["error"]), (400, error))
        self.assertEqual(self.poll("nope")[1]["error"],
                         "bad_verification_code")
        with self.assertRaises(urllib.error.HTTPError) as caught:
            self.act("approve", "NOSUCHCODE", mailbox="user@example.com")
        self.assertEqual(caught.exception.code, 400)

    def test_auto_approval_after_pending_polls(self) -> None:
        """With auto_approve_after_polls=2 the third poll signs in."""
        flows = DeviceFlows(DeviceSettings(
            interval=1, auto_approve_after_polls=2,
            auto_approve_mailbox="user@example.com"))
        code = flows.start(PUBLIC["client_id"], TENANT, SMTP_SCOPE)
        got = [flows.poll(code["device_code"], PUBLIC["client_id"])
               for _ in range(3)]
        self.assertEqual([g.status for g in got],
                         ["pending", "pending", "approved"])
        self.assertEqual(got[2].code.mailbox, "user@example.com")


if __name__ == "__main__":
    unittest.main()
