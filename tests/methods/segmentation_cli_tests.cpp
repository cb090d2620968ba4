// `deepinside segment` as a user meets it: the files and JSON it promises on the bundled model and
// images, and a bad option refused with one line, status 1 and nothing written.
#include "support.hpp"

#include <deepinside/io.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace di = deepinside;
using methods_test::needs_deepinside_bin;
using methods_test::run_deepinside;
using methods_test::scratch_dir;

namespace {

std::string model() { return (methods_test::source_dir() / "models/fashion-mnist-convnet.onnx").string(); }
std::string bundled_image(const char* name) { return (methods_test::source_dir() / "models/images" / name).string(); }

} // namespace

BOOST_AUTO_TEST_SUITE(segment_command)

BOOST_AUTO_TEST_CASE(one_image_one_class, *needs_deepinside_bin()) {
    scratch_dir dir;
    const std::string image = bundled_image("0000-ankle-boot.png");
    const auto r =
        run_deepinside("segment '" + model() + "' '" + image + "' --threads 1 --out '" + dir.file("out") + "'");
    BOOST_TEST_REQUIRE(r.status == 0, "stderr: " << r.err);
    BOOST_TEST(r.err.empty());
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 1, "stdout: " << r.out);
    BOOST_TEST(
        (dir.entries() == std::vector<std::string>{"out.json", "out.mask.png", "out.overlay.png", "out.seeds.png"}));

    const auto json = nlohmann::json::parse(methods_test::slurp(dir.file("out.json")));
    BOOST_TEST(json["method"] == "gradient");
    BOOST_TEST(json["options"]["fg_quantile"] == 0.95);
    BOOST_TEST(json["options"]["gamma"] == 150.0);
    BOOST_REQUIRE_EQUAL(json["results"].size(), 1u);
    const auto& res = json["results"][0];
    BOOST_TEST(res["image"] == image);
    BOOST_TEST(res["class"] == 9); // the bundled model calls the ankle boot an ankle boot
    BOOST_TEST(res["label"].get<std::string>().size() > 0);
    const auto& box = res["box"];
    BOOST_TEST_REQUIRE(box.is_object());
    BOOST_TEST(box["x0"].get<int>() >= 0);
    BOOST_TEST(box["x0"].get<int>() < box["x1"].get<int>());
    BOOST_TEST(box["y0"].get<int>() < box["y1"].get<int>());
    BOOST_TEST(box["x1"].get<int>() <= 28);
    BOOST_TEST(res["box_original"] == box); // 28x28 image, 28x28 input
    BOOST_TEST(res["mask_area"].get<double>() > 0.0);
    BOOST_TEST(res["mask_area"].get<double>() <= 1.0);
    BOOST_TEST(res["thresholds"]["fg"].get<double>() > res["thresholds"]["bg"].get<double>());

    const di::image mask = di::read_image(dir.file("out.mask.png"));
    BOOST_TEST(mask.width == 28);
    BOOST_TEST(mask.channels == 1);
    const di::image seeds = di::read_image(dir.file("out.seeds.png"));
    BOOST_TEST(seeds.channels == 3);
}

BOOST_AUTO_TEST_CASE(two_images_top_two, *needs_deepinside_bin()) {
    scratch_dir dir;
    const auto r = run_deepinside("segment '" + model() + "' '" + bundled_image("0001-pullover.png") + "' '" +
                                  bundled_image("0002-trouser.png") + "' --top 2 --method guided --threads 1 --out '" +
                                  dir.file("out") + "'");
    BOOST_TEST_REQUIRE(r.status == 0, "stderr: " << r.err);
    BOOST_TEST(std::count(r.out.begin(), r.out.end(), '\n') == 2, "stdout: " << r.out);
    const auto json = nlohmann::json::parse(methods_test::slurp(dir.file("out.json")));
    BOOST_REQUIRE_EQUAL(json["results"].size(), 4u);
    BOOST_TEST(json["method"] == "guided");
    for (const auto& res : json["results"]) {
        const std::string stem =
            res["image"].get<std::string>().find("pullover") != std::string::npos ? "0001-pullover" : "0002-trouser";
        const std::string prefix = dir.file("out." + stem + "." + std::to_string(res["class"].get<int>()));
        BOOST_TEST(res["files"]["mask"] == prefix + ".mask.png");
        for (const char* kind : {".mask.png", ".seeds.png", ".overlay.png"})
            BOOST_TEST(std::filesystem::exists(prefix + kind), prefix + kind);
        BOOST_TEST(res["box"].is_object());
    }
    BOOST_TEST(json["results"][0]["rank"] == 0);
    BOOST_TEST(json["results"][1]["rank"] == 1);
    BOOST_TEST(dir.entries().size() == 13u); // 2 images x 2 classes x 3 pictures + the JSON
}

BOOST_AUTO_TEST_CASE(bad_options_write_nothing, *needs_deepinside_bin()) {
    scratch_dir dir;
    const std::string image = bundled_image("0000-ankle-boot.png");
    const struct {
        std::string args, needle;
    } cases[] = {
        {"--fg-quantile 1.5", "--fg-quantile"},
        {"--bg-quantile 0.97", "--bg-quantile"},
        {"--clamp-high 0.9", "--clamp-high"},
        {"--components 0", "--components"},
        {"--gamma -3", "--gamma"},
        {"--method sideways", "sideways"},
        {"--top 0", "--top"},
        {"--class 3 --top 2", "excludes"},
        {"--class 10", "out of range"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.args) {
            const auto r = run_deepinside("segment '" + model() + "' '" + image + "' " + c.args +
                                          " --threads 1 --out '" + dir.file("out") + "'");
            BOOST_TEST(r.status == 1, "stderr: " << r.err);
            BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, "stderr: " << r.err);
            BOOST_TEST(r.err.find(c.needle) != std::string::npos, "stderr: " << r.err);
            BOOST_TEST(dir.entries().empty());
        }
    }
    // A missing image is named, before the model loads.
    const auto r =
        run_deepinside("segment '" + model() + "' '" + dir.file("absent.png") + "' --out '" + dir.file("out") + "'");
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("absent.png") != std::string::npos, "stderr: " << r.err);
    BOOST_TEST(dir.entries().empty());
}

BOOST_AUTO_TEST_SUITE_END()
