"""Fault runs: no mail lost, none bounced, none duplicated while the token
endpoint, the token-helper or the submission server misbehave.

What it checks: for each fault, FaultBench.run pushes 200 messages
through real Postfix (the e2e harness's private instance, retry timers of
seconds) while the fault is on, clears it and accounts for every message
by its Message-ID in what the SMTP stand-in stored. Every run must show:
all delivered, no duplicate, none lost, nothing bounced (no
status=bounced, no non-delivery notice, no mail from <> anywhere), the
fault met (the stand-in or the helper recorded it: fault_hits > 0) and
mail deferred meanwhile (deferred_peak > 0). Each run prints one line of
figures (fault=... sent=... delivered=... drain_seconds=...).

  TokenEndpointFaultTest  a. connection refused (listener closed),
                          b. accepted and never answered (the helper's
                          request_timeout_seconds, 3 s here, bounds it),
                          c. 429 with Retry-After: 2, d. 500 and 503,
                          e. an HTML page with 200, f. truncated JSON,
                          g. a body over the helper's 64 KiB limit,
                          h. a certificate from a CA the helper does not
                          trust. Tokens live 8 s, so the helper's
                          scheduled refresh meets the fault within 4 s
                          and the token in hand is no longer served.
  ProcessFaultTest        i. the helper killed with SIGKILL while its
                          refresh waits on a slow endpoint, then
                          restarted (its stale socket in place);
                          j. the submission server answering AUTH with
                          535 5.7.3, then 451 4.7.0, then 432 4.3.2 (each
                          until met), in one run of 200 messages.

Run as root, from this directory, with XOAUTH2_BUILD_DIR naming a built
tree: /usr/bin/python3 -m unittest -v test_faults (ctest label fault,
tests/faults/faults.cmake). One Postfix instance per test class.

What it deliberately does not do: assert timings (drain_seconds is
reported only), or test the helper's backoff arithmetic (unit tests do).
"""

import os
import signal
import socket
import threading
import unittest
from typing import Optional

import fault_bench
from fault_bench import Fault, FaultBench

import harness

SLOW_SECONDS = 8  # the endpoint's delay while the helper is killed
HTML_PAGE = ("<!DOCTYPE html><html><head><title>Sign in</title></head>"
             "<body><p>Service temporarily unavailable.</p></body></html>")
THROTTLED = ('{"error":"temporarily_unavailable","error_description":'
             '"AADSTS50196: The server terminated an operation because it '
             'encountered a client request loop."}')
TRUNCATED = '{"token_type":"Bearer","scope":"https://outlook.office365.com'
OVERSIZED = ('{"token_type":"Bearer","expires_in":3599,"access_token":"'
             + "A" * (70 * 1024) + '"}')
SMTP_REPLIES = {
    "535": "535 5.7.3 Authentication unsuccessful [fault run]",
    "451": "451 4.7.0 Temporary server error. Please try again later. "
           "PRX4",
    "432": "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit "
           "exceeded",
}


def endpoint_fault(name: str, spec: dict) -> Fault:
    """A fault the stand-in endpoint answers with (counted by label)."""
    def inject(bench: FaultBench) -> None:
        bench.env.standins.set_token_fault(dict(spec, label=name))

    def hits(bench: FaultBench) -> int:
        return bench.env.standins.state()["token_fault_hits"].get(name, 0)
    return Fault(name, inject,
                 lambda bench: bench.env.standins.set_token_fault(None),
                 hits)


def refused_fault() -> Fault:
    """a. The endpoint's socket closed: every connect is refused. The
    stand-in cannot see that, so the helper's failed fetches count."""
    return Fault(
        "token-refused",
        lambda bench: bench.env.standins.set_token_listener(False),
        lambda bench: bench.env.standins.set_token_listener(True),
        fault_bench.helper_fetch_failures)


def untrusted_fault() -> Fault:
    """h. The endpoint serves a certificate of another CA; the stand-in
    counts the handshakes the helper broke off."""
    return Fault(
        "token-untrusted-cert",
        lambda bench: bench.env.standins.set_token_listener(
            True, "untrusted"),
        lambda bench: bench.env.standins.set_token_listener(True),
        lambda bench: len(bench.env.standins.state()["tls_failures"]))


class FaultTestCase(unittest.TestCase):
    """One FaultBench per class; checks shared by every run."""

    bench: FaultBench

    @classmethod
    def setUpClass(cls) -> None:
        reason = harness.require_root()
        if reason:
            raise unittest.SkipTest(reason)
        missing = harness.missing_binaries()
        if missing:
            raise AssertionError(f"build the tree first: missing {missing}")
        cls.bench = FaultBench()
        cls.addClassCleanup(cls.bench.close)
        cls.bench.start()

    def assertAccounted(self, figures: fault_bench.Figures) -> None:
        """Every message delivered exactly once, nothing bounced, the
        fault met and mail deferred while it lasted."""
        why = figures.line() + self.bench.env.diagnostics()
        self.assertEqual(figures.note, "", why)
        self.assertEqual(figures.sent, fault_bench.MESSAGES, why)
        self.assertEqual(figures.delivered, figures.sent, why)
        self.assertEqual(figures.lost, 0, why)
        self.assertEqual(figures.duplicates, 0, why)
        self.assertEqual(figures.bounced, 0, why)
        self.assertGreater(figures.fault_hits, 0, why)
        self.assertGreater(figures.deferred_peak, 0, why)
        self.assertGreater(figures.deferrals, 0, why)


