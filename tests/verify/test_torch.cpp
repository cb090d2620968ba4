// Forward and backward of conv, pooling, LRN and softmax against PyTorch in float64
// (tests/verify/torch_ops.py), over sweeps of attributes. Reported as skipped when Python or torch is
// unavailable (tests/support/requirements.hpp).
#include "support.hpp"
#include "support/requirements.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace deepinside;
using namespace deepinside::verify;
using namespace deepinside::verify::testing;
namespace fs = std::filesystem;

namespace {

/// One op run by both sides: the reference graph, its input, and the same op described to torch.
struct torch_case {
    std::string label;
    graph g;
    dtensor x;
    nlohmann::json spec; ///< {"op", "attrs", "params"} for torch_ops.py
    std::map<std::string, dtensor> params;
};

/// Graph constants are float32, so torch must see the same float-rounded parameters.
dtensor float_rounded(dtensor t) {
    for (double& v : t.data) v = static_cast<double>(static_cast<float>(v));
    return t;
}

void write_raw(const fs::path& file, const dtensor& t) {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(t.data.data()), static_cast<std::streamsize>(t.data.size() * sizeof(double)));
    BOOST_REQUIRE(out.good());
}

std::vector<double> read_raw(const fs::path& file) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) return {};
    const auto bytes = static_cast<size_t>(in.tellg());
    std::vector<double> v(bytes / sizeof(double));
    in.seekg(0);
    in.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
    return v;
}

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v && *v ? v : fallback;
}

/// A fresh folder under the system temp directory, removed on scope exit.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::random_device rd;
        path = fs::temp_directory_path() / ("deepinside_verify_torch_" + std::to_string(rd()) + std::to_string(rd()));
        fs::create_directories(path);
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

