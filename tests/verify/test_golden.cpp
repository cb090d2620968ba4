// Golden files (verify/golden.hpp): write then compare, every kind of moved item with its place,
// tolerances, corrupt and foreign files, exact float bits, and atomic writing. Certificates are
// built by hand on tiny tensors: input [1, 2, 2, 3], ten class scores, five layers.
#include "support.hpp"

#include "golden.hpp"

#include <deepinside/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include <stdlib.h>

using namespace deepinside;
using namespace deepinside::verify;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

/// A folder under the system's temporary folder, removed with everything in it.
struct golden_dir {
    fs::path path;
    golden_dir() {
        std::string pattern = (fs::temp_directory_path() / "deepinside-golden-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path = pattern;
    }
    ~golden_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const std::string& name) const { return (path / name).string(); }
    std::vector<std::string> entries() const {
        std::vector<std::string> names;
        for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
        std::sort(names.begin(), names.end());
        return names;
    }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void spit(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << text;
}

const shape_t input_shape{1, 2, 2, 3};

tensor signal_tensor(float scale, float offset) {
    tensor t(input_shape);
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = scale * (static_cast<float>(i % 5) - 2.0f) + offset;
    return t;
}

layer_result layer(const std::string& name, const std::string& op, const std::string& relation, double max_rel,
                   double fraction, int64_t tied = 0) {
    layer_result l;
    l.name = name;
    l.op = op;
    l.layer = rules::find(op)->layer;
    l.expected = rules::expected_relation(l.layer);
    l.relation = relation;
    l.max_rel_diff = max_rel;
    l.differing_fraction = fraction;
    l.tied_windows = tied;
    return l;
}

/// One image's certificate; `scale` makes the images' numbers differ.
image_certificate certificate(const std::string& name, float scale) {
    image_certificate c;
    c.image = name;
    c.what.what = target::kind::class_score;
    c.what.index = {1};
    c.target_text = "class 1 (top-1)";
    for (int k = 0; k < 10; ++k) c.scores.push_back(scale * (static_cast<float>(k) * 0.25f - 1.0f));
    c.input = signal_tensor(1.0f, 0.5f);
    c.gradient = signal_tensor(0.1f * scale, 0.01f);
    c.deconvnet = signal_tensor(0.2f * scale, 0.02f);
    c.guided = signal_tensor(0.3f * scale, 0.03f);
    c.layers = {layer("fc", "Gemm", "identical", 2e-7, 0),
                layer("flat", "Flatten", "identical", 0, 0),
                layer("pool1", "MaxPool", "identical", 1e-6, 0, 1),
                layer("relu1", "Relu", "differs", 0.9, 0.3),
                layer("conv1", "Conv", "identical", 1e-6, 0)};
    return c;
}

std::vector<image_certificate> two_images() { return {certificate("a.png", 1.0f), certificate("b.png", 2.0f)}; }

/// Writes `golden`, compares `now` with it.
golden_comparison compare(const golden_dir& dir, const std::vector<image_certificate>& golden,
                          const std::vector<image_certificate>& now, const golden_tolerances& tol = {}) {
    const std::string path = dir.file("golden.json");
    write_golden(path, "models/tiny.onnx", golden);
    return compare_golden(path, now, tol);
}

/// The one moved item of `r`, after checking there is exactly one.
const golden_difference& only(const golden_comparison& r) {
    BOOST_REQUIRE_MESSAGE(r.moved.size() == 1, r.summary());
    BOOST_CHECK(!r.ok);
    return r.moved.front();
}

/// A model_error whose message names `path` and contains `words`.
std::function<bool(const model_error&)> names(const std::string& path, const std::string& words) {
    return [=](const model_error& e) {
        const std::string m = e.what();
        BOOST_TEST_MESSAGE("model_error: " << m);
        return m.find(path) != std::string::npos && m.find(words) != std::string::npos;
    };
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

} // namespace

BOOST_AUTO_TEST_SUITE(golden)

BOOST_AUTO_TEST_CASE(unchanged_certificates_move_nothing) {
    golden_dir dir;
    const auto images = two_images();
    const golden_comparison r = compare(dir, images, images);
    BOOST_CHECK(r.ok);
    BOOST_CHECK(r.moved.empty());
    BOOST_CHECK_EQUAL(r.file, dir.file("golden.json"));
    BOOST_CHECK_EQUAL(r.summary(), "golden " + dir.file("golden.json") + ": nothing moved");
    const json j = r.to_json();
    BOOST_CHECK(j.at("ok").get<bool>());
    BOOST_CHECK(j.at("moved").empty());
    BOOST_CHECK_EQUAL(j.at("tolerances").at("signals").get<double>(), 1e-3);
    // Only the golden file: no temporary file left beside it.
    BOOST_CHECK(dir.entries() == std::vector<std::string>{"golden.json"});

    // The file is the documented format.
    const json file = json::parse(slurp(dir.file("golden.json")));
    BOOST_CHECK_EQUAL(file.at("schema").get<std::string>(), "deepinside.golden/1");
    BOOST_CHECK_EQUAL(file.at("model").get<std::string>(), "models/tiny.onnx");
    const std::string created = file.at("created").get<std::string>();
    BOOST_CHECK_MESSAGE(created.size() == 20 && created[4] == '-' && created[10] == 'T' && created.back() == 'Z', created);
    const json& im = file.at("images").at(1);
    BOOST_CHECK_EQUAL(im.at("image").get<std::string>(), "b.png");
    BOOST_CHECK(im.at("input_shape").get<shape_t>() == input_shape);
    BOOST_CHECK_EQUAL(im.at("class").get<int64_t>(), 1);
    BOOST_CHECK_EQUAL(im.at("target").get<std::string>(), "class 1 (top-1)");
    BOOST_CHECK(im.at("scores").at("shape").get<shape_t>() == shape_t{10});
    BOOST_CHECK_EQUAL(im.at("gradient").at("dtype").get<std::string>(), "float32");
    BOOST_CHECK_EQUAL(im.at("gradient").at("data").get<std::string>().size(), 12u * 4 / 3 * 4);
    BOOST_CHECK_EQUAL(im.at("layers").size(), 5u);
    BOOST_CHECK_EQUAL(im.at("layers").at(2).at("name").get<std::string>(), "pool1");
    BOOST_CHECK_EQUAL(im.at("layers").at(2).at("tied_windows").get<int64_t>(), 1);
    BOOST_CHECK_EQUAL(im.at("layers").at(3).at("relation").get<std::string>(), "differs");
    BOOST_CHECK_EQUAL(im.at("layers").at(3).at("differing_fraction").get<double>(), 0.3);

    // A target that is not a class score writes "class": null, and compares equal to itself.
    auto neuron = two_images();
    neuron[0].what.what = target::kind::channel_sum;
    neuron[0].what.index = {4};
    neuron[0].target_text = "sum of channel 4 of conv1";
    BOOST_CHECK(compare(dir, neuron, neuron).ok);
    BOOST_CHECK(json::parse(slurp(dir.file("golden.json"))).at("images").at(0).at("class").is_null());
}

BOOST_AUTO_TEST_CASE(logits_beyond_tolerance) {
    golden_dir dir;
    const auto golden = two_images();
    auto now = golden;
    // Scores of b.png reach 2.5 in magnitude; 1e-5 is 4e-6 relative: within 1e-4.
    now[1].scores[2] += 1e-5f;
    BOOST_CHECK(compare(dir, golden, now).ok);
    now[1].scores[7] += 0.01f; // 4e-3 relative
    const golden_comparison r = compare(dir, golden, now);
    const golden_difference& d = only(r);
    BOOST_CHECK_EQUAL(d.image, "b.png");
    BOOST_CHECK_EQUAL(d.what, "scores");
    BOOST_CHECK_EQUAL(d.where, "class 7");
    BOOST_CHECK_EQUAL(d.golden, golden[1].scores[7]);
    BOOST_CHECK_EQUAL(d.now, now[1].scores[7]);
    BOOST_CHECK_CLOSE(d.change, 0.01 / 2.5, 1);
    BOOST_CHECK_EQUAL(d.tolerance, 1e-4);
    BOOST_TEST_MESSAGE(r.summary());
    // A looser tolerance lets it pass.
    BOOST_CHECK(compare(dir, golden, now, parse_golden_tolerances("logits=1e-2")).ok);
}

BOOST_AUTO_TEST_CASE(one_signal_element_names_its_place) {
    golden_dir dir;
    const auto golden = two_images();
    auto now = golden;
    // (c, y, x) = (1, 0, 2) of [1, 2, 2, 3]: C-order position 1*6 + 0*3 + 2 = 8.
    now[1].deconvnet.data[8] += 0.5f;
    const golden_comparison r = compare(dir, golden, now);
    const golden_difference& d = only(r);
    BOOST_CHECK_EQUAL(d.image, "b.png");
    BOOST_CHECK_EQUAL(d.what, "deconvnet");
    BOOST_CHECK_EQUAL(d.where, "(1,0,2)");
    BOOST_CHECK_EQUAL(d.golden, golden[1].deconvnet.data[8]);
    BOOST_CHECK_EQUAL(d.now, now[1].deconvnet.data[8]);
    BOOST_CHECK_GT(d.change, 1e-3);
    BOOST_CHECK(d.detail.find("(1,0,2)") != std::string::npos);
    BOOST_CHECK(d.detail.find("deconvnet") != std::string::npos);

    // Below the relative L2 bound: not moved; a tolerance override makes the big change pass.
    auto small = golden;
    small[0].gradient.data[3] += 1e-6f;
    BOOST_CHECK(compare(dir, golden, small).ok);
    BOOST_CHECK(compare(dir, golden, now, parse_golden_tolerances("signals=10")).ok);

    // A NaN where the golden file has a number always moves.
    auto nan = golden;
    nan[0].guided.data[0] = std::numeric_limits<float>::quiet_NaN();
    const golden_comparison rn = compare(dir, golden, nan, parse_golden_tolerances("signals=1e9"));
    BOOST_CHECK_EQUAL(only(rn).what, "guided");
    BOOST_CHECK_EQUAL(only(rn).where, "(0,0,0)");
}

BOOST_AUTO_TEST_CASE(layer_relation_and_ok) {
    golden_dir dir;
    const auto golden = two_images();
    auto now = golden;
    now[0].layers[3].relation = "identical";
    now[0].layers[3].ok = false;
    const golden_comparison r = compare(dir, golden, now);
    BOOST_REQUIRE_EQUAL(r.moved.size(), 2u);
    BOOST_CHECK_EQUAL(r.moved[0].what, "relation");
    BOOST_CHECK_EQUAL(r.moved[0].where, "relu1 (Relu)");
    BOOST_CHECK_EQUAL(r.moved[0].image, "a.png");
    BOOST_CHECK(r.moved[0].detail.find("differs -> identical") != std::string::npos);
    BOOST_CHECK_EQUAL(r.moved[1].what, "ok");
    BOOST_CHECK_EQUAL(r.moved[1].where, "relu1 (Relu)");
    BOOST_CHECK_EQUAL(r.moved[1].golden, 1);
    BOOST_CHECK_EQUAL(r.moved[1].now, 0);

    // summary(): the count, then one line per item naming the image and the layer.
    const std::string s = r.summary();
    BOOST_TEST_MESSAGE(s);
    BOOST_CHECK_EQUAL(s.substr(0, s.find('\n')), "golden " + dir.file("golden.json") + ": 2 items moved");
    BOOST_CHECK_EQUAL(std::count(s.begin(), s.end(), '\n'), 2);
    BOOST_CHECK(s.find("\n  a.png: layer relu1 (Relu): relation differs -> identical") != std::string::npos);
    BOOST_CHECK(s.find("\n  a.png: layer relu1 (Relu): ok true -> false") != std::string::npos);

    const json j = r.to_json();
    BOOST_CHECK(!j.at("ok").get<bool>());
    BOOST_CHECK_EQUAL(j.at("file").get<std::string>(), dir.file("golden.json"));
    BOOST_REQUIRE_EQUAL(j.at("moved").size(), 2u);
    BOOST_CHECK_EQUAL(j.at("moved").at(0).at("what").get<std::string>(), "relation");
    BOOST_CHECK_EQUAL(j.at("moved").at(0).at("where").get<std::string>(), "relu1 (Relu)");
    BOOST_CHECK_EQUAL(j.at("moved").at(1).at("image").get<std::string>(), "a.png");
}

BOOST_AUTO_TEST_CASE(relu_fraction) {
    golden_dir dir;
    const auto golden = two_images();
    auto now = golden;
    now[1].layers[3].differing_fraction = 0.31; // moved 0.01: within 0.02
    now[1].layers[3].max_rel_diff = 0.2;         // ReLU: max_rel_diff is not a regression measure
    now[0].layers[4].differing_fraction = 0.5;   // a convolution's fraction is not checked
    BOOST_CHECK(compare(dir, golden, now).ok);
    now[1].layers[3].differing_fraction = 0.35;
    const golden_comparison r = compare(dir, golden, now);
    const golden_difference& d = only(r);
    BOOST_CHECK_EQUAL(d.image, "b.png");
    BOOST_CHECK_EQUAL(d.what, "differing-fraction");
    BOOST_CHECK_EQUAL(d.where, "relu1 (Relu)");
    BOOST_CHECK_EQUAL(d.golden, 0.3);
    BOOST_CHECK_EQUAL(d.now, 0.35);
    BOOST_CHECK_CLOSE(d.change, 0.05, 1e-6);
    BOOST_CHECK_EQUAL(d.tolerance, 0.02);
    BOOST_CHECK(compare(dir, golden, now, parse_golden_tolerances("fraction=0.1")).ok);
}

BOOST_AUTO_TEST_CASE(identical_layer_max_rel_diff) {
    golden_dir dir;
    const auto golden = two_images();
    auto now = golden;
    now[0].layers[4].max_rel_diff = 5e-5; // above golden 1e-6 but below the floor 1e-4
    BOOST_CHECK(compare(dir, golden, now).ok);
    now[0].layers[4].max_rel_diff = 2e-4;
    const golden_comparison r = compare(dir, golden, now);
    const golden_difference& d = only(r);
    BOOST_CHECK_EQUAL(d.what, "max-rel-diff");
    BOOST_CHECK_EQUAL(d.where, "conv1 (Conv)");
    BOOST_CHECK_EQUAL(d.golden, 1e-6);
    BOOST_CHECK_EQUAL(d.now, 2e-4);
    BOOST_CHECK_EQUAL(d.tolerance, 1e-4);
    // A golden value above the floor is the bound.
    auto loose = golden;
    loose[0].layers[4].max_rel_diff = 3e-4;
    BOOST_CHECK(compare(dir, loose, now).ok);
    BOOST_CHECK(compare(dir, golden, now, parse_golden_tolerances("layer_rel=1e-3")).ok);
}

BOOST_AUTO_TEST_CASE(tied_windows) {
    golden_dir dir;
    const auto golden = two_images();
    auto now = golden;
    now[1].layers[2].tied_windows = 3;
    const golden_comparison r = compare(dir, golden, now);
    const golden_difference& d = only(r);
    BOOST_CHECK_EQUAL(d.image, "b.png");
    BOOST_CHECK_EQUAL(d.what, "tied-windows");
    BOOST_CHECK_EQUAL(d.where, "pool1 (MaxPool)");
    BOOST_CHECK_EQUAL(d.golden, 1);
    BOOST_CHECK_EQUAL(d.now, 3);
}

BOOST_AUTO_TEST_CASE(structure_changes_are_items_not_errors) {
    golden_dir dir;
    const auto golden = two_images();

    // A layer gone and one new.
    auto layers = golden;
    layers[0].layers.erase(layers[0].layers.begin() + 1);
    layers[0].layers.push_back(layer("conv0", "Conv", "identical", 0, 0));
    golden_comparison r = compare(dir, golden, layers);
    BOOST_REQUIRE_EQUAL(r.moved.size(), 2u);
    BOOST_CHECK_EQUAL(r.moved[0].what, "layer-missing");
    BOOST_CHECK_EQUAL(r.moved[0].where, "flat (Flatten)");
    BOOST_CHECK_EQUAL(r.moved[1].what, "layer-added");
    BOOST_CHECK_EQUAL(r.moved[1].where, "conv0 (Conv)");

    // An op changed under the same name.
    auto op = golden;
    op[0].layers[0].op = "MatMul";
    BOOST_CHECK_EQUAL(only(compare(dir, golden, op)).what, "op");

    // One image more, one image fewer.
    auto more = golden;
    more.push_back(certificate("c.png", 3.0f));
    r = compare(dir, golden, more);
    BOOST_CHECK_EQUAL(only(r).what, "image-added");
    BOOST_CHECK_EQUAL(only(r).image, "c.png");
    r = compare(dir, more, golden);
    BOOST_CHECK_EQUAL(only(r).what, "image-missing");
    BOOST_CHECK_EQUAL(only(r).image, "c.png");

    // Another image at a position, another input shape, another signal shape, another class.
    auto renamed = golden;
    renamed[0].image = "z.png";
    BOOST_CHECK_EQUAL(only(compare(dir, golden, renamed)).what, "image-name");
    auto reshaped = golden;
    reshaped[1].input = tensor({1, 2, 3, 2}, reshaped[1].input.data);
    BOOST_CHECK_EQUAL(only(compare(dir, golden, reshaped)).what, "input-shape");
    auto signal_shape = golden;
    signal_shape[1].guided = tensor({1, 12}, signal_shape[1].guided.data);
    BOOST_CHECK_EQUAL(only(compare(dir, golden, signal_shape)).what, "guided");
    auto scores = golden;
    scores[1].scores.pop_back();
    BOOST_CHECK_EQUAL(only(compare(dir, golden, scores)).what, "scores");
    auto cls = golden;
    cls[0].what.index = {3};
    cls[0].target_text = "class 3 (top-1)";
    r = compare(dir, golden, cls);
    BOOST_CHECK_EQUAL(only(r).what, "class");
    BOOST_CHECK_EQUAL(only(r).golden, 1);
    BOOST_CHECK_EQUAL(only(r).now, 3);

    // No images at all on one side.
    r = compare(dir, golden, {});
    BOOST_CHECK_EQUAL(r.moved.size(), 2u);
    BOOST_CHECK(compare(dir, {}, {}).ok);
}

BOOST_AUTO_TEST_CASE(tolerances_parse_over_defaults) {
    const golden_tolerances d = parse_golden_tolerances("");
    BOOST_CHECK_EQUAL(d.logits, 1e-4);
    BOOST_CHECK_EQUAL(d.signals, 1e-3);
    BOOST_CHECK_EQUAL(d.fraction, 0.02);
    BOOST_CHECK_EQUAL(d.layer_rel, 1e-4);

    const golden_tolerances t = parse_golden_tolerances("logits=1e-5,signals=2e-3");
    BOOST_CHECK_EQUAL(t.logits, 1e-5);
    BOOST_CHECK_EQUAL(t.signals, 2e-3);
    BOOST_CHECK_EQUAL(t.fraction, 0.02);
    BOOST_CHECK_EQUAL(t.layer_rel, 1e-4);

    const golden_tolerances u = parse_golden_tolerances(" fraction = 0.1 , layer-rel=0 ");
    BOOST_CHECK_EQUAL(u.fraction, 0.1);
    BOOST_CHECK_EQUAL(u.layer_rel, 0.0);
    BOOST_CHECK_EQUAL(u.logits, 1e-4);
    BOOST_CHECK_EQUAL(parse_golden_tolerances("layer_rel=3").layer_rel, 3.0);

    for (const char* bad : {"logit=1", "logits", "logits=", "logits=abc", "logits=1e-5x", "logits=-1", "logits=nan",
                            "logits=inf", "logits=1,,signals=2", "logits=1,", "logits=1,logits=2", "=1"})
        BOOST_CHECK_EXCEPTION(parse_golden_tolerances(bad), input_error, [&](const input_error& e) {
            BOOST_TEST_MESSAGE(bad << " -> " << e.what());
            return std::string(e.what()).find("--golden-tolerance") != std::string::npos;
        });
    BOOST_CHECK_EXCEPTION(parse_golden_tolerances("speed=1"), input_error, [](const input_error& e) {
        return std::string(e.what()).find("unknown key \"speed\"") != std::string::npos;
    });
}

BOOST_AUTO_TEST_CASE(base64_is_standard_and_strict) {
    using golden_detail::base64_decode;
    using golden_detail::base64_encode;
    const auto enc = [](const std::string& s) {
        return base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    };
    const auto dec = [](const std::string& s) {
        const auto v = base64_decode(s);
        return std::string(v.begin(), v.end());
    };
    // RFC 4648 section 10.
    const std::vector<std::pair<std::string, std::string>> vectors = {
        {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
        {"foobar", "Zm9vYmFy"}};
    for (const auto& [plain, coded] : vectors) {
        BOOST_CHECK_EQUAL(enc(plain), coded);
        BOOST_CHECK_EQUAL(dec(coded), plain);
    }
    std::string all(256, '\0');
    for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
    BOOST_CHECK(dec(enc(all)) == all);
    BOOST_CHECK_EQUAL(enc("\xfb\xff"), "+/8=");

    for (const char* bad : {"Zg=", "Zg", "Zm9v!A==", "Zm9v YQ==", "Zm9v\nYQ==", "Zh==", "Zm9=", "Z===", "====",
                            "Zm=v", "Zg==Zg==", "Zm9v-_8="})
        BOOST_CHECK_EXCEPTION(base64_decode(bad), model_error, [&](const model_error& e) {
            BOOST_TEST_MESSAGE(bad << " -> " << e.what());
            return std::string(e.what()).find("base64") != std::string::npos;
        });
}

BOOST_AUTO_TEST_CASE(corrupt_and_foreign_files_are_model_errors) {
    golden_dir dir;
    const std::string path = dir.file("golden.json");
    write_golden(path, "m.onnx", two_images());
    const json good = json::parse(slurp(path));
    const auto images = two_images();
    const auto with = [&](const std::function<void(json&)>& edit) {
        json j = good;
        edit(j);
        spit(path, j.dump(1));
    };

    spit(path, "{\"schema\": \"deepinside.golden/1\", \"images\": [");
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "invalid JSON"));
    spit(path, "");
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "invalid JSON"));
    spit(path, "[1, 2]");
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "not an object"));

    with([](json& j) { j["schema"] = "deepinside.golden/2"; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "deepinside.golden/2"));
    with([](json& j) { j.erase("schema"); });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "schema"));
    with([](json& j) { j["schema"] = "deepinside.verify/1"; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "deepinside.verify/1"));

    with([](json& j) { j["images"][1]["gradient"]["data"] = "AAAA*AAA"; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "images[1].gradient.data"));
    with([](json& j) { j["images"][0]["guided"]["data"] = "AAAAA"; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "base64"));

    // One float short, one byte long.
    with([](json& j) { j["images"][0]["deconvnet"]["data"] = std::string(44 / 3 * 4, 'A') + "AAA="; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "needs 48"));
    with([](json& j) { j["images"][0]["scores"]["data"] = std::string(40 / 3 * 4, 'A') + "AAA="; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "images[0].scores.data"));

    with([](json& j) { j["images"][0]["gradient"]["dtype"] = "float16"; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "float16"));
    with([](json& j) { j["images"][0]["gradient"]["shape"] = {1, -2, 2, 3}; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "negative"));
    with([](json& j) { j["images"][1]["layers"][2].erase("tied_windows"); });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "images[1].layers[2]"));
    with([](json& j) { j["images"][1]["layers"][2]["ok"] = "yes"; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "ok"));
    with([](json& j) { j["images"][0]["class"] = 1.5; });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "class"));
    with([](json& j) { j["images"] = json::object(); });
    BOOST_CHECK_EXCEPTION(compare_golden(path, images, {}), model_error, names(path, "images"));

    // Unknown members are ignored; a null number (not finite when written) reads as NaN and moves.
    with([](json& j) { j["comment"] = "by hand"; j["images"][0]["note"] = 1; });
    BOOST_CHECK(compare_golden(path, images, {}).ok);
    with([](json& j) { j["images"][0]["layers"][3]["differing_fraction"] = nullptr; });
    BOOST_CHECK_EQUAL(only(compare_golden(path, images, {})).what, "differing-fraction");

    // Not there, or a folder: io_error naming the path.
    const std::string missing = dir.file("nope.json");
    BOOST_CHECK_EXCEPTION(compare_golden(missing, images, {}), io_error, [&](const io_error& e) {
        return std::string(e.what()).find(missing) != std::string::npos;
    });
    BOOST_CHECK_THROW(compare_golden(dir.path.string(), images, {}), io_error);
}

