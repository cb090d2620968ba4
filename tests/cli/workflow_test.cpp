// The command line's workflows as a user runs them: many pictures in one run (folders, globs, lists;
// batches; one process or several under mpirun), the JSON documents of saliency, classify and info,
// the preprocessing geometry, the display options, and the one-line refusals of common mistakes.
// Every file a run writes is compared with what the library computes in this process, or with the
// same run made another way; each criterion is paired with one showing that it could fail (the files
// it compares differ where they should).
#include "cli/cli_support.hpp" // first: cli_test.cpp defines the test module, not this file

#include <deepinside/display.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "onnx/model_builder.hpp"
#include "support/environment.hpp"
#include "support/numbers.hpp"
#include "support/requirements.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace cli_support;

namespace {

using json = nlohmann::json;

std::string source_dir() { return std::string(env("DEEPINSIDE_SOURCE_DIR")); }
std::string images_dir() { return source_dir() + "/models/images"; }

/// The 8 bundled pictures, sorted by name (as a folder argument lists them).
std::vector<fs::path> sorted_images() {
    std::vector<fs::path> images;
    for (auto& e : fs::directory_iterator(images_dir())) images.push_back(e.path());
    std::sort(images.begin(), images.end());
    BOOST_REQUIRE_EQUAL(images.size(), 8u);
    return images;
}

/// `deepinside ARGS` that must succeed; its output for the caller to check further.
result ok(const std::string& args, const std::string& prefix = "") {
    const result r = run(args, prefix);
    BOOST_TEST_REQUIRE(r.status == 0, "deepinside " << args << "\nexit " << r.status << "\nstderr: " << r.err);
    return r;
}

std::string quoted(const std::string& text) { return "'" + text + "'"; }

std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// The names of the files in `dir`, sorted.
std::vector<std::string> files_in(const std::string& dir) {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

float max_of(const di::tensor& t) { return *std::max_element(t.data.begin(), t.data.end()); }
float min_of(const di::tensor& t) { return *std::min_element(t.data.begin(), t.data.end()); }

/// The number of lines of a text (a last line without '\n' counts).
size_t line_count(const std::string& text) {
    return size_t(std::count(text.begin(), text.end(), '\n')) + (!text.empty() && text.back() != '\n');
}

/// A w x h RGB picture of smooth colour ramps and a few hard edges: every channel differs, and
/// every resampler gives another result on it.
std::string write_rgb_png(const scratch& s, const std::string& name, int w, int h) {
    di::image img;
    img.width = w;
    img.height = h;
    img.channels = 3;
    img.pixels.resize(size_t(w) * size_t(h) * 3);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            uint8_t* p = &img.pixels[(size_t(y) * size_t(w) + size_t(x)) * 3];
            p[0] = uint8_t(255 * x / std::max(1, w - 1));
            p[1] = uint8_t(255 * y / std::max(1, h - 1));
            p[2] = uint8_t(((x / 3 + y / 2) % 2) ? 230 : 20);
        }
    const std::string path = s.path(name);
    di::write_png(path, img);
    return path;
}

/// onnx_test::tiny_model with the batch axis fixed at 1 (input [1, 1, 4, 4], output [1, 3]).
std::string fixed_batch_model(const scratch& s) {
    onnx::ModelProto m = onnx_test::tiny_model();
    auto* g = m.mutable_graph();
    g->clear_input();
    g->clear_output();
    onnx_test::set_tensor_type(g->add_input(), "x", {1, 1, 4, 4});
    onnx_test::set_tensor_type(g->add_output(), "y", {1, 3});
    return s.file("fixed.onnx", onnx_test::serialize(m));
}

/// onnx_test::tiny_model taking RGB: input [batch, 3, 4, 4], conv weights [2, 3, 3, 3] of mixed sign
/// (so that the three channels of the input signal differ, in sign too).
std::string rgb_model(const scratch& s) {
    onnx::ModelProto m = onnx_test::tiny_model();
    auto* g = m.mutable_graph();
    g->clear_input();
    onnx_test::set_tensor_type(g->add_input(), "x", {-1, 3, 4, 4});
    std::vector<float> w(2 * 3 * 3 * 3);
    for (size_t i = 0; i < w.size(); ++i) w[i] = 0.05f * float(int(i * 7 % 11) - 5);
    *onnx_test::initializer(m, "conv.w") = onnx_test::float_tensor("conv.w", {2, 3, 3, 3}, w);
    return s.file("rgb.onnx", onnx_test::serialize(m));
}

/// The preprocessing of the bundled model's metadata, as the CLI applies it without flags.
di::preprocess_options model_values(const std::string& model) {
    return di::preprocess_from_metadata(di::read_onnx(model).metadata, di::preprocess_options{});
}

/// Softmax in double of a row of scores.
std::vector<double> softmax_of(const std::vector<float>& scores) {
    const double top = *std::max_element(scores.begin(), scores.end());
    double sum = 0;
    std::vector<double> p;
    for (float s : scores) sum += std::exp(double(s) - top);
    for (float s : scores) p.push_back(std::exp(double(s) - top) / sum);
    return p;
}

/// The value of `deepinside info`'s "N layers, P parameters" line.
std::pair<long long, long long> layers_and_parameters(const std::string& text) {
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_search(text, m, std::regex(R"((\d+) layers, (\d+) parameters)")), text);
    return {std::stoll(m[1]), std::stoll(m[2])};
}

} // namespace

// ---- Many images, one model load --------------------------------------------------------------

// A folder, a quoted glob and the list of files are one list of images, in name order: the same
// JSON and the same bytes in every file. A narrower glob selects fewer (the pattern is expanded,
// not ignored).
BOOST_AUTO_TEST_CASE(folder_glob_and_list_name_the_same_images) {
    scratch s;
    const std::vector<fs::path> images = sorted_images();
    const std::string m = bundled_model();
    std::string list;
    for (const auto& p : images) list += " " + p.string();
    const std::vector<std::pair<std::string, std::string>> ways = {
        {"folder", images_dir()}, {"glob", quoted(images_dir() + "/*.png")}, {"list", list}};
    std::vector<json> docs;
    for (const auto& [way, args] : ways) {
        BOOST_TEST_CONTEXT(way << ": " << args) {
            const result r = ok("saliency " + m + " " + args + " --out " + s.path(way) + "/ --json " + s.path(way + ".json"));
            BOOST_TEST(r.out.find("saliency: 8 images") != std::string::npos, r.out);
            docs.push_back(read_json(s.path(way + ".json")));
            const json& j = docs.back();
            BOOST_TEST_REQUIRE(j.at("images").size() == 8u);
            BOOST_TEST(j.at("batch").get<int>() == 8); // the default batch: every image in one pass
            for (size_t i = 0; i < images.size(); ++i) {
                BOOST_TEST_CONTEXT("image " << i) {
                    BOOST_TEST(j["images"][i].at("path").get<std::string>() == images[i].string());
                    BOOST_TEST(j["images"][i].at("index").get<size_t>() == i);
                    const std::string prefix = s.path(way) + "/" + images[i].stem().string();
                    for (const char* suffix : {".grad.npy", ".npy", ".png", ".overlay.png"})
                        BOOST_TEST(fs::exists(prefix + suffix), prefix + suffix);
                    BOOST_TEST(j["images"][i]["maps"][0]["files"].at("signal").get<std::string>() == prefix + ".grad.npy");
                }
            }
            BOOST_TEST(files_in(s.path(way)).size() == 8u * 4u);
        }
    }
    for (size_t w = 1; w < ways.size(); ++w)
        for (size_t i = 0; i < images.size(); ++i) {
            BOOST_TEST_CONTEXT(ways[w].first << " vs folder, image " << i) {
                BOOST_TEST(docs[w]["images"][i]["top"] == docs[0]["images"][i]["top"]);
                const std::string stem = "/" + images[i].stem().string() + ".grad.npy";
                BOOST_TEST((bytes_of(s.path(ways[w].first) + stem) == bytes_of(s.path("folder") + stem)));
            }
        }
    // The files of two images are different signals (a run writing one image's file eight times fails here).
    expect_different(di::read_npy(s.path("folder/" + images[0].stem().string() + ".grad.npy")),
                     di::read_npy(s.path("folder/" + images[1].stem().string() + ".grad.npy")), "image 0 vs image 1");
    // A narrower pattern: 0000-... and 0001-... only.
    const result two = ok("saliency " + m + " " + quoted(images_dir() + "/000[01]-*.png") + " --out " + s.path("two") + "/");
    BOOST_TEST(files_in(s.path("two")) ==
                   (std::vector<std::string>{"0000-ankle-boot.grad.npy", "0000-ankle-boot.npy", "0000-ankle-boot.overlay.png",
                                             "0000-ankle-boot.png", "0001-pullover.grad.npy", "0001-pullover.npy",
                                             "0001-pullover.overlay.png", "0001-pullover.png"}),
               boost::test_tools::per_element());
}

