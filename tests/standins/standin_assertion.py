"""Verification of certificate client assertions (signed JWTs) for the
stand-in token endpoint.

What it is for: a confidential client that holds a certificate instead of
a secret sends client_assertion_type=urn:ietf:params:oauth:client-
assertion-type:jwt-bearer and client_assertion=<JWT>. Microsoft checks
that JWT against the certificates uploaded to the app registration; this
module does the same checks, strictly, so the e2e tests prove that the
token-helper signs correctly:

  header   exactly {"alg", "typ", "x5t#S256"}: alg PS256 or RS256, typ JWT,
           x5t#S256 = base64url (unpadded) SHA-256 of a registered
           certificate's DER
  signature PS256: RSA-PSS, MGF1 SHA-256, salt length 32 (enforced);
           RS256: RSASSA-PKCS1-v1_5 SHA-256
  claims   aud = the exact token URL requested, iss = sub = client_id,
           jti never seen before, nbf <= now <= exp, exp - iat <= 600

Main types: AssertionRejected (why an assertion was refused: AADSTS number,
short reason for tests, Microsoft-style text) and JtiRegistry (the jti
values already accepted, thread-safe). verify_client_assertion() returns
the verified header and claims or raises AssertionRejected.

The AADSTS numbers follow what Microsoft is seen to answer (700027 bad
signature or unknown key, 700024 time range, 700021 issuer/subject,
50027 malformed token); the others are plausible stand-ins. Microsoft
says not to branch on them, and the token-helper does not.

What it deliberately does not do: x5c chains, EC keys, clock skew leeway,
certificate validity dates or revocation.

Follows RFC 7515 (JWS), RFC 7519 (JWT), RFC 7523 section 3 (client
authentication with a JWT), and the reference section 3 (certificate row).
"""

import base64
import binascii
import dataclasses
import hashlib
import json
import threading
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_LIFETIME_SECONDS = 600
_HEADER_KEYS = {"alg", "typ", "x5t#S256"}


@dataclasses.dataclass
class AssertionRejected(Exception):
    """An assertion Microsoft would refuse with 401 invalid_client."""

    code: int
    reason: str   # short, stable, for test assertions
    message: str  # the AADSTS text


