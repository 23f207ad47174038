"""Configuration reload of `token-helper run` on SIGHUP, with the real
helper binary and the Office 365 stand-ins (no Postfix).

What it is for: an administrator edits config.json (or rotates a client
secret file) and runs `systemctl reload token-helper`, which sends SIGHUP
(token-helper.service's ExecReload). The helper must read the file
again, log event=config_reloaded with the account counts, and keep
serving throughout:

  test_added_account_is_served       a second account added by a reload
                                     gets its token; the first keeps its
                                     cached one (the stand-in issues it
                                     no second token)
  test_rotated_secret_is_used        the secret file rewritten in place
                                     (the stand-in accepts only the new
                                     secret): the account counts as
                                     kept and rotated, and a token is
                                     fetched at once with the new secret
  test_margin_change_with_endpoint_down
                                     refresh_margin_seconds changed
                                     while the token endpoint refuses
                                     connections: counted as kept and
                                     updated, and `token-helper token`
                                     still answers ok with the token
                                     hash it had before
  test_broken_config_keeps_serving   a file that does not parse:
                                     event=reload_failed naming the file,
                                     the process runs on and the old
                                     account is still served
  test_removed_account_is_unknown    an account left out of the file
                                     answers `err no-account`
  test_socket_change_needs_restart   a changed "socket" is not applied:
                                     event=reload_restart_needed names it

Requests go straight to the token socket (docs/protocol.md, `v1 token
MAILBOX`), so that they work even while the file on disk is broken (the
`token` command reads the socket path from it). The tokens received are
compared with the stand-in's records by hash only and never printed.
Every process is stopped in cleanups (harness.Standins,
harness.TokenHelper), after harness.check_for_leaks has scanned every
output for secrets and tokens. Waiting polls the helper's log against a
deadline. Needs root like the other e2e tests; without it every test
reports "e2e-skip:".

Run from this directory with XOAUTH2_BUILD_DIR naming a built tree:
/usr/bin/python3 -m unittest -v test_reload (ctest e2e_reload).

What it deliberately does not do: check the allowlists' reload (unit
tests of the socket server and the listener cover the checks; here every
request comes from root), or the sender guard milter, which a reload
does not reach (libmilter stops on SIGHUP; see man/token-helper.8).
"""

import hashlib
import pathlib
import re
import signal
import socket
import unittest

import harness

OTHER_MAILBOX = "other@example.com"
OTHER_CLIENT_ID = "22222222-3333-4444-5555-666666666666"
OTHER_SECRET = "CANARY-Other~7.secret+/=xyz_SECRET"
ROTATED_SECRET = "CANARY-Rotated~9.secret+/=uvw_SECRET"


