// The command line as a user meets it: each bad input gives one clear line on stderr naming the
// file and the rule, a non-zero exit, no crash, and no output file; good inputs give the files the
// interface promises.
// The one file of test_cli that defines the test module (see cli_support.hpp).
#define DEEPINSIDE_CLI_TEST_MODULE
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli_support.hpp"
#include "onnx/model_builder.hpp"
#include "support/environment.hpp"
#include "support/numbers.hpp"
#include "support/requirements.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

using namespace cli_support;

BOOST_AUTO_TEST_CASE(bad_model_files) {
    scratch s;
    const std::string x = s.file("x.npy", "");
    expect_refusal(s, "forward " + s.file("empty.onnx", "") + " --input " + x + " --out " + s.path("out.npy"), {"empty.onnx"});
    std::string random_bytes(4096, '\0');
    std::mt19937 rng(1);
    for (auto& c : random_bytes) c = static_cast<char>(rng());
    expect_refusal(s, "info " + s.file("random.onnx", random_bytes), {"random.onnx"});
    {
        std::ifstream in(bundled_model(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        BOOST_REQUIRE(!bytes.empty());
        expect_refusal(s, "info " + s.file("truncated.onnx", bytes.substr(0, bytes.size() / 2)), {"truncated.onnx"});
    }
    expect_refusal(s, "info " + s.path("missing.onnx"), {"missing.onnx"});
}

BOOST_AUTO_TEST_CASE(bad_tensors_and_images) {
    scratch s;
    const std::string m = bundled_model();
    // A float64 .npy, a truncated one, and one of the wrong shape.
    std::string header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 28, 28), }";
    header.resize(118, ' ');
    header += '\n';
    std::string npy = std::string("\x93NUMPY\x01\x00", 8) + std::string(1, char(header.size())) + std::string(1, '\0') + header;
    expect_refusal(s, "forward " + m + " --input " + s.file("f8.npy", npy + std::string(784 * 8, '\0')) + " --out " + s.path("out.npy"),
                   {"f8.npy", "<f8"});
    std::string f4 = npy;
    f4.replace(f4.find("<f8"), 3, "<f4");
    expect_refusal(s, "forward " + m + " --input " + s.file("short.npy", f4 + std::string(100, '\0')) + " --out " + s.path("out.npy"),
                   {"short.npy"});
    std::string wrong = f4;
    wrong.replace(wrong.find("28, 28"), 6, "27, 28");
    expect_refusal(s, "forward " + m + " --input " + s.file("shape.npy", wrong + std::string(27 * 28 * 4, '\0')) + " --out " + s.path("out.npy"),
                   {"input", "27, 28"});
    // Images: random bytes, a truncated PNG, a PNG header claiming 100000 x 100000 pixels.
    expect_refusal(s, "classify " + m + " " + s.file("noise.png", std::string(300, 'x')), {"noise.png"});
    const std::string good = std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/images";
    for (auto& e : fs::directory_iterator(good)) {
        std::ifstream in(e.path(), std::ios::binary);
        std::string bytes((std::istreambuf_iterator<char>(in)), {});
        expect_refusal(s, "saliency " + m + " " + s.file("cut.png", bytes.substr(0, bytes.size() * 2 / 3)) + " --out " + s.path("out"),
                       {"cut.png"});
        std::string huge = bytes;
        const unsigned char dims[8] = {0, 1, 0x86, 0xa0, 0, 1, 0x86, 0xa0}; // 100000 x 100000, CRC now wrong
        for (int i = 0; i < 8; ++i) huge[16 + i] = static_cast<char>(dims[i]);
        expect_refusal(s, "classify " + m + " " + s.file("huge.png", huge), {"huge.png"});
        break;
    }
    expect_refusal(s, "saliency " + m + " --input " + s.path("missing.npy") + " --method sideways --out " + s.path("out"), {"sideways"});
}

BOOST_AUTO_TEST_CASE(deconvnet_through_selu_is_refused_unless_chosen, *deepinside::test_support::needs_shared_models("cifar100-selu")) {
    const std::string m = shared("cifar100-selu/model.onnx");
    scratch s;
    const std::string x = shared("cifar100-selu/input.npy");
    expect_refusal(s, "saliency " + m + " --input " + x + " --method deconvnet --out " + s.path("out"), {"Selu", "--nonrelu gradient"});
    const result ok = run("saliency " + m + " --input " + x + " --method deconvnet --nonrelu gradient --out " + s.path("out"));
    BOOST_TEST(ok.status == 0, ok.err);
    BOOST_TEST(fs::exists(s.path("out.grad.npy")));
}

