"""End-to-end tests of the sender guard milter (field report F17): a real
Postfix with an smtpd(8) listener on 127.0.0.1 and the example's
smtpd_milters line enabled, `token-helper milter` on
xoauth2-relay/milter.sock in the queue directory, the token-helper and
the Office 365 stand-ins (harness.RelayEnvironment's parts).

What it checks:
  allowed       the mailbox as envelope sender and From relays and arrives;
                a send_as address passes too; `milter -v` logs each
                envelope sender and From header that passed
                (sender_accepted)
  F17 envelope  a foreign MAIL FROM gets the exact 550 5.7.1 reply naming
                send_as and the configuration file; nothing is queued or
                reaches the stand-in
  F17 header    an allowed envelope sender with a foreign From header is
                refused at the end of DATA; nothing reaches the stand-in
  milter down   Postfix answers 4xx (milter_default_action = tempfail),
                nothing is queued or bounced
  sendmail(1)   with non_smtpd_milters, the mailbox's own mail arrives;
                a foreign local submission is accepted by sendmail(1),
                refused by cleanup(8) and bounced: only the null-sender
                notice to the sender leaves (described in README.md)

Run as root: /usr/bin/python3 -m unittest -v test_milter (from this
directory) with XOAUTH2_BUILD_DIR naming the build tree; ctest runs it as
e2e_milter. Each test owns its processes (milter included) and stops them
through addCleanup, failing or not.

What it deliberately does not do: test the address parser case by case
(tests/unit/helper_sender_guard_test.cc does), or use anything but
127.0.0.1 and the test's temporary directory.
"""

import pathlib
import re
import signal
import smtplib
import stat
import subprocess
import unittest
from typing import Optional

import harness

ALERTS = "alerts@example.com"
FOREIGN = "someone.else@example.net"
CONFIG_TAIL = ("(Office 365 refuses it as SendAsDenied otherwise)")


class Milter:
    """`token-helper milter`: its process and its log."""

    def __init__(self, root: pathlib.Path, config: pathlib.Path,
                 socket: pathlib.Path):
        self.config = config
        self.socket = socket
        self.log_path = root / "milter.log"
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> None:
        """Starts the milter and waits until its socket exists."""
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(harness.helper_path()), "--config", str(self.config),
                 "milter", "-v"], stdout=log, stderr=log,
                preexec_fn=harness._die_with_parent)

        def listening():
            if self.proc.poll() is not None:
                raise AssertionError(f"milter exited {self.proc.returncode}"
                                     f": {self.log()}")
            return self.socket.exists() and stat.S_ISSOCK(
                self.socket.stat().st_mode)
        harness.wait_until(listening, 15, f"milter socket {self.socket}")

    def stop(self) -> Optional[int]:
        """SIGTERM and wait; the exit code (None if it never ran)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        """What the milter logged so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")


class MilterTestCase(unittest.TestCase):
    """A fresh environment with the sender guard between smtpd and
    cleanup; always cleaned up."""

    milters = ("smtpd_milters",)

    def setUp(self) -> None:
        self.env = harness.relay_environment_for(self)
        socket = self.env.postfix.socket.parent / "milter.sock"
        self.milter = Milter(self.env.root, self.env.helper.config_path,
                             socket)
        self.addCleanup(self.milter.stop)
        self.port = harness.free_port()

    def start(self) -> None:
        """Stand-ins, helper (send_as: ALERTS), milter, then Postfix."""
        env = self.env
        env.standins.start()
        account = {
            "name": "relay", "mailbox": harness.MAILBOX, "cloud": "global",
            "tenant": harness.TENANT, "client_id": harness.CLIENT_ID,
            "grant": "client_credentials",
            "client_secret_file": str(env.helper.dir / "relay.secret"),
            "send_as": [ALERTS]}
        env.helper.write_config(env.standins, account, {
            "sender_guard": {"socket": str(self.milter.socket)}})
        env.postfix.configure(env.standins.ready["smtp_port"],
                              env.standins.ready["ca_file"],
                              uncomment=self.milters, smtpd_port=self.port)
        env.helper.start()
        self.milter.start()
        env.postfix.start()

    def smtp(self) -> smtplib.SMTP:
        """An SMTP session with the instance's smtpd, EHLO done."""
        client = smtplib.SMTP("127.0.0.1", self.port, timeout=30)
        self.addCleanup(client.close)
        client.ehlo("client.e2e.test")
        return client

    def send(self, sender: str, from_header: str) -> str:
        """Sends one message over SMTP; its queue id."""
        message, _ = harness.make_message("guard", mailbox=from_header)
        client = self.smtp()
        self.assertEqual(client.mail(sender)[0], 250)
        self.assertEqual(client.rcpt("someone@example.org")[0], 250)
        code, text = client.data(message)
        self.assertEqual(code, 250, text)
        client.quit()
        return re.search(rb"queued as (\w+)", text).group(1).decode()

    def diagnostics(self) -> str:
        """The environment's logs and the milter's."""
        return (self.env.diagnostics() + "\n--- milter ---\n"
                + self.milter.log()[-3000:])

    def assertNothingRelayed(self) -> None:
        """Nothing queued, bounced or received by the stand-in."""
        self.assertEqual(self.env.postfix.queue_entries(), [])
        self.assertEqual(self.env.standins.messages(), [])
        self.assertNotIn("status=bounced", self.env.postfix.log())


