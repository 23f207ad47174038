"""Fault bench: a batch of messages through real Postfix while one fault
is injected and then cleared, and an account of every message.

What it is for: tests/faults/test_faults.py runs each fault of the issue
"No mail lost, no secret leaked" through FaultBench.run(Fault(...)). One
run:

    1. inject the fault and wait until it has been met (the stand-in or
       the helper recorded it: Fault.hits rises above its baseline);
    2. start submitting MESSAGES messages, each with a unique
       Message-ID, with Postfix's sendmail(1) from a small thread pool;
    3. wait until Postfix has deferred some of them (maillog lines and
       the deferred queue, sampled in the background) and half of the
       batch is in, so mail keeps arriving across the fault's end;
    4. clear the fault, let the submission finish, `postqueue -f`, and
       keep flushing every few seconds until every message of the run
       has reached the SMTP stand-in and the queue is empty (or
       DRAIN_TIMEOUT passes);
    5. account: delivered (distinct Message-IDs stored by the stand-in),
       duplicates, lost, bounced (maillog status=bounced, non-delivery
       notices, mail from <> in the stand-in or the queue), deferrals,
       the deferred queue's peak and the drain time. Figures() prints
       them on one line.

Main types: Fault (what to inject, clear and count), Figures (one run's
account), MessageLedger (what the stand-in stored, read incrementally),
QueueSampler (a thread sampling `postqueue -j`), Submission (a batch
being handed to sendmail(1) on a thread pool), FaultBench (one
RelayEnvironment with short Postfix retry timers and short helper
timeouts, plus the runs).

Ownership: FaultBench owns its RelayEnvironment (close() stops it); the
QueueSampler thread and the Submission's pool live for one run and are
joined before run() returns. Waiting
is polling a condition against a deadline (harness.wait_until).

What it deliberately does not do: assert anything (the tests do, on
Figures), time anything beyond reporting it, or use any address but
127.0.0.1.
"""

import concurrent.futures
import dataclasses
import json
import os
import pathlib
import re
import sys
import threading
import time
from typing import Callable, Optional

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "e2e"))

import harness  # noqa: E402

MESSAGES = 200
SUBMIT_THREADS = 6
DRAIN_TIMEOUT = 150.0
FLUSH_EVERY = 3.0

# Postfix retry timers in seconds instead of minutes (the defaults are
# 300s, 300s and 4000s), and no pacing of local submissions.
FAST_RETRY_MAIN_CF = [
    "queue_run_delay = 2s",
    "minimal_backoff_time = 2s",
    "maximal_backoff_time = 4s",
    "in_flow_delay = 0",
]
# Short helper timeouts so that a silent endpoint costs seconds.
FAST_HELPER_SETTINGS = {"connect_timeout_seconds": 2,
                        "request_timeout_seconds": 3}
# Tokens live 8 s: the helper refreshes every 4 s (half the lifetime), so
# an endpoint fault is met within seconds and the token in hand is no
# longer handed out once the refresh has failed.
SHORT_TOKEN_LIFETIME = 8

_MSGID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.MULTILINE
                    | re.IGNORECASE)


@dataclasses.dataclass
class Fault:
    """One fault: `inject` and `clear` switch it (given the bench),
    `hits` counts how often it has been met so far (a running total; the
    run uses the rise over its baseline)."""

    name: str
    inject: Callable[["FaultBench"], None]
    clear: Callable[["FaultBench"], None]
    hits: Callable[["FaultBench"], int]
    # False for faults only mail can meet (SMTP replies): then the run
    # waits for the first hit after submitting instead of before.
    met_before_submit: bool = True


@dataclasses.dataclass
class Figures:
    """The account of one run."""

    fault: str
    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    lost: int = 0
    bounced: int = 0
    deferrals: int = 0
    deferred_peak: int = 0
    fault_hits: int = 0
    helper_fetch_failures: int = 0
    submit_seconds: float = 0.0
    drain_seconds: float = 0.0
    run_seconds: float = 0.0
    note: str = ""

    def line(self) -> str:
        """The one-line report: `fault=NAME sent=N delivered=N ...`."""
        fields = [f"fault={self.fault}"]
        for field in dataclasses.fields(self)[1:]:
            value = getattr(self, field.name)
            if isinstance(value, float):
                value = f"{value:.1f}"
            if field.name != "note" or value:
                fields.append(f"{field.name}={value}")
        return " ".join(fields)


