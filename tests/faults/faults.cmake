# Fault, canary and load runs (ctest label fault): 200 messages per fault
# through a private Postfix with the plugin, the helper and the Office 365
# stand-ins while faults are injected and cleared; no secret in any log;
# hundreds of concurrent socket clients. Needs root like the e2e tests
# (without it each reports "e2e-skip:" and ctest marks it skipped). Runs
# serially; each prints one line of figures per run, also appended to
# <build>/fault-figures.txt.
set(XOAUTH2_FAULT_ENV
  "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "XOAUTH2_FAULT_FIGURES=${CMAKE_BINARY_DIR}/fault-figures.txt"
  "PYTHONDONTWRITEBYTECODE=1")

# name, unittest target, timeout in seconds
foreach(spec
    "fault_token_endpoint|test_faults.TokenEndpointFaultTest|420"
    "fault_helper_and_smtp|test_faults.ProcessFaultTest|300"
    "fault_canary|test_canary|180"
    "fault_load|test_load|180")
  string(REPLACE "|" ";" parts "${spec}")
  list(GET parts 0 name)
  list(GET parts 1 target)
  list(GET parts 2 timeout)
  add_test(NAME ${name}
    COMMAND /usr/bin/python3 -m unittest -v ${target}
    WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
  set_tests_properties(${name} PROPERTIES
    LABELS fault
    TIMEOUT ${timeout}
    RUN_SERIAL TRUE
    SKIP_REGULAR_EXPRESSION "e2e-skip:"
    ENVIRONMENT "${XOAUTH2_FAULT_ENV}")
endforeach()
