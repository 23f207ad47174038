"""Canary run: no secret, refresh token or access token in any output,
with the helper at debug level, on the path that handles the most
secrets.

Every e2e and fault test already ends with the leak scan of
harness.RelayEnvironment.close() (tests/e2e/leak_scan.py): helper at
debug level (`run -v`), every configured secret and every token the
stand-ins issued or received looked for, raw, percent-encoded and base64,
in the helper's log, the maillog, every token-helper output and `status`.
This test drives one environment through the paths that touch the most
secrets and checks that the scan had them all to look for:

A relay with a confidential refresh-token account whose client secret
and first refresh token are distinctive canary strings, tokens living
8 s (so the refresh token rotates several times). It relays messages,
meets a 535 5.7.3 (the helper's reject path), a 500 from the endpoint
(its failure path), and runs the CLI (`check`, `token MAILBOX`,
`status`, `status --json`) and the demonstration's output
(tests/e2e/demo.py show() run against this environment). Then the scan
must have looked for the canaries, rotated refresh tokens, access tokens
and XOAUTH2 initial responses, in the CLI and demo outputs too, and found
none; the test also checks the canaries really travelled (the stand-in
received them), so it can fail.

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
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))

import demo  # noqa: E402
import fault_bench  # noqa: E402
import harness  # noqa: E402

CANARY_SECRET = "CANARY~secret+/=Zq7Wd3Kx"  # needs percent-encoding
CANARY_REFRESH = "rt.CANARY-refresh-9Vt4Hm2Pq"
CANARY_CLIENT_ID = "99999999-8888-7777-6666-555555555555"
CLI_COMMANDS = [("check",), ("token", harness.MAILBOX), ("status",),
                ("status", "--json")]


class CanaryTest(unittest.TestCase):
    """One relay environment with canary credentials."""

    def setUp(self) -> None:
        self.env = harness.relay_environment_for(self)

    def start(self) -> None:
        """Stand-ins knowing the canaries; the helper (at debug level, as
        in every test)."""
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
                       main_cf_extra=fault_bench.FAST_RETRY_MAIN_CF)

    def relay(self, subject: str) -> None:
        """One message submitted and delivered."""
        message, _ = harness.make_message(subject)
        queue_id = self.env.submit(message)
        self.env.postfix.flush()
        self.env.wait_for_status(queue_id, "sent", 60)

    def run_cli(self) -> None:
        """check, token, status and status --json, each until it
        succeeds (the harness keeps every output for the leak scan)."""
        helper = self.env.helper
        for args in CLI_COMMANDS:
            # Right after the 500 the helper may still be in its backoff
            # and answer `unavailable`; wait for the answer it settles on.
            harness.wait_until(
                lambda: helper.command(*args).returncode == 0,
                30, f"token-helper {' '.join(args)} to succeed",
                interval=0.5)

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
        self.assertIn("AUTH XOAUTH2", shown.getvalue())
        self.env.record_output("demo output", shown.getvalue())

    def test_no_secret_in_any_output(self) -> None:
        """The canaries travel to the stand-in and appear nowhere else."""
        self.start()
        self.exercise()

        # The canaries and rotated refresh tokens really were used.
        forms = [r["form"] for r in self.env.standins.state()[
            "token_requests"] if r.get("form")]
        self.assertIn(CANARY_SECRET, [f.get("client_secret") for f in forms])
        self.assertIn(CANARY_REFRESH, [f.get("refresh_token") for f in forms])
        rotated = [r["response"]["refresh_token"] for r in
                   self.env.standins.state()["token_requests"]
                   if r.get("response", {}).get("refresh_token")]
        self.assertGreater(len(rotated), 1, "the refresh token rotated")
        self.assertIn("level=debug", self.env.helper.log())

        # The scan close() makes, run now: it had every kind to look for
        # and read the CLI and demo outputs.
        report = self.env.scan_for_leaks()
        fault_bench.report_line(
            f"canary {report.summary()} "
            f"helper_log_bytes={len(self.env.helper.log())}")
        self.assertLessEqual({"client secret", "refresh token",
                              "access token", "XOAUTH2 initial response"},
                             report.kinds)
        self.assertGreaterEqual(report.values, 2 * len(rotated))
        self.assertIn("demo output", report.sources)
        for args in CLI_COMMANDS:
            self.assertTrue([s for s in report.sources
                             if f"`token-helper {' '.join(args)}`" in s],
                            args)
        self.assertIn("file helper/helper.log", report.sources)
        self.assertIn("file postfix/maillog", report.sources)
        self.assertEqual(report.failure(), "")


if __name__ == "__main__":
    unittest.main()
