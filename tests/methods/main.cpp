// The one translation unit of test_methods that defines the test module (its name, init function and
// main). tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of the area; the other
// files undefine it in support.hpp, since Boost.Test wants it in exactly one file.
#include <boost/test/unit_test.hpp>
