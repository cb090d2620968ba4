#pragma once
// The reference's backward against central finite differences of its own forward: shared by the
// verifier's gradient tests (tests/verify) and the engine's op sweeps (tests/engine), where every
// sweep case also checks the reference it compares the engine with.
// tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of an area; only main.cpp may see it.
#undef BOOST_TEST_MODULE
#include "reference.hpp"

#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace deepinside::test_support {

/// Compares the reference's gradient of f = <seed, output> (seed random) with central differences at
/// `x`, on up to `max_coordinates` input coordinates.
///
/// Tolerance: the central difference has truncation error O(h^2 |f'''|) and roundoff error
/// O(eps |f| / h). With h = 1e-6 * max(1, |x_i|), eps = 2.2e-16 and |f|, |f'''| of order 1..100 for
/// these small graphs, both are below ~1e-8, so 1e-6 relative (to 1 + |gradient|) leaves two orders of
/// margin while still catching any wrong term (which shows up at the 1e-2..1 level).
inline void check_gradient(const graph& g, const verify::dtensor& x, std::mt19937& rng, size_t max_coordinates = 400,
                           double tolerance = 1e-6) {
    const verify::reference_network net(g);
    const auto acts = net.forward(x);
    const std::string& out = g.outputs.at(0).name;
    verify::dtensor seed(acts.at(out).shape);
    std::uniform_real_distribution<double> u(-1, 1);
    for (double& v : seed.data) v = u(rng);
    const verify::dtensor analytic = net.backward(acts, out, seed, backward_rule::gradient, nonrelu_policy::refuse);
    BOOST_REQUIRE(analytic.shape == x.shape);
    std::vector<size_t> coords(x.data.size());
    for (size_t i = 0; i < coords.size(); ++i) coords[i] = i;
    if (coords.size() > max_coordinates) {
        std::shuffle(coords.begin(), coords.end(), rng);
        coords.resize(max_coordinates);
    }
    size_t failures = 0;
    for (size_t i : coords) {
        const double h = 1e-6 * std::max(1.0, std::fabs(x.data[i]));
        const double numeric = verify::finite_difference(net, x, out, seed, i, h);
        const double a = analytic.data[i];
        if (std::fabs(numeric - a) > tolerance * (1.0 + std::fabs(a))) {
            if (++failures <= 5)
                BOOST_ERROR("coordinate " << i << ": analytic " << a << " vs finite difference " << numeric);
        }
    }
    BOOST_CHECK_MESSAGE(failures == 0, failures << " of " << coords.size() << " coordinates disagree");
}

} // namespace deepinside::test_support
