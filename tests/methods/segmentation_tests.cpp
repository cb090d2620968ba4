// Weakly supervised segmentation (lib/methods/segmentation.cpp): synthetic pictures whose answer is
// known, the hard constraints, determinism, the mask/box helpers against brute force, the colour
// mixtures, and bad inputs.
#include "support.hpp"

#include <deepinside/io.hpp>
#include <deepinside/segmentation.hpp>

#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <random>
#include <vector>

namespace di = deepinside;
using methods_test::check_throws;

namespace {

/// A uniform integer in [-a, a] from the generator's bits (the same on every standard library).
int jitter(std::mt19937& rng, int a) { return int(rng() % uint32_t(2 * a + 1)) - a; }

uint8_t clamp8(int v) { return uint8_t(std::clamp(v, 0, 255)); }

/// A disc of one colour (with a little noise) on a striped background of two other colours.
struct disc_scene {
    int width, height;
    double cx, cy, radius;
    di::image picture;
    di::binary_mask disc;

    disc_scene(int w, int h, double cx_, double cy_, double r, uint32_t seed = 7)
        : width(w), height(h), cx(cx_), cy(cy_), radius(r) {
        std::mt19937 rng(seed);
        picture = {w, h, 3, std::vector<uint8_t>(size_t(w) * size_t(h) * 3)};
        disc = {w, h, std::vector<uint8_t>(size_t(w) * size_t(h))};
        for (int y = 0; y < h; ++y)
            for (int x = 0; x < w; ++x) {
                const size_t i = size_t(y) * size_t(w) + size_t(x);
                const double dx = x + 0.5 - cx, dy = y + 0.5 - cy;
                const bool inside = dx * dx + dy * dy <= r * r;
                disc.pixels[i] = inside;
                std::array<int, 3> c;
                if (inside)
                    c = {210, 40, 40}; // red disc
                else if (((x + y) / 6) % 2 == 0)
                    c = {40, 150, 60}; // green stripes
                else
                    c = {50, 70, 190}; // blue stripes
                for (size_t k = 0; k < 3; ++k) picture.pixels[i * 3 + k] = clamp8(c[k] + jitter(rng, 12));
            }
    }

    /// A map peaked at (px, py): 1 / (1 + d^2 / s^2), no two far pixels tied.
    di::tensor bump(double px, double py, double s) const {
        di::tensor map({height, width});
        for (int y = 0; y < height; ++y)
            for (int x = 0; x < width; ++x) {
                const double dx = x + 0.5 - px, dy = y + 0.5 - py;
                map.data[size_t(y) * size_t(width) + size_t(x)] = float(1.0 / (1.0 + (dx * dx + dy * dy) / (s * s)));
            }
        return map;
    }
};

di::binary_mask random_mask(std::mt19937& rng, int w, int h, double density) {
    di::binary_mask m{w, h, std::vector<uint8_t>(size_t(w) * size_t(h))};
    for (auto& p : m.pixels) p = (rng() % 1000) < uint32_t(density * 1000);
    return m;
}

/// Brute force: every 1-pixel labelled with the smallest row-major index of its 8-connected
/// component (the component's first pixel), by relaxation until nothing changes.
std::vector<int64_t> component_labels(const di::binary_mask& m) {
    const int64_t n = int64_t(m.pixels.size());
    std::vector<int64_t> label(size_t(n), -1);
    for (int64_t i = 0; i < n; ++i)
        if (m.pixels[size_t(i)]) label[size_t(i)] = i;
    for (bool changed = true; changed;) {
        changed = false;
        for (int y = 0; y < m.height; ++y)
            for (int x = 0; x < m.width; ++x) {
                const size_t i = size_t(y * m.width + x);
                if (label[i] < 0) continue;
                for (int dy = -1; dy <= 1; ++dy)
                    for (int dx = -1; dx <= 1; ++dx) {
                        const int nx = x + dx, ny = y + dy;
                        if (nx < 0 || ny < 0 || nx >= m.width || ny >= m.height) continue;
                        const size_t j = size_t(ny * m.width + nx);
                        if (label[j] >= 0 && label[j] < label[i]) label[i] = label[j], changed = true;
                    }
            }
    }
    return label;
}

int64_t count_ones(const di::binary_mask& m) {
    int64_t n = 0;
    for (uint8_t p : m.pixels) n += p != 0;
    return n;
}

} // namespace

