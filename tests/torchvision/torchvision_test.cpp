// torchvision's architectures, exported by tools/export_torchvision.py with Debian's PyTorch and
// fixed random weights, against PyTorch in float64 and against the double-precision reference.
//
// Why three parties. Our engine computes in f32; two f32 forward passes (ours and PyTorch's, or ours
// on an AVX2 and on an AVX-512 machine) sum in different orders, and a value within rounding of a
// ReLU / Clip kink or a near-tied max-pool window can land on either side. Each such decision moves
// the backward signal by far more than rounding does (1e-3 and more on GoogLeNet, MobileNetV2,
// DenseNet-121), so no tolerance on "ours vs PyTorch" both holds on every CPU and catches a wrong
// rule. The checks are therefore made where they are exact:
//   1. forward: every activation of ours against the reference's own double forward (1e-4 rel L2;
//      logits against PyTorch's float64 logits, 1e-4);
//   2. our backward, certified: the reference's backward run on *our* forward activations (same
//      masks, same switches, widened to double) agrees with our signal to 1e-5 for every rule;
//   3. the reference against PyTorch: the reference's backward on its own double forward agrees with
//      PyTorch's float64 signal (same weights, the rules as autograd functions) to 1e-12;
//   4. the decisions on which our f32 forward and the double forward differ are counted and
//      reported per kind, with what they move the signal by (reference on ours vs reference on its
//      own); where none differ, ours must also agree with PyTorch directly to 1e-5.
// A wrong rule in the engine fails 2 (a wrong mask, index or transpose moves the signal by 1e-2 or
// more), a wrong rule in the reference fails 3, the same mistake in both fails 3; a forward that
// goes astray fails 1. None of these bounds depends on which side of a kink rounding fell.
// Finally our gradient agrees with central differences of our own f32 S_c (a check of consistency
// with our forward pass that needs no other implementation).
#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include "reference.hpp"
#include "torchvision/comparison.hpp"

#include <boost/test/unit_test.hpp>

#include "support/environment.hpp"
#include "support/numbers.hpp"
#include "support/requirements.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace deepinside;

namespace {

using deepinside::test_support::env;
using deepinside::test_support::rel_l2;
using namespace deepinside::torchvision_test;

const std::vector<std::string> archs = {"alexnet", "vgg11_bn", "resnet18_bn", "resnet18_folded", "squeezenet1_1",
                                        "googlenet", "mobilenet_v2", "densenet121"};

/// Exports the architectures once per build directory (about a minute); later runs reuse them.
fs::path exports() {
    const fs::path dir = fs::path(env("DEEPINSIDE_BUILD_DIR")) / "torchvision";
    bool complete = true;
    for (const auto& a : archs) complete = complete && fs::exists(dir / a / "gradient.f64") && fs::exists(dir / a / "logits.f64");
    if (!complete) {
        const std::string cmd = std::string(env("DEEPINSIDE_PYTHON")) + " " + env("DEEPINSIDE_SOURCE_DIR") +
                                "/tools/export_torchvision.py " + dir.string() + " --signals > " + (dir.string() + ".log") + " 2>&1";
        fs::create_directories(dir);
        BOOST_TEST_MESSAGE("exporting: " << cmd);
        if (std::system(cmd.c_str()) != 0) return {};
    }
    return dir;
}

} // namespace

BOOST_AUTO_TEST_CASE(torchvision_architectures_match_pytorch,
                     *deepinside::test_support::needs_python("numpy torch torchvision onnx")) {
    const fs::path dir = exports();
    BOOST_REQUIRE_MESSAGE(!dir.empty(), "tools/export_torchvision.py failed; see torchvision.log in the build directory");
    for (const auto& arch : archs) {
        BOOST_TEST_CONTEXT("architecture " << arch) {
            const fs::path d = dir / arch;
            graph g = read_onnx((d / "model.onnx").string());
            const tensor x = read_npy((d / "input.npy").string());
            network net(g, x.shape);
            const tensor logits = net.forward(x).front();
            // f32 sums over up to ~10^5 terms against exact float64: ~1e-6 expected.
            const double logit_err = rel_l2(logits, read_f64(d / "logits.f64", logits.shape));
            BOOST_TEST_MESSAGE(arch << ": logits rel L2 vs PyTorch float64 " << logit_err);
            BOOST_TEST(logit_err <= 1e-4);

            // 1. Every activation against the reference's own double forward; 4. (counted first) the
            // decisions our f32 forward and the double forward take differently.
            const verify::reference_network reference(g);
            const forward_states states = compare_forward(net, reference, x);
            BOOST_TEST_MESSAGE(arch << ": forward, worst activation rel L2 vs double reference " << states.worst_activation << " ('"
                                    << states.worst_name << "')");
            BOOST_TEST(states.worst_activation <= 1e-4, arch << ": activation '" << states.worst_name << "' rel L2 " << states.worst_activation);
            BOOST_TEST_MESSAGE(arch << ": decisions that differ between our f32 and the double forward:" << states.flip_report);

            const int64_t c = read_class(d);
            BOOST_REQUIRE(c >= 0);
            std::vector<backward_request> requests;
            std::vector<std::string> names;
            for (const char* rule : {"gradient", "deconvnet", "guided"})
                if (fs::exists(d / (std::string(rule) + ".f64"))) {
                    requests.push_back({{target::kind::class_score, "", {c}, {}}, parse_backward_rule(rule)});
                    names.push_back(rule);
                }
            BOOST_REQUIRE(!requests.empty());
            const auto signals = net.backward(requests); // all rules in one stacked pass
            const verify::dtensor seed = one_hot(states.reference.at(net.score_tensor()).shape, c);
            for (size_t k = 0; k < requests.size(); ++k)
                check_signal(arch, names[k], signals[k], reference, states, net.score_tensor(), seed, requests[k].rule,
                             read_f64(d / (names[k] + ".f64"), without_batch(x.shape)));

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
