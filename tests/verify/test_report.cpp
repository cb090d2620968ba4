// The certificate's JSON (schema deepinside.verify/1) and the HTML/Markdown report, on certificates
// built by hand: a max pooling, a ReLU, a not-covered layer and a convolution.
#include "support.hpp"

#include "certificate_json.hpp"
#include "report.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include <stdlib.h>

using namespace deepinside;
using namespace deepinside::verify;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A folder under the system's temporary folder, removed with everything in it.
struct scratch_dir {
    fs::path path;
    scratch_dir() {
        std::string pattern = (fs::temp_directory_path() / "deepinside-report-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

tensor ramp(const shape_t& shape, float scale) {
    tensor t(shape);
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = scale * (static_cast<float>(i % 7) - 3.0f);
    return t;
}

signal_difference signal(const std::string& name, double abs_diff, double rel_diff, double fraction, int64_t elements) {
    signal_difference s;
    s.signal = name;
    s.max_abs_diff = abs_diff;
    s.max_rel_diff = rel_diff;
    s.differing_fraction = fraction;
    s.elements = elements;
    return s;
}

layer_result layer(const std::string& name, const std::string& op, rules::deconvnet_layer kind, const std::string& relation) {
    layer_result l;
    l.name = name;
    l.op = op;
    l.input = name + ".in";
    l.output = name + ".out";
    l.layer = kind;
    l.expected = rules::expected_relation(kind);
    l.relation = relation;
    l.engine_deconvnet = std::string(rules::find(op)->deconvnet_does);
    return l;
}

/// One image's certificate of class `cls`; `scale` makes the second image's numbers differ.
image_certificate fake(const std::string& name, int64_t cls, double scale = 1) {
    image_certificate c;
    c.image = name;
    c.what.what = target::kind::class_score;
    c.what.index = {cls};
    c.target_text = "class score " + std::to_string(cls);
    c.scores = {0.1f, 0.2f};
    c.input = ramp({1, 3, 4, 5}, 0.5f);
    c.gradient = ramp({1, 3, 4, 5}, 1.0f);
    c.deconvnet = ramp({1, 3, 4, 5}, 1.5f);
    c.guided = ramp({1, 3, 4, 5}, 0.25f);

    layer_result pool = layer("pool<1>", "MaxPool", rules::deconvnet_layer::max_pooling, "identical");
    pool.signals = {signal("real", 1e-7 * scale, 2e-7 * scale, 0, 16), signal("random", 3e-7, 4e-7, 0, 16)};
    pool.max_abs_diff = 3e-7;
    pool.max_rel_diff = 4e-7;
    pool.windows = 16;
    pool.tied_windows = static_cast<int64_t>(2 * scale);

    layer_result relu = layer("relu<script>alert(1)</script>", "Relu", rules::deconvnet_layer::rectification, "differs");
    signal_difference real = signal("real", 0.5 * scale, 0.9, 0.25 * scale, 64);
    real.mask_disagreement = 0.25 * scale;
    signal_difference random = signal("random", 0.7, 1.0, 0.5, 64);
    random.mask_disagreement = 0.5;
    relu.signals = {real, random};
    relu.max_abs_diff = 0.7;
    relu.max_rel_diff = 1.0;
    relu.differing_fraction = 0.25 * scale;

    layer_result bn = layer("bn & co", "BatchNormalization", rules::deconvnet_layer::none, "not-covered");

    layer_result conv = layer("conv\"1\"", "Conv", rules::deconvnet_layer::convolution, "identical");
    conv.signals = {signal("real", 1e-6 * scale, 1e-7 * scale, 0, 60), signal("random", 2e-6, 2e-7, 0, 60)};
    conv.max_abs_diff = 2e-6 * scale;
    conv.max_rel_diff = 2e-7 * scale;

    c.layers = {pool, relu, bn, conv};
    c.end_to_end.rel_l2 = 1e-6 * scale;
    c.end_to_end.max_rel_diff = 2e-6 * scale;
    c.end_to_end.bound = 1e-4;
    c.end_to_end.composed_with_reference = {"bn & co"};
    c.end_to_end.gradient_deconvnet = {0.8 * scale, 0.6, 0.5, 0.4};
    c.end_to_end.gradient_guided = {0.3, 0.9, 0.8, 0.7};
    c.end_to_end.deconvnet_guided = {0.7, 0.65, 0.55, 0.45};
    c.gradient_check.directions = {{1.0, 1.0000001, 1e-7}, {-2.0, -2.0000004, 2e-7}};
    c.gradient_check.step = 1e-4;
    c.gradient_check.bound = 1e-3;
    c.gradient_check.max_rel_error = 2e-7 * scale;
    c.seconds = 0.5;
    return c;
}

const json& layer_named(const json& layers, const std::string& name) {
    for (const json& l : layers)
        if (l.at("name") == name) return l;
    BOOST_FAIL("no layer " << name);
    throw std::logic_error("unreachable");
}

std::vector<std::string> keys_of(const json& j) {
    std::vector<std::string> keys;
    for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
    return keys;
}

void check_keys(const json& j, std::vector<std::string> expected) {
    std::sort(expected.begin(), expected.end());
    const std::vector<std::string> got = keys_of(j); // nlohmann::json keeps keys sorted
    BOOST_CHECK_EQUAL_COLLECTIONS(got.begin(), got.end(), expected.begin(), expected.end());
}

} // namespace

BOOST_AUTO_TEST_SUITE(report)

BOOST_AUTO_TEST_CASE(json_of_one_image_has_the_schema_fields) {
    const json j = certificate_json("models/tiny.onnx", {fake("cat.png", 3)}, tolerances{});
    check_keys(j, {"schema", "ok", "model", "class", "target", "tolerances", "layers", "end_to_end", "gradient_check", "images"});
    BOOST_CHECK_EQUAL(j.at("schema"), "deepinside.verify/1");
    BOOST_CHECK(j.at("ok").is_boolean() && j.at("ok").get<bool>());
    BOOST_CHECK_EQUAL(j.at("model"), "models/tiny.onnx");
    BOOST_CHECK(j.at("class").is_number_integer());
    BOOST_CHECK_EQUAL(j.at("class").get<int>(), 3);

    const json& t = j.at("target");
    check_keys(t, {"kind", "tensor", "index", "unit", "text"});
    BOOST_CHECK_EQUAL(t.at("kind"), "class_score");
    BOOST_CHECK(t.at("tensor").is_string());
    BOOST_CHECK(t.at("index") == json::array({3}));
    BOOST_CHECK(t.at("unit").is_array() && t.at("unit").empty());
    BOOST_CHECK_EQUAL(t.at("text"), "class score 3");

    const json& tol = j.at("tolerances");
    check_keys(tol, {"layer_max_rel", "end_to_end_rel_l2", "gradient_check_rel"});
    BOOST_CHECK_EQUAL(tol.at("layer_max_rel").get<double>(), tolerances{}.layer_max_rel);
    BOOST_CHECK_EQUAL(tol.at("end_to_end_rel_l2").get<double>(), tolerances{}.end_to_end_rel_l2);
    BOOST_CHECK_EQUAL(tol.at("gradient_check_rel").get<double>(), tolerances{}.gradient_check_rel);

    BOOST_REQUIRE_EQUAL(j.at("images").size(), 1u);
    const json& im = j.at("images")[0];
    check_keys(im, {"image", "class", "target", "ok", "seconds", "layers", "end_to_end", "gradient_check"});
    BOOST_CHECK_EQUAL(im.at("image"), "cat.png");
    BOOST_CHECK_EQUAL(im.at("class").get<int>(), 3);
    BOOST_CHECK_EQUAL(im.at("target"), "class score 3");
    BOOST_CHECK_EQUAL(im.at("seconds").get<double>(), 0.5);

    const json& layers = im.at("layers");
    BOOST_REQUIRE_EQUAL(layers.size(), 4u);
    BOOST_CHECK_EQUAL(layers[0].at("name"), "pool<1>"); // the certificate's order, target first
    BOOST_CHECK_EQUAL(layers[3].at("name"), "conv\"1\"");

    const json& conv = layer_named(layers, "conv\"1\"");
    check_keys(conv, {"name", "op", "input", "output", "layer", "expected", "relation", "ok", "max_abs_diff", "max_rel_diff",
                      "differing_fraction", "signals", "engine_deconvnet"});
    BOOST_CHECK_EQUAL(conv.at("op"), "Conv");
    BOOST_CHECK_EQUAL(conv.at("input"), "conv\"1\".in");
    BOOST_CHECK_EQUAL(conv.at("layer"), "convolution");
    BOOST_CHECK_EQUAL(conv.at("expected"), "identical");
    BOOST_CHECK_EQUAL(conv.at("relation"), "identical");
    BOOST_CHECK_EQUAL(conv.at("max_abs_diff").get<double>(), 2e-6);
    BOOST_CHECK_EQUAL(conv.at("engine_deconvnet"), "the transposed convolution (flipped filters)");
    BOOST_REQUIRE_EQUAL(conv.at("signals").size(), 2u);
    check_keys(conv.at("signals")[0], {"signal", "max_abs_diff", "max_rel_diff", "differing_fraction", "elements"});
    BOOST_CHECK_EQUAL(conv.at("signals")[0].at("signal"), "real");
    BOOST_CHECK(conv.at("signals")[0].at("elements").is_number_integer());
    BOOST_CHECK_EQUAL(conv.at("signals")[0].at("elements").get<int64_t>(), 60);

    const json& relu = layer_named(layers, "relu<script>alert(1)</script>");
    BOOST_CHECK_EQUAL(relu.at("layer"), "rectification");
    BOOST_CHECK_EQUAL(relu.at("expected"), "differs");
    BOOST_CHECK_EQUAL(relu.at("mask_disagreement").get<double>(), 0.25); // of the real signal
    BOOST_CHECK(!relu.contains("windows"));
    check_keys(relu.at("signals")[1], {"signal", "max_abs_diff", "max_rel_diff", "differing_fraction", "elements",
                                       "mask_disagreement", "violations"});
    BOOST_CHECK_EQUAL(relu.at("signals")[1].at("mask_disagreement").get<double>(), 0.5);
    BOOST_CHECK(relu.at("signals")[1].at("violations").is_number_integer());

    const json& pool = layer_named(layers, "pool<1>");
    BOOST_CHECK_EQUAL(pool.at("layer"), "max pooling");
    BOOST_CHECK(pool.at("windows").is_number_integer() && pool.at("tied_windows").is_number_integer());
    BOOST_CHECK_EQUAL(pool.at("windows").get<int64_t>(), 16);
    BOOST_CHECK_EQUAL(pool.at("tied_windows").get<int64_t>(), 2);
    BOOST_CHECK(!pool.contains("mask_disagreement"));
    BOOST_CHECK(!pool.at("signals")[0].contains("violations"));

    const json& bn = layer_named(layers, "bn & co");
    BOOST_CHECK_EQUAL(bn.at("layer"), "none");
    BOOST_CHECK_EQUAL(bn.at("expected"), "not-covered");
    BOOST_CHECK_EQUAL(bn.at("relation"), "not-covered");
    BOOST_CHECK(bn.at("max_abs_diff").is_null());
    BOOST_CHECK(bn.at("max_rel_diff").is_null());
    BOOST_CHECK(bn.at("differing_fraction").is_null());
    BOOST_CHECK(bn.at("signals").is_array() && bn.at("signals").empty());
    BOOST_CHECK(!bn.contains("problem"));

    const json& e = im.at("end_to_end");
    check_keys(e, {"rel_l2", "max_rel_diff", "guided_rel_l2", "guided_max_rel_diff", "bound", "ok", "composed_with_reference",
                   "gradient_vs_deconvnet",
                   "gradient_vs_guided", "deconvnet_vs_guided"});
    BOOST_CHECK(e.at("composed_with_reference") == json::array({"bn & co"}));
    check_keys(e.at("gradient_vs_guided"), {"rel_l2", "cosine", "spearman", "top5_overlap"});
    BOOST_CHECK_EQUAL(e.at("gradient_vs_guided").at("cosine").get<double>(), 0.9);

    const json& g = im.at("gradient_check");
    check_keys(g, {"directions", "jitter", "step", "bound", "max_rel_error", "max_reference_rel_error", "engine_vs_reference",
                   "decisions", "decisions_differing", "basis", "ok"});
    BOOST_REQUIRE_EQUAL(g.at("directions").size(), 2u);
    check_keys(g.at("directions")[1], {"finite_difference", "engine", "rel_error", "reference", "reference_rel_error", "step",
                                        "decisions_crossed"});
    BOOST_CHECK_EQUAL(g.at("directions")[1].at("finite_difference").get<double>(), -2.0);

    // The aggregate of one image is that image's layers.
    BOOST_REQUIRE_EQUAL(j.at("layers").size(), 4u);
    BOOST_CHECK(j.at("layers") == layers);
    BOOST_CHECK_EQUAL(j.at("end_to_end").at("images").get<int>(), 1);
    BOOST_CHECK_EQUAL(j.at("gradient_check").at("directions").get<int>(), 2);

    BOOST_CHECK_EQUAL(target_kind_name(target::kind::neuron), "neuron");
    BOOST_CHECK_EQUAL(target_kind_name(target::kind::channel_sum), "channel_sum");
    BOOST_CHECK_EQUAL(target_kind_name(target::kind::channel_max), "channel_max");
    BOOST_CHECK_EQUAL(target_kind_name(target::kind::tensor_sum), "tensor_sum");
}

BOOST_AUTO_TEST_CASE(json_aggregates_two_images_with_different_classes) {
    image_certificate a = fake("a.png", 3), b = fake("b.png", 7, 2);
    // b: the convolution differs (a fault), so that layer, the image and the certificate fail.
    b.layers[3].relation = "differs";
    b.layers[3].ok = false;
    b.layers[3].problem = "conv\"1\": the engine differs from DeconvNet";
    b.ok = false;
    b.end_to_end.ok = false;
    b.gradient_check.directions.push_back({3.0, 3.0, 0});

    const json j = certificate_json("m.onnx", {a, b}, tolerances{});
    BOOST_CHECK(!j.at("ok").get<bool>());
    BOOST_CHECK(j.at("class") == json::array({3, 7}));
    BOOST_CHECK_EQUAL(j.at("target").at("text"), "class score 3"); // the first image's
    BOOST_REQUIRE_EQUAL(j.at("images").size(), 2u);
    BOOST_CHECK_EQUAL(j.at("images")[1].at("class").get<int>(), 7);
    BOOST_CHECK(!j.at("images")[1].at("ok").get<bool>());

    const json& layers = j.at("layers");
    BOOST_REQUIRE_EQUAL(layers.size(), 4u);
    BOOST_CHECK_EQUAL(layers[0].at("name"), "pool<1>");
    const json& conv = layers[3];
    BOOST_CHECK_EQUAL(conv.at("relation"), "differs");
    BOOST_CHECK(!conv.at("ok").get<bool>());
    BOOST_CHECK_EQUAL(conv.at("problem"), "conv\"1\": the engine differs from DeconvNet");
    BOOST_CHECK_EQUAL(conv.at("max_abs_diff").get<double>(), 4e-6);
    BOOST_CHECK_EQUAL(conv.at("signals")[0].at("max_abs_diff").get<double>(), 2e-6);
    const json& relu = layers[1];
    BOOST_CHECK(relu.at("ok").get<bool>());
    BOOST_CHECK_EQUAL(relu.at("differing_fraction").get<double>(), 0.5);
    BOOST_CHECK_EQUAL(relu.at("mask_disagreement").get<double>(), 0.5);
    BOOST_CHECK_EQUAL(layers[0].at("tied_windows").get<int64_t>(), 4);
    BOOST_CHECK(layers[2].at("max_abs_diff").is_null());

    const json& e = j.at("end_to_end");
    BOOST_CHECK(!e.at("ok").get<bool>());
    BOOST_CHECK_EQUAL(e.at("rel_l2").get<double>(), 2e-6);
    BOOST_CHECK_EQUAL(e.at("images").get<int>(), 2);
    BOOST_CHECK_CLOSE(e.at("gradient_vs_deconvnet").at("rel_l2").get<double>(), 1.2, 1e-9); // mean of 0.8 and 1.6
    BOOST_CHECK_EQUAL(e.at("bound").get<double>(), 1e-4);

    const json& g = j.at("gradient_check");
    BOOST_CHECK(g.at("directions").is_number_integer());
    BOOST_CHECK_EQUAL(g.at("directions").get<int>(), 5);
    BOOST_CHECK_EQUAL(g.at("max_rel_error").get<double>(), 4e-7);
    BOOST_CHECK(g.at("ok").get<bool>());

    // Two images of one class: "class" is that int.
    const json same = certificate_json("m.onnx", {fake("a.png", 5), fake("b.png", 5)}, tolerances{});
    BOOST_CHECK(same.at("class").is_number_integer());
    BOOST_CHECK_EQUAL(same.at("class").get<int>(), 5);
    BOOST_CHECK(same.at("ok").get<bool>());

    // Images whose layers differ cannot be aggregated.
    image_certificate other = fake("c.png", 3);
    other.layers.pop_back();
    BOOST_CHECK_THROW(certificate_json("m.onnx", {a, other}, tolerances{}), input_error);
}

BOOST_AUTO_TEST_CASE(json_of_a_layer_target_has_a_null_class) {
    image_certificate c = fake("x.npy[0]", 0);
    c.what.what = target::kind::channel_sum;
    c.what.tensor = "relu1";
    c.what.index = {2};
    c.target_text = "sum of channel 2 of relu1";
    const json j = certificate_json("m.onnx", {c, c}, tolerances{});
    BOOST_CHECK(j.at("class").is_null());
    BOOST_CHECK(j.at("images")[0].at("class").is_null());
    BOOST_CHECK_EQUAL(j.at("target").at("kind"), "channel_sum");
    BOOST_CHECK_EQUAL(j.at("target").at("tensor"), "relu1");
    BOOST_CHECK(j.at("target").at("index") == json::array({2}));

    const json none = certificate_json("m.onnx", {}, tolerances{});
    BOOST_CHECK(none.at("class").is_null());
    BOOST_CHECK(none.at("target").is_null());
    BOOST_CHECK(none.at("layers").is_array() && none.at("layers").empty());
}

BOOST_AUTO_TEST_CASE(json_writes_non_finite_numbers_as_null) {
    image_certificate c = fake("bad.png", 1);
    c.layers[3].max_abs_diff = std::nan("");
    c.layers[1].signals[0].mask_disagreement = std::numeric_limits<double>::infinity();
    c.end_to_end.gradient_guided.spearman = std::nan("");
    c.gradient_check.directions[0].finite_difference = -std::numeric_limits<double>::infinity();
    c.seconds = std::numeric_limits<double>::infinity();
    const json j = certificate_json("m.onnx", {c, fake("ok.png", 1)}, tolerances{});
    const json& im = j.at("images")[0];
    BOOST_CHECK(im.at("layers")[3].at("max_abs_diff").is_null());
    BOOST_CHECK(im.at("layers")[1].at("mask_disagreement").is_null());
    BOOST_CHECK(im.at("end_to_end").at("gradient_vs_guided").at("spearman").is_null());
    BOOST_CHECK(im.at("gradient_check").at("directions")[0].at("finite_difference").is_null());
    BOOST_CHECK(im.at("seconds").is_null());
    // A NaN in one image is not hidden by the other image's number in the aggregate.
    BOOST_CHECK(j.at("layers")[3].at("max_abs_diff").is_null());
    BOOST_CHECK(j.at("end_to_end").at("gradient_vs_guided").at("spearman").is_null());

    const std::string text = j.dump(2);
    BOOST_CHECK(text.find("nan") == std::string::npos && text.find("inf") == std::string::npos);
    const json back = json::parse(text);
    BOOST_CHECK(back == j);
    BOOST_CHECK(back.at("images")[0].at("layers")[3].at("max_abs_diff").is_null());
}

BOOST_AUTO_TEST_CASE(write_report_writes_the_page_the_markdown_and_the_pictures) {
    scratch_dir tmp;
    const std::string dir = tmp.file("out/nested"); // created with its parent
    std::vector<image_certificate> images = {fake("a<b>.png", 3)};
    // The gradient's map is max over channels of |signal|: one element of channel 2 at (y 1, x 2)
    // stands out, so that pixel is the brightest of the heatmap and the others are its darkest.
    std::fill(images[0].gradient.data.begin(), images[0].gradient.data.end(), 0.0f);
    images[0].gradient.data[2 * 20 + 1 * 5 + 2] = -5.0f;
    write_report(dir, certificate_json("models/tiny<&>.onnx", images, tolerances{}), images);

    const std::string page = slurp(dir + "/index.html");
    BOOST_CHECK(page.find("<!DOCTYPE html>") == 0);
    BOOST_CHECK(page.find("PASS") != std::string::npos);
    BOOST_CHECK(page.find("relu&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
    BOOST_CHECK(page.find("<script") == std::string::npos);
    BOOST_CHECK(page.find("pool&lt;1&gt;") != std::string::npos);
    BOOST_CHECK(page.find("conv&quot;1&quot;") != std::string::npos);
    BOOST_CHECK(page.find("bn &amp; co") != std::string::npos);
    BOOST_CHECK(page.find("tiny&lt;&amp;&gt;.onnx") != std::string::npos);
    BOOST_CHECK(page.find("<svg") != std::string::npos);
    BOOST_CHECK(page.find("data:image/png;base64,iVBORw0KGgo") != std::string::npos); // the PNG signature
    BOOST_CHECK(page.find("http://") == page.find("http://www.w3.org/2000/svg")); // no external resource
    BOOST_CHECK(page.find("https://") == std::string::npos);

    const std::string markdown = slurp(dir + "/report.md");
    BOOST_CHECK(markdown.find("# ") == 0);
    BOOST_CHECK(markdown.find("PASS") != std::string::npos);
    BOOST_CHECK(markdown.find("relu\\<script\\>") != std::string::npos);
    BOOST_CHECK(markdown.find("(0-gradient.png)") != std::string::npos);
    BOOST_CHECK(markdown.find("█") != std::string::npos);

    for (const char* kind : {"input", "gradient", "deconvnet", "guided", "difference"}) {
        const std::string png = dir + "/0-" + kind + ".png";
        BOOST_REQUIRE_MESSAGE(fs::is_regular_file(png), png);
        const image img = read_image(png);
        BOOST_CHECK_EQUAL(img.width, 5);
        BOOST_CHECK_EQUAL(img.height, 4);
        BOOST_CHECK_EQUAL(img.channels, 3);
    }
    const image gradient = read_image(dir + "/0-gradient.png");
    for (int i = 0; i < 20; ++i) {
        const uint8_t* px = &gradient.pixels[static_cast<size_t>(i) * 3];
        if (i == 1 * 5 + 2)
            BOOST_CHECK(px[0] > 240 && px[1] > 240); // inferno at 1: pale yellow
        else
            BOOST_CHECK(px[0] < 10 && px[1] < 10); // inferno at 0: black
    }

    // Nothing but the report's files: no temporary file left behind.
    BOOST_CHECK_EQUAL(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 7);

    // Several images, one failing, a one-channel input: an aggregate table and one section per image.
    std::vector<image_certificate> two = {fake("a.png", 3), fake("b.png", 7, 2)};
    two[1].ok = false;
    two[1].input = ramp({1, 1, 4, 5}, 1.0f);
    two[1].gradient = ramp({1, 1, 4, 5}, 1.0f);
    two[1].deconvnet = ramp({1, 1, 4, 5}, 2.0f);
    two[1].guided = ramp({1, 1, 4, 5}, 3.0f);
    const std::string dir2 = tmp.file("two");
    write_report(dir2, certificate_json("m.onnx", two, tolerances{}), two);
    const std::string page2 = slurp(dir2 + "/index.html");
    BOOST_CHECK(page2.find("FAIL") != std::string::npos);
    BOOST_CHECK(page2.find("Image 1: b.png") != std::string::npos);
    BOOST_CHECK_EQUAL(read_image(dir2 + "/1-input.png").channels, 1);
    BOOST_CHECK(fs::is_regular_file(dir2 + "/1-difference.png"));
    BOOST_CHECK(fs::is_regular_file(dir2 + "/report.md"));
}

BOOST_AUTO_TEST_CASE(write_report_into_an_unwritable_path_throws_io_error) {
    scratch_dir tmp;
    const std::string file = tmp.file("plain-file");
    std::ofstream(file) << "not a folder";
    const std::vector<image_certificate> images = {fake("a.png", 3)};
    const json summary = certificate_json("m.onnx", images, tolerances{});
    BOOST_CHECK_THROW(write_report(file + "/report", summary, images), io_error);
    BOOST_CHECK_THROW(write_report(file, summary, images), io_error);
    try {
        write_report(file + "/report", summary, images);
    } catch (const io_error& e) {
        BOOST_CHECK(std::string(e.what()).find(file) != std::string::npos);
    }
}

BOOST_AUTO_TEST_SUITE_END()
