#pragma once
// Test helpers of the reference: random tensors and the check of backward passes against central
// finite differences; graphs are built with tests/support/graph_builder.hpp.
// tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of the area; only main.cpp may
// see it, or each file would define its own main().
#undef BOOST_TEST_MODULE
#include "reference.hpp"
#include "support/finite_differences.hpp"
#include "support/graph_builder.hpp"

#include <deepinside/graph.hpp>

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace deepinside::verify::testing {

using test_support::attr_float;
using test_support::attr_int;
using test_support::attr_ints;
using test_support::attr_string;
using test_support::graph_builder;

/// Uniform values in [lo, hi).
inline dtensor random_tensor(std::mt19937& rng, const shape_t& shape, double lo = -1, double hi = 1) {
    dtensor t(shape);
    std::uniform_real_distribution<double> u(lo, hi);
    for (double& v : t.data) v = u(rng);
    return t;
}

/// Values with magnitude in [0.1, 1] and random sign: away from the kinks of ReLU-like functions at 0.
inline dtensor random_away_from_zero(std::mt19937& rng, const shape_t& shape) {
    dtensor t = random_tensor(rng, shape, 0.1, 1.0);
    std::bernoulli_distribution sign(0.5);
    for (double& v : t.data)
        if (sign(rng)) v = -v;
    return t;
}

/// Distinct values (a random permutation of a grid with spacing 1/size), so max pooling has no ties
/// and finite steps of 1e-6 never reorder them.
inline dtensor random_distinct(std::mt19937& rng, const shape_t& shape) {
    dtensor t(shape);
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = -1.0 + 2.0 * static_cast<double>(i) / t.data.size();
    std::shuffle(t.data.begin(), t.data.end(), rng);
    return t;
}

inline double dot(const dtensor& a, const dtensor& b) {
    double s = 0;
    for (size_t i = 0; i < a.data.size(); ++i) s += a.data[i] * b.data[i];
    return s;
}

using test_support::check_gradient;

/// Runs a one-output graph forward and returns that output.
inline dtensor run(const graph& g, const dtensor& x) {
    const reference_network net(g);
    return net.forward(x).at(g.outputs.at(0).name);
}

} // namespace deepinside::verify::testing