BOOST_AUTO_TEST_SUITE(segmentation)

BOOST_AUTO_TEST_CASE(disc_on_stripes_is_recovered) {
    // The map is high on the upper left part of the disc only; colour and contrast give the rest.
    const disc_scene scene(96, 96, 50, 46, 22);
    const di::tensor map = scene.bump(46, 42, 6);
    const di::segmentation s = di::segment(scene.picture, map);
    const double iou = di::mask_iou(s.mask, scene.disc);
    BOOST_TEST_MESSAGE("disc IoU " << iou);
    BOOST_TEST(iou > 0.9);
    const di::pixel_box truth = di::bounding_box(scene.disc);
    BOOST_TEST(di::box_iou(s.box, truth) > 0.9);
    // Every foreground seed lies on the disc, every background seed off it: the test's premise.
    for (size_t i = 0; i < s.seeds.size(); ++i) {
        if (s.seeds[i] > 0) BOOST_TEST_REQUIRE(scene.disc.pixels[i] == 1);
        if (s.seeds[i] < 0) BOOST_TEST_REQUIRE(scene.disc.pixels[i] == 0);
    }
}

BOOST_AUTO_TEST_CASE(grey_picture_and_a_second_disc_left_out) {
    // Grey: a bright disc on a dark textured background, plus a second bright disc the map does not
    // point at; GraphCut may take both, the largest component keeps the one the seeds are on.
    const int w = 80, h = 64;
    di::image picture{w, h, 1, std::vector<uint8_t>(size_t(w * h))};
    di::binary_mask big{w, h, std::vector<uint8_t>(size_t(w * h))};
    std::mt19937 rng(3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            const size_t i = size_t(y * w + x);
            const double d1 = std::hypot(x + 0.5 - 26, y + 0.5 - 30), d2 = std::hypot(x + 0.5 - 66, y + 0.5 - 46);
            big.pixels[i] = d1 <= 16;
            const int base = d1 <= 16 || d2 <= 7 ? 220 : ((x / 4 + y / 4) % 2 ? 30 : 80);
            picture.pixels[i] = clamp8(base + jitter(rng, 8));
        }
    di::tensor map({h, w});
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            map.data[size_t(y * w + x)] = float(1.0 / (1.0 + std::hypot(x + 0.5 - 24, y + 0.5 - 28) / 4));
    const di::segmentation s = di::segment(picture, map);
    BOOST_TEST(di::mask_iou(s.mask, big) > 0.9);
    BOOST_TEST(count_ones(s.graphcut) >= count_ones(s.mask));
    BOOST_TEST((s.mask.pixels == di::largest_component(s.graphcut).pixels));
    di::segmentation_options all;
    all.largest_component = false;
    const di::segmentation t = di::segment(picture, map, all);
    BOOST_TEST((t.mask.pixels == t.graphcut.pixels));
}

