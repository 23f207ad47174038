"""End-to-end harness: Office 365 stand-ins, token-helper and a private
Postfix instance with our XOAUTH2 plugin, all in one temporary directory.

What it is for: tests/e2e/test_relay.py, tests/e2e/test_grants.py and
tests/e2e/demo.py start the whole relay chain exactly the same way
through RelayEnvironment:

    env = RelayEnvironment.create()        # temp dir, nothing running yet
    env.start(helper=True)                 # stand-ins, helper, Postfix
    queue_id = env.submit(message)         # Postfix sendmail(1)
    env.wait_for_status(queue_id, "sent")  # smtp(8) log line
    env.close()                            # stops all, removes the dir

Stand-ins (Standins): tests/standins/o365.py with its control API.
token-helper (TokenHelper): <build>/token-helper/token-helper, its config
pointing the authority at the stand-in endpoint and trusting the test CA;
its socket lies in the instance's queue directory.

Postfix instance (PostfixInstance): its own config_directory, queue
directory (also the chroot of every `chroot=y` service, as on Debian),
data_directory and maillog file, all under the temp dir; no inet listener
(unless configure() gets smtpd_port).
main.cf is built from postfix-examples/main.cf.snippet with only the relay
host and file paths changed (plus the instance's own directories), so the
examples are what the tests run. The SASL plugin is found through
SASL_PATH=<build>/sasl-plugin passed with import_environment.

Submission without touching /etc: sendmail(1) hands mail to the set-gid
postdrop(1), and the set-gid postqueue(1) flushes the queue. A set-gid
Postfix program accepts a non-default configuration directory only if
/etc/postfix/main.cf lists it in alternate_config_directories, but that
check exempts the super-user: run by root (as these tests are),
`sendmail -C DIR`, `postqueue -c DIR` and MAIL_CONFIG=DIR use the
instance's directory with no /etc/postfix/main.cf at all (verified on
Debian 12's Postfix 3.7). So the instance uses /usr/sbin's commands as
they are; nothing is copied and nothing in /etc is read or written.

Leak scan (leak_scan.py): the helper runs at debug level (`run -v`) in
every test, the default client secret is a canary, and TokenHelper keeps
the output of every command it runs (command(), spawn(), `status`).
close() runs `status` and `status --json` if the helper runs, stops
everything, then looks for every secret the configurations hold or name
a file of (client secrets, refresh token files, a PEM private key's body)
and every token, device code, client assertion and AUTH initial response
the stand-ins issued or received, raw, percent-encoded, form-encoded,
JSON-escaped and base64, in every *.log and the maillog under the temp
dir (not the stand-ins' own logs: they hold secrets by design), every
recorded output and RelayEnvironment.outputs. A finding fails the test
from its cleanup, naming the kind, the source and the line, never the
value. A test using Standins and TokenHelper alone registers
check_for_leaks; a TokenHelper that ran without any scan fails the whole
run at exit (_unscanned_at_exit). TokenHelper.debug = False is the only
way to run the helper below debug level; no test does.

Ownership: RelayEnvironment owns every process it starts and stops them
in close(), which is safe to call at any point and more than once; tests
register it with addCleanup before starting anything. The only threads
are spawn()'s copy threads (one per piped stream, ending with the
child's output); waiting is polling a condition against a deadline
(wait_until).

Needs root (chroot, the postfix user, writing the maildrop);
require_root() says why it cannot run otherwise.

What it deliberately does not do: build anything (XOAUTH2_BUILD_DIR must
hold a built tree), touch /etc or the system Postfix, or use any address
but 127.0.0.1.
"""

import atexit
import base64
import ctypes
import grp
import hashlib
import json
import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Callable, Optional

import leak_scan

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "postfix-examples"
STANDINS = REPO / "tests" / "standins" / "o365.py"
PYTHON = "/usr/bin/python3"
SBIN = pathlib.Path("/usr/sbin")

TENANT = "contoso.onmicrosoft.com"
MAILBOX = "relay@example.com"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
# A canary: distinctive, so the leak scan at close() can find it in any
# log or output (leak_scan.py); its characters need percent-encoding.
CLIENT_SECRET = "CANARY-Xy7~Q8.abc+/=def_SECRET"


def build_dir() -> pathlib.Path:
    """The build tree under test: $XOAUTH2_BUILD_DIR or /work/build-e2e."""
    return pathlib.Path(os.environ.get("XOAUTH2_BUILD_DIR",
                                       "/work/build-e2e")).resolve()


def plugin_path() -> pathlib.Path:
    """The built SASL plugin."""
    return build_dir() / "sasl-plugin" / "libxoauth2.so"


def helper_path() -> pathlib.Path:
    """The built token-helper."""
    return build_dir() / "token-helper" / "token-helper"


def require_root() -> Optional[str]:
    """Why the e2e tests cannot run here (not root), or None."""
    if os.geteuid() != 0:
        return ("e2e-skip: needs root (Postfix chroot, the postfix user, "
                "writing the maildrop)")
    return None


