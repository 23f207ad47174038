"""Test certificate authority for the Office 365 stand-ins.

What it is for: at start-up the stand-in process makes a throw-away CA and
one server certificate for 127.0.0.1, ::1 and localhost, so the token-helper
(libcurl) and Postfix can verify the stand-ins' TLS against a CA file that
exists only for the test run.

Main entry point: make_test_pki(directory) -> TestPki (paths of ca.pem,
server.pem, server.key). Pure function of the clock and randomness; holds no
threads and no state.

What it deliberately does not do: no revocation, no intermediate CA, no
client certificates. Keys are ECDSA P-256 because they are quick to make;
nothing here is fit to protect real traffic.

Follows RFC 5280 (basicConstraints, keyUsage, subjectAltName with IP
addresses so clients need no DNS).
"""

import dataclasses
import datetime
import ipaddress
import os
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclasses.dataclass(frozen=True)
class TestPki:
    """Where the CA certificate and the server key pair were written."""

    ca_file: pathlib.Path
    cert_file: pathlib.Path
    key_file: pathlib.Path


def _name(common_name: str) -> x509.Name:
    """A subject/issuer name with a fixed test organisation."""
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "xoauth2-relay tests"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _builder(subject: str, issuer: str, public_key) -> x509.CertificateBuilder:
    """A certificate builder valid from an hour ago for two days."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name(issuer))
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2)))


def _write(path: pathlib.Path, data: bytes, mode: int) -> None:
    """Writes `data` to `path` with file mode `mode`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)


def make_test_pki(directory: pathlib.Path) -> TestPki:
    """Creates a CA and a loopback server certificate under `directory`."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (_builder("xoauth2-relay test CA", "xoauth2-relay test CA",
                        ca_key.public_key())
               .add_extension(x509.BasicConstraints(ca=True, path_length=0),
                              critical=True)
               .add_extension(x509.KeyUsage(
                   digital_signature=False, content_commitment=False,
                   key_encipherment=False, data_encipherment=False,
                   key_agreement=False, key_cert_sign=True, crl_sign=True,
                   encipher_only=False, decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))

    # The server certificate names loopback by IP so no resolver is needed.
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"),
             x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
             x509.IPAddress(ipaddress.ip_address("::1"))]
    cert = (_builder("127.0.0.1", "xoauth2-relay test CA", key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                           critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))

    pem = serialization.Encoding.PEM
    pki = TestPki(directory / "ca.pem", directory / "server.pem",
                  directory / "server.key")
    _write(pki.ca_file, ca_cert.public_bytes(pem), 0o644)
    _write(pki.cert_file, cert.public_bytes(pem), 0o644)
    _write(pki.key_file, key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), 0o600)
    return pki
