// torchvision's architectures, exported by tools/export_torchvision.py with Debian's PyTorch and
// fixed random weights: our logits and our gradient, DeconvNet and guided signals agree with
// PyTorch's (the rules written there as custom autograd functions), and our gradient agrees with
// central differences of our own forward pass.
#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace deepinside;

namespace {

const char* env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

double rel_l2(const std::vector<float>& got, const std::vector<float>& want) {
    double num = 0, den = 0;
    for (size_t i = 0; i < want.size(); ++i) {
        const double e = double(got[i]) - double(want[i]);
        num += e * e;
        den += double(want[i]) * double(want[i]);
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

const std::vector<std::string> archs = {"alexnet", "vgg11_bn", "resnet18_bn", "resnet18_folded", "squeezenet1_1",
                                        "googlenet", "mobilenet_v2", "densenet121"};

/// Exports the architectures once per build directory (about a minute); later runs reuse them.
fs::path exports() {
    const fs::path dir = fs::path(env("DEEPINSIDE_BUILD_DIR")) / "torchvision";
    bool complete = true;
    for (const auto& a : archs) complete = complete && fs::exists(dir / a / "gradient.npy");
    if (!complete) {
        const std::string cmd = std::string(env("DEEPINSIDE_PYTHON")) + " " + env("DEEPINSIDE_SOURCE_DIR") +
                                "/tools/export_torchvision.py " + dir.string() + " --signals > " + (dir.string() + ".log") + " 2>&1";
        fs::create_directories(dir);
        BOOST_TEST_MESSAGE("exporting: " << cmd);
        if (std::system(cmd.c_str()) != 0) return {};
    }
    return dir;
}

bool python_has_torch() {
    const std::string cmd = std::string(env("DEEPINSIDE_PYTHON")) + " -c 'import torch, torchvision, onnx' > /dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

int64_t read_class(const fs::path& dir) {
    std::ifstream in(dir / "class.txt");
    int64_t c = -1;
    in >> c;
    return c;
}

} // namespace

BOOST_AUTO_TEST_CASE(torchvision_architectures_match_pytorch) {
    if (!python_has_torch()) {
        BOOST_TEST_MESSAGE("skipped: python3 with torch, torchvision and onnx is not installed");
        return;
    }
    const fs::path dir = exports();
    BOOST_REQUIRE_MESSAGE(!dir.empty(), "tools/export_torchvision.py failed; see torchvision.log in the build directory");
    for (const auto& arch : archs) {
        BOOST_TEST_CONTEXT("architecture " << arch) {
            const fs::path d = dir / arch;
            graph g = read_onnx((d / "model.onnx").string());
            const tensor x = read_npy((d / "input.npy").string());
            network net(g, x.shape);
            const tensor logits = net.forward(x).front();
            const tensor want = read_npy((d / "logits.npy").string());
            // f32 sums over up to ~10^5 terms in a different order than PyTorch's: ~1e-6 expected.
            const double err = rel_l2(logits.data, want.data);
            BOOST_TEST_MESSAGE(arch << ": logits rel L2 " << err);
            BOOST_TEST(err <= 1e-4);

            const int64_t c = read_class(d);
            BOOST_REQUIRE(c >= 0);
            std::vector<backward_request> requests;
            std::vector<std::string> names;
            for (const char* rule : {"gradient", "deconvnet", "guided"})
                if (fs::exists(d / (std::string(rule) + ".npy"))) {
                    requests.push_back({{target::kind::class_score, "", {c}, {}}, parse_backward_rule(rule)});
                    names.push_back(rule);
                }
            BOOST_REQUIRE(!requests.empty());
            const auto signals = net.backward(requests); // all rules in one stacked pass
            for (size_t k = 0; k < requests.size(); ++k) {
                const tensor ref = read_npy((d / (names[k] + ".npy")).string());
                // Same maths as PyTorch's autograd, f32 in another summation order; the bound.
                const double e = rel_l2(signals[k].data, ref.data);
                BOOST_TEST_MESSAGE(arch << ": " << names[k] << " rel L2 " << e);
                BOOST_TEST(e <= 1e-3, arch << " " << names[k] << " rel L2 " << e);
            }

            // Central differences of our own S_c along random directions v: (S(x+hv) - S(x-hv)) / 2h
            // against <dS/dx, v>. ReLU networks are piecewise linear, so the only errors are f32
            // rounding of S (~1e-7 |S| / h) and the rare kink crossed within ±h: 1e-2 relative.
            std::mt19937 rng(7);
            std::normal_distribution<float> normal;
            const tensor& grad = signals[0];
            int agree = 0;
            const int directions = 4;
            for (int t = 0; t < directions; ++t) {
                tensor v(x.shape), plus = x, minus = x;
                double dot = 0;
                const float h = 1e-2f;
                for (size_t i = 0; i < v.data.size(); ++i) {
                    v.data[i] = normal(rng);
                    plus.data[i] += h * v.data[i];
                    minus.data[i] -= h * v.data[i];
                    dot += double(grad.data[i]) * v.data[i];
                }
                const double sp = net.forward(plus).front().data[c], sm = net.forward(minus).front().data[c];
                const double fd = (sp - sm) / (2.0 * h);
                const double e = std::fabs(fd - dot) / std::max({std::fabs(fd), std::fabs(dot), 1e-6});
                BOOST_TEST_MESSAGE(arch << ": direction " << t << " fd " << fd << " <g,v> " << dot << " rel " << e);
                if (e <= 1e-2) ++agree;
            }
            // Allow one direction to cross a kink; more means the gradient is wrong.
            BOOST_TEST(agree >= directions - 1, arch << ": " << agree << " of " << directions << " directions agree");
        }
    }
}
