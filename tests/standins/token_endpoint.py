"""Stand-in for the Microsoft identity platform v2.0 token endpoint.

What it is for: the token-helper fetches access tokens from
POST {authority}/{tenant}/oauth2/v2.0/token. This HTTPS server answers
exactly that request the way Microsoft does: client credentials with a
secret or a certificate (signed client assertion, checked by
standin_assertion.py), refresh token (confidential or public client), the
device code flow (POST /{tenant}/oauth2/v2.0/devicecode, then polls with
the device_code grant; codes kept by standin_device.py), success and error
bodies shaped as in the reference, 400 for errors and 401 for
invalid_client. Every request is recorded in StandinState, with the
outcome of each client assertion check. POST /token (Google's path, which
no Microsoft path can be) goes to the Google stand-in, standin_google.py;
its recordings carry "endpoint": "google-token".

Main types: TokenRequestHandler (one per request, run by a thread of
http.server.ThreadingHTTPServer) and AadError (an error answer in the
making). make_token_server() builds the listening server; the caller owns
the thread that runs serve_forever(). TokenListener owns such a server and
its thread and can close the listening socket (clients get connection
refused) and open it again on the same port, with the test CA's
certificate or with one from a second CA that clients do not trust.

Injected faults beyond a canned answer (control_api.py): "hang" accepts
the request and never answers until the fault is cleared (at most
hang_max_seconds), then hangs up; "delay_seconds" alone makes a slow but
otherwise normal answer; "pad_to_bytes": N makes a normal answer (a real
token, or a real device code) whose JSON body is padded with an extra
"x_padding" member to exactly N bytes, for the client's body size limit
(a 500 naming the problem if the natural body is already longer).

What it deliberately does not do: id_tokens, throttling by itself
(faults are injected through the control API instead), assertions on the
refresh token or device code grants of apps without certificates.

Follows /work/shared/reference/office365-smtp-oauth.md section 3
(grants, scopes per cloud, error body shape), RFC 6749 section 5,
RFC 7523 section 3 and RFC 8628.
"""

import dataclasses
import datetime
import http.server
import json
import re
import ssl
import threading
import time
import urllib.parse
import uuid
from typing import Optional

from standin_assertion import (JWT_BEARER, AssertionRejected,
                               verify_client_assertion)
from standin_google import (GoogleError, answer_google_token_request,
                            google_json)
from standin_state import CLOUDS, App, RefreshGrant, StandinState, token_hash

_TOKEN_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$")
_DEVICE_PATH = re.compile(r"^/([^/]+)/oauth2/v2\.0/devicecode$")
GOOGLE_TOKEN_PATH = "/token"
_DELEGATED_TENANTS = ("organizations", "common", "consumers")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_GRANTS = ("client_credentials", "refresh_token", DEVICE_GRANT)


@dataclasses.dataclass
class AadError(Exception):
    """An error answer: OAuth error name, AADSTS number and text."""

    error: str
    code: int
    message: str
    suberror: Optional[str] = None
    status: int = 400


def _missing(name: str) -> AadError:
    """The answer Microsoft gives when a form parameter is absent."""
    return AadError("invalid_request", 900144,
                    "The request body must contain the following "
                    f"parameter: '{name}'.")


def error_body(err: AadError, correlation_id: str) -> dict:
    """The JSON error body, field for field as Microsoft sends it."""
    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id = str(uuid.uuid4())
    body = {
        "error": err.error,
        "error_description": (
            f"AADSTS{err.code}: {err.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}"),
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
    }
    if err.suberror:
        body["suberror"] = err.suberror
    return body


def _compact(body: dict) -> bytes:
    """JSON without spaces, as Microsoft sends it."""
    return json.dumps(body, separators=(",", ":")).encode()


def padded(body: dict, size: int) -> Optional[bytes]:
    """`body` as compact JSON with an "x_padding" member of ASCII letters
    making it exactly `size` bytes; None if it cannot be that short."""
    bare = _compact(dict(body, x_padding=""))
    if len(bare) > size:
        return None
    return _compact(dict(body, x_padding="p" * (size - len(bare))))