class SenderGuardTest(MilterTestCase):
    """smtpd_milters: refusals at MAIL FROM and at the end of DATA."""

    def test_allowed_sender_and_send_as_arrive(self) -> None:
        """The mailbox and a send_as address relay and arrive."""
        self.start()
        for sender in (harness.MAILBOX, ALERTS.upper()):
            queue_id = self.send(sender, sender)
            self.env.wait_for_status(queue_id, "sent")
        received = self.env.standins.messages()
        self.assertEqual([r["mail_from"] for r in received],
                         [harness.MAILBOX, ALERTS.upper()],
                         self.diagnostics())
        log = self.milter.log()
        self.assertNotIn("sender_refused", log)
        for address in (harness.MAILBOX, ALERTS.upper()):
            for stage in ("mail_from", "header_from"):
                self.assertIn(f"level=debug event=sender_accepted "
                              f"stage={stage} address={address}", log)

    def test_foreign_envelope_sender_refused_at_mail_from(self) -> None:
        """F17: 550 5.7.1 at MAIL FROM, naming send_as and the file."""
        self.start()
        client = self.smtp()
        code, text = client.mail(FOREIGN)
        config = self.env.helper.config_path
        self.assertEqual((code, text.decode()), (550, (
            f"5.7.1 sender {FOREIGN} is not a mailbox xoauth2-relay holds "
            f"a token for; add it to \"send_as\" of an account in {config} "
            + CONFIG_TAIL)), self.diagnostics())
        client.quit()
        self.assertNothingRelayed()
        # Postfix's `_` macro names the client ("unknown [127.0.0.1]").
        self.assertRegex(self.milter.log(),
                         r"level=warn event=sender_refused stage=mail_from "
                         rf"address={re.escape(FOREIGN)} "
                         r'client="[^"]*\[127\.0\.0\.1\]" ')

    def test_foreign_from_header_refused_at_end_of_data(self) -> None:
        """F17: the envelope passes, the From header is refused."""
        self.start()
        message, _ = harness.make_message("guard", mailbox=FOREIGN)
        client = self.smtp()
        self.assertEqual(client.mail(harness.MAILBOX)[0], 250)
        self.assertEqual(client.rcpt("someone@example.org")[0], 250)
        code, text = client.data(message)
        config = self.env.helper.config_path
        self.assertEqual((code, text.decode()), (550, (
            f"5.7.1 From header address {FOREIGN} is not a mailbox "
            f"xoauth2-relay holds a token for; add it to \"send_as\" of an "
            f"account in {config} " + CONFIG_TAIL)), self.diagnostics())
        client.quit()
        self.assertNothingRelayed()

    def test_milter_down_answers_4xx_and_keeps_nothing(self) -> None:
        """milter_default_action = tempfail: 4xx, nothing lost or sent."""
        self.start()
        self.assertEqual(self.milter.stop(), 0, self.milter.log())
        self.assertFalse(self.milter.socket.exists())
        client = self.smtp()
        code, text = client.mail(harness.MAILBOX)
        self.assertEqual((code, text.decode()),
                         (451, "4.7.1 Service unavailable - try again later"),
                         self.diagnostics())
        client.close()
        self.assertNothingRelayed()
        self.env.postfix.wait_for_log(
            r"postfix/smtpd\[\d+\]: warning: connect to Milter service "
            r"unix:xoauth2-relay/milter\.sock: No such file or directory", 10)


class LocalSubmissionTest(MilterTestCase):
    """non_smtpd_milters: sendmail(1) submissions pass the guard too."""

    milters = ("smtpd_milters", "non_smtpd_milters")

    def test_allowed_local_submission_arrives(self) -> None:
        """The mailbox's own mail, submitted locally, arrives."""
        self.start()
        message, _ = harness.make_message("local")
        queue_id = self.env.submit(message)
        self.env.wait_for_status(queue_id, "sent")
        self.assertEqual(len(self.env.standins.messages()), 1)

    def test_foreign_local_submission_is_bounced_not_relayed(self) -> None:
        """F17 for sendmail(1): sendmail exits 0 (the maildrop took the
        message), cleanup(8) refuses it (milter-reject) and bounces it:
        the message never reaches Office 365, a non-delivery notice from
        the null sender goes to the envelope sender (README.md)."""
        self.start()
        message, _ = harness.make_message("local", mailbox=FOREIGN)
        self.env.postfix.submit(message, FOREIGN, ["someone@example.org"])
        reject = self.env.postfix.wait_for_log(
            r"postfix/cleanup\[\d+\]: (\w+): milter-reject: MAIL from "
            r"localhost\[127\.0\.0\.1\]: 5\.7\.1 sender "
            + re.escape(FOREIGN) + " is not a mailbox", 20)
        queue_id = reject.group(1)
        self.env.postfix.wait_for_log(
            rf"{queue_id}: to=<someone@example\.org>, relay=none, .*"
            r"dsn=5\.7\.1, status=bounced", 10)
        notice = self.env.postfix.wait_for_log(
            rf"{queue_id}: sender non-delivery notification: (\w+)", 10)
        self.env.wait_for_status(notice.group(1), "sent")
        received = self.env.standins.messages()
        self.assertEqual([(r["mail_from"], r["rcpt_tos"]) for r in received],
                         [("<>", [FOREIGN])], self.diagnostics())


if __name__ == "__main__":
    unittest.main()
