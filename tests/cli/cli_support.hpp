#pragma once
// What the command-line tests share (tests/cli/*.cpp are one executable, test_cli): running the
// program and capturing its exit status, stdout and stderr; scratch folders; the bundled model and
// images; the one-line refusal check; and the library computing what the CLI computes, in this
// process, to compare its files with.
//
// tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of the area, but Boost.Test wants
// the module (its main) in exactly one: cli_test.cpp, which defines DEEPINSIDE_CLI_TEST_MODULE. Every
// other file includes this header before <boost/test/unit_test.hpp>.
#if defined(BOOST_TEST_MODULE) && !defined(DEEPINSIDE_CLI_TEST_MODULE)
#undef BOOST_TEST_MODULE
#endif
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "onnx/model_builder.hpp"
#include "support/environment.hpp"
#include "support/numbers.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace cli_support {

/// Two processes under Open MPI, as a user starts them (as root here, on a 2-core machine). In the
/// sanitizer build, LeakSanitizer's check is turned off for these runs only: Open MPI's start-up
/// leaks some 120 kB by design (a 10-line program calling MPI_Init and MPI_Finalize reports them),
/// which is not ours to fix; AddressSanitizer's other checks stay on.
inline const std::string mpirun_two_ranks =
    "env ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" mpirun --allow-run-as-root --oversubscribe -n 2";

namespace fs = std::filesystem;

