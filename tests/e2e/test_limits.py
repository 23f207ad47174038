"""Size limits where a peer's answer enters token-helper, tested at exactly
the limit and one byte past it, with the real helper binary.

What it is for: token-helper caps every token endpoint answer at 64 KiB
(kMaxTokenResponseBytes, enforced while libcurl receives the body in
token_endpoint.cc and again by the parser). The unit tests check the
parser; these check the whole path: the Office 365 stand-in pads a real
answer to an exact size ("pad_to_bytes" fault, tests/standins/
token_endpoint.py) and the helper, run as `token-helper run` and asked
with `token-helper token MAILBOX`, must

  TokenEndpointBodyTest  use an access token from an answer of exactly
                         65536 bytes; refuse one of 65537 bytes with one
                         warning naming the limit and the endpoint URL,
                         put the account on its retry path and recover
                         with the next normal answer; never log the
                         refused answer's token.
  DeviceCodeBodyTest     `token-helper authorize ACCOUNT` takes a
                         devicecode answer of exactly 65536 bytes (shows
                         its user code, signs in) and refuses one of 65537
                         bytes with a message naming the limit.

No Postfix: stand-ins and helper only, in a temporary directory removed
afterwards; every process is stopped in cleanups (harness.Standins,
harness.TokenHelper), after harness.check_for_leaks has scanned every
output for secrets and tokens (the refused answers' tokens included).
Waiting polls a condition against a deadline.
Needs root like the other e2e tests (the helper's allowed_users are
postfix and root); without it every test reports "e2e-skip:".

Run from this directory with XOAUTH2_BUILD_DIR naming a built tree:
/usr/bin/python3 -m unittest -v test_limits (ctest e2e_limits).

What it deliberately does not do: test the other limits (config, secret
files, socket lines, plugin answer lines: unit tests in tests/unit do, at
and past each limit), or time the retry schedule (unit tests do).
"""

import hashlib
import re
import unittest

import harness

LIMIT = 64 * 1024  # kMaxTokenResponseBytes in token-helper/token_response.h
PUBLIC_CLIENT_ID = "66666666-7777-8888-9999-000000000000"
USER = "user@example.com"


def short_hash(token: str) -> str:
    """The helper's ShortHash of a token: sha256: and 12 hex digits."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


class LimitTestCase(unittest.TestCase):
    """Stand-ins and a helper configuration in a fresh directory."""

    def setUp(self) -> None:
        _, self.standins, self.helper = harness.helper_parts_for(
            self, "xoauth2-limits-")

    def token_requests(self, label: str) -> list[dict]:
        """The token endpoint requests answered under fault `label`."""
        return [r for r in self.standins.state()["token_requests"]
                if r.get("fault") == label]

    def pad_next_answers(self, label: str, size: int, count: int = 0):
        """The next `count` answers (all until cleared when 0) padded to
        exactly `size` bytes."""
        fault = {"pad_to_bytes": size, "label": label}
        if count:
            fault["count"] = count
        self.standins.set_token_fault(fault)


class TokenEndpointBodyTest(LimitTestCase):
    """The client credentials answer at and one byte past 64 KiB."""

    def setUp(self) -> None:
        super().setUp()
        self.standins.start()
        self.helper.write_config(self.standins)

    def test_answer_of_exactly_64_kib_is_used(self) -> None:
        """65536 bytes: the token in it is the one served."""
        self.pad_next_answers("at-limit", LIMIT, count=1)
        self.helper.start()
        asked = self.helper.command("token", harness.MAILBOX)
        self.assertEqual(asked.returncode, 0,
                         asked.stderr + self.helper.log())

        padded = self.token_requests("at-limit")
        self.assertEqual([(r["status"], r["response_bytes"]) for r in padded],
                         [(200, LIMIT)])
        issued = padded[0]["response"]["access_token"]
        self.assertIn(f"token={short_hash(issued)}", asked.stdout)
        self.assertEqual(len(self.standins.state()["token_requests"]), 1)

    def test_answer_one_byte_over_is_refused_then_retried(self) -> None:
        """65537 bytes: one warning naming the limit and the URL, the
        account retrying, no token served; after the fault the retry
        gets a token. The refused answer's token is never logged."""
        self.pad_next_answers("past-limit", LIMIT + 1)
        self.helper.start()
        url = (f"https://127.0.0.1:{self.standins.ready['token_port']}/"
               f"{harness.TENANT}/oauth2/v2.0/token")
        line = harness.wait_until(
            lambda: re.search(r"^.*event=token_fetch_failed .*$",
                              self.helper.log(), re.MULTILINE),
            20, "the helper's token_fetch_failed line").group(0)
        for part in ("level=warn", "class=temporary", "state=retrying",
                     "retry_in_s=", f"the answer from {url} exceeds 64 KiB"):
            self.assertIn(part, line)

        refused = self.helper.command("token", harness.MAILBOX)
        self.assertEqual(refused.returncode, 1, refused.stdout)
        self.assertIn("err unavailable", refused.stderr)

        # The retry path: the next normal answer is used.
        self.standins.set_token_fault(None)
        harness.wait_until(
            lambda: self.helper.command("token",
                                        harness.MAILBOX).returncode == 0,
            30, "a token after the oversized answers")

        padded = self.token_requests("past-limit")
        self.assertTrue(padded)
        self.assertEqual({r["response_bytes"] for r in padded}, {LIMIT + 1})
        log = self.helper.log()
        for record in padded:
            self.assertNotIn(record["response"]["access_token"], log)


