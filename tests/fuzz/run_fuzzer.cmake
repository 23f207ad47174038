# Runs one libFuzzer target for ctest (cmake -P, with -DFUZZER=<binary>
# -DSEEDS=<seed corpus dir> -DWORK=<work dir> -DSECONDS=<n>).
#
# Copies the seeds into WORK/corpus (libFuzzer adds what it finds there,
# never to the source tree) and runs the target from WORK with relative
# paths only, because fuzz_config chroots into its working directory.
# Fails when libFuzzer reports anything: crash, sanitizer finding, leak,
# per-input timeout, memory limit or a broken invariant (abort). The input
# that did it is kept in WORK/artifacts/; replay it from WORK with
#   <binary> artifacts/<file>
foreach(var FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${var}= is required")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${SEEDS}/*)
file(COPY ${seeds} DESTINATION ${WORK}/corpus)

execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=5
          -rss_limit_mb=1024 -max_len=20000 -print_final_stats=1
          -artifact_prefix=artifacts/ corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); inputs: ${found}")
endif()
