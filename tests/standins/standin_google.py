"""Stand-in for Google's OAuth 2.0 token endpoint (refresh token grant).

What it is for: token-helper accounts with "provider": "google" fetch
access tokens from POST {authority}/token (oauth2.googleapis.com). The
stand-in answers that path, on the same HTTPS listener as the Microsoft
paths (token_endpoint.py routes /token here), the way Google does for
Gmail SMTP:

  refresh_token grant with client_id and client_secret, scope optional
  (when sent it must be within what the refresh token was granted);
  success: {"access_token": "ya29....", "expires_in": 3599,
            "scope": "https://mail.google.com/", "token_type": "Bearer"},
  no refresh_token in the answer (Google does not rotate it);
  errors: HTTP 400 {"error": "invalid_grant", "error_description":
  "Token has been expired or revoked."} for an unknown or revoked refresh
  token, 401 invalid_client for an unknown client or a wrong secret,
  400 invalid_request / unsupported_grant_type for malformed requests.
Bodies are pretty-printed JSON with two-space indents, as Google sends
them. An issued access token may send mail as the refresh token's
mailbox only (checked by the SMTP stand-ins through StandinState).

Configuration (the "google" member of the stand-in config, all optional):

    {"clients": [{"client_id": "...apps.googleusercontent.com",
                  "client_secret": "GOCSPX-..."}],
     "refresh_tokens": [{"refresh_token": "1//...", "client_id": "...",
                         "mailbox": "user@gmail.example",
                         "revoked": false}]}

Main types: GoogleRegistry (clients, refresh tokens, revocations; its own
lock, any thread may call it) and GoogleError (an error answer in the
making). answer_google_token_request() runs one request.

What it deliberately does not do: the authorization code or device flows,
service accounts (JWT bearer grant), id_tokens, or the /revoke endpoint
(tests revoke through the control API, POST /google/revoke).

Follows Google's "Using OAuth 2.0 for Web Server Applications" (refreshing
an access token, revoking) and RFC 6749 sections 5 and 6, and
/work/shared/reference/office365-smtp-oauth.md section 4.
"""

import dataclasses
import json
import threading
from typing import Optional

GMAIL_SCOPE = "https://mail.google.com/"
REVOKED = "Token has been expired or revoked."


@dataclasses.dataclass
class GoogleError(Exception):
    """An error answer: OAuth error name, description, HTTP status."""

    error: str
    description: str
    status: int = 400

    def body(self) -> dict:
        """The JSON error body as Google words it."""
        return {"error": self.error, "error_description": self.description}


@dataclasses.dataclass(frozen=True)
class GoogleRefreshToken:
    """What a Google refresh token was issued for."""

    client_id: str
    mailbox: str


def google_json(body: dict) -> bytes:
    """JSON the way Google's token endpoint prints it (2-space indent)."""
    return json.dumps(body, indent=2).encode() + b"\n"


class GoogleRegistry:
    """Registered OAuth clients and refresh tokens; revocations."""

    def __init__(self, config: dict):
        self._lock = threading.Lock()
        self.clients = {c["client_id"]: c["client_secret"]
                        for c in config.get("clients", [])}
        self._refresh = {
            e["refresh_token"]: GoogleRefreshToken(e["client_id"],
                                                   e["mailbox"])
            for e in config.get("refresh_tokens", [])}
        self._revoked = {e["refresh_token"]
                         for e in config.get("refresh_tokens", [])
                         if e.get("revoked")}

    def lookup(self, refresh_token: str) -> Optional[GoogleRefreshToken]:
        """The binding of a live refresh token; None if unknown/revoked."""
        with self._lock:
            if refresh_token in self._revoked:
                return None
            return self._refresh.get(refresh_token)

    def revoke(self, refresh_token: str) -> None:
        """Revokes a refresh token (the user removed the app's access)."""
        with self._lock:
            if refresh_token not in self._refresh:
                raise ValueError("unknown Google refresh token")
            self._revoked.add(refresh_token)

    def revoked(self) -> list[str]:
        """The revoked refresh tokens (for /state)."""
        with self._lock:
            return sorted(self._revoked)


def _authenticate(registry: GoogleRegistry, form: dict) -> str:
    """Checks client_id and client_secret; returns the client id."""
    client_id = form.get("client_id", "")
    if client_id not in registry.clients:
        raise GoogleError("invalid_client", "The OAuth client was not "
                          "found.", 401)
    if form.get("client_secret") != registry.clients[client_id]:
        raise GoogleError("invalid_client", "Unauthorized", 401)
    return client_id


def answer_google_token_request(state, form: dict) -> dict:
    """The success body for POST /token, or raises GoogleError. `state`
    is the StandinState that issues (and later checks) access tokens."""
    registry: GoogleRegistry = state.google
    grant_type = form.get("grant_type", "")
    if grant_type != "refresh_token":
        raise GoogleError("unsupported_grant_type",
                          f"Invalid grant_type: {grant_type}")
    presented = form.get("refresh_token")
    if not presented:
        raise GoogleError("invalid_request",
                          "Missing required parameter: refresh_token")
    client_id = _authenticate(registry, form)

    # Unknown, revoked or another client's token: all the same to Google.
    grant = registry.lookup(presented)
    if grant is None or grant.client_id != client_id:
        raise GoogleError("invalid_grant", REVOKED)
    scope = form.get("scope")
    if scope is not None and scope.split() != [GMAIL_SCOPE]:
        raise GoogleError("invalid_scope", "Bad Request")
    token = state.issue_access_token((grant.mailbox,), client_id,
                                     "google_refresh_token", "ya29.")
    return {"access_token": token, "expires_in": state.token_lifetime,
            "scope": GMAIL_SCOPE, "token_type": "Bearer"}
