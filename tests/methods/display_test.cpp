// Readable maps (deepinside/display.hpp): reductions, display scales, colormaps, overlays, panels.
#include "methods/support.hpp"

#include <deepinside/display.hpp>
#include <deepinside/io.hpp>
#include <deepinside/saliency.hpp>

#include <cmath>
#include <iomanip>
#include <limits>
#include <random>
#include <sstream>

using namespace deepinside;
using methods_test::check_throws;

namespace {

tensor random_tensor(shape_t shape, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    tensor t(std::move(shape));
    for (float& v : t.data) v = normal(rng);
    return t;
}

/// The RGB pixel at (x, y).
std::vector<int> pixel(const image& img, int x, int y) {
    const size_t at = (size_t(y) * size_t(img.width) + size_t(x)) * size_t(img.channels);
    if (img.channels == 1) return {img.pixels[at], img.pixels[at], img.pixels[at]};
    return {img.pixels[at], img.pixels[at + 1], img.pixels[at + 2]};
}

void check_rgb(const std::vector<int>& got, int r, int g, int b, int tolerance) {
    BOOST_TEST(std::abs(got[0] - r) <= tolerance, "red " << got[0] << " vs " << r);
    BOOST_TEST(std::abs(got[1] - g) <= tolerance, "green " << got[1] << " vs " << g);
    BOOST_TEST(std::abs(got[2] - b) <= tolerance, "blue " << got[2] << " vs " << b);
}

image solid(int width, int height, int channels, uint8_t value) {
    return {width, height, channels, std::vector<uint8_t>(size_t(width * height * channels), value)};
}

} // namespace

BOOST_AUTO_TEST_SUITE(display)

BOOST_AUTO_TEST_CASE(reduction_names) {
    for (map_reduction r :
         {map_reduction::max_abs, map_reduction::sum_abs, map_reduction::signed_sum, map_reduction::positive})
        BOOST_TEST((parse_map_reduction(to_string(r)) == r), to_string(r));
    BOOST_TEST(std::string(to_string(map_reduction::max_abs)) == "max-abs");
    BOOST_TEST(std::string(to_string(map_reduction::sum_abs)) == "sum-abs");
    BOOST_TEST(std::string(to_string(map_reduction::signed_sum)) == "signed");
    BOOST_TEST(std::string(to_string(map_reduction::positive)) == "positive");
    check_throws<input_error>([] { parse_map_reduction("max"); }, {"'max'", "max-abs, sum-abs, signed, positive"});
    check_throws<input_error>([] { parse_map_reduction(""); }, {"''", "max-abs"});
}

BOOST_AUTO_TEST_CASE(reductions_against_a_plain_loop) {
    const tensor signal = random_tensor({2, 3, 4, 5}, 7);
    for (map_reduction r :
         {map_reduction::max_abs, map_reduction::sum_abs, map_reduction::signed_sum, map_reduction::positive}) {
        BOOST_TEST_CONTEXT(to_string(r)) {
            const tensor map = reduce_map(signal, r);
            BOOST_REQUIRE(map.shape == (shape_t{2, 4, 5}));
            for (int64_t n = 0; n < 2; ++n)
                for (int64_t i = 0; i < 20; ++i) {
                    double max_abs = 0, sum_abs = 0, sum = 0;
                    for (int64_t c = 0; c < 3; ++c) {
                        const double s = signal.data[size_t((n * 3 + c) * 20 + i)];
                        max_abs = std::max(max_abs, std::fabs(s));
                        sum_abs += std::fabs(s);
                        sum += s;
                    }
                    const double expected = r == map_reduction::max_abs      ? max_abs
                                            : r == map_reduction::sum_abs    ? sum_abs
                                            : r == map_reduction::signed_sum ? sum
                                                                             : std::max(sum, 0.0);
                    BOOST_TEST(map.data[size_t(n * 20 + i)] == expected, boost::test_tools::tolerance(1e-6));
                }
        }
    }
    // max-abs is the paper's map.
    BOOST_TEST(reduce_map(signal, map_reduction::max_abs).data == saliency_map(signal).data);
    // A worked pixel: channels 1, -2, 0.5.
    const tensor one({1, 3, 1, 1}, {1.0f, -2.0f, 0.5f});
    BOOST_TEST(reduce_map(one, map_reduction::max_abs).data == std::vector<float>{2.0f});
    BOOST_TEST(reduce_map(one, map_reduction::sum_abs).data == std::vector<float>{3.5f});
    BOOST_TEST(reduce_map(one, map_reduction::signed_sum).data == std::vector<float>{-0.5f});
    BOOST_TEST(reduce_map(one, map_reduction::positive).data == std::vector<float>{0.0f});
}