def missing_binaries() -> list[str]:
    """The built or installed programs the chain needs that are absent."""
    return [str(path) for path in
            (plugin_path(), helper_path(), SBIN / "postfix")
            if not path.exists()]


def wait_until(predicate: Callable[[], object], timeout: float,
               what: str, interval: float = 0.05):
    """Polls `predicate` until it returns a true value (which is returned)
    or `timeout` seconds pass (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for "
                                 f"{what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_answer(sock: socket.socket) -> bytes:
    """What `sock` sends up to and with the first newline, or until the
    peer closes: one answer line of the helper's socket protocol."""
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        answer += chunk
    return answer


def _die_with_parent() -> None:
    """In a child before exec: SIGTERM it when the test process dies, so
    a killed test run leaves no stand-in or helper behind."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _stop_process(proc: Optional[subprocess.Popen], timeout: float = 5):
    """SIGTERM, then SIGKILL after `timeout` seconds; reaps the process."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        stat_line = pathlib.Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] != "Z"


class Standins:
    """The o365.py stand-in process and its control API."""

    def __init__(self, root: pathlib.Path):
        self.dir = root / "standins"
        self.proc: Optional[subprocess.Popen] = None
        self.ready: dict = {}
        self.config_data: dict = {}  # the registrations it started with
        self.final_state: Optional[dict] = None  # state() just before stop

    def config(self) -> dict:
        """The app registrations the stand-in token endpoint knows."""
        return {"token_lifetime_seconds": 3599, "apps": [
            {"tenant": TENANT, "client_id": CLIENT_ID,
             "client_secret": CLIENT_SECRET, "cloud": "global",
             "send_as": [MAILBOX]}]}

    def start(self, config_data: Optional[dict] = None) -> None:
        """Starts o365.py and waits for its ready.json; `config_data`
        replaces the default registrations (self.config()) when given."""
        self.dir.mkdir()
        config = self.dir / "config.json"
        self.config_data = config_data or self.config()
        config.write_text(json.dumps(self.config_data))
        with open(self.dir / "stderr.log", "wb") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(STANDINS), "--state-dir", str(self.dir),
                 "--config", str(config)], stdout=log, stderr=log,
                preexec_fn=_die_with_parent)
        ready = self.dir / "ready.json"

        def announced():
            if self.proc.poll() is not None:
                raise AssertionError("stand-ins exited: " + self.stderr())
            return ready.exists()
        wait_until(announced, 20, "stand-ins ready.json")
        self.ready = json.loads(ready.read_text())

    def stderr(self) -> str:
        """What the stand-in process wrote to stderr."""
        path = self.dir / "stderr.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        """Keeps its last recordings in final_state (for the leak scan),
        then stops the stand-in process."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.final_state = self.state()
            except OSError:
                pass  # scan_for_leaks says the tokens are unknown
        _stop_process(self.proc)

    def _control(self, method: str, path: str, body=None) -> dict:
        """One control API call; returns its JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.ready['control_port']}{path}",
            data=data, method=method)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def state(self) -> dict:
        """Recorded token requests and SMTP sessions."""
        return self._control("GET", "/state")

    def set_smtp_auth_mode(self, mode: str, reply: str = "") -> None:
        """accept, refuse (535 5.7.3) or reply (answer `reply`)."""
        body = {"mode": mode, "reply": reply} if reply else {"mode": mode}
        self._control("POST", "/smtp/auth-mode", body)

    def set_token_lifetime(self, seconds: int) -> None:
        """expires_in of the access tokens issued from now on."""
        self._control("POST", "/token/lifetime", {"seconds": seconds})

    def set_token_listener(self, listening: bool,
                           certificate: str = "trusted") -> None:
        """Closes (connections refused) or reopens the token endpoint's
        socket, with the test CA's certificate or an untrusted one."""
        self._control("POST", "/token/listener",
                      {"listening": listening, "certificate": certificate})

    def set_token_fault(self, fault: Optional[dict]) -> None:
        """Installs or (None) clears a token endpoint fault."""
        if fault is None:
            self._control("DELETE", "/token/fault")
        else:
            self._control("POST", "/token/fault", fault)

    def invalidate_access_token(self, token: str) -> None:
        """The SMTP stand-in refuses this issued token from now on."""
        self._control("POST", "/token/invalidate", {"access_token": token})

    def revoke_google_refresh_token(self, refresh_token: str) -> None:
        """The Google endpoint answers invalid_grant for it from now on."""
        self._control("POST", "/google/revoke",
                      {"refresh_token": refresh_token})

    def device_action(self, action: str, user_code: str,
                      mailbox: str = "") -> None:
        """Plays the user of a device code sign-in: approve (as
        `mailbox`), decline, expire or slow-down."""
        body = {"user_code": user_code}
        if mailbox:
            body["mailbox"] = mailbox
        self._control("POST", f"/device/{action}", body)

    def messages(self) -> list[dict]:
        """Accepted messages, oldest first, each with its exact bytes
        under "content"."""
        found = []
        for meta in sorted((self.dir / "messages").glob("*.json")):
            record = json.loads(meta.read_text())
            record["content"] = pathlib.Path(record["eml"]).read_bytes()
            found.append(record)
        return found

    def auth_attempts(self) -> list[dict]:
        """Every AUTH the SMTP stand-in answered, oldest first."""
        return [attempt for session in self.state()["smtp_sessions"]
                for attempt in session["auth"]]


