// The one translation unit of test_onnx that defines the test module (name, init function, main).
// tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of the area; the other files
// undefine it through expect_error.hpp, since Boost.Test wants it in exactly one file.
#include <boost/test/unit_test.hpp>
