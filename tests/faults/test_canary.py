"""Canary run: no secret, refresh token or access token in any output,
with the helper at debug level.

What it checks: a relay with a confidential refresh-token account whose
client secret and first refresh token are distinctive canary strings,
tokens living 8 s (so the refresh token rotates several times), the
helper started with `run -v` (debug). It relays messages, meets a 535
5.7.3 (the helper's reject path), a 500 from the endpoint (its failure
path), and runs the CLI (`check`, `token MAILBOX`, and `status` when the
build has it). Then no canary, no refresh token the stand-in issued, no
access token it issued and no XOAUTH2 initial response Postfix sent may
appear, raw or percent-encoded, in: the helper's stderr log, the Postfix
maillog, any CLI output, or the demonstration's output (tests/e2e/demo.py
show() run against this environment). The test also checks the canaries
really travelled (the stand-in received them), so it can fail.

Needs root like the e2e tests. Run: /usr/bin/python3 -m unittest -v
test_canary (ctest label fault).

What it deliberately does not do: scan the stand-ins' own recordings
(they hold secrets by design), or Postfix's verbose smtp logging, which
prints the SASL response (KNOWN_ISSUES.md).
"""

import contextlib
import io
import pathlib
import sys
import urllib.parse
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))

import demo  # noqa: E402
import fault_bench  # noqa: E402
import harness  # noqa: E402

CANARY_SECRET = "CANARY~secret+/=Zq7Wd3Kx"  # needs percent-encoding
CANARY_REFRESH = "rt.CANARY-refresh-9Vt4Hm2Pq"
CANARY_CLIENT_ID = "99999999-8888-7777-6666-555555555555"


def variants(value: str) -> set[str]:
    """`value` as it could leak: raw and percent-encoded both ways."""
    return {value, urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value)}


class CanaryTest(unittest.TestCase):
    """One relay environment with canary credentials."""

    def setUp(self) -> None:
        reason = harness.require_root()
        if reason:
            self.skipTest(reason)
        self.assertEqual(harness.missing_binaries(), [],
                         "build the tree first")
        self.env = harness.RelayEnvironment.create()
        self.addCleanup(self.env.close)
        self.outputs: dict[str, str] = {}

    def start(self) -> None:
        """Stand-ins knowing the canaries; the helper at debug level."""
        secret = self.env.helper.dir / "canary.secret"
        refresh = self.env.helper.dir / "canary.refresh"
        for path, value in ((secret, CANARY_SECRET),
                            (refresh, CANARY_REFRESH)):
            path.write_text(value)
            path.chmod(0o600)
        standin_config = {
            "token_lifetime_seconds": fault_bench.SHORT_TOKEN_LIFETIME,
            "apps": [{"tenant": harness.TENANT,
                      "client_id": CANARY_CLIENT_ID,
                      "client_secret": CANARY_SECRET, "cloud": "global"}],
            "refresh_tokens": [{"refresh_token": CANARY_REFRESH,
                                "client_id": CANARY_CLIENT_ID,
                                "tenant": harness.TENANT,
                                "mailbox": harness.MAILBOX}]}
        account = {"name": "relay", "mailbox": harness.MAILBOX,
                   "cloud": "global", "tenant": harness.TENANT,
                   "client_id": CANARY_CLIENT_ID, "grant": "refresh_token",
                   "client_secret_file": str(secret),
                   "refresh_token_file": str(refresh)}
        self.env.start(standin_config=standin_config, account=account,
                       helper_settings=fault_bench.FAST_HELPER_SETTINGS,
                       helper_args=("-v",),
                       main_cf_extra=fault_bench.FAST_RETRY_MAIN_CF)

    def relay(self, subject: str) -> None:
        """One message submitted and delivered."""
        message, _ = harness.make_message(subject)
        queue_id = self.env.submit(message)
        self.env.postfix.flush()
        self.env.wait_for_status(queue_id, "sent", 60)

    def run_cli(self) -> None:
        """check, token and (if built) status; outputs kept."""
        helper = self.env.helper
        commands = [("check",), ("token", harness.MAILBOX)]
        if " status" in helper.command("--help").stdout:
            commands.append(("status",))
        for args in commands:
            # Right after the 500 the helper may still be in its backoff
            # and answer `unavailable`; wait for the answer it settles on.
            result = harness.wait_until(
                lambda: (lambda r: r if r.returncode == 0 else None)(
                    helper.command(*args)),
                30, f"token-helper {' '.join(args)} to succeed",
                interval=0.5)
            self.outputs["cli " + " ".join(args)] = (result.stdout
                                                     + result.stderr)

    def exercise(self) -> None:
        """Relays, a refused token, a failed refresh, CLI and demo."""
        standins = self.env.standins
        self.relay("canary 1")
        standins.set_smtp_auth_mode("refuse")
        message, _ = harness.make_message("canary refused")
        queue_id = self.env.submit(message)
        self.env.wait_for_status(queue_id, "deferred")
        standins.set_smtp_auth_mode("accept")
        standins.set_token_fault({"status": 500, "body": "oops",
                                  "label": "canary-500", "count": 1})
        harness.wait_until(
            lambda: standins.state()["token_fault_hits"].get("canary-500"),
            30, "the 500 to be met")
        self.env.postfix.flush()
        self.env.wait_for_status(queue_id, "sent", 60)
        self.relay("canary 2")
        self.run_cli()
        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            demo.show(self.env)
        self.outputs["demo output"] = shown.getvalue()

    def secrets(self) -> dict[str, str]:
        """Every secret value to look for, named by kind."""
        state = self.env.standins.state()
        found = {v: "client secret" for v in variants(CANARY_SECRET)}
        for request in state["token_requests"]:
            response = request.get("response") or {}
            for key in ("access_token", "refresh_token"):
                if response.get(key):
                    for value in variants(response[key]):
                        found[value] = key
        found.update({v: "refresh token" for v in variants(CANARY_REFRESH)})
        for attempt in self.env.standins.auth_attempts():
            found[attempt["raw"]] = "XOAUTH2 initial response"
        return found

    def test_no_secret_in_any_output(self) -> None:
        """The canaries travel to the stand-in and appear nowhere else."""
        self.start()
        self.exercise()

        # The canaries and rotated refresh tokens really were used.
        forms = [r["form"] for r in self.env.standins.state()[
            "token_requests"] if r.get("form")]
        self.assertIn(CANARY_SECRET, [f.get("client_secret") for f in forms])
        self.assertIn(CANARY_REFRESH, [f.get("refresh_token") for f in forms])
        secrets = self.secrets()
        kinds = set(secrets.values())
        self.assertTrue({"access_token", "refresh_token"} <= kinds, kinds)
        self.assertIn("level=debug", self.env.helper.log())

        sources = dict(self.outputs)
        sources["helper stderr"] = self.env.helper.log()
        sources["maillog"] = self.env.postfix.log()
        leaks = sorted({(name, kind) for name, text in sources.items()
                        for value, kind in secrets.items() if value in text})
        fault_bench.report_line(
            f"canary sources={len(sources)} secrets={len(secrets)} "
            f"helper_log_bytes={len(sources['helper stderr'])} "
            f"leaks={len(leaks)}")
        self.assertEqual(leaks, [], "secret found (source, kind)")


if __name__ == "__main__":
    unittest.main()