class _Recording:
    """What one token-helper command wrote on stdout or stderr, kept for
    the leak scan; for spawn() a copy thread fills it (see _tee)."""

    def __init__(self, label: str, data: bytes = b""):
        self.label = label
        self.chunks = [data]
        self.thread: Optional[threading.Thread] = None

    def text(self) -> str:
        """Everything recorded (waiting up to 5 s for the copy thread)."""
        if self.thread is not None:
            self.thread.join(5)
        return b"".join(self.chunks).decode(errors="replace")

    def complete(self) -> bool:
        """False while a copy thread still runs."""
        return self.thread is None or not self.thread.is_alive()


def _tee(source, recording: _Recording):
    """Copies a child's pipe `source` into `recording` and into a new pipe
    whose reading end (text) is returned for the caller to read instead;
    once the caller closes that end, the copy goes to `recording` only."""
    read_end, write_end = os.pipe()

    def copy() -> None:
        sink: Optional[int] = write_end
        with source:
            while chunk := os.read(source.fileno(), 65536):
                recording.chunks.append(chunk)
                while sink is not None and chunk:
                    try:
                        chunk = chunk[os.write(sink, chunk):]
                    except OSError:  # the caller closed its end
                        os.close(sink)
                        sink = None
        if sink is not None:
            os.close(sink)
    recording.thread = threading.Thread(target=copy, daemon=True)
    recording.thread.start()
    return open(read_end, encoding="utf-8", errors="replace")


# Every TokenHelper made in this process, for the check at exit that a
# leak scan read the outputs of each one that ran (_unscanned_at_exit).
_HELPERS: list["TokenHelper"] = []