BOOST_AUTO_TEST_CASE(reductions_refuse_bad_signals) {
    check_throws<input_error>(
        [] {
            reduce_map(tensor({3, 4, 5}), map_reduction::sum_abs);
        },
        {"reduce_map", "[3, 4, 5]", "[N, C, H, W]"});
    const float nan = std::numeric_limits<float>::quiet_NaN();
    check_throws<input_error>(
        [&] {
            reduce_map(tensor({1, 2, 1, 1}, {0.0f, nan}), map_reduction::signed_sum);
        },
        {"reduce_map: signal", "nan", "[0, 1, 0, 0]"});
    tensor short_data({1, 1, 2, 2});
    short_data.data.pop_back();
    check_throws<input_error>([&] { reduce_map(short_data, map_reduction::max_abs); }, {"[1, 1, 2, 2]", "3 values"});
}

BOOST_AUTO_TEST_CASE(display_scale_by_hand) {
    // |map| sorted: 1, 2, 3, 4; rank p/100 * 3.
    const tensor map({2, 2}, {1.0f, -2.0f, 3.0f, -4.0f});
    BOOST_TEST(display_scale(map, 100.0f) == 4.0f);
    BOOST_TEST(display_scale(map, 50.0f) == 2.5f);                                           // rank 1.5
    BOOST_TEST(display_scale(map, 25.0f) == 1.75f);                                          // rank 0.75
    BOOST_TEST(display_scale(map, 200.0f / 3) == 3.0f, boost::test_tools::tolerance(1e-6f)); // rank 2
    BOOST_TEST(display_scale(tensor({3, 3}), 99.0f) == 0.0f);
    BOOST_TEST(display_scale(tensor({1}, {-5.0f}), 1.0f) == 5.0f);
    check_throws<input_error>([&] { display_scale(map, 0.0f); }, {"display_scale", "percentile 0", "(0, 100]"});
    check_throws<input_error>([&] { display_scale(map, 100.5f); }, {"percentile 100.5"});
    check_throws<input_error>([&] { display_scale(map, std::numeric_limits<float>::quiet_NaN()); }, {"percentile nan"});
    check_throws<input_error>([&] { display_scale(tensor({0, 4}), 50.0f); }, {"display_scale", "empty"});
    check_throws<input_error>(
        [&] {
            display_scale(tensor({2}, {1.0f, std::numeric_limits<float>::infinity()}), 50.0f);
        },
        {"display_scale: map", "inf"});
}

BOOST_AUTO_TEST_CASE(display_scale_matches_numpy, *deepinside::test_support::needs_python("numpy")) {
    methods_test::scratch_dir dir;
    const tensor map = random_tensor({37, 23}, 3);
    write_npy(dir.file("map.npy"), map);
    const std::vector<float> percentiles = {0.5f, 10.0f, 50.0f, 90.0f, 99.0f, 99.5f, 99.9f, 100.0f};
    std::ostringstream script;
    script << "import numpy as np\nm = np.abs(np.load('map.npy').astype(np.float64))\nnp.save('p.npy', np.array([";
    // Nine digits: Python gets the very float percentile display_scale gets.
    for (float p : percentiles) script << "np.percentile(m, " << std::setprecision(9) << p << "),";
    script << "], dtype=np.float32))\n";
    {
        std::ofstream out(dir.file("script.py"));
        out << script.str();
    }
    const std::string cmd =
        "cd '" + dir.path().string() + "' && '" + deepinside::test_support::env("DEEPINSIDE_PYTHON") + "' script.py";
    BOOST_REQUIRE(std::system(cmd.c_str()) == 0);
    const tensor expected = read_npy(dir.file("p.npy"));
    BOOST_REQUIRE_EQUAL(expected.size(), int64_t(percentiles.size()));
    for (size_t i = 0; i < percentiles.size(); ++i)
        BOOST_TEST(display_scale(map, percentiles[i]) == expected.data[i],
                   "percentile " << percentiles[i] << boost::test_tools::tolerance(1e-6f));
}