def b64url_decode(text: str) -> bytes:
    """base64url without padding (RFC 7515 section 2); ValueError if bad."""
    if "=" in text or not text:
        raise ValueError("padded or empty base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:
        raise ValueError(str(err)) from err


def thumbprint_s256(certificate: x509.Certificate) -> str:
    """x5t#S256: base64url (unpadded) SHA-256 of the DER certificate."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class JtiRegistry:
    """The jti values of accepted assertions; a second use is a replay."""

    def __init__(self):
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()

    def first_use(self, client_id: str, jti: str) -> bool:
        """Records `jti` for `client_id`; False if it was seen before."""
        with self._lock:
            key = (client_id, jti)
            if key in self._seen:
                return False
            self._seen.add(key)
            return True


def _malformed(why: str) -> AssertionRejected:
    """A token that is not a well-formed JWS/JWT."""
    return AssertionRejected(50027, "malformed",
                             f"JWT token is invalid or malformed: {why}.")


def _split(assertion: str) -> tuple[dict, dict, bytes, bytes]:
    """Header, claims, signed input and signature of a compact JWS."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise _malformed("expected three dot-separated parts")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except ValueError as err:
        raise _malformed(str(err)) from err
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise _malformed("header and claims must be JSON objects")
    return header, claims, f"{parts[0]}.{parts[1]}".encode(), signature


def _check_header(header: dict) -> None:
    """Exactly alg (PS256 or RS256), typ JWT and x5t#S256."""
    if set(header) != _HEADER_KEYS:
        raise _malformed(f"header members {sorted(header)}, expected "
                         f"{sorted(_HEADER_KEYS)}")
    if header["alg"] not in ("PS256", "RS256"):
        raise AssertionRejected(
            700027, "alg", "Client assertion contains an invalid signature. "
            f"[Reason - The algorithm '{header['alg']}' is not supported.]")
    if header["typ"] != "JWT":
        raise _malformed(f"typ is {header['typ']!r}, expected 'JWT'")


def _find_certificate(header: dict, client_id: str,
                      certificates: Iterable[x509.Certificate]):
    """The registered certificate the header's x5t#S256 names."""
    for certificate in certificates:
        if thumbprint_s256(certificate) == header["x5t#S256"]:
            return certificate
    raise AssertionRejected(
        700027, "key_not_found",
        "Client assertion contains an invalid signature. [Reason - The key "
        "was not found., Thumbprint of key used by client: "
        f"'{header['x5t#S256']}', Please visit the Azure Portal, Graph "
        "Explorer or directly use MS Graph to see configured keys for app "
        f"Id '{client_id}'.]")


def _check_signature(header: dict, certificate: x509.Certificate,
                     signed: bytes, signature: bytes) -> None:
    """PS256 (PSS, MGF1 SHA-256, 32-byte salt) or RS256 over `signed`."""
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise AssertionRejected(700027, "key_type",
                                "Client assertion contains an invalid "
                                "signature. [Reason - The key is not RSA.]")
    if header["alg"] == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        pad = padding.PKCS1v15()
    try:
        key.verify(signature, signed, pad, hashes.SHA256())
    except InvalidSignature as err:
        raise AssertionRejected(
            700027, "signature",
            "Client assertion contains an invalid signature. [Reason - The "
            "provided signature value did not match the expected signature "
            "value.]") from err


def _number(claims: dict, name: str) -> float:
    """A numeric time claim; missing or not a number is malformed."""
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _malformed(f"claim {name} missing or not a number")
    return value


def _check_time(claims: dict, now: float) -> None:
    """nbf <= now <= exp and exp - iat <= 600 s."""
    nbf, exp, iat = (_number(claims, n) for n in ("nbf", "exp", "iat"))
    if not nbf <= now <= exp or exp - iat > MAX_LIFETIME_SECONDS:
        raise AssertionRejected(
            700024, "time",
            "Client assertion is not within its valid time range. Current "
            f"time: {now:.0f}, assertion valid from {nbf}, expiry time of "
            f"assertion {exp}, issued at {iat}; lifetime at most "
            f"{MAX_LIFETIME_SECONDS} s.")


def _check_claims(claims: dict, client_id: str, token_url: str) -> None:
    """aud is the token URL; iss and sub are the client id; jti is set."""
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise AssertionRejected(
            700021, "issuer",
            "Client assertion application identifier doesn't match "
            "'client_id' parameter. Review the documentation at "
            "https://learn.microsoft.com/entra/identity-platform/"
            "certificate-credentials .")
    if claims.get("aud") != token_url:
        raise AssertionRejected(
            700212, "audience",
            f"Client assertion audience claim {claims.get('aud')!r} does "
            f"not match the token endpoint {token_url!r}.")
    if not isinstance(claims.get("jti"), str) or not claims["jti"]:
        raise _malformed("claim jti missing")


def verify_client_assertion(assertion: str, client_id: str, token_url: str,
                            certificates: Iterable[x509.Certificate],
                            jtis: JtiRegistry, now: float) -> dict:
    """Checks one client assertion; returns {"header", "claims"} or raises
    AssertionRejected. The jti is recorded only once all else passed."""
    header, claims, signed, signature = _split(assertion)
    _check_header(header)
    certificate = _find_certificate(header, client_id, certificates)
    _check_signature(header, certificate, signed, signature)
    _check_claims(claims, client_id, token_url)
    _check_time(claims, now)
    if not jtis.first_use(client_id, claims["jti"]):
        raise AssertionRejected(
            7000215, "replay",
            f"The client assertion with jti '{claims['jti']}' was already "
            "used. Send a new assertion with a unique jti for each request.")
    return {"header": header, "claims": claims}


def load_certificates(pems: Iterable[str]) -> tuple[x509.Certificate, ...]:
    """Parses the PEM certificates of an app registration."""
    return tuple(x509.load_pem_x509_certificate(pem.encode())
                 for pem in pems)
