# End-to-end tests (ctest label e2e): a private Postfix instance relays
# through the Office 365 stand-ins (tests/standins) with the plugin and the
# helper of this build tree, and the stand-ins' own checks. A test marked
# "root" needs root (chroot, the postfix user, the maildrop): without it
# it reports "e2e-skip:" and ctest marks it skipped; such tests run
# serially, each starting and stopping its own Postfix, helper and
# stand-ins. The others are quick, need no root and may run beside them.

# Adds e2e test NAME running unittest MODULE in DIR; NEEDS is "root" or
# "none" (see above).
function(xoauth2_e2e_test name module dir needs)
  add_test(NAME ${name}
    COMMAND /usr/bin/python3 -m unittest -v ${module}
    WORKING_DIRECTORY ${dir})
  if(needs STREQUAL "root")
    set_tests_properties(${name} PROPERTIES
      LABELS e2e
      TIMEOUT 300
      RUN_SERIAL TRUE
      SKIP_REGULAR_EXPRESSION "e2e-skip:"
      ENVIRONMENT
        "XOAUTH2_BUILD_DIR=${CMAKE_BINARY_DIR};PYTHONDONTWRITEBYTECODE=1")
  else()
    set_tests_properties(${name} PROPERTIES
      LABELS e2e
      TIMEOUT 60
      ENVIRONMENT "PYTHONDONTWRITEBYTECODE=1")
  endif()
endfunction()

set(e2e ${CMAKE_CURRENT_LIST_DIR})
set(standins ${CMAKE_CURRENT_LIST_DIR}/../standins)

# The relay itself, field report by field report (test_relay.py).
xoauth2_e2e_test(e2e_relay test_relay ${e2e} root)

# Every grant end to end (certificate, refresh token public/confidential,
# device code sign-in with `token-helper authorize`).
xoauth2_e2e_test(e2e_grants test_grants ${e2e} root)

# The stand-ins checked against the Office 365 reference.
xoauth2_e2e_test(e2e_standins test_o365 ${standins} none)

# A Gmail relay: a "provider": "google" account against the Google token
# endpoint stand-in and the Gmail SMTP persona, with XOAUTH2 and
# OAUTHBEARER, a refused token and a revoked refresh token.
xoauth2_e2e_test(e2e_google test_google ${e2e} root)

# The Google token endpoint and Gmail SMTP stand-ins checked against
# Google's documented behaviour.
xoauth2_e2e_test(e2e_google_standins test_google_standin ${standins} none)

# Token endpoint and devicecode answers at exactly the helper's 64 KiB
# limit and one byte past it (stand-ins and helper only, no Postfix).
xoauth2_e2e_test(e2e_limits test_limits ${e2e} root)

# The leak scan every e2e and fault test runs when it closes its
# environment (leak_scan.py): planted leaks are found in each form, clean
# text is not, and a failing scan in a cleanup fails the test.
xoauth2_e2e_test(e2e_leak_scan test_leak_scan ${e2e} none)

# The helper's "proxy" setting through a real HTTP proxy (tinyproxy, run
# by the test on 127.0.0.1) and the environment's proxy variables; no
# Postfix. Also needs tinyproxy (Debian package tinyproxy-bin): without
# it the test reports "e2e-skip:".
xoauth2_e2e_test(e2e_proxy test_proxy ${e2e} root)

# The sender guard milter (F17): smtpd(8) on a 127.0.0.1 port with the
# example's smtpd_milters (and non_smtpd_milters) line enabled and
# `token-helper milter` running.
xoauth2_e2e_test(e2e_milter test_milter ${e2e} root)

# Configuration reload on SIGHUP (`systemctl reload token-helper`):
# accounts added, removed and changed (a rotated secret), a broken file
# kept out, a socket change left for a restart; stand-ins and helper
# only, no Postfix.
xoauth2_e2e_test(e2e_reload test_reload ${e2e} root)