BOOST_AUTO_TEST_CASE(saliency_writes_the_promised_files) {
    scratch s;
    const fs::path img = bundled_image();
    const result r = run("saliency " + bundled_model() + " " + img.string() + " --out " + s.path("one"));
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    for (const char* suffix : {".grad.npy", ".npy", ".png", ".overlay.png"}) BOOST_TEST(fs::exists(s.path(std::string("one") + suffix)), suffix);
    const di::tensor g = di::read_npy(s.path("one.grad.npy"));
    BOOST_TEST((g.shape == di::shape_t{1, 28, 28}));
    const di::tensor map = di::read_npy(s.path("one.npy"));
    BOOST_TEST((map.shape == di::shape_t{28, 28}));
}

// Without --class the CLI differentiates the top-1 class of the forward pass, with the gradient
// rule; its files are exactly the library's gradient of that class, and of no other class.
BOOST_AUTO_TEST_CASE(default_class_is_the_top1_gradient) {
    scratch s;
    const fs::path img = bundled_image();
    library_side lib(bundled_model(), img);
    const di::tensor scores = lib.scores();
    BOOST_TEST_REQUIRE(scores.data.size() == 10u);
    const int64_t top1 = std::max_element(scores.data.begin(), scores.data.end()) - scores.data.begin();
    BOOST_TEST_MESSAGE("top-1 class of " << img.filename().string() << ": " << top1);

    const result r = run("saliency " + bundled_model() + " " + img.string() + " --out " + s.path("one"));
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST(r.out.find("class " + std::to_string(top1) + " (") != std::string::npos, "stdout: " << r.out);
    const di::tensor expected = lib.backward(class_request(top1, di::backward_rule::gradient));
    expect_files_hold(s.path("one"), expected, "default class");
    // The file is the top-1's gradient and no other class's: every other class gives another map.
    const di::tensor file = di::read_npy(s.path("one.grad.npy"));
    for (int64_t c = 0; c < 10; ++c)
        if (c != top1)
            expect_different(file, drop_batch(lib.backward(class_request(c, di::backward_rule::gradient))),
                             "default-class file vs class " + std::to_string(c));
    // The same run from the preprocessed tensor given as --input is the same signal.
    const std::string x = s.path("x.npy");
    di::write_npy(x, lib.x);
    const result from_npy = run("saliency " + bundled_model() + " --input " + x + " --out " + s.path("npy"));
    BOOST_TEST_REQUIRE(from_npy.status == 0, from_npy.err);
    expect_files_hold(s.path("npy"), expected, "default class from --input");
}

// Three methods x two classes: one forward and one stacked backward of six requests in the CLI. Each
// pair's files hold the library's signal for that pair: identical to the same stacked call, within
// 1e-6 of the pair computed alone (a stack of 6 may run other kernel blockings than a batch of 1),
// and the six differ from each other.
BOOST_AUTO_TEST_CASE(every_method_and_class_file_holds_its_signal) {
    scratch s;
    const fs::path img = bundled_image();
    library_side lib(bundled_model(), img);
    const result all = run("saliency " + bundled_model() + " " + img.string() +
                           " --method gradient,deconvnet,guided --class 0,9 --out " + s.path("many"));
    BOOST_TEST_REQUIRE(all.status == 0, all.err);
    // The CLI's order: for each method, for each class.
    std::vector<di::backward_request> requests;
    std::vector<std::string> names;
    for (const auto rule : {di::backward_rule::gradient, di::backward_rule::deconvnet, di::backward_rule::guided})
        for (const int64_t c : {0, 9}) {
            requests.push_back(class_request(c, rule));
            names.push_back(std::string(di::to_string(rule)) + "." + std::to_string(c));
        }
    const std::vector<di::tensor> stacked = lib.backward(requests);
    for (size_t k = 0; k < requests.size(); ++k) {
        const std::string prefix = s.path("many." + names[k]);
        BOOST_TEST_REQUIRE(fs::exists(prefix + ".grad.npy"), names[k]);
        expect_files_hold(prefix, stacked[k], names[k]);
        const di::tensor alone = lib.backward(requests[k]);
        const double d = rel_l2(di::read_npy(prefix + ".grad.npy"), drop_batch(alone));
        BOOST_TEST(d <= 1e-6, names[k] << " vs the request computed alone: rel. L2 " << d);
        for (size_t j = 0; j < k; ++j) expect_different(stacked[k], stacked[j], names[k] + " vs " + names[j]);
    }
}