def _check_assertion(state: StandinState, app: App, form: dict,
                     record: dict) -> None:
    """Verifies a client assertion against the app's certificates and
    records the outcome (in `record` and in the state)."""
    outcome = {"time": time.time(), "client_id": app.client_id,
               "token_url": record.get("token_url", ""),
               "client_secret_sent": "client_secret" in form}
    try:
        if form.get("client_assertion_type") != JWT_BEARER:
            raise AssertionRejected(
                7000216, "assertion_type",
                "'client_assertion_type' must be "
                f"'{JWT_BEARER}' when 'client_assertion' is sent.")
        checked = verify_client_assertion(
            form["client_assertion"], app.client_id, outcome["token_url"],
            app.certificates, state.jtis, outcome["time"])
        outcome.update(verified=True, reason="ok", **checked)
    except AssertionRejected as err:
        outcome.update(verified=False, reason=err.reason, code=err.code)
        raise AadError("invalid_client", err.code, err.message,
                       status=401) from err
    finally:
        record["assertion"] = outcome
        state.record_assertion(outcome)


def _authenticate_client(state: StandinState, app: App, form: dict,
                         record: dict) -> None:
    """Checks the client secret or assertion against the registration."""
    secret = form.get("client_secret")
    if app.public:
        if secret is not None or "client_assertion" in form:
            raise AadError("invalid_client", 700025,
                           "Client is public so neither 'client_assertion' "
                           "nor 'client_secret' should be presented.",
                           status=401)
        return
    if "client_assertion" in form:
        if secret is not None:
            raise AadError("invalid_request", 90014,
                           "Only one of 'client_assertion' and "
                           "'client_secret' may be presented.")
        _check_assertion(state, app, form, record)
        return
    if secret is None:
        raise AadError("invalid_client", 7000218,
                       "The request body must contain the following "
                       "parameter: 'client_assertion' or 'client_secret'.",
                       status=401)
    if secret != app.client_secret:
        raise AadError("invalid_client", 7000215,
                       "Invalid client secret provided. Ensure the secret "
                       "being sent in the request is the client secret "
                       "value, not the client secret ID, for a secret added "
                       f"to app '{app.client_id}'.", status=401)


def _find_app(state: StandinState, tenant: str, form: dict,
              delegated: bool) -> App:
    """The registered app the request names, checked against the tenant
    (a delegated flow may also use organizations, common, consumers)."""
    client_id = form.get("client_id")
    if not client_id:
        raise _missing("client_id")
    app = state.apps.get(client_id)
    tenant_ok = app is not None and (
        tenant.lower() == app.tenant.lower()
        or (delegated and tenant.lower() in _DELEGATED_TENANTS))
    if not tenant_ok:
        raise AadError("unauthorized_client", 700016,
                       f"Application with identifier '{client_id}' was not "
                       f"found in the directory '{tenant}'. This can happen "
                       "if the application has not been installed by the "
                       "administrator of the tenant or consented to by any "
                       "user in the tenant. You may have sent your "
                       "authentication request to the wrong tenant.")
    return app


def _client_credentials(state: StandinState, tenant: str, app: App,
                        form: dict) -> dict:
    """Grant client_credentials: app-only .default scope of the app's
    cloud; never a refresh token."""
    scope = form.get("scope")
    if not scope:
        raise _missing("scope")
    wanted = CLOUDS[app.cloud].app_only_scope
    if not scope.endswith("/.default"):
        raise AadError("invalid_scope", 1002012,
                       f"The provided value for scope {scope} is not valid. "
                       "Client credential flows must have a scope value "
                       "with /.default suffixed to the resource identifier "
                       "(application ID URI).")
    if scope != wanted:
        raise AadError("invalid_resource", 500011,
                       "The resource principal named "
                       f"{scope.removesuffix('/.default')} was not found in "
                       f"the tenant named {tenant}. This can happen if the "
                       "application has not been installed by the "
                       "administrator of the tenant or consented to by any "
                       "user in the tenant. You might have sent your "
                       "authentication request to the wrong tenant.")
    token = state.issue_access_token(app.send_as, app.client_id,
                                     "client_credentials")
    return {"token_type": "Bearer", "scope": scope,
            "expires_in": state.token_lifetime,
            "ext_expires_in": state.token_lifetime, "access_token": token}


