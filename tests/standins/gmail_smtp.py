"""Stand-in for Gmail's SMTP submission server (smtp.gmail.com:587).

What it is for: Postfix with our SASL plugin relays to this server when
the stand-in config says "smtp_persona": "gmail" (o365.py then serves
this instead of the Office 365 persona on its one SMTP port). It plays
Gmail where Gmail differs from Office 365:

  greeting   `220 smtp.gmail.com ESMTP <id> - gsmtp`;
  EHLO       `250-smtp.gmail.com at your service, [PEER]`, STARTTLS
             before TLS, and after it
             `250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER
             XOAUTH`;
  XOAUTH2    "user=" MAILBOX "\\x01auth=Bearer " TOKEN "\\x01\\x01";
  OAUTHBEARER (RFC 7628) gs2 header `n,a=MAILBOX,` (saslname with =2C
             and =3D unescaped), then \\x01-separated key=value pairs
             (host=, port=, auth=Bearer TOKEN), ending \\x01\\x01;
  accepted   `235 2.7.0 Accepted`, when the token is one the stand-in
             endpoint issued for that mailbox and neither expired nor
             invalidated;
  refused    the error challenge `334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVz
             IjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==`
             (one line), the client's reply (an empty line for XOAUTH2,
             base64 of one 0x01 byte for OAUTHBEARER), then the two-line
             `535-5.7.8 Username and Password not accepted. ...`.
Every AUTH is recorded with the mechanism, how the initial response
travelled, the parsed fields and, after an error challenge, the exact
line the client answered with (challenge_reply_line) and its decoded
bytes in hex (challenge_reply_hex: "" for an empty reply, "01" for
0x01). StandinState's SMTP auth modes apply: refuse and challenge send
the error challenge for any token, reply answers with the given line.

Main types: GmailSMTP (an aiosmtpd SMTP session; one per connection, run
by the caller's asyncio loop) and GmailHandler (EHLO and DATA hooks).

What it deliberately does not do: CHUNKING/BDAT or SMTPUTF8 (aiosmtpd
has no BDAT, so neither is advertised, unlike the real smtp.gmail.com),
app passwords (LOGIN and PLAIN are always refused), PLAIN-CLIENTTOKEN and
XOAUTH (advertised, answered 504 like any unknown mechanism), sender
rewriting or rate limits.

Follows RFC 3207, RFC 4954, RFC 7628 sections 3.1 and 3.2.3, and the
Gmail notes in /work/shared/reference/office365-smtp-oauth.md 1 and 4.
aiosmtpd 1.4 API: auth_<MECH>(server, args) -> AuthResult.
"""

import base64
import binascii
import collections
import re
import secrets
import ssl
import time
from typing import Any, Optional

from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from standin_state import StandinState, token_hash

GMAIL_HOST = "smtp.gmail.com"
GMAIL_AUTH_LINE = ("AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER "
                   "XOAUTH")
GMAIL_ERROR_CHALLENGE = (
    "334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodH"
    "RwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==")
ACCEPTED = "235 2.7.0 Accepted"

_XOAUTH2 = re.compile(rb"^user=([^\x01]+)\x01auth=Bearer ([^\x01]+)\x01\x01$")
# RFC 7628 3.1: gs2-header (cb flag, optional a=saslname), then kvpairs.
_OAUTHBEARER = re.compile(
    rb"^(n|y|p=[^,]*),(?:a=([^,]*))?,\x01((?:[A-Za-z]+=[^\x01]*\x01)+)\x01$")
_SASLNAME = re.compile(rb"^(?:[^=,]|=2C|=3D)*$")


def gmail_id() -> str:
    """The transaction id Gmail puts at the end of its replies."""
    return (f"{secrets.token_hex(7)[:13]}-{secrets.token_hex(6)}"
            f"sm{secrets.randbelow(10**7)}.{secrets.randbelow(100)}")


def bad_credentials(tid: str) -> str:
    """Gmail's two-line answer to refused credentials."""
    return ("535-5.7.8 Username and Password not accepted. For more "
            "information, go to\r\n535 5.7.8  https://support.google.com/"
            f"mail/?p=BadCredentials {tid} - gsmtp")


def parse_xoauth2(blob: bytes) -> Optional[dict]:
    """XOAUTH2's fields (user, token), or None when malformed."""
    match = _XOAUTH2.match(blob)
    if match is None:
        return None
    return {"user": match.group(1).decode("utf-8", "replace"),
            "token": match.group(2).decode("ascii", "replace")}