// The four layer targets of the command line, each against the library's target of that kind, and
// different from each other.
BOOST_AUTO_TEST_CASE(layer_targets) {
    scratch s;
    const fs::path img = bundled_image();
    const std::string layer = "/conv2/Conv_output_0";
    library_side lib(bundled_model(), img, {layer});
    // --unit 3,4 must not be the channel's largest unit, or "max" and "unit" would be one target.
    const di::tensor act = lib.net->read(layer);
    BOOST_TEST_REQUIRE(act.shape.size() == 4u);
    const int64_t h = act.shape[2], w = act.shape[3];
    const float* ch5 = act.data.data() + 5 * h * w;
    const int64_t argmax = std::max_element(ch5, ch5 + h * w) - ch5;
    BOOST_TEST_REQUIRE(argmax != 3 * w + 4, "the largest unit of channel 5 is (3,4): pick another --unit");

    using kind = di::target::kind;
    struct variant {
        std::string flags;
        di::target what;
    };
    const std::vector<variant> variants = {
        {" --channel 5", {kind::channel_max, layer, {5}, {}}},
        {" --channel 5 --reduce sum", {kind::channel_sum, layer, {5}, {}}},
        {" --channel 5 --unit 3,4", {kind::neuron, layer, {5}, {3, 4}}},
        {"", {kind::tensor_sum, layer, {0}, {}}},
    };
    const std::string base = "saliency " + bundled_model() + " " + img.string() + " --layer " + layer;
    std::vector<di::tensor> expected;
    for (size_t k = 0; k < variants.size(); ++k) {
        const std::string prefix = s.path("layer" + std::to_string(k));
        const result r = run(base + variants[k].flags + " --method guided --out " + prefix);
        BOOST_TEST_REQUIRE(r.status == 0, variants[k].flags << ": " << r.err);
        expected.push_back(lib.backward({variants[k].what, di::backward_rule::guided}));
        expect_files_hold(prefix, expected.back(), "--layer" + variants[k].flags);
        for (size_t j = 0; j < k; ++j)
            expect_different(expected[k], expected[j], "'" + variants[k].flags + "' vs '" + variants[j].flags + "'");
    }
    expect_refusal(s, "saliency " + bundled_model() + " " + img.string() + " --layer no_such_tensor --channel 0 --out " + s.path("out"),
                   {"no_such_tensor"});
    expect_refusal(s, base + " --channel 64 --out " + s.path("out"), {"channel 64", layer});
    expect_refusal(s, base + " --channel 1 --unit 14,0 --out " + s.path("out"), {"14,0"});
}

// ---- Numbers that are not finite ----------------------------------------------------------------

namespace {

di::engine_options unchecked() { // and unfused: its users read every activation
    di::engine_options o;
    o.check = di::finite_check::none;
    o.fuse = false;
    return o;
}

bool finite(const di::tensor& t) { return di::first_non_finite(t.data.data(), t.size()) < 0; }

/// The first activation in topological order holding a NaN or an infinity, found through the public
/// API with the engine's checks off; "" when there is none.
std::string first_non_finite_activation(const std::string& model, const di::tensor& x) {
    di::network net(di::read_onnx(model), x.shape, unchecked());
    net.forward(x);
    for (const auto& name : net.tensor_names())
        if (!finite(net.read(name))) return name;
    return "";
}

/// The first tensor from the score tensor back (reverse topological order) whose signal for
/// `request` holds a NaN or an infinity, each signal computed alone (--wrt) with the checks off.
std::string first_non_finite_signal(const std::string& model, const di::tensor& x, const di::backward_request& request) {
    di::network net(di::read_onnx(model), x.shape, unchecked());
    net.forward(x);
    const auto& names = net.tensor_names();
    for (auto it = names.rbegin(); it != names.rend(); ++it)
        if (*it != net.score_tensor() && !finite(net.backward({request}, *it).at(0))) return *it;
    return "";
}

} // namespace

// A NaN or an infinity in an input .npy: one line naming the file, the first bad index and its value.
BOOST_AUTO_TEST_CASE(non_finite_inputs_are_refused) {
    scratch s;
    const std::string m = bundled_model();
    di::tensor x({1, 1, 28, 28});
    std::fill(x.data.begin(), x.data.end(), 0.25f);
    const float inf = std::numeric_limits<float>::infinity();
    const std::vector<std::pair<float, std::string>> cases = {
        {std::numeric_limits<float>::quiet_NaN(), "nan"}, {inf, "inf"}, {-inf, "-inf"}};
    for (const auto& [value, text] : cases) {
        di::tensor bad = x;
        bad.data[3 * 28 + 7] = value;
        const std::string file = s.path(text + ".npy");
        di::write_npy(file, bad);
        for (const std::string& cmd : {"saliency " + m + " --input " + file + " --out " + s.path("out"),
                                      "saliency " + m + " --input " + file + " --method gradient,guided --class 1,2 --out " + s.path("out"),
                                      "forward " + m + " --input " + file + " --out " + s.path("out.npy"),
                                      "bench " + m + " --input " + file + " --iters 1"})
            expect_refusal(s, cmd, {text + ".npy", text + " at [0, 0, 3, 7]", "not a finite number"});
    }
}