def _refresh_token(state: StandinState, tenant: str, app: App,
                   form: dict) -> dict:
    """Grant refresh_token: needs the delegated SMTP.Send scope of the
    app's cloud; answers with a new refresh token every time."""
    presented = form.get("refresh_token")
    if not presented:
        raise _missing("refresh_token")
    scope = form.get("scope")
    if not scope:
        raise _missing("scope")
    smtp_scope = CLOUDS[app.cloud].delegated_scope
    if smtp_scope not in scope.split():
        raise AadError("invalid_scope", 70011,
                       "The provided request must include a 'scope' input "
                       "parameter. The provided value for the input "
                       f"parameter 'scope' is not valid. The scope {scope} "
                       "is not valid.")
    grant = state.refresh_grant(presented)
    if grant is None or grant.client_id != app.client_id:
        raise AadError("invalid_grant", 70000,
                       "Provided grant is invalid or malformed.")
    if grant.tenant.lower() != tenant.lower():
        raise AadError("invalid_grant", 7000012,
                       "The grant was obtained for a different tenant.")
    token = state.issue_access_token((grant.mailbox,), app.client_id,
                                     "refresh_token")
    return {"token_type": "Bearer", "scope": smtp_scope,
            "expires_in": state.token_lifetime,
            "ext_expires_in": state.token_lifetime, "access_token": token,
            "refresh_token": state.issue_refresh_token(grant)}


# What a device code poll that is not yet a sign-in gets (RFC 8628 3.5).
_DEVICE_ERRORS = {
    "pending": ("authorization_pending", 70016,
                "OAuth 2.0 device flow error. Authorization is pending. "
                "Continue polling."),
    "slow_down": ("slow_down", 70016,
                  "OAuth 2.0 device flow error. Polling too fast; add 5 "
                  "seconds to the interval."),
    "declined": ("authorization_declined", 70000,
                 "The user declined the sign-in request."),
    "expired": ("expired_token", 70020,
                "The provided value for the input parameter 'device_code' "
                "is not valid. Device codes are expired after 15 "
                "minutes."),
    "bad_code": ("bad_verification_code", 70019,
                 "The provided value for the input parameter 'device_code' "
                 "is not valid."),
    "redeemed": ("invalid_grant", 54005,
                 "OAuth2 Authorization code was already redeemed, please "
                 "retry with a new valid code or use an existing refresh "
                 "token."),
}


def _device_code(state: StandinState, app: App, form: dict) -> dict:
    """Grant device_code: pending until the user signs in, then tokens
    for the mailbox that signed in (a refresh token with offline_access)."""
    device_code = form.get("device_code")
    if not device_code:
        raise _missing("device_code")
    outcome = state.devices.poll(device_code, app.client_id)
    if outcome.status != "approved":
        raise AadError(*_DEVICE_ERRORS[outcome.status])
    code = outcome.code
    token = state.issue_access_token((code.mailbox,), app.client_id,
                                     DEVICE_GRANT)
    body = {"token_type": "Bearer",
            "scope": CLOUDS[app.cloud].delegated_scope,
            "expires_in": state.token_lifetime,
            "ext_expires_in": state.token_lifetime, "access_token": token}
    if "offline_access" in code.scope.split():
        body["refresh_token"] = state.issue_refresh_token(
            RefreshGrant(app.client_id, app.tenant, code.mailbox))
    return body


def answer_devicecode_request(state: StandinState, tenant: str,
                              form: dict) -> dict:
    """The devicecode answer (user and device code), or raises AadError."""
    app = _find_app(state, tenant, form, delegated=True)
    scope = form.get("scope")
    if not scope:
        raise _missing("scope")
    if CLOUDS[app.cloud].delegated_scope not in scope.split():
        raise AadError("invalid_scope", 70011,
                       "The provided request must include a 'scope' input "
                       "parameter. The provided value for the input "
                       f"parameter 'scope' is not valid. The scope {scope} "
                       "is not valid.")
    return state.devices.start(app.client_id, app.tenant, scope)


def answer_token_request(state: StandinState, tenant: str, form: dict,
                         record: Optional[dict] = None) -> dict:
    """The success body for a token request, or raises AadError. `record`
    (the request's recording) receives the assertion check outcome and
    gives the token URL the client asked, the audience it must sign."""
    record = {} if record is None else record
    grant_type = form.get("grant_type")
    if not grant_type:
        raise _missing("grant_type")
    if grant_type not in _GRANTS:
        raise AadError("unsupported_grant_type", 70003,
                       f"The app requested an unsupported grant type "
                       f"'{grant_type}'.")
    app = _find_app(state, tenant, form,
                    delegated=grant_type != "client_credentials")
    _authenticate_client(state, app, form, record)
    if grant_type == "client_credentials":
        return _client_credentials(state, tenant, app, form)
    if grant_type == DEVICE_GRANT:
        return _device_code(state, app, form)
    return _refresh_token(state, tenant, app, form)


