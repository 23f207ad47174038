// SPDX-License-Identifier: MIT
//
// FUZZ_CHECK: the invariant check shared by the fuzz targets. A broken
// invariant prints the condition and where it sits, then aborts, so that
// libFuzzer records the input as a crash. Also small helpers the targets
// share (printable-ASCII test, splitting the input).
//
// Header-only; no state, no threads. Used only under tests/fuzz.

#ifndef XOAUTH2_TESTS_FUZZ_FUZZ_CHECK_H
#define XOAUTH2_TESTS_FUZZ_FUZZ_CHECK_H

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(condition)                                         \
  do {                                                                \
    if (!(condition)) {                                               \
      std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, \
                   __LINE__, #condition);                             \
      std::abort();                                                   \
    }                                                                 \
  } while (false)

namespace xoauth2::fuzz {

// The fuzzer's bytes as a string_view.
inline std::string_view AsText(const std::uint8_t* data, std::size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// True when every byte is printable ASCII (0x20..0x7e).
inline bool IsPrintable(std::string_view text) {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e)
      return false;
  }
  return true;
}

// Removes and returns the part of `text` before the first LF (all of it
// when there is none); the LF itself is dropped.
inline std::string_view TakeLine(std::string_view& text) {
  std::size_t lf = text.find('\n');
  std::string_view line = text.substr(0, lf);
  text.remove_prefix(lf == std::string_view::npos ? text.size() : lf + 1);
  return line;
}

}  // namespace xoauth2::fuzz

#endif  // XOAUTH2_TESTS_FUZZ_FUZZ_CHECK_H