// Finite input, finite weights, an activation that overflows: refused, naming the first tensor in
// topological order that holds a value that is not finite (as the library finds it with its checks off).
BOOST_AUTO_TEST_CASE(overflow_inside_the_network_is_refused) {
    scratch s;
    // Conv weights of ~1e30 on an input of 1e10: "c" overflows (and the Gemm after it).
    const std::string tiny = tiny_model_file(s, "huge-weights.onnx", 1e30f, 1.0f);
    di::tensor x({1, 1, 4, 4});
    std::fill(x.data.begin(), x.data.end(), 1e10f);
    const std::string xfile = s.path("x.npy");
    di::write_npy(xfile, x);
    const std::string expected = first_non_finite_activation(tiny, x);
    BOOST_TEST_REQUIRE(expected == "c");
    for (const std::string& cmd : {"saliency " + tiny + " --input " + xfile + " --out " + s.path("out"),
                                  "forward " + tiny + " --input " + xfile + " --out " + s.path("out.npy")})
        expect_refusal(s, cmd, {"huge-weights.onnx", "tensor 'c'", "Conv", "not finite"});

    // A weight that is NaN: "c" holds NaN in channel 0, which the ReLU may turn into 0 downstream.
    const std::string nan_weight = tiny_model_file(s, "nan-weight.onnx", 1.0f, 1.0f, std::numeric_limits<float>::quiet_NaN());
    std::fill(x.data.begin(), x.data.end(), 0.5f);
    di::write_npy(xfile, x);
    BOOST_TEST_REQUIRE(first_non_finite_activation(nan_weight, x) == "c");
    expect_refusal(s, "saliency " + nan_weight + " --input " + xfile + " --out " + s.path("out"), {"nan-weight.onnx", "tensor 'c'", "nan"});

    // The bundled model on values of +-1e38: conv layers overflow to +-inf, inf - inf gives NaN,
    // and the ReLUs may map it back to numbers before the logits. The CLI checks every activation.
    const std::string m = bundled_model();
    di::tensor huge({1, 1, 28, 28});
    for (size_t i = 0; i < huge.data.size(); ++i) huge.data[i] = i % 2 ? 1e38f : -1e38f;
    const std::string hfile = s.path("huge.npy");
    di::write_npy(hfile, huge);
    const std::string first = first_non_finite_activation(m, huge);
    BOOST_TEST_REQUIRE(!first.empty());
    {
        di::network net(di::read_onnx(m), huge.shape, unchecked());
        BOOST_TEST_MESSAGE("bundled model on +-1e38: first non-finite tensor '" << first << "', logits finite: "
                                                                                 << finite(net.forward(huge).at(0)));
    }
    for (const std::string& cmd : {"saliency " + m + " --input " + hfile + " --out " + s.path("out"),
                                  "forward " + m + " --input " + hfile + " --out " + s.path("out.npy"),
                                  "classify " + m + " " + bundled_image().string() + " --scale 1e35"})
        expect_refusal(s, cmd, {"tensor '", "not finite"});
    // A scale that makes the preprocessed image itself infinite is refused as input.
    expect_refusal(s, "classify " + m + " " + bundled_image().string() + " --scale 1e37", {"input 'input'", "inf at", "not a finite number"});
    expect_refusal(s, "saliency " + m + " --input " + hfile + " --out " + s.path("out"), {"tensor '" + first + "'"});
}

// A finite forward pass whose backward signal overflows: refused, naming the method, the class and
// the first tensor from the target back whose signal is not finite.
BOOST_AUTO_TEST_CASE(non_finite_signal_is_refused) {
    scratch s;
    // Conv weights ~1e25 and FC weights ~1e20 on an input of 1e-33: activations stay below ~1e19,
    // the signal at the input reaches ~1e42.
    const std::string tiny = tiny_model_file(s, "steep.onnx", 1e25f, 1e20f);
    di::tensor x({1, 1, 4, 4});
    std::fill(x.data.begin(), x.data.end(), 1e-33f);
    const std::string xfile = s.path("x.npy");
    di::write_npy(xfile, x);
    BOOST_TEST_REQUIRE(first_non_finite_activation(tiny, x).empty(), "the forward pass is finite");
    const di::backward_request first{di::target{di::target::kind::class_score, "", {1}, {}}, di::backward_rule::gradient};
    const std::string where = first_non_finite_signal(tiny, x, first);
    BOOST_TEST_REQUIRE(!where.empty());
    BOOST_TEST_MESSAGE("first non-finite signal of class 1: at '" << where << "'");
    expect_refusal(s, "saliency " + tiny + " --input " + xfile + " --method gradient,guided --class 1,2 --out " + s.path("out"),
                   {"steep.onnx", "gradient signal for class 1", "tensor '" + where + "'", "not finite"});
    expect_refusal(s, "saliency " + tiny + " --input " + xfile + " --method guided --class 2 --out " + s.path("out"),
                   {"guided signal for class 2", "not finite"});
}

