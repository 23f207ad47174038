"""Office 365 stand-ins: token endpoint, SMTP submission, control API.

What it is for: one process that plays Microsoft for the end-to-end tests,
on loopback only:

    /usr/bin/python3 o365.py --state-dir DIR [--config FILE]

It makes a test CA and server certificate in DIR, listens on three free
ports (HTTPS token endpoint, SMTP with STARTTLS, plain-HTTP control API),
then writes DIR/ready.json atomically:

    {"token_port": P, "smtp_port": P, "control_port": P,
     "ca_file": "DIR/ca.pem", "pid": PID, "smtp_persona": "office365"}

Tests wait for that file. Accepted messages land in DIR/messages/NNN.eml
(exact DATA bytes) and NNN.json (envelope and authentication; written
last). SIGTERM or SIGINT stops the process cleanly; it removes ready.json.

With "smtp_persona": "gmail" in the config, the SMTP port plays Gmail
(gmail_smtp.py) instead of Office 365; the HTTPS listener always also
answers Google's POST /token (standin_google.py, config member "google").

Without --config it registers one confidential app (client credentials,
sends as relay@example.com) and one public app with the refresh token
"rt.user" for user@example.com, all in tenant contoso.onmicrosoft.com
(see DEFAULT_CONFIG; the format is documented in standin_state.py).

Threads: the main thread runs the asyncio loop of the SMTP server; the
token endpoint (owned by a TokenListener, which the control API may close
and reopen) and the control API each run serve_forever() in a daemon
thread and spawn one thread per request.

What it deliberately does not do: listen on anything but 127.0.0.1, or
keep state between runs.
"""

import argparse
import asyncio
import json
import logging
import os
import pathlib
import signal
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from control_api import make_control_server  # noqa: E402
from gmail_smtp import make_gmail_factory  # noqa: E402
from smtp_submission import make_smtp_factory  # noqa: E402
from standin_ca import make_test_pki  # noqa: E402
from standin_state import StandinState  # noqa: E402
from token_endpoint import TokenListener  # noqa: E402

DEFAULT_CONFIG = {
    "token_lifetime_seconds": 3599,
    "apps": [
        {"tenant": "contoso.onmicrosoft.com",
         "client_id": "11111111-2222-3333-4444-555555555555",
         "client_secret": "Xy7~Q8.abc+/=def_SECRET", "cloud": "global",
         "send_as": ["relay@example.com"]},
        {"tenant": "contoso.onmicrosoft.com",
         "client_id": "66666666-7777-8888-9999-000000000000",
         "client_secret": None, "cloud": "global"},
    ],
    "refresh_tokens": [
        {"refresh_token": "rt.user",
         "client_id": "66666666-7777-8888-9999-000000000000",
         "tenant": "contoso.onmicrosoft.com",
         "mailbox": "user@example.com"},
    ],
}


def _write_ready(state_dir: pathlib.Path, ready: dict) -> None:
    """Publishes ready.json in one rename so readers never see half."""
    tmp = state_dir / ".ready.json.tmp"
    tmp.write_text(json.dumps(ready))
    os.replace(tmp, state_dir / "ready.json")


def _untrusted_pki(state_dir: pathlib.Path) -> tuple[str, str]:
    """A server certificate for 127.0.0.1 from a second, throw-away CA
    that no client was told to trust (made on first use)."""
    directory = state_dir / "untrusted"
    if not (directory / "server.key").exists():
        directory.mkdir(exist_ok=True)
        make_test_pki(directory)
    return str(directory / "server.pem"), str(directory / "server.key")


def _serve_in_thread(server) -> threading.Thread:
    """Runs an http.server's serve_forever() in a daemon thread."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


async def _run(state_dir: pathlib.Path, config: dict) -> None:
    """Starts the three servers, announces them, waits for a signal."""
    pki = make_test_pki(state_dir)
    state = StandinState(config, state_dir)
    token_listener = TokenListener(state, {
        "trusted": lambda: (str(pki.cert_file), str(pki.key_file)),
        "untrusted": lambda: _untrusted_pki(state_dir)})
    token_listener.start()
    control_server = make_control_server(state, token_listener)
    loop = asyncio.get_running_loop()
    factory = (make_gmail_factory if state.smtp_persona == "gmail"
               else make_smtp_factory)
    smtp_server = await loop.create_server(
        factory(state, str(pki.cert_file), str(pki.key_file), loop),
        host="127.0.0.1", port=0)
    _serve_in_thread(control_server)

    # Announce the ports; then sleep until SIGTERM/SIGINT.
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    _write_ready(state_dir, {
        "token_port": token_listener.port,
        "smtp_port": smtp_server.sockets[0].getsockname()[1],
        "control_port": control_server.server_address[1],
        "ca_file": str(pki.ca_file), "pid": os.getpid(),
        "smtp_persona": state.smtp_persona})
    await stop.wait()

    # Shut down in reverse order and withdraw the announcement.
    (state_dir / "ready.json").unlink(missing_ok=True)
    smtp_server.close()
    token_listener.stop()
    control_server.shutdown()
    control_server.server_close()


def main() -> int:
    """Parses arguments and runs the stand-ins until signalled."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state-dir", required=True, type=pathlib.Path)
    parser.add_argument("--config", type=pathlib.Path)
    args = parser.parse_args()
    config = (json.loads(args.config.read_text()) if args.config
              else DEFAULT_CONFIG)
    args.state_dir.mkdir(parents=True, exist_ok=True)

    # aiosmtpd warns about its own deprecations on every AUTH; keep stderr
    # for real problems.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    asyncio.run(_run(args.state_dir.resolve(), config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