BOOST_AUTO_TEST_CASE(heatmap_styles_by_hand) {
    // gray: black to white, rounded; the default scale is the largest |value|.
    const tensor ramp({1, 4}, {0.0f, 1.0f, 2.0f, 4.0f});
    const image grey = heatmap(ramp, heatmap_style{"gray", false, 0});
    BOOST_TEST((grey.width == 4 && grey.height == 1 && grey.channels == 3));
    check_rgb(pixel(grey, 0, 0), 0, 0, 0, 0);
    check_rgb(pixel(grey, 1, 0), 64, 64, 64, 0);    // 0.25 * 255 = 63.75
    check_rgb(pixel(grey, 2, 0), 128, 128, 128, 0); // 127.5 rounds away from zero
    check_rgb(pixel(grey, 3, 0), 255, 255, 255, 0);
    // An explicit scale clips beyond it.
    const image clipped = heatmap(ramp, heatmap_style{"gray", false, 2});
    check_rgb(pixel(clipped, 1, 0), 128, 128, 128, 0);
    check_rgb(pixel(clipped, 3, 0), 255, 255, 255, 0);
    // Unsigned: negative values show as 0; the default colormap is inferno, as heatmap(map).
    const tensor mixed({1, 3}, {-3.0f, 1.5f, 3.0f});
    const image inferno_default = heatmap(mixed, heatmap_style{});
    check_rgb(pixel(inferno_default, 0, 0), 0x00, 0x00, 0x04, 1);
    check_rgb(pixel(inferno_default, 1, 0), 0xbc, 0x37, 0x54, 3); // inferno(0.5)
    check_rgb(pixel(inferno_default, 2, 0), 0xfc, 0xff, 0xa4, 1);
    BOOST_TEST(heatmap(tensor({2, 2}, {0, 1, 2, 4}), heatmap_style{}).pixels ==
               heatmap(tensor({2, 2}, {0, 1, 2, 4})).pixels);
    // viridis: matplotlib's end points and its entry 128 (#21918c) at position 128/255.
    const tensor at128({1, 3}, {0.0f, 128.0f, 255.0f});
    const image viridis = heatmap(at128, heatmap_style{"viridis", false, 0});
    check_rgb(pixel(viridis, 0, 0), 0x44, 0x01, 0x54, 0);
    check_rgb(pixel(viridis, 1, 0), 0x21, 0x91, 0x8c, 0);
    check_rgb(pixel(viridis, 2, 0), 0xfd, 0xe7, 0x25, 0);
    // All zero: the colour of 0 (the start; the middle when signed).
    check_rgb(pixel(heatmap(tensor({1, 1}), heatmap_style{"gray", false, 0}), 0, 0), 0, 0, 0, 0);
    check_rgb(pixel(heatmap(tensor({1, 1}), heatmap_style{"gray", true, 0}), 0, 0), 128, 128, 128, 0);
}