// ---- Threads ----------------------------------------------------------------------------------

namespace {

/// The CPUs this test process may run on, in the affinity mask's order.
std::vector<int> allowed_cpus() {
    cpu_set_t mask;
    CPU_ZERO(&mask);
    BOOST_REQUIRE(sched_getaffinity(0, sizeof mask, &mask) == 0);
    std::vector<int> cpus;
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &mask)) cpus.push_back(c);
    BOOST_REQUIRE(!cpus.empty());
    return cpus;
}

/// The value of bench's `KEY value...` line ("" when absent).
std::string bench_line(const std::string& out, const std::string& key) {
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(key + " ", 0) == 0) return line.substr(key.size() + 1);
    return "";
}

} // namespace

BOOST_AUTO_TEST_CASE(threads_zero_and_negative_are_refused) {
    scratch s;
    const std::string m = bundled_model(), img = bundled_image().string();
    di::tensor x({1, 1, 28, 28});
    const std::string xfile = s.path("x.npy");
    di::write_npy(xfile, x);
    for (const std::string t : {"0", "-1", "-8", "two"})
        for (const std::string& cmd : {"classify " + m + " " + img, "forward " + m + " --input " + xfile + " --out " + s.path("out.npy"),
                                       "saliency " + m + " " + img + " --out " + s.path("out"), "bench " + m + " --iters 1"})
            expect_refusal(s, cmd + " --threads " + t, {"--threads", "positive number of threads", "'" + t + "'"});
}

// bench prints the thread count the network runs on and the OpenMP wait policy of the process.
BOOST_AUTO_TEST_CASE(default_threads_follow_the_affinity, *deepinside::test_support::needs_file("/usr/bin/taskset", "util-linux")) {
    const std::vector<int> cpus = allowed_cpus();
    const std::string bench = "bench " + bundled_model() + " --iters 1 --warmup 0";
    const std::string clean = "env -u OMP_NUM_THREADS -u OMP_WAIT_POLICY -u GOMP_SPINCOUNT";
    const std::string one_cpu = clean + " taskset -c " + std::to_string(cpus.front());
    auto bench_says = [&](const std::string& prefix, const std::string& args, const std::string& key) {
        const result r = run(bench + args, prefix);
        BOOST_TEST_REQUIRE(r.status == 0, prefix << ": " << r.err);
        return bench_line(r.out, key);
    };
    // Defaults: the CPUs of the affinity mask, not the machine's cores.
    BOOST_TEST(bench_says(one_cpu, "", "threads") == "1");
    BOOST_TEST(bench_says(clean, "", "threads") == std::to_string(cpus.size()));
    // The user's choices win: OMP_NUM_THREADS over the mask, --threads over both.
    BOOST_TEST(bench_says(one_cpu + " env OMP_NUM_THREADS=3", "", "threads") == "3");
    BOOST_TEST(bench_says(one_cpu + " env OMP_NUM_THREADS=3", " --threads 2", "threads") == "2");
    // Waiting: a brief spin unless the user chose (one CPU: libgomp's default, which barely spins there).
    BOOST_TEST(bench_says(clean, "", "wait_policy") ==
               (cpus.size() > 1 ? "unset (libgomp's default: spin, then sleep) (GOMP_SPINCOUNT 1000)" : "unset (libgomp's default: spin, then sleep)"));
    BOOST_TEST(bench_says(clean + " OMP_WAIT_POLICY=active", "", "wait_policy") == "active");
    BOOST_TEST(bench_says(clean + " GOMP_SPINCOUNT=1000", "", "wait_policy").find("GOMP_SPINCOUNT 1000") != std::string::npos);
    BOOST_TEST(bench_says(one_cpu, "", "wait_policy").rfind("unset", 0) == 0);
}