// The default batch counts each image once per (method, class) pair, since the backward pass stacks
// the batch that many times: on the shapes model (3x96x96 = 27,648 values an image, a 2^20-value
// budget) one map per image allows 37 images a pass (all 8 here), three methods and four classes
// (12 pairs) 3. The same maps either way.
BOOST_AUTO_TEST_CASE(default_batch_counts_the_stacked_backward_pass) {
    scratch s;
    const std::string m = source_dir() + "/models/shapes-convnet.onnx";
    const std::string one = "saliency " + m + " " + images_dir() + " --no-overlay --method gradient --class 3";
    const std::string twelve = "saliency " + m + " " + images_dir() + " --no-overlay --method gradient,deconvnet,guided --class 0,1,2,3";
    ok(one + " --out " + s.path("one") + "/ --json " + s.path("one.json"));
    ok(twelve + " --out " + s.path("twelve") + "/ --json " + s.path("twelve.json"));
    ok(twelve + " --batch 8 --out " + s.path("twelve8") + "/");
    BOOST_TEST(read_json(s.path("one.json")).at("batch").get<int>() == 8);
    BOOST_TEST(read_json(s.path("twelve.json")).at("batch").get<int>() == 3);
    for (const auto& image : sorted_images()) {
        const std::string stem = image.stem().string();
        for (const char* method : {"gradient", "deconvnet", "guided"}) {
            const std::string file = "/" + stem + "." + method + ".3.grad.npy";
            BOOST_TEST_CONTEXT(file) {
                BOOST_REQUIRE(fs::exists(s.path("twelve") + file));
                const di::tensor a = di::read_npy(s.path("twelve") + file), b = di::read_npy(s.path("twelve8") + file);
                BOOST_TEST(std::any_of(b.data.begin(), b.data.end(), [](float v) { return v != 0; }));
                // Batches of 3 and of 8 may sum in another order (float rounding, ~1e-7); an image's
                // map taken from another image would differ by ~1.
                BOOST_TEST(deepinside::test_support::rel_l2(a, b) <= 1e-4);
            }
        }
        BOOST_TEST(fs::exists(s.path("one") + "/" + stem + ".grad.npy"));
    }
}

// --batch 1, --batch 3 (batches of 3, 3 and 2, the last padded to 3 with zero images) and the
// default (one batch of 8): the same top-1 classes and, within 1e-6, the same signal as the library
// computing each image alone; classify the same scores. Nothing of the padding is reported.
BOOST_AUTO_TEST_CASE(batch_sizes_give_the_library_signal_of_each_image) {
    scratch s;
    const std::vector<fs::path> images = sorted_images();
    const std::string m = bundled_model();
    const std::vector<std::pair<std::string, int>> runs = {{"", 8}, {" --batch 1", 1}, {" --batch 3", 3}};
    std::vector<json> docs, classified;
    for (size_t k = 0; k < runs.size(); ++k) {
        const std::string dir = s.path("run" + std::to_string(k));
        ok("saliency " + m + " " + images_dir() + runs[k].first + " --out " + dir + "/ --json " + dir + ".json");
        docs.push_back(read_json(dir + ".json"));
        BOOST_TEST(docs.back().at("batch").get<int>() == runs[k].second, "'" << runs[k].first << "'");
        BOOST_TEST(docs.back().at("images").size() == images.size());
        BOOST_TEST(docs.back()["summary"]["maps"].get<size_t>() == images.size());
        BOOST_TEST(files_in(dir).size() == 4 * images.size());
        ok("classify " + m + " " + images_dir() + runs[k].first + " --json " + dir + ".classify.json");
        classified.push_back(read_json(dir + ".classify.json"));
        BOOST_TEST(classified.back().at("images").size() == images.size());
    }
    std::set<int64_t> classes_seen;
    for (size_t i = 0; i < images.size(); ++i) {
        BOOST_TEST_CONTEXT(images[i].filename().string()) {
            library_side lib(m, images[i]);
            const di::tensor scores = lib.scores();
            const int64_t top1 = std::max_element(scores.data.begin(), scores.data.end()) - scores.data.begin();
            classes_seen.insert(top1);
            const di::tensor expected = drop_batch(lib.backward(class_request(top1, di::backward_rule::gradient)));
            std::vector<di::tensor> files;
            for (size_t k = 0; k < runs.size(); ++k) {
                BOOST_TEST_CONTEXT("run '" << runs[k].first << "'") {
                    BOOST_TEST(docs[k]["images"][i]["top"][0]["class"].get<int64_t>() == top1);
                    BOOST_TEST(classified[k]["images"][i]["top"][0]["class"].get<int64_t>() == top1);
                    BOOST_TEST(std::abs(classified[k]["images"][i]["top"][0]["score"].get<double>() - scores.data[size_t(top1)]) <=
                               1e-5 * std::max(1.0, std::abs(double(scores.data[size_t(top1)]))));
                    BOOST_TEST(docs[k]["images"][i]["maps"][0]["target"]["class"].get<int64_t>() == top1);
                    files.push_back(di::read_npy(s.path("run" + std::to_string(k)) + "/" + images[i].stem().string() + ".grad.npy"));
                    BOOST_TEST(rel_l2(files.back(), expected) <= 1e-6);
                    for (size_t j = 0; j < k; ++j) BOOST_TEST(rel_l2(files.back(), files[j]) <= 1e-6, "vs run " << j);
                }
            }
        }
    }
    // The images are of several classes: a run that used one image's class for all would fail above.
    BOOST_TEST(classes_seen.size() >= 5u);
}