BOOST_AUTO_TEST_CASE(hard_constraints_hold) {
    // The map peaks on the disc's border, so the foreground seeds mix disc and stripe colours. With
    // every seed a hard constraint (clamp quantiles = seed quantiles) GraphCut must keep each one.
    const disc_scene scene(64, 64, 32, 32, 14);
    const di::tensor map = scene.bump(32, 18, 5);
    di::segmentation_options o;
    o.clamp_high = o.fg_quantile;
    o.clamp_low = o.bg_quantile;
    const di::segmentation s = di::segment(scene.picture, map, o);
    int64_t stripe_seeds = 0;
    for (size_t i = 0; i < s.seeds.size(); ++i) {
        BOOST_TEST_REQUIRE(s.hard[i] == s.seeds[i]);
        if (s.hard[i] > 0) BOOST_TEST_REQUIRE(s.graphcut.pixels[i] == 1);
        if (s.hard[i] < 0) BOOST_TEST_REQUIRE(s.graphcut.pixels[i] == 0);
        stripe_seeds += s.seeds[i] > 0 && !scene.disc.pixels[i];
    }
    BOOST_TEST(stripe_seeds > 0); // the case is not trivial
    // The defaults: the hard sets are the seeds beyond the 99.5 % / 0.5 % quantiles, and hold too.
    const di::segmentation d = di::segment(scene.picture, map);
    int64_t hard_fg = 0, hard_bg = 0;
    for (size_t i = 0; i < d.seeds.size(); ++i) {
        if (d.hard[i] != 0) BOOST_TEST_REQUIRE(d.hard[i] == d.seeds[i]);
        if (d.hard[i] > 0) {
            BOOST_TEST_REQUIRE(d.graphcut.pixels[i] == 1);
            ++hard_fg;
        }
        if (d.hard[i] < 0) {
            BOOST_TEST_REQUIRE(d.graphcut.pixels[i] == 0);
            ++hard_bg;
        }
    }
    // MATLAB quantiles over 4096 values: q(0.995) lies between the sorted values 4075 and 4076
    // (0-based), q(0.005) between 19 and 20; the map's symmetric ties may add pixels at the threshold.
    std::vector<float> sorted = map.data;
    std::sort(sorted.begin(), sorted.end());
    BOOST_TEST(d.hard_fg_threshold >= sorted[4075]);
    BOOST_TEST(d.hard_fg_threshold <= sorted[4076]);
    BOOST_TEST(d.hard_bg_threshold >= sorted[19]);
    BOOST_TEST(d.hard_bg_threshold <= sorted[20]);
    BOOST_TEST(hard_fg ==
               std::count_if(map.data.begin(), map.data.end(), [&](float v) { return v >= d.hard_fg_threshold; }));
    BOOST_TEST(hard_bg ==
               std::count_if(map.data.begin(), map.data.end(), [&](float v) { return v <= d.hard_bg_threshold; }));
    BOOST_TEST(hard_fg >= 20);
    BOOST_TEST(hard_bg >= 20);
}

BOOST_AUTO_TEST_CASE(quantile_thresholds_and_ties) {
    const disc_scene scene(20, 10, 10, 5, 4);
    // Values 0..199 in a scrambled order: MATLAB's quantile puts value k at (k + 0.5) / 200.
    di::tensor map({10, 20});
    for (size_t i = 0; i < 200; ++i) map.data[i] = float((i * 37) % 200);
    di::segmentation s = di::segment(scene.picture, map);
    BOOST_TEST(s.fg_threshold == 189.5);
    BOOST_TEST(s.bg_threshold == 59.5);
    int64_t fg = 0, bg = 0;
    for (size_t i = 0; i < 200; ++i) {
        fg += s.seeds[i] > 0;
        bg += s.seeds[i] < 0;
        BOOST_TEST_REQUIRE((s.seeds[i] > 0) == (map.data[i] >= 189.5f));
        BOOST_TEST_REQUIRE((s.seeds[i] < 0) == (map.data[i] <= 59.5f));
    }
    BOOST_TEST(fg == 10);
    BOOST_TEST(bg == 60);

    // Zero on 40 % of the pixels: every zero is a background seed (and, as q(0.005) = 0, hard).
    for (size_t i = 0; i < 200; ++i) map.data[i] = i % 5 < 2 ? 0.0f : float(i);
    s = di::segment(scene.picture, map);
    BOOST_TEST(s.bg_threshold == 0.0);
    for (size_t i = 0; i < 200; ++i) {
        BOOST_TEST_REQUIRE((s.seeds[i] < 0) == (map.data[i] == 0.0f));
        BOOST_TEST_REQUIRE((s.hard[i] < 0) == (map.data[i] == 0.0f));
    }

    // Zero on 97 %: both quantiles are 0; the zeros are background, the rest foreground.
    for (size_t i = 0; i < 200; ++i) map.data[i] = i < 6 ? float(i + 1) : 0.0f;
    s = di::segment(scene.picture, map);
    BOOST_TEST(s.fg_threshold == 0.0);
    for (size_t i = 0; i < 200; ++i) BOOST_TEST_REQUIRE(s.seeds[i] == (i < 6 ? 1 : -1));

    // The tie reaches the maximum (the map saturated on 80 %): the saturated pixels are foreground.
    for (size_t i = 0; i < 200; ++i) map.data[i] = i < 40 ? float(i) / 100 : 1.0f;
    s = di::segment(scene.picture, map);
    for (size_t i = 0; i < 200; ++i) BOOST_TEST_REQUIRE(s.seeds[i] == (i < 40 ? -1 : 1));

    // One value: no seeds, refused.
    std::fill(map.data.begin(), map.data.end(), 0.25f);
    check_throws<di::input_error>([&] { di::segment(scene.picture, map); }, {"single value"});
}