// bench's output is an interface other tools parse: one line `median <number> ms` per run. Only the
// format is checked here; speed is measured by tools/bench.sh, never asserted in a test.
BOOST_AUTO_TEST_CASE(bench_prints_a_median_line) {
    scratch s;
    for (const std::string what : {"forward", "saliency", "saliency-all"}) {
        const std::string out = s.path("bench.txt");
        const std::string cmd = std::string(env("DEEPINSIDE_BIN")) + " bench " + bundled_model() + " --what " + what +
                                " --iters 3 --warmup 1 --batch 2 --threads 1 > " + out;
        BOOST_TEST(std::system(cmd.c_str()) == 0, what);
        std::ifstream in(out);
        int medians = 0;
        for (std::string line; std::getline(in, line);) {
            double ms = -1;
            char unit[8] = {};
            if (std::sscanf(line.c_str(), "median %lf %7s", &ms, unit) == 2) {
                ++medians;
                BOOST_TEST(ms > 0.0, what << ": " << line);
                BOOST_TEST(std::string(unit) == "ms", what << ": " << line);
            }
        }
        BOOST_TEST(medians == 1, what << ": " << medians << " median lines");
    }
    expect_refusal(s, "bench " + bundled_model() + " --what sideways", {"sideways"});
}

// ---- deepinside verify ----

BOOST_AUTO_TEST_CASE(verify_certifies_the_bundled_model_with_json_and_report) {
    scratch s;
    const result r = run("verify " + bundled_model() + bundled_images(2) + " --json " + s.path("cert.json") + " --report " +
                         s.path("report"));
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    BOOST_TEST(r.err.empty(), r.err);
    BOOST_TEST(r.out.find("the certificate holds") != std::string::npos);
    const nlohmann::json j = read_json(s.path("cert.json"));
    BOOST_TEST(j.at("schema").get<std::string>() == "deepinside.verify/1");
    BOOST_TEST(j.at("ok").get<bool>());
    BOOST_TEST(j.at("model").get<std::string>() == bundled_model());
    BOOST_TEST(j.at("images").size() == 2u);
    BOOST_TEST(j.at("layers").size() == 10u); // fc2 relu fc1 flatten pool relu conv2 pool relu conv1
    for (const auto& l : j.at("layers")) {
        const std::string op = l.at("op");
        BOOST_TEST(l.at("expected").get<std::string>() == (op == "Relu" ? "differs" : "identical"));
        BOOST_TEST(l.at("ok").get<bool>());
        if (op == "MaxPool") BOOST_TEST(l.contains("tied_windows"));
    }
    BOOST_TEST(j.at("gradient_check").at("ok").get<bool>());
    BOOST_TEST(j.at("end_to_end").at("ok").get<bool>());
    for (const char* f : {"index.html", "report.md", "0-input.png", "1-gradient.png", "1-deconvnet.png", "0-guided.png"})
        BOOST_TEST(fs::exists(s.path(std::string("report/") + f)), f);
}

BOOST_AUTO_TEST_CASE(verify_golden_files_round_trip_and_catch_what_moved) {
    scratch s;
    const std::string golden = s.path("golden.json");
    const std::string base = "verify " + bundled_model() + bundled_images(2) + " --golden " + golden;
    result r = run(base + " --update");
    BOOST_TEST_REQUIRE(r.status == 0, r.err);
    BOOST_TEST_REQUIRE(fs::exists(golden));
    r = run(base + " --json " + s.path("cert.json"));
    BOOST_TEST(r.status == 0, r.err);
    BOOST_TEST(r.out.find("nothing moved") != std::string::npos, r.out);
    BOOST_TEST(read_json(s.path("cert.json")).at("golden").at("ok").get<bool>());
    // Another image in the second place: its class, scores and signals moved; exit 4, named on stderr.
    r = run("verify " + bundled_model() + bundled_images(1) + " " +
            (fs::path(env("DEEPINSIDE_SOURCE_DIR")) / "models/images/0013-dress.png").string() + " --golden " + golden);
    BOOST_TEST(r.status == 4, r.err);
    BOOST_TEST(r.err.find("golden") != std::string::npos, r.err);
    BOOST_TEST(r.err.find("0013-dress.png") != std::string::npos, r.err);
    // Loosened tolerances are parsed; unknown keys are refused.
    expect_refusal(s, base + " --golden-tolerance frobnicate=1", {"frobnicate"});
}

BOOST_AUTO_TEST_CASE(verify_refuses_bad_requests) {
    scratch s;
    const std::string img = bundled_image().string();
    expect_refusal(s, "verify " + bundled_model(), {"IMAGE"});
    expect_refusal(s, "verify " + bundled_model() + " " + img + " --layer /conv1/Conv_output_0", {"--channel"});
    expect_refusal(s, "verify " + bundled_model() + " " + img + " --tol-layer 1e-3", {"1e-4"});
    expect_refusal(s, "verify " + bundled_model() + " " + img + " --update", {"--golden"});
    // An op the engine lacks: the reader accepts the file, verify lists every such node.
    auto m = onnx_test::tiny_model();
    m.mutable_graph()->mutable_node(1)->set_op_type("Hardmax");
    m.mutable_graph()->mutable_node(1)->set_name("hardmax1");
    const std::string hardmax = s.file("hardmax.onnx", onnx_test::serialize(m));
    const std::string x = s.path("x.npy");
    di::write_npy(x, di::tensor({1, 1, 4, 4}));
    expect_refusal(s, "verify " + hardmax + " --input " + x, {"hardmax.onnx", "'hardmax1'", "Hardmax", "cannot run"});
}

