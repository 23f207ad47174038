"""End-to-end tests of every grant a relay needs: each one fetches a token
from the Office 365 stand-ins and a message goes through real Postfix with
our plugin and token-helper (harness.RelayEnvironment, one per test).

What it checks:
  certificate      client credentials with a certificate (PS256, the
                   default, and RS256 via assertion_alg): the form carries
                   client_assertion_type and client_assertion and no
                   client_secret; the stand-in verified the JWT (header,
                   x5t#S256 of our certificate, signature, aud = the token
                   URL, iss = sub = client id, fresh jti, times); the
                   message is delivered. A certificate the app does not
                   know is refused (401 invalid_client, AADSTS700027) and
                   the message deferred, so the verifier is no rubber stamp.
  refresh, public  F04, F06, F12: no secret sent, scope sent, the rotated
                   refresh token is on disk (mode 0600 under umask 000)
                   before the token is used, and never in the helper's log
  refresh, secret  F12: a confidential client sends its secret
  device code      `token-helper authorize ACCOUNT` shows the user code,
                   keeps polling while pending, stores the issued refresh
                   token (0600) once the user approves, prints no token;
                   the daemon then relays with it. A declined sign-in exits
                   1 with a clear message and writes no file.

Keys and certificates are made at test time with python3-cryptography and
live in the test's temp dir. Waiting is polling with deadlines.

Run as root: /usr/bin/python3 -m unittest -v test_grants (from this
directory), with XOAUTH2_BUILD_DIR naming the build tree; ctest runs it as
e2e_grants (label e2e, tests/e2e/e2e.cmake).

What it deliberately does not do: test the helper's retry, caching or
device flow timing rules (unit tests do), or the stand-ins' verifier case
by case (tests/standins/test_o365.py does).
"""

import base64
import datetime
import hashlib
import os
import pathlib
import re
import select
import stat
import subprocess
import time
import unittest

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

import harness

CERT_CLIENT_ID = "22222222-3333-4444-5555-666666666666"
PUBLIC_CLIENT_ID = "66666666-7777-8888-9999-000000000000"
CONFIDENTIAL_CLIENT_ID = "77777777-8888-9999-aaaa-bbbbbbbbbbbb"
CONFIDENTIAL_SECRET = "Qz9~Rt+/=delegated_SECRET"  # test value
USER = "user@example.com"
FIRST_REFRESH_TOKEN = "rt.first-sign-in"  # test value
APP_SCOPE = "https://outlook.office365.com/.default"
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send offline_access"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
USER_CODE = re.compile(r"enter the code ([A-Z0-9]+)")


def make_certificate(directory: pathlib.Path,
                     name: str) -> tuple[str, pathlib.Path, pathlib.Path]:
    """A self-signed RSA 2048 certificate and its key (PEM, key 0600) as
    an app registration would hold them; returns the certificate's PEM
    and the two file paths."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder()
                   .subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    cert_file = directory / f"{name}.pem"
    key_file = directory / f"{name}.key"
    cert_file.write_bytes(pem)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as stream:
        stream.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return pem.decode(), cert_file, key_file


def x5t_s256(pem: str) -> str:
    """base64url (unpadded) SHA-256 of the certificate's DER."""
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(
        serialization.Encoding.DER)
    return base64.urlsafe_b64encode(
        hashlib.sha256(der).digest()).decode().rstrip("=")


def write_secret(path: pathlib.Path, value: str) -> None:
    """Writes a secret file with mode 0600."""
    path.write_text(value)
    path.chmod(0o600)


def read_until(proc: subprocess.Popen, pattern: re.Pattern,
               timeout: float) -> re.Match:
    """Reads `proc`'s stdout until `pattern` matches what was read, the
    process ends, or `timeout` passes (AssertionError)."""
    fd, seen = proc.stdout.fileno(), ""
    deadline = time.monotonic() + timeout
    while not (match := pattern.search(seen)):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"no /{pattern.pattern}/ on stdout "
                                 f"within {timeout}s: {seen!r}")
        chunk = os.read(fd, 4096).decode(errors="replace")
        if not chunk:
            raise AssertionError(f"exited {proc.wait()} before "
                                 f"/{pattern.pattern}/: {seen!r}; "
                                 f"{proc.stderr.read()}")
        seen += chunk
    return match


