// The one translation unit of test_engine that sees BOOST_TEST_MODULE (set by tests/CMakeLists.txt)
// and so defines the module's main(); every other file includes support.hpp, which undefines it.
#include <boost/test/unit_test.hpp>