def parse_oauthbearer(blob: bytes) -> Optional[dict]:
    """OAUTHBEARER's fields (RFC 7628 3.1): cb flag, authzid (a=, with
    =2C and =3D unescaped) as user, host, port and the bearer token;
    None when malformed or without auth=Bearer."""
    match = _OAUTHBEARER.match(blob)
    if match is None:
        return None
    authzid = match.group(2)
    if authzid is not None and not _SASLNAME.match(authzid):
        return None
    pairs = dict(pair.split(b"=", 1)
                 for pair in match.group(3).split(b"\x01") if pair)
    auth = pairs.get(b"auth", b"")
    if not auth.startswith(b"Bearer ") or len(auth) <= 7:
        return None
    user = (authzid or b"").replace(b"=2C", b",").replace(b"=3D", b"=")

    def text(key: bytes) -> Optional[str]:
        value = pairs.get(key)
        return None if value is None else value.decode("utf-8", "replace")
    return {"cb_flag": match.group(1).decode("ascii", "replace"),
            "user": user.decode("utf-8", "replace"),
            "authzid_raw": None if authzid is None else authzid.decode(
                "utf-8", "replace"),
            "host": text(b"host"), "port": text(b"port"),
            "token": auth[7:].decode("ascii", "replace"),
            "keys": sorted(k.decode("ascii", "replace") for k in pairs)}


class GmailSMTP(SMTP):
    """One SMTP connection to the Gmail stand-in."""

    line_length_limit = 16384  # bearer tokens make long AUTH lines

    def __init__(self, handler: Any, state: StandinState, **kwargs):
        self.tid = gmail_id()
        super().__init__(
            handler, hostname=GMAIL_HOST, ident=f"ESMTP {self.tid} - gsmtp",
            require_starttls=True, auth_require_tls=True,
            data_size_limit=35882577, **kwargs)
        self.command_size_limits = collections.defaultdict(
            lambda: self.command_size_limit, {"AUTH": 16384})
        self.state = state
        self.record: dict = {}
        self._rewrites = {
            "220 Ready to start TLS": "220 2.0.0 Ready to start TLS",
            "530 Must issue a STARTTLS command first":
                "530 5.7.0 Must issue a STARTTLS command first. "
                f"{self.tid} - gsmtp",
            "221 Bye": f"221 2.0.0 closing connection {self.tid} - gsmtp",
        }

    def connection_made(self, transport) -> None:
        """Opens the connection record; marks it TLS after STARTTLS."""
        starttls = self._original_transport is not None
        super().connection_made(transport)
        if starttls:
            self.state.session_event(self.record, "tls", True)
        else:
            self.record = self.state.new_smtp_session(self.session.peer)
            self.state.session_event(self.record, "persona", "gmail")

    def connection_lost(self, error) -> None:
        """Closes the connection record."""
        if self.record:
            self.state.session_event(self.record, "ended", time.time())
        super().connection_lost(error)

    async def push(self, status) -> None:
        """Sends a reply, in Gmail's wording where aiosmtpd differs."""
        if isinstance(status, str):
            status = self._rewrites.get(status, status)
        await super().push(status)

    async def smtp_MAIL(self, arg: str) -> None:  # noqa: N802 (aiosmtpd)
        """MAIL FROM needs a successful AUTH first."""
        if self.session.host_name and not self.session.authenticated:
            await self.push(
                "530-5.7.0 Authentication Required. For more information, "
                "go to\r\n530 5.7.0  https://support.google.com/mail/"
                f"?p=WantAuthError {self.tid} - gsmtp")
            return
        await super().smtp_MAIL(arg)

    async def _read_line(self) -> bytes:
        """One raw line from the client, line end included (b"" at EOF)."""
        return await self._reader.readline()

    async def _initial_response(self, args: list) -> tuple[Any, str]:
        """The client's first response and how it travelled:
        "initial-response" on the AUTH line or "empty-334" after `334 `."""
        if len(args) > 1:
            encoded, style = args[1].encode(), "initial-response"
        else:
            await self.push("334 ")
            encoded, style = (await self._read_line()).strip(), "empty-334"
        try:
            return base64.b64decode(encoded, validate=True), style
        except (binascii.Error, ValueError):
            await self.push(f"501 5.5.2 Cannot Decode response {self.tid} "
                            "- gsmtp")
            return MISSING, style

    async def _error_challenge(self, attempt: dict) -> bool:
        """Sends Gmail's error challenge and records the client's exact
        reply; False when the client hung up instead."""
        await self.push(GMAIL_ERROR_CHALLENGE)
        line = await self._read_line()
        attempt["challenge"] = GMAIL_ERROR_CHALLENGE
        attempt["challenge_reply_line"] = line.decode("ascii",
                                                      "backslashreplace")
        try:
            attempt["challenge_reply_hex"] = base64.b64decode(
                line.strip(), validate=True).hex()
        except (binascii.Error, ValueError):
            attempt["challenge_reply_hex"] = None
        return line != b""

    def _why_refused(self, fields: Optional[dict]) -> tuple[str, str]:
        """(reply mode line or "", reason to refuse or "")."""
        mode = self.state.smtp_auth_mode()
        if mode["mode"] == "reply":
            return mode["reply"], "reply mode"
        if mode["mode"] in ("refuse", "challenge"):
            return "", f"{mode['mode']} mode"
        if fields is None:
            return "", "malformed response"
        return "", self.state.check_token(fields["user"], fields["token"])

    async def _authenticate(self, mechanism: str, blob: bytes, style: str,
                            fields: Optional[dict]) -> AuthResult:
        """Accepts or refuses one parsed response, Gmail's way, and
        records the attempt."""
        fields = fields or {}
        attempt = dict(fields, mechanism=mechanism, style=style,
                       user=fields.get("user", ""),
                       token=fields.get("token", ""),
                       token_hash=token_hash(fields.get("token", "")),
                       raw=base64.b64encode(blob).decode(), time=time.time())
        reply, why = self._why_refused(fields or None)
        hung_up = False
        if not reply and why:
            hung_up = not await self._error_challenge(attempt)
            reply = bad_credentials(self.tid)
        attempt.update(reply=reply or ACCEPTED, reason=why,
                       hung_up=hung_up)
        self.state.session_event(self.record, "auth", attempt)
        if hung_up:
            return AuthResult(success=False, handled=True)
        if not reply:
            return AuthResult(success=True, message=ACCEPTED, auth_data={
                "mailbox": attempt["user"], "mechanism": mechanism,
                "style": style, "token_hash": attempt["token_hash"]})
        return AuthResult(success=False, handled=False, message=reply)

    async def auth_XOAUTH2(self, _server, args: list) -> AuthResult:
        """XOAUTH2: user=MAILBOX^Aauth=Bearer TOKEN^A^A."""
        blob, style = await self._initial_response(args)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._authenticate("XOAUTH2", blob, style,
                                        parse_xoauth2(blob))

    async def auth_OAUTHBEARER(self, _server, args: list) -> AuthResult:
        """OAUTHBEARER (RFC 7628): n,a=MAILBOX,^Ahost=..^Aauth=Bearer T^A^A."""
        blob, style = await self._initial_response(args)
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._authenticate("OAUTHBEARER", blob, style,
                                        parse_oauthbearer(blob))

    async def _refuse_password(self, mechanism: str) -> AuthResult:
        """LOGIN and PLAIN: no app passwords here, refused at once."""
        reply = bad_credentials(self.tid)
        self.state.session_event(self.record, "auth", {
            "mechanism": mechanism, "reply": reply, "time": time.time()})
        return AuthResult(success=False, handled=False, message=reply)

    async def auth_LOGIN(self, _server, args: list) -> AuthResult:
        """LOGIN: the two prompts, then refused."""
        if len(args) == 1:
            await self.push("334 VXNlcm5hbWU6")
            await self._read_line()
        await self.push("334 UGFzc3dvcmQ6")
        await self._read_line()
        return await self._refuse_password("LOGIN")

    async def auth_PLAIN(self, _server, args: list) -> AuthResult:
        """PLAIN: the response (inline or after 334), then refused."""
        if len(args) == 1:
            await self.push("334 ")
            await self._read_line()
        return await self._refuse_password("PLAIN")


