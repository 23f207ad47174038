"""Shared state of the Office 365 stand-ins: registrations, issued tokens,
recordings and fault modes.

What it is for: the token endpoint, the SMTP server and the control API run
in different threads of one process and must agree on which access tokens
exist and which mailbox each is for. StandinState is that single source of
truth.

Main types: Cloud (per-cloud scopes), App (a registered application),
RefreshGrant (a refresh token bound to a mailbox), IssuedToken, and
StandinState. Every public method of StandinState takes its lock, so any
thread may call it; it never blocks on I/O except store_message, which writes
two small files.

Configuration file (JSON, all keys optional):

    {"token_lifetime_seconds": 3599,
     "apps": [{"tenant": "contoso.onmicrosoft.com",
               "client_id": "...", "client_secret": "..." | null,
               "cloud": "global" | "usgov" | "china",
               "send_as": ["relay@example.com"],
               "certificates": ["-----BEGIN CERTIFICATE-----..."]}],
     "refresh_tokens": [{"refresh_token": "...", "client_id": "...",
                         "tenant": "...", "mailbox": "user@example.com"}],
     "device_flow": {...},             (see standin_device.py)
     "google": {...},                  (see standin_google.py)
     "smtp_persona": "office365" | "gmail"}   (which SMTP server to play)

An app with "client_secret": null and no "certificates" is a public
client; one with certificates (PEM) authenticates with signed client
assertions (standin_assertion.py), whose jti values are remembered here
and whose verification outcomes are recorded for tests. For client
credentials a token may send as every mailbox in "send_as"; a refresh token
is bound to one mailbox and every refresh token the endpoint hands out
inherits that binding.

Fault bookkeeping for the fault tests (tests/faults): every injected token
fault that is used counts under its "label" (token_fault_hits), token
requests in progress are counted (token_requests_in_flight), failed TLS
handshakes on the token endpoint are recorded (tls_failures), and the
lifetime of tokens issued from now on can be changed at run time.

Access tokens can be invalidated one by one (invalidate_access_token),
as a provider does when it revokes a token before it expires; the SMTP
stand-ins then refuse it.

What it deliberately does not do: persist anything between runs or
expire refresh tokens.

Follows /work/shared/reference/office365-smtp-oauth.md sections 2 and 3.
"""

import base64
import dataclasses
import hashlib
import json
import os
import pathlib
import secrets
import threading
import time
from typing import Any, Optional

from cryptography import x509

from standin_assertion import JtiRegistry, load_certificates
from standin_device import DeviceFlows, DeviceSettings
from standin_google import GoogleRegistry

SMTP_PERSONAS = ("office365", "gmail")


def _base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_shaped_token(mailboxes: tuple[str, ...], client_id: str) -> str:
    """An access token with the shape and size of Entra ID's (header,
    claims and RS256 signature, about 2 KB), so that every part of the
    chain carries real-sized tokens. Nothing verifies the signature: the
    stand-in knows its tokens by value, as the real service is opaque to
    clients."""
    header = {"typ": "JWT", "alg": "RS256", "x5t": secrets.token_urlsafe(20),
              "kid": secrets.token_urlsafe(20)}
    claims = {"aud": "https://outlook.office365.com",
              "iss": "https://sts.windows.net/standin/",
              "iat": int(time.time()), "appid": client_id,
              "upn": mailboxes[0] if mailboxes else "",
              "roles": ["SMTP.SendAsApp"],
              "xms_tcdt": secrets.token_urlsafe(900)}
    return ".".join((_base64url(json.dumps(header).encode()),
                     _base64url(json.dumps(claims).encode()),
                     _base64url(secrets.token_bytes(256))))


@dataclasses.dataclass(frozen=True)
class Cloud:
    """The scopes Office 365 SMTP uses in one national cloud."""

    delegated_scope: str
    app_only_scope: str


CLOUDS = {
    "global": Cloud("https://outlook.office.com/SMTP.Send",
                    "https://outlook.office365.com/.default"),
    "usgov": Cloud("https://outlook.office365.us/SMTP.Send",
                   "https://outlook.office365.us/.default"),
    "china": Cloud("https://partner.outlook.cn/SMTP.Send",
                   "https://partner.outlook.cn/.default"),
}


@dataclasses.dataclass(frozen=True)
class App:
    """One application registration."""

    tenant: str
    client_id: str
    client_secret: Optional[str]
    cloud: str
    send_as: tuple[str, ...]
    certificates: tuple[x509.Certificate, ...] = ()

    @property
    def public(self) -> bool:
        """A public client: neither a secret nor a certificate."""
        return self.client_secret is None and not self.certificates


@dataclasses.dataclass(frozen=True)
class RefreshGrant:
    """What a refresh token was issued for."""

    client_id: str
    tenant: str
    mailbox: str


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    """An access token the endpoint handed out."""

    mailboxes: tuple[str, ...]
    expires: float
    client_id: str
    grant_type: str


