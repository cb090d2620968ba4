// The engine against the double-precision reference on whole models: forward, the three rules at
// the input, stacked requests, signals at an intermediate tensor and targets at an inner layer.
//
// Tolerances: forward 1e-5 relative L2, backward 1e-4. The engine computes in f32 (eps 6e-8) with
// sums of at most a few thousand terms per value, so the forward differs from double by ~1e-7..1e-6
// relative. Backward signals are sums of many products of weights with opposite signs, which loses
// up to an order of magnitude relative to the forward. 1e-4 keeps a wide margin over what we measure
// (~1e-7) while any wrong term (a mis-routed pooling switch, a wrong rule at a ReLU) shows up at
// 1e-2..1.
//
// Same decisions on both sides: backward passes take discrete decisions from the forward values
// (the ReLU masks, the max-pool switches). Where two values of a pooling window differ by less than
// f32 resolution, f32 and double may order them differently, and one switch moving its signal is a
// 1e-2 difference: gtsrb-cnn's input (an 8-bit photo with flat regions) has such a window, its two
// candidates 0.73398081 and 0.73398078 in double, reversed in f32. Both answers are right for their
// precision. So the reference's backward runs on the engine's activations (read back and widened to
// double) and takes its own decisions on them: first maximum in row-major order, x > 0. That
// certifies the engine's backward for the forward state it really has; the forward itself is
// certified separately, every activation against the reference's own double forward (1e-5). The
// comparison against the reference's own forward state is reported as a message.
#include "support.hpp"

#include <sstream>

using namespace engine_test;

namespace {

constexpr double forward_tolerance = 1e-5;
constexpr double backward_tolerance = 1e-4;

const backward_rule all_rules[] = {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};

/// A model with the input it is checked on.
struct model_case {
    std::string name;
    graph g;
    tensor x;
};

model_case load_shared(const std::string& name) {
    const fs::path dir = shared_model(name);
    return model_case{name, read_onnx((dir / "model.onnx").string()), read_npy((dir / "input.npy").string())};
}

/// The bundled model on two random images in [0, 1) (it ships no input of its own).
model_case load_bundled() {
    model_case m{"bundled fashion-mnist-convnet", read_onnx(bundled_model().string()), {}};
    shape_t s = concrete_input_shape(m.g);
    if (m.g.inputs[0].shape[0] < 0) s[0] = 2;
    std::mt19937 rng(7);
    m.x = random_tensor(rng, s, 0.0, 1.0);
    return m;
}

/// One-hot seeds at `tensor` (shape [N, C]) for class `cls[n]` of each image.
dtensor one_hot(const shape_t& shape, const std::vector<int64_t>& cls) {
    dtensor seed(shape);
    const int64_t per = element_count(shape) / shape[0];
    for (int64_t n = 0; n < shape[0]; ++n) seed.data[static_cast<size_t>(n * per + cls[static_cast<size_t>(n)])] = 1.0;
    return seed;
}

/// Top-1 class of each image from the reference's class scores.
std::vector<int64_t> top1(const dtensor& scores) {
    std::vector<int64_t> out;
    const int64_t per = scores.size() / scores.shape[0];
    for (int64_t n = 0; n < scores.shape[0]; ++n) {
        auto b = scores.data.begin() + n * per;
        out.push_back(std::max_element(b, b + per) - b);
    }
    return out;
}

/// k-th best class of each image.
std::vector<int64_t> kth(const dtensor& scores, size_t k) {
    std::vector<int64_t> out;
    const int64_t per = scores.size() / scores.shape[0];
    for (int64_t n = 0; n < scores.shape[0]; ++n) {
        std::vector<int64_t> idx(static_cast<size_t>(per));
        for (int64_t i = 0; i < per; ++i) idx[static_cast<size_t>(i)] = i;
        std::sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return scores.data[static_cast<size_t>(n * per + a)] > scores.data[static_cast<size_t>(n * per + b)]; });
        out.push_back(idx[k]);
    }
    return out;
}

/// Every activation of the engine's last forward pass, widened to double.
std::map<std::string, dtensor> engine_activations(const network& net) {
    std::map<std::string, dtensor> out;
    for (const auto& name : net.tensor_names()) out.emplace(name, to_d(net.read(name)));
    return out;
}