class GmailHandler:
    """aiosmtpd hooks: Gmail's EHLO keywords and message storage."""

    def __init__(self, state: StandinState):
        self.state = state

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses) -> list:  # noqa: N802 (aiosmtpd)
        """Gmail's EHLO keywords; STARTTLS before TLS, AUTH after it."""
        session.host_name = hostname
        server.state.session_event(server.record, "ehlo", hostname)
        peer = session.peer[0] if session.peer else "127.0.0.1"
        lines = [f"{GMAIL_HOST} at your service, [{peer}]",
                 "SIZE 35882577", "8BITMIME"]
        if "250-STARTTLS" in responses:
            lines.append("STARTTLS")
        if any(r.startswith("250-AUTH ") for r in responses):
            lines.append(GMAIL_AUTH_LINE)
        lines += ["ENHANCEDSTATUSCODES", "PIPELINING"]
        return [f"250-{line}" for line in lines[:-1]] + [f"250 {lines[-1]}"]

    async def handle_DATA(self, server, session, envelope) -> str:
        """Stores the message exactly as received and accepts it."""
        meta = {"mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "mail_options": list(envelope.mail_options),
                "auth": session.auth_data, "session": server.record["id"],
                "tls": session.ssl is not None, "received": time.time(),
                "persona": "gmail"}
        name = self.state.store_message(meta, envelope.original_content)
        self.state.session_event(server.record, "messages", name)
        return f"250 2.0.0 OK  {int(time.time())} {server.tid} - gsmtp"


def make_gmail_factory(state: StandinState, cert_file: str, key_file: str,
                       loop) -> Any:
    """A protocol factory for loop.create_server()."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    handler = GmailHandler(state)
    return lambda: GmailSMTP(handler, state, tls_context=context, loop=loop)
