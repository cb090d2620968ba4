// The evaluation's measures (evaluation.hpp) against hand-computed cases and brute force.
#include <deepinside/errors.hpp>
#include <deepinside/evaluation.hpp>

#undef BOOST_TEST_MODULE
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

using namespace deepinside;

namespace {

tensor map_of(int h, int w, std::vector<float> v) { return tensor({h, w}, std::move(v)); }

binary_mask mask_of(int w, int h, std::vector<uint8_t> p) { return {w, h, std::move(p)}; }

/// Spearman from its textbook formula for untied data: 1 - 6 sum d^2 / (n (n^2 - 1)).
double spearman_untied(const std::vector<float>& a, const std::vector<float>& b) {
    auto rank = [](const std::vector<float>& v) {
        std::vector<double> r(v.size());
        for (size_t i = 0; i < v.size(); ++i)
            r[i] = double(std::count_if(v.begin(), v.end(), [&](float x) { return x < v[i]; }));
        return r;
    };
    const auto ra = rank(a), rb = rank(b);
    double d2 = 0;
    for (size_t i = 0; i < a.size(); ++i) d2 += (ra[i] - rb[i]) * (ra[i] - rb[i]);
    const double n = double(a.size());
    return 1 - 6 * d2 / (n * (n * n - 1));
}

} // namespace

BOOST_AUTO_TEST_SUITE(evaluation)

BOOST_AUTO_TEST_CASE(spearman_matches_the_textbook_formula_and_handles_ties) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(-1, 1);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> a(50), b(50);
        for (auto& v : a) v = u(rng);
        for (size_t i = 0; i < b.size(); ++i) b[i] = 0.3f * a[i] + u(rng);
        BOOST_TEST(spearman(a, b) == spearman_untied(a, b), boost::test_tools::tolerance(1e-12));
    }
    BOOST_TEST(spearman({1, 2, 3}, {10, 20, 30}) == 1.0);
    BOOST_TEST(spearman({1, 2, 3}, {3, 2, 1}) == -1.0);
    // Ties take their average rank: ranks (0.5, 0.5, 2) against (0, 1, 2) give 0.866...
    BOOST_TEST(spearman({1, 1, 2}, {1, 2, 3}) == std::sqrt(3.0) / 2, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(spearman({5, 5, 5}, {5, 5, 5}) == 1.0);
    BOOST_TEST(spearman({5, 5, 5}, {1, 2, 3}) == 0.0);
    BOOST_CHECK_THROW(spearman({1, 2}, {1}), input_error);
}

BOOST_AUTO_TEST_CASE(pointing_hit_is_a_strict_disc_as_in_torchray) {
    // One object pixel at (y 5, x 5) of a 12x12 mask.
    std::vector<uint8_t> p(144, 0);
    p[5 * 12 + 5] = 1;
    const binary_mask m = mask_of(12, 12, p);
    BOOST_TEST(pointing_hit(m, {5, 5}, 0.5));
    BOOST_TEST(pointing_hit(m, {5, 8}, 3.01));
    BOOST_TEST(!pointing_hit(m, {5, 8}, 3.0)); // distance 3 is not < 3
    BOOST_TEST(pointing_hit(m, {8, 9}, 5.01)); // distance 5
    BOOST_TEST(!pointing_hit(m, {8, 9}, 5.0));
    BOOST_TEST(!pointing_hit(m, {0, 0}, 7.0)); // distance 7.07
    BOOST_TEST(pointing_hit(m, {0, 0}, 7.1));
    BOOST_TEST(!pointing_hit(m, {5, 5}, 0.0));
    // Brute force over every point and a few tolerances.
    std::mt19937 rng(3);
    std::vector<uint8_t> q(144);
    for (auto& v : q) v = rng() % 13 == 0;
    const binary_mask r = mask_of(12, 12, q);
    for (double tol : {0.0, 1.0, 1.5, 2.0, 4.2})
        for (int y = 0; y < 12; ++y)
            for (int x = 0; x < 12; ++x) {
                bool expect = false;
                for (int yy = 0; yy < 12; ++yy)
                    for (int xx = 0; xx < 12; ++xx)
                        expect |= q[size_t(yy * 12 + xx)] && double((yy - y) * (yy - y) + (xx - x) * (xx - x)) < tol * tol;
                BOOST_TEST(pointing_hit(r, {y, x}, tol) == expect);
            }
}

BOOST_AUTO_TEST_CASE(map_maximum_takes_the_first_maximum) {
    BOOST_TEST(map_maximum(map_of(2, 3, {0, 4, 1, 4, 2, 0})).x == 1);
    BOOST_TEST(map_maximum(map_of(2, 3, {0, 1, 1, 4, 2, 0})).y == 1);
    BOOST_CHECK_THROW(map_maximum(tensor({6}, std::vector<float>(6))), input_error);
}

BOOST_AUTO_TEST_CASE(relevance_mass_is_the_share_inside_the_mask) {
    const tensor m = map_of(2, 2, {1, 3, 0, 4});
    BOOST_TEST(relevance_mass(m, mask_of(2, 2, {0, 1, 0, 1})) == 7.0 / 8.0);
    BOOST_TEST(relevance_mass(m, mask_of(2, 2, {0, 0, 0, 0})) == 0.0);
    BOOST_TEST(relevance_mass(map_of(2, 2, {0, 0, 0, 0}), mask_of(2, 2, {1, 1, 1, 1})) == 0.0);
    BOOST_CHECK_THROW(relevance_mass(m, mask_of(3, 1, {0, 1, 0})), input_error);
}

BOOST_AUTO_TEST_CASE(saliency_order_is_descending_and_stable) {
    const auto order = saliency_order(map_of(2, 3, {1, 5, 1, 7, 5, 0}));
    BOOST_TEST(order == (std::vector<int32_t>{3, 1, 4, 0, 2, 5}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(deletion_steps_replace_pixels_in_every_channel) {
    // Two channels of 2x2: the source is 10+, the target 0; copy the first 3 of order {3, 0, 2, 1}.
    tensor source({2, 2, 2}, {10, 11, 12, 13, 20, 21, 22, 23}), target({2, 2, 2}, std::vector<float>(8, 0));
    copy_pixels(source, target, {3, 0, 2, 1}, 3);
    BOOST_TEST(target.data == (std::vector<float>{10, 0, 12, 13, 20, 0, 22, 23}), boost::test_tools::per_element());
    BOOST_CHECK_THROW(copy_pixels(source, target, {0, 1}, 1), input_error);
    BOOST_CHECK_THROW(copy_pixels(source, target, {3, 0, 2, 1}, 5), input_error);
    BOOST_TEST(pixels_at_step(0, 16, 9216) == 0);
    BOOST_TEST(pixels_at_step(16, 16, 9216) == 9216);
    BOOST_TEST(pixels_at_step(1, 3, 10) == 3);
    BOOST_TEST(pixels_at_step(2, 3, 10) == 7);
}

BOOST_AUTO_TEST_CASE(curve_area_is_the_trapezoid_rule_on_unit_width) {
    BOOST_TEST(curve_area({1, 1, 1}) == 1.0);
    BOOST_TEST(curve_area({0, 1}) == 0.5);
    BOOST_TEST(curve_area({1, 0, 0, 0, 0}) == 0.125);
    BOOST_CHECK_THROW(curve_area({1}), input_error);
}

BOOST_AUTO_TEST_SUITE_END()
