#include "io/support.hpp"

#include <deepinside/io.hpp>

#include <cmath>
#include <limits>

using namespace deepinside;
using io_test::check_throws;

namespace {

double luma(const uint8_t* rgb) { return 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]; }

void check_rgb(const uint8_t* got, int r, int g, int b, int tolerance) {
    BOOST_TEST(std::abs(got[0] - r) <= tolerance, "red " << int(got[0]) << " vs " << r);
    BOOST_TEST(std::abs(got[1] - g) <= tolerance, "green " << int(got[1]) << " vs " << g);
    BOOST_TEST(std::abs(got[2] - b) <= tolerance, "blue " << int(got[2]) << " vs " << b);
}

tensor ramp(int n, float step) {
    tensor t({1, n});
    for (int i = 0; i < n; ++i) t.data[size_t(i)] = float(i) * step;
    return t;
}

} // namespace

BOOST_AUTO_TEST_SUITE(heatmaps)

BOOST_AUTO_TEST_CASE(ramp_is_monotone_in_inferno) {
    const image img = heatmap(ramp(256, 0.01f));
    BOOST_TEST(img.width == 256);
    BOOST_TEST(img.height == 1);
    BOOST_TEST(img.channels == 3);
    for (int x = 1; x < 256; ++x)
        BOOST_TEST(luma(&img.pixels[size_t(3 * x)]) >= luma(&img.pixels[size_t(3 * (x - 1))]) - 0.5, "at " << x);
    BOOST_TEST(luma(&img.pixels[3 * 255]) > luma(&img.pixels[0]) + 200);
    // inferno's published end points and middle: #000004, #bc3754 (0.5), #fcffa4.
    check_rgb(&img.pixels[0], 0x00, 0x00, 0x04, 1);
    check_rgb(&img.pixels[3 * 255], 0xfc, 0xff, 0xa4, 1);
    const image three = heatmap(ramp(3, 1.0f));
    check_rgb(&three.pixels[3], 0xbc, 0x37, 0x54, 3);
}

BOOST_AUTO_TEST_CASE(normalised_by_the_maximum) {
    tensor a({2, 2}, {0, 1, 2, 4});
    tensor b({2, 2}, {-3, 7, 14, 28}); // seven times a, negatives clamp to 0
    BOOST_TEST(heatmap(a).pixels == heatmap(b).pixels);
    const image zero = heatmap(tensor({2, 3}));
    for (size_t i = 0; i < zero.pixels.size(); i += 3) check_rgb(&zero.pixels[i], 0, 0, 4, 1);
    const image negative = heatmap(tensor({2, 3}, {-1, -2, -3, -4, -5, -6}));
    BOOST_TEST(negative.pixels == zero.pixels);
}

BOOST_AUTO_TEST_CASE(rejects_bad_maps) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const float inf = std::numeric_limits<float>::infinity();
    check_throws<input_error>([&] { heatmap(tensor({2, 2}, {0, nan, 1, 2})); }, {"NaN"});
    check_throws<input_error>([&] { heatmap(tensor({2, 2}, {0, inf, 1, 2})); }, {"infinity"});
    check_throws<input_error>([&] { heatmap(tensor({1, 2, 2})); }, {"[1, 2, 2]", "[H, W]"});
    check_throws<input_error>([&] { heatmap(tensor({0, 2})); }, {"positive"});
    const image base{2, 2, 1, {0, 0, 0, 0}};
    check_throws<input_error>([&] { overlay(base, tensor({2, 2}, {0, nan, 1, 2})); }, {"NaN"});
    check_throws<input_error>([&] { overlay(base, tensor({2, 2}), 1.5f); }, {"alpha"});
    check_throws<input_error>([&] { overlay(base, tensor({2, 2}), nan); }, {"alpha"});
}

BOOST_AUTO_TEST_CASE(overlay_blends_over_the_base) {
    const image grey{4, 2, 1, {0, 50, 100, 150, 200, 250, 255, 10}};
    const tensor map({2, 4}, {0, 1, 2, 3, 4, 5, 6, 7});
    // alpha 0: the base, expanded to RGB.
    const image base_only = overlay(grey, map, 0.0f);
    BOOST_TEST(base_only.channels == 3);
    for (size_t i = 0; i < grey.pixels.size(); ++i)
        for (size_t c = 0; c < 3; ++c) BOOST_TEST(base_only.pixels[3 * i + c] == grey.pixels[i]);
    // alpha 1 with a map of the base's size: the heatmap itself.
    BOOST_TEST(overlay(grey, map, 1.0f).pixels == heatmap(map).pixels);
    // alpha 0.5: the mean, rounded.
    const image half = overlay(grey, map, 0.5f);
    const image heat = heatmap(map);
    for (size_t i = 0; i < grey.pixels.size(); ++i)
        for (size_t c = 0; c < 3; ++c)
            BOOST_TEST(std::abs(half.pixels[3 * i + c] - (grey.pixels[i] + heat.pixels[3 * i + c]) / 2.0) <= 0.51);

    // A small map is resized to the base: a constant map stays constant, the size is the base's.
    const image rgb{6, 5, 3, std::vector<uint8_t>(6 * 5 * 3, 128)};
    const image big = overlay(rgb, tensor({2, 2}, {1, 1, 1, 1}), 1.0f);
    BOOST_TEST(big.width == 6);
    BOOST_TEST(big.height == 5);
    for (size_t i = 0; i < big.pixels.size(); i += 3) check_rgb(&big.pixels[i], 0xfc, 0xff, 0xa4, 1);
    // A left-to-right map: brightness rises left to right in every row.
    const image ramped = overlay(rgb, tensor({1, 2}, {0, 1}), 1.0f);
    for (int y = 0; y < 5; ++y)
        for (int x = 1; x < 6; ++x)
            BOOST_TEST(luma(&ramped.pixels[size_t(3 * (y * 6 + x))]) >= luma(&ramped.pixels[size_t(3 * (y * 6 + x - 1))]));
}

BOOST_AUTO_TEST_SUITE_END()