BOOST_AUTO_TEST_CASE(signed_maps_use_moreland_coolwarm) {
    // Values (i - 16) / 16 on a scale of 1 land on position i / 32: the nodes of Moreland's table.
    tensor nodes({1, 33});
    for (int i = 0; i <= 32; ++i) nodes.data[size_t(i)] = float(i - 16) / 16;
    const image cw = heatmap(nodes, heatmap_style{"", true, 1});
    // Kenneth Moreland's published 33-entry table (8-bit), its first eleven entries, middle and end.
    const int published[11][3] = {{59, 76, 192},   {68, 90, 204},   {77, 104, 215},  {87, 117, 225},
                                  {98, 130, 234},  {108, 142, 241}, {119, 154, 247}, {130, 165, 251},
                                  {141, 176, 254}, {152, 185, 255}, {163, 194, 255}};
    for (int i = 0; i < 11; ++i) BOOST_TEST_CONTEXT("node " << i) {
            check_rgb(pixel(cw, i, 0), published[i][0], published[i][1], published[i][2], 1);
        }
    check_rgb(pixel(cw, 16, 0), 221, 221, 221, 1);
    check_rgb(pixel(cw, 32, 0), 180, 4, 38, 1);
    // Symmetric in lightness around 0: -v and v are about equally light, blue below, red above.
    const auto luma = [](const std::vector<int>& p) { return 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]; };
    for (int i = 0; i < 16; ++i) {
        const std::vector<int> below = pixel(cw, i, 0), above = pixel(cw, 32 - i, 0);
        BOOST_TEST(below[2] > below[0], "node " << i << " is not blue");
        BOOST_TEST(above[0] > above[2], "node " << 32 - i << " is not red");
        BOOST_TEST(std::fabs(luma(below) - luma(above)) < 25, "nodes " << i << " and " << 32 - i);
    }
    // The default scale is the largest |value|; values beyond an explicit scale are clipped.
    const tensor two({1, 2}, {-4.0f, 2.0f});
    const image own = heatmap(two, heatmap_style{"", true, 0});
    check_rgb(pixel(own, 0, 0), 59, 76, 192, 1);
    BOOST_TEST(heatmap(two, heatmap_style{"", true, 1}).pixels ==
               heatmap(tensor({1, 2}, {-1.0f, 1.0f}), heatmap_style{"", true, 1}).pixels);
    // A signed gray map: -1 black, 0 mid grey, 1 white.
    const image g = heatmap(tensor({1, 3}, {-1.0f, 0.0f, 1.0f}), heatmap_style{"gray", true, 0});
    check_rgb(pixel(g, 0, 0), 0, 0, 0, 0);
    check_rgb(pixel(g, 1, 0), 128, 128, 128, 0);
    check_rgb(pixel(g, 2, 0), 255, 255, 255, 0);
}

BOOST_AUTO_TEST_CASE(heatmap_refuses_bad_input) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    check_throws<input_error>([&] { heatmap(tensor({1, 2}, {0.0f, nan}), heatmap_style{}); }, {"heatmap", "NaN"});
    check_throws<input_error>(
        [&] {
            heatmap(tensor({1, 2}, {0.0f, 1.0f}), heatmap_style{"jet", false, 0});
        },
        {"heatmap", "'jet'", "inferno, viridis, gray, coolwarm"});
    check_throws<input_error>(
        [&] {
            heatmap(tensor({1, 2}), heatmap_style{"gray", false, -1});
        },
        {"heatmap", "scale -1"});
    check_throws<input_error>([&] { heatmap(tensor({1, 2}), heatmap_style{"gray", false, nan}); }, {"scale nan"});
    check_throws<input_error>([&] { heatmap(tensor({1, 2, 2}), heatmap_style{}); }, {"[1, 2, 2]", "[H, W]"});
}