BOOST_AUTO_TEST_CASE(verify_reports_selu_as_not_covered, *deepinside::test_support::needs_shared_models("cifar100-selu")) {
    scratch s;
    const result r = run("verify " + shared("cifar100-selu/model.onnx") + " --input " + shared("cifar100-selu/input.npy") +
                         " --json " + s.path("cert.json"));
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    int selu = 0;
    const nlohmann::json j = read_json(s.path("cert.json"));
    for (const auto& l : j.at("layers"))
        if (l.at("op") == "Selu") {
            ++selu;
            BOOST_TEST(l.at("relation").get<std::string>() == "not-covered");
            BOOST_TEST(l.at("max_rel_diff").is_null());
        }
    BOOST_TEST(selu > 0);
}

BOOST_AUTO_TEST_CASE(verify_a_unit_of_a_layer) {
    scratch s;
    const result r = run("verify " + bundled_model() + " " + bundled_image().string() +
                         " --layer /Relu_1_output_0 --channel 5 --unit 3,4 --json " + s.path("cert.json"));
    BOOST_TEST_REQUIRE(r.status == 0, r.out << r.err);
    const nlohmann::json j = read_json(s.path("cert.json"));
    BOOST_TEST(j.at("class").is_null());
    BOOST_TEST(j.at("target").at("kind").get<std::string>() == "neuron");
    BOOST_TEST((j.at("target").at("unit") == nlohmann::json::array({3, 4})));
    std::vector<std::string> names;
    for (const auto& l : j.at("layers")) names.push_back(l.at("name"));
    BOOST_TEST(names == (std::vector<std::string>{"/Relu_1", "/conv2/Conv", "/pool/MaxPool", "/Relu", "/conv1/Conv"}),
               boost::test_tools::per_element());
    BOOST_TEST(j.at("gradient_check").at("ok").get<bool>());
}

// A model that reads but cannot be compiled for its declared input (the Gemm expects 4x4 images; the
// input says 5x5): info still lists every layer with its parameters and the metadata, from the graph
// as read, and says why the shapes are unknown. info moves the graph into the network it compiles,
// so this is the path where the graph must come back.
BOOST_AUTO_TEST_CASE(info_lists_layers_of_a_model_it_cannot_compile) {
    scratch s;
    onnx::ModelProto m = onnx_test::tiny_model();
    m.mutable_graph()->mutable_input(0)->Clear();
    onnx_test::set_tensor_type(m.mutable_graph()->mutable_input(0), "x", {-1, 1, 5, 5});
    const result info = run("info " + s.file("misfit.onnx", onnx_test::serialize(m)) + " --json -");
    BOOST_TEST_REQUIRE(info.status == 0, info.err);
    BOOST_TEST(info.err.find("shapes    unknown: node 'fc' (Gemm") != std::string::npos, info.err);
    const nlohmann::json j = nlohmann::json::parse(info.out);
    BOOST_TEST(j.at("shapes_unknown").get<std::string>().find("inner dimensions differ") != std::string::npos);
    BOOST_TEST(!j.contains("compiled_for"));
    BOOST_TEST_REQUIRE(j.at("layers").size() == 4u); // Conv, Relu, Flatten, Gemm
    BOOST_TEST(j["layers"][0].at("parameters").get<int>() == 2 * 9 + 2);
    BOOST_TEST(j["layers"][3].at("parameters").get<int>() == 3 * 32 + 3);
    BOOST_TEST(j["layers"][3].at("shape").is_null());
    BOOST_TEST(j.at("parameters").get<int>() == 20 + 99);
    BOOST_TEST(j.at("metadata").at("labels").get<std::string>() == "a,b,c");
}

