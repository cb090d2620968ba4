#pragma once
// Runs a call that must throw exactly E and returns its message for substring checks; any other
// exception escapes and fails the test case with its own message.

// Only main.cpp may define the module (see there); include this header first.
#undef BOOST_TEST_MODULE
#include <boost/test/unit_test.hpp>

#include <string>

namespace onnx_test {

template <typename E, typename F>
std::string error_of(F&& call) {
    try {
        call();
    } catch (const E& e) {
        BOOST_TEST_MESSAGE("thrown as expected: " << e.what());
        return e.what();
    }
    BOOST_ERROR("no exception was thrown");
    return {};
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

} // namespace onnx_test

/// Checks that message `text` contains `part`, printing both when it does not.
#define CHECK_HAS(text, part) \
    BOOST_CHECK_MESSAGE(::onnx_test::contains((text), (part)), "'" << (part) << "' not found in: " << (text))
