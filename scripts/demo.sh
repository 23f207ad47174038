#!/bin/sh
# The main job, end to end: installs dependencies, builds, then starts the
# local Office 365 stand-ins, the token-helper and a private Postfix
# instance, relays one message through the XOAUTH2 plugin and prints what
# the submission server received. Everything runs on 127.0.0.1 in a
# temporary directory and is stopped afterwards. Needs root (Postfix).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/build.sh"
export XOAUTH2_BUILD_DIR=${BUILD_DIR:-$top/build}
exec /usr/bin/python3 "$top/tests/e2e/demo.py"
