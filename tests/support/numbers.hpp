#pragma once
// Error measures shared by every test area: one definition, with the size check first.
#include <boost/test/unit_test.hpp>

#include <cmath>

namespace deepinside::test_support {

/// ||a - b|| / ||b|| (L2 over all values); ||a - b|| itself when b is zero. The two must hold the
/// same number of values (anything with a `data` vector: tensor, verify::dtensor); a mismatch fails
/// the test case rather than reading past the end.
template <typename A, typename B>
double rel_l2(const A& a, const B& b) {
    BOOST_REQUIRE_EQUAL(a.data.size(), b.data.size());
    double num = 0, den = 0;
    for (size_t i = 0; i < a.data.size(); ++i) {
        const double d = double(a.data[i]) - double(b.data[i]);
        num += d * d;
        den += double(b.data[i]) * double(b.data[i]);
    }
    return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

} // namespace deepinside::test_support
