"""Quick-start demonstration: relay one message through a private Postfix
with the XOAUTH2 plugin and token-helper to the Office 365 stand-ins.

What it is for: the README's "see it work" step. After building:

    sudo XOAUTH2_BUILD_DIR=build /usr/bin/python3 tests/e2e/demo.py

It starts the stand-ins, token-helper and Postfix exactly as the e2e tests
do (it only calls harness.RelayEnvironment), submits one message with
sendmail, waits for delivery, prints what the SMTP stand-in received (the
AUTH exchange decoded, the token masked, then the message) and stops
everything. Exit status 0 when the message arrived, 1 otherwise (with the
logs printed, or the leak scan's finding when a secret showed up in a
log: RelayEnvironment.close()), 77 when it cannot run here (not root,
nothing built). tests/faults/test_canary.py scans what show() prints.

What it deliberately does not do: build anything, or talk to Microsoft.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import harness  # noqa: E402


def show(env: harness.RelayEnvironment) -> None:
    """Prints the AUTH exchange and the message the stand-in received."""
    for attempt in env.standins.auth_attempts():
        print(f"AUTH {attempt['mechanism']} ({attempt['style']}): "
              f"{harness.decode_xoauth2(attempt['raw'])}")
        print(f"  server answered: {attempt['reply']}")
    for message in env.standins.messages():
        print(f"MAIL FROM:<{message['mail_from']}> "
              f"RCPT TO:{message['rcpt_tos']} "
              f"(authenticated as {message['auth']['mailbox']})")
        print("--- message as received ---")
        print(message["content"].decode("utf-8", "replace")
              .replace("\r\n", "\n"), end="")
        print("--- end ---")


def main() -> int:
    """Runs the demonstration; returns the exit status."""
    problem = harness.require_root() or (
        "missing " + ", ".join(harness.missing_binaries())
        if harness.missing_binaries() else None)
    if problem:
        print(f"demo cannot run: {problem}", file=sys.stderr)
        return 77
    env = harness.RelayEnvironment.create()
    try:
        print(f"working directory {env.root}")
        env.start()
        print(f"stand-ins: {env.standins.ready}")
        message, _ = harness.make_message("xoauth2-relay demo")
        queue_id = env.submit(message)
        print(f"submitted as Postfix queue id {queue_id}")
        print(env.wait_for_status(queue_id, "sent").group(0))
        show(env)
        return 0
    except AssertionError as failure:
        print(f"demo failed: {failure}{env.diagnostics()}", file=sys.stderr)
        return 1
    finally:
        env.close()


if __name__ == "__main__":
    sys.exit(main())
