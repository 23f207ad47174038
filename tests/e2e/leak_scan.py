"""Leak scan: finds secrets, tokens and their encodings in logs and
command output, and names what leaked where without printing it.

What it is for: every e2e and fault test ends with RelayEnvironment.close()
(tests/e2e/harness.py), which collects every secret the test configured
and every token the stand-ins issued or received, and scans the helper's
logs, the Postfix maillog and every recorded token-helper output with
this module. tests/e2e/test_leak_scan.py proves it finds planted leaks.

Main types: SecretSet (the values to look for, each under a kind such as
"client secret", expanded into the forms a leak could take), Leak (one
finding: kind, form, source, line number) and LeakReport (the findings and
the reasons a scan could not be complete). account_secrets,
standin_config_secrets and standin_state_secrets know where secrets sit
in a helper configuration, in the stand-ins' registrations and in their
recordings (tests/standins/standin_state.py); they read the secret files
a configuration names and nothing else. No threads, no processes.

Forms looked for (forms()): the raw value; percent-encoded as RFC 3986
and curl_easy_escape do (upper- and lower-case hex); form-encoded (space
as "+"); JSON-escaped; and base64 in the standard and the URL-safe
alphabet at each of the three byte alignments, so a value is found even
inside a longer encoded string (an XOAUTH2 or OAUTHBEARER initial
response, a JWT).

What it deliberately does not do: find fragments shorter than the whole
value (a logged prefix of a token is not found), hex or other encodings,
or print a secret: a Leak names the kind and form, never the value.
Values shorter than MIN_LENGTH are refused (LeakReport.problems), since a
short value could match innocent text and make the scan meaningless.
"""

import base64
import bisect
import dataclasses
import json
import pathlib
import re
import urllib.parse

# A secret shorter than this cannot be told from innocent text.
MIN_LENGTH = 12
# At most this many findings are spelled out in a failure message.
MAX_REPORTED = 25


def _percent_lower(encoded: str) -> str:
    """A percent-encoded string with lower-case hex digits."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)


def _base64_forms(data: bytes) -> list[tuple[str, str]]:
    """The base64 characters that encode `data` wherever it starts inside
    a longer input: for each byte alignment 0..2, the run of characters
    fixed by `data` alone, in both alphabets."""
    found = []
    for shift in range(3):
        first = -(-8 * shift // 6)  # first character free of the padding
        end = 8 * (shift + len(data)) // 6  # last character fully ours
        for name, encode in (("base64", base64.b64encode),
                             ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + data).decode()[first:end]
            found.append((f"{name}@{shift}", text))
    return found


def forms(value: str) -> list[tuple[str, str]]:
    """(form name, text) for every form `value` could leak in."""
    quoted = urllib.parse.quote(value, safe="")
    found = [("raw", value), ("percent-encoded", quoted),
             ("percent-encoded", _percent_lower(quoted)),
             ("form-encoded", urllib.parse.quote_plus(value, safe="")),
             ("JSON-escaped", json.dumps(value)[1:-1])]
    return found + _base64_forms(value.encode())


@dataclasses.dataclass(frozen=True, order=True)
class Leak:
    """One value found where it must not be (the value itself is not
    kept, so a report cannot spread it further)."""

    source: str
    line: int
    kind: str
    form: str

    def describe(self) -> str:
        """`kind (form) in source at line N`."""
        return (f"{self.kind} ({self.form}) in {self.source} "
                f"at line {self.line}")


@dataclasses.dataclass
class LeakReport:
    """The findings of one scan and what kept it from being complete."""

    leaks: list[Leak] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    sources: list[str] = dataclasses.field(default_factory=list)
    values: int = 0
    kinds: set[str] = dataclasses.field(default_factory=set)

    def summary(self) -> str:
        """One line of figures: sources, values, kinds, leaks."""
        return (f"sources={len(self.sources)} values={self.values} "
                f"kinds={','.join(sorted(self.kinds)).replace(' ', '_')} "
                f"leaks={len(self.leaks)} problems={len(self.problems)}")

    def failure(self) -> str:
        """The failure message, or "" when the scan found nothing and
        was complete."""
        if not self.leaks and not self.problems:
            return ""
        lines = [f"secret leak scan: {len(self.leaks)} leak(s) in "
                 f"{len(self.sources)} source(s), {self.values} value(s) of "
                 f"kinds {sorted(self.kinds)}"]
        lines += ["  LEAK " + leak.describe()
                  for leak in sorted(self.leaks)[:MAX_REPORTED]]
        if len(self.leaks) > MAX_REPORTED:
            lines.append(f"  ... and {len(self.leaks) - MAX_REPORTED} more")
        lines += ["  INCOMPLETE " + problem for problem in self.problems]
        return "\n".join(lines)

    def check(self) -> None:
        """Raises AssertionError with failure() when there is one."""
        message = self.failure()
        if message:
            raise AssertionError(message)


class SecretSet:
    """The values a scan looks for, by kind, in all their forms."""

    def __init__(self):
        self._needles: dict[str, tuple[str, str]] = {}  # text: kind, form
        self._values: set[str] = set()
        self.kinds: set[str] = set()
        self.problems: list[str] = []

    def add(self, kind: str, value: str) -> None:
        """Looks for `value` (ignored when empty) as a `kind` from now on;
        a value too short to scan for is noted as a problem."""
        if not value or value in self._values:
            return
        if len(value) < MIN_LENGTH:
            self.problems.append(
                f"a {kind} of {len(value)} characters is too short to scan "
                f"for; configure a distinctive value of at least "
                f"{MIN_LENGTH}")
            return
        self._values.add(value)
        self.kinds.add(kind)
        for form, text in forms(value):
            self._needles.setdefault(text, (kind, form))

    def add_all(self, found: list[tuple[str, str]]) -> None:
        """add() for each (kind, value)."""
        for kind, value in found:
            self.add(kind, value)

    def __len__(self) -> int:
        return len(self._values)

    def scan(self, source: str, text: str) -> list[Leak]:
        """Every place in `text` where a value appears, in any form; one
        Leak per kind, form and line."""
        found: set[Leak] = set()
        line_starts: list[int] = []
        for needle, (kind, form) in self._needles.items():
            at = text.find(needle)
            while at >= 0:
                if not line_starts:
                    line_starts = [0] + [m.end() for m in
                                         re.finditer("\n", text)]
                line = bisect.bisect_right(line_starts, at)
                found.add(Leak(source, line, kind, form))
                at = text.find(needle, at + 1)
        return sorted(found)

    def scan_all(self, sources: dict[str, str]) -> LeakReport:
        """Scans every named text; the report includes the values'
        problems (values too short to look for)."""
        report = LeakReport(problems=list(self.problems),
                            sources=list(sources), values=len(self),
                            kinds=set(self.kinds))
        for source, text in sources.items():
            report.leaks += self.scan(source, text)
        return report


# Where secrets sit, by kind: helper account keys and files, token
# endpoint forms and answers (tests/standins/standin_state.py records).
ACCOUNT_SECRETS = {"client_secret": "client secret"}
ACCOUNT_SECRET_FILES = {"client_secret_file": "client secret",
                        "refresh_token_file": "refresh token",
                        "private_key_file": "private key"}
FORM_SECRETS = {"client_secret": "client secret",
                "refresh_token": "refresh token",
                "client_assertion": "client assertion",
                "device_code": "device code", "code": "authorization code"}
ANSWER_SECRETS = {"access_token": "access token",
                  "refresh_token": "refresh token",
                  "device_code": "device code", "id_token": "ID token"}


def _secret_file_values(kind: str, path: str) -> list[str]:
    """The secrets a file holds: its text, or for a PEM private key its
    base64 body, whole and line by line."""
    try:
        text = pathlib.Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    if kind != "private key":
        return [text.strip()]
    body = [line.strip() for line in text.splitlines()
            if line.strip() and not line.startswith("-----")]
    return ["".join(body)] + [line for line in body
                              if len(line) >= MIN_LENGTH]


def _picked(record, names: dict[str, str]) -> list[tuple[str, str]]:
    """(kind, value) for each of `names` that `record` (a dict) holds."""
    if not isinstance(record, dict):
        return []
    return [(kind, record[key]) for key, kind in names.items()
            if isinstance(record.get(key), str)]


def _proxy_password(proxy) -> list[tuple[str, str]]:
    """The password in a proxy URL's user information, if any."""
    try:
        password = urllib.parse.urlsplit(proxy).password
    except (TypeError, ValueError, AttributeError):
        return []
    return [("proxy password", urllib.parse.unquote(password))] \
        if password else []