class TokenHelper:
    """token-helper: its configuration and its `run` process."""

    def __init__(self, root: pathlib.Path, socket: pathlib.Path):
        self.dir = root / "helper"
        self.dir.mkdir()
        self.config_path = self.dir / "config.json"
        self.socket = socket
        self.proc: Optional[subprocess.Popen] = None
        self.umask: Optional[int] = None  # for `run`; None: inherited
        # The local user `run` runs as (None: root), its files handed to
        # it first as a packaged install has them (hand_over).
        self.user: Optional[str] = None
        self.debug = True  # `run -v` (debug level) unless a test says no
        # For the leak scan: every command's output, the secrets the
        # configurations held, other configurations used, and why the
        # scan may be incomplete.
        self.recordings: list[_Recording] = []
        self.configured: list[tuple[str, str]] = []
        self.other_configs: set[pathlib.Path] = set()
        self.spawned: list[subprocess.Popen] = []
        self.problems: list[str] = []
        self.used = False
        self.leak_scanned = False
        _HELPERS.append(self)

    def write_config(self, standins: Standins,
                     account: Optional[dict] = None,
                     settings: Optional[dict] = None) -> None:
        """A configuration for one client-credentials account at the
        stand-in endpoint, trusting the stand-in CA; `account` (its
        authority filled in) replaces that account when given, and
        `settings` adds or replaces top-level keys (timeouts, log_level)."""
        secret = self.dir / "relay.secret"
        secret.write_text(CLIENT_SECRET)
        secret.chmod(0o600)
        authority = f"https://127.0.0.1:{standins.ready['token_port']}"
        config = {
            "socket": str(self.socket),
            "allowed_users": ["postfix", "root"],
            "ca_file": standins.ready["ca_file"],
            "accounts": [{
                "name": "relay", "mailbox": MAILBOX, "cloud": "global",
                "authority": authority,
                "tenant": TENANT, "client_id": CLIENT_ID,
                "grant": "client_credentials",
                "client_secret_file": str(secret)}]}
        if account is not None:
            config["accounts"] = [dict({"authority": authority}, **account)]
        config.update(settings or {})
        self.config_path.write_text(json.dumps(config, indent=2) + "\n")
        self.configured += leak_scan.account_secrets(config)

    def command(self, *args: str, config: Optional[pathlib.Path] = None,
                cwd: Optional[pathlib.Path] = None,
                timeout: float = 20) -> subprocess.CompletedProcess:
        """Runs `token-helper --config CONFIG ARGS` to completion; its
        output is kept for the leak scan."""
        self.used = True
        if config is not None:
            self.other_configs.add(pathlib.Path(cwd or ".") / config)
        label = f"`token-helper {' '.join(args)}`"
        try:
            result = subprocess.run(
                [str(helper_path()), "--config",
                 str(config or self.config_path), *args],
                capture_output=True, text=True, timeout=timeout, cwd=cwd)
        except subprocess.TimeoutExpired as err:
            self._record(label, err.stdout, err.stderr)
            raise
        self._record(label, result.stdout, result.stderr)
        return result

    def _record(self, label: str, stdout, stderr) -> None:
        """Keeps a finished command's output (str or bytes) for the leak
        scan, numbered so that repeated commands stay apart."""
        number = len(self.recordings) // 2 + 1
        for stream, data in (("stdout", stdout), ("stderr", stderr)):
            if isinstance(data, str):
                data = data.encode()
            self.recordings.append(_Recording(
                f"command #{number} {label} ({stream})", data or b""))

    def hand_over(self) -> None:
        """Gives the helper's folder and files to self.user (0700, its
        secret files 0600) and makes the socket's folder its own with
        group postfix and mode 0750, as token-helper.service does."""
        for path in (self.dir, *self.dir.iterdir()):
            shutil.chown(path, self.user, self.user_group())
        self.dir.chmod(0o700)
        folder = self.socket.parent
        shutil.chown(folder, self.user, "postfix")
        folder.chmod(0o750)

    def user_group(self) -> str:
        """The primary group of self.user, by name."""
        return grp.getgrgid(pwd.getpwnam(self.user).pw_gid).gr_name

    def start(self, run_args: tuple[str, ...] = ()) -> None:
        """Starts `token-helper run [RUN_ARGS]` (as self.user when set,
        after hand_over) and waits for its socket; `-v` (debug level) is
        added unless self.debug is False."""
        if self.debug and not {"-v", "--verbose"} & set(run_args):
            run_args = ("-v", *run_args)
        self.used = True
        identity = {}
        if self.user is not None:
            self.hand_over()
            identity = {"user": self.user, "group": self.user_group(),
                        "extra_groups": []}
        log = open(self.dir / "helper.log", "ab")
        umask = self.umask

        def prepare():
            _die_with_parent()
            if umask is not None:
                os.umask(umask)
        self.proc = subprocess.Popen(
            [str(helper_path()), "--config", str(self.config_path), "run",
             *run_args], stdout=log, stderr=log, preexec_fn=prepare,
            **identity)
        log.close()

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError("token-helper exited with "
                                     f"{self.proc.returncode}: {self.log()}")
            return self.socket.exists() and stat.S_ISSOCK(
                self.socket.stat().st_mode)
        wait_until(listening, 15, f"token-helper socket {self.socket}")

    def spawn(self, *args: str) -> subprocess.Popen:
        """Starts `token-helper --config CONFIG ARGS` with stdout and
        stderr piped (text); the caller waits for it or stops it. What
        it prints is also kept for the leak scan (_tee)."""
        self.used = True
        proc = subprocess.Popen(
            [str(helper_path()), "--config", str(self.config_path), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            preexec_fn=_die_with_parent)
        number = len(self.spawned) + 1
        for stream in ("stdout", "stderr"):
            recording = _Recording(f"spawned #{number} `token-helper "
                                   f"{' '.join(args)}` ({stream})")
            self.recordings.append(recording)
            setattr(proc, stream, _tee(getattr(proc, stream), recording))
        self.spawned.append(proc)
        return proc

    def stop_spawned(self) -> None:
        """Stops what spawn() started that still runs, and closes the
        caller's pipe ends so that the copy threads finish."""
        for proc in self.spawned:
            _stop_process(proc)
            proc.stdout.close()
            proc.stderr.close()

    def record_status(self) -> None:
        """Runs `status` and `status --json` once if `run` is running,
        so that the leak scan reads what they print."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for args in (("status",), ("status", "--json")):
            try:
                self.command(*args, timeout=10)
            except (subprocess.TimeoutExpired, OSError) as err:
                self.problems.append(f"`token-helper {' '.join(args)}` "
                                     f"failed to run: {err}")

    def secrets(self) -> list[tuple[str, str]]:
        """(kind, value) of every secret its configurations held or named
        a file of, the files read again now (a refresh token file may
        have been rewritten since)."""
        found = list(self.configured)
        for path in {self.config_path, *self.other_configs}:
            try:
                found += leak_scan.account_secrets(
                    json.loads(path.read_text()))
            except (OSError, ValueError, AttributeError, TypeError):
                pass  # gone or broken on purpose (F03): written copy holds
        return found

    def log(self) -> str:
        """What token-helper wrote to stderr so far."""
        path = self.dir / "helper.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """Stops `token-helper run` (SIGTERM, then SIGKILL)."""
        _stop_process(self.proc)
        self.proc = None


# Debian's master.cf services a relay-only instance needs, with Debian's
# chroot column: every `y` service runs chrooted in the queue directory.
MASTER_CF = """\
# Private test instance built by tests/e2e/harness.py (Debian's chroot=y).
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""

EXAMPLE_RELAYHOST_KEY = "[smtp.office365.com]:587"
EXAMPLE_SOCKET = "/var/spool/postfix/xoauth2-relay/token.sock"


def _logical_lines(text: str) -> list[str]:
    """main.cf text as logical lines: continuation lines (leading white
    space) joined to their parameter; comments and blanks kept."""
    lines: list[str] = []
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and lines and "=" in lines[-1]:
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return lines


def _uncomment_import_environment(text: str) -> str:
    """Enables the snippet's commented-out import_environment block."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("#import_environment"):
            inside, line = True, line[1:]
        elif inside and line.startswith("#    "):
            line = line[1:]
        else:
            inside = False
        out.append(line)
    return "\n".join(out)


def _uncomment_parameters(text: str, names: tuple[str, ...]) -> str:
    """Enables the snippet's one-line commented-out `#NAME = ...`
    settings for each of `names` (e.g. the sender guard's milters)."""
    pattern = re.compile(r"^#(" + "|".join(map(re.escape, names))
                         + r")\s*=") if names else None
    return "\n".join(line[1:] if pattern and pattern.match(line) else line
                     for line in text.splitlines())


def build_main_cf(snippet: str, changes: dict[str, Callable[[str], str]],
                  instance_lines: list[str],
                  uncomment: tuple[str, ...] = ()) -> str:
    """main.cf for the test instance: `instance_lines` (its directories),
    then the example snippet with each parameter in `changes` rewritten by
    its function and the commented-out parameters in `uncomment` enabled.
    A change the snippet has no parameter for is an error, so the
    examples and the tests cannot drift apart."""
    body = []
    unused = set(changes)
    snippet = _uncomment_parameters(snippet, uncomment)
    for line in _logical_lines(_uncomment_import_environment(snippet)):
        match = re.match(r"^(\w+)\s*=\s*(.*)$", line)
        if match and match.group(1) in changes:
            name = match.group(1)
            line = f"{name} = {changes[name](match.group(2))}"
            unused.discard(name)
        body.append(line)
    if unused:
        raise AssertionError("postfix-examples/main.cf.snippet lacks "
                             f"{sorted(unused)}")
    return "\n".join(instance_lines + [""] + body) + "\n"


class PostfixInstance:
    """A private Postfix instance under ROOT/postfix."""

    def __init__(self, root: pathlib.Path, socket_dir_name: str):
        self.root = root
        self.base = root / "postfix"
        self.conf = self.base / "etc"
        self.queue = self.base / "spool"
        self.data = self.base / "data"
        self.maillog = self.base / "maillog"
        self.socket = self.queue / socket_dir_name / "token.sock"
        self.master_pid = 0
        for path in (self.conf, self.queue, self.data, self.socket.parent):
            path.mkdir(parents=True)
        shutil.chown(self.data, "postfix")

    def configure(self, relay_port: int, ca_file: str,
                  sasl_passwd: Optional[str] = None,
                  main_cf_extra: Optional[list[str]] = None,
                  main_cf_set: Optional[dict[str, str]] = None,
                  uncomment: tuple[str, ...] = (),
                  smtpd_port: Optional[int] = None) -> None:
        """Writes main.cf, master.cf, sasl_passwd(.db) and the status
        filter, all derived from postfix-examples/. `sasl_passwd` replaces
        the example's entry line when given ("" for no entry; "{relay}"
        in it stands for this instance's relayhost). `main_cf_extra`
        lines (e.g. short retry timers) go after the instance's own
        directories; they must not set a parameter of the snippet.
        `main_cf_set` gives a snippet parameter a new value (e.g.
        {"smtp_sasl_mechanism_filter": "oauthbearer"}); the snippet must
        have that parameter. `uncomment` enables commented-out snippet
        parameters (e.g. ("smtpd_milters",)). `smtpd_port` adds an
        smtpd(8) listener on 127.0.0.1:PORT (chrooted, as on Debian)."""
        relay = f"[127.0.0.1]:{relay_port}"
        for name in ("smtp_dsn_filter", "sasl_passwd"):
            shutil.copyfile(EXAMPLES / name, self.conf / name)
        text = (EXAMPLES / "sasl_passwd").read_text()
        if sasl_passwd is None:
            text = text.replace(EXAMPLE_RELAYHOST_KEY, relay)
        else:
            text = "\n".join(line for line in text.splitlines()
                             if line.startswith("#")) + "\n" + \
                sasl_passwd.replace("{relay}", relay)
        (self.conf / "sasl_passwd").write_text(text + "\n")

        changes = {
            "relayhost": lambda _: relay,
            "smtp_sasl_password_maps":
                lambda v: v.replace("/etc/postfix", str(self.conf)),
            "smtp_delivery_status_filter":
                lambda v: v.replace("/etc/postfix", str(self.conf)),
            "smtp_tls_CAfile": lambda _: ca_file,
            "import_environment": lambda v: (
                v.replace(EXAMPLE_SOCKET, str(self.socket))
                + f" SASL_PATH={plugin_path().parent}"),
        }
        for name, value in (main_cf_set or {}).items():
            changes[name] = lambda _, value=value: value
        main_cf = build_main_cf((EXAMPLES / "main.cf.snippet").read_text(),
                                changes,
                                self._instance_lines() + (main_cf_extra
                                                          or []), uncomment)
        (self.conf / "main.cf").write_text(main_cf)
        listener = (f"127.0.0.1:{smtpd_port} inet n - y - - smtpd\n"
                    if smtpd_port else "")
        (self.conf / "master.cf").write_text(MASTER_CF + listener)
        self._run("postmap", f"hash:{self.conf / 'sasl_passwd'}")

    def _instance_lines(self) -> list[str]:
        """The instance's own directories and identity."""
        return [
            "# Private test instance built by tests/e2e/harness.py; below",
            "# the instance lines is postfix-examples/main.cf.snippet.",
            "compatibility_level = 3.6",
            f"queue_directory = {self.queue}",
            f"data_directory = {self.data}",
            "inet_interfaces = loopback-only",
            "inet_protocols = ipv4",
            "myhostname = relay.e2e.test",
            "mydestination =",
            "alias_maps =",
            "alias_database =",
            "local_recipient_maps =",
            "biff = no",
            f"maillog_file = {self.maillog}",
            f"maillog_file_prefixes = {self.root}",
            "smtp_tls_loglevel = 1",
        ]

    def _env(self) -> dict:
        """The environment for Postfix commands: this instance's config."""
        env = {k: v for k, v in os.environ.items() if k != "MAIL_CONFIG"}
        env["MAIL_CONFIG"] = str(self.conf)
        return env

    def _run(self, program: str, *args: str, stdin: bytes = b"",
             check: bool = True) -> subprocess.CompletedProcess:
        """Runs one of the instance's Postfix commands."""
        result = subprocess.run(
            [str(SBIN / program), "-c", str(self.conf), *args],
            input=stdin, capture_output=True, env=self._env(), timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{program} {' '.join(args)} exited {result.returncode}: "
                f"{result.stderr.decode(errors='replace')}")
        return result

    def start(self) -> None:
        """`postfix -c CONF start`; records the master's pid."""
        self._run("postfix", "start")
        pid_file = self.queue / "pid" / "master.pid"
        self.master_pid = int(wait_until(
            lambda: pid_file.exists() and pid_file.read_text().strip(),
            10, "master.pid"))

    def submit(self, message: bytes, sender: str,
               recipients: list[str]) -> None:
        """Hands `message` to Postfix's sendmail(1)."""
        result = subprocess.run(
            [str(SBIN / "sendmail"), "-C", str(self.conf), "-i",
             "-f", sender, "--", *recipients], input=message,
            capture_output=True, env=self._env(), timeout=30)
        if result.returncode != 0:
            raise AssertionError("sendmail failed: "
                                 + result.stderr.decode(errors="replace"))

    def flush(self) -> None:
        """`postqueue -f`: retry deferred mail now."""
        self._run("postqueue", "-f")

    def queue_entries(self) -> list[dict]:
        """`postqueue -j`: one dict per queued message."""
        out = self._run("postqueue", "-j").stdout.decode()
        return [json.loads(line) for line in out.splitlines() if line]

    def log(self) -> str:
        """The instance's maillog so far."""
        if not self.maillog.exists():
            return ""
        return self.maillog.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout: float = 30) -> re.Match:
        """Waits until a maillog line matches `pattern` (a regex)."""
        regex = re.compile(pattern, re.MULTILINE)
        return wait_until(lambda: regex.search(self.log()), timeout,
                          f"maillog line /{pattern}/")

    def _children(self) -> list[int]:
        """Pids of the master's child processes."""
        pids = []
        for proc in pathlib.Path("/proc").glob("[0-9]*"):
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1]
            except OSError:
                continue
            if int(fields.split()[1]) == self.master_pid:
                pids.append(int(proc.name))
        return pids

    def stop(self) -> None:
        """`postfix stop`, then SIGKILL for whatever of this instance
        (master and its children) is still alive after 10 s."""
        if not self.master_pid:
            return
        pids = [self.master_pid] + self._children()
        self._run("postfix", "stop", check=False)

        def gone():
            return not any(_alive(pid) for pid in pids)
        try:
            wait_until(gone, 10, "Postfix processes to exit")
        except AssertionError:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.master_pid = 0