// Arguments that name no image are refused naming the argument; two images of one stem get two
// names; a model of fixed batch 1 runs image by image and refuses another --batch.
BOOST_AUTO_TEST_CASE(image_arguments_and_fixed_batches) {
    scratch s;
    const std::string m = bundled_model();
    const std::vector<fs::path> images = sorted_images();
    fs::create_directories(s.path("nothing"));
    s.file("nothing/notes.txt", "no pictures here\n");
    expect_refusal(s, "saliency " + m + " " + s.path("nothing") + " --out " + s.path("out/"), {s.path("nothing"), "no .png"});
    expect_refusal(s, "classify " + m + " " + s.path("nothing"), {s.path("nothing")});
    const std::string gif = images_dir() + "/*.gif";
    expect_refusal(s, "saliency " + m + " " + quoted(gif) + " --out " + s.path("out/"), {gif, "matches no file"});
    expect_refusal(s, "saliency " + m + " " + s.path("absent.png") + " --out " + s.path("out/"), {s.path("absent.png")});

    // a/x.png and b/x.png: two distinct prefixes, each holding its own image's signal.
    fs::create_directories(s.path("a"));
    fs::create_directories(s.path("b"));
    fs::copy_file(images[0], s.path("a/x.png"));
    fs::copy_file(images[1], s.path("b/x.png"));
    ok("saliency " + m + " " + s.path("a/x.png") + " " + s.path("b/x.png") + " --out " + s.path("same") + "/ --json " +
       s.path("same.json"));
    const json j = read_json(s.path("same.json"));
    BOOST_TEST_REQUIRE(j.at("images").size() == 2u);
    const std::string first = j["images"][0]["maps"][0]["files"]["signal"], second = j["images"][1]["maps"][0]["files"]["signal"];
    BOOST_TEST(first != second);
    BOOST_TEST(fs::path(first).parent_path() == fs::path(s.path("same")));
    BOOST_TEST(fs::path(second).parent_path() == fs::path(s.path("same")));
    BOOST_TEST(files_in(s.path("same")).size() == 8u);
    for (size_t i = 0; i < 2; ++i) {
        BOOST_TEST_CONTEXT("image " << i) {
            library_side lib(m, images[i]);
            const di::tensor scores = lib.scores();
            const int64_t top1 = std::max_element(scores.data.begin(), scores.data.end()) - scores.data.begin();
            const di::tensor file = di::read_npy(i == 0 ? first : second);
            BOOST_TEST(rel_l2(file, drop_batch(lib.backward(class_request(top1, di::backward_rule::gradient)))) <= 1e-6);
        }
    }
    expect_different(di::read_npy(first), di::read_npy(second), "a/x.png vs b/x.png");

    // A model whose batch axis is fixed at 1.
    const std::string fixed = fixed_batch_model(s);
    const std::string three = images[0].string() + " " + images[1].string() + " " + images[2].string();
    // (saliency last: a refused run must not leave its --out folder behind either)
    for (const std::string cmd : {"classify", "saliency"})
        expect_refusal(s, cmd + " " + fixed + " " + three + " --batch 4" + (cmd == "saliency" ? " --out " + s.path("out/") : ""),
                       {"fixed.onnx", "--batch 4", "dynamic batch"});
    ok("saliency " + fixed + " " + three + " --out " + s.path("fixed") + "/ --json " + s.path("fixed.json"));
    const json f = read_json(s.path("fixed.json"));
    BOOST_TEST(f.at("batch").get<int>() == 1);
    BOOST_TEST(f.at("images").size() == 3u);
    BOOST_TEST(files_in(s.path("fixed")).size() == 3u * 4u);
    ok("saliency " + fixed + " " + three + " --batch 1 --out " + s.path("fixed1") + "/");
}

// Pictures are decoded a batch at a time on the run's threads, and each image's files written on
// them too; a picture that cannot be read still stops the run where a one-at-a-time run would: after
// the batches before it, with the message of the first unreadable picture in order (here two in one
// batch, the second named nowhere), whichever thread reached which first.
BOOST_AUTO_TEST_CASE(an_unreadable_picture_stops_the_run_after_the_batches_before_it) {
    scratch s;
    const std::vector<fs::path> images = sorted_images();
    const std::string m = bundled_model();
    fs::create_directories(s.path("in"));
    const std::vector<std::string> good = {"0000", "0001", "0002", "0003"};
    for (size_t i = 0; i < good.size(); ++i) fs::copy_file(images[i], s.path("in/" + good[i] + ".png"));
    s.file("in/0003a-broken.png", "not a picture at all");
    s.file("in/0003b-broken.png", "not a picture either");
    fs::copy_file(images[4], s.path("in/0004-after.png"));
    for (const std::string command : {"saliency", "classify"}) {
        BOOST_TEST_CONTEXT(command) {
            const std::string out = s.path(command + "-out");
            // batches of 2: [0000 0001] [0002 0003] [0003a 0003b] [0004]
            const result r = run(command + " " + m + " " + s.path("in") + " --batch 2 --threads 2" +
                                 (command == "saliency" ? " --out " + out + "/" : ""));
            BOOST_TEST(r.status == 1, "exit status " << r.status << ", stderr: " << r.err);
            BOOST_TEST(r.err.find("0003a-broken.png") != std::string::npos, r.err);
            BOOST_TEST(r.err.find("0003b-broken.png") == std::string::npos, r.err);
            if (command == "saliency") {
                std::vector<std::string> expected;
                for (const std::string& stem : good)
                    for (const char* suffix : {".grad.npy", ".npy", ".overlay.png", ".png"}) expected.push_back(stem + suffix);
                std::sort(expected.begin(), expected.end());
                BOOST_TEST(files_in(out) == expected, boost::test_tools::per_element());
            } else {
                for (const std::string& stem : good) BOOST_TEST(r.out.find("/" + stem + ".png") != std::string::npos, r.out);
                BOOST_TEST(r.out.find("0004-after") == std::string::npos, r.out);
            }
        }
    }
}

// ---- JSON ---------------------------------------------------------------------------------------

