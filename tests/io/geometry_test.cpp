// Picture geometry before image_to_tensor: resize_image with and without antialiasing, crop_center,
// prepare_image, and the ImageNet preset against PIL and torchvision.
#include "io/support.hpp"

#include <deepinside/io.hpp>

#include <cmath>
#include <random>
#include <sstream>

using namespace deepinside;
using io_test::check_throws;
using io_test::scratch_dir;
using shrink_mode = geometry_options::resize_mode;

namespace {

image numbered_image(int width, int height, int channels) {
    image img{width, height, channels, std::vector<uint8_t>(size_t(width * height * channels))};
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t(i % 251);
    return img;
}

image noise_image(int width, int height, int channels, uint32_t seed) {
    std::mt19937 rng(seed);
    image img{width, height, channels, std::vector<uint8_t>(size_t(width * height * channels))};
    for (uint8_t& p : img.pixels) p = uint8_t(rng() & 0xff);
    return img;
}

/// A deterministic picture with what photos have: smooth shading, sharp edges, fine texture and
/// sensor-like noise (the checks need no photo file; a real photo's statistics are what matter).
image photo_like_image(int width, int height) {
    std::mt19937 rng(2024);
    std::normal_distribution<double> noise(0.0, 6.0);
    image img{width, height, 3, std::vector<uint8_t>(size_t(width * height * 3))};
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x) {
            const double u = double(x) / width, v = double(y) / height;
            double r = 70 + 120 * v, g = 110 + 80 * u * v, b = 200 - 150 * v; // sky-to-ground shading
            const double dx = x - 0.62 * width, dy = y - 0.55 * height;
            if (dx * dx + dy * dy < 0.09 * width * height) { // a disc with a hard edge and stripes
                r = 210 + 40 * std::sin(x * 0.9);
                g = 120 + 60 * std::sin(y * 1.7);
                b = 40;
            }
            if (x > width / 5 && x < width / 3 && y > height / 3) { // a dark post with a fine texture
                r = g = b = 40 + 30 * ((x + y) % 3);
            }
            const double rgb[3] = {r, g, b};
            for (int c = 0; c < 3; ++c)
                img.pixels[size_t((y * width + x) * 3 + c)] =
                    uint8_t(std::clamp(std::lround(rgb[c] + noise(rng)), 0L, 255L));
        }
    return img;
}

image image_from_npy(const tensor& t) {
    BOOST_REQUIRE_EQUAL(t.shape.size(), 3u);
    image img{int(t.shape[1]), int(t.shape[0]), int(t.shape[2]), std::vector<uint8_t>(t.data.size())};
    for (size_t i = 0; i < t.data.size(); ++i) img.pixels[i] = uint8_t(t.data[i]);
    return img;
}

int max_abs_diff(const image& a, const image& b) {
    BOOST_REQUIRE_EQUAL(a.pixels.size(), b.pixels.size());
    int worst = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
    return worst;
}

} // namespace

BOOST_AUTO_TEST_SUITE(geometry)

BOOST_AUTO_TEST_CASE(antialiased_resize_by_hand) {
    // [0, 0, 255, 255] halved. PIL's triangle, stretched to support 2, centred on 1 and 3:
    // out0 = 255 * 0.25 / 1.75 = 36.4, out1 = 255 * (0.75 + 0.75) / 1.75 = 218.6.
    const image step{4, 1, 1, {0, 0, 255, 255}};
    BOOST_TEST(resize_image(step, 2, 1, true).pixels == (std::vector<uint8_t>{36, 219}));
    // Without the prefilter, half-pixel centres fall between two equal pixels: no blur at all.
    BOOST_TEST(resize_image(step, 2, 1).pixels == (std::vector<uint8_t>{0, 255}));
    // The same along the height, on every channel.
    const image column{1, 4, 3, {0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255}};
    BOOST_TEST(resize_image(column, 1, 2, true).pixels == (std::vector<uint8_t>{36, 36, 36, 219, 219, 219}));
    // Same size: unchanged.
    const image img = numbered_image(7, 5, 3);
    BOOST_TEST(resize_image(img, 7, 5, true).pixels == img.pixels);
    BOOST_TEST(resize_image(img, 7, 5).pixels == img.pixels);
}

