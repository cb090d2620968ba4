#include "io/support.hpp"

#include <deepinside/io.hpp>

#include <cmath>
#include <random>

using namespace deepinside;
using io_test::check_throws;
using io_test::scratch_dir;

namespace {

preprocess_options identity() {
    preprocess_options o;
    o.scale = 1.0f;
    return o;
}

image grey(int width, int height, std::vector<uint8_t> pixels) { return {width, height, 1, std::move(pixels)}; }

void check_close(const std::vector<float>& got, const std::vector<float>& expected, float tolerance) {
    BOOST_REQUIRE_EQUAL(got.size(), expected.size());
    for (size_t i = 0; i < got.size(); ++i)
        BOOST_TEST(std::abs(got[i] - expected[i]) <= tolerance, "element " << i << ": " << got[i] << " vs " << expected[i]);
}

} // namespace

BOOST_AUTO_TEST_SUITE(preprocess)

BOOST_AUTO_TEST_CASE(bilinear_upscale_by_hand) {
    // Half-pixel centres, 2 -> 4: destination x maps to 0.5 * (x + 0.5) - 0.5 = -0.25 (clamped
    // to 0), 0.25, 0.75, 1.25 (beyond the last pixel: the last pixel). Row [0, 100] gives
    // [0, 25, 75, 100], row [200, 40] gives [200, 160, 80, 40]; rows mix with 1, .75/.25, .25/.75, 1.
    const tensor t = image_to_tensor(grey(2, 2, {0, 100, 200, 40}), 1, 4, 4, identity());
    BOOST_TEST(t.shape == (shape_t{1, 1, 4, 4}));
    check_close(t.data,
                {0, 25, 75, 100,             //
                 50, 58.75f, 76.25f, 85,     //
                 150, 126.25f, 78.75f, 55,   //
                 200, 160, 80, 40},
                1e-4f);
}

BOOST_AUTO_TEST_CASE(bilinear_downscale_and_identity_by_hand) {
    // 4 -> 2: destination x maps to 2 * (x + 0.5) - 0.5 = 0.5, 2.5: the mean of neighbours.
    check_close(image_to_tensor(grey(4, 1, {10, 20, 40, 80}), 1, 1, 2, identity()).data, {15, 60}, 1e-5f);
    // 3 -> 2 in x: 1.5 * (x + 0.5) - 0.5 = 0.25, 1.75: .75*0 + .25*100, .25*100 + .75*40.
    check_close(image_to_tensor(grey(3, 1, {0, 100, 40}), 1, 1, 2, identity()).data, {25, 55}, 1e-4f);
    // Same size: unchanged.
    check_close(image_to_tensor(grey(3, 2, {1, 2, 3, 4, 5, 6}), 1, 2, 3, identity()).data, {1, 2, 3, 4, 5, 6}, 0);
}

BOOST_AUTO_TEST_CASE(channels_order_and_normalisation) {
    const image rgb{1, 1, 3, {10, 20, 30}};
    preprocess_options o = identity();
    o.mean = {1, 2, 3};
    o.std = {1, 2, 4};
    check_close(image_to_tensor(rgb, 3, 1, 1, o).data, {9, 9, 6.75f}, 1e-6f);
    o.bgr = true; // channel 0 is blue; mean and std follow the model's channel order
    check_close(image_to_tensor(rgb, 3, 1, 1, o).data, {29, 9, 1.75f}, 1e-6f);

    // RGB -> grey by BT.601 luma: 0.299 * 100 + 0.587 * 200 + 0.114 * 50 = 153.
    check_close(image_to_tensor(image{1, 1, 3, {100, 200, 50}}, 1, 1, 1, identity()).data, {153}, 1e-4f);
    // Grey -> RGB by replication, whatever the order.
    o = identity();
    o.bgr = true;
    check_close(image_to_tensor(grey(1, 1, {77}), 3, 1, 1, o).data, {77, 77, 77}, 0);

    // The defaults: pixel / 255.
    check_close(image_to_tensor(grey(2, 1, {0, 255}), 1, 1, 2, preprocess_options{}).data, {0, 1}, 1e-7f);
    // ImageNet-style: (x / 255 - mean) / std, one mean and std for every channel.
    preprocess_options imagenet;
    imagenet.mean = {0.5f};
    imagenet.std = {0.25f};
    check_close(image_to_tensor(image{1, 1, 3, {255, 0, 51}}, 3, 1, 1, imagenet).data, {2, -2, -1.2f}, 1e-5f);
}

