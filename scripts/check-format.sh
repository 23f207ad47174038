#!/bin/sh
# Fails when a C++ file in the tree differs from what clang-format makes of
# it with the checked-in .clang-format; prints the files to fix.
set -eu
cd "$(dirname "$0")/.."
bad=""
for f in $(git ls-files '*.cc' '*.h'); do
  clang-format --dry-run -Werror "$f" >/dev/null 2>&1 || bad="$bad $f"
done
if [ -n "$bad" ]; then
  echo "not formatted (run clang-format -i):$bad" >&2
  exit 1
fi
