# Unit tests of the SASL plugin (ctest label `unit`):
#   plugin_test       pure parts and the helper client, linked statically
#                     against the plugin's core (no libsasl2);
#   plugin_sasl_test  the real libxoauth2.so loaded by the real libsasl2,
#                     against a scripted fake token-helper;
#   plugin_exports    the .so exports only sasl_client_plug_init and
#                     imports nothing it must not call inside an MTA.
find_library(SASL2_LIBRARY sasl2 REQUIRED)
find_package(Threads REQUIRED)

add_executable(plugin_test
  ${CMAKE_CURRENT_LIST_DIR}/plugin_response_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/plugin_socket_path_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/plugin_helper_client_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/plugin_fake_helper.cc)
target_link_libraries(plugin_test PRIVATE
  xoauth2_plugin_core GTest::gtest_main Threads::Threads)
gtest_discover_tests(plugin_test NO_PRETTY_VALUES TEST_PREFIX "plugin." PROPERTIES LABELS unit)

add_executable(plugin_sasl_test
  ${CMAKE_CURRENT_LIST_DIR}/plugin_sasl_test.cc
  ${CMAKE_CURRENT_LIST_DIR}/plugin_fake_helper.cc)
target_include_directories(plugin_sasl_test PRIVATE ${SASL2_INCLUDE_DIR})
target_link_libraries(plugin_sasl_test PRIVATE
  ${SASL2_LIBRARY} GTest::gtest_main Threads::Threads)
# libsasl2 loads every plugin in this directory: only libxoauth2.so is one.
target_compile_definitions(plugin_sasl_test PRIVATE
  XOAUTH2_PLUGIN_DIR="$<TARGET_FILE_DIR:xoauth2>")
add_dependencies(plugin_sasl_test xoauth2)
gtest_discover_tests(plugin_sasl_test NO_PRETTY_VALUES TEST_PREFIX "plugin_sasl."
                     PROPERTIES LABELS unit)

add_test(NAME plugin_exports
  COMMAND ${CMAKE_COMMAND} -DNM=${CMAKE_NM} -DPLUGIN=$<TARGET_FILE:xoauth2>
          -P ${CMAKE_CURRENT_LIST_DIR}/plugin_exports_check.cmake)
set_tests_properties(plugin_exports PROPERTIES LABELS unit)