/// Every activation against the reference's double forward; returns the engine's activations.
std::map<std::string, dtensor> check_forward(const std::string& label, const network& net,
                                             const std::map<std::string, dtensor>& acts) {
    auto aligned = engine_activations(net);
    double worst = 0;
    std::string worst_name;
    for (const auto& [name, a] : aligned) {
        BOOST_REQUIRE_MESSAGE(a.shape == acts.at(name).shape, label << ": shape of '" << name << "' differs");
        const double e = rel_l2(a, acts.at(name));
        if (e >= worst) {
            worst = e;
            worst_name = name;
        }
    }
    BOOST_TEST_MESSAGE(label << ": forward, max rel L2 over " << aligned.size() << " activations " << worst << " ('" << worst_name << "')");
    BOOST_CHECK_MESSAGE(worst <= forward_tolerance, label << ": forward of '" << worst_name << "' rel L2 " << worst);
    return aligned;
}

/// Forward of every activation, then each rule's signal at the input for the top-1 class of each
/// image (one index per image), against the reference.
void check_model(const model_case& m, const std::vector<backward_rule>& rules, const engine_options& options = {}) {
    network net(m.g, m.x.shape, unfused(options));
    net.forward(m.x);
    const verify::reference_network ref(m.g);
    const auto acts = ref.forward(to_d(m.x));
    BOOST_REQUIRE_EQUAL(net.score_tensor(), ref.score_tensor());
    const auto aligned = check_forward(m.name, net, acts);

    const dtensor& scores = acts.at(ref.score_tensor());
    const std::vector<int64_t> cls = top1(scores);
    std::vector<backward_request> requests;
    for (auto r : rules) requests.push_back({target{target::kind::class_score, "", cls, {}}, r});
    const auto sig = net.backward(requests);
    const dtensor seed = one_hot(scores.shape, cls);
    for (size_t k = 0; k < rules.size(); ++k) {
        const dtensor want = ref.backward(aligned, ref.score_tensor(), seed, rules[k], options.nonrelu);
        const dtensor own = ref.backward(acts, ref.score_tensor(), seed, rules[k], options.nonrelu);
        const double err = rel_l2(sig[k], want), own_err = rel_l2(sig[k], own);
        BOOST_TEST_MESSAGE(m.name << ": " << to_string(rules[k]) << " at the input, rel L2 " << err
                                  << " (vs the reference's own forward state: " << own_err << ")");
        BOOST_CHECK_MESSAGE(err <= backward_tolerance, m.name << ": " << to_string(rules[k]) << " rel L2 " << err);
        BOOST_CHECK_MESSAGE(max_abs(want) > 0, m.name << ": the reference signal is all zero: a vacuous comparison");
    }

    // The same with fusion (the default): the outputs against the double forward, and the signals
    // against the reference's backward on the fused network's own forward state.
    engine_options fused_options = options;
    fused_options.fuse = true;
    fused_options.check = finite_check::outputs;
    network fused(m.g, m.x.shape, fused_options);
    const std::vector<tensor> outs = fused.forward(m.x);
    for (size_t i = 0; i < outs.size(); ++i) {
        const std::string& name = fused.model().outputs[i].name;
        const double e = rel_l2(outs[i], acts.at(name));
        BOOST_TEST_MESSAGE(m.name << ": fused forward of '" << name << "', rel L2 " << e);
        BOOST_CHECK_MESSAGE(e <= forward_tolerance, m.name << ": fused forward of '" << name << "' rel L2 " << e);
    }
    const auto fused_state = stored_activations(fused);
    const auto fused_sig = fused.backward(requests);
    for (size_t k = 0; k < rules.size(); ++k) {
        const dtensor want = ref.backward(fused_state, ref.score_tensor(), seed, rules[k], options.nonrelu);
        const double err = rel_l2(fused_sig[k], want);
        BOOST_TEST_MESSAGE(m.name << ": fused, " << to_string(rules[k]) << " at the input, rel L2 " << err);
        BOOST_CHECK_MESSAGE(err <= backward_tolerance, m.name << ": fused, " << to_string(rules[k]) << " rel L2 " << err);
    }
}

