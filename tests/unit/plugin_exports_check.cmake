# Checks the built plugin's dynamic symbol table (run by ctest as
# plugin_exports with -DNM=<nm> -DPLUGIN=<libxoauth2.so>):
# - it defines exactly one symbol, sasl_client_plug_init;
# - it imports nothing a plugin inside an MTA must not call (exit, abort,
#   syslog, openlog, closelog) and needs no heavy library (curl, TLS).
execute_process(COMMAND ${NM} -D --defined-only ${PLUGIN}
  OUTPUT_VARIABLE defined RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "nm failed on ${PLUGIN}")
endif()
string(REGEX MATCHALL "[^\n]+" lines "${defined}")
set(names "")
foreach(line IN LISTS lines)
  string(REGEX REPLACE "^[0-9a-fA-F ]* [A-Za-z] " "" name "${line}")
  list(APPEND names "${name}")
endforeach()
if(NOT names STREQUAL "sasl_client_plug_init")
  message(FATAL_ERROR "exported symbols are [${names}], "
                      "want only sasl_client_plug_init")
endif()

execute_process(COMMAND ${NM} -D --undefined-only ${PLUGIN}
  OUTPUT_VARIABLE undefined)
foreach(banned exit _exit abort syslog vsyslog __syslog_chk openlog
               closelog)
  if(undefined MATCHES "(^|[ \n])${banned}(@|\n|$)")
    message(FATAL_ERROR "plugin imports ${banned}")
  endif()
endforeach()

execute_process(COMMAND objdump -p ${PLUGIN} OUTPUT_VARIABLE headers)
if(headers MATCHES "NEEDED +lib(curl|ssl|crypto|gnutls|sasl2)")
  message(FATAL_ERROR "plugin links a heavy library: ${CMAKE_MATCH_0}")
endif()
message(STATUS "exports: ${names}")