// --json -: stdout is one JSON document and nothing else; the human lines go to stderr. Every field
// of the schema is checked against the files and the library.
BOOST_AUTO_TEST_CASE(saliency_json_document) {
    scratch s;
    const std::string m = bundled_model();
    const std::vector<fs::path> images = sorted_images();
    const std::string three = " " + images[0].string() + " " + images[3].string() + " " + images[7].string();
    const result r = ok("saliency " + m + three + " --method gradient,guided --out " + s.path("maps") + "/ --json -");
    json j;
    BOOST_REQUIRE_NO_THROW(j = json::parse(r.out)); // the whole of stdout: one document, nothing after it
    BOOST_TEST(r.out.find("saliency:") == std::string::npos, "stdout: " << r.out);
    BOOST_TEST(r.err.find("saliency: 3 images, 6 maps") != std::string::npos, "stderr: " << r.err);
    for (size_t i : {0, 3, 7}) BOOST_TEST(r.err.find(images[i].string() + "  class ") != std::string::npos, r.err);

    const json info = json::parse(ok("info " + m + " --json -").out);
    const std::string score_tensor = info.at("score_tensor");
    const std::vector<std::string> labels = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    BOOST_TEST(j.at("schema").get<std::string>() == "deepinside.saliency/1");
    BOOST_TEST(j.at("model").get<std::string>() == m);
    BOOST_TEST((j.at("methods") == json::array({"gradient", "guided"})));
    BOOST_TEST(j.at("map").get<std::string>() == "max-abs");
    BOOST_TEST(j.at("batch").get<int>() == 3);
    BOOST_TEST(j.at("processes").get<int>() == 1);
    BOOST_TEST_REQUIRE(j.at("images").size() == 3u);

    const json classified = json::parse(ok("classify " + m + three + " --json -").out);
    BOOST_TEST(classified.at("schema").get<std::string>() == "deepinside.classify/1");
    size_t files_listed = 0;
    const std::vector<size_t> picked = {0, 3, 7};
    for (size_t i = 0; i < 3; ++i) {
        const json& im = j["images"][i];
        BOOST_TEST_CONTEXT("image " << i << " (" << images[picked[i]].filename().string() << ")") {
            BOOST_TEST(im.at("path").get<std::string>() == images[picked[i]].string());
            BOOST_TEST(im.at("index").get<size_t>() == i);
            BOOST_TEST((im.at("input_shape") == json::array({1, 1, 28, 28})));
            // top: five classes, best first, with the library's scores and their softmax.
            library_side lib(m, images[picked[i]]);
            const di::tensor scores = lib.scores();
            const std::vector<double> p = softmax_of(scores.data);
            const json& top = im.at("top");
            BOOST_TEST_REQUIRE(top.size() == 5u);
            double sum = 0;
            for (size_t k = 0; k < top.size(); ++k) {
                const int64_t c = top[k].at("class");
                BOOST_TEST_REQUIRE((c >= 0 && c < 10));
                BOOST_TEST(top[k].at("label").get<std::string>() == labels[size_t(c)]);
                BOOST_TEST(std::fabs(top[k].at("score").get<double>() - scores.data[size_t(c)]) <= 1e-5 * (1 + std::fabs(scores.data[size_t(c)])));
                BOOST_TEST(std::fabs(top[k].at("probability").get<double>() - p[size_t(c)]) <= 1e-6);
                if (k > 0) BOOST_TEST(top[k]["score"].get<double>() <= top[k - 1]["score"].get<double>());
                // The probabilities are the softmax of the scores listed: ratios are exp(score differences).
                const double ratio = top[k]["probability"].get<double>() / top[0]["probability"].get<double>();
                BOOST_TEST(std::fabs(ratio - std::exp(top[k]["score"].get<double>() - top[0]["score"].get<double>())) <= 1e-5);
                sum += top[k]["probability"].get<double>();
            }
            BOOST_TEST(sum <= 1.0 + 1e-6);
            const int64_t top1 = top[0]["class"];
            BOOST_TEST(top1 == std::max_element(scores.data.begin(), scores.data.end()) - scores.data.begin());
            BOOST_TEST(classified["images"][i]["top"][0]["class"].get<int64_t>() == top1);
            // maps: one per method, for the top-1 class, the class in the file names.
            const json& maps = im.at("maps");
            BOOST_TEST_REQUIRE(maps.size() == 2u);
            for (size_t k = 0; k < 2; ++k) {
                const std::string method = k == 0 ? "gradient" : "guided";
                BOOST_TEST_CONTEXT(method) {
                    BOOST_TEST(maps[k].at("method").get<std::string>() == method);
                    const json& t = maps[k].at("target");
                    BOOST_TEST(t.at("kind").get<std::string>() == "score");
                    BOOST_TEST(t.at("class").get<int64_t>() == top1);
                    BOOST_TEST(t.at("label").get<std::string>() == labels[size_t(top1)]);
                    BOOST_TEST(t.at("tensor").get<std::string>() == score_tensor);
                    const json& files = maps[k].at("files");
                    const std::string prefix =
                        s.path("maps") + "/" + images[picked[i]].stem().string() + "." + method + "." + std::to_string(top1);
                    BOOST_TEST(files.at("signal").get<std::string>() == prefix + ".grad.npy");
                    BOOST_TEST(files.at("map").get<std::string>() == prefix + ".npy");
                    BOOST_TEST(files.at("heatmap").get<std::string>() == prefix + ".png");
                    BOOST_TEST(files.at("overlay").get<std::string>() == prefix + ".overlay.png");
                    for (const auto& [key, file] : files.items()) BOOST_TEST(fs::exists(file.get<std::string>()), key);
                    files_listed += files.size();
                    const di::tensor map = di::read_npy(files["map"]);
                    BOOST_TEST_REQUIRE((map.shape == di::shape_t{28, 28}));
                    const json& st = maps[k].at("statistics");
                    BOOST_TEST(st.at("max").get<float>() == max_of(map));
                    BOOST_TEST(st.at("min").get<float>() == min_of(map));
                    double mean = 0;
                    for (float v : map.data) mean += v;
                    mean /= double(map.size());
                    BOOST_TEST(std::fabs(st.at("mean").get<double>() - mean) <= 1e-6 * (1 + std::fabs(mean)));
                    BOOST_TEST(st.at("std").get<double>() > 0.0);
                    const int64_t y = st.at("argmax")[0], x = st.at("argmax")[1];
                    BOOST_TEST(map.data[size_t(y * 28 + x)] == max_of(map));
                    const double scale = st.at("display_scale");
                    BOOST_TEST((scale > 0 && scale <= st["max"].get<double>()));
                    // The signal is the library's (method, class) signal of this image.
                    const di::backward_rule rule = k == 0 ? di::backward_rule::gradient : di::backward_rule::guided;
                    BOOST_TEST(rel_l2(di::read_npy(files["signal"]), drop_batch(lib.backward(class_request(top1, rule)))) <= 1e-6);
                }
            }
            expect_different(di::read_npy(maps[0]["files"]["signal"]), di::read_npy(maps[1]["files"]["signal"]), "gradient vs guided");
        }
    }
    const json& summary = j.at("summary");
    BOOST_TEST(summary.at("images").get<int>() == 3);
    BOOST_TEST(summary.at("maps").get<int>() == 6);
    BOOST_TEST(summary.at("files").get<size_t>() == files_listed);
    BOOST_TEST(files_in(s.path("maps")).size() == files_listed);
    BOOST_TEST(summary.at("seconds").get<double>() > 0.0);
}

// classify --json: the text's classes, labels, scores and probabilities; --json - moves the text to stderr.
BOOST_AUTO_TEST_CASE(classify_json_agrees_with_its_text) {
    scratch s;
    const std::string m = bundled_model();
    const std::vector<fs::path> images = sorted_images();
    const result text = ok("classify " + m + " " + images_dir() + " --top 3 --json " + s.path("c.json"));
    const json j = read_json(s.path("c.json"));
    BOOST_TEST(j.at("schema").get<std::string>() == "deepinside.classify/1");
    BOOST_TEST_REQUIRE(j.at("images").size() == 8u);
    // The text: a path line, then "  k. LABEL  class C  score S  p P" lines.
    const std::regex row(R"(^  (\d+)\. (.+?) +class +(\d+)  score +(-?\d+\.\d+)  p (\d\.\d+)$)");
    std::istringstream in(text.out);
    int image = -1, rows = 0;
    for (std::string line; std::getline(in, line);) {
        std::smatch mt;
        if (std::regex_match(line, mt, row)) {
            BOOST_TEST_REQUIRE(image >= 0);
            const size_t k = std::stoul(mt[1]) - 1;
            BOOST_TEST_CONTEXT("image " << image << ", line '" << line << "'") {
                BOOST_TEST_REQUIRE(k < j["images"][image]["top"].size());
                const json& t = j["images"][image]["top"][k];
                BOOST_TEST(t.at("label").get<std::string>() == mt[2].str());
                BOOST_TEST(t.at("class").get<int64_t>() == std::stoll(mt[3]));
                BOOST_TEST(std::fabs(t.at("score").get<double>() - std::stod(mt[4])) <= 0.5e-4 + 1e-9);
                BOOST_TEST(std::fabs(t.at("probability").get<double>() - std::stod(mt[5])) <= 0.5e-4 + 1e-9);
            }
            ++rows;
        } else if (line.rfind("classify:", 0) != 0) {
            ++image;
            BOOST_TEST_REQUIRE(image < 8);
            BOOST_TEST(line == images[size_t(image)].string());
            BOOST_TEST(j["images"][image].at("path").get<std::string>() == line);
            BOOST_TEST(j["images"][image].at("index").get<int>() == image);
            BOOST_TEST(j["images"][image].at("top").size() == 3u);
        }
    }
    BOOST_TEST(image == 7);
    BOOST_TEST(rows == 8 * 3);
    // --json -: the same document on stdout, the same text on stderr.
    const result piped = ok("classify " + m + " " + images_dir() + " --top 3 --json -");
    json pj;
    BOOST_REQUIRE_NO_THROW(pj = json::parse(piped.out));
    BOOST_TEST(pj["images"] == j["images"]);
    const auto without_timing = [](const std::string& t) { return t.substr(0, t.find("classify:")); };
    BOOST_TEST(without_timing(piped.err) == without_timing(text.out));
    BOOST_TEST(piped.err.find("classify: 8 images") != std::string::npos);
}