class TokenEndpointFaultTest(FaultTestCase):
    """a-h: the token endpoint fails while tokens expire."""

    def test_token_endpoint_faults(self) -> None:
        """Each fault in turn on one instance, with an account after
        each (subTest per fault, so one failure does not hide others)."""
        faults = [
            refused_fault(),
            endpoint_fault("token-hang", {"hang": True,
                                          "hang_max_seconds": 60}),
            endpoint_fault("token-429", {
                "status": 429, "body": THROTTLED,
                "content_type": "application/json; charset=utf-8",
                "headers": {"Retry-After": "2"}}),
            endpoint_fault("token-500", {"status": 500,
                                         "body": HTML_PAGE}),
            endpoint_fault("token-503", {"status": 503,
                                         "body": "Service Unavailable",
                                         "content_type": "text/plain"}),
            endpoint_fault("token-html-200", {"status": 200,
                                              "body": HTML_PAGE}),
            endpoint_fault("token-truncated-json", {
                "status": 200, "body": TRUNCATED,
                "content_type": "application/json; charset=utf-8"}),
            endpoint_fault("token-oversized", {
                "status": 200, "body": OVERSIZED,
                "content_type": "application/json; charset=utf-8"}),
            untrusted_fault(),
        ]
        only = os.environ.get("XOAUTH2_FAULT_ONLY")
        for fault in faults:
            if only and fault.name not in only.split(","):
                continue
            with self.subTest(fault=fault.name):
                self.assertAccounted(self.bench.run(fault))


class ProcessFaultTest(FaultTestCase):
    """i, j: the helper dies mid-refresh; the server refuses AUTH."""

    def test_helper_killed_mid_refresh(self) -> None:
        """i. SIGKILL while the refresh waits on a slow endpoint; the
        helper restarts over its stale socket and the queue drains."""
        self.assertAccounted(self.bench.run(Fault(
            "helper-sigkill", self.kill_mid_refresh, self.restart_helper,
            lambda bench: self.kills)))

    kills = 0

    def kill_mid_refresh(self, bench: FaultBench) -> None:
        """Slows the endpoint, waits for the helper's refresh to be in
        flight there, and kills the helper with SIGKILL."""
        standins = bench.env.standins
        standins.set_token_fault({"label": "slow",
                                  "delay_seconds": SLOW_SECONDS})
        harness.wait_until(
            lambda: standins.state()["token_requests_in_flight"] > 0, 15,
            "the helper's refresh to reach the slow endpoint", 0.02)
        bench.env.helper.proc.send_signal(signal.SIGKILL)
        bench.env.helper.proc.wait(10)
        type(self).kills += 1

    def restart_helper(self, bench: FaultBench) -> None:
        """Ends the slowness and starts the helper again; waits until the
        new one answers on the socket the dead one left behind."""
        bench.env.standins.set_token_fault(None)
        bench.env.helper.start()

        def answers() -> bool:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                try:
                    sock.connect(str(bench.env.helper.socket))
                except OSError:
                    return False
            return True
        harness.wait_until(answers, 15, "the restarted helper's socket")

    def test_submission_server_refuses_auth(self) -> None:
        """j. 535 5.7.3, 451 4.7.0 and 432 4.3.2 to AUTH for a while:
        each reply is met, then the next is set, then AUTH succeeds."""
        cycle = ReplyCycle(self.bench)
        self.assertAccounted(self.bench.run(Fault(
            "smtp-auth-refusals", cycle.start, cycle.stop, cycle.hits,
            met_before_submit=False)))
        self.assertEqual([cycle.met[r] > 0 for r in SMTP_REPLIES.values()],
                         [True] * len(SMTP_REPLIES), cycle.met)


class ReplyCycle:
    """Sets each of SMTP_REPLIES as the AUTH reply in turn, moving on
    once Postfix has met it; a thread polls the stand-in's AUTH log."""

    def __init__(self, bench: FaultBench):
        self.bench = bench
        self.met = {reply: 0 for reply in SMTP_REPLIES.values()}
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self, bench: FaultBench) -> None:
        """Sets the first reply and starts the cycling thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._cycle, daemon=True)
        self._thread.start()

    def _cycle(self) -> None:
        """Each reply until met, then the next; the last one stays until
        stop()."""
        standins = self.bench.env.standins
        for reply in SMTP_REPLIES.values():
            standins.set_smtp_auth_mode("reply", reply)
            while not self._stop.is_set() and not self._count(reply):
                self._stop.wait(0.3)
            if self._stop.is_set():
                return

    def _count(self, reply: str) -> int:
        """AUTH attempts answered with `reply` so far."""
        self.met[reply] = sum(
            1 for attempt in self.bench.env.standins.auth_attempts()
            if attempt["reply"] == reply)
        return self.met[reply]

    def hits(self, bench: FaultBench) -> int:
        """AUTH attempts answered with any of the replies."""
        return sum(self._count(reply) for reply in SMTP_REPLIES.values())

    def stop(self, bench: FaultBench) -> None:
        """Ends the cycle once every reply was met; AUTH succeeds again."""
        harness.wait_until(lambda: all(self._count(r) for r in self.met),
                           60, "every AUTH reply to be met", 0.3)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        bench.env.standins.set_smtp_auth_mode("accept")


if __name__ == "__main__":
    unittest.main()
