#!/bin/sh
# Builds the libFuzzer targets (tests/fuzz, a CMake project of its own) with
# clang++-16 in build-fuzz/ (or $FUZZ_BUILD_DIR) and runs each for
# $FUZZ_SECONDS seconds (default 20) from a copy of its seed corpus, two at
# a time; any crash, sanitizer report, leak, timeout or broken invariant
# fails the run and leaves the input in build-fuzz/work/<target>/artifacts/.
# Needs Debian's clang-16 and libclang-rt-16-dev (clang 14 cannot compile
# libstdc++'s std::expected), and root or user namespaces (fuzz_config
# runs chrooted). Does not install anything.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD_DIR:-$top/build-fuzz}
seconds=${FUZZ_SECONDS:-20}

if ! command -v clang++-16 >/dev/null; then
  echo "test-fuzz.sh: clang++-16 not found; apt-get install clang-16" \
    "libclang-rt-16-dev" >&2
  exit 1
fi

CXX=clang++-16 cmake -S "$top/tests/fuzz" -B "$build" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXOAUTH2_FUZZ_SECONDS="$seconds" \
  >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ctest -L fuzz -j "$(nproc)" --output-on-failure