def account_secrets(config: dict) -> list[tuple[str, str]]:
    """(kind, value) of every secret a helper configuration holds or
    names a file of (its accounts' and the proxy URL's password)."""
    found = _proxy_password(config.get("proxy"))
    for account in config.get("accounts", []):
        found += _picked(account, ACCOUNT_SECRETS)
        for key, kind in ACCOUNT_SECRET_FILES.items():
            if isinstance(account, dict) and isinstance(account.get(key),
                                                        str):
                found += [(kind, value) for value in
                          _secret_file_values(kind, account[key])]
    return found


def standin_config_secrets(config: dict) -> list[tuple[str, str]]:
    """(kind, value) of the secrets and refresh tokens the stand-ins'
    registrations hold (Microsoft and Google)."""
    google = config.get("google", {})
    found = []
    for app in config.get("apps", []) + google.get("clients", []):
        found += _picked(app, {"client_secret": "client secret"})
    for grant in (config.get("refresh_tokens", [])
                  + google.get("refresh_tokens", [])):
        found += _picked(grant, {"refresh_token": "refresh token"})
    return found


def standin_state_secrets(state: dict) -> list[tuple[str, str]]:
    """(kind, value) of every secret and token the stand-ins received or
    issued: token request forms and answers, device codes, and each AUTH
    initial response (base64 as sent and decoded) with its token."""
    found = []
    for request in state.get("token_requests", []):
        found += _picked(request.get("form"), FORM_SECRETS)
        found += _picked(request.get("response"), ANSWER_SECRETS)
    for code in state.get("device_codes", []):
        found += _picked(code, {"device_code": "device code"})
    for session in state.get("smtp_sessions", []):
        for attempt in session.get("auth", []):
            found += _picked(attempt, {"token": "access token"})
            raw = attempt.get("raw")
            if raw:
                kind = f"{attempt.get('mechanism', 'AUTH')} initial response"
                found += [(kind, raw), (kind, base64.b64decode(raw).decode(
                    "utf-8", "replace"))]
    return found