BOOST_AUTO_TEST_CASE(rejects_bad_requests) {
    const image img = grey(2, 2, {1, 2, 3, 4});
    check_throws<input_error>([&] { image_to_tensor(img, 2, 4, 4, identity()); }, {"2 channels"});
    check_throws<input_error>([&] { image_to_tensor(img, 1, 0, 4, identity()); }, {"not positive"});
    check_throws<input_error>([&] { image_to_tensor(img, 1, 1 << 20, 1 << 20, identity()); }, {"too large"});
    preprocess_options o = identity();
    o.mean = {0, 0};
    check_throws<input_error>([&] { image_to_tensor(img, 3, 4, 4, o); }, {"mean has 2 values"});
    o = identity();
    o.std = {1, 0, 1};
    check_throws<input_error>([&] { image_to_tensor(img, 3, 4, 4, o); }, {"std", "zero"});
    image broken = img;
    broken.pixels.pop_back();
    check_throws<input_error>([&] { image_to_tensor(broken, 1, 4, 4, identity()); }, {"bytes"});
}

BOOST_AUTO_TEST_CASE(metadata) {
    preprocess_options defaults;
    defaults.scale = 0.5f;
    const preprocess_options same = preprocess_from_metadata({{"other", "x"}}, defaults);
    BOOST_TEST(same.scale == 0.5f);
    BOOST_TEST(same.mean == std::vector<float>{0.0f});
    BOOST_TEST(!same.bgr);

    const preprocess_options o = preprocess_from_metadata({{"deepinside.mean", "0.485,0.456, 0.406"},
                                                           {"deepinside.std", "0.229,0.224,0.225"},
                                                           {"deepinside.scale", "1"},
                                                           {"deepinside.channel_order", "BGR"}},
                                                          defaults);
    BOOST_TEST(o.mean == (std::vector<float>{0.485f, 0.456f, 0.406f}), boost::test_tools::per_element());
    BOOST_TEST(o.std == (std::vector<float>{0.229f, 0.224f, 0.225f}), boost::test_tools::per_element());
    BOOST_TEST(o.scale == 1.0f);
    BOOST_TEST(o.bgr);

    const std::vector<std::pair<std::string, std::string>> bad = {
        {"deepinside.mean", ""},          {"deepinside.mean", "0.4,,0.5"}, {"deepinside.mean", "abc"},
        {"deepinside.mean", "1 2"},       {"deepinside.mean", "nan"},      {"deepinside.mean", "0.5,"},
        {"deepinside.std", "0.2,0,0.2"},  {"deepinside.std", "inf"},       {"deepinside.scale", "1,2"},
        {"deepinside.scale", "0x1p3z"},   {"deepinside.channel_order", "GRB"}, {"deepinside.channel_order", ""},
    };
    for (const auto& [key, value] : bad) {
        BOOST_TEST_CONTEXT(key << " = '" << value << "'") {
            check_throws<input_error>([&] { preprocess_from_metadata({{key, value}}, defaults); }, {key});
        }
    }
}

BOOST_AUTO_TEST_CASE(matches_torchvision_resize, *deepinside::test_support::needs_python("numpy torch torchvision")) {
    scratch_dir dir;
    std::mt19937 rng(17);
    image img{17, 13, 3, {}};
    for (int i = 0; i < 17 * 13 * 3; ++i) img.pixels.push_back(uint8_t(rng()));
    tensor hwc({13, 17, 3});
    for (size_t i = 0; i < img.pixels.size(); ++i) hwc.data[i] = img.pixels[i];
    write_npy(dir.file("img.npy"), hwc);

    const std::vector<std::pair<int, int>> sizes = {{7, 9}, {31, 40}, {5, 40}, {13, 17}, {1, 1}};
    std::string script = R"(
import numpy as np, torch
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode
x = torch.from_numpy(np.load('img.npy')).permute(2, 0, 1).contiguous()
)";
    for (const auto& [h, w] : sizes)
        script += "np.save('out_" + std::to_string(h) + "x" + std::to_string(w) + ".npy', F.resize(x, [" + std::to_string(h) +
                  ", " + std::to_string(w) + "], interpolation=InterpolationMode.BILINEAR, antialias=False).unsqueeze(0).numpy())\n";
    BOOST_REQUIRE_MESSAGE(io_test::run_python(dir, script), "the torchvision script failed");

    for (const auto& [h, w] : sizes) {
        BOOST_TEST_CONTEXT(h << "x" << w) {
            const tensor ref = read_npy(dir.file("out_" + std::to_string(h) + "x" + std::to_string(w) + ".npy"));
            const tensor got = image_to_tensor(img, 3, h, w, identity());
            BOOST_TEST(got.shape == ref.shape);
            check_close(got.data, ref.data, 1e-3f);
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