/// Runs every case through the reference and through torch, comparing y and dx.
void compare_with_torch(std::vector<torch_case>& cases, std::mt19937& rng) {
    const std::string python = env_or("DEEPINSIDE_PYTHON", "/usr/bin/python3");
    const fs::path script =
        fs::path(env_or("DEEPINSIDE_SOURCE_DIR", fs::path(__FILE__).parent_path().parent_path().parent_path().string())) /
        "tests" / "verify" / "torch_ops.py";
    test_support::require_file(script);
    temp_dir dir;
    nlohmann::json all = nlohmann::json::array();
    std::vector<dtensor> ref_y, ref_dx;
    for (size_t i = 0; i < cases.size(); ++i) {
        torch_case& c = cases[i];
        const std::string id = std::to_string(i);
        const reference_network net(c.g);
        const auto acts = net.forward(c.x);
        const dtensor& y = acts.at(c.g.outputs[0].name);
        const dtensor seed = random_tensor(rng, y.shape);
        ref_y.push_back(y);
        ref_dx.push_back(net.backward(acts, c.g.outputs[0].name, seed, backward_rule::gradient));
        write_raw(dir.path / ("x" + id), c.x);
        write_raw(dir.path / ("seed" + id), seed);
        nlohmann::json j = c.spec;
        j["x"] = {"x" + id, c.x.shape};
        j["seed"] = {"seed" + id, y.shape};
        j["y"] = "y" + id;
        j["dx"] = "dx" + id;
        for (const auto& [name, t] : c.params) {
            write_raw(dir.path / (name + id), t);
            j["params"][name] = {name + id, t.shape};
        }
        all.push_back(j);
    }
    std::ofstream(dir.path / "cases.json") << all.dump();
    const std::string command = "'" + python + "' '" + script.string() + "' '" + dir.path.string() + "'";
    const int status = std::system(command.c_str());
    BOOST_REQUIRE_MESSAGE(status == 0, command << " failed with status " << status);
    for (size_t i = 0; i < cases.size(); ++i) {
        BOOST_TEST_CONTEXT(cases[i].label) {
            const std::string id = std::to_string(i);
            std::ifstream shape_file(dir.path / ("y" + id + ".shape"));
            std::stringstream shape_text;
            shape_text << shape_file.rdbuf();
            BOOST_CHECK_EQUAL(shape_text.str(), [&] {
                std::string s;
                for (size_t k = 0; k < ref_y[i].shape.size(); ++k) s += (k ? " " : "") + std::to_string(ref_y[i].shape[k]);
                return s;
            }());
            const auto y = read_raw(dir.path / ("y" + id));
            const auto dx = read_raw(dir.path / ("dx" + id));
            BOOST_REQUIRE_EQUAL(y.size(), ref_y[i].data.size());
            BOOST_REQUIRE_EQUAL(dx.size(), ref_dx[i].data.size());
            // Both sides compute in float64 with different summation orders: 1e-10 relative is
            // far above their rounding (~1e-15 per operation) and far below any semantic difference.
            double worst = 0;
            for (size_t k = 0; k < y.size(); ++k)
                worst = std::max(worst, std::fabs(y[k] - ref_y[i].data[k]) / (1 + std::fabs(y[k])));
            for (size_t k = 0; k < dx.size(); ++k)
                worst = std::max(worst, std::fabs(dx[k] - ref_dx[i].data[k]) / (1 + std::fabs(dx[k])));
            BOOST_CHECK_MESSAGE(worst < 1e-10, "worst relative difference " << worst);
        }
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(against_torch)

BOOST_AUTO_TEST_CASE(conv_pool_lrn_softmax, *test_support::needs_python("numpy torch")) {
    std::mt19937 rng(31);
    std::vector<torch_case> cases;
    const int64_t channels = 4;
    for (int64_t group : {int64_t(1), int64_t(2), channels})
        for (int64_t dilation : {1, 2})
            for (int64_t stride : {1, 2})
                for (const std::vector<int64_t>& pads : {std::vector<int64_t>{0, 0, 0, 0}, std::vector<int64_t>{1, 2, 0, 1}}) {
                    const int64_t out_c = group == channels ? 2 * channels : 6;
                    const shape_t w_shape{out_c, channels / group, 3, 3};
                    torch_case c;
                    c.label = "conv group " + std::to_string(group) + " dilation " + std::to_string(dilation) +
                              " stride " + std::to_string(stride) + " pads " + std::to_string(pads[1]);
                    graph_builder b({2, channels, 9, 8});
                    c.params["w"] = float_rounded(random_tensor(rng, w_shape));
                    c.params["b"] = float_rounded(random_tensor(rng, {out_c}));
                    b.constant("w", w_shape, c.params["w"].data);
                    b.constant("b", {out_c}, c.params["b"].data);
                    b.add("Conv", {"x", "w", "b"}, "y",
                          {{"group", attr_int(group)}, {"dilations", attr_ints({dilation, dilation})},
                           {"strides", attr_ints({stride, stride})}, {"pads", attr_ints(pads)}});
                    c.g = b.finish("y");
                    c.x = random_tensor(rng, {2, channels, 9, 8});
                    c.spec = {{"op", "conv"},
                              {"attrs",
                               {{"group", group}, {"dilations", {dilation, dilation}}, {"strides", {stride, stride}},
                                {"pads", pads}}}};
                    cases.push_back(std::move(c));
                }
    for (int64_t kernel : {2, 3})
        for (int64_t stride : {1, 2})
            for (int64_t pad : {0, 1})
                for (int64_t ceil : {0, 1}) {
                    for (int64_t dilation : {1, 2}) {
                        torch_case c;
                        c.label = "max_pool k" + std::to_string(kernel) + " s" + std::to_string(stride) + " p" +
                                  std::to_string(pad) + " ceil" + std::to_string(ceil) + " d" + std::to_string(dilation);
                        graph_builder b({2, 3, 7, 8}, 12);
                        b.add("MaxPool", {"x"}, "y",
                              {{"kernel_shape", attr_ints({kernel, kernel})}, {"strides", attr_ints({stride, stride})},
                               {"pads", attr_ints({pad, pad, pad, pad})}, {"ceil_mode", attr_int(ceil)},
                               {"dilations", attr_ints({dilation, dilation})}});
                        c.g = b.finish("y");
                        c.x = random_distinct(rng, {2, 3, 7, 8});
                        c.spec = {{"op", "max_pool"},
                                  {"attrs", {{"kernel", kernel}, {"strides", stride}, {"pads", pad}, {"ceil_mode", ceil},
                                             {"dilations", dilation}}}};
                        cases.push_back(std::move(c));
                    }
                    for (int64_t include : {0, 1}) {
                        torch_case c;
                        c.label = "avg_pool k" + std::to_string(kernel) + " s" + std::to_string(stride) + " p" +
                                  std::to_string(pad) + " ceil" + std::to_string(ceil) + " include" + std::to_string(include);
                        graph_builder b({2, 3, 7, 8}, 11);
                        b.add("AveragePool", {"x"}, "y",
                              {{"kernel_shape", attr_ints({kernel, kernel})}, {"strides", attr_ints({stride, stride})},
                               {"pads", attr_ints({pad, pad, pad, pad})}, {"ceil_mode", attr_int(ceil)},
                               {"count_include_pad", attr_int(include)}});
                        c.g = b.finish("y");
                        c.x = random_tensor(rng, {2, 3, 7, 8});
                        c.spec = {{"op", "avg_pool"},
                                  {"attrs", {{"kernel", kernel}, {"strides", stride}, {"pads", pad}, {"ceil_mode", ceil},
                                             {"count_include_pad", include}}}};
                        cases.push_back(std::move(c));
                    }
                }
    // Odd sizes only: for even sizes torch centres the channel window one step earlier than ONNX.
    for (int64_t size : {1, 3, 5}) {
        torch_case c;
        c.label = "lrn size " + std::to_string(size);
        graph_builder b({2, 7, 3, 3});
        b.add("LRN", {"x"}, "y",
              {{"size", attr_int(size)}, {"alpha", attr_float(0.5)}, {"beta", attr_float(0.75)}, {"bias", attr_float(2)}});
        c.g = b.finish("y");
        c.x = random_tensor(rng, {2, 7, 3, 3}, -2, 2);
        // The float attributes as the reference reads them.
        c.spec = {{"op", "lrn"},
                  {"attrs", {{"size", size}, {"alpha", double(0.5f)}, {"beta", double(0.75f)}, {"bias", double(2.0f)}}}};
        cases.push_back(std::move(c));
    }
    for (const char* op : {"Softmax", "LogSoftmax"})
        for (int64_t axis : {0, 1, -1}) {
            torch_case c;
            c.label = std::string(op) + " axis " + std::to_string(axis);
            graph_builder b({3, 4, 5}, 13);
            b.add(op, {"x"}, "y", {{"axis", attr_int(axis)}});
            c.g = b.finish("y");
            c.x = random_tensor(rng, {3, 4, 5}, -4, 4);
            c.spec = {{"op", std::string(op) == "Softmax" ? "softmax" : "log_softmax"}, {"attrs", {{"axis", axis}}}};
            cases.push_back(std::move(c));
        }
    compare_with_torch(cases, rng);
}

// The newer nonlinearities and LayerNormalization against torch's own (F.gelu both forms, F.hardswish,
// torch.erf, F.layer_norm); HardSigmoid's ramp and PRelu written out, as torch's hardsigmoid fixes
// alpha 1/6. Inputs in [-4, 4] reach past every kink.
BOOST_AUTO_TEST_CASE(smooth_ops_and_layer_norm, *test_support::needs_python("numpy torch")) {
    std::mt19937 rng(32);
    std::vector<torch_case> cases;
    const shape_t shape{2, 3, 4, 5};
    auto unary = [&](const std::string& label, const std::string& op, int64_t opset, std::map<std::string, attribute> at,
                     nlohmann::json spec) {
        torch_case c;
        c.label = label;
        graph_builder b(shape, opset);
        b.add(op, {"x"}, "y", at);
        c.g = b.finish("y");
        c.x = random_tensor(rng, shape, -4, 4);
        c.spec = std::move(spec);
        cases.push_back(std::move(c));
    };
    unary("Gelu", "Gelu", 20, {}, {{"op", "gelu"}, {"attrs", {{"approximate", "none"}}}});
    unary("Gelu tanh", "Gelu", 20, {{"approximate", attr_string("tanh")}}, {{"op", "gelu"}, {"attrs", {{"approximate", "tanh"}}}});
    unary("HardSwish", "HardSwish", 14, {}, {{"op", "hardswish"}, {"attrs", nlohmann::json::object()}});
    unary("Erf", "Erf", 13, {}, {{"op", "erf"}, {"attrs", nlohmann::json::object()}});
    unary("HardSigmoid", "HardSigmoid", 13, {}, {{"op", "hardsigmoid"}, {"attrs", {{"alpha", double(0.2f)}, {"beta", double(0.5f)}}}});
    unary("HardSigmoid 0.3 0.4", "HardSigmoid", 13, {{"alpha", attr_float(0.3)}, {"beta", attr_float(0.4)}},
          {{"op", "hardsigmoid"}, {"attrs", {{"alpha", double(0.3f)}, {"beta", double(0.4f)}}}});
    {
        torch_case c;
        c.label = "PRelu per channel";
        graph_builder b(shape, 16);
        c.params["slope"] = float_rounded(random_tensor(rng, {3, 1, 1}, 0.05, 0.5));
        b.constant("slope", {3, 1, 1}, c.params["slope"].data);
        b.add("PRelu", {"x", "slope"}, "y");
        c.g = b.finish("y");
        c.x = random_tensor(rng, shape);
        c.spec = {{"op", "prelu"}, {"attrs", nlohmann::json::object()}};
        cases.push_back(std::move(c));
    }
    for (int64_t axis : {3, 1}) {
        torch_case c;
        c.label = "LayerNormalization axis " + std::to_string(axis);
        const shape_t normalised(shape.begin() + axis, shape.end());
        graph_builder b(shape, 17);
        c.params["scale"] = float_rounded(random_tensor(rng, normalised, 0.5, 1.5));
        c.params["bias"] = float_rounded(random_tensor(rng, {shape.back()}));
        b.constant("scale", normalised, c.params["scale"].data);
        b.constant("bias", {shape.back()}, c.params["bias"].data);
        b.add("LayerNormalization", {"x", "scale", "bias"}, "y", {{"axis", attr_int(axis)}, {"epsilon", attr_float(1e-3)}});
        c.g = b.finish("y");
        c.x = random_tensor(rng, shape);
        c.spec = {{"op", "layer_norm"}, {"attrs", {{"axis", axis}, {"epsilon", double(1e-3f)}}}};
        cases.push_back(std::move(c));
    }
    compare_with_torch(cases, rng);
}

BOOST_AUTO_TEST_SUITE_END()
