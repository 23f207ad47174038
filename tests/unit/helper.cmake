# Unit tests of the token-helper library (ctest label `unit`): configuration,
# secrets and logging, token endpoint answers and form bodies, refresh token
# files, the cache (with a fake fetcher and a manual clock), the refresh
# policy and account status, the socket server, certificate
# credentials (JWT client assertions), the device code sign-in, and
# secrets an endpoint's answer echoes kept out of logs and answers.
add_executable(helper_test
  ${CMAKE_CURRENT_LIST_DIR}/helper_config_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_secret_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_sender_guard_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_access_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_token_response_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_token_endpoint_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_token_cache_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_echo_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_reload_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_refresh_policy_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_socket_server_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_reply_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_listener_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_cli_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_client_assertion_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_device_code_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_proxy_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_test_keys.cc
  ${CMAKE_CURRENT_LIST_DIR}/helper_test_util.cc)
target_link_libraries(helper_test PRIVATE token_helper_lib GTest::gtest_main)
target_compile_definitions(helper_test PRIVATE
  XOAUTH2_EXAMPLE_CONFIG="${PROJECT_SOURCE_DIR}/postfix-examples/config.json"
  XOAUTH2_HELPER_BINARY="$<TARGET_FILE:token-helper>")
add_dependencies(helper_test token-helper)
gtest_discover_tests(helper_test NO_PRETTY_VALUES PROPERTIES LABELS unit)
