"""Device authorization grant (device code flow) for the stand-in token
endpoint: the codes handed out, what the "user" did with them, and the
answer each poll gets.

What it is for: `token-helper authorize ACCOUNT` asks
POST /{tenant}/oauth2/v2.0/devicecode for a code, shows the user code and
polls the token endpoint with grant_type
urn:ietf:params:oauth:grant-type:device_code. Tests play the user through
the control API: approve a user code for a mailbox, decline it, expire it,
or make the next polls answer slow_down. For a simpler test a
configuration can approve a code by itself after N pending polls.

Main types: DeviceSettings (interval, expires_in, auto-approval; from the
stand-in configuration's "device_flow" object) and DeviceFlows (every code
issued, guarded by one lock; any thread may call it). poll() returns a
PollOutcome: one of pending, slow_down, declined, expired, bad_code,
redeemed, approved (with the mailbox).

Configuration ("device_flow" in the stand-in config, all optional):

    {"interval": 5, "expires_in": 900,
     "auto_approve_after_polls": null, "auto_approve_mailbox": null}

What it deliberately does not do: a verification web page, id_tokens,
checking which scopes the user consented to.

Follows RFC 8628 (sections 3.2, 3.4, 3.5) and the reference section 3
(device code row).
"""

import dataclasses
import secrets
import string
import threading
import time
from typing import Optional

VERIFICATION_URI = "https://microsoft.com/devicelogin"
_USER_CODE_ALPHABET = string.ascii_uppercase + "23456789"


@dataclasses.dataclass(frozen=True)
class DeviceSettings:
    """How codes are handed out and whether they approve themselves."""

    interval: int = 5
    expires_in: int = 900
    auto_approve_after_polls: Optional[int] = None
    auto_approve_mailbox: Optional[str] = None

    @classmethod
    def from_config(cls, config: dict) -> "DeviceSettings":
        """Reads the "device_flow" object of the stand-in config."""
        entry = config.get("device_flow", {})
        return cls(int(entry.get("interval", 5)),
                   int(entry.get("expires_in", 900)),
                   entry.get("auto_approve_after_polls"),
                   entry.get("auto_approve_mailbox"))


@dataclasses.dataclass
class DeviceCode:
    """One code and what has happened to it."""

    device_code: str
    user_code: str
    client_id: str
    tenant: str
    scope: str
    expires: float
    status: str = "pending"  # pending|approved|declined|expired|redeemed
    mailbox: Optional[str] = None
    polls: int = 0
    slow_down: int = 0  # polls still to answer with slow_down


@dataclasses.dataclass(frozen=True)
class PollOutcome:
    """What one poll gets: a status and, when approved, the code."""

    status: str
    code: Optional[DeviceCode] = None


class DeviceFlows:
    """Every device code issued by the stand-in."""

    def __init__(self, settings: DeviceSettings):
        self.settings = settings
        self._lock = threading.Lock()
        self._by_device: dict[str, DeviceCode] = {}
        self._by_user: dict[str, DeviceCode] = {}

    def start(self, client_id: str, tenant: str, scope: str) -> dict:
        """Issues a code; returns the devicecode answer body, fields in
        the order Microsoft sends them."""
        user_code = "".join(secrets.choice(_USER_CODE_ALPHABET)
                            for _ in range(9))
        code = DeviceCode("DAQABAAEAAA." + secrets.token_urlsafe(96),
                          user_code, client_id, tenant, scope,
                          time.time() + self.settings.expires_in)
        with self._lock:
            self._by_device[code.device_code] = code
            self._by_user[user_code] = code
        return {
            "user_code": user_code, "device_code": code.device_code,
            "verification_uri": VERIFICATION_URI,
            "expires_in": self.settings.expires_in,
            "interval": self.settings.interval,
            "message": ("To sign in, use a web browser to open the page "
                        f"{VERIFICATION_URI} and enter the code "
                        f"{user_code} to authenticate.")}

    def poll(self, device_code: str, client_id: str) -> PollOutcome:
        """The answer to one poll; an approved code is redeemed once."""
        with self._lock:
            code = self._by_device.get(device_code)
            if code is None or code.client_id != client_id:
                return PollOutcome("bad_code")
            code.polls += 1
            if code.status == "pending" and time.time() >= code.expires:
                code.status = "expired"
            if code.status == "pending" and code.slow_down > 0:
                code.slow_down -= 1
                return PollOutcome("slow_down")
            self._maybe_auto_approve(code)
            if code.status == "approved":
                code.status = "redeemed"
                return PollOutcome("approved", dataclasses.replace(code))
            return PollOutcome(code.status)

    def _maybe_auto_approve(self, code: DeviceCode) -> None:
        """Approves a pending code after the configured pending polls
        (caller holds the lock)."""
        after = self.settings.auto_approve_after_polls
        if (code.status == "pending" and after is not None
                and code.polls > after):
            code.status = "approved"
            code.mailbox = self.settings.auto_approve_mailbox

    def act(self, action: str, user_code: str, mailbox: str = "",
            count: int = 1) -> None:
        """The user (or the clock) acts on a pending code: approve (as
        `mailbox`), decline, expire, or slow_down (the next `count`
        polls). ValueError for an unknown or finished code."""
        with self._lock:
            code = self._by_user.get(user_code)
            if code is None:
                raise ValueError(f"no device code with user code "
                                 f"{user_code!r}")
            if code.status != "pending":
                raise ValueError(f"user code {user_code} is {code.status}")
            if action == "approve":
                if not mailbox:
                    raise ValueError("approve needs a mailbox")
                code.status, code.mailbox = "approved", mailbox
            elif action == "decline":
                code.status = "declined"
            elif action == "expire":
                code.status = "expired"
            elif action == "slow_down":
                code.slow_down += int(count)
            else:
                raise ValueError(f"unknown device action {action!r}")

    def snapshot(self) -> list[dict]:
        """Every code issued, oldest first, for the control API."""
        with self._lock:
            return [dataclasses.asdict(code)
                    for code in self._by_device.values()]
