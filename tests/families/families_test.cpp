// Every torchvision classification family, exported by tools/export_torchvision_families.py at ONNX
// opsets 13 and 17 (default export settings, dynamic batch, seeded random weights), against PyTorch
// in float64 and the double-precision reference. One test case per family and opset:
//   - the model reads, and `deepinside info` on it exits 0 and agrees with the engine (layer count,
//     parameter count, score tensor, every layer's output shape);
//   - logits at batch 1 against PyTorch's float64 logits (1e-4 rel L2), and at batch 2 (the batch
//     axis is dynamic) each row against its own float64 logits;
//   - the gradient by torchvision_test.cpp's criterion (its header comment; comparison.hpp): every
//     activation against the reference's double forward, ours against the reference run on our
//     forward, the reference against PyTorch float64, and ours against PyTorch where no decision
//     flips;
//   - DeconvNet and guided backprop: on networks whose only nonlinearity is ReLU, by the same
//     criterion; on the others, the default must refuse with unsupported_error naming the first
//     non-ReLU activation the backward pass meets (the last in graph order), and with
//     nonrelu_policy::gradient the signals must agree,
//     by the same criterion, with PyTorch's doing the same (the rule at ReLU, exact elsewhere).
// A family whose export is missing, that the engine or the reference cannot run, fails here with
// the reason (the op named): tools/torchvision_status.sh tabulates the same per family.
//
// The backward checks of DeconvNet and guided run on both opsets (the graphs differ: LayerNorm,
// HardSwish are single nodes at opset 17 and decomposed at 13).
// (The area's only file: BOOST_TEST_MODULE, set by tests/CMakeLists.txt, makes its main().)
#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include "reference.hpp"
#include "torchvision/comparison.hpp"

#include <boost/test/data/monomorphic.hpp>
#include <boost/test/data/test_case.hpp>
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include "support/environment.hpp"
#include "support/numbers.hpp"
#include "support/requirements.hpp"
#include "support/scratch_dir.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace deepinside;
using namespace deepinside::torchvision_test;