BOOST_AUTO_TEST_CASE(same_seed_same_mask) {
    const disc_scene scene(72, 60, 30, 28, 15, 11);
    const di::tensor map = scene.bump(27, 25, 5);
    di::segmentation_options o;
    o.seed = 1234;
    const di::segmentation a = di::segment(scene.picture, map, o), b = di::segment(scene.picture, map, o);
    BOOST_TEST((a.mask.pixels == b.mask.pixels));
    BOOST_TEST((a.graphcut.pixels == b.graphcut.pixels));
    BOOST_TEST((a.seeds == b.seeds));
    BOOST_TEST(a.box.x0 == b.box.x0);
    BOOST_TEST(a.box.y1 == b.box.y1);
    const auto pa = di::fit_colour_mixture({{1, 2, 3}, {200, 10, 10}, {5, 5, 5}, {190, 20, 0}, {0, 0, 250}}, 3, 5, 9);
    const auto pb = di::fit_colour_mixture({{1, 2, 3}, {200, 10, 10}, {5, 5, 5}, {190, 20, 0}, {0, 0, 250}}, 3, 5, 9);
    BOOST_REQUIRE_EQUAL(pa.components.size(), pb.components.size());
    for (size_t k = 0; k < pa.components.size(); ++k) {
        BOOST_TEST(pa.components[k].weight == pb.components[k].weight);
        BOOST_TEST(pa.components[k].mean == pb.components[k].mean);
        BOOST_TEST(pa.components[k].covariance == pb.components[k].covariance);
    }
}

