#!/bin/sh
# The whole test suite: installs dependencies, checks formatting, builds,
# and runs every ctest test (labels: unit, e2e). Needs root for the
# end-to-end tests, which run private Postfix instances.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
"$top/scripts/install-deps.sh"
"$top/scripts/check-format.sh"
"$top/scripts/build.sh"
cd "${BUILD_DIR:-$top/build}"
ctest --output-on-failure --timeout 600