BOOST_AUTO_TEST_CASE(float_bits_round_trip_exactly) {
    golden_dir dir;
    const std::string path = dir.file("golden.json");
    auto images = two_images();
    const std::vector<float> special = {
        -0.0f,
        0.0f,
        std::numeric_limits<float>::denorm_min(),
        -std::numeric_limits<float>::denorm_min(),
        std::numeric_limits<float>::min() / 2, // a denormal
        std::numeric_limits<float>::min(),
        std::numeric_limits<float>::max(),
        -std::numeric_limits<float>::infinity(),
        from_bits(0x7fc12345u), // a NaN with a payload
        1.0f / 3.0f,
        -1e-30f,
        from_bits(0xff800001u), // a signalling NaN, negative
    };
    images[0].gradient.data = special;
    std::reverse(images[0].scores.begin(), images[0].scores.end());
    images[1].guided.data = special;
    images[1].guided.data[0] = 0.0f;
    images[0].layers[0].max_rel_diff = 1.0 / 3.0;
    images[0].layers[3].differing_fraction = 0.1 + 0.2;
    write_golden(path, "m.onnx", images);

    const golden_file g = read_golden(path);
    BOOST_CHECK_EQUAL(g.schema, "deepinside.golden/1");
    BOOST_CHECK_EQUAL(g.model, "m.onnx");
    BOOST_REQUIRE_EQUAL(g.images.size(), 2u);
    const auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
        if (a.size() != b.size()) return false;
        for (size_t i = 0; i < a.size(); ++i)
            if (bits(a[i]) != bits(b[i])) {
                BOOST_TEST_MESSAGE("element " << i << ": " << std::hex << bits(a[i]) << " != " << bits(b[i]));
                return false;
            }
        return true;
    };
    for (size_t i = 0; i < 2; ++i) {
        const golden_image& r = g.images[i];
        BOOST_CHECK_EQUAL(r.image, images[i].image);
        BOOST_CHECK(r.input_shape == images[i].input.shape);
        BOOST_CHECK(r.class_index == std::optional<int64_t>(1));
        BOOST_CHECK(r.scores.shape == shape_t{10});
        BOOST_CHECK(same(r.scores.data, images[i].scores));
        BOOST_CHECK(r.gradient.shape == images[i].gradient.shape);
        BOOST_CHECK(same(r.gradient.data, images[i].gradient.data));
        BOOST_CHECK(same(r.deconvnet.data, images[i].deconvnet.data));
        BOOST_CHECK(same(r.guided.data, images[i].guided.data));
        BOOST_REQUIRE_EQUAL(r.layers.size(), images[i].layers.size());
        for (size_t k = 0; k < r.layers.size(); ++k) {
            BOOST_CHECK_EQUAL(r.layers[k].name, images[i].layers[k].name);
            BOOST_CHECK_EQUAL(r.layers[k].max_rel_diff, images[i].layers[k].max_rel_diff);
            BOOST_CHECK_EQUAL(r.layers[k].differing_fraction, images[i].layers[k].differing_fraction);
            BOOST_CHECK_EQUAL(r.layers[k].tied_windows, images[i].layers[k].tied_windows);
        }
    }
    BOOST_CHECK(std::signbit(g.images[0].gradient.data[0]));

    // The same bits never move, NaNs included, even with zero tolerances; -0 against +0 is no change.
    BOOST_CHECK(compare_golden(path, images, parse_golden_tolerances("logits=0,signals=0,fraction=0,layer_rel=0")).ok);
    auto zero = images;
    zero[0].gradient.data[0] = 0.0f;
    BOOST_CHECK(compare_golden(path, zero, parse_golden_tolerances("signals=0")).ok);
    auto other_nan = images;
    other_nan[0].gradient.data[8] = 0.0f;
    BOOST_CHECK_EQUAL(only(compare_golden(path, other_nan, {})).where, "(1,0,2)");
}