// info --json: the layers, parameter counts, inputs, outputs, score tensor and metadata of the text.
BOOST_AUTO_TEST_CASE(info_json_agrees_with_its_text) {
    const std::string m = bundled_model();
    const result text = ok("info " + m);
    const result piped = ok("info " + m + " --json -");
    json j;
    BOOST_REQUIRE_NO_THROW(j = json::parse(piped.out));
    BOOST_TEST(piped.err == text.out); // the table moves to stderr unchanged
    BOOST_TEST(j.at("schema").get<std::string>() == "deepinside.info/1");
    const auto [layers, parameters] = layers_and_parameters(text.out);
    BOOST_TEST(layers == 10);
    BOOST_TEST_REQUIRE(j.at("layers").size() == size_t(layers));
    BOOST_TEST(j.at("parameters").get<long long>() == parameters);
    long long sum = 0;
    std::map<size_t, std::vector<std::string>> rows; // the table's rows by index, split at blanks
    std::istringstream in(text.out);
    for (std::string line; std::getline(in, line);) {
        std::istringstream words(line);
        std::vector<std::string> w{std::istream_iterator<std::string>(words), {}};
        if (w.size() >= 6 && std::all_of(w[0].begin(), w[0].end(), ::isdigit)) rows[std::stoul(w[0])] = w;
    }
    BOOST_TEST_REQUIRE(rows.size() == size_t(layers));
    for (size_t i = 0; i < j["layers"].size(); ++i) {
        const json& l = j["layers"][i];
        const auto& w = rows[i];
        BOOST_TEST_CONTEXT("layer " << i << ": " << l.dump()) {
            BOOST_TEST(l.at("index").get<size_t>() == i);
            BOOST_TEST(l.at("name").get<std::string>() == w[1]);
            BOOST_TEST(l.at("op").get<std::string>() == w[2]);
            BOOST_TEST(l.at("output").get<std::string>() == w[3]);
            BOOST_TEST(l.at("parameters").get<long long>() == std::stoll(w.back()));
            std::string shape = "[";
            for (size_t d = 0; d < l.at("shape").size(); ++d) shape += (d ? ", " : "") + std::to_string(l["shape"][d].get<long long>());
            BOOST_TEST(text.out.find(w[3] + " ") != std::string::npos);
            std::string row_text;
            for (size_t k = 4; k + 1 < w.size(); ++k) row_text += (k > 4 ? " " : "") + w[k];
            BOOST_TEST(row_text == shape + "]");
            sum += l["parameters"].get<long long>();
        }
    }
    BOOST_TEST(sum == parameters);
    BOOST_TEST(j["inputs"].size() == 1u);
    BOOST_TEST(j["inputs"][0].at("name").get<std::string>() == "input");
    BOOST_TEST((j["inputs"][0].at("shape") == json::array({nullptr, 1, 28, 28})));
    BOOST_TEST(text.out.find("input     input [-1, 1, 28, 28]") != std::string::npos);
    BOOST_TEST(j["outputs"][0].at("name").get<std::string>() == "logits");
    BOOST_TEST(text.out.find("scores    " + j.at("score_tensor").get<std::string>() + " ") != std::string::npos);
    BOOST_TEST(j.at("metadata").at("deepinside.labels").get<std::string>().rfind("T-shirt/top,Trouser,", 0) == 0);
    for (const auto& [k, v] : j["metadata"].items())
        if (v.get<std::string>().size() <= 80) BOOST_TEST(text.out.find("  " + k + " = " + v.get<std::string>()) != std::string::npos, k);
}

// ---- Preprocessing ------------------------------------------------------------------------------

// --save-input is the exact tensor of the library: image_to_tensor for the default stretch, and
// prepare_image (resize, crop, antialias) then image_to_tensor for the geometry options.
BOOST_AUTO_TEST_CASE(save_input_is_the_library_tensor) {
    scratch s;
    const std::string m = bundled_model();
    const std::vector<fs::path> images = sorted_images();
    // The default: a bundled picture (28 x 28 grey) and a 50 x 40 RGB one, in one run.
    const std::string rgb = write_rgb_png(s, "wide.png", 50, 40);
    ok("saliency " + m + " " + images[2].string() + " " + rgb + " --save-input " + s.path("x.npy") + " --out " + s.path("d") + "/");
    const di::tensor saved = di::read_npy(s.path("x.npy"));
    BOOST_TEST_REQUIRE((saved.shape == di::shape_t{2, 1, 28, 28}));
    for (int64_t b = 0; b < 2; ++b) {
        const fs::path picture = b == 0 ? images[2] : fs::path(rgb);
        library_side lib(m, picture);
        di::tensor one({1, 1, 28, 28}, std::vector<float>(saved.data.begin() + b * 784, saved.data.begin() + (b + 1) * 784));
        expect_identical(one, lib.x, "--save-input image " + std::to_string(b));
    }
    ok("classify " + m + " " + images[2].string() + " --save-input " + s.path("c.npy"));
    expect_identical(di::read_npy(s.path("c.npy")), library_side(m, images[2]).x, "classify --save-input");

    // Geometry: the shorter side to 32 (50 x 40 -> 40 x 32, antialiased), the centre 28 x 28.
    const di::image picture = di::read_image(rgb);
    di::geometry_options geo;
    geo.resize = di::geometry_options::resize_mode::shorter;
    geo.shorter_side = 32;
    geo.crop_width = geo.crop_height = 28;
    geo.antialias = true;
    const auto expected_for = [&](const di::geometry_options& g) {
        const di::prepared_image p = di::prepare_image(picture, g, 28, 28);
        BOOST_TEST_REQUIRE((p.fed.width == 28 && p.fed.height == 28));
        return di::image_to_tensor(p.fed, 1, 28, 28, model_values(m));
    };
    const di::tensor expected = expected_for(geo);
    ok("saliency " + m + " " + rgb + " --resize shorter:32 --crop center:28 --antialias --save-input " + s.path("g.npy") +
       " --out " + s.path("g"));
    expect_identical(di::read_npy(s.path("g.npy")), expected, "--resize shorter:32 --crop center:28 --antialias");
    // Each option changes the tensor: without --antialias, without the resize, and the default stretch.
    geo.antialias = false;
    const di::tensor plain = expected_for(geo);
    expect_different(expected, plain, "--antialias vs plain bilinear");
    ok("saliency " + m + " " + rgb + " --resize shorter:32 --crop center:28 --save-input " + s.path("p.npy") + " --out " + s.path("p"));
    expect_identical(di::read_npy(s.path("p.npy")), plain, "--resize shorter:32 --crop center:28");
    expect_different(expected, library_side(m, rgb).x, "geometry vs stretch");
    // --crop alone: the centre 28 x 28 of the picture, not resized.
    di::geometry_options crop_only;
    crop_only.resize = di::geometry_options::resize_mode::none;
    crop_only.crop_width = crop_only.crop_height = 28;
    ok("saliency " + m + " " + rgb + " --crop center:28 --save-input " + s.path("c28.npy") + " --out " + s.path("c28"));
    expect_identical(di::read_npy(s.path("c28.npy")), expected_for(crop_only), "--crop center:28");
    expect_different(expected_for(crop_only), expected, "--crop alone vs resize and crop");
    // On a 28 x 28 picture --crop center:28 is the identity: the same signal as the default.
    ok("saliency " + m + " " + images[2].string() + " --crop center:28 --out " + s.path("id"));
    ok("saliency " + m + " " + images[2].string() + " --out " + s.path("default"));
    expect_identical(di::read_npy(s.path("id.grad.npy")), di::read_npy(s.path("default.grad.npy")), "--crop center:28 on 28 x 28");
}