BOOST_AUTO_TEST_CASE(overlay_image_blends_and_resizes) {
    const image base{2, 1, 1, {0, 200}};
    const image heat{2, 1, 3, {255, 0, 0, 0, 0, 255}};
    // alpha 0: the base, expanded to RGB; alpha 1: the heat; alpha 0.25: the weighted mean, rounded.
    BOOST_TEST(overlay_image(base, heat, 0.0f).pixels == (std::vector<uint8_t>{0, 0, 0, 200, 200, 200}));
    BOOST_TEST(overlay_image(base, heat, 1.0f).pixels == heat.pixels);
    // 0.75 * 0 + 0.25 * 255 = 63.75; 0.75 * 200 = 150; 150 + 63.75 = 213.75
    BOOST_TEST(overlay_image(base, heat, 0.25f).pixels == (std::vector<uint8_t>{64, 0, 0, 150, 150, 214}));
    // A larger heat is shrunk with the prefilter: [0, 0, 255, 255] halved is [36, 219] (PIL's arithmetic).
    const image step{4, 1, 1, {0, 0, 255, 255}};
    BOOST_TEST(overlay_image(base, step, 1.0f).pixels == (std::vector<uint8_t>{36, 36, 36, 219, 219, 219}));
    // A smaller one is enlarged: a constant stays constant, and the result has the base's size.
    const image big = overlay_image(solid(7, 5, 3, 10), solid(2, 2, 3, 90), 0.5f);
    BOOST_TEST((big.width == 7 && big.height == 5 && big.channels == 3));
    for (uint8_t p : big.pixels) BOOST_TEST(p == 50);
    check_throws<input_error>([&] { overlay_image(base, heat, 1.5f); }, {"overlay_image", "alpha 1.5"});
    check_throws<input_error>([&] { overlay_image(base, image{1, 1, 3, {}}, 0.5f); }, {"overlay_image: heat", "bytes"});
    check_throws<input_error>([&] { overlay_image(image{}, heat, 0.5f); }, {"overlay_image: base", "0x0"});
}

BOOST_AUTO_TEST_CASE(panel_sizes_and_gaps) {
    // Heights brought to the first's (20): 5x10 becomes 10x20, 45x30 becomes 30x20.
    const std::vector<image> tiles = {solid(10, 20, 1, 0), solid(5, 10, 3, 100), solid(45, 30, 3, 50)};
    const image p = panel(tiles, {});
    BOOST_TEST((p.width == 10 + 4 + 10 + 4 + 30 && p.height == 20 && p.channels == 3));
    for (int y = 0; y < 20; ++y) {
        check_rgb(pixel(p, 9, y), 0, 0, 0, 0);
        for (int x = 10; x < 14; ++x) check_rgb(pixel(p, x, y), 255, 255, 255, 0); // the gap
        check_rgb(pixel(p, 14, y), 100, 100, 100, 0);
        check_rgb(pixel(p, 57, y), 50, 50, 50, 0);
    }
    BOOST_TEST(panel(tiles, {}, 0).width == 50);
    BOOST_TEST(panel({solid(3, 3, 3, 7)}, {}).pixels == solid(3, 3, 3, 7).pixels);
    // Shrinking uses the prefilter: a 4x2 tile [0, 0, 255, 255] rows brought to height 1 is 2x1 [36, 219].
    const image step{4, 2, 1, {0, 0, 255, 255, 0, 0, 255, 255}};
    const image shrunk = panel({solid(1, 1, 1, 9), step}, {}, 0);
    BOOST_TEST(shrunk.width == 3);
    check_rgb(pixel(shrunk, 1, 0), 36, 36, 36, 0);
    check_rgb(pixel(shrunk, 2, 0), 219, 219, 219, 0);
}

