"""End-to-end tests of the helper's "proxy" setting through a real HTTP
proxy: tinyproxy (Debian package tinyproxy-bin) run in the foreground
with its own configuration and log in the test's temporary directory,
on a free 127.0.0.1 port, allowing CONNECT only to the stand-in token
endpoint's port. No Postfix: the Office 365 stand-ins and token-helper
(harness.Standins, harness.TokenHelper) and `token-helper token MAILBOX`.

What it checks:
  through    with "proxy" set, `token` succeeds and tinyproxy's log shows
             the CONNECT to the token endpoint (so the request did go
             through the proxy).
  down       with the proxy not running, the helper logs
             token_fetch_failed naming the proxy ("cannot connect to the
             proxy ...", class temporary, state retrying), keeps running,
             `token` and `status` say the same; once the proxy runs, the
             next retry fetches a token through it.
  password   a proxy URL with user and password (tinyproxy BasicAuth):
             the token comes through the proxy; with a wrong password the
             helper logs the proxy's refusal (tinyproxy answers 401) and
             names the proxy as http://USER:***@HOST:PORT. Neither
             password appears in the helper's log or in any command's
             output (checked here and by the harness's leak scan).
  env        without "proxy", the environment's https_proxy is used;
             with "proxy", the setting wins over https_proxy and no_proxy
             (the documented policy, token-helper(8)).
  check      `check` refuses a non-HTTP proxy, naming the file and the
             setting and hiding the password.

Run as root like the other e2e tests: /usr/bin/python3 -m unittest -v
test_proxy (from this directory) with XOAUTH2_BUILD_DIR naming the build
tree; ctest runs it as e2e_proxy (label e2e, tests/e2e/e2e.cmake). Without
root or without tinyproxy each test reports "e2e-skip:". Waiting is
polling with deadlines (harness.wait_until); every process started here
is stopped by the test's cleanups, and the proxy variables of the
environment are cleared for the helper and restored afterwards.

What it deliberately does not do: test an https:// proxy (tinyproxy
speaks plain HTTP), SOCKS, or proxy authentication schemes other than
Basic.
"""

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import tempfile
import unittest
from typing import Optional
from unittest import mock

import harness

TINYPROXY = shutil.which("tinyproxy", path="/usr/bin:/usr/sbin")
PROXY_USER = "relayproxy"
# Test values; must never be logged. tinyproxy's BasicAuth takes only
# letters, digits, "-" and "_".
PROXY_PASSWORD = "Pr0xyPass-word7"
WRONG_PASSWORD = "Wr0ngPass-word7"
PROXY_VARIABLES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                   "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY")


def accepts(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:port."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class Tinyproxy:
    """One foreground tinyproxy with its own config file and log."""

    def __init__(self, root: pathlib.Path, connect_port: int,
                 credentials: Optional[tuple[str, str]] = None):
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="tinyproxy-",
                                                 dir=root))
        self.port = harness.free_port()
        self.connect_port = connect_port
        self.credentials = credentials
        self.proc: Optional[subprocess.Popen] = None

    def url(self, user: str = "", password: str = "") -> str:
        """http://[USER:PASSWORD@]127.0.0.1:PORT"""
        auth = f"{user}:{password}@" if user else ""
        return f"http://{auth}127.0.0.1:{self.port}"

    def _write_config(self) -> pathlib.Path:
        """The configuration: loopback only, CONNECT only to the token
        endpoint's port, Basic credentials when asked, log in self.dir."""
        lines = [f"Port {self.port}", "Listen 127.0.0.1", "Timeout 30",
                 f'LogFile "{self.dir / "tinyproxy.log"}"',
                 "LogLevel Connect", "MaxClients 20", "Allow 127.0.0.1",
                 f"ConnectPort {self.connect_port}", "DisableViaHeader Yes"]
        if self.credentials:
            lines.append("BasicAuth {} {}".format(*self.credentials))
        path = self.dir / "tinyproxy.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> None:
        """Starts tinyproxy -d and waits until it accepts connections."""
        config = self._write_config()
        with open(self.dir / "stderr.log", "ab") as out:
            self.proc = subprocess.Popen(
                [TINYPROXY, "-d", "-c", str(config)], stdout=out,
                stderr=out, preexec_fn=harness._die_with_parent)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(
                    "tinyproxy exited: " +
                    (self.dir / "stderr.log").read_text(errors="replace"))
            return accepts(self.port)
        harness.wait_until(listening, 10, f"tinyproxy on port {self.port}")

    def stop(self) -> None:
        """Stops tinyproxy (SIGTERM, then SIGKILL); reaps it."""
        harness._stop_process(self.proc)

    def log(self) -> str:
        """tinyproxy's own log so far."""
        path = self.dir / "tinyproxy.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def connects(self) -> list[str]:
        """Every CONNECT target tinyproxy was asked for, in order."""
        return re.findall(r"Request \(file descriptor \d+\): CONNECT (\S+) ",
                          self.log())