BOOST_AUTO_TEST_CASE(antialiased_resize_matches_pil, *deepinside::test_support::needs_python("numpy PIL")) {
    scratch_dir dir;
    struct resize_case {
        int width, height, channels, to_width, to_height;
    };
    const std::vector<resize_case> cases = {
        {64, 48, 3, 16, 12}, {64, 48, 1, 21, 13},
        {50, 37, 3, 7, 5},   {31, 17, 3, 62, 40}, // shrink, odd factors, grow
        {40, 30, 3, 13, 45}, {500, 375, 3, 341, 256},
        {9, 200, 1, 3, 7},   {3, 2, 3, 1, 1}, // mixed, ImageNet-like, extreme
    };
    std::ostringstream script;
    script << "import numpy as np\nfrom PIL import Image\n";
    for (size_t i = 0; i < cases.size(); ++i) {
        const resize_case& c = cases[i];
        const image src = c.width == 500 ? photo_like_image(c.width, c.height)
                                         : noise_image(c.width, c.height, c.channels, uint32_t(i + 1));
        write_png(dir.file("src" + std::to_string(i) + ".png"), src);
        script << "a = Image.open('src" << i << ".png').resize((" << c.to_width << ", " << c.to_height
               << "), Image.BILINEAR)\nnp.save('pil" << i << ".npy', np.asarray(a, dtype=np.float32).reshape("
               << c.to_height << ", " << c.to_width << ", " << c.channels << "))\n";
    }
    BOOST_REQUIRE(io_test::run_python(dir, script.str()));
    for (size_t i = 0; i < cases.size(); ++i) {
        const resize_case& c = cases[i];
        BOOST_TEST_CONTEXT("case " << i << ": " << c.width << "x" << c.height << "x" << c.channels << " -> "
                                   << c.to_width << "x" << c.to_height) {
            const image ours =
                resize_image(read_image(dir.file("src" + std::to_string(i) + ".png")), c.to_width, c.to_height, true);
            const image pil = image_from_npy(read_npy(dir.file("pil" + std::to_string(i) + ".npy")));
            BOOST_TEST(ours.width == pil.width);
            BOOST_TEST(ours.height == pil.height);
            const int worst = max_abs_diff(ours, pil);
            BOOST_TEST_MESSAGE("case " << i << ": largest difference from PIL " << worst << " grey levels");
            BOOST_TEST(worst <= 1, "largest difference from PIL: " << worst);
        }
    }
}

BOOST_AUTO_TEST_CASE(crop_center_by_hand) {
    const image img = numbered_image(5, 4, 1); // pixel (x, y) = 5 y + x
    // Excess 2 and 2: the window starts at 1 on both axes.
    BOOST_TEST(crop_center(img, 3, 2).pixels == (std::vector<uint8_t>{6, 7, 8, 11, 12, 13}));
    // Excess 3 along x: round(1.5) = 2 (half to even); excess 1 along y: round(0.5) = 0.
    BOOST_TEST(crop_center(numbered_image(4, 2, 1), 1, 1).pixels == (std::vector<uint8_t>{2}));
    BOOST_TEST(crop_center(numbered_image(1, 4, 1), 1, 3).pixels == (std::vector<uint8_t>{0, 1, 2}));
    // Excess 5: round(2.5) = 2.
    BOOST_TEST(crop_center(numbered_image(6, 1, 1), 1, 1).pixels == (std::vector<uint8_t>{2}));
    // Larger than the image: zero padding, (5 - 2) / 2 = 1 column before, 2 after; rows 3 - 2: 0 before, 1 after.
    const image two{2, 2, 1, {10, 20, 30, 40}};
    BOOST_TEST(crop_center(two, 5, 3).pixels ==
               (std::vector<uint8_t>{0, 10, 20, 0, 0, 0, 30, 40, 0, 0, 0, 0, 0, 0, 0}));
    // Larger on one axis only: padded along x, cropped along y (excess 2: start 1).
    const image tall = numbered_image(1, 5, 3);
    BOOST_TEST(crop_center(tall, 3, 3).pixels == (std::vector<uint8_t>{0, 0, 0, 3, 4, 5, 0, 0, 0,  0,  0, 0, 6, 7,
                                                                       8, 0, 0, 0, 0, 0, 0, 9, 10, 11, 0, 0, 0}));
    check_throws<input_error>([&] { crop_center(img, 0, 2); }, {"crop_center", "0x2"});
    check_throws<input_error>([&] { crop_center(image{2, 2, 2, {}}, 1, 1); }, {"crop_center", "channels"});
}