def issued_hash(token: str) -> str:
    """The stand-in's name for a token it issued (standin_state.py)."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


class ReloadTest(unittest.TestCase):
    """Stand-ins with two app registrations and a running helper."""

    def setUp(self) -> None:
        _, self.standins, self.helper = harness.helper_parts_for(
            self, "xoauth2-reload-")

    def start(self, relay_secret: str = harness.CLIENT_SECRET,
              accounts: tuple[str, ...] = ("relay",)) -> None:
        """Starts the stand-ins (relay's app accepting `relay_secret`)
        and the helper with `accounts`."""
        config = self.standins.config()
        config["apps"][0]["client_secret"] = relay_secret
        config["apps"].append({
            "tenant": harness.TENANT, "client_id": OTHER_CLIENT_ID,
            "client_secret": OTHER_SECRET, "cloud": "global",
            "send_as": [OTHER_MAILBOX]})
        self.standins.start(config)
        self.write_config(accounts)
        self.helper.start()

    def account(self, which: str) -> dict:
        """The configuration entry of account "relay" or "other"."""
        authority = f"https://127.0.0.1:{self.standins.ready['token_port']}"
        if which == "relay":
            return {"name": "relay", "mailbox": harness.MAILBOX,
                    "grant": "client_credentials", "authority": authority,
                    "tenant": harness.TENANT,
                    "client_id": harness.CLIENT_ID,
                    "client_secret_file": str(self.helper.dir /
                                              "relay.secret")}
        secret = self.helper.dir / "other.secret"
        secret.write_text(OTHER_SECRET)
        secret.chmod(0o600)
        return {"name": "other", "mailbox": OTHER_MAILBOX,
                "grant": "client_credentials", "authority": authority,
                "tenant": harness.TENANT,
                "client_id": OTHER_CLIENT_ID,
                "client_secret_file": str(secret)}

    def write_config(self, accounts: tuple[str, ...],
                     settings: dict = None) -> None:
        """Rewrites the helper's file with `accounts` (harness's file,
        so the leak scan knows every secret; relay.secret is rewritten
        with the harness's canary)."""
        entries = [self.account(which) for which in accounts]
        self.helper.write_config(self.standins,
                                 settings={"accounts": entries,
                                           **(settings or {})})

    def lines(self, event: str) -> list[str]:
        """The helper's log lines of `event` so far."""
        return re.findall(rf"^.*event={event} .*$", self.helper.log(),
                          re.MULTILINE)

    def next_line(self, event: str, seen: int) -> str:
        """Waits for line number `seen` (from 0) of `event`."""
        def logged():
            found = self.lines(event)
            return found[seen] if len(found) > seen else None
        return harness.wait_until(logged, 15, f"event={event} after SIGHUP")

    def reload(self, event: str) -> str:
        """Sends SIGHUP and returns the next `event` line it logs."""
        seen = len(self.lines(event))
        self.helper.proc.send_signal(signal.SIGHUP)
        return self.next_line(event, seen)

    def ask(self, mailbox: str) -> str:
        """One `v1 token MAILBOX` request on the token socket; the
        answer line."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(10)
            client.connect(str(self.helper.socket))
            client.sendall(f"v1 token {mailbox}\n".encode())
            return harness.read_answer(client).decode()

    def token(self, mailbox: str) -> str:
        """The access token the helper serves for `mailbox`."""
        answer = self.ask(mailbox)
        self.assertTrue(answer.startswith("ok "),
                        answer.split(" ", 2)[:2] + [self.helper.log()])
        return answer.split(" ")[1]

    def issued(self, client_id: str) -> list[dict]:
        """The stand-in's successful token answers for `client_id`."""
        return [r for r in self.standins.state()["token_requests"]
                if r.get("status") == 200
                and r.get("form", {}).get("client_id") == client_id]

    def test_added_account_is_served(self) -> None:
        self.start()
        first = self.token(harness.MAILBOX)
        self.assertIn("err no-account", self.ask(OTHER_MAILBOX))

        self.write_config(("relay", "other"))
        line = self.reload("config_reloaded")
        for part in ("level=info", "accounts=2", "kept=1", "changed=0",
                     "added=1", "removed=0",
                     f"config={self.helper.config_path}"):
            self.assertIn(part, line)

        other = self.token(OTHER_MAILBOX)
        self.assertEqual([r["issued"] for r in self.issued(OTHER_CLIENT_ID)],
                         [issued_hash(other)])
        # The unchanged account kept its cached token: no second one.
        self.assertEqual(self.token(harness.MAILBOX), first)
        self.assertEqual(len(self.issued(harness.CLIENT_ID)), 1)

    def test_rotated_secret_is_used(self) -> None:
        self.start(relay_secret=ROTATED_SECRET)
        harness.wait_until(
            lambda: re.search(r"event=token_fetch_failed .*"
                              r"aadsts=\D*7000215", self.helper.log()),
            20, "the refused old secret")
        self.assertIn("err unavailable", self.ask(harness.MAILBOX))

        secret = self.helper.dir / "relay.secret"
        secret.write_text(ROTATED_SECRET)
        line = self.reload("config_reloaded")
        for part in ("kept=1", "updated=0", "rotated=1", "changed=0"):
            self.assertIn(part, line)

        token = harness.wait_until(
            lambda: self.ask(harness.MAILBOX).startswith("ok ")
            and self.token(harness.MAILBOX), 20, "a token after rotation")
        issued = self.issued(harness.CLIENT_ID)
        self.assertEqual([r["issued"] for r in issued], [issued_hash(token)])
        self.assertEqual(issued[0]["form"]["client_secret"], ROTATED_SECRET)

    def cli_token_hash(self) -> str:
        """The token hash `token-helper token MAILBOX` prints (it must
        answer ok, exit 0)."""
        asked = self.helper.command("token", harness.MAILBOX)
        self.assertEqual(asked.returncode, 0,
                         asked.stdout + asked.stderr + self.helper.log())
        found = re.search(r"token=sha256:([0-9a-f]{12})\b", asked.stdout)
        self.assertIsNotNone(found, asked.stdout)
        return found.group(1)

    def test_margin_change_with_endpoint_down(self) -> None:
        self.start()
        first = self.token(harness.MAILBOX)
        self.assertEqual(self.cli_token_hash(), issued_hash(first))

        # A new margin needs no new token: no fetch, so none can fail.
        self.standins.set_token_listener(False)
        self.write_config(("relay",), {"refresh_margin_seconds": 900})
        line = self.reload("config_reloaded")
        for part in ("kept=1", "updated=1", "rotated=0", "changed=0"):
            self.assertIn(part, line)
        self.assertEqual(self.cli_token_hash(), issued_hash(first))
        self.assertEqual(self.token(harness.MAILBOX), first)
        self.assertEqual(len(self.issued(harness.CLIENT_ID)), 1)
        self.assertNotIn("event=token_fetch_failed", self.helper.log())

    def test_broken_config_keeps_serving(self) -> None:
        self.start()
        first = self.token(harness.MAILBOX)

        self.helper.config_path.write_text('{"accounts": [\n')
        line = self.reload("reload_failed")
        self.assertIn("level=error", line)
        self.assertIn(str(self.helper.config_path), line)
        self.assertIsNone(self.helper.proc.poll(), "the helper exited")
        self.assertEqual(self.token(harness.MAILBOX), first)
        self.assertNotIn("event=config_reloaded", self.helper.log())

        # Fixed again, the next reload applies it.
        self.write_config(("relay",))
        self.assertIn("kept=1", self.reload("config_reloaded"))
        self.assertEqual(self.token(harness.MAILBOX), first)

    def test_removed_account_is_unknown(self) -> None:
        self.start(accounts=("relay", "other"))
        self.token(OTHER_MAILBOX)

        self.write_config(("relay",))
        line = self.reload("config_reloaded")
        self.assertIn("removed=1", line)
        self.assertIn("kept=1", line)
        self.assertTrue(self.ask(OTHER_MAILBOX).startswith("err no-account"))
        self.token(harness.MAILBOX)

    def test_socket_change_needs_restart(self) -> None:
        self.start()
        first = self.token(harness.MAILBOX)

        moved = str(self.helper.dir / "moved.sock")
        self.write_config(("relay",), {"socket": moved})
        warning = self.reload("reload_restart_needed")
        self.assertIn("level=warn", warning)
        self.assertIn("setting=socket", warning)
        self.assertIn("restart", warning)
        self.assertIn("kept=1", self.next_line("config_reloaded", 0))
        self.assertEqual(self.token(harness.MAILBOX), first)
        self.assertFalse(pathlib.Path(moved).exists())


if __name__ == "__main__":
    unittest.main()
