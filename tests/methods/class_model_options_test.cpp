// Class model options: starts, blur, jitter and clip (deterministic from a seed), the display image,
// and the inputs the function refuses.
#include "class_model_support.hpp"

#include <cmath>

using namespace class_model_test;
using deepinside::test_support::rel_l2;

namespace {

/// Sum of |differences| between horizontal and vertical neighbours: what a blur lowers.
double total_variation(const di::tensor& t) {
    const int64_t h = t.shape[2], w = t.shape[3], planes = t.size() / (h * w);
    double tv = 0;
    for (int64_t p = 0; p < planes; ++p)
        for (int64_t y = 0; y < h; ++y)
            for (int64_t x = 0; x < w; ++x) {
                const float* v = t.data.data() + p * h * w;
                if (x + 1 < w) tv += std::fabs(v[y * w + x + 1] - v[y * w + x]);
                if (y + 1 < h) tv += std::fabs(v[(y + 1) * w + x] - v[y * w + x]);
            }
    return tv;
}

bool same_bits(const di::tensor& a, const di::tensor& b) { return a.shape == b.shape && a.data == b.data; }

template <class F>
void expect_input_error(F&& f, const std::string& fragment) {
    try {
        f();
        BOOST_ERROR("no input_error; expected one mentioning '" << fragment << "'");
    } catch (const di::input_error& e) {
        const std::string m = e.what();
        BOOST_TEST_MESSAGE("message: " << m);
        BOOST_TEST(m.find(fragment) != std::string::npos, "'" << m << "' lacks '" << fragment << "'");
        BOOST_TEST(m.find('\n') == std::string::npos);
    } catch (const std::exception& e) {
        BOOST_ERROR("wrong exception type: " << e.what());
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(class_model_options)

BOOST_AUTO_TEST_CASE(starts) {
    bundled b; // normalised: mean 0.286, std 0.353, scale 1/255
    auto net = b.net(2);
    di::class_model_options o;
    o.steps = 0;
    const auto zero = di::class_model(*net, {1, 2}, o, b.pre).images;
    BOOST_TEST(max_abs(zero) == 0.0);
    o.init = di::class_model_options::start::mean; // a normaliser: the mean image is input 0 as well
    BOOST_TEST(same_bits(di::class_model(*net, {1, 2}, o, b.pre).images, zero));
    // Without a mean, "mean" is mid-grey: pixel 127.5, input 127.5 * scale / std.
    di::preprocess_options raw;
    raw.mean = {0.0f};
    raw.std = {0.5f};
    const auto grey = di::class_model(*net, {1, 2}, o, raw).images;
    for (float v : grey.data) BOOST_REQUIRE_CLOSE(v, 127.5f / 255 / 0.5f, 1e-4);
    // Noise: the mean start plus noise of 8 pixel levels (8 * scale / std in input values).
    o.init = di::class_model_options::start::noise;
    const auto noise = di::class_model(*net, {1, 2}, o, b.pre).images;
    double sq = 0;
    for (float v : noise.data) sq += double(v) * v;
    const double sd = std::sqrt(sq / double(noise.size())), expected = 8.0 / 255 / 0.35302424;
    BOOST_TEST(sd == expected, boost::test_tools::tolerance(0.1));
    // Each image's noise depends on the seed and its class only.
    auto single = b.net(1);
    BOOST_TEST(same_bits(di::class_model(*single, {2}, o, b.pre).images, image_of(noise, 1)));
    o.seed = 1;
    BOOST_TEST(rel_l2(di::class_model(*net, {1, 2}, o, b.pre).images, noise) > 0.5);
}

BOOST_AUTO_TEST_CASE(jitter_is_deterministic_from_the_seed) {
    bundled b;
    auto net = b.net(3);
    di::class_model_options o;
    o.steps = 40;
    o.jitter = 2;
    o.seed = 42;
    const auto a = di::class_model(*net, {0, 5, 9}, o, b.pre).images;
    const auto again = di::class_model(*net, {0, 5, 9}, o, b.pre).images;
    BOOST_TEST(same_bits(a, again));
    o.seed = 43;
    const auto other_seed = di::class_model(*net, {0, 5, 9}, o, b.pre).images;
    BOOST_TEST(rel_l2(other_seed, a) > 1e-3);
    o.jitter = 0;
    const auto plain = di::class_model(*net, {0, 5, 9}, o, b.pre).images;
    BOOST_TEST(rel_l2(plain, a) > 1e-3);
}

// One step with jitter from the zero start: the zero image rolled is itself, so the step's gradient
// is the plain step's gradient, rolled back by the drawn shift: the result is the plain result
// rolled by some (dy, dx) within the jitter, to the bit.
BOOST_AUTO_TEST_CASE(jitter_rolls_back_what_it_rolls) {
    bundled b;
    auto net = b.net(1);
    di::class_model_options o;
    o.steps = 1;
    o.jitter = 3;
    bool some_shift_nonzero = false;
    for (uint64_t seed = 0; seed < 4; ++seed) {
        o.seed = seed;
        o.jitter = 3;
        const auto jittered = di::class_model(*net, {7}, o, b.pre).images;
        o.jitter = 0;
        const auto plain = di::class_model(*net, {7}, o, b.pre).images;
        int matches = 0;
        for (int dy = -3; dy <= 3; ++dy)
            for (int dx = -3; dx <= 3; ++dx) {
                di::tensor rolled(plain.shape);
                for (int y = 0; y < 28; ++y)
                    for (int x = 0; x < 28; ++x)
                        rolled.data[size_t(y * 28 + x)] = plain.data[size_t(((y - dy + 28) % 28) * 28 + (x - dx + 28) % 28)];
                if (same_bits(rolled, jittered)) {
                    ++matches;
                    some_shift_nonzero = some_shift_nonzero || dy != 0 || dx != 0;
                }
            }
        BOOST_TEST(matches == 1, "seed " << seed << ": " << matches << " shifts of the plain step give the jittered one");
    }
    BOOST_TEST(some_shift_nonzero);
}

BOOST_AUTO_TEST_CASE(blur_smooths_and_is_deterministic) {
    bundled b;
    auto net = b.net(2);
    di::class_model_options o;
    o.steps = 60;
    o.blur_sigma = 1.0f;
    o.blur_every = 4;
    const auto blurred = di::class_model(*net, {3, 7}, o, b.pre).images;
    BOOST_TEST(same_bits(blurred, di::class_model(*net, {3, 7}, o, b.pre).images));
    di::class_model_options plain_o = o;
    plain_o.blur_sigma = 0.0f;
    plain_o.blur_every = 0;
    const auto plain = di::class_model(*net, {3, 7}, plain_o, b.pre).images;
    const double tv_blur = total_variation(blurred) / rel_l2(blurred, di::tensor(blurred.shape));
    const double tv_plain = total_variation(plain) / rel_l2(plain, di::tensor(plain.shape));
    BOOST_TEST_MESSAGE("total variation per unit norm: blurred " << tv_blur << ", plain " << tv_plain);
    BOOST_TEST(tv_blur < 0.8 * tv_plain);
    // With blur and jitter together, a seed still fixes every bit.
    o.jitter = 2;
    o.seed = 4;
    BOOST_TEST(same_bits(di::class_model(*net, {3, 7}, o, b.pre).images, di::class_model(*net, {3, 7}, o, b.pre).images));
}

BOOST_AUTO_TEST_CASE(clip_keeps_the_valid_pixel_range) {
    bundled b;
    auto net = b.net(2);
    di::class_model_options o;
    o.steps = 100;
    o.lr = 1.0f; // a large step that leaves the range without clip
    o.l2 = 0.0f;
    const float lo = (0.0f - 0.2860406f) / 0.3530242f, hi = (1.0f - 0.2860406f) / 0.3530242f;
    const auto unclipped = di::class_model(*net, {0, 1}, o, b.pre).images;
    const auto [umin, umax] = std::minmax_element(unclipped.data.begin(), unclipped.data.end());
    BOOST_TEST((*umin < lo - 0.1f || *umax > hi + 0.1f));
    o.clip = true;
    const auto clipped = di::class_model(*net, {0, 1}, o, b.pre).images;
    for (float v : clipped.data) {
        BOOST_REQUIRE_GE(v, lo - 1e-5f);
        BOOST_REQUIRE_LE(v, hi + 1e-5f);
    }
}

BOOST_AUTO_TEST_CASE(the_display_image_undoes_the_normalisation_and_stretches) {
    di::preprocess_options p;
    p.mean = {0.5f};
    p.std = {0.25f};
    p.scale = 1.0f / 255;
    // Pixel values within one level: 127.5 may round either way after the float arithmetic.
    auto near = [](const std::vector<uint8_t>& got, const std::vector<int>& want) {
        BOOST_TEST_REQUIRE(got.size() == want.size());
        for (size_t i = 0; i < got.size(); ++i) BOOST_TEST(std::abs(int(got[i]) - want[i]) <= 1, "pixel " << i << ": " << int(got[i]));
    };
    // Inputs -2, 0, 2 are pixels 0, 127.5, 255; 1 is 191.25: stretched over [0, 255] they stay.
    const di::image img = di::class_model_image(di::tensor({1, 2, 2}, {-2.0f, 0.0f, 1.0f, 2.0f}), p);
    BOOST_TEST(img.width == 2);
    BOOST_TEST(img.height == 2);
    BOOST_TEST(img.channels == 1);
    near(img.pixels, {0, 128, 191, 255});
    // Any other range is stretched: the 1st percentile becomes 0, the 99th 255 (here the extremes).
    near(di::class_model_image(di::tensor({1, 1, 3}, {0.0f, 0.1f, 0.2f}), p).pixels, {0, 128, 255});
    // With many values, the 1 % at each end saturate: 200 values, one far outlier each side.
    std::vector<float> ramp(200);
    for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = -1.0f + 2.0f * float(i) / 199.0f;
    ramp[0] = -100.0f;
    ramp[199] = 100.0f;
    const di::image robust = di::class_model_image(di::tensor({1, 10, 20}, ramp), p);
    BOOST_TEST(int(robust.pixels[0]) == 0);
    BOOST_TEST(int(robust.pixels[199]) == 255);
    BOOST_TEST(int(robust.pixels[100]) > 100); // the middle is not squeezed to one grey by the outliers
    BOOST_TEST(int(robust.pixels[100]) < 155);
    // A flat image has nothing to stretch: it shows its pixel value.
    near(di::class_model_image(di::tensor({1, 1, 2}, {0.0f, 0.0f}), p).pixels, {128, 128});
    // BGR models come back as RGB: model channel 0 (blue) is the image's third channel.
    p.bgr = true;
    near(di::class_model_image(di::tensor({3, 1, 1}, {2.0f, 0.0f, -2.0f}), p).pixels, {0, 128, 255});
    expect_input_error([&] { di::class_model_image(di::tensor({2, 1, 1}), p); }, "C 1 or 3");
}

BOOST_AUTO_TEST_CASE(bad_requests_are_refused) {
    bundled b;
    auto net = b.net(2);
    const di::class_model_options ok;
    expect_input_error([&] { di::class_model(*net, {1, 10}, ok, b.pre); }, "class 10 is out of range");
    expect_input_error([&] { di::class_model(*net, {-1, 2}, ok, b.pre); }, "class -1 is out of range");
    expect_input_error([&] { di::class_model(*net, {1, 2, 3}, ok, b.pre); }, "batch of 3");
    expect_input_error([&] { di::class_model(*net, {1}, ok, b.pre); }, "batch of 1");
    expect_input_error([&] { di::class_model(*net, {}, ok, b.pre); }, "no class");
    auto bad = [&](auto change, const std::string& fragment) {
        di::class_model_options o = ok;
        change(o);
        expect_input_error([&] { di::class_model(*net, {1, 2}, o, b.pre); }, fragment);
    };
    bad([](auto& o) { o.steps = -1; }, "steps");
    bad([](auto& o) { o.lr = 0.0f; }, "lr");
    bad([](auto& o) { o.lr = NAN; }, "lr");
    bad([](auto& o) { o.l2 = -1.0f; }, "l2");
    bad([](auto& o) { o.blur_sigma = 1.0f; }, "blur_every");
    bad([](auto& o) { o.blur_sigma = -1.0f; }, "blur sigma");
    bad([](auto& o) { o.blur_sigma = 10.0f, o.blur_every = 1; }, "too large");
    bad([](auto& o) { o.jitter = -1; }, "jitter");
    bad([](auto& o) { o.jitter = 28; }, "jitter");
    di::preprocess_options three = b.pre;
    three.mean = {0.1f, 0.2f, 0.3f};
    expect_input_error([&] { di::class_model(*net, {1, 2}, ok, three); }, "mean has 3 values");
    di::preprocess_options zero_std = b.pre;
    zero_std.std = {0.0f};
    expect_input_error([&] { di::class_model(*net, {1, 2}, ok, zero_std); }, "std");
}

BOOST_AUTO_TEST_SUITE_END()