BOOST_AUTO_TEST_CASE(crop_center_matches_torchvision,
                     *deepinside::test_support::needs_python("numpy PIL torchvision")) {
    scratch_dir dir;
    const image src = noise_image(9, 6, 3, 5);
    write_png(dir.file("src.png"), src);
    const std::vector<std::pair<int, int>> crops = {{4, 4}, {5, 3}, {8, 1}, {9, 6}, {12, 6}, {11, 9}, {3, 10}, {1, 1}};
    std::ostringstream script;
    script << "import numpy as np\nfrom PIL import Image\nfrom torchvision import transforms\nimg = "
              "Image.open('src.png')\n";
    for (size_t i = 0; i < crops.size(); ++i)
        script << "np.save('crop" << i << ".npy', np.asarray(transforms.CenterCrop((" << crops[i].second << ", "
               << crops[i].first << "))(img), dtype=np.float32))\n";
    BOOST_REQUIRE(io_test::run_python(dir, script.str()));
    for (size_t i = 0; i < crops.size(); ++i) BOOST_TEST_CONTEXT("crop " << crops[i].first << "x" << crops[i].second) {
            const image theirs = image_from_npy(read_npy(dir.file("crop" + std::to_string(i) + ".npy")));
            BOOST_TEST(crop_center(src, crops[i].first, crops[i].second).pixels == theirs.pixels);
        }
}

BOOST_AUTO_TEST_CASE(prepare_stretch_and_open_sizes) {
    const image img = numbered_image(10, 6, 3);
    const prepared_image p = prepare_image(img, {}, 4, 3);
    BOOST_TEST(p.fed.pixels == resize_image(img, 4, 3).pixels);
    BOOST_TEST(p.fed.width == 4);
    BOOST_TEST(p.fed.height == 3);
    BOOST_TEST((p.x0 == 0 && p.y0 == 0 && p.x1 == 10 && p.y1 == 6));
    geometry_options smooth;
    smooth.antialias = true;
    BOOST_TEST(prepare_image(img, smooth, 4, 3).fed.pixels == resize_image(img, 4, 3, true).pixels);
    // Already the network's size, or a fully open size: the picture itself.
    BOOST_TEST(prepare_image(img, {}, 10, 6).fed.pixels == img.pixels);
    BOOST_TEST(prepare_image(img, {}, -1, -1).fed.pixels == img.pixels);
    // One open side keeps the picture's size on that side.
    const prepared_image half_open = prepare_image(img, {}, -1, 3);
    BOOST_TEST(half_open.fed.width == 10);
    BOOST_TEST(half_open.fed.height == 3);
    BOOST_TEST(half_open.fed.pixels == resize_image(img, 10, 3).pixels);
    // Stretch then crop where the network leaves the size open.
    geometry_options cropped;
    cropped.crop_width = 6;
    cropped.crop_height = 2;
    const prepared_image c = prepare_image(img, cropped, -1, -1);
    BOOST_TEST(c.fed.pixels == crop_center(img, 6, 2).pixels);
    BOOST_TEST((c.x0 == 2 && c.x1 == 8 && c.y0 == 2 && c.y1 == 4));
}

