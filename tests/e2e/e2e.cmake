# End-to-end tests (ctest label e2e): a private Postfix instance relays
# through the Office 365 stand-ins (tests/standins) with the plugin and the
# helper of this build tree. Needs root; without it every test reports
# "e2e-skip:" and ctest marks the run skipped. Runs serially: each test
# starts and stops its own Postfix, helper and stand-ins.
add_test(NAME e2e_relay
  COMMAND /usr/bin/python3 -m unittest -v test_relay
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_relay PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# Every grant end to end (certificate, refresh token public/confidential,
# device code sign-in with `token-helper authorize`); same needs as above.
add_test(NAME e2e_grants
  COMMAND /usr/bin/python3 -m unittest -v test_grants
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_grants PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# The stand-ins checked against the Office 365 reference (no root needed).
add_test(NAME e2e_standins
  COMMAND /usr/bin/python3 -m unittest -v test_o365
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/../standins)
set_tests_properties(e2e_standins PROPERTIES
  LABELS e2e
  TIMEOUT 60
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")

# A Gmail relay: a "provider": "google" account against the Google token
# endpoint stand-in and the Gmail SMTP persona, with XOAUTH2 and
# OAUTHBEARER, a refused token and a revoked refresh token.
add_test(NAME e2e_google
  COMMAND /usr/bin/python3 -m unittest -v test_google
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_google PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# The Google token endpoint and Gmail SMTP stand-ins checked against
# Google's documented behaviour (no root needed).
add_test(NAME e2e_google_standins
  COMMAND /usr/bin/python3 -m unittest -v test_google_standin
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/../standins)
set_tests_properties(e2e_google_standins PROPERTIES
  LABELS e2e
  TIMEOUT 60
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")

# Token endpoint and devicecode answers at exactly the helper's 64 KiB
# limit and one byte past it (stand-ins and helper only, no Postfix);
# same needs as above.
add_test(NAME e2e_limits
  COMMAND /usr/bin/python3 -m unittest -v test_limits
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_limits PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# The leak scan every e2e and fault test runs when it closes its
# environment (leak_scan.py): planted leaks are found in each form, clean
# text is not, and a failing scan in a cleanup fails the test (no root).
add_test(NAME e2e_leak_scan
  COMMAND /usr/bin/python3 -m unittest -v test_leak_scan
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_leak_scan PROPERTIES
  LABELS e2e
  TIMEOUT 60
  ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")

# The helper's "proxy" setting through a real HTTP proxy (tinyproxy, run
# by the test on 127.0.0.1) and the environment's proxy variables; no
# Postfix. Needs root like the others, and tinyproxy (Debian package
# tinyproxy-bin): without either it reports "e2e-skip:".
add_test(NAME e2e_proxy
  COMMAND /usr/bin/python3 -m unittest -v test_proxy
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_proxy PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# The sender guard milter (F17): smtpd(8) on a 127.0.0.1 port with the
# example's smtpd_milters (and non_smtpd_milters) line enabled and
# `token-helper milter` running; same needs as e2e_relay.
add_test(NAME e2e_milter
  COMMAND /usr/bin/python3 -m unittest -v test_milter
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_milter PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")

# Configuration reload on SIGHUP (`systemctl reload token-helper`):
# accounts added, removed and changed (a rotated secret), a broken file
# kept out, a socket change left for a restart; stand-ins and helper
# only, no Postfix. Same needs as e2e_relay.
add_test(NAME e2e_reload
  COMMAND /usr/bin/python3 -m unittest -v test_reload
  WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR})
set_tests_properties(e2e_reload PROPERTIES
  LABELS e2e
  TIMEOUT 300
  RUN_SERIAL TRUE
  SKIP_REGULAR_EXPRESSION "e2e-skip:"
  ENVIRONMENT "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