/// 3 rules x 2 classes in one backward call against 6 separate calls on a fresh plan each.
void check_stacked(const model_case& m) {
    network net(m.g, m.x.shape);
    net.forward(m.x);
    const verify::reference_network ref(m.g);
    const auto scores = to_d(net.read(net.score_tensor()));
    const auto first = top1(scores), second = kth(scores, 1);
    std::vector<backward_request> requests;
    for (auto r : all_rules)
        for (const auto* c : {&first, &second}) requests.push_back({target{target::kind::class_score, "", *c, {}}, r});
    const auto stacked = net.backward(requests);
    BOOST_REQUIRE_EQUAL(stacked.size(), 6u);
    double worst = 0;
    for (size_t k = 0; k < requests.size(); ++k) {
        const auto alone = net.backward({requests[k]});
        worst = std::max(worst, rel_l2(stacked[k], alone[0]));
    }
    // The same primitives on a larger batch: bitwise equal in practice; oneDNN may pick another
    // kernel blocking for a batch of 6N, which reorders sums (f32 rounding, ~1e-7).
    BOOST_TEST_MESSAGE(m.name << ": stacked vs separate, max rel L2 " << worst);
    BOOST_CHECK_MESSAGE(worst <= 1e-6, m.name << ": stacked requests differ from separate ones by rel L2 " << worst);
    // And the slices really differ (the stack does not repeat one request).
    BOOST_CHECK(rel_l2(stacked[0], stacked[1]) > 1e-3);
    BOOST_CHECK(rel_l2(stacked[0], stacked[2]) > 1e-3);
}

/// Names of the outputs of the nodes of `op_type`, in graph order.
std::vector<std::string> outputs_of(const graph& g, const std::string& op_type) {
    std::vector<std::string> out;
    for (const auto& n : g.nodes)
        if (n.op_type == op_type) out.push_back(n.outputs[0]);
    return out;
}

/// Signals at an intermediate activation, and targets at an inner conv output (channel_sum, neuron,
/// channel_max), against the reference seeded the same way, under the three rules.
void check_intermediate(const model_case& m) {
    network net(m.g, m.x.shape, unfused());
    net.forward(m.x);
    const verify::reference_network ref(m.g);
    const auto acts = engine_activations(net); // the same decisions on both sides (see the top)
    const auto& names = net.tensor_names();
    const std::string middle = names[names.size() / 2];
    const std::vector<int64_t> cls = top1(acts.at(ref.score_tensor()));
    const dtensor seed = one_hot(acts.at(ref.score_tensor()).shape, cls);
    for (auto r : all_rules) {
        const auto sig = net.backward({{target{target::kind::class_score, "", cls, {}}, r}}, middle);
        const dtensor want = ref.backward(acts, ref.score_tensor(), seed, r, nonrelu_policy::refuse, middle);
        BOOST_REQUIRE(sig[0].shape == want.shape);
        const double err = rel_l2(sig[0], want);
        BOOST_TEST_MESSAGE(m.name << ": " << to_string(r) << " at '" << middle << "', rel L2 " << err);
        BOOST_CHECK_MESSAGE(err <= backward_tolerance, m.name << ": " << to_string(r) << " at '" << middle << "' rel L2 " << err);
    }

    // Targets at the last conv output (every model here has at least two convs).
    const auto convs = outputs_of(m.g, "Conv");
    BOOST_REQUIRE(convs.size() >= 2);
    const std::string t = convs[1];
    const dtensor& a = acts.at(t);
    BOOST_REQUIRE_EQUAL(a.shape.size(), 4u);
    const int64_t batch = a.shape[0], channels = a.shape[1], h = a.shape[2], w = a.shape[3], plane = h * w;
    const int64_t channel = channels / 2 + 1 < channels ? channels / 2 + 1 : 0;
    const int64_t uy = h / 2, ux = w / 3;

    // channel_max: the first maximum of the channel per image, as the engine chooses it.
    std::vector<int64_t> argmaxes;
    for (int64_t n = 0; n < batch; ++n) {
        const double* p = a.data.data() + (n * channels + channel) * plane;
        argmaxes.push_back(std::max_element(p, p + plane) - p);
    }

    const std::string target_kinds[] = {"channel_sum", "neuron", "channel_max"};
    for (const auto& kind_name : target_kinds) {
        target tg;
        tg.tensor = t;
        tg.index = {channel};
        dtensor s(a.shape);
        for (int64_t n = 0; n < batch; ++n) {
            double* p = s.data.data() + (n * channels + channel) * plane;
            if (kind_name == "channel_sum") {
                tg.what = target::kind::channel_sum;
                std::fill(p, p + plane, 1.0);
            } else if (kind_name == "neuron") {
                tg.what = target::kind::neuron;
                tg.unit = {uy, ux};
                p[uy * w + ux] = 1.0;
            } else {
                tg.what = target::kind::channel_max;
                p[argmaxes[static_cast<size_t>(n)]] = 1.0;
            }
        }
        std::vector<backward_request> requests;
        for (auto r : all_rules) requests.push_back({tg, r});
        const auto sig = net.backward(requests);
        for (size_t k = 0; k < 3; ++k) {
            const dtensor want = ref.backward(acts, t, s, all_rules[k]);
            const double err = rel_l2(sig[k], want);
            BOOST_TEST_MESSAGE(m.name << ": " << kind_name << " target on '" << t << "' channel " << channel << ", "
                                      << to_string(all_rules[k]) << ", rel L2 " << err);
            BOOST_CHECK_MESSAGE(err <= backward_tolerance,
                                m.name << ": " << kind_name << " target on '" << t << "', " << to_string(all_rules[k]) << " rel L2 " << err);
        }
    }
    // An intermediate target read at an intermediate tensor: the first conv's output.
    const auto sig = net.backward({{target{target::kind::channel_sum, t, {channel}, {}}, backward_rule::guided}}, convs[0]);
    dtensor s(a.shape);
    for (int64_t n = 0; n < batch; ++n) {
        double* p = s.data.data() + (n * channels + channel) * plane;
        std::fill(p, p + plane, 1.0);
    }
    const dtensor want = ref.backward(acts, t, s, backward_rule::guided, nonrelu_policy::refuse, convs[0]);
    const double err = rel_l2(sig[0], want);
    BOOST_CHECK_MESSAGE(err <= backward_tolerance, m.name << ": guided from '" << t << "' to '" << convs[0] << "' rel L2 " << err);
}