class MessageLedger:
    """Messages the SMTP stand-in stored, by Message-ID, read
    incrementally from its messages directory (NNN.json is written after
    NNN.eml, so a listed .json has its message complete)."""

    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.seen: set[str] = set()
        self.by_msgid: dict[str, int] = {}
        self.null_sender = 0

    def refresh(self) -> None:
        """Reads the records stored since the last call."""
        for meta in self.directory.glob("*.json"):
            if meta.name in self.seen:
                continue
            record = json.loads(meta.read_text())
            self.seen.add(meta.name)
            if not record["mail_from"]:
                self.null_sender += 1
            match = _MSGID.search(pathlib.Path(record["eml"]).read_bytes())
            msgid = match.group(1).decode() if match else "<none>"
            self.by_msgid[msgid] = self.by_msgid.get(msgid, 0) + 1


class QueueSampler(threading.Thread):
    """Samples `postqueue -j` every `interval` seconds until stopped;
    keeps the peak size of the deferred queue and the last sample."""

    def __init__(self, postfix: harness.PostfixInstance,
                 interval: float = 0.3):
        super().__init__(daemon=True)
        self.postfix = postfix
        self.interval = interval
        self.deferred_peak = 0
        self.last: list[dict] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        """The sampling loop."""
        while not self._stop_event.is_set():
            self.sample()
            self._stop_event.wait(self.interval)

    def sample(self) -> list[dict]:
        """One sample; returns the queue entries."""
        try:
            entries = self.postfix.queue_entries()
        except (AssertionError, OSError, ValueError):
            return self.last
        deferred = sum(1 for e in entries if e.get("queue_name") == "deferred")
        self.deferred_peak = max(self.deferred_peak, deferred)
        self.last = entries
        return entries

    def stop(self) -> None:
        """Ends the loop and joins the thread."""
        self._stop_event.set()
        self.join(30)


class Submission:
    """A batch handed to sendmail(1) by SUBMIT_THREADS threads; `done`
    counts messages accepted so far, wait() joins and re-raises."""

    def __init__(self, postfix: harness.PostfixInstance, name: str,
                 stamp: str, count: int):
        self.postfix = postfix
        self.name = name
        self.ids = [f"<fault.{name}.{i:03d}.{stamp}@relay.e2e.test>"
                    for i in range(count)]
        self.done = 0
        self.started = time.monotonic()
        self.seconds = 0.0  # from start to the last message accepted
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(SUBMIT_THREADS)
        self._futures = [self._pool.submit(self._one, i)
                         for i in range(count)]

    def _one(self, index: int) -> None:
        """Submits message `index`."""
        message, _ = harness.make_message(
            f"fault {self.name} #{index}",
            f"Message {index} of the {self.name} fault run.\n")
        message = re.sub(rb"^Message-ID: <[^>]+>",
                         b"Message-ID: " + self.ids[index].encode(),
                         message, count=1, flags=re.MULTILINE)
        self.postfix.submit(message, harness.MAILBOX,
                            ["someone@example.org"])
        with self._lock:
            self.done += 1
            self.seconds = time.monotonic() - self.started

    def wait(self) -> None:
        """Waits for every submission; raises the first failure."""
        try:
            for future in self._futures:
                future.result()
        finally:
            self._pool.shutdown(cancel_futures=True)


class LogTail:
    """A file read from a starting offset on (the maillog, the helper's
    log), so a run looks only at its own lines."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def text(self) -> str:
        """Everything written since the tail was made."""
        if not self.path.exists():
            return ""
        with open(self.path, "rb") as stream:
            stream.seek(self.offset)
            return stream.read().decode(errors="replace")


def helper_fetch_failures(bench: "FaultBench") -> int:
    """token_fetch_failed lines in the helper's log so far: how a fault
    the stand-in cannot see (connection refused) is counted."""
    return bench.env.helper.log().count("event=token_fetch_failed")


def report(figures: Figures) -> None:
    """Reports one run's figures line."""
    report_line(figures.line())


def report_line(line: str) -> None:
    """Prints a figures line and appends it to $XOAUTH2_FAULT_FIGURES."""
    print(line, file=sys.stderr, flush=True)
    path = os.environ.get("XOAUTH2_FAULT_FIGURES")
    if path:
        with open(path, "a") as stream:
            stream.write(line + "\n")