BOOST_AUTO_TEST_CASE(largest_component_against_brute_force) {
    std::mt19937 rng(5);
    for (int trial = 0; trial < 300; ++trial) {
        const int w = 1 + int(rng() % 9), h = 1 + int(rng() % 7);
        const di::binary_mask m = random_mask(rng, w, h, 0.2 + 0.5 * double(rng() % 100) / 100);
        const std::vector<int64_t> label = component_labels(m);
        std::vector<int64_t> size(label.size(), 0);
        for (int64_t l : label)
            if (l >= 0) ++size[size_t(l)];
        int64_t best = -1;
        for (size_t l = 0; l < size.size(); ++l)
            if (size[l] > 0 && (best < 0 || size[l] > size[size_t(best)])) best = int64_t(l); // ties: first met
        const di::binary_mask got = di::largest_component(m);
        BOOST_TEST_CONTEXT("trial " << trial << " (" << w << "x" << h << ")") {
            BOOST_REQUIRE_EQUAL(got.pixels.size(), m.pixels.size());
            for (size_t i = 0; i < label.size(); ++i)
                BOOST_TEST_REQUIRE(got.pixels[i] == uint8_t(best >= 0 && label[i] == best));
            // bounding_box against the loops
            int x0 = w, y0 = h, x1 = 0, y1 = 0;
            for (int y = 0; y < h; ++y)
                for (int x = 0; x < w; ++x)
                    if (m.pixels[size_t(y * w + x)])
                        x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x + 1), y1 = std::max(y1, y + 1);
            const di::pixel_box b = di::bounding_box(m);
            if (x1 == 0) {
                BOOST_TEST(b.empty());
            } else {
                BOOST_TEST(b.x0 == x0);
                BOOST_TEST(b.y0 == y0);
                BOOST_TEST(b.x1 == x1);
                BOOST_TEST(b.y1 == y1);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(component_hand_cases) {
    // Diagonal neighbours connect (8-connectivity): the 3-pixel diagonal beats the 2-pixel pair.
    const di::binary_mask m{5,
                            3,
                            {1, 1, 0, 0, 1, //
                             0, 0, 0, 1, 0, //
                             0, 0, 1, 0, 0}};
    const di::binary_mask l = di::largest_component(m);
    BOOST_TEST((l.pixels == std::vector<uint8_t>{0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0}));
    // A tie of two 2-pixel components: the one whose first pixel comes first in row-major order
    // (index 3), not the leftmost.
    const di::binary_mask tie{5,
                              2,
                              {0, 0, 0, 1, 1, //
                               1, 1, 0, 0, 0}};
    BOOST_TEST((di::largest_component(tie).pixels == std::vector<uint8_t>{0, 0, 0, 1, 1, 0, 0, 0, 0, 0}));
    const di::binary_mask two{5, 1, {1, 1, 0, 1, 1}};
    BOOST_TEST((di::largest_component(two).pixels == std::vector<uint8_t>{1, 1, 0, 0, 0}));
    const di::binary_mask none{3, 2, std::vector<uint8_t>(6, 0)};
    BOOST_TEST((di::largest_component(none).pixels == none.pixels));
    BOOST_TEST(di::bounding_box(none).empty());
    const di::pixel_box b = di::bounding_box(m);
    BOOST_TEST(b.x0 == 0);
    BOOST_TEST(b.y0 == 0);
    BOOST_TEST(b.x1 == 5);
    BOOST_TEST(b.y1 == 3);
}

BOOST_AUTO_TEST_CASE(box_and_mask_iou_hand_cases) {
    using box = di::pixel_box;
    BOOST_TEST(di::box_iou(box{0, 0, 4, 4}, box{0, 0, 4, 4}) == 1.0);
    BOOST_TEST(di::box_iou(box{0, 0, 2, 2}, box{1, 0, 3, 2}) == 1.0 / 3);
    BOOST_TEST(di::box_iou(box{0, 0, 2, 2}, box{2, 0, 4, 2}) == 0.0); // touching, half-open
    BOOST_TEST(di::box_iou(box{0, 0, 4, 4}, box{1, 1, 3, 3}) == 0.25);
    BOOST_TEST(di::box_iou(box{}, box{}) == 0.0);
    BOOST_TEST(di::box_iou(box{0, 0, 3, 3}, box{5, 5, 5, 9}) == 0.0);
    BOOST_TEST(di::box_iou(box{2, 2, 1, 5}, box{0, 0, 3, 3}) == 0.0); // an inverted box is empty
    // Brute force over random boxes on a 12x12 grid.
    std::mt19937 rng(17);
    for (int trial = 0; trial < 500; ++trial) {
        box a{int(rng() % 12), int(rng() % 12), int(rng() % 13), int(rng() % 13)};
        box b{int(rng() % 12), int(rng() % 12), int(rng() % 13), int(rng() % 13)};
        int inter = 0, uni = 0;
        for (int y = 0; y < 12; ++y)
            for (int x = 0; x < 12; ++x) {
                const bool pa = x >= a.x0 && x < a.x1 && y >= a.y0 && y < a.y1,
                           pb = x >= b.x0 && x < b.x1 && y >= b.y0 && y < b.y1;
                inter += pa && pb;
                uni += pa || pb;
            }
        BOOST_TEST_REQUIRE(di::box_iou(a, b) == (uni ? double(inter) / uni : 0.0));
    }
    const di::binary_mask p{3, 2, {1, 1, 0, 0, 1, 0}}, q{3, 2, {0, 1, 1, 0, 1, 0}};
    BOOST_TEST(di::mask_iou(p, q) == 0.5);
    BOOST_TEST(di::mask_iou(p, p) == 1.0);
    const di::binary_mask z{3, 2, std::vector<uint8_t>(6, 0)};
    BOOST_TEST(di::mask_iou(z, z) == 0.0);
    BOOST_TEST(di::mask_iou(p, z) == 0.0);
    check_throws<di::input_error>(
        [&] {
            di::mask_iou(p, di::binary_mask{2, 3, std::vector<uint8_t>(6, 0)});
        },
        {"mask_iou", "size"});
}

BOOST_AUTO_TEST_CASE(mixture_recovers_two_clusters) {
    std::mt19937 rng(21);
    std::vector<std::array<uint8_t, 3>> colours;
    std::array<double, 3> sum_a{}, sum_b{};
    for (int i = 0; i < 300; ++i) {
        const std::array<uint8_t, 3> c{clamp8(30 + jitter(rng, 6)), clamp8(40 + jitter(rng, 6)),
                                       clamp8(200 + jitter(rng, 6))};
        for (size_t k = 0; k < 3; ++k) sum_a[k] += c[k];
        colours.push_back(c);
    }
    for (int i = 0; i < 200; ++i) {
        const std::array<uint8_t, 3> c{clamp8(220 + jitter(rng, 6)), clamp8(180 + jitter(rng, 6)),
                                       clamp8(20 + jitter(rng, 6))};
        for (size_t k = 0; k < 3; ++k) sum_b[k] += c[k];
        colours.push_back(c);
    }
    for (uint64_t seed : {0u, 1u, 99u}) {
        const di::colour_mixture m = di::fit_colour_mixture(colours, 2, 10, seed);
        BOOST_REQUIRE_EQUAL(m.components.size(), 2u);
        const bool first_is_a = m.components[0].mean[2] > 100;
        const auto& a = m.components[first_is_a ? 0 : 1];
        const auto& b = m.components[first_is_a ? 1 : 0];
        BOOST_TEST(a.weight == 0.6, boost::test_tools::tolerance(1e-9));
        BOOST_TEST(b.weight == 0.4, boost::test_tools::tolerance(1e-9));
        for (size_t k = 0; k < 3; ++k) {
            BOOST_TEST(a.mean[k] == sum_a[k] / 300, boost::test_tools::tolerance(1e-9));
            BOOST_TEST(b.mean[k] == sum_b[k] / 200, boost::test_tools::tolerance(1e-9));
            // uniform on 13 levels: variance 14, plus the 1.0 regularisation
            BOOST_TEST(a.covariance[k * 4] > 10.0);
            BOOST_TEST(a.covariance[k * 4] < 20.0);
        }
        // The density is higher at each cluster's centre than between them.
        const double at_a = m.log_density({30, 40, 200}), between = m.log_density({125, 110, 110});
        BOOST_TEST(at_a > between + 50);
    }
}

BOOST_AUTO_TEST_CASE(mixture_degenerate_inputs) {
    // One colour, five components asked: one Gaussian at that colour, covariance = the regularisation.
    const di::colour_mixture one =
        di::fit_colour_mixture(std::vector<std::array<uint8_t, 3>>(50, {10, 20, 30}), 5, 10, 0);
    BOOST_REQUIRE_EQUAL(one.components.size(), 1u);
    BOOST_TEST(one.components[0].weight == 1.0);
    BOOST_TEST((one.components[0].mean == std::array<double, 3>{10, 20, 30}));
    BOOST_TEST((one.components[0].covariance == std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
    BOOST_TEST(std::isfinite(one.log_density({200, 0, 0})));
    BOOST_TEST(one.log_density({10, 20, 30}) == -1.5 * std::log(2 * M_PI), boost::test_tools::tolerance(1e-12));
    // Fewer pixels than components: one Gaussian per distinct colour.
    const di::colour_mixture three =
        di::fit_colour_mixture({{0, 0, 0}, {100, 100, 100}, {0, 0, 0}, {250, 0, 0}}, 5, 10, 0);
    BOOST_TEST(three.components.size() == 3u);
    double total = 0;
    for (const auto& g : three.components) total += g.weight;
    BOOST_TEST(total == 1.0, boost::test_tools::tolerance(1e-12));
    // Colours on a line (singular covariance before regularisation) still give a finite density.
    std::vector<std::array<uint8_t, 3>> line;
    for (int i = 0; i < 100; ++i) line.push_back({uint8_t(i), uint8_t(i), uint8_t(i)});
    const di::colour_mixture l = di::fit_colour_mixture(line, 2, 10, 0);
    BOOST_TEST(std::isfinite(l.log_density({50, 0, 100})));
    check_throws<di::input_error>([] { di::fit_colour_mixture({}, 5, 10, 0); }, {"no colours"});
    check_throws<di::input_error>([] { di::fit_colour_mixture({{1, 2, 3}}, 0, 10, 0); }, {"components"});
}

BOOST_AUTO_TEST_CASE(bad_inputs_are_refused) {
    const disc_scene scene(16, 12, 8, 6, 4);
    const di::tensor map = scene.bump(8, 6, 3);
    check_throws<di::input_error>([&] { di::segment(scene.picture, di::tensor({12, 15})); }, {"12", "15"});
    check_throws<di::input_error>([&] { di::segment(scene.picture, di::tensor({1, 12, 16})); }, {"[H, W]"});
    di::tensor nan = map;
    nan.data[7] = std::numeric_limits<float>::quiet_NaN();
    check_throws<di::input_error>([&] { di::segment(scene.picture, nan); }, {"saliency map", "nan"});
    di::image broken = scene.picture;
    broken.pixels.pop_back();
    check_throws<di::input_error>([&] { di::segment(broken, map); }, {"picture"});
    const auto with = [&](auto change, const char* fragment) {
        di::segmentation_options o;
        change(o);
        check_throws<di::input_error>([&] { di::segment(scene.picture, map, o); }, {fragment});
        check_throws<di::input_error>([&] { di::check_segmentation_options(o); }, {fragment});
    };
    with([](auto& o) { o.fg_quantile = 1.5; }, "fg_quantile");
    with([](auto& o) { o.bg_quantile = -0.1; }, "bg_quantile");
    with([](auto& o) { o.bg_quantile = 0.95; }, "bg_quantile");
    with([](auto& o) { o.clamp_low = 0.5; }, "clamp_low");
    with([](auto& o) { o.clamp_high = 0.9; }, "clamp_high");
    with([](auto& o) { o.fg_quantile = std::numeric_limits<double>::quiet_NaN(); }, "fg_quantile");
    with([](auto& o) { o.components = 0; }, "components");
    with([](auto& o) { o.gamma = -1; }, "gamma");
    with([](auto& o) { o.gamma = std::numeric_limits<double>::infinity(); }, "gamma");
    with([](auto& o) { o.em_iterations = -1; }, "em_iterations");
    check_throws<di::input_error>([&] { di::resize_image(scene.picture, 0, 5); }, {"resize_image"});
    const di::segmentation s = di::segment(scene.picture, map);
    check_throws<di::input_error>([&] { di::segmentation_overlay(di::resize_image(scene.picture, 8, 6), s); },
                                  {"segmentation_overlay"});
}

BOOST_AUTO_TEST_CASE(resize_matches_the_network_input) {
    // resize_image rounds what image_to_tensor feeds (scale 1, mean 0, std 1), channel by channel.
    const disc_scene scene(37, 23, 15, 12, 8);
    for (auto [w, h] : {std::pair{16, 16}, std::pair{80, 50}, std::pair{37, 23}}) {
        const di::image r = di::resize_image(scene.picture, w, h);
        di::preprocess_options raw;
        raw.scale = 1.0f;
        const di::tensor x = di::image_to_tensor(scene.picture, 3, h, w, raw);
        BOOST_REQUIRE_EQUAL(r.pixels.size(), size_t(w * h * 3));
        for (int c = 0; c < 3; ++c)
            for (int i = 0; i < w * h; ++i)
                BOOST_TEST_REQUIRE(int(r.pixels[size_t(i * 3 + c)]) == int(std::lround(x.data[size_t(c * w * h + i)])));
    }
    const di::image same = di::resize_image(scene.picture, 37, 23);
    BOOST_TEST((same.pixels == scene.picture.pixels));
}

BOOST_AUTO_TEST_CASE(pictures_of_a_segmentation) {
    const disc_scene scene(40, 30, 20, 15, 8);
    const di::segmentation s = di::segment(scene.picture, scene.bump(19, 14, 3));
    const di::image seeds = di::seeds_image(s), mask = di::mask_image(s.mask),
                    over = di::segmentation_overlay(scene.picture, s);
    BOOST_TEST(seeds.channels == 3);
    BOOST_TEST(mask.channels == 1);
    BOOST_TEST(over.channels == 3);
    for (size_t i = 0; i < s.seeds.size(); ++i) {
        const uint8_t* p = seeds.pixels.data() + i * 3;
        const std::array<uint8_t, 3> want = s.seeds[i] > 0   ? std::array<uint8_t, 3>{0, 0, 255}
                                            : s.seeds[i] < 0 ? std::array<uint8_t, 3>{0, 255, 255}
                                                             : std::array<uint8_t, 3>{255, 0, 0};
        BOOST_TEST_REQUIRE((std::array<uint8_t, 3>{p[0], p[1], p[2]} == want));
        BOOST_TEST_REQUIRE(mask.pixels[i] == (s.mask.pixels[i] ? 255 : 0));
    }
    BOOST_REQUIRE(!s.box.empty());
    // The box's corner is yellow; a pixel outside the mask and the box is dimmed.
    const uint8_t* corner = over.pixels.data() + size_t(s.box.y0 * 40 + s.box.x0) * 3;
    BOOST_TEST((std::array<uint8_t, 3>{corner[0], corner[1], corner[2]} == std::array<uint8_t, 3>{255, 255, 0}));
    BOOST_TEST(int(over.pixels[0]) == (scene.picture.pixels[0] * 3 + 5) / 10);
}

BOOST_AUTO_TEST_CASE(timing_96_and_224) {
    // Not a benchmark: the cost stays small (seconds would mean a quadratic graph build).
    for (int size : {96, 224}) {
        const disc_scene scene(size, size, size * 0.5, size * 0.45, size * 0.22);
        const di::tensor map = scene.bump(size * 0.45, size * 0.4, size * 0.06);
        const auto start = std::chrono::steady_clock::now();
        const std::clock_t cpu_start = std::clock();
        const int runs = size == 96 ? 20 : 5;
        double iou = 0;
        for (int r = 0; r < runs; ++r) iou = di::mask_iou(di::segment(scene.picture, map).mask, scene.disc);
        const double ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count() / runs;
        const double cpu_ms = 1e3 * double(std::clock() - cpu_start) / CLOCKS_PER_SEC / runs;
        BOOST_TEST_MESSAGE("segment " << size << "x" << size << ": " << ms << " ms wall, " << cpu_ms << " ms CPU, IoU "
                                      << iou);
        BOOST_TEST(iou > 0.9);
        // A bound that a quadratic graph build (2.5e9 steps at 224x224) could not meet, and a linear one
        // meets even in the sanitizer build on a loaded machine (5.1 s there with a fresh-root run of
        // the suite beside it; some 0.1 s in Release).
        BOOST_TEST(ms < 30000.0);
    }
}

BOOST_AUTO_TEST_SUITE_END()