void check_relu_model(const model_case& m) {
    check_model(m, {all_rules, all_rules + 3});
    check_stacked(m);
    check_intermediate(m);
}

} // namespace

BOOST_AUTO_TEST_SUITE(engine_vs_reference_models)

BOOST_AUTO_TEST_CASE(mnist_cnn, *needs_shared_models("mnist-cnn")) { check_relu_model(load_shared("mnist-cnn")); }
BOOST_AUTO_TEST_CASE(gtsrb_cnn, *needs_shared_models("gtsrb-cnn")) { check_relu_model(load_shared("gtsrb-cnn")); }
BOOST_AUTO_TEST_CASE(fashion_mnist_cnn, *needs_shared_models("fashion-mnist-cnn")) {
    check_relu_model(load_shared("fashion-mnist-cnn"));
}
BOOST_AUTO_TEST_CASE(fashion_mnist_cnn_opset21, *needs_shared_models("fashion-mnist-cnn-opset21")) {
    check_relu_model(load_shared("fashion-mnist-cnn-opset21"));
}
BOOST_AUTO_TEST_CASE(bundled_fashion_mnist_convnet) { check_relu_model(load_bundled()); }

// SELU, not ReLU: the gradient is exact; deconvnet is defined there only under the explicit
// nonrelu = gradient choice, and the default policy must refuse naming the Selu node.
BOOST_AUTO_TEST_CASE(cifar100_selu, *needs_shared_models("cifar100-selu")) {
    const model_case m = load_shared("cifar100-selu");
    check_model(m, {backward_rule::gradient});
    check_model(m, {backward_rule::deconvnet, backward_rule::guided}, engine_options{.nonrelu = nonrelu_policy::gradient, .check = finite_check::outputs, .fuse = true, .keep = {}});

    network net(m.g, m.x.shape);
    net.forward(m.x);
    BOOST_REQUIRE(std::any_of(m.g.nodes.begin(), m.g.nodes.end(), [](const node& n) { return n.op_type == "Selu"; }));
    for (auto r : {backward_rule::deconvnet, backward_rule::guided}) {
        bool refused = false;
        try {
            net.backward({{target{target::kind::class_score, "", {0}, {}}, r}});
        } catch (const unsupported_error& e) {
            refused = true;
            const std::string what = e.what();
            BOOST_TEST_MESSAGE("refusal: " << what);
            // It names the Selu node where the backward pass meets one first (the last in the graph).
            bool named = false;
            for (const auto& n : m.g.nodes)
                named = named || (n.op_type == "Selu" && what.find("'" + n.name + "'") != std::string::npos);
            BOOST_CHECK_MESSAGE(named && what.find("Selu") != std::string::npos, "the refusal does not name a Selu node: " << what);
        }
        BOOST_CHECK_MESSAGE(refused, to_string(r) << " through Selu was not refused under the default policy");
    }
    // A gradient request in the same network still works after the refusal.
    BOOST_CHECK_NO_THROW(net.backward({{target{target::kind::class_score, "", {0}, {}}, backward_rule::gradient}}));
}

BOOST_AUTO_TEST_SUITE_END()