def make_message(subject: str, body: str = "",
                 mailbox: str = MAILBOX) -> tuple[bytes, str]:
    """A small RFC 5322 message from `mailbox` with a unique Message-ID;
    returns its bytes (LF line ends, as a local program hands them to
    sendmail) and the id."""
    msgid = f"<e2e.{time.time_ns()}.{os.getpid()}@relay.e2e.test>"
    text = (f"From: Relay <{mailbox}>\n"
            "To: Someone <someone@example.org>\n"
            f"Subject: {subject}\n"
            f"Message-ID: {msgid}\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\n"
            "\n"
            + (body or "Hello from the e2e suite.\n"
               ".A line starting with a dot.\n"
               "Trailing spaces stay.   \n"
               "Grüße, 8-bit text.\n"))
    return text.encode(), msgid


def _log_files(root: pathlib.Path, skip: pathlib.Path) -> dict[str, str]:
    """Every *.log file and maillog under `root` but not under `skip`,
    by "file RELATIVE-PATH"."""
    found = {}
    for path in sorted(root.rglob("*")):
        if ((path.suffix == ".log" or path.name == "maillog")
                and skip not in path.parents and path.is_file()):
            found[f"file {path.relative_to(root)}"] = path.read_text(
                errors="replace")
    return found


def scan_for_leaks(root: pathlib.Path, standins: Standins,
                   helper: TokenHelper,
                   outputs: Optional[dict[str, str]] = None
                   ) -> leak_scan.LeakReport:
    """Looks for every secret the helper's configurations and the
    stand-ins' registrations hold, and every token, device code,
    assertion and AUTH response the stand-ins issued or received, in
    every log under `root` (the helper's, the maillog; not the
    stand-ins' own, which hold them by design), every recorded
    token-helper output and `outputs` (leak_scan.py)."""
    secrets = leak_scan.SecretSet()
    secrets.add_all(helper.secrets())
    secrets.add_all(leak_scan.standin_config_secrets(standins.config_data))
    problems = list(helper.problems)
    state = standins.final_state
    if standins.proc is not None and standins.proc.poll() is None:
        state = standins.state()
    if standins.proc is not None and state is None:
        problems.append("the stand-ins' recordings could not be read, "
                        "so the tokens they issued are unknown")
    secrets.add_all(leak_scan.standin_state_secrets(state or {}))

    texts = _log_files(root, standins.dir)
    for recording in helper.recordings:
        texts[recording.label] = recording.text()
        if not recording.complete():
            problems.append(f"{recording.label} still being copied")
    texts.update(outputs or {})
    helper.leak_scanned = True
    report = secrets.scan_all(texts)
    report.problems += problems
    return report