class GrantTestCase(unittest.TestCase):
    """A fresh RelayEnvironment per test, always cleaned up."""

    def setUp(self) -> None:
        self.env = harness.relay_environment_for(self)

    def token_url(self) -> str:
        """The stand-in token URL the helper must use (and sign)."""
        return (f"https://127.0.0.1:{self.env.standins.ready['token_port']}"
                f"/{harness.TENANT}/oauth2/v2.0/token")

    def token_requests(self, endpoint: str = "token") -> list[dict]:
        """What reached the stand-in's token (or devicecode) endpoint."""
        return [r for r in self.env.standins.state()["token_requests"]
                if r.get("endpoint") == endpoint]

    def deliver(self, mailbox: str, subject: str) -> dict:
        """Relays one message from `mailbox`; checks it arrived intact,
        authenticated with XOAUTH2 as `mailbox` with a token the stand-in
        endpoint issued; returns that AUTH attempt."""
        message, _ = harness.make_message(subject, mailbox=mailbox)
        queue_id = self.env.submit(message, sender=mailbox)
        try:
            self.env.wait_for_status(queue_id, "sent")
        except AssertionError as err:
            raise AssertionError(f"{err}{self.env.diagnostics()}") from err
        received = self.env.standins.messages()
        self.assertEqual(len(received), 1, self.env.diagnostics())
        self.assertEqual(received[0]["content"].replace(b"\r\n", b"\n")
                         .partition(b"\n\n")[2],
                         message.partition(b"\n\n")[2])
        self.assertEqual(received[0]["auth"]["mechanism"], "XOAUTH2")
        self.assertEqual(received[0]["auth"]["mailbox"], mailbox)
        attempt = self.env.standins.auth_attempts()[-1]
        issued = [r["response"]["access_token"]
                  for r in self.token_requests() if r["status"] == 200]
        self.assertIn(attempt["token"], issued)
        return attempt

    def assertNotInHelperLog(self, *secrets: str) -> None:
        """None of `secrets` appears in the helper's log."""
        log = self.env.helper.log()
        for secret in secrets:
            self.assertNotIn(secret, log)


class CertificateGrantTest(GrantTestCase):
    """Client credentials with a certificate instead of a secret."""

    def start_with_certificate(self, alg: str, registered: str = "") -> str:
        """Stand-ins whose cert app holds `registered` (default: the
        helper's own certificate) and a helper signing with `alg`;
        returns the helper's certificate PEM."""
        pem, cert_file, key_file = make_certificate(self.env.helper.dir,
                                                    "relay-app")
        apps = [{"tenant": harness.TENANT, "client_id": CERT_CLIENT_ID,
                 "client_secret": None, "cloud": "global",
                 "certificates": [registered or pem],
                 "send_as": [harness.MAILBOX]}]
        account = {"name": "relay", "mailbox": harness.MAILBOX,
                   "cloud": "global", "tenant": harness.TENANT,
                   "client_id": CERT_CLIENT_ID,
                   "grant": "client_credentials",
                   "certificate_file": str(cert_file),
                   "private_key_file": str(key_file)}
        if alg != "PS256":
            account["assertion_alg"] = alg
        self.env.start(standin_config={"apps": apps}, account=account)
        return pem

    def check_certificate_grant(self, alg: str) -> None:
        """The message goes through; the stand-in verified an `alg`
        assertion for our certificate and got no secret."""
        pem = self.start_with_certificate(alg)
        self.deliver(harness.MAILBOX, f"certificate {alg}")

        request = self.token_requests()[0]
        self.assertEqual(request["status"], 200, request.get("response"))
        self.assertEqual(sorted(request["form"]), [
            "client_assertion", "client_assertion_type", "client_id",
            "grant_type", "scope"])
        self.assertEqual(request["form"]["client_assertion_type"],
                         JWT_BEARER)
        self.assertEqual(request["form"]["scope"], APP_SCOPE)
        outcome = request["assertion"]
        self.assertTrue(outcome["verified"], outcome)
        self.assertFalse(outcome["client_secret_sent"])
        self.assertEqual(outcome["header"], {
            "alg": alg, "typ": "JWT", "x5t#S256": x5t_s256(pem)})
        claims = outcome["claims"]
        self.assertEqual((claims["aud"], claims["iss"], claims["sub"]),
                         (self.token_url(), CERT_CLIENT_ID, CERT_CLIENT_ID))
        self.assertLessEqual(claims["exp"] - claims["iat"], 600)
        self.assertNotInHelperLog(request["form"]["client_assertion"])

    def test_certificate_ps256_relays(self) -> None:
        """Default assertion_alg PS256: verified, no secret, delivered."""
        self.check_certificate_grant("PS256")

    def test_certificate_rs256_relays(self) -> None:
        """assertion_alg RS256: verified, no secret, delivered."""
        self.check_certificate_grant("RS256")

    def test_unregistered_certificate_refused_and_deferred(self) -> None:
        """The app holds another certificate: 401 invalid_client
        (AADSTS700027, key not found); the message is deferred."""
        other, _, _ = make_certificate(self.env.root, "other-app")
        self.start_with_certificate("PS256", registered=other)
        message, _ = harness.make_message("unknown certificate")
        queue_id = self.env.submit(message)
        line = self.env.wait_for_status(queue_id, "deferred")
        self.assertRegex(line.group(0), r"dsn=4\.")
        request = self.token_requests()[0]
        self.assertEqual((request["status"], request["error"],
                          request["error_code"]),
                         (401, "invalid_client", 700027))
        self.assertEqual((request["assertion"]["verified"],
                          request["assertion"]["reason"]),
                         (False, "key_not_found"))
        self.assertEqual(self.env.standins.messages(), [])