inline std::string unique_name(const char* stem) {
    static int counter = 0;
    return std::string("deepinside-") + stem + "-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

using deepinside::test_support::env;

struct result {
    int status = -1;
    std::string out, err;
};

inline std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

/// Runs `deepinside ARGS` (after `prefix`, e.g. "env -u OMP_NUM_THREADS taskset -c 0") and returns
/// its exit status, stdout and stderr.
inline result run(const std::string& args, const std::string& prefix = "") {
    const fs::path out_file = fs::temp_directory_path() / unique_name("out");
    const fs::path err_file = fs::temp_directory_path() / unique_name("err");
    const std::string cmd = prefix + (prefix.empty() ? "" : " ") + env("DEEPINSIDE_BIN") + " " + args + " > " +
                            out_file.string() + " 2> " + err_file.string();
    result r;
    const int raw = std::system(cmd.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    r.out = slurp(out_file);
    r.err = slurp(err_file);
    fs::remove(out_file);
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

inline std::string bundled_model() { return std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/fashion-mnist-convnet.onnx"; }

/// The first bundled sample image by name (0000-ankle-boot.png), the same on every machine.
inline fs::path bundled_image() {
    std::vector<fs::path> images;
    for (auto& e : fs::directory_iterator(std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/images")) images.push_back(e.path());
    BOOST_REQUIRE(!images.empty());
    return *std::min_element(images.begin(), images.end());
}
inline std::string shared(const std::string& rel) { return std::string(env("DEEPINSIDE_SHARED_MODELS")) + "/" + rel; }

/// A bad input: non-zero exit, exactly one line on stderr containing every `needle`, no output file.
inline void expect_refusal(const scratch& s, const std::string& args, std::initializer_list<std::string> needles) {
    BOOST_TEST_CONTEXT("deepinside " << args) {
        const result r = run(args);
        BOOST_TEST(r.status == 1, "exit status " << r.status << ", stderr: " << r.err);
        BOOST_TEST(std::count(r.err.begin(), r.err.end(), '\n') == 1, "stderr: " << r.err);
        for (const auto& n : needles) BOOST_TEST(r.err.find(n) != std::string::npos, "'" << n << "' missing from: " << r.err);
        BOOST_TEST(s.empty_of_outputs());
    }
}

namespace di = deepinside;
using deepinside::test_support::rel_l2;

/// What `deepinside saliency MODEL IMAGE` computes, recomputed in this process through the public
/// API: read_onnx, the CLI's input shape rule (an open batch is 1, open C/H/W come from the image),
/// the preprocessing of the model's metadata with no flags (preprocess_from_metadata, as
/// preprocess_flags::resolve does), image_to_tensor, then one forward pass. Engine options are the
/// defaults, as the CLI's without --threads: both sides run the same oneDNN kernels with the same
/// thread count (the test and its child inherit one environment), so a request issued exactly as
/// the CLI issues it (the same requests, in the same order, stacked the same way) gives the same
/// bits: oneDNN is run-to-run deterministic on a fixed machine, thread count and environment.
struct library_side {
    di::graph g;
    di::tensor x;
    std::unique_ptr<di::network> net;

    /// `keep`: the tensors the command keeps readable (its --layer and --wrt).
    library_side(const std::string& model, const fs::path& image_path, std::vector<std::string> keep = {})
        : g(di::read_onnx(model)) {
        const di::image img = di::read_image(image_path.string());
        di::shape_t s = g.inputs.at(0).shape;
        BOOST_REQUIRE_EQUAL(s.size(), 4u);
        if (s[0] < 0) s[0] = 1;
        if (s[1] < 0) s[1] = img.channels == 1 ? 1 : 3;
        if (s[2] < 0) s[2] = img.height;
        if (s[3] < 0) s[3] = img.width;
        x = di::image_to_tensor(img, s[1], s[2], s[3], di::preprocess_from_metadata(g.metadata, di::preprocess_options{}));
        // As the command line compiles it: every tensor checked (each activation fused into its
        // producer all the same, the tensor before it proved finite by a bound), what the command
        // reads kept.
        di::engine_options o;
        o.check = di::finite_check::all;
        o.keep = std::move(keep);
        net = std::make_unique<di::network>(g, x.shape, o);
        net->forward(x);
    }
    di::tensor scores() const { return net->read(net->score_tensor()); }
    std::vector<di::tensor> backward(const std::vector<di::backward_request>& requests) { return net->backward(requests); }
    di::tensor backward(const di::backward_request& request) { return backward(std::vector<di::backward_request>{request}).at(0); }
};

inline di::backward_request class_request(int64_t c, di::backward_rule rule) {
    return {di::target{di::target::kind::class_score, "", {c}, {}}, rule};
}

/// A batch-1 tensor without its batch axis, as the CLI writes it.
inline di::tensor drop_batch(const di::tensor& t) {
    BOOST_REQUIRE(!t.shape.empty());
    BOOST_REQUIRE_EQUAL(t.shape[0], 1);
    return di::tensor(di::shape_t(t.shape.begin() + 1, t.shape.end()), t.data);
}

/// The paper's map of a batch-1 signal [1, C, H, W]: max over channels of |signal|, shape [H, W].
inline di::tensor paper_map(const di::tensor& signal) {
    BOOST_REQUIRE_EQUAL(signal.shape.size(), 4u);
    const int64_t c = signal.shape[1], hw = signal.shape[2] * signal.shape[3];
    di::tensor map({signal.shape[2], signal.shape[3]});
    for (int64_t k = 0; k < c; ++k)
        for (int64_t i = 0; i < hw; ++i) map.data[size_t(i)] = std::max(map.data[size_t(i)], std::fabs(signal.data[size_t(k * hw + i)]));
    return map;
}

/// Same shape and the same bits (see library_side for why equality is the right test).
inline void expect_identical(const di::tensor& file, const di::tensor& expected, const std::string& what) {
    BOOST_TEST_CONTEXT(what) {
        BOOST_TEST_REQUIRE(di::to_string(file.shape) == di::to_string(expected.shape));
        size_t differing = 0;
        for (size_t i = 0; i < file.data.size(); ++i) differing += file.data[i] != expected.data[i];
        BOOST_TEST(differing == 0u, differing << " of " << file.data.size() << " values differ, rel. L2 " << rel_l2(file, expected));
    }
}

/// PREFIX.grad.npy and PREFIX.npy are the library's signal (batch axis dropped) and its paper map.
inline void expect_files_hold(const std::string& prefix, const di::tensor& signal, const std::string& what) {
    BOOST_TEST_REQUIRE(signal.shape.size() == 4u);
    expect_identical(di::read_npy(prefix + ".grad.npy"), drop_batch(signal), what + " .grad.npy");
    expect_identical(di::read_npy(prefix + ".npy"), paper_map(signal), what + " .npy");
}

/// Two signals that must not be the same map (a target or rule that was ignored would make them equal).
inline void expect_different(const di::tensor& a, const di::tensor& b, const std::string& what) {
    const double d = rel_l2(a, b);
    BOOST_TEST(d > 1e-3, what << ": rel. L2 " << d);
}


/// onnx_test::tiny_model (x [batch, 1, 4, 4] -> Conv "conv1" -> "c" -> Relu -> "r" -> Flatten -> "f"
/// -> Gemm "fc" -> "y", 3 classes) with its weights scaled, written into the scratch folder.
inline std::string tiny_model_file(const scratch& s, const std::string& name, float conv_scale, float fc_scale, float conv_w0 = 0) {
    onnx_test::tiny_weights w;
    for (auto& v : w.conv_w) v *= conv_scale;
    for (auto& v : w.fc_w) v *= fc_scale;
    if (conv_w0 != 0 || std::isnan(conv_w0)) w.conv_w[0] = conv_w0;
    return s.file(name, onnx_test::serialize(onnx_test::tiny_model(w)));
}

inline nlohmann::json read_json(const std::string& path) {
    std::ifstream in(path);
    BOOST_REQUIRE_MESSAGE(in, "cannot open " << path);
    return nlohmann::json::parse(in);
}

inline std::string bundled_images(size_t count) {
    std::vector<fs::path> images;
    for (auto& e : fs::directory_iterator(std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/images")) images.push_back(e.path());
    std::sort(images.begin(), images.end());
    std::string out;
    for (size_t i = 0; i < std::min(count, images.size()); ++i) out += " " + images[i].string();
    return out;
}

} // namespace cli_support
