#pragma once
// Test data locations reach the tests through environment variables set by tests/CMakeLists.txt.
#include <cstdlib>

namespace deepinside::test_support {

/// The variable's value, or "" when it is not set.
inline const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

} // namespace deepinside::test_support
