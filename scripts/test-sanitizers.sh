#!/bin/sh
# Builds xoauth2-relay with g++'s AddressSanitizer and UndefinedBehavior-
# Sanitizer in build-asan/ (or $ASAN_BUILD_DIR) and runs the unit and
# end-to-end suites there; any sanitizer report fails the run (leaks
# included, undefined behaviour not recoverable).
#
# The end-to-end tests load the SASL plugin into Postfix's smtp(8), which is
# not built with ASan; an instrumented module dlopen()ed into it aborts
# ("ASan runtime does not come first"), and preloading libasan into smtp(8)
# would need LD_PRELOAD in Postfix's import_environment for every daemon.
# So the unit tests (plugin_sasl_test loads the plugin into an
# instrumented process) use the instrumented plugin, and for the e2e run
# the plugin in the tree is swapped for one built without sanitizers
# (build-asan/plain-plugin/); the token-helper stays instrumented there.
# Needs root for the e2e tests, like scripts/test.sh. Does not install
# anything or check formatting.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${ASAN_BUILD_DIR:-$top/build-asan}
plain=$build/plain-plugin
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
flags="$flags -fno-omit-frame-pointer"
# g++ 12 under the sanitizers warns falsely that libstdc++'s <regex> reads
# uninitialised memory; the plain build keeps that warning as an error.
cxxflags="$flags -Wno-maybe-uninitialized"

# The instrumented tree; its plugin is relinked on every run (the e2e step
# below replaces it with the plain one).
# Debug (-O0 -g) compiles fastest; the sanitizers matter here, not speed.
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_COMPILER=g++ -DCMAKE_CXX_FLAGS="$cxxflags" \
  -DCMAKE_EXE_LINKER_FLAGS="$flags" -DCMAKE_MODULE_LINKER_FLAGS="$flags" \
  -DCMAKE_SHARED_LINKER_FLAGS="$flags" >/dev/null
rm -f "$build/sasl-plugin/libxoauth2.so"
echo "building the sanitizer tree into $build ..."
if ! cmake --build "$build" -j "$(nproc)" >"$build/build.log" 2>&1; then
  tail -n 60 "$build/build.log" >&2
  exit 1
fi

# Halt on the first report of any kind; leaks are checked at exit.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
ASAN_OPTIONS=$ASAN_OPTIONS:detect_stack_use_after_return=1
ASAN_OPTIONS=$ASAN_OPTIONS:strict_string_checks=1:check_initialization_order=1
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export ASAN_OPTIONS UBSAN_OPTIONS

cd "$build"
ctest -L unit --output-on-failure --timeout 600

# The plugin Postfix can load: same sources, no sanitizers.
cmake -S "$top" -B "$plain" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=g++ -DBUILD_TESTING=OFF >/dev/null
cmake --build "$plain" -j "$(nproc)" --target xoauth2
cp "$plain/sasl-plugin/libxoauth2.so" "$build/sasl-plugin/libxoauth2.so"

ctest -L e2e --output-on-failure --timeout 600