class DeviceCodeBodyTest(LimitTestCase):
    """`token-helper authorize`: the devicecode answer at and past 64 KiB
    (the same transport limit, another endpoint)."""

    def setUp(self) -> None:
        super().setUp()
        self.refresh_file = self.helper.dir / "user.refresh"
        self.standins.start({
            "apps": [{"tenant": harness.TENANT,
                      "client_id": PUBLIC_CLIENT_ID,
                      "client_secret": None, "cloud": "global"}],
            "device_flow": {"interval": 1, "expires_in": 120}})
        self.helper.write_config(self.standins, account={
            "name": "user", "mailbox": USER, "cloud": "global",
            "tenant": harness.TENANT, "client_id": PUBLIC_CLIENT_ID,
            "grant": "refresh_token",
            "refresh_token_file": str(self.refresh_file)})

    def authorize(self):
        """Starts `token-helper authorize user`; stopped in cleanup."""
        proc = self.helper.spawn("authorize", "user")
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        return proc

    def test_devicecode_answer_of_exactly_64_kib_signs_in(self) -> None:
        """65536 bytes: the user code is shown; approving it signs in."""
        self.pad_next_answers("devicecode-at-limit", LIMIT, count=1)
        proc = self.authorize()
        codes = harness.wait_until(
            lambda: self.standins.state()["device_codes"], 20,
            "the devicecode request")
        self.standins.device_action("approve", codes[0]["user_code"], USER)
        out, err = proc.communicate(timeout=30)

        self.assertEqual(proc.returncode, 0, err)
        self.assertIn(codes[0]["user_code"], out)
        self.assertTrue(self.refresh_file.exists())
        padded = self.token_requests("devicecode-at-limit")
        self.assertEqual([(r["endpoint"], r["response_bytes"])
                          for r in padded], [("devicecode", LIMIT)])

    def test_devicecode_answer_one_byte_over_is_refused(self) -> None:
        """65537 bytes: exit 1 naming the limit; nothing stored."""
        self.pad_next_answers("devicecode-past-limit", LIMIT + 1, count=1)
        proc = self.authorize()
        _, err = proc.communicate(timeout=30)

        self.assertEqual(proc.returncode, 1, err)
        self.assertIn("exceeds 64 KiB", err)
        self.assertFalse(self.refresh_file.exists())
        padded = self.token_requests("devicecode-past-limit")
        self.assertEqual([(r["endpoint"], r["response_bytes"])
                          for r in padded], [("devicecode", LIMIT + 1)])


if __name__ == "__main__":
    unittest.main()
