"""Plain-HTTP control API of the Office 365 stand-ins, loopback only.

What it is for: tests switch fault modes and read what the stand-ins saw.

    GET  /state            recordings: token_requests, assertions (each
                           client assertion check: verified, reason,
                           header, claims), device_codes, smtp_sessions,
                           smtp_auth_mode, token_fault (JSON)
    POST /smtp/auth-mode   {"mode": "accept"} | {"mode": "refuse"}
                           (535 5.7.3 for every token) |
                           {"mode": "reply", "reply": "535 5.7.139 ..."} |
                           {"mode": "challenge"} (Gmail-style 334 error
                           challenge, then 535; Office 365 never does it)
    POST /token/fault      {"status": 500, "body": "<html>...",
                            "content_type": "text/html", "headers": {...},
                            "count": N}  or
                           {"status": 400, "aad_error": {"error":
                            "invalid_grant", "code": 70043, "message": "...",
                            "suberror": "token_expired"}, "count": N}
                           without "count" the fault stays until cleared
                           extra keys for the fault tests: "label" (hits
                           are counted per label in /state
                           token_fault_hits), "hang": true (accept, never
                           answer until cleared or "hang_max_seconds",
                           then hang up), "delay_seconds": S (answer S
                           seconds late; alone: a slow normal answer),
                           "pad_to_bytes": N (a normal answer whose JSON
                           is padded to exactly N bytes)
    DELETE /token/fault    clear the fault
    POST /token/lifetime   {"seconds": N}: expires_in of tokens issued
                           from now on
    POST /token/listener   {"listening": false}: close the endpoint's
                           socket (connection refused);
                           {"listening": true, "certificate": "trusted" |
                           "untrusted"}: listen again on the same port,
                           with the test CA's certificate or one from a
                           CA nobody trusts
    POST /token/invalidate {"access_token": "..."}: the SMTP stand-ins
                           refuse that issued token from now on
    POST /google/revoke    {"refresh_token": "..."}: the Google endpoint
                           answers invalid_grant for it from now on
    POST /device/approve   {"user_code": "...", "mailbox": "..."}: the user
                           signs in; the next poll gets tokens for mailbox
    POST /device/decline   {"user_code": "..."}: authorization_declined
    POST /device/expire    {"user_code": "..."}: expired_token
    POST /device/slow-down {"user_code": "...", "count": N}: the next N
                           polls answer slow_down

Answers are JSON; a bad request gets 400 {"error": "..."}.

Main types: ControlHandler, run by a http.server.ThreadingHTTPServer the
caller owns (make_control_server()).

What it deliberately does not do: authentication (it listens on 127.0.0.1
only and exists only in tests), or anything beyond the modes above. An
unknown /device/ action or user code is a 400, not a 404.
"""

import http.server
import json

from standin_state import StandinState


class ControlHandler(http.server.BaseHTTPRequestHandler):
    """One control request."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 (http.server API)
        """Control requests are not logged."""

    def _reply(self, status: int, payload) -> None:
        """Sends `payload` as JSON."""
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> dict:
        """The JSON request body ({} when empty)."""
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        """Reads the recordings."""
        if self.path == "/state":
            snapshot = self.server.state.snapshot()
            if self.server.token_listener is not None:
                snapshot["token_listener"] = (
                    self.server.token_listener.describe())
            self._reply(200, snapshot)
        else:
            self._reply(404, {"error": f"no such resource {self.path}"})

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        """Switches a mode."""
        state: StandinState = self.server.state
        try:
            body = self._body()
            if self.path == "/smtp/auth-mode":
                state.set_smtp_auth_mode(body)
            elif self.path == "/token/fault":
                state.set_token_fault(body)
            elif self.path == "/token/lifetime":
                state.set_token_lifetime(int(body["seconds"]))
            elif self.path == "/token/listener":
                self._switch_listener(body)
            elif self.path == "/token/invalidate":
                state.invalidate_access_token(str(body["access_token"]))
            elif self.path == "/google/revoke":
                state.google.revoke(str(body["refresh_token"]))
            elif self.path.startswith("/device/"):
                action = self.path.removeprefix("/device/")
                state.devices.act(action.replace("-", "_"),
                                  str(body.get("user_code", "")),
                                  str(body.get("mailbox", "")),
                                  int(body.get("count", 1)))
            else:
                self._reply(404, {"error": f"no such resource {self.path}"})
                return
        except (ValueError, TypeError, KeyError) as err:
            self._reply(400, {"error": str(err)})
            return
        self._reply(200, {"ok": True})

    def _switch_listener(self, body: dict) -> None:
        """Closes or (re)opens the token endpoint's listening socket."""
        listener = self.server.token_listener
        if listener is None:
            raise ValueError("this control server has no token listener")
        if body.get("listening", True):
            listener.start(str(body.get("certificate", "trusted")))
        else:
            listener.stop()

    def do_DELETE(self) -> None:  # noqa: N802 (http.server API)
        """Clears the token endpoint fault."""
        if self.path == "/token/fault":
            self.server.state.set_token_fault(None)
            self._reply(200, {"ok": True})
        else:
            self._reply(404, {"error": f"no such resource {self.path}"})


def make_control_server(
        state: StandinState,
        token_listener=None) -> http.server.ThreadingHTTPServer:
    """A listening (not yet serving) control server on 127.0.0.1;
    `token_listener` (token_endpoint.TokenListener) enables
    /token/listener."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             ControlHandler)
    server.daemon_threads = True
    server.state = state
    server.token_listener = token_listener
    return server