BOOST_AUTO_TEST_CASE(panel_captions) {
    const std::vector<image> tiles = {solid(10, 20, 3, 0), solid(10, 20, 3, 0), solid(30, 20, 3, 0)};
    // "hello world" is 11 characters, 11 * 6 - 1 = 65 pixels: its column widens to 65 and the tile
    // is centred in it; the band under the tiles is 12 pixels high.
    const image p = panel(tiles, {"a", "", "hello world"});
    BOOST_TEST((p.width == 10 + 4 + 10 + 4 + 65 && p.height == 20 + 12));
    check_rgb(pixel(p, 28 + 16, 0), 255, 255, 255, 0); // left of the centred tile: (65 - 30) / 2 = 17
    check_rgb(pixel(p, 28 + 17, 0), 0, 0, 0, 0);
    check_rgb(pixel(p, 28 + 46, 0), 0, 0, 0, 0);
    check_rgb(pixel(p, 28 + 47, 0), 255, 255, 255, 0);
    // 'a' under the first tile: 5 pixels wide, at x = (10 - 5) / 2 = 2, from y = 20 + 3.
    const char* const a_glyph[7] = {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"};
    for (int y = 20; y < 32; ++y)
        for (int x = 0; x < 10; ++x) {
            const bool inked = y >= 23 && y < 30 && x >= 2 && x < 7 && a_glyph[y - 23][x - 2] == '#';
            BOOST_TEST_CONTEXT("(" << x << ", " << y << ")") {
                check_rgb(pixel(p, x, y), inked ? 0 : 255, inked ? 0 : 255, inked ? 0 : 255, 0);
            }
        }
    // No caption under the second tile: all white.
    for (int y = 20; y < 32; ++y)
        for (int x = 14; x < 24; ++x) check_rgb(pixel(p, x, y), 255, 255, 255, 0);
    // Upper case is drawn as lower case; an unknown character (and a whole UTF-8 character) as a box.
    const std::vector<image> one = {solid(12, 8, 3, 0)};
    BOOST_TEST(panel(one, {"A"}).pixels == panel(one, {"a"}).pixels);
    const image box = panel(one, {"#"});
    const image accented = panel(one, {"\xc3\xa9"}); // é
    BOOST_TEST(box.pixels == accented.pixels);
    BOOST_TEST(box.width == 12);
    const int x0 = (12 - 5) / 2, y0 = 8 + 3;
    for (int y = 0; y < 7; ++y)
        for (int x = 0; x < 5; ++x) {
            const bool edge = y == 0 || y == 6 || x == 0 || x == 4;
            check_rgb(pixel(box, x0 + x, y0 + y), edge ? 0 : 255, edge ? 0 : 255, edge ? 0 : 255, 0);
        }
    // Every supported character has its own glyph, none the box.
    for (char c : std::string("abcdefghijklmnopqrstuvwxyz0123456789.-_:(),/;"))
        BOOST_TEST(panel(one, {std::string(1, c)}).pixels != box.pixels, "'" << c << "' is drawn as a box");
    BOOST_TEST(panel(one, {" "}).pixels != box.pixels);
}

BOOST_AUTO_TEST_CASE(panel_refuses_bad_input) {
    check_throws<input_error>([] { panel({}, {}); }, {"panel", "no tiles"});
    check_throws<input_error>([] { panel({solid(2, 2, 3, 0)}, {"a", "b"}); }, {"panel", "2 captions for 1 tiles"});
    check_throws<input_error>([] { panel({solid(2, 2, 3, 0)}, {}, -1); }, {"panel", "gap -1"});
    check_throws<input_error>(
        [] {
            panel({solid(2, 2, 3, 0), image{2, 2, 2, {}}}, {});
        },
        {"panel: tile 1", "channels"});
}

BOOST_AUTO_TEST_CASE(fit_within_scales_down_only) {
    const image wide = solid(100, 50, 3, 80);
    const image fitted = fit_within(wide, 40);
    BOOST_TEST((fitted.width == 40 && fitted.height == 20));
    BOOST_TEST(fitted.pixels == resize_image(wide, 40, 20, true).pixels);
    const image tall = fit_within(solid(30, 61, 1, 3), 40);
    BOOST_TEST((tall.width == 20 && tall.height == 40)); // 30 * 40 / 61 = 19.67
    const image sliver = fit_within(solid(1000, 1, 1, 3), 10);
    BOOST_TEST((sliver.width == 10 && sliver.height == 1));
    const image small = solid(40, 12, 3, 9);
    BOOST_TEST(fit_within(small, 40).pixels == small.pixels);
    BOOST_TEST(fit_within(small, 400).width == 40);
    check_throws<input_error>([&] { fit_within(small, 0); }, {"fit_within", "0", "not positive"});
}

BOOST_AUTO_TEST_SUITE_END()