namespace {

using deepinside::test_support::env;
using deepinside::test_support::rel_l2;

// tools/export_torchvision_families.py's FAMILIES (every torchvision 0.14 classification family but
// swin_v2_t, which PyTorch 1.13 cannot export: NOT_EXPORTABLE there).
const std::vector<std::string> families = {
    "alexnet",          "vgg16",          "vgg16_bn",          "resnet18",          "resnet50",
    "resnext50_32x4d",  "wide_resnet50_2", "squeezenet1_0",    "squeezenet1_1",     "densenet121",
    "googlenet",        "inception_v3",   "shufflenet_v2_x1_0", "mnasnet1_0",       "mobilenet_v2",
    "mobilenet_v3_small", "mobilenet_v3_large", "efficientnet_b0", "efficientnet_v2_s", "regnet_x_400mf",
    "regnet_y_400mf",   "convnext_tiny",  "vit_b_16",          "swin_t",            "maxvit_t"};
const std::vector<int> opsets = {13, 17};

// Pointwise nonlinearities other than ReLU: where DeconvNet and guided backprop are undefined.
// (Softmax and normalisations are differentiated exactly under every rule, as LRN is.)
const std::set<std::string> activation_ops = {"Clip",  "Sigmoid", "HardSigmoid", "HardSwish", "Erf",      "Gelu",
                                              "Tanh",  "LeakyRelu", "Elu",       "Selu",      "Softplus", "Softsign",
                                              "PRelu", "Mish",    "Celu",        "ThresholdedRelu"};

fs::path export_dir() { return fs::path(env("DEEPINSIDE_BUILD_DIR")) / "torchvision-families"; }

/// Runs the export script for `family` when one of its opsets is missing (it skips what is there;
/// all families from scratch take some 25 minutes on 2 idle cores); returns its exit status (0 when
/// nothing was missing). Its output goes to torchvision-families.log in the build directory.
int export_missing(const std::string& family) {
    const fs::path dir = export_dir();
    bool complete = true;
    for (int o : opsets) complete = complete && fs::exists(dir / (family + "-opset" + std::to_string(o)) / "manifest.json");
    if (complete) return 0;
    fs::create_directories(dir);
    const std::string cmd = "nice " + std::string(env("DEEPINSIDE_PYTHON")) + " " + env("DEEPINSIDE_SOURCE_DIR") +
                            "/tools/export_torchvision_families.py " + dir.string() + " --families " + family + " >> " +
                            dir.string() + ".log 2>&1";
    BOOST_TEST_MESSAGE("exporting: " << cmd);
    return std::system(cmd.c_str());
}

struct cli_result {
    int status = -1;
    std::string out, err;
};

/// `deepinside ARGS` (the CLI this build made, DEEPINSIDE_BIN).
cli_result run_cli(const std::string& args) {
    const test_support::scratch_dir tmp("deepinside-families");
    const std::string cmd = std::string(env("DEEPINSIDE_BIN")) + " " + args + " > " + tmp.file("out") + " 2> " + tmp.file("err");
    cli_result r;
    const int raw = std::system(cmd.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    auto slurp = [](const std::string& p) {
        std::ifstream in(p);
        return std::string(std::istreambuf_iterator<char>(in), {});
    };
    r.out = slurp(tmp.file("out"));
    r.err = slurp(tmp.file("err"));
    return r;
}

/// `deepinside info` against the engine's network compiled at batch 1: the layers it runs (the graph
/// with the nodes computing on constants only evaluated), their parameters and output shapes.
void check_info(const std::string& what, const fs::path& model, const network& net) {
    const cli_result r = run_cli("info " + model.string());
    BOOST_TEST(r.status == 0, what << ": deepinside info exits " << r.status << ": " << r.err);
    if (r.status != 0) return;
    const graph& g = net.model();
    int64_t params = 0;
    for (const auto& n : g.nodes)
        for (const auto& in : n.inputs)
            if (const constant* c = g.find_constant(in); c && !c->is_int) params += element_count(c->shape);
    const std::string summary = std::to_string(g.nodes.size()) + " layers, " + std::to_string(params) + " parameters";
    BOOST_TEST(r.out.find(summary) != std::string::npos, what << ": deepinside info does not say '" << summary << "'");
    BOOST_TEST(r.out.find("scores    " + net.score_tensor() + " ") != std::string::npos,
               what << ": deepinside info does not name the score tensor '" << net.score_tensor() << "'");
    // Every layer's row: its index first, the engine's output shape in it.
    std::istringstream lines(r.out);
    std::string line;
    size_t rows = 0, agreeing = 0;
    std::string first_disagreement;
    while (std::getline(lines, line)) {
        std::istringstream words(line);
        size_t i;
        std::string name;
        if (!(words >> i >> name) || i >= g.nodes.size() || line.find(g.nodes[i].op_type) == std::string::npos) continue;
        ++rows;
        const node& n = g.nodes[i];
        const std::string shape = n.outputs.empty() ? "" : to_string(net.shape_of(n.outputs[0]));
        if (line.find(" " + shape + " ") != std::string::npos) ++agreeing;
        else if (first_disagreement.empty()) first_disagreement = line + " (engine: " + shape + ")";
    }
    BOOST_TEST(rows == g.nodes.size(), what << ": deepinside info lists " << rows << " layers of " << g.nodes.size());
    BOOST_TEST(agreeing == rows, what << ": deepinside info's shapes disagree with the engine: " << first_disagreement);
}

/// The row `row` of a [N, K] float64 tensor.
verify::dtensor row_of(const verify::dtensor& t, int64_t row) {
    const int64_t k = t.shape.at(1);
    verify::dtensor r({1, k});
    std::copy(t.data.begin() + row * k, t.data.begin() + (row + 1) * k, r.data.begin());
    return r;
}
tensor row_of(const tensor& t, int64_t row) {
    const int64_t k = t.shape.at(1);
    tensor r({1, k});
    std::copy(t.data.begin() + row * k, t.data.begin() + (row + 1) * k, r.data.begin());
    return r;
}

void check_family_opset(const std::string& family, int opset) {
    const std::string what = family + " opset " + std::to_string(opset);
    const fs::path d = export_dir() / (family + "-opset" + std::to_string(opset));
    BOOST_REQUIRE_MESSAGE(fs::exists(d / "manifest.json"),
                          what << ": no export in " << d << " (see torchvision-families.log in the build directory)");
    nlohmann::json manifest;
    std::ifstream(d / "manifest.json") >> manifest;
    const bool all_relu = manifest.at("all_relu").get<bool>();

    graph g;
    try {
        g = read_onnx((d / "model.onnx").string());
    } catch (const error& e) {
        BOOST_FAIL(what << ": the model does not read: " << e.what());
    }
    const tensor x = read_npy(test_support::require_file(d / "input.npy").string());

    // The engine at batch 1 (its default policy: refuse).
    std::unique_ptr<network> net;
    try {
        net = std::make_unique<network>(g, x.shape);
    } catch (const error& e) {
        BOOST_FAIL(what << ": the engine refuses the model: " << e.what());
    }
    check_info(what, d / "model.onnx", *net);
    const tensor logits = net->forward(x).front();
    const double logit_err = rel_l2(logits, read_f64(d / "logits.f64", logits.shape));
    BOOST_TEST_MESSAGE(what << ": logits rel L2 vs PyTorch float64 " << logit_err);
    BOOST_TEST(logit_err <= 1e-4, what << ": logits rel L2 " << logit_err);

    // Batch 2 through the dynamic batch axis: each row against its own float64 logits.
    {
        const tensor x2 = read_npy(test_support::require_file(d / "input_batch2.npy").string());
        BOOST_REQUIRE_EQUAL(x2.shape.at(0), 2);
        try {
            network net2(g, x2.shape);
            const tensor l2 = net2.forward(x2).front();
            const verify::dtensor torch2 = read_f64(d / "logits_batch2.f64", l2.shape);
            for (int64_t r = 0; r < 2; ++r) {
                const double e = rel_l2(row_of(l2, r), row_of(torch2, r));
                BOOST_TEST_MESSAGE(what << ": batch 2, row " << r << " logits rel L2 " << e);
                BOOST_TEST(e <= 1e-4, what << ": batch 2, row " << r << ": logits rel L2 " << e);
            }
        } catch (const error& e) {
            BOOST_ERROR(what << ": at batch 2: " << e.what());
        }
    }

    // The double reference: its forward against ours (check 1), decisions (check 4).
    std::unique_ptr<verify::reference_network> reference;
    forward_states states;
    try {
        // On the graph as the engine compiled it (shape arithmetic on constants evaluated): that
        // folding is checked by the logits and by check 3 against PyTorch.
        reference = std::make_unique<verify::reference_network>(net->model());
        states = compare_forward(*net, *reference, x);
    } catch (const error& e) {
        BOOST_FAIL(what << ": the double reference cannot run the model: " << e.what());
    }
    BOOST_TEST_MESSAGE(what << ": forward, worst activation rel L2 vs double reference " << states.worst_activation << " ('"
                            << states.worst_name << "')");
    BOOST_TEST(states.worst_activation <= 1e-4, what << ": activation '" << states.worst_name << "' rel L2 " << states.worst_activation);
    BOOST_TEST_MESSAGE(what << ": decisions that differ between our f32 and the double forward:" << states.flip_report);

    const int64_t c = read_class(d);
    BOOST_REQUIRE(c >= 0);
    const verify::dtensor seed = one_hot(states.reference.at(net->score_tensor()).shape, c);
    auto request = [c](backward_rule r) { return backward_request{{target::kind::class_score, "", {c}, {}}, r}; };
    auto torch = [&](const char* rule) { return read_f64(d / (std::string(rule) + ".f64"), without_batch(x.shape)); };
    const std::vector<backward_rule> rules = {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};

    if (all_relu) {
        const auto signals = net->backward({request(rules[0]), request(rules[1]), request(rules[2])});
        for (size_t k = 0; k < rules.size(); ++k)
            check_signal(what, to_string(rules[k]), signals[k], *reference, states, net->score_tensor(), seed, rules[k],
                         torch(to_string(rules[k])));
        return;
    }

    const auto gradient = net->backward({request(backward_rule::gradient)});
    check_signal(what, "gradient", gradient[0], *reference, states, net->score_tensor(), seed, backward_rule::gradient,
                 torch("gradient"), nonrelu_policy::refuse, smooth_direct_bound);

    // The default refuses DeconvNet and guided, naming the first non-ReLU activation the backward
    // pass meets: the last in graph order.
    const node* first = nullptr;
    for (const auto& n : net->model().nodes)
        if (activation_ops.count(n.op_type)) first = &n;
    BOOST_TEST_REQUIRE(first != nullptr, what << ": not all-ReLU by the export's manifest, yet no activation other than ReLU in the graph");
    for (const backward_rule r : {backward_rule::deconvnet, backward_rule::guided}) {
        std::string message;
        try {
            net->backward({request(r)});
        } catch (const unsupported_error& e) {
            message = e.what();
        }
        BOOST_TEST(message.find("node '" + first->name + "'") != std::string::npos,
                   what << ": " << to_string(r) << " under the default policy: expected unsupported_error naming node '"
                        << first->name << "' (" << first->op_type << "), got '" << message << "'");
    }

    // --nonrelu gradient: the rule at ReLU, exact derivatives elsewhere, as PyTorch's references.
    engine_options options;
    options.nonrelu = nonrelu_policy::gradient;
    network nr(g, x.shape, options);
    const tensor nr_logits = nr.forward(x).front();
    // Both networks run the same primitives on the same input: the same forward state, bit for bit,
    // so the states compared above certify this network's backward too.
    BOOST_TEST_REQUIRE(nr_logits.data == logits.data, what << ": the --nonrelu gradient network's forward differs");
    const auto signals = nr.backward({request(backward_rule::deconvnet), request(backward_rule::guided)});
    for (size_t k = 0; k < 2; ++k)
        check_signal(what, std::string(to_string(rules[k + 1])) + " (--nonrelu gradient)", signals[k], *reference, states,
                     nr.score_tensor(), seed, rules[k + 1], torch(to_string(rules[k + 1])), nonrelu_policy::gradient,
                     smooth_direct_bound);
}

} // namespace

// One case per family and opset: a failure that stops one (the engine refusing the model) leaves
// the others to run.
BOOST_TEST_DECORATOR(*deepinside::test_support::needs_python("numpy torch torchvision onnx"))
BOOST_DATA_TEST_CASE(torchvision_family_matches_pytorch, boost::unit_test::data::make(families) * boost::unit_test::data::make(opsets),
                     family, opset) {
    // A family the script could not export fails below, for want of its files.
    if (export_missing(family) != 0)
        BOOST_TEST_MESSAGE("tools/export_torchvision_families.py failed for " << family << "; see torchvision-families.log in the build directory");
    BOOST_TEST_CONTEXT("family " << family << ", opset " << opset) {
        check_family_opset(family, opset);
    }
}