BOOST_AUTO_TEST_CASE(geometry_mistakes_are_refused) {
    scratch s;
    const std::string m = bundled_model(), img = bundled_image().string();
    // The preset crops to 224; the network takes 28.
    expect_refusal(s, "saliency " + m + " " + img + " --preset imagenet --out " + s.path("out"), {"224x224", "28x28", "network"});
    expect_refusal(s, "classify " + m + " " + img + " --preset imagenet", {"224x224", "28x28", "network"});
    expect_refusal(s, "saliency " + m + " " + img + " --resize sideways --out " + s.path("out"), {"--resize", "sideways"});
    expect_refusal(s, "saliency " + m + " " + img + " --resize shorter:0 --out " + s.path("out"), {"--resize"});
    expect_refusal(s, "saliency " + m + " " + img + " --crop middle:28 --out " + s.path("out"), {"--crop", "middle:28"});
    expect_refusal(s, "saliency " + m + " " + img + " --preset coco --out " + s.path("out"), {"--preset", "coco"});
}

// ---- Display ------------------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(display_options) {
    scratch s;
    const std::string m = bundled_model();
    const std::vector<fs::path> images = sorted_images();
    const std::string two = " " + images[0].string() + " " + images[4].string();
    const std::string all = " --method gradient,deconvnet,guided";
    // --no-overlay: the same files but the overlays (which the default writes).
    ok("saliency " + m + two + " --out " + s.path("with") + "/");
    ok("saliency " + m + two + " --no-overlay --out " + s.path("without") + "/ --json " + s.path("without.json"));
    std::vector<std::string> with = files_in(s.path("with")), without = files_in(s.path("without"));
    BOOST_TEST(std::count_if(with.begin(), with.end(), [](auto& n) { return n.find(".overlay.png") != std::string::npos; }) == 2);
    with.erase(std::remove_if(with.begin(), with.end(), [](auto& n) { return n.find(".overlay.png") != std::string::npos; }), with.end());
    BOOST_TEST(without == with, boost::test_tools::per_element());
    const json without_json = read_json(s.path("without.json")); // kept: a loop over a temporary's member dangles
    for (const auto& im : without_json["images"]) BOOST_TEST(!im["maps"][0]["files"].contains("overlay"));

    // --panel: PREFIX.panel.png, the input and the three maps side by side.
    ok("saliency " + m + two + all + " --panel --out " + s.path("panel") + "/ --json " + s.path("panel.json"));
    for (size_t i : {0, 4}) {
        const std::string file = s.path("panel") + "/" + images[i].stem().string() + ".panel.png";
        BOOST_TEST_REQUIRE(fs::exists(file));
        const di::image p = di::read_image(file);
        BOOST_TEST(p.width > 3 * p.height, p.width << " x " << p.height);
    }
    BOOST_TEST(!fs::exists(s.path("with") + "/" + images[0].stem().string() + ".panel.png"));

    // --clip 100: the scale is the map's maximum; the default 99.5 percentile is below it.
    ok("saliency " + m + two + " --clip 100 --out " + s.path("clip") + "/ --json " + s.path("clip.json"));
    const json clip = read_json(s.path("clip.json")), plain = read_json(s.path("panel.json"));
    for (size_t i = 0; i < 2; ++i) {
        const json& st = clip["images"][i]["maps"][0]["statistics"];
        const di::tensor map = di::read_npy(clip["images"][i]["maps"][0]["files"]["map"]);
        BOOST_TEST(st["display_scale"].get<float>() == max_of(map), "image " << i);
        BOOST_TEST(plain["images"][i]["maps"][0]["statistics"]["display_scale"].get<float>() < max_of(map), "image " << i);
    }

    // --shared-scale: one scale for the image's three maps, the largest of their own scales.
    ok("saliency " + m + two + all + " --shared-scale --out " + s.path("shared") + "/ --json " + s.path("shared.json"));
    const json shared_doc = read_json(s.path("shared.json"));
    for (size_t i = 0; i < 2; ++i) {
        BOOST_TEST_CONTEXT("image " << i) {
            std::vector<double> own, common;
            for (size_t k = 0; k < 3; ++k) {
                own.push_back(plain["images"][i]["maps"][k]["statistics"]["display_scale"]);
                common.push_back(shared_doc["images"][i]["maps"][k]["statistics"]["display_scale"]);
            }
            BOOST_TEST(std::set<double>(own.begin(), own.end()).size() > 1u, "without --shared-scale the scales differ");
            BOOST_TEST(std::set<double>(common.begin(), common.end()).size() == 1u);
            BOOST_TEST(common[0] == *std::max_element(own.begin(), own.end()));
        }
    }

    // --map on one channel: signed = the signal, sum-abs = max-abs = |signal|, positive = max(signal, 0).
    const std::string img = images[0].string();
    ok("saliency " + m + " " + img + " --out " + s.path("maxabs") + " --json " + s.path("maxabs.json"));
    const di::tensor signal = di::read_npy(s.path("maxabs.grad.npy"));
    BOOST_TEST_REQUIRE((signal.shape == di::shape_t{1, 28, 28}));
    di::tensor same({28, 28}, signal.data), absolute({28, 28}), positive({28, 28});
    for (size_t i = 0; i < signal.data.size(); ++i) {
        absolute.data[i] = std::fabs(signal.data[i]);
        positive.data[i] = std::max(signal.data[i], 0.0f);
    }
    BOOST_TEST_REQUIRE(min_of(same) < 0.0f); // else signed and |signal| could not differ
    expect_identical(di::read_npy(s.path("maxabs.npy")), absolute, "--map max-abs");
    const std::vector<std::pair<std::string, di::tensor>> maps = {{"signed", same}, {"sum-abs", absolute}, {"positive", positive}};
    for (const auto& [name, expected] : maps) {
        const std::string out = s.path("map-" + name);
        ok("saliency " + m + " " + img + " --map " + name + " --out " + out + " --json " + out + ".json");
        expect_identical(di::read_npy(out + ".npy"), expected, "--map " + name);
        expect_identical(di::read_npy(out + ".grad.npy"), signal, "--map " + name + " .grad.npy");
        BOOST_TEST(read_json(out + ".json").at("map").get<std::string>() == name);
    }
    expect_different(same, absolute, "signed vs max-abs");
    // The signed map is drawn diverging (coolwarm): another picture than max-abs's inferno.
    BOOST_TEST(bytes_of(s.path("map-signed.png")) != bytes_of(s.path("maxabs.png")));
    expect_refusal(s, "saliency " + m + " " + img + " --map loudest --out " + s.path("out"), {"loudest", "max-abs"});

    // --overlay-size image on a 1500 x 1000 picture: at most 1024 on the longer side, aspect kept.
    const std::string big = write_rgb_png(s, "photo.png", 1500, 1000); // not big.png: --out big writes big.png
    ok("saliency " + m + " " + big + " --overlay-size image --out " + s.path("big"));
    const di::image o = di::read_image(s.path("big.overlay.png"));
    BOOST_TEST(std::max(o.width, o.height) == 1024);
    BOOST_TEST(std::abs(o.height - 683) <= 1, o.width << " x " << o.height); // 1000 * 1024 / 1500 = 682.7
    ok("saliency " + m + " " + big + " --out " + s.path("small"));
    const di::image n = di::read_image(s.path("small.overlay.png"));
    BOOST_TEST((n.width == 28 && n.height == 28), "the default overlay is the network's picture: " << n.width << " x " << n.height);
    ok("saliency " + m + " " + big + " --overlay-size image --overlay-max 300 --out " + s.path("max300"));
    const di::image o3 = di::read_image(s.path("max300.overlay.png"));
    BOOST_TEST((o3.width == 300 && std::abs(o3.height - 200) <= 1), o3.width << " x " << o3.height);

    expect_refusal(s, "saliency " + m + " " + img + " --colormap nope --out " + s.path("out"),
                   {"nope", "inferno", "viridis", "gray", "coolwarm"});
}