BOOST_AUTO_TEST_CASE(prepare_shorter_side_and_crop) {
    // 500x375 with shorter side 256: 256 high, int(256 * 500 / 375) = int(341.33) = 341 wide.
    const image img = numbered_image(500, 375, 3);
    geometry_options g;
    g.resize = shrink_mode::shorter;
    g.shorter_side = 256;
    g.antialias = true;
    const prepared_image resized = prepare_image(img, g, -1, -1);
    BOOST_TEST(resized.fed.width == 341);
    BOOST_TEST(resized.fed.height == 256);
    BOOST_TEST(resized.fed.pixels == resize_image(img, 341, 256, true).pixels);
    BOOST_TEST((resized.x0 == 0 && resized.y0 == 0 && resized.x1 == 500 && resized.y1 == 375));
    // Portrait: the width is the shorter side. 300x700 -> 128 x int(128 * 700 / 300) = 128 x 298.
    const prepared_image portrait =
        prepare_image(numbered_image(300, 700, 1), {shrink_mode::shorter, 128, 0, 0, false}, -1, -1);
    BOOST_TEST(portrait.fed.width == 128);
    BOOST_TEST(portrait.fed.height == 298);
    // Square: both sides.
    const prepared_image square =
        prepare_image(numbered_image(50, 50, 1), {shrink_mode::shorter, 20, 0, 0, true}, 20, 20);
    BOOST_TEST((square.fed.width == 20 && square.fed.height == 20));

    // Then the 224 centre crop: left = round((341 - 224) / 2) = round(58.5) = 58, top = round(16) = 16.
    g.crop_width = g.crop_height = 224;
    const prepared_image p = prepare_image(img, g, 224, 224);
    BOOST_TEST(p.fed.pixels == crop_center(resize_image(img, 341, 256, true), 224, 224).pixels);
    const double sx = 500.0 / 341, sy = 375.0 / 256;
    BOOST_TEST(p.x0 == 58 * sx, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(p.x1 == (58 + 224) * sx, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(p.y0 == 16 * sy, boost::test_tools::tolerance(1e-12));
    BOOST_TEST(p.y1 == (16 + 224) * sy, boost::test_tools::tolerance(1e-12));
    // An open network size takes the crop's.
    BOOST_TEST(prepare_image(img, g, -1, -1).fed.pixels == p.fed.pixels);
    BOOST_TEST(prepare_image(img, g, 224, -1).fed.pixels == p.fed.pixels);
}

BOOST_AUTO_TEST_CASE(prepare_without_resize) {
    const image img = numbered_image(3, 3, 1);
    geometry_options g;
    g.resize = shrink_mode::none;
    BOOST_TEST(prepare_image(img, g, -1, -1).fed.pixels == img.pixels);
    BOOST_TEST(prepare_image(img, g, 3, 3).fed.pixels == img.pixels);
    // A crop larger than the picture pads it; the region reaches outside the picture.
    g.crop_width = g.crop_height = 5;
    const prepared_image p = prepare_image(img, g, 5, 5);
    BOOST_TEST(p.fed.pixels == crop_center(img, 5, 5).pixels);
    BOOST_TEST((p.x0 == -1 && p.y0 == -1 && p.x1 == 4 && p.y1 == 4));
}

BOOST_AUTO_TEST_CASE(prepare_refuses_nonsense) {
    const image img = numbered_image(8, 6, 3);
    geometry_options shorter;
    shorter.resize = shrink_mode::shorter;
    check_throws<input_error>([&] { prepare_image(img, shorter, 4, 4); }, {"image geometry", "shorter side", "got 0"});
    geometry_options stray;
    stray.shorter_side = 256;
    check_throws<input_error>([&] { prepare_image(img, stray, 4, 4); }, {"shorter side (256)", "'stretch'"});
    geometry_options one_sided;
    one_sided.crop_width = 4;
    check_throws<input_error>([&] { prepare_image(img, one_sided, -1, -1); }, {"centre crop 4x0", "both sides"});
    geometry_options negative;
    negative.crop_width = -4;
    negative.crop_height = 4;
    check_throws<input_error>([&] { prepare_image(img, negative, -1, -1); }, {"centre crop -4x4"});
    check_throws<input_error>([&] { prepare_image(img, {}, 0, 4); }, {"network input size 0x4", "-1"});
    check_throws<input_error>([&] { prepare_image(img, {}, 4, -2); }, {"network input size 4x-2"});
    // The result must be the network's size: both sizes are named.
    shorter.shorter_side = 256;
    shorter.crop_width = shorter.crop_height = 200;
    check_throws<input_error>(
        [&] { prepare_image(img, shorter, 224, 224); },
        {"'shorter'", "200x200 centre crop", "8x6 picture into 200x200", "network takes 224x224"});
    geometry_options stretch_crop;
    stretch_crop.crop_width = stretch_crop.crop_height = 2;
    check_throws<input_error>([&] { prepare_image(img, stretch_crop, 4, 4); }, {"into 2x2", "network takes 4x4"});
    geometry_options none;
    none.resize = shrink_mode::none;
    check_throws<input_error>([&] { prepare_image(img, none, 8, 5); },
                              {"'none'", "8x6 picture into 8x6", "network takes 8x5"});
    shorter.crop_width = shorter.crop_height = 0;
    shorter.shorter_side = 1 << 20;
    check_throws<input_error>([&] { prepare_image(img, shorter, -1, -1); }, {"image geometry", "pixels"});
    check_throws<input_error>([&] { prepare_image(image{0, 0, 3, {}}, {}, 4, 4); }, {"prepare_image", "0x0"});
}

BOOST_AUTO_TEST_CASE(imagenet_preset_matches_torchvision,
                     *deepinside::test_support::needs_python("numpy PIL torch torchvision")) {
    scratch_dir dir;
    const image photo = photo_like_image(500, 375);
    write_png(dir.file("photo.png"), photo);
    BOOST_REQUIRE(io_test::run_python(dir, R"(
import numpy as np
from PIL import Image
from torchvision import transforms
img = Image.open('photo.png').convert('RGB')
geometry = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
np.save('fed.npy', np.asarray(geometry(img), dtype=np.float32))
full = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor(),
                           transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
np.save('input.npy', full(img).unsqueeze(0).numpy().astype(np.float32))
)"));
    geometry_options g;
    g.resize = shrink_mode::shorter;
    g.shorter_side = 256;
    g.crop_width = g.crop_height = 224;
    g.antialias = true;
    const prepared_image p = prepare_image(photo, g, 224, 224);
    const int fed_difference = max_abs_diff(p.fed, image_from_npy(read_npy(dir.file("fed.npy"))));
    BOOST_TEST_MESSAGE("fed picture vs torchvision Resize(256) + CenterCrop(224): largest difference "
                       << fed_difference << " grey levels");
    BOOST_TEST(fed_difference <= 1);

    preprocess_options normalise;
    normalise.mean = {0.485f, 0.456f, 0.406f};
    normalise.std = {0.229f, 0.224f, 0.225f};
    const tensor ours = image_to_tensor(p.fed, 3, 224, 224, normalise);
    const tensor theirs = read_npy(dir.file("input.npy"));
    BOOST_REQUIRE(theirs.shape == ours.shape);
    double worst = 0, total = 0;
    for (size_t i = 0; i < ours.data.size(); ++i) {
        const double d = std::fabs(double(ours.data[i]) - double(theirs.data[i]));
        worst = std::max(worst, d);
        total += d;
    }
    const double mean = total / double(ours.data.size());
    BOOST_TEST_MESSAGE("ImageNet preset vs torchvision: largest difference " << worst << ", mean " << mean);
    BOOST_TEST(worst <= 1.0 / 255 / 0.225, "largest difference " << worst);
    BOOST_TEST(mean <= 1e-3, "mean difference " << mean);
}

BOOST_AUTO_TEST_SUITE_END()