class FaultBench:
    """One relay environment tuned for fault runs, and the runs."""

    def __init__(self):
        self.env = harness.RelayEnvironment.create()
        self.ledger: Optional[MessageLedger] = None
        self.run_number = 0

    def start(self) -> None:
        """Stand-ins with 8 s tokens, helper with short timeouts, Postfix
        with retry timers of seconds."""
        config = self.env.standins.config()
        config["token_lifetime_seconds"] = SHORT_TOKEN_LIFETIME
        self.env.start(standin_config=config,
                       helper_settings=FAST_HELPER_SETTINGS,
                       main_cf_extra=FAST_RETRY_MAIN_CF)
        self.ledger = MessageLedger(self.env.standins.dir / "messages")

    def close(self) -> None:
        """Stops everything (safe to call more than once)."""
        self.env.close()

    def submit_batch(self, name: str, count: int) -> "Submission":
        """Starts submitting `count` messages with unique Message-IDs."""
        self.run_number += 1
        stamp = f"{time.time_ns()}.{os.getpid()}.{self.run_number}"
        return Submission(self.env.postfix, name, stamp, count)

    def delivered(self, ids: list[str]) -> int:
        """How many of `ids` the stand-in has stored at least once."""
        self.ledger.refresh()
        return sum(1 for i in ids if self.ledger.by_msgid.get(i, 0) > 0)

    def run(self, fault: Fault, count: int = MESSAGES) -> Figures:
        """One fault run (steps 1-5 of the module comment)."""
        figures = Figures(fault.name)
        maillog = LogTail(self.env.postfix.maillog)
        failures_before = helper_fetch_failures(self)
        hits_before = fault.hits(self)
        self.ledger.refresh()
        null_before = self.ledger.null_sender
        sampler = QueueSampler(self.env.postfix)
        sampler.start()
        started = time.monotonic()
        submission: Optional[Submission] = None
        try:
            submission = self._inject_and_submit(fault, hits_before, count)
            self._wait_for_deferrals(maillog, sampler, submission)
            fault.clear(self)
            cleared = time.monotonic()
            submission.wait()
            figures.submit_seconds = submission.seconds
            self._drain(submission.ids, sampler)
            figures.drain_seconds = time.monotonic() - cleared
        except AssertionError as failure:
            figures.note = str(failure).replace(" ", "_")[:120]
            fault.clear(self)
            if submission is not None:
                submission.wait()
        finally:
            sampler.stop()
        ids = submission.ids if submission is not None else []
        figures.sent = submission.done if submission is not None else 0
        self._account(figures, ids, maillog, sampler, null_before)
        figures.fault_hits = fault.hits(self) - hits_before
        figures.helper_fetch_failures = (helper_fetch_failures(self)
                                         - failures_before)
        figures.run_seconds = time.monotonic() - started
        report(figures)
        return figures

    def _inject_and_submit(self, fault: Fault, hits_before: int,
                           count: int) -> Submission:
        """Steps 1 and 2: the fault is met, then the batch goes in."""
        def met() -> None:
            harness.wait_until(lambda: fault.hits(self) > hits_before, 30,
                               f"the {fault.name} fault to be met", 0.2)
        fault.inject(self)
        if fault.met_before_submit:
            met()
        submission = self.submit_batch(fault.name, count)
        met()
        return submission

    def _wait_for_deferrals(self, maillog: LogTail, sampler: QueueSampler,
                            submission: Submission) -> None:
        """Step 3: Postfix has deferred mail of this run, and half the
        batch is in."""
        half = len(submission.ids) // 2
        harness.wait_until(
            lambda: (sampler.deferred_peak > 0 and submission.done >= half
                     and "status=deferred" in maillog.text()),
            60, f"deferred mail during the {submission.name} fault", 0.2)

    def _drain(self, ids: list[str], sampler: QueueSampler) -> None:
        """Step 4: flush until all arrived and the queue is empty."""
        last_flush = 0.0

        def drained() -> bool:
            nonlocal last_flush
            if time.monotonic() - last_flush >= FLUSH_EVERY:
                self.env.postfix.flush()
                last_flush = time.monotonic()
            return (self.delivered(ids) == len(ids)
                    and not self.env.postfix.queue_entries())
        harness.wait_until(drained, DRAIN_TIMEOUT,
                           "every message delivered and an empty queue",
                           0.3)

    def _account(self, figures: Figures, ids: list[str], maillog: LogTail,
                 sampler: QueueSampler, null_before: int) -> None:
        """Step 5: the figures of the run."""
        self.ledger.refresh()
        counts = [self.ledger.by_msgid.get(i, 0) for i in ids]
        figures.delivered = sum(1 for c in counts if c > 0)
        figures.duplicates = sum(c - 1 for c in counts if c > 1)
        figures.lost = figures.sent - figures.delivered
        log = maillog.text()
        queued_null = sum(1 for e in sampler.sample()
                          if e.get("sender", "x") == "")
        figures.bounced = (log.count("status=bounced")
                           + log.count("sender non-delivery notification")
                           + (self.ledger.null_sender - null_before)
                           + queued_null)
        figures.deferrals = log.count("status=deferred")
        figures.deferred_peak = sampler.deferred_peak
