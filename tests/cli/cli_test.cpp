// The command line as a user meets it: each bad input gives one clear line on stderr naming the
// file and the rule, a non-zero exit, no crash, and no output file; good inputs give the files the
// interface promises.
#include <deepinside/io.hpp>

#include <boost/test/unit_test.hpp>

#include "support/environment.hpp"
#include "support/requirements.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;

namespace {

std::string unique_name(const char* stem) {
    static int counter = 0;
    return std::string("deepinside-") + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

using deepinside::test_support::env;

struct result {
    int status = -1;
    std::string err;
};

/// Runs `deepinside ARGS` and returns its exit status and stderr.
result run(const std::string& args) {
    const fs::path err_file = fs::temp_directory_path() / unique_name("err");
    const std::string cmd = std::string(env("DEEPINSIDE_BIN")) + " " + args + " > /dev/null 2> " + err_file.string();
    result r;
    const int raw = std::system(cmd.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    std::ifstream in(err_file);
    r.err.assign(std::istreambuf_iterator<char>(in), {});
    fs::remove(err_file);
    return r;
}

struct scratch {
    fs::path dir;
    scratch() {
        std::random_device rd;
        dir = fs::temp_directory_path() / ("deepinside-cli-" + std::to_string(rd()));
        fs::create_directories(dir);
    }
    ~scratch() { fs::remove_all(dir); }
    std::string file(const std::string& name, const std::string& bytes) const {
        std::ofstream(dir / name, std::ios::binary) << bytes;
        return (dir / name).string();
    }
    std::string path(const std::string& name) const { return (dir / name).string(); }
    bool empty_of_outputs() const {
        for (auto& e : fs::directory_iterator(dir))
            if (e.path().filename().string().rfind("out", 0) == 0) return false;
        return true;
    }
};

std::string bundled_model() { return std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/fashion-mnist-convnet.onnx"; }

/// One of the bundled sample images.
fs::path bundled_image() {
    fs::path img;
    for (auto& e : fs::directory_iterator(std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/images")) img = e.path();
    return img;
}
std::string shared(const std::string& rel) { return std::string(env("DEEPINSIDE_SHARED_MODELS")) + "/" + rel; }

/// A bad input: non-zero exit, exactly one line on stderr containing every `needle`, no output file.
void expect_refusal(const scratch& s, const std::string& args, std::initializer_list<std::string> needles) {
    BOOST_TEST_CONTEXT("deepinside " << args) {
        const result r = run(args);
        BOOST_TEST(r.status == 1, "exit status " << r.status << ", stderr: " << r.err);
        BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, "stderr: " << r.err);
        for (const auto& n : needles) BOOST_TEST(r.err.find(n) != std::string::npos, "'" << n << "' missing from: " << r.err);
        BOOST_TEST(s.empty_of_outputs());
    }
}

} // namespace

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
    BOOST_TEST(r.status == 0, r.err);
    for (const char* suffix : {".grad.npy", ".npy", ".png", ".overlay.png"}) BOOST_TEST(fs::exists(s.path(std::string("one") + suffix)), suffix);
    const deepinside::tensor g = deepinside::read_npy(s.path("one.grad.npy"));
    BOOST_TEST((g.shape == deepinside::shape_t{1, 28, 28}));
    const deepinside::tensor map = deepinside::read_npy(s.path("one.npy"));
    BOOST_TEST((map.shape == deepinside::shape_t{28, 28}));
    // The map is max over channels of |signal|: with one channel, |signal| itself.
    for (size_t i = 0; i < map.data.size(); ++i) BOOST_TEST(map.data[i] == std::fabs(g.data[i]));

    const result all = run("saliency " + bundled_model() + " " + img.string() + " --method gradient,deconvnet,guided --class 0,9 --out " + s.path("many"));
    BOOST_TEST(all.status == 0, all.err);
    for (const char* method : {"gradient", "deconvnet", "guided"})
        for (const char* c : {"0", "9"})
            BOOST_TEST(fs::exists(s.path(std::string("many.") + method + "." + c + ".grad.npy")), method << " " << c);
}

BOOST_AUTO_TEST_CASE(layer_targets) {
    scratch s;
    const fs::path img = bundled_image();
    const std::string base = "saliency " + bundled_model() + " " + img.string() + " --layer /conv2/Conv_output_0";
    for (const std::string extra : {" --channel 5", " --channel 5 --reduce sum", " --channel 5 --unit 3,4", ""}) {
        const result r = run(base + extra + " --method guided --out " + s.path("layer"));
        BOOST_TEST(r.status == 0, extra << ": " << r.err);
        BOOST_TEST(fs::exists(s.path("layer.grad.npy")), extra);
        fs::remove(s.path("layer.grad.npy"));
    }
    expect_refusal(s, "saliency " + bundled_model() + " " + img.string() + " --layer no_such_tensor --channel 0 --out " + s.path("out"),
                   {"no_such_tensor"});
    expect_refusal(s, base + " --channel 64 --out " + s.path("out"), {"channel 64", "/conv2/Conv_output_0"});
    expect_refusal(s, base + " --channel 1 --unit 14,0 --out " + s.path("out"), {"14,0"});
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