// PyTorch's export quirks in one file: the Gemm bias an Identity of a deduplicated initializer named
// with '::', the flatten of a dynamic batch spelled Shape → Gather → Unsqueeze → Concat → Reshape with
// a Constant node holding [-1], and value_info declaring a batch of 128 for an intermediate. info,
// forward and saliency must all read it, and agree with the plain tiny model of the same weights.
BOOST_AUTO_TEST_CASE(pytorch_export_quirks_read_the_same_by_every_command) {
    scratch s;
    onnx::ModelProto plain = onnx_test::tiny_model();
    onnx::ModelProto m = onnx_test::tiny_model();
    auto* g = m.mutable_graph();
    onnx_test::initializer(m, "fc.b")->set_name("onnx::Gemm_12");
    g->mutable_node()->DeleteSubrange(2, 2); // Flatten and Gemm, rebuilt below
    onnx_test::add_node(g, "Identity", "Identity_0", {"onnx::Gemm_12"}, {"fc.b"});
    onnx_test::add_node(g, "Shape", "Shape_1", {"r"}, {"onnx::Gather_20"});
    *g->add_initializer() = onnx_test::int64_tensor("zero", {}, {0});
    onnx_test::add_int(onnx_test::add_node(g, "Gather", "Gather_2", {"onnx::Gather_20", "zero"}, {"batch"}), "axis", 0);
    onnx_test::add_node(g, "Unsqueeze", "Unsqueeze_3", {"batch", "axes0"}, {"batch1"});
    *g->add_initializer() = onnx_test::int64_tensor("axes0", {1}, {0});
    auto* minus_one = onnx_test::add_node(g, "Constant", "Constant_4", {}, {"onnx::Concat_23"});
    auto* value = minus_one->add_attribute();
    value->set_name("value");
    value->set_type(onnx::AttributeProto::TENSOR);
    *value->mutable_t() = onnx_test::int64_tensor("", {1}, {-1});
    onnx_test::add_int(onnx_test::add_node(g, "Concat", "Concat_5", {"batch1", "onnx::Concat_23"}, {"target"}), "axis", 0);
    onnx_test::add_node(g, "Reshape", "Reshape_6", {"r", "target"}, {"f"});
    auto* gemm = onnx_test::add_node(g, "Gemm", "fc", {"f", "fc.w", "fc.b"}, {"y"});
    onnx_test::add_int(gemm, "transB", 1);
    onnx_test::set_tensor_type(g->add_value_info(), "f", {128, 32});
    // Nodes in topological order, as an exporter writes them.
    std::vector<onnx::NodeProto> nodes(g->node().begin(), g->node().end());
    const std::vector<std::string> order = {"conv1", "", "Identity_0", "Shape_1", "Gather_2", "Unsqueeze_3", "Constant_4", "Concat_5",
                                            "Reshape_6", "fc"};
    g->clear_node();
    for (const auto& name : order)
        for (const auto& n : nodes)
            if (n.name() == name) *g->add_node() = n;
    const std::string quirky = s.file("quirky.onnx", onnx_test::serialize(m));
    const std::string reference = s.file("plain.onnx", onnx_test::serialize(plain));

    const result info = run("info " + quirky);
    BOOST_TEST_REQUIRE(info.status == 0, info.err);
    BOOST_TEST(info.out.find("folded    5 nodes") != std::string::npos, info.out);
    BOOST_TEST(info.out.find("Shape") == std::string::npos, info.out); // the listed layers are the ones that run
    BOOST_TEST(info.out.find("fc") != std::string::npos);
    BOOST_TEST(info.out.find("4 layers") != std::string::npos, info.out); // Conv, Relu, Reshape, Gemm

    std::mt19937 rng(3);
    for (int64_t batch : {1, 3}) {
        di::tensor x({batch, 1, 4, 4});
        for (float& v : x.data) v = std::uniform_real_distribution<float>(-1, 1)(rng);
        const std::string xin = s.path("x" + std::to_string(batch) + ".npy");
        di::write_npy(xin, x);
        for (const std::string& model : {quirky, reference}) {
            const std::string out = s.path((model == quirky ? "q" : "p") + std::to_string(batch));
            BOOST_TEST_REQUIRE(run("forward " + model + " --input " + xin + " --out " + out + ".npy").status == 0);
            const result sal = run("saliency " + model + " --input " + xin + " --method gradient,guided --class 1 --out " + out);
            BOOST_TEST_REQUIRE(sal.status == 0, sal.err);
        }
        const std::string q = s.path("q" + std::to_string(batch)), p = s.path("p" + std::to_string(batch));
        BOOST_TEST(di::read_npy(q + ".npy").data == di::read_npy(p + ".npy").data, boost::test_tools::per_element());
        for (const char* suffix : {".gradient.1.grad.npy", ".guided.1.grad.npy"}) {
            BOOST_TEST_CONTEXT("batch " << batch << " " << suffix) {
                BOOST_REQUIRE(fs::exists(q + suffix));
                BOOST_TEST(di::read_npy(q + suffix).data == di::read_npy(p + suffix).data, boost::test_tools::per_element());
            }
        }
    }
}