// Three input channels: max-abs (max over channels of |signal|) and sum-abs (their sum) differ, and
// signed is the plain channel sum.
BOOST_AUTO_TEST_CASE(map_reductions_over_three_channels) {
    scratch s;
    const std::string model = rgb_model(s), picture = write_rgb_png(s, "rgb.png", 12, 12);
    const std::map<std::string, std::string> outs = {{"max-abs", "m"}, {"sum-abs", "s"}, {"signed", "g"}};
    for (const auto& [name, out] : outs) ok("saliency " + model + " " + picture + " --class 1 --map " + name + " --out " + s.path(out));
    const di::tensor signal = di::read_npy(s.path("m.grad.npy"));
    BOOST_TEST_REQUIRE((signal.shape == di::shape_t{3, 4, 4}));
    di::tensor max_abs({4, 4}), sum_abs({4, 4}), sum({4, 4});
    for (size_t c = 0; c < 3; ++c)
        for (size_t i = 0; i < 16; ++i) {
            const float v = signal.data[c * 16 + i];
            max_abs.data[i] = std::max(max_abs.data[i], std::fabs(v));
            sum_abs.data[i] += std::fabs(v);
            sum.data[i] += v;
        }
    // Matched to 1e-6 (the CLI may sum the channels in another order), different from each other.
    BOOST_TEST(rel_l2(di::read_npy(s.path("m.npy")), max_abs) == 0.0);
    BOOST_TEST(rel_l2(di::read_npy(s.path("s.npy")), sum_abs) <= 1e-6);
    BOOST_TEST(rel_l2(di::read_npy(s.path("g.npy")), sum) <= 1e-6);
    expect_different(max_abs, sum_abs, "max-abs vs sum-abs");
    expect_different(sum, sum_abs, "signed vs sum-abs");
    // The model gets RGB: a saliency signal of three channels that are not copies of one another.
    const di::tensor r({16}, std::vector<float>(signal.data.begin(), signal.data.begin() + 16));
    const di::tensor g({16}, std::vector<float>(signal.data.begin() + 16, signal.data.begin() + 32));
    expect_different(r, g, "channel 0 vs channel 1");
}

// ---- Clearer mistakes ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(common_mistakes_get_one_clear_line) {
    scratch s;
    const std::string m = bundled_model(), img = bundled_image().string();
    const std::string layer = " --layer /conv2/Conv_output_0";
    for (const std::string top : {"0", "-2", "many"}) {
        BOOST_TEST_CONTEXT("--top " << top) {
            const result r = run("classify " + m + " " + img + " --top " + top);
            BOOST_TEST(r.status == 1);
            BOOST_TEST(line_count(r.err) == 1u, r.err);
            BOOST_TEST((r.err.find("--top") != std::string::npos || r.err.find("positive") != std::string::npos), r.err);
            BOOST_TEST(r.err.size() < 200u, r.err);
            BOOST_TEST(r.out.empty(), r.out);
        }
    }
    for (const std::string cmd : {"saliency", "classify"}) {
        const std::string base = cmd + " " + m + " " + img + (cmd == "saliency" ? " --out " + s.path("out") : "");
        BOOST_TEST_CONTEXT(cmd) {
            expect_refusal(s, base + " --std 0,1,1", {"--std"});
            const result r = run(base + " --std 0,1,1");
            BOOST_TEST(r.err.find("metadata") == std::string::npos, r.err);
            expect_refusal(s, base + " --std 0", {"--std"});
            expect_refusal(s, base + " --scale abc", {"--scale", "abc"});
            expect_refusal(s, base + " --mean x", {"--mean"});
        }
    }
    const std::string sal = "saliency " + m + " " + img;
    expect_refusal(s, sal + layer + " --channel 3 --unit 3 --out " + s.path("out"), {"Y,X"});
    expect_refusal(s, sal + " --class 1" + layer + " --out " + s.path("out"), {"--class", "--layer"});
    expect_refusal(s, sal + " --unit 3,4 --out " + s.path("out"), {"--layer"});
    expect_refusal(s, sal + " --class 10 --out " + s.path("out"), {"--class 10", "0 to 9"});

    // --out DIR/ with one image: DIR/<stem>.*, no temporary or hidden file left behind.
    ok(sal + " --out " + s.path("dir") + "/ --json " + s.path("dir") + "/run.json");
    const std::string stem = bundled_image().stem().string();
    BOOST_TEST(files_in(s.path("dir")) ==
                   (std::vector<std::string>{stem + ".grad.npy", stem + ".npy", stem + ".overlay.png", stem + ".png", "run.json"}),
               boost::test_tools::per_element());
    for (const auto& name : files_in(s.path("dir"))) BOOST_TEST(name[0] != '.', name);
    // An existing folder without the slash is a folder too.
    ok(sal + " --out " + s.path("dir"));
    BOOST_TEST(files_in(s.path("dir")).size() == 5u);

    // bench: an explicit --batch on a fixed-batch model.
    const std::string fixed = fixed_batch_model(s);
    expect_refusal(s, "bench " + fixed + " --batch 16 --iters 1", {"fixed.onnx", "--batch 16", "dynamic"});
    ok("bench " + fixed + " --iters 1 --warmup 0");

    // Labels: 3 lines for 10 classes, naming the file and both counts.
    const std::string labels = s.file("three.labels.txt", "a\nb\nc\n");
    expect_refusal(s, "classify " + m + " " + img + " --labels " + labels, {"three.labels.txt", "3 labels", "10 classes"});
    expect_refusal(s, sal + " --labels " + labels + " --out " + s.path("out"), {"three.labels.txt", "3 labels", "10 classes"});
    const std::string ten = s.file("ten.labels.txt", "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n");
    const result r = ok("classify " + m + " " + img + " --labels " + ten + " --top 10");
    for (const char* l : {" a ", " j "}) BOOST_TEST(r.out.find(l) != std::string::npos, r.out);
}

