#!/bin/sh
# The whole test suite: installs dependencies, checks formatting, builds,
# runs every ctest test (labels: unit, e2e, fault), then the fuzz targets
# for a bounded time (label fuzz, clang) and the unit and end-to-end
# suites again under AddressSanitizer and UndefinedBehaviorSanitizer.
# Needs root for the end-to-end tests, which run private Postfix
# instances. FUZZ_SECONDS sets each fuzz target's run (default 20).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/check-format.sh"
"$top/scripts/build.sh"
build=${BUILD_DIR:-$top/build}
(cd "$build" && ctest --output-on-failure --timeout 600)
# The fault and load runs' figures (messages, deferrals, drain time,
# latency, memory, descriptors), one line per run.
[ -f "$build/fault-figures.txt" ] && cat "$build/fault-figures.txt"
"$top/scripts/test-fuzz.sh"
"$top/scripts/test-sanitizers.sh"