class RefreshTokenGrantTest(GrantTestCase):
    """Delegated refresh token grant, public and confidential clients."""

    def start_with_refresh_token(self, secret: str = "") -> pathlib.Path:
        """Stand-ins knowing FIRST_REFRESH_TOKEN for USER; a helper (run
        under umask 000) with that token on disk and, if `secret` is
        given, a client secret. Returns the refresh token file."""
        client_id = CONFIDENTIAL_CLIENT_ID if secret else PUBLIC_CLIENT_ID
        refresh_file = self.env.helper.dir / "user.refresh"
        write_secret(refresh_file, FIRST_REFRESH_TOKEN)
        account = {"name": "user", "mailbox": USER, "cloud": "global",
                   "tenant": harness.TENANT, "client_id": client_id,
                   "grant": "refresh_token",
                   "refresh_token_file": str(refresh_file)}
        if secret:
            write_secret(self.env.helper.dir / "user.secret", secret)
            account["client_secret_file"] = str(self.env.helper.dir /
                                                "user.secret")
        standins = {
            "apps": [{"tenant": harness.TENANT, "client_id": client_id,
                      "client_secret": secret or None, "cloud": "global"}],
            "refresh_tokens": [{
                "refresh_token": FIRST_REFRESH_TOKEN,
                "client_id": client_id, "tenant": harness.TENANT,
                "mailbox": USER}]}
        self.env.helper.umask = 0o000
        self.env.start(standin_config=standins, account=account,
                       sasl_passwd=f"{{relay}} {USER}:-")
        return refresh_file

    def test_public_client_rotates_refresh_token(self) -> None:
        """F04, F06, F12: no secret, scope sent; the new refresh token
        replaced the old one on disk (0600 under umask 000) before the
        access token reached Office 365; no token in the log."""
        refresh_file = self.start_with_refresh_token()
        attempt = self.deliver(USER, "refresh token, public client")

        request = self.token_requests()[0]
        self.assertEqual(request["form"], {
            "grant_type": "refresh_token", "client_id": PUBLIC_CLIENT_ID,
            "refresh_token": FIRST_REFRESH_TOKEN, "scope": SMTP_SCOPE})
        rotated = request["response"]["refresh_token"]
        self.assertNotEqual(rotated, FIRST_REFRESH_TOKEN)
        # The documented file format: the token and one newline.
        self.assertEqual(refresh_file.read_text(), rotated + "\n")
        info = refresh_file.stat()
        self.assertEqual(stat.S_IMODE(info.st_mode), 0o600)
        self.assertLessEqual(info.st_mtime, attempt["time"])
        leftovers = [p.name for p in refresh_file.parent.iterdir()
                     if p.name.startswith(".") or "refresh" in p.name]
        self.assertEqual(leftovers, ["user.refresh"])
        self.assertNotInHelperLog(FIRST_REFRESH_TOKEN, rotated,
                                  attempt["token"])

    def test_confidential_client_sends_secret(self) -> None:
        """F12: a confidential client sends its secret with the refresh
        token and the scope; delivered."""
        self.start_with_refresh_token(CONFIDENTIAL_SECRET)
        self.deliver(USER, "refresh token, confidential client")
        request = self.token_requests()[0]
        self.assertEqual(request["form"], {
            "grant_type": "refresh_token",
            "client_id": CONFIDENTIAL_CLIENT_ID,
            "refresh_token": FIRST_REFRESH_TOKEN, "scope": SMTP_SCOPE,
            "client_secret": CONFIDENTIAL_SECRET})
        self.assertNotInHelperLog(CONFIDENTIAL_SECRET)


