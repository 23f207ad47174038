"""Stand-in for Office 365 SMTP client submission (smtp.office365.com:587).

What it is for: Postfix with our SASL plugin relays to this server. It
behaves like Office 365 where the reference gives bytes: the greeting,
STARTTLS before anything else, `AUTH LOGIN XOAUTH2` advertised only after
TLS, XOAUTH2 accepted on the AUTH line or after an empty `334 `, a refused
token answered at once with `535 5.7.3` (no error challenge), password
mechanisms refused, and `530 5.7.57` for MAIL without authentication.
Accepted messages are stored byte for byte with their envelope and the
authentication that sent them.

Main types: SubmissionSMTP (an aiosmtpd SMTP session with our AUTH
mechanisms; one instance per TCP connection, run by the asyncio loop the
caller owns) and SubmissionHandler (aiosmtpd hooks: EHLO, DATA).

What it deliberately does not do: BDAT/CHUNKING, DSN, size or rate limits,
SendAs checks. More reply modes are injected through StandinState.

Follows RFC 3207 (STARTTLS), RFC 4954 (AUTH), the XOAUTH2 format and the
Office 365 dialogue in /work/shared/reference/office365-smtp-oauth.md 1-2.
aiosmtpd 1.4 API: auth_<MECH>(server, args) -> AuthResult.
"""

import base64
import binascii
import collections
import datetime
import email.utils
import re
import secrets
import ssl
import time
from typing import Any

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from standin_state import StandinState, token_hash

_XOAUTH2 = re.compile(rb"^user=([^\x01]+)\x01auth=Bearer ([^\x01]+)\x01\x01$")

# The error challenge Gmail sends for a refused token (reference section 1).
_GMAIL_ERROR = (b'{"status":"400","schemes":"Bearer",'
                b'"scope":"https://mail.google.com/"}')

# aiosmtpd's fixed replies, reworded as Office 365 words them.
_REPLY_REWRITES = {
    "220 Ready to start TLS": "220 2.0.0 SMTP server ready",
    "530 Must issue a STARTTLS command first":
        "530 5.7.0 Must issue a STARTTLS command first",
}


def office_host() -> str:
    """A front-end host name shaped like Office 365's."""
    return f"LO2P{secrets.randbelow(1000):03d}CA0001.outlook.office365.com"


