#!/bin/sh
# Configures and builds xoauth2-relay into build/ (or $BUILD_DIR) with
# warnings as errors. Used by demo.sh, test.sh and CI.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j "$(nproc)"