def token_hash(token: str) -> str:
    """A short, stable name for a token, for logs and assertions."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _load_apps(config: dict) -> dict[str, App]:
    """Builds the app registry from the configuration."""
    apps = {}
    for entry in config.get("apps", []):
        cloud = entry.get("cloud", "global")
        if cloud not in CLOUDS:
            raise ValueError(f"unknown cloud {cloud!r} in stand-in config")
        apps[entry["client_id"]] = App(
            entry["tenant"], entry["client_id"], entry.get("client_secret"),
            cloud, tuple(entry.get("send_as", [])),
            load_certificates(entry.get("certificates", [])))
    return apps


class StandinState:
    """Everything the stand-ins share, guarded by one lock."""

    def __init__(self, config: dict, state_dir: pathlib.Path):
        self._lock = threading.Lock()
        self.apps = _load_apps(config)
        self.token_lifetime = int(config.get("token_lifetime_seconds", 3599))
        self._refresh: dict[str, RefreshGrant] = {
            e["refresh_token"]: RefreshGrant(e["client_id"], e["tenant"],
                                             e["mailbox"])
            for e in config.get("refresh_tokens", [])}
        self._access: dict[str, IssuedToken] = {}
        self._token_requests: list[dict] = []
        self._smtp_sessions: list[dict] = []
        self._message_count = 0
        self.messages_dir = state_dir / "messages"
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        self._smtp_auth_mode: dict = {"mode": "accept"}
        self._token_fault: Optional[dict] = None
        self._fault_changed = threading.Condition(self._lock)
        self._fault_hits: dict[str, int] = {}
        self._in_flight = 0
        self._tls_failures: list[dict] = []
        self.jtis = JtiRegistry()
        self.devices = DeviceFlows(DeviceSettings.from_config(config))
        self._assertions: list[dict] = []
        self.google = GoogleRegistry(config.get("google", {}))
        self._invalidated: set[str] = set()
        self.smtp_persona = config.get("smtp_persona", "office365")
        if self.smtp_persona not in SMTP_PERSONAS:
            raise ValueError(f"smtp_persona must be one of {SMTP_PERSONAS}")

    # --- token endpoint -------------------------------------------------

    def refresh_grant(self, refresh_token: str) -> Optional[RefreshGrant]:
        """The binding of a refresh token, or None when unknown."""
        with self._lock:
            return self._refresh.get(refresh_token)

    def issue_access_token(self, mailboxes: tuple[str, ...], client_id: str,
                           grant_type: str, prefix: str = "") -> str:
        """Makes and remembers a new access token: with a `prefix` (e.g.
        Google's "ya29.") an opaque one, without it one shaped and sized
        like the Microsoft identity platform's (jwt_shaped_token)."""
        token = (prefix + secrets.token_urlsafe(48) if prefix
                 else jwt_shaped_token(mailboxes, client_id))
        issued = IssuedToken(mailboxes, time.time() + self.token_lifetime,
                             client_id, grant_type)
        with self._lock:
            self._access[token] = issued
        return token

    def issue_refresh_token(self, grant: RefreshGrant) -> str:
        """Makes a new refresh token with the same binding; the old one
        stays valid, as at Microsoft."""
        token = "rt." + secrets.token_urlsafe(48)
        with self._lock:
            self._refresh[token] = grant
        return token

    def record_assertion(self, outcome: dict) -> None:
        """Keeps the outcome of one client assertion verification."""
        with self._lock:
            self._assertions.append(outcome)

    def record_token_request(self, record: dict) -> None:
        """Keeps one token endpoint request (secrets included: test only)."""
        with self._lock:
            self._token_requests.append(record)

    def take_token_fault(self) -> Optional[dict]:
        """The fault to answer the next token request with, if any; a fault
        with a "count" is used that many times, then cleared."""
        with self._lock:
            fault = self._token_fault
            if fault is not None and "count" in fault:
                fault["count"] -= 1
                if fault["count"] <= 0:
                    self._token_fault = None
                    self._fault_changed.notify_all()
            if fault is not None:
                label = str(fault.get("label", "unlabelled"))
                self._fault_hits[label] = self._fault_hits.get(label, 0) + 1
                fault = dict(fault)
            return fault

    def wait_fault_cleared(self, label: str, timeout: float) -> bool:
        """Blocks until no fault labelled `label` is installed (True) or
        `timeout` seconds pass (False); how a hanging answer ends."""
        def cleared() -> bool:
            fault = self._token_fault
            return fault is None or fault.get("label") != label
        with self._fault_changed:
            return self._fault_changed.wait_for(cleared, timeout)

    def token_request_started(self) -> None:
        """Counts a token request whose answer is not yet written."""
        with self._lock:
            self._in_flight += 1

    def token_request_finished(self) -> None:
        """Uncounts it again (answered, hung up or failed)."""
        with self._lock:
            self._in_flight -= 1

    def record_tls_failure(self, reason: str) -> None:
        """Keeps one failed TLS handshake on the token endpoint."""
        with self._lock:
            self._tls_failures.append({"time": time.time(),
                                       "reason": reason})

    def set_token_lifetime(self, seconds: int) -> None:
        """The lifetime (expires_in) of access tokens issued from now on."""
        if not 1 <= seconds <= 86400:
            raise ValueError("seconds must be 1..86400")
        with self._lock:
            self.token_lifetime = seconds

    # --- SMTP server ----------------------------------------------------

    def check_token(self, mailbox: str, token: str) -> str:
        """Why `token` may not send as `mailbox`, or "" when it may."""
        with self._lock:
            issued = self._access.get(token)
            invalidated = token in self._invalidated
        if issued is None:
            return "token was not issued by the stand-in endpoint"
        if invalidated:
            return "token was invalidated"
        if time.time() >= issued.expires:
            return "token has expired"
        if mailbox.lower() not in (m.lower() for m in issued.mailboxes):
            return "token is not for this mailbox"
        return ""

    def smtp_auth_mode(self) -> dict:
        """How the SMTP server answers AUTH right now."""
        with self._lock:
            return dict(self._smtp_auth_mode)

    def new_smtp_session(self, peer: Any) -> dict:
        """Registers and returns the record of one SMTP connection."""
        record = {"peer": list(peer) if peer else None,
                  "started": time.time(), "tls": False, "ehlo": [],
                  "auth": [], "messages": [], "ended": None}
        with self._lock:
            record["id"] = len(self._smtp_sessions) + 1
            self._smtp_sessions.append(record)
        return record

    def session_event(self, record: dict, key: str, value: Any) -> None:
        """Sets record[key], or appends to it when it is a list."""
        with self._lock:
            if isinstance(record.get(key), list):
                record[key].append(value)
            else:
                record[key] = value

    def store_message(self, meta: dict, content: bytes) -> str:
        """Writes DIR/messages/NNN.eml (exact DATA bytes) and then NNN.json
        (envelope, authentication); returns the message id NNN."""
        with self._lock:
            self._message_count += 1
            name = f"{self._message_count:03d}"
        eml = self.messages_dir / f"{name}.eml"
        eml.write_bytes(content)
        meta = dict(meta, id=name, eml=str(eml), size=len(content),
                    sha256=hashlib.sha256(content).hexdigest())
        tmp = self.messages_dir / f".{name}.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.messages_dir / f"{name}.json")
        return name

    # --- control API ----------------------------------------------------

    def set_smtp_auth_mode(self, mode: dict) -> None:
        """accept | refuse (535 5.7.3) | reply (answer mode["reply"]) |
        challenge (Gmail-style 334 error challenge, then 535)."""
        if mode.get("mode") not in ("accept", "refuse", "reply",
                                    "challenge"):
            raise ValueError("mode must be accept, refuse, reply or "
                             "challenge")
        if mode["mode"] == "reply" and not mode.get("reply"):
            raise ValueError("mode reply needs a reply line")
        with self._lock:
            self._smtp_auth_mode = dict(mode)

    def invalidate_access_token(self, token: str) -> None:
        """From now on the SMTP stand-ins refuse `token` (issued here)."""
        with self._lock:
            if token not in self._access:
                raise ValueError("no such access token was issued")
            self._invalidated.add(token)

    def set_token_fault(self, fault: Optional[dict]) -> None:
        """Installs (or with None clears) a token endpoint fault."""
        pad_to = (fault or {}).get("pad_to_bytes")
        if pad_to is not None and (type(pad_to) is not int or pad_to < 2):
            raise ValueError("pad_to_bytes must be a whole number of bytes")
        with self._lock:
            self._token_fault = dict(fault) if fault else None
            self._fault_changed.notify_all()

    def snapshot(self) -> dict:
        """Copies of the recordings, for the control API."""
        with self._lock:
            return json.loads(json.dumps({
                "token_requests": self._token_requests,
                "assertions": self._assertions,
                "device_codes": self.devices.snapshot(),
                "smtp_sessions": self._smtp_sessions,
                "smtp_auth_mode": self._smtp_auth_mode,
                "token_fault": self._token_fault,
                "token_fault_hits": self._fault_hits,
                "token_requests_in_flight": self._in_flight,
                "tls_failures": self._tls_failures,
                "token_lifetime_seconds": self.token_lifetime,
                "smtp_persona": self.smtp_persona,
                "invalidated_tokens": [token_hash(t)
                                       for t in sorted(self._invalidated)],
                "google_revoked": self.google.revoked()}))