def check_for_leaks(root: pathlib.Path, standins: Standins,
                    helper: TokenHelper) -> None:
    """What RelayEnvironment.close() checks, for a test that runs
    Standins and TokenHelper without one: register it with addCleanup
    after their stop() so that it runs first, while both still run."""
    helper.record_status()
    helper.stop_spawned()
    report = scan_for_leaks(root, standins, helper)
    print(f"leak scan: {report.summary()}", file=sys.stderr)
    report.check()


def skip_unless_runnable(test) -> None:
    """Skips `test` (a unittest.TestCase) where the e2e tests cannot run
    (not root) and fails it where the tree is not built."""
    reason = require_root()
    if reason:
        test.skipTest(reason)
    missing = missing_binaries()
    if missing:
        raise AssertionError(f"build the tree first: missing {missing}")


def relay_environment_for(test) -> "RelayEnvironment":
    """A created (not started) RelayEnvironment that `test` closes, and
    so scans for leaks, at its end."""
    skip_unless_runnable(test)
    env = RelayEnvironment.create()
    test.addCleanup(env.close)
    return env


def helper_parts_for(test, prefix: str
                     ) -> tuple[pathlib.Path, Standins, TokenHelper]:
    """A fresh directory with Standins and a TokenHelper (socket
    token.sock in it), neither started, for a test that needs no
    Postfix. `test` stops both, scans for leaks (first, while both
    still run) and removes the directory at its end."""
    skip_unless_runnable(test)
    root = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    test.addCleanup(shutil.rmtree, root, True)
    standins = Standins(root)
    test.addCleanup(standins.stop)
    helper = TokenHelper(root, root / "token.sock")
    test.addCleanup(helper.stop)
    test.addCleanup(check_for_leaks, root, standins, helper)
    return root, standins, helper