def _bracket(host: str) -> str:
    """The bracketed diagnostic Office 365 appends to 5xx replies."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return (f"[{host} {now.strftime('%Y-%m-%dT%H:%M:%S.%f')[:-3]}Z "
            f"{secrets.token_hex(8).upper()}]")


class SubmissionSMTP(SMTP):
    """One SMTP connection to the stand-in."""

    line_length_limit = 16384  # Office 365 tokens make long AUTH lines

    def __init__(self, handler: Any, state: StandinState, **kwargs):
        host = office_host()
        date = email.utils.format_datetime(
            datetime.datetime.now(datetime.timezone.utc))
        super().__init__(
            handler, hostname=host,
            ident=f"Microsoft ESMTP MAIL Service ready at {date}",
            require_starttls=True, auth_require_tls=True,
            auth_exclude_mechanism=["PLAIN"], data_size_limit=157286400,
            **kwargs)
        self.command_size_limits = collections.defaultdict(
            lambda: self.command_size_limit, {"AUTH": 16384})
        self.state = state
        self.record: dict = {}

    def connection_made(self, transport) -> None:
        """Opens the connection record; marks it TLS after STARTTLS."""
        starttls = self._original_transport is not None
        super().connection_made(transport)
        if starttls:
            self.state.session_event(self.record, "tls", True)
        else:
            self.record = self.state.new_smtp_session(self.session.peer)

    def connection_lost(self, error) -> None:
        """Closes the connection record."""
        if self.record:
            self.state.session_event(self.record, "ended", time.time())
        super().connection_lost(error)

    async def push(self, status) -> None:
        """Sends a reply, in Office 365's wording where aiosmtpd differs."""
        if isinstance(status, str):
            status = _REPLY_REWRITES.get(status, status)
        await super().push(status)

    async def smtp_MAIL(self, arg: str) -> None:  # noqa: N802 (aiosmtpd)
        """MAIL FROM needs a successful AUTH first."""
        if self.session.host_name and not self.session.authenticated:
            await self.push("530 5.7.57 Client not authenticated to send "
                            f"mail. {_bracket(self.hostname)}")
            return
        await super().smtp_MAIL(arg)

    async def _initial_response(self, args: list,
                                challenge: bytes) -> tuple[Any, str]:
        """The client's first SASL response and how it travelled:
        "initial-response" on the AUTH line, or after `334 challenge`
        ("empty-334" when the challenge is empty, as XOAUTH2's is)."""
        if len(args) == 1:
            blob = await self.challenge_auth(challenge)
            return blob, "empty-334" if not challenge else "challenge"
        try:
            return base64.b64decode(args[1], validate=True), "initial-response"
        except (binascii.Error, ValueError):
            await self.push("501 5.5.2 Cannot Decode response")
            return MISSING, "initial-response"

    async def _auth_reply(self, mailbox: str, token: str) -> tuple[str, str]:
        """The reply to a well-formed XOAUTH2 response and the reason."""
        mode = self.state.smtp_auth_mode()
        why = self.state.check_token(mailbox, token)
        if mode["mode"] == "reply":
            return mode["reply"], "reply mode"
        if mode["mode"] == "challenge":
            # Gmail's way: an error challenge, the client's empty answer,
            # then 535. Office 365 never does this.
            await self.challenge_auth(_GMAIL_ERROR)
            return ("535 5.7.8 Username and Password not accepted.",
                    "challenge mode")
        if mode["mode"] == "refuse":
            why = "refuse mode"
        if why:
            return ("535 5.7.3 Authentication unsuccessful "
                    f"{_bracket(self.hostname)}", why)
        return "235 2.7.0 Authentication successful", ""

    async def auth_XOAUTH2(self, _server, args: list) -> AuthResult:
        """XOAUTH2: user=MAILBOX^Aauth=Bearer TOKEN^A^A, answered at once."""
        blob, style = await self._initial_response(args, b"")
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        match = _XOAUTH2.match(blob)
        mailbox = match.group(1).decode("utf-8", "replace") if match else ""
        token = match.group(2).decode("ascii", "replace") if match else ""
        reply, why = (await self._auth_reply(mailbox, token) if match else
                      ("535 5.7.3 Authentication unsuccessful "
                       f"{_bracket(self.hostname)}", "malformed response"))
        self.state.session_event(self.record, "auth", {
            "mechanism": "XOAUTH2", "style": style, "user": mailbox,
            "token": token, "token_hash": token_hash(token),
            "raw": base64.b64encode(blob).decode(), "reply": reply,
            "reason": why, "time": time.time()})
        if reply.startswith("235"):
            return AuthResult(success=True, message=reply, auth_data={
                "mailbox": mailbox, "mechanism": "XOAUTH2", "style": style,
                "token_hash": token_hash(token)})
        return AuthResult(success=False, handled=False, message=reply)

    async def auth_LOGIN(self, _server, args: list) -> AuthResult:
        """LOGIN is advertised but refused: basic authentication is off."""
        user, _ = await self._initial_response(args, b"Username:")
        if user is MISSING:
            return AuthResult(success=False, handled=True)
        if await self.challenge_auth(b"Password:") is MISSING:
            return AuthResult(success=False, handled=True)
        reply = ("535 5.7.139 Authentication unsuccessful, basic "
                 f"authentication is disabled. {_bracket(self.hostname)}")
        self.state.session_event(self.record, "auth", {
            "mechanism": "LOGIN", "user": user.decode("utf-8", "replace"),
            "reply": reply, "time": time.time()})
        return AuthResult(success=False, handled=False, message=reply)


class SubmissionHandler:
    """aiosmtpd hooks: the EHLO keyword list and message storage."""

    def __init__(self, state: StandinState):
        self.state = state

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses) -> list:  # noqa: N802 (aiosmtpd)
        """Office 365's EHLO keywords; AUTH only once TLS is up."""
        session.host_name = hostname
        server.state.session_event(server.record, "ehlo", hostname)
        peer = session.peer[0] if session.peer else "127.0.0.1"
        lines = [f"{server.hostname} Hello [{peer}]", "SIZE 157286400",
                 "PIPELINING", "ENHANCEDSTATUSCODES"]
        lines += [r[4:] for r in responses
                  if r[4:].startswith(("STARTTLS", "AUTH "))]
        lines.append("8BITMIME")
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_DATA(self, server, session, envelope) -> str:
        """Stores the message exactly as received and accepts it."""
        meta = {"mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "mail_options": list(envelope.mail_options),
                "auth": session.auth_data, "session": server.record["id"],
                "tls": session.ssl is not None, "received": time.time()}
        name = self.state.store_message(meta, envelope.original_content)
        self.state.session_event(server.record, "messages", name)
        return (f"250 2.0.0 OK <{secrets.token_hex(8)}@{server.hostname}> "
                f"[Hostname={server.hostname}]")


def make_smtp_factory(state: StandinState, cert_file: str, key_file: str,
                      loop) -> Any:
    """A protocol factory for loop.create_server()."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = SubmissionHandler(state)
    return lambda: SubmissionSMTP(handler, state, tls_context=context,
                                  loop=loop)
