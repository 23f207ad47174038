"""Load run: hundreds of concurrent clients ask the token-helper for
tokens over its Unix socket; it must answer every one (a token, or
`err unavailable` past its connection cap), leak no file descriptor and
still answer afterwards.

What it checks, in two waves of CLIENTS clients released together by a
barrier (Python threads, each with a socket timeout):
  cached  the token is in the helper's cache: answers come from memory;
  cold    the cached token was rejected (`v1 reject`) and the endpoint
          answers 2 s late, so clients pile up waiting for one fetch and
          the connection cap (64) turns the rest away.
Clients connect as the SASL plugin does, retrying a full listen backlog
(EAGAIN) until their deadline. Past its cap the helper answers and
closes without reading the request, so a client's send can fail with
EPIPE (send_epipe): the client then still reads the answer waiting in
its socket. (The plugin does not: it reports "cannot send to
token-helper: Broken pipe"; still a deferral, but the helper's reason
is lost.) For each wave it prints requests, answered
ok, answered err unavailable, other errors, failed connections, connect
retries, p50/p99 latency, and the helper's VmRSS
and open descriptor count before and after (from /proc/PID). Asserts: no
client without an answer, descriptors back to the baseline within a
deadline, the helper answers `ok` afterwards, and in the cold wave
exactly one token request reached the endpoint (F13 under load).

Needs root (the helper's allowlist, like the e2e tests); no Postfix. Run:
/usr/bin/python3 -m unittest -v test_load (ctest label fault).

What it deliberately does not do: assert latencies (reported only), or
measure anything of the SASL plugin.
"""

import pathlib
import socket
import statistics
import sys
import threading
import time
import unittest
from typing import Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))

import fault_bench  # noqa: E402
import harness  # noqa: E402

CLIENTS = 400
CLIENT_TIMEOUT = 20.0
SLOW_SECONDS = 2


def connect(sock: socket.socket, path: str, deadline: float) -> int:
    """Connects as the SASL plugin does: a full listen backlog (EAGAIN on
    a Unix socket) is retried until `deadline`; returns the retries."""
    retries = 0
    while True:
        try:
            sock.connect(path)
            return retries
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise
            retries += 1
            time.sleep(0.005)