BOOST_AUTO_TEST_CASE(nothing_half_written) {
    golden_dir dir;
    const auto images = two_images();

    // Into a folder that does not exist: io_error naming the file, and no file or folder appears.
    const std::string missing = (dir.path / "no-such-folder" / "golden.json").string();
    BOOST_CHECK_EXCEPTION(write_golden(missing, "m.onnx", images), io_error, [&](const io_error& e) {
        BOOST_TEST_MESSAGE(e.what());
        return std::string(e.what()).find(missing) != std::string::npos;
    });
    BOOST_CHECK(!fs::exists(dir.path / "no-such-folder"));
    BOOST_CHECK(dir.entries().empty());

    // Over a folder: the rename fails, the temporary file is removed.
    fs::create_directory(dir.path / "taken");
    BOOST_CHECK_THROW(write_golden(dir.file("taken"), "m.onnx", images), io_error);
    BOOST_CHECK(dir.entries() == std::vector<std::string>{"taken"});
    fs::remove(dir.path / "taken");

    // A certificate that cannot be written leaves the previous golden file as it was.
    const std::string path = dir.file("golden.json");
    write_golden(path, "m.onnx", images);
    const std::string before = slurp(path);
    auto broken = images;
    broken[1].deconvnet.data.pop_back();
    BOOST_CHECK_EXCEPTION(write_golden(path, "m.onnx", broken), input_error, [](const input_error& e) {
        return std::string(e.what()).find("b.png") != std::string::npos;
    });
    BOOST_CHECK_EQUAL(slurp(path), before);
    BOOST_CHECK(dir.entries() == std::vector<std::string>{"golden.json"});

    // Rewriting (--update) replaces the file as a whole.
    auto moved = images;
    moved[0].scores[0] += 1.0f;
    BOOST_CHECK(!compare_golden(path, moved, {}).ok);
    write_golden(path, "m.onnx", moved);
    BOOST_CHECK(compare_golden(path, moved, {}).ok);
    BOOST_CHECK(dir.entries() == std::vector<std::string>{"golden.json"});
}

BOOST_AUTO_TEST_SUITE_END()
