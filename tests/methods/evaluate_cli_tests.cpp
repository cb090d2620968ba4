// deepinside evaluate on the bundled shapes model and a small held-out split made by the project's own
// generator: the schema, the paper's claim that saliency + GraphCut beats the baselines, the
// randomisation check's direction, and untrusted data sets refused with one line and nothing written.
#include "support.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <functional>

using namespace methods_test;
using json = nlohmann::json;

namespace {

/// The first 48 images of the shapes test split (the same images as the full split's first 48: each is
/// seeded by its split and index), generated once per test run.
const fs::path& small_split() {
    static scratch_dir dir;
    static const fs::path root = [] {
        const std::string cmd = fmt::format("{} {}/tools/make_shapes_dataset.py {} --train 0 --test 48 > {} 2>&1",
                                            deepinside::test_support::env("DEEPINSIDE_PYTHON"), source_dir().string(),
                                            dir.file("shapes"), dir.file("generator.log"));
        BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "the generator failed: " << slurp(dir.file("generator.log")));
        return fs::path(dir.file("shapes"));
    }();
    return root;
}

std::string model() { return (source_dir() / "models" / "shapes-convnet.onnx").string(); }

/// The data set's generator runs on Debian's python3 (DEEPINSIDE_PYTHON) with numpy.
boost::unit_test::precondition needs_python() {
    return deepinside::test_support::needs_file(deepinside::test_support::env("DEEPINSIDE_PYTHON"), "python3-numpy");
}

} // namespace

BOOST_AUTO_TEST_SUITE(evaluate_command)

BOOST_AUTO_TEST_CASE(saliency_and_graphcut_beat_the_baselines, *needs_deepinside_bin() * needs_python()) {
    scratch_dir out;
    const auto r = run_deepinside(fmt::format("evaluate '{}' '{}' --json '{}' --report '{}' --randomisation-images 12 --per-image",
                                              model(), small_split().string(), out.file("e.json"), out.file("report")));
    BOOST_REQUIRE_MESSAGE(r.status == 0, r.err);
    const json s = json::parse(slurp(out.file("e.json")));
    BOOST_TEST(s["schema"] == "deepinside.evaluate/1");
    BOOST_TEST(s["images"] == 48);
    BOOST_TEST(s["per_image"].size() == 48u);
    BOOST_TEST(s["classifier"]["top1_accuracy"].get<double>() > 0.75);
    const json& base = s["baselines"];
    for (const char* method : {"gradient", "deconvnet", "guided"}) {
        BOOST_TEST_CONTEXT(method) {
            const json& m = s["methods"][method];
            // The paper's claim on these images: the map + GraphCut finds the object better than any
            // baseline. Measured on the 48 images: mask IoU 0.58-0.60 against 0.15 (centred box), 0.08 (whole
            // image) and 0.12-0.17 (the map thresholded); localisation 0.67-0.73 against 0.10 and 0.10-0.42.
            const double iou = m["segmentation"]["mean_iou"].get<double>(), loc = m["segmentation"]["localisation"].get<double>();
            BOOST_TEST(iou > base["centre_box"]["mean_iou"].get<double>() + 0.2);
            BOOST_TEST(iou > base["whole_image"]["mean_iou"].get<double>() + 0.2);
            BOOST_TEST(iou > m["threshold_box"]["mean_iou"].get<double>());
            BOOST_TEST(loc > base["centre_box"]["localisation"].get<double>() + 0.3);
            BOOST_TEST(loc > m["threshold_box"]["localisation"].get<double>());
            // The maps point at the object more often than the centre does, and put more of their mass on it
            // than a uniform map; deleting in saliency order hurts more than in a random order.
            BOOST_TEST(m["pointing_game"]["all"].get<double>() > base["centre_point"]["all"].get<double>());
            BOOST_TEST(m["relevance_mass"].get<double>() > base["uniform_mass"].get<double>());
            BOOST_TEST(m["curves"]["deletion_auc"].get<double>() < base["random_order"]["deletion_auc"].get<double>());
            BOOST_TEST(m["curves"]["insertion_auc"].get<double>() > base["random_order"]["insertion_auc"].get<double>());
            // Randomising every layer decorrelates the maps from the trained model's.
            const json& stages = s["randomisation"]["stages"];
            BOOST_REQUIRE(stages.size() >= 2u);
            BOOST_TEST(stages.back()[method].get<double>() < stages.front()[method].get<double>());
            BOOST_TEST(stages.back()[method].get<double>() < 0.8);
        }
    }
    // The curves start at the image (deletion) and the background (insertion) for every order, so all
    // curves share their end points.
    const json& g = s["methods"]["gradient"]["curves"];
    const json& rnd = base["random_order"];
    BOOST_TEST(g["deletion_curve"][0].get<double>() == rnd["deletion_curve"][0].get<double>(), boost::test_tools::tolerance(1e-9));
    BOOST_TEST(g["insertion_curve"][0].get<double>() == rnd["insertion_curve"][0].get<double>(), boost::test_tools::tolerance(1e-9));
    BOOST_TEST(fs::exists(out.file("report/index.html")));
    BOOST_TEST(slurp(out.file("report/evaluation.md")).find("Pointing game") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(untrusted_data_sets_are_refused_with_nothing_written, *needs_deepinside_bin() * needs_python()) {
    const fs::path labels = small_split() / "test" / "labels.json";
    const json original = json::parse(slurp(labels));
    struct bad_case {
        const char* what;
        std::function<void(json&)> edit;
        const char* message;
    };
    const std::vector<bad_case> cases = {
        {"a path out of the folder", [](json& d) { d[0]["mask"] = "../../etc/passwd"; }, "may not leave"},
        {"an absolute path", [](json& d) { d[1]["file"] = "/etc/hostname"; }, "relative path"},
        {"a class beyond the model's", [](json& d) { d[2]["class"] = 10; }, "beyond the model's 10 classes"},
        {"a malformed box", [](json& d) { d[3]["box"] = json::array({1, 2, 3}); }, "\"box\""},
        {"a missing file", [](json& d) { d[4]["background"] = "backgrounds/none.png"; }, "none.png"},
        {"not an array", [](json& d) { d = json::object(); }, "non-empty array"},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.what) {
            scratch_dir data, out;
            fs::copy(small_split() / "test", data.path() / "test", fs::copy_options::recursive);
            json edited = original;
            c.edit(edited);
            std::ofstream(data.path() / "test" / "labels.json") << edited.dump();
            const auto r = run_deepinside(fmt::format("evaluate '{}' '{}' --limit 8 --randomisation-images 0 --json '{}' --report '{}'",
                                                      model(), data.path().string(), out.file("e.json"), out.file("report")));
            BOOST_TEST(r.status == 1);
            BOOST_TEST(r.err.find(c.message) != std::string::npos, r.err);
            BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1);
            BOOST_TEST(out.entries().empty());
        }
    }
    scratch_dir out;
    const auto r = run_deepinside(fmt::format("evaluate '{}' '{}' --batch 0 --json '{}'", model(), small_split().string(), out.file("e.json")));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(out.entries().empty());
}

BOOST_AUTO_TEST_SUITE_END()
