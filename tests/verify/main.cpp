// The test module's entry point: the one file that sees BOOST_TEST_MODULE (set by tests/CMakeLists.txt);
// every other file includes support.hpp, which undefines it first.
#include <boost/test/unit_test.hpp>