class ProxyTest(unittest.TestCase):
    """Stand-ins, a helper and (per test) tinyproxy in one temp dir."""

    def setUp(self) -> None:
        reason = harness.require_root()
        if reason:
            self.skipTest(reason)
        if TINYPROXY is None:
            self.skipTest("e2e-skip: tinyproxy is not installed (Debian "
                          "package tinyproxy-bin; scripts/install-deps.sh "
                          "installs it)")
        self.assertTrue(harness.helper_path().exists(), "build the tree")
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="xoauth2-proxy-"))
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)

        # The helper inherits this process's environment: no proxy
        # variables but those a test sets.
        environment = mock.patch.dict(os.environ)
        environment.start()
        self.addCleanup(environment.stop)
        for name in PROXY_VARIABLES:
            os.environ.pop(name, None)

        self.standins = harness.Standins(self.root)
        self.addCleanup(self.standins.stop)
        self.standins.start()
        self.token_port = self.standins.ready["token_port"]
        self.target = f"127.0.0.1:{self.token_port}"
        self.helper = harness.TokenHelper(
            self.root, self.root / "sockets" / "token.sock")
        self.addCleanup(self.helper.stop)
        # Runs before the stops above: the harness's leak scan of every
        # log and output, told about the proxy passwords too.
        self.helper.configured += [("proxy password", PROXY_PASSWORD),
                                   ("proxy password", WRONG_PASSWORD)]
        self.addCleanup(harness.check_for_leaks, self.root, self.standins,
                        self.helper)

    def proxy(self, credentials: Optional[tuple[str, str]] = None,
              start: bool = True) -> Tinyproxy:
        """A tinyproxy for the token endpoint, started unless told not."""
        proxy = Tinyproxy(self.root, self.token_port, credentials)
        self.addCleanup(proxy.stop)
        if start:
            proxy.start()
        return proxy

    def start_helper(self, proxy_url: Optional[str]) -> None:
        """(Re)starts `token-helper run`, with "proxy" when given."""
        self.helper.stop()
        settings = {"proxy": proxy_url} if proxy_url else {}
        self.helper.write_config(self.standins, settings=settings)
        self.helper.start()

    def token(self) -> subprocess.CompletedProcess:
        """`token-helper token MAILBOX`."""
        return self.helper.command("token", harness.MAILBOX)

    def assert_token(self) -> None:
        """`token` succeeds and prints a hash, never the token."""
        result = self.token()
        self.assertEqual(result.returncode, 0,
                         result.stderr + self.helper.log())
        self.assertRegex(result.stdout, r"token=sha256:[0-9a-f]{12}")

    def wait_for_log(self, pattern: str, what: str,
                     timeout: float = 20) -> re.Match:
        """Polls the helper's log for a line matching `pattern`."""
        return harness.wait_until(
            lambda: re.search(pattern, self.helper.log(), re.M), timeout,
            what)

    def assert_not_said(self, texts: list[str], secrets: list[str]) -> None:
        """None of `secrets` in the helper's log or in `texts`."""
        for secret in secrets:
            self.assertNotIn(secret, self.helper.log())
            for text in texts:
                self.assertNotIn(secret, text)

    def test_token_goes_through_configured_proxy(self) -> None:
        """(a) "proxy" set: the token comes, tinyproxy saw the CONNECT."""
        proxy = self.proxy()
        self.start_helper(proxy.url())
        self.assert_token()
        self.assertIn(self.target, proxy.connects(), proxy.log())
        self.wait_for_log(r"level=info event=token_fetched .*$",
                          "token_fetched")

    def test_proxy_down_is_named_and_retried(self) -> None:
        """(b) the proxy is not running: a temporary failure naming the
        proxy (its password hidden); the helper lives on and fetches
        through the proxy once it runs."""
        proxy = self.proxy((PROXY_USER, PROXY_PASSWORD), start=False)
        self.start_helper(proxy.url(PROXY_USER, PROXY_PASSWORD))
        shown = f"http://{PROXY_USER}:***@127.0.0.1:{proxy.port}"
        failed = self.wait_for_log(
            r"level=warn event=token_fetch_failed .*$", "token_fetch_failed")
        for field in ("class=temporary", "state=retrying",
                      f"cannot connect to the proxy {shown} (setting proxy)",
                      "start the proxy or correct its host and port"):
            self.assertIn(field, failed.group(0))

        refused = self.token()
        self.assertEqual(refused.returncode, 1, refused.stderr)
        self.assertIn(f"cannot connect to the proxy {shown}", refused.stderr)
        status = self.helper.command("status", "--json")
        self.assertEqual(status.returncode, 0, status.stderr)
        account = json.loads(status.stdout)["accounts"][0]
        self.assertEqual((account["state"], account["error_class"]),
                         ("retrying", "temporary"))
        self.assertIn(shown, account["error"])
        self.assertIsNone(self.helper.proc.poll(), "the helper died")

        # The proxy comes up: the scheduled retry goes through it.
        proxy.start()
        # Retries come 5 s, then 10 s apart (plus jitter).
        self.wait_for_log(r"level=info event=token_fetched .*$",
                          "a token fetched through the revived proxy", 40)
        self.assertIn(self.target, proxy.connects(), proxy.log())
        self.assert_token()
        self.assert_not_said([refused.stdout, refused.stderr, status.stdout],
                             [PROXY_PASSWORD])

    def test_proxy_password_used_and_never_shown(self) -> None:
        """(c) user and password in the proxy URL: accepted by the proxy,
        never shown; a wrong one gives the proxy's refusal in words."""
        proxy = self.proxy((PROXY_USER, PROXY_PASSWORD))
        self.start_helper(proxy.url(PROXY_USER, PROXY_PASSWORD))
        self.assert_token()
        self.assertIn(self.target, proxy.connects(), proxy.log())
        check = self.helper.command("check")
        self.assertEqual(check.returncode, 0, check.stderr)
        status = self.helper.command("status")

        self.start_helper(proxy.url(PROXY_USER, WRONG_PASSWORD))
        failed = self.wait_for_log(
            r"level=warn event=token_fetch_failed .*$", "token_fetch_failed")
        self.assertIn(
            f"the proxy http://{PROXY_USER}:***@127.0.0.1:{proxy.port} did "
            "not accept the credentials given (HTTP 401 to CONNECT for "
            f"https://{self.target}/", failed.group(0))
        refused = self.token()
        self.assertEqual(refused.returncode, 1, refused.stderr)
        self.assert_not_said(
            [check.stdout, check.stderr, status.stdout, status.stderr,
             refused.stdout, refused.stderr],
            [PROXY_PASSWORD, WRONG_PASSWORD])

    def test_environment_proxy_used_without_setting(self) -> None:
        """(env) no "proxy": libcurl's https_proxy applies."""
        proxy = self.proxy()
        os.environ["https_proxy"] = proxy.url()
        self.start_helper(None)
        self.assert_token()
        self.assertIn(self.target, proxy.connects(), proxy.log())

    def test_setting_wins_over_environment(self) -> None:
        """(env) "proxy" set: https_proxy (a dead port) and no_proxy
        (naming the endpoint's host) are both ignored."""
        proxy = self.proxy()
        os.environ["https_proxy"] = f"http://127.0.0.1:{harness.free_port()}"
        os.environ["no_proxy"] = "127.0.0.1,localhost"
        self.start_helper(proxy.url())
        self.assert_token()
        self.assertIn(self.target, proxy.connects(), proxy.log())

    def test_check_refuses_unsupported_proxy(self) -> None:
        """`check` refuses a SOCKS proxy by file and setting, exit 3."""
        self.helper.write_config(self.standins, settings={
            "proxy": f"socks5://{PROXY_USER}:{PROXY_PASSWORD}@127.0.0.1:1"})
        check = self.helper.command("check")
        self.assertEqual(check.returncode, 3, check.stdout + check.stderr)
        self.assertIn(
            f"{self.helper.config_path}: proxy is socks5://{PROXY_USER}:***@"
            "127.0.0.1:1; write it as http://HOST:PORT", check.stderr)
        self.assertNotIn(PROXY_PASSWORD, check.stdout + check.stderr)


if __name__ == "__main__":
    unittest.main()
