#!/bin/sh
# Configures and builds xoauth2-relay into build/ (or $BUILD_DIR) with
# warnings as errors. Used by demo.sh, test.sh and CI. The compiler's
# output goes to build.log in the build folder and is shown on failure.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$top/build}
mkdir -p "$build"
log=$build/build.log
echo "building into $build ..."
if ! { cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo &&
       cmake --build "$build" -j "$(nproc)"; } >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "build failed; the whole log is in $log" >&2
  exit 1
fi