@atexit.register
def _unscanned_at_exit() -> None:
    """At exit: a TokenHelper that ran while no leak scan read its
    outputs fails the run (exit status 1), so no test escapes the scan
    by forgetting it."""
    unscanned = [str(h.dir) for h in _HELPERS
                 if h.used and not h.leak_scanned]
    if unscanned:
        print("harness: no leak scan read the outputs of token-helper in "
              f"{', '.join(unscanned)}; close its RelayEnvironment or "
              "register harness.check_for_leaks", file=sys.stderr,
              flush=True)
        sys.stdout.flush()
        os._exit(1)


class RelayEnvironment:
    """Stand-ins + token-helper + Postfix in one temporary directory."""

    def __init__(self, root: pathlib.Path):
        self.root = root
        self.standins = Standins(root)
        self.postfix = PostfixInstance(root, "xoauth2-relay")
        self.helper = TokenHelper(root, self.postfix.socket)
        self.outputs: dict[str, str] = {}  # also read by the leak scan
        self.closed = False

    @classmethod
    def create(cls) -> "RelayEnvironment":
        """A fresh environment in a new temp dir; nothing started yet."""
        root = pathlib.Path(tempfile.mkdtemp(prefix="xoauth2-e2e-"))
        root.chmod(0o755)  # the postfix user must reach its directories
        return cls(root)

    def start(self, helper: bool = True,
              sasl_passwd: Optional[str] = None,
              standin_config: Optional[dict] = None,
              account: Optional[dict] = None,
              helper_settings: Optional[dict] = None,
              helper_args: tuple[str, ...] = (),
              main_cf_extra: Optional[list[str]] = None,
              main_cf_set: Optional[dict[str, str]] = None) -> None:
        """Starts the stand-ins, (optionally) the helper, then Postfix.
        `standin_config` replaces the stand-ins' registrations and
        `account` the helper's account, `helper_settings` adds top-level
        helper settings, `helper_args` goes after `run`, and
        `main_cf_extra` adds main.cf lines and `main_cf_set` changes
        snippet parameters (see Standins.start,
        TokenHelper.write_config and PostfixInstance.configure)."""
        self.standins.start(standin_config)
        self.helper.write_config(self.standins, account, helper_settings)
        self.postfix.configure(self.standins.ready["smtp_port"],
                               self.standins.ready["ca_file"], sasl_passwd,
                               main_cf_extra, main_cf_set)
        if helper:
            self.helper.start(helper_args)
        self.postfix.start()

    def record_output(self, name: str, text: str) -> None:
        """Adds what a test printed or showed (e.g. demo.show()) to what
        the leak scan reads."""
        self.outputs[name] = text

    def scan_for_leaks(self) -> leak_scan.LeakReport:
        """The leak scan close() makes, now (after `token-helper status`
        and `status --json` if the helper runs)."""
        self.helper.record_status()
        return scan_for_leaks(self.root, self.standins, self.helper,
                              self.outputs)

    def close(self) -> None:
        """Runs `token-helper status` and `status --json` if the helper
        runs, stops everything started, scans every log and output for
        secrets and tokens (scan_for_leaks), removes the temp dir unless
        XOAUTH2_E2E_KEEP=1 asks to keep it for a post-mortem, and then
        fails (AssertionError naming kind, source and line) if the scan
        found a leak. Only the first call does anything."""
        if self.closed:
            return
        self.closed = True
        self.helper.record_status()
        try:
            self.postfix.stop()
        finally:
            self.helper.stop()
            self.helper.stop_spawned()
            self.standins.stop()
            try:
                report = scan_for_leaks(self.root, self.standins,
                                        self.helper, self.outputs)
            finally:
                if os.environ.get("XOAUTH2_E2E_KEEP") == "1":
                    print(f"kept {self.root}", file=sys.stderr)
                else:
                    shutil.rmtree(self.root, ignore_errors=True)
        print(f"leak scan: {report.summary()}", file=sys.stderr)
        report.check()

    def submit(self, message: bytes, sender: str = MAILBOX,
               recipients: Optional[list[str]] = None) -> str:
        """Submits a message whose Message-ID header is in it; returns
        its Postfix queue id once cleanup has logged it."""
        msgid = re.search(rb"^Message-ID: (<[^>]+>)", message,
                          re.MULTILINE | re.IGNORECASE).group(1).decode()
        self.postfix.submit(message, sender,
                            recipients or ["someone@example.org"])
        match = self.postfix.wait_for_log(
            r"postfix/cleanup\[\d+\]: (\w+): message-id=" + re.escape(msgid),
            20)
        return match.group(1)

    def wait_for_status(self, queue_id: str, status: str,
                        timeout: float = 30) -> re.Match:
        """Waits for the smtp(8) line `QID: to=... status=STATUS`."""
        return self.postfix.wait_for_log(
            rf"postfix/smtp\[\d+\]: {queue_id}: to=<[^>]*>.*"
            rf" status={status} .*$", timeout)

    def diagnostics(self) -> str:
        """Logs worth reading when a test fails."""
        return ("\n--- maillog ---\n" + self.postfix.log()[-6000:]
                + "\n--- token-helper ---\n" + self.helper.log()[-3000:]
                + "\n--- stand-ins ---\n" + self.standins.stderr()[-3000:])


def decode_xoauth2(raw_b64: str, mask: bool = True) -> str:
    """A readable XOAUTH2 initial response, the token masked."""
    text = base64.b64decode(raw_b64).decode("utf-8", "replace")
    if mask:
        text = re.sub(r"(auth=Bearer )([^\x01]+)",
                      lambda m: m.group(1) + "<masked sha256:" + hashlib.sha256(
                          m.group(2).encode()).hexdigest()[:12] + ">",
                      text)
    return text.replace("\x01", "^A")
