// `deepinside class-model` as a user runs it (DEEPINSIDE_BIN): the files and the JSON it promises,
// the same images as the library computes in this process, and one-line refusals that write nothing.
#include "class_model_support.hpp"
#include "support.hpp"

#include <deepinside/io.hpp>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

using namespace class_model_test;
using deepinside::test_support::env;
using deepinside::test_support::rel_l2;
namespace fs = std::filesystem;

namespace {

using methods_test::slurp;
using result = methods_test::run_result;

/// A fresh folder for one case's outputs, removed afterwards.
struct scratch : deepinside::test_support::scratch_dir {
    scratch() : scratch_dir("deepinside-class-model") {}
    std::string path(const std::string& name) const { return file(name); }
};

/// Runs `deepinside class-model ARGS` with stdout and stderr captured in files (so stderr is not a terminal).
result run(const scratch&, const std::string& args) { return methods_test::run_deepinside("class-model " + args); }

/// A refusal: status 1, one line on stderr containing `needle`, no file written.
void expect_refusal(const std::string& args, const std::string& needle) {
    BOOST_TEST_CONTEXT("deepinside class-model " << args) {
        scratch s;
        const result r = run(s, args + " --out " + s.path("out"));
        BOOST_TEST(r.status == 1, "status " << r.status << ", stderr: " << r.err);
        BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, "stderr: " << r.err);
        BOOST_TEST(r.err.find(needle) != std::string::npos, "'" << needle << "' missing from: " << r.err);
        BOOST_TEST(s.entries().empty());
    }
}

auto needs_binary() {
    return boost::unit_test::precondition([](boost::unit_test::test_unit_id) -> boost::test_tools::assertion_result {
        const std::string bin = env("DEEPINSIDE_BIN");
        if (!bin.empty() && fs::exists(bin)) return true;
        boost::test_tools::assertion_result r(false);
        r.message() << "DEEPINSIDE_BIN is not set or absent (build the deepinside target)";
        return r;
    });
}

} // namespace

BOOST_AUTO_TEST_SUITE(class_model_cli)

BOOST_AUTO_TEST_CASE(writes_images_arrays_grid_and_json, *needs_binary()) {
    scratch s;
    const std::string prefix = s.path("out");
    const result r = run(s, bundled_model_path() + " --class 0,3,9 --steps 60 --lr 0.1 --l2 0.05 --out " + prefix);
    BOOST_TEST_REQUIRE(r.status == 0, "stderr: " << r.err);
    BOOST_TEST(r.err.empty(), "stderr is not a terminal, so no progress bar: " << r.err);
    BOOST_TEST(s.entries() == (std::vector<std::string>{"out.0.npy", "out.0.png", "out.3.npy", "out.3.png", "out.9.npy", "out.9.png",
                                                        "out.grid.png", "out.json"}),
               boost::test_tools::per_element());

    // The same ascent through the library, in this process: same network options, same kernels.
    bundled b;
    auto net = b.net(3);
    di::class_model_options o;
    o.steps = 60;
    o.lr = 0.1f;
    o.l2 = 0.05f;
    const auto expected = di::class_model(*net, {0, 3, 9}, o, b.pre);

    const nlohmann::json doc = nlohmann::json::parse(slurp(prefix + ".json"));
    BOOST_TEST_REQUIRE(doc["classes"].size() == 3u);
    const std::vector<int64_t> classes{0, 3, 9};
    const std::vector<std::string> labels{"T-shirt/top", "Dress", "Ankle boot"};
    for (size_t k = 0; k < 3; ++k) {
        BOOST_TEST_CONTEXT("class " << classes[k]) {
            const auto& c = doc["classes"][k];
            BOOST_TEST(c["index"].get<int64_t>() == classes[k]);
            BOOST_TEST(c["label"].get<std::string>() == labels[k]);
            BOOST_TEST(c["score_end"].get<float>() > c["score_start"].get<float>() + 10.0f);
            BOOST_TEST(c["probability_end"].get<float>() > 0.9f);
            BOOST_TEST(c["score_end"].get<float>() == expected.score_end[k], boost::test_tools::tolerance(1e-5f));
            BOOST_TEST(c["probability_start"].get<float>() == expected.probability_start[k], boost::test_tools::tolerance(1e-5f));
            const di::tensor npy = di::read_npy(prefix + "." + std::to_string(classes[k]) + ".npy");
            BOOST_TEST_REQUIRE(npy.shape == (di::shape_t{1, 1, 28, 28}));
            BOOST_TEST(rel_l2(npy, image_of(expected.images, int64_t(k))) < 1e-6);
            // 28x28 is enlarged 4 times (nearest neighbour) to 112x112 for display.
            const di::image png = di::read_image(prefix + "." + std::to_string(classes[k]) + ".png");
            BOOST_TEST(png.width == 112);
            BOOST_TEST(png.height == 112);
            BOOST_TEST(png.channels == 1);
            const di::image direct = di::class_model_image(di::tensor({1, 28, 28}, npy.data), b.pre);
            for (int y = 0; y < 112; y += 5)
                for (int x = 0; x < 112; x += 3)
                    BOOST_REQUIRE_EQUAL(int(png.pixels[size_t(y * 112 + x)]), int(direct.pixels[size_t((y / 4) * 28 + x / 4)]));
        }
    }
    BOOST_TEST(doc["options"]["steps"].get<int>() == 60);
    BOOST_TEST(doc["options"]["lr"].get<float>() == 0.1f);
    BOOST_TEST(doc["options"]["l2"].get<float>() == 0.05f);
    BOOST_TEST(doc["options"]["init"].get<std::string>() == "zero");
    BOOST_TEST(doc["options"]["jitter"].get<int>() == 0);
    BOOST_TEST(doc["steps"].get<int>() == 60);
    BOOST_TEST(doc["time_s"]["ascent"].get<double>() > 0.0);
    BOOST_TEST(doc["display"]["upscale"].get<int>() == 4);
    // Three tiles: 2 columns, 2 rows, 4-pixel gaps.
    const di::image grid = di::read_image(prefix + ".grid.png");
    BOOST_TEST(grid.width == 2 * 112 + 4);
    BOOST_TEST(grid.height == 2 * 112 + 4);
}