class TokenRequestHandler(http.server.BaseHTTPRequestHandler):
    """Serves POST /{tenant}/oauth2/v2.0/token and .../devicecode."""

    protocol_version = "HTTP/1.1"
    server_version = "standin-aad"
    timeout = 30

    def log_message(self, format, *args):  # noqa: A002 (http.server API)
        """Request logging goes to the recording, not to stderr."""

    def _send(self, status: int, body: bytes, content_type: str,
              headers: Optional[dict] = None) -> None:
        """Writes one complete response."""
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Pragma", "no-cache")
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.end_headers()
        self.wfile.write(body)

    def _read_form(self) -> tuple[str, dict]:
        """The raw body and its form fields (first value of each)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace")
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("application/x-www-form-urlencoded"):
            return raw, {}
        pairs = urllib.parse.parse_qsl(raw, keep_blank_values=True)
        form: dict = {}
        for name, value in pairs:
            form.setdefault(name, value)
        return raw, form

    def _send_fault(self, fault: dict, correlation_id: str) -> int:
        """Answers with an injected fault (raw body or AADSTS error)."""
        status = int(fault.get("status", 500))
        if "aad_error" in fault:
            spec = fault["aad_error"]
            err = AadError(spec["error"], int(spec["code"]),
                           spec.get("message", "Injected failure."),
                           spec.get("suberror"), status)
            body = _compact(error_body(err, correlation_id))
            ctype = "application/json; charset=utf-8"
        else:
            body = fault.get("body", "").encode()
            ctype = fault.get("content_type", "text/html")
        self._send(status, body, ctype, fault.get("headers"))
        return status

    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        """Answers one token request and records it; counted as in flight
        until then."""
        self.server.state.token_request_started()
        try:
            self._serve_post()
        finally:
            self.server.state.token_request_finished()

    def _hold(self, fault: dict) -> Optional[dict]:
        """Plays the timing part of a fault: sleeps delay_seconds, or for
        a hang waits until the fault is cleared. Returns the fault still
        to answer with (None: answer normally)."""
        time.sleep(float(fault.get("delay_seconds", 0)))
        if fault.get("hang"):
            self.server.state.wait_fault_cleared(
                str(fault.get("label", "unlabelled")),
                float(fault.get("hang_max_seconds", 60)))
            return fault
        canned = ("status", "body", "aad_error")
        return fault if any(key in fault for key in canned) else None

    def _serve_post(self) -> None:
        """Answers one token request and records it."""
        raw, form = self._read_form()
        correlation_id = (self.headers.get("client-request-id")
                          or str(uuid.uuid4()))
        record = {"time": time.time(), "method": "POST", "path": self.path,
                  "content_type": self.headers.get("Content-Type"),
                  "body": raw, "form": form}

        # An injected fault wins over everything, as an outage would.
        fault = self.server.state.take_token_fault()
        pad_to = None
        if fault is not None:
            record["fault"] = str(fault.get("label", "unlabelled"))
            pad_to = fault.get("pad_to_bytes")
            fault = self._hold(fault)
        path = urllib.parse.urlsplit(self.path).path
        match = _TOKEN_PATH.match(path) or _DEVICE_PATH.match(path)
        if fault is not None and fault.get("hang"):
            # Hang up without a word, as a dead upstream behind a proxy.
            record["status"] = "hung-up"
            self.close_connection = True
        elif fault is not None:
            record["status"] = self._send_fault(fault, correlation_id)
        elif path == GOOGLE_TOKEN_PATH:
            record["endpoint"] = "google-token"
            record["status"] = self._answer_google(record, form)
        elif match is None:
            record["status"] = 404
            self._send(404, b"", "text/html")
        else:
            record["tenant"] = urllib.parse.unquote(match.group(1))
            record["endpoint"] = path.rsplit("/", 1)[1]
            # The URL the client asked for: what an assertion's aud must be.
            record["token_url"] = f"https://{self.headers.get('Host')}{path}"
            record["status"] = self._answer(record, form, correlation_id,
                                            pad_to)
        self.server.state.record_token_request(record)

    def _answer(self, record: dict, form: dict, correlation_id: str,
                pad_to: Optional[int] = None) -> int:
        """Runs the grant (or devicecode request) and writes the JSON
        answer, padded to `pad_to` bytes when given; returns the status."""
        state = self.server.state
        try:
            if record["endpoint"] == "devicecode":
                body = answer_devicecode_request(state, record["tenant"],
                                                 form)
            else:
                body = answer_token_request(state, record["tenant"], form,
                                            record)
                record["issued"] = token_hash(body["access_token"])
            status = 200
        except AadError as err:
            body = error_body(err, correlation_id)
            status = err.status
            record["error"] = err.error
            record["error_code"] = err.code
        raw = _compact(body)
        if pad_to is not None:
            raw = padded(body, int(pad_to))
            if raw is None:
                status = 500
                raw = _compact({"error": "server_error",
                                "error_description": f"pad_to_bytes {pad_to}"
                                " is shorter than the answer itself"})
            record["response_bytes"] = len(raw)
        self._send(status, raw, "application/json; charset=utf-8")
        record["response"] = body
        return status

    def _answer_google(self, record: dict, form: dict) -> int:
        """Runs Google's refresh token grant and writes its JSON answer;
        returns the status."""
        try:
            body = answer_google_token_request(self.server.state, form)
            record["issued"] = token_hash(body["access_token"])
            status = 200
        except GoogleError as err:
            body, status = err.body(), err.status
            record["error"] = err.error
        self._send(status, google_json(body),
                   "application/json; charset=utf-8")
        record["response"] = body
        return status

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        """Anything but POST is not part of the stand-in."""
        self._send(405, b"", "text/html")


class _TlsThreadingServer(http.server.ThreadingHTTPServer):
    """A threading HTTPS server whose TLS handshake runs in the request
    thread, so one silent client cannot stall the accept loop."""

    daemon_threads = True

    def __init__(self, state: StandinState, context: ssl.SSLContext,
                 port: int = 0):
        super().__init__(("127.0.0.1", port), TokenRequestHandler)
        self.state = state
        self.socket = context.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)

    def finish_request(self, request, client_address) -> None:
        """Completes the TLS handshake, then serves the request."""
        request.settimeout(TokenRequestHandler.timeout)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError) as err:
            self.state.record_tls_failure(str(err))
            return
        super().finish_request(request, client_address)


def _server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server-side TLS context with one certificate."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def make_token_server(state: StandinState, cert_file: str, key_file: str,
                      port: int = 0) -> http.server.ThreadingHTTPServer:
    """A listening (not yet serving) HTTPS token endpoint on 127.0.0.1."""
    return _TlsThreadingServer(state, _server_context(cert_file, key_file),
                               port)


class TokenListener:
    """The token endpoint's listening socket and serving thread, which the
    control API can close and reopen (same port) with either certificate.

    `certificates` maps a name ("trusted", "untrusted") to a function
    returning (cert_file, key_file); it is called on first use, so the
    second CA is only made when a test asks for it. Methods are called
    from control API threads; one lock keeps them in order."""

    def __init__(self, state: StandinState, certificates: dict):
        self.state = state
        self._certificates = certificates
        self._lock = threading.Lock()
        self._server: Optional[http.server.ThreadingHTTPServer] = None
        self.port = 0
        self.certificate = ""

    def start(self, certificate: str = "trusted") -> None:
        """Listens (again) on the same port, serving `certificate`."""
        if certificate not in self._certificates:
            raise ValueError("certificate must be one of "
                             f"{sorted(self._certificates)}")
        with self._lock:
            self._close()
            cert_file, key_file = self._certificates[certificate]()
            self._server = make_token_server(self.state, cert_file, key_file,
                                             self.port)
            self.port = self._server.server_address[1]
            self.certificate = certificate
            threading.Thread(target=self._server.serve_forever,
                             daemon=True).start()

    def stop(self) -> None:
        """Closes the listening socket: new connections are refused.
        Requests already accepted finish on their own threads."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        """Stops serving and closes the socket, if open."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def describe(self) -> dict:
        """Whether it listens and with which certificate."""
        with self._lock:
            return {"listening": self._server is not None,
                    "certificate": self.certificate, "port": self.port}
