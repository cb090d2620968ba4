// The one translation unit of test_conformance that sees BOOST_TEST_MODULE (set by
// tests/CMakeLists.txt) and so defines the module's main(); the other files undefine it first.
#include <boost/test/unit_test.hpp>
