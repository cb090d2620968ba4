// torchvision's architectures, exported by tools/export_torchvision.py with Debian's PyTorch and
// fixed random weights: our logits and our gradient, DeconvNet and guided signals agree with
// PyTorch's (the rules written there as custom autograd functions), and our gradient agrees with
// central differences of our own forward pass.
#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include "reference.hpp"

#include <boost/test/unit_test.hpp>

#include "support/environment.hpp"

#include <cmath>
#include <map>
#include <memory>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace deepinside;

namespace {

using deepinside::test_support::env;

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
            std::unique_ptr<verify::reference_network> reference; // built only when PyTorch disagrees
            std::map<std::string, verify::dtensor> reference_acts;
            for (size_t k = 0; k < requests.size(); ++k) {
                const tensor ref = read_npy((d / (names[k] + ".npy")).string());
                // Same maths as PyTorch's autograd, f32 in another summation order; the bound.
                const double e = rel_l2(signals[k].data, ref.data);
                BOOST_TEST_MESSAGE(arch << ": " << names[k] << " rel L2 vs PyTorch " << e);
                if (e <= 1e-3) continue;
                // Two f32 forward passes can order a near-tie in a max-pool window, or put a value on
                // the other side of a ReLU6 kink, differently; each such switch moves the signal.
                // Arbitrate with the double-precision reference (its own forward, in double): our
                // signal must agree with it to 1e-5 and PyTorch's must be the one that departs.
                if (!reference) {
                    reference = std::make_unique<verify::reference_network>(g);
                    reference_acts = reference->forward(verify::to_double(x));
                }
                verify::dtensor seed(reference_acts.at(net.score_tensor()).shape);
                seed.data[static_cast<size_t>(c)] = 1.0;
                const verify::dtensor exact = reference->backward(reference_acts, net.score_tensor(), seed, requests[k].rule);
                const tensor exact_f = verify::to_float(exact);
                const double ours = rel_l2(signals[k].data, exact_f.data), theirs = rel_l2(ref.data, exact_f.data);
                BOOST_TEST_MESSAGE(arch << ": " << names[k] << " rel L2 vs double reference: ours " << ours << ", PyTorch's " << theirs);
                BOOST_TEST(ours <= 1e-5, arch << " " << names[k] << ": ours vs double reference " << ours);
                BOOST_TEST(theirs > 1e-3, arch << " " << names[k] << ": PyTorch agrees with the reference (" << theirs
                                                << ") but not with us (" << e << ")");
            }

            // Central differences of our own S_c along unit directions d near the gradient's:
            // (S(x+hd) - S(x-hd)) / 2h against <dS/dx, d>. Along (mostly) the gradient the derivative is
            // as large as it gets, so f32 rounding of S (~6e-8 |S| / h) stays far below it, and a unit
            // step of h = 1e-2 moves each pixel by ~1e-2/sqrt(150528): few ReLU kinks are crossed.
            // Piecewise-linear networks then agree to ~1e-3; 1e-2 is the stated bound.
            std::mt19937 rng(7);
            std::normal_distribution<float> normal;
            const tensor& grad = signals[0];
            double gnorm = 0;
            for (float g : grad.data) gnorm += double(g) * g;
            gnorm = std::sqrt(gnorm);
            BOOST_REQUIRE(gnorm > 0);
            int agree = 0;
            const int directions = 4;
            for (int t = 0; t < directions; ++t) {
                std::vector<double> r(x.data.size());
                double rnorm = 0;
                for (auto& v : r) {
                    v = normal(rng);
                    rnorm += v * v;
                }
                rnorm = std::sqrt(rnorm);
                std::vector<double> dir(x.data.size());
                double dnorm = 0;
                for (size_t i = 0; i < dir.size(); ++i) {
                    dir[i] = grad.data[i] / gnorm + 0.5 * r[i] / rnorm;
                    dnorm += dir[i] * dir[i];
                }
                dnorm = std::sqrt(dnorm);
                double dot = 0;
                for (size_t i = 0; i < dir.size(); ++i) {
                    dir[i] /= dnorm;
                    dot += double(grad.data[i]) * dir[i];
                }
                // Two steps: a kink crossed at the larger one (ReLU6 networks have two per unit) is
                // usually not crossed at the smaller one, whose f32 rounding is still far below <g,d>.
                double e = 1e300, fd = 0;
                for (const double h : {1e-2, 1e-3}) {
                    tensor plus = x, minus = x;
                    for (size_t i = 0; i < dir.size(); ++i) {
                        plus.data[i] += static_cast<float>(h * dir[i]);
                        minus.data[i] -= static_cast<float>(h * dir[i]);
                    }
                    const double sp = net.forward(plus).front().data[c], sm = net.forward(minus).front().data[c];
                    const double f = (sp - sm) / (2.0 * h);
                    const double r = std::fabs(f - dot) / std::max({std::fabs(f), std::fabs(dot), 1e-6});
                    if (r < e) e = r, fd = f;
                }
                BOOST_TEST_MESSAGE(arch << ": direction " << t << " fd " << fd << " <g,d> " << dot << " rel " << e);
                if (e <= 1e-2) ++agree;
            }
            BOOST_TEST(agree >= directions - 1, arch << ": " << agree << " of " << directions << " directions agree");
        }
    }
}