def ask(path: str, line: str, timeout: float = CLIENT_TIMEOUT,
        retries: Optional[list] = None,
        broken_pipes: Optional[list] = None) -> str:
    """One request line over the helper's socket; the answer line.
    Connect retries are appended to `retries`, and a send that met a
    closed connection (EPIPE) to `broken_pipes`, when given; after EPIPE
    the answer the helper wrote before closing is still read."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        tried = connect(sock, path, time.monotonic() + timeout)
        if retries is not None:
            retries.append(tried)
        try:
            sock.sendall(line.encode())
        except BrokenPipeError:
            if broken_pipes is None:
                raise
            broken_pipes.append(1)
        answer = harness.read_answer(sock)
    return answer.decode(errors="replace").strip()


def process_figures(pid: int) -> tuple[int, int]:
    """The process's VmRSS in KiB and its count of open descriptors."""
    rss = 0
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
    return rss, len(list(pathlib.Path(f"/proc/{pid}/fd").iterdir()))


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile of `values` (nearest rank), 0 if empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def wave(path: str, count: int) -> dict:
    """`count` clients released at once; their answers and latencies."""
    barrier = threading.Barrier(count)
    results: list[tuple[str, float]] = []
    retries: list[int] = []
    broken_pipes: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        started = time.monotonic()
        try:
            answer = ask(path, f"v1 token {harness.MAILBOX}\n",
                         retries=retries, broken_pipes=broken_pipes)
        except OSError as err:
            answer = f"failed {type(err).__name__}/{err.errno}"
        with lock:
            results.append((answer, time.monotonic() - started))
    threads = [threading.Thread(target=client) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(CLIENT_TIMEOUT + 10)
    answers = [a for a, _ in results]
    latencies = [seconds * 1000 for _, seconds in results]
    return {
        "requests": count,
        "ok": sum(1 for a in answers if a.startswith("ok ")),
        "err_unavailable": sum(1 for a in answers
                               if a.startswith("err unavailable")),
        "err_other": sum(1 for a in answers if a.startswith("err ")
                         and not a.startswith("err unavailable")),
        "failed": count - sum(1 for a in answers
                              if a.startswith(("ok ", "err "))),
        "connect_retries": sum(retries),
        "send_epipe": len(broken_pipes),
        "p50_ms": statistics.median(latencies) if latencies else 0.0,
        "p99_ms": percentile(latencies, 0.99),
        "token": next((a.split()[1] for a in answers
                       if a.startswith("ok ")), ""),
        "failures": sorted({a for a in answers
                            if not a.startswith(("ok ", "err "))}),
    }


class LoadTest(unittest.TestCase):
    """Two waves against one helper."""

    def setUp(self) -> None:
        self.env = harness.relay_environment_for(self)
        self.env.standins.start()
        self.env.helper.write_config(
            self.env.standins, settings=fault_bench.FAST_HELPER_SETTINGS)
        self.env.helper.start()
        self.path = str(self.env.helper.socket)
        self.pid = self.env.helper.proc.pid

    def run_wave(self, name: str, baseline_fds: int) -> dict:
        """One wave, its figures printed; waits for the descriptors to
        come back to `baseline_fds`."""
        rss_before, fds_before = process_figures(self.pid)
        figures = wave(self.path, CLIENTS)
        settled = harness.wait_until(
            lambda: process_figures(self.pid)[1] <= baseline_fds
            and process_figures(self.pid), 20,
            f"the helper's descriptors back to {baseline_fds}")
        rss_after, fds_after = settled
        line = (f"load={name} requests={figures['requests']} "
                f"ok={figures['ok']} "
                f"err_unavailable={figures['err_unavailable']} "
                f"err_other={figures['err_other']} "
                f"failed={figures['failed']} "
                f"connect_retries={figures['connect_retries']} "
                f"send_epipe={figures['send_epipe']} "
                f"p50_ms={figures['p50_ms']:.1f} "
                f"p99_ms={figures['p99_ms']:.1f} "
                f"rss_kb_before={rss_before} rss_kb_after={rss_after} "
                f"fds_before={fds_before} fds_after={fds_after}"
                + (f" failures={','.join(figures['failures'])}"
                   if figures["failures"] else ""))
        fault_bench.report_line(line)
        self.assertEqual(figures["failed"], 0, line)
        self.assertEqual(figures["err_other"], 0, line)
        # A leak keeps descriptors above the baseline; fewer is fine (the
        # baseline may include a connection the helper was still closing).
        self.assertLessEqual(fds_after, baseline_fds, line)
        return figures

    def test_concurrent_clients(self) -> None:
        """Cached wave, then cold wave with a slow endpoint."""
        first = ask(self.path, f"v1 token {harness.MAILBOX}\n")
        self.assertTrue(first.startswith("ok "), first)
        _, baseline_fds = process_figures(self.pid)

        cached = self.run_wave("cached", baseline_fds)
        self.assertGreater(cached["ok"], 0)

        # Drop the cached token and slow the endpoint: one fetch, many
        # waiters, the cap turning the rest away.
        standins = self.env.standins
        requests_before = len(standins.state()["token_requests"])
        standins.set_token_fault({"label": "slow-load",
                                  "delay_seconds": SLOW_SECONDS})
        token = first.split()[1]
        self.assertEqual(
            ask(self.path, f"v1 reject {harness.MAILBOX} {token}\n"), "ok")
        cold = self.run_wave("cold", baseline_fds)
        standins.set_token_fault(None)
        self.assertGreater(cold["ok"] + cold["err_unavailable"], 0)
        fetches = len(standins.state()["token_requests"]) - requests_before
        self.assertEqual(fetches, 1, "one fetch for all waiting clients")

        after = ask(self.path, f"v1 token {harness.MAILBOX}\n")
        self.assertTrue(after.startswith("ok "), after)
        self.assertNotIn(token, after)


if __name__ == "__main__":
    unittest.main()