class DeviceCodeTest(GrantTestCase):
    """`token-helper authorize ACCOUNT`: the first sign-in."""

    def setUp(self) -> None:
        super().setUp()
        self.refresh_file = self.env.helper.dir / "user.refresh"
        account = {"name": "user", "mailbox": USER, "cloud": "global",
                   "tenant": harness.TENANT, "client_id": PUBLIC_CLIENT_ID,
                   "grant": "refresh_token",
                   "refresh_token_file": str(self.refresh_file)}
        standins = {"apps": [{"tenant": harness.TENANT,
                              "client_id": PUBLIC_CLIENT_ID,
                              "client_secret": None, "cloud": "global"}],
                    "device_flow": {"interval": 1, "expires_in": 120}}
        self.env.start(helper=False, standin_config=standins,
                       account=account, sasl_passwd=f"{{relay}} {USER}:-")

    def begin_sign_in(self) -> tuple[subprocess.Popen, str]:
        """Starts `authorize user`, reads the user code it shows, and
        waits until it has polled at least once (pending)."""
        proc = self.env.helper.spawn("authorize", "user")
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        self.addCleanup(lambda: proc.stdout.close() or proc.stderr.close())
        user_code = read_until(proc, USER_CODE, 20).group(1)

        def polled_once():
            codes = self.env.standins.state()["device_codes"]
            return [c for c in codes if c["user_code"] == user_code
                    and c["polls"] >= 1]
        code = harness.wait_until(polled_once, 15, "a pending poll")[0]
        self.assertEqual(code["status"], "pending")
        self.assertEqual(self.token_requests("devicecode")[0]["form"],
                         {"client_id": PUBLIC_CLIENT_ID,
                          "scope": SMTP_SCOPE})
        return proc, user_code

    def test_sign_in_stores_refresh_token_then_relays(self) -> None:
        """Approve the code: exit 0, the issued refresh token on disk
        (0600), no token printed; the daemon then relays with it."""
        proc, user_code = self.begin_sign_in()
        self.env.standins.device_action("approve", user_code, USER)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(f"stored in {self.refresh_file} (mode 0600)", out)

        grant = [r for r in self.token_requests() if r["status"] == 200]
        self.assertEqual(len(grant), 1)
        issued = grant[0]["response"]["refresh_token"]
        self.assertEqual(self.refresh_file.read_text(), issued + "\n")
        self.assertEqual(stat.S_IMODE(self.refresh_file.stat().st_mode),
                         0o600)
        for secret in (issued, grant[0]["response"]["access_token"],
                       grant[0]["form"]["device_code"]):
            self.assertNotIn(secret, out + err)

        # The daemon refreshes with the stored token and relays.
        self.env.helper.start()
        self.deliver(USER, "after device code sign-in")
        refresh = [r for r in self.token_requests()
                   if r["form"].get("grant_type") == "refresh_token"]
        self.assertEqual(refresh[0]["form"]["refresh_token"], issued)

    def test_declined_sign_in_writes_nothing(self) -> None:
        """Decline the code: exit 1 with a clear message, no file."""
        proc, user_code = self.begin_sign_in()
        self.env.standins.device_action("decline", user_code)
        _, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("declined", err)
        self.assertIn("authorize user again", err)
        self.assertFalse(self.refresh_file.exists())
        self.assertEqual([p.name for p in self.env.helper.dir.iterdir()
                          if "refresh" in p.name or p.name[0] == "."], [])


if __name__ == "__main__":
    unittest.main()