// A PyTorch checkpoint handed over as a model: the message says what it is and what to do.
BOOST_AUTO_TEST_CASE(pytorch_checkpoints_are_recognised) {
    scratch s;
    const std::string img = bundled_image().string();
    std::vector<std::string> checkpoints = {s.file("junk.pt", std::string("PK\x03\x04", 4) + std::string(200, '\x17'))};
    // A zip archive laid out as torch.save writes one, and a pre-1.6 pickle stream, made without torch.
    const std::string python = env("DEEPINSIDE_PYTHON");
    BOOST_TEST_REQUIRE(!python.empty());
    const std::string zip = s.path("zip.pth"), pickle = s.path("pickle.pth");
    const std::string script = s.file(
        "make.py",
        "import pickle, sys, zipfile\n"
        "with zipfile.ZipFile(sys.argv[1], 'w') as z:\n"
        "    z.writestr('archive/data.pkl', pickle.dumps({'w': [0.0, 0.0]}, protocol=2))\n"
        "    z.writestr('archive/version', '3\\n')\n"
        "open(sys.argv[2], 'wb').write(pickle.dumps({'w': [0.0, 0.0]}, protocol=2))\n");
    BOOST_TEST_REQUIRE(std::system(("'" + python + "' " + script + " " + zip + " " + pickle).c_str()) == 0);
    checkpoints.push_back(zip);
    checkpoints.push_back(pickle);
    // The real thing, where PyTorch is installed.
    const std::string real = s.path("real.pt");
    if (std::system(("'" + python + "' -c \"import torch; torch.save({'w': torch.zeros(2)}, '" + real + "')\" > /dev/null 2>&1").c_str()) == 0)
        checkpoints.push_back(real);
    else
        BOOST_TEST_MESSAGE(python << " cannot import torch: the real torch.save file is not tried");
    for (const auto& file : checkpoints) {
        const std::string name = fs::path(file).filename().string();
        for (const std::string& cmd : {"info " + file, "classify " + file + " " + img, "saliency " + file + " " + img + " --out " + s.path("out")})
            expect_refusal(s, cmd, {name, "PyTorch checkpoint", "torch.onnx.export"});
    }
    // Other garbage is not called a checkpoint.
    const result r = run("info " + s.file("noise.onnx", std::string(64, '\x7f')));
    BOOST_TEST(r.status == 1);
    BOOST_TEST(r.err.find("PyTorch") == std::string::npos, r.err);
}

// --layer by a node's name (info's layer column) is its output tensor; a name that is neither is
// refused with the nearest real names.
BOOST_AUTO_TEST_CASE(layer_by_node_name_or_nearest_names) {
    scratch s;
    const std::string m = bundled_model(), img = bundled_image().string();
    const json info = json::parse(ok("info " + m + " --json -").out);
    std::string node, output;
    for (const auto& l : info["layers"])
        if (l["op"] == "Conv") {
            node = l["name"];
            output = l["output"];
            break;
        }
    BOOST_TEST_REQUIRE(!node.empty());
    BOOST_TEST_REQUIRE(node != output);
    const std::string base = "saliency " + m + " " + img + " --method guided --channel 3";
    ok(base + " --layer " + node + " --out " + s.path("by-node"));
    ok(base + " --layer " + output + " --out " + s.path("by-tensor"));
    ok("saliency " + m + " " + img + " --method guided --channel 4 --layer " + output + " --out " + s.path("other"));
    expect_identical(di::read_npy(s.path("by-node.grad.npy")), di::read_npy(s.path("by-tensor.grad.npy")), node + " vs " + output);
    expect_different(di::read_npy(s.path("by-node.grad.npy")), di::read_npy(s.path("other.grad.npy")), "channel 3 vs channel 4");

    const std::string typo = "/conv2/Conv_outptu_0";
    expect_refusal(s, "saliency " + m + " " + img + " --layer " + typo + " --channel 0 --out " + s.path("out"),
                   {typo, "nearest", "/conv2/Conv_output_0"});
    expect_refusal(s, "saliency " + m + " " + img + " --layer /conv9/Conv --channel 0 --out " + s.path("out"),
                   {"/conv9/Conv", "nearest", "/conv"});
}

// ---- Several processes --------------------------------------------------------------------------

namespace {

const std::string mpirun = mpirun_two_ranks;

/// The JSON of a run with what may differ between runs removed (time, process count) and the
/// output folder's name replaced.
std::string comparable(json j, const std::string& folder) {
    j["summary"].erase("seconds");
    j.erase("processes");
    std::string text = j.dump(1);
    for (size_t at = text.find(folder); at != std::string::npos; at = text.find(folder, at)) text.replace(at, folder.size(), "OUT");
    return text;
}

} // namespace

BOOST_AUTO_TEST_CASE(mpirun_gives_the_single_process_files, *deepinside::test_support::needs_file("/usr/bin/mpirun", "openmpi-bin")) {
    scratch s;
    const std::string m = bundled_model();
    const std::string args = "saliency " + m + " " + images_dir() + " --batch 3 --method gradient,guided";
    const result one = ok(args + " --out " + s.path("A") + "/ --json " + s.path("a.json"));
    const result two = ok(args + " --out " + s.path("B") + "/ --json " + s.path("b.json"), mpirun);
    const json a = read_json(s.path("a.json")), b = read_json(s.path("b.json"));
    BOOST_TEST(a.at("processes").get<int>() == 1);
    BOOST_TEST(b.at("processes").get<int>() == 2); // really two processes
    BOOST_TEST(comparable(a, s.path("A")) == comparable(b, s.path("B")));
    BOOST_TEST(b["images"].size() == 8u);
    // The same lines, in the same order (the timing line apart).
    const auto lines = [&](std::string t, const std::string& folder) {
        t = t.substr(0, t.find("saliency: "));
        for (size_t at = t.find(folder); at != std::string::npos; at = t.find(folder, at)) t.replace(at, folder.size(), "OUT");
        return t;
    };
    BOOST_TEST(lines(one.out, s.path("A")) == lines(two.out, s.path("B")));
    BOOST_TEST(std::count(one.out.begin(), one.out.end(), '\n') == 9);
    const std::vector<std::string> names = files_in(s.path("A"));
    BOOST_TEST(names == files_in(s.path("B")), boost::test_tools::per_element());
    BOOST_TEST(names.size() == 8u * 2u * 4u);
    size_t npy = 0;
    for (const auto& name : names)
        if (name.size() > 4 && name.substr(name.size() - 4) == ".npy") {
            ++npy;
            BOOST_TEST((bytes_of(s.path("A/" + name)) == bytes_of(s.path("B/" + name))), name);
        }
    BOOST_TEST(npy == 8u * 2u * 2u);

    // One tensor is one process's job: --input and --save-input are refused under mpirun.
    const std::string x = s.path("x.npy");
    di::write_npy(x, library_side(m, bundled_image()).x);
    BOOST_TEST_CONTEXT("mpirun ... --input") {
        const result r = run("saliency " + m + " --input " + x + " --out " + s.path("out"), mpirun);
        BOOST_TEST(r.status != 0);
        BOOST_TEST(r.err.find("--input") != std::string::npos, r.err);
        BOOST_TEST(r.err.find("mpirun") != std::string::npos, r.err);
        BOOST_TEST(s.empty_of_outputs());
        std::istringstream in(r.err);
        size_t ours = 0;
        for (std::string line; std::getline(in, line);) ours += line.rfind("deepinside: error:", 0) == 0;
        BOOST_TEST(ours == 1u, "one error line, not one per process: " << r.err);
    }
}
