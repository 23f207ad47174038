# Unit tests of the shared protocol codec.
add_executable(protocol_test ${CMAKE_CURRENT_LIST_DIR}/protocol_test.cc)
target_link_libraries(protocol_test PRIVATE xoauth2_common GTest::gtest_main)
gtest_discover_tests(protocol_test NO_PRETTY_VALUES PROPERTIES LABELS unit)