BOOST_AUTO_TEST_CASE(all_classes_and_a_single_class, *needs_binary()) {
    scratch s;
    const result all = run(s, bundled_model_path() + " --class all --steps 5 --init noise --seed 3 --jitter 1 --blur 0.5 --out " +
                                  s.path("all"));
    BOOST_TEST_REQUIRE(all.status == 0, "stderr: " << all.err);
    const nlohmann::json doc = nlohmann::json::parse(slurp(s.path("all.json")));
    BOOST_TEST(doc["classes"].size() == 10u);
    BOOST_TEST(doc["options"]["blur_every"].get<int>() == 4); // --blur-every's default with --blur
    BOOST_TEST(doc["options"]["init"].get<std::string>() == "noise");
    for (int c = 0; c < 10; ++c) BOOST_TEST(fs::exists(s.path("all." + std::to_string(c) + ".png")));
    const di::image grid = di::read_image(s.path("all.grid.png")); // 4 columns, 3 rows
    BOOST_TEST(grid.width == 4 * 112 + 3 * 4);
    BOOST_TEST(grid.height == 3 * 112 + 2 * 4);

    const result one = run(s, bundled_model_path() + " --class 5 --steps 3 --out " + s.path("one"));
    BOOST_TEST_REQUIRE(one.status == 0, "stderr: " << one.err);
    BOOST_TEST(!fs::exists(s.path("one.grid.png")));
    BOOST_TEST(fs::exists(s.path("one.5.png")));
    BOOST_TEST(fs::exists(s.path("one.json")));
}

BOOST_AUTO_TEST_CASE(bad_options_are_refused_before_anything_is_written, *needs_binary()) {
    const std::string m = bundled_model_path();
    // Refused before the model loads (a missing model would be named otherwise).
    const std::string missing = "/nonexistent/model.onnx";
    expect_refusal(missing + " --class 1 --init random", "--init");
    expect_refusal(missing + " --class x", "--class");
    expect_refusal(missing + " --class -1", "negative");
    expect_refusal(missing + " --class 2,2", "twice");
    expect_refusal(missing + " --class 1 --lr 0", "--lr");
    expect_refusal(missing + " --class 1 --l2 -1", "--l2");
    expect_refusal(missing + " --class 1 --steps -3", "--steps");
    expect_refusal(missing + " --class 1 --blur-every 2", "--blur");
    expect_refusal(missing + " --class 1 --size 28", "--size");
    expect_refusal(missing + " --class 1 --threads 0", "--threads");
    // Refused once the model is known.
    expect_refusal(m + " --class 10", "class 10 is out of range");
    expect_refusal(m + " --class 1 --size 32x32", "--size 32x32");
    expect_refusal(m + " --class 1 --jitter 28", "jitter");
    expect_refusal(m + " --class 1 --blur 20", "too large");
}

BOOST_AUTO_TEST_CASE(an_open_spatial_size_needs_size, *needs_binary() * deepinside::test_support::needs_python("onnx")) {
    scratch s;
    const std::string open_model = s.path("open.onnx");
    const std::string script = "import onnx\nm = onnx.load('" + bundled_model_path() +
                               "')\nd = m.graph.input[0].type.tensor_type.shape.dim\nd[2].dim_param = 'h'\nd[3].dim_param = 'w'\n"
                               "onnx.save(m, '" + open_model + "')\n";
    std::ofstream(s.path("make.py")) << script;
    BOOST_TEST_REQUIRE(std::system((std::string(env("DEEPINSIDE_PYTHON")) + " " + s.path("make.py")).c_str()) == 0);
    fs::remove(s.path("make.py"));
    const result refused = run(s, open_model + " --class 1 --out " + s.path("out"));
    BOOST_TEST(refused.status == 1);
    BOOST_TEST(refused.err.find("--size") != std::string::npos, refused.err);
    BOOST_TEST(!fs::exists(s.path("out.json")));
    const result ok = run(s, open_model + " --class 1 --steps 2 --size 28x28 --out " + s.path("out"));
    BOOST_TEST(ok.status == 0, ok.err);
    BOOST_TEST(fs::exists(s.path("out.1.npy")));
}

BOOST_AUTO_TEST_SUITE_END()
