// engine_options::winograd: Winograd's F(4x4, 3x3) on the 3x3 stride-1 convolutions with at least
// 28x28 outputs (oneDNN has it on AVX-512 only; elsewhere the direct algorithm runs and these
// checks hold a fortiori). Not exact arithmetic: its transforms multiply values by constants up to
// 8 and sum them with cancellation, so it rounds more than the direct algorithm's f32 sums.
//
// Checked against the double reference on a VGG-like stack at 32x32: every activation, and each
// rule's signal at the input against the reference's backward on the engine's own forward state
// (so that a ReLU or max-pool decision the rounding moves is not counted), within 1e-5 relative L2.
// Measured on AVX-512: forward 7.9e-7 (the direct algorithm: 1.8e-7), signals 2.9e-7 to 7.9e-7
// (direct: 0.8e-7 to 1.8e-7). The bound keeps a margin of 12 and stays three orders below what a
// wrong rule or switch produces (1e-2 and up). On a deep network the rounding also moves decisions:
// VGG-16's gradient map differed from the direct algorithm's by 4e-3 relative L2 (README "Speed").
#include "support.hpp"

using namespace engine_test;

namespace {

/// Three 3x3 convolutions with ReLU on 32x32 (Winograd's shapes), max-pool, and a classifier.
graph vgg_like(std::mt19937& rng) {
    graph_builder b({1, 3, 32, 32}, 13, "image");
    const auto conv = [&](const std::string& in, const std::string& name, int64_t cin, int64_t cout) {
        b.random_constant(name + "_w", {cout, cin, 3, 3}, rng, -0.3, 0.3);
        b.random_constant(name + "_b", {cout}, rng, -0.1, 0.1);
        b.add("Conv", {in, name + "_w", name + "_b"}, name, {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})}});
        return b.add("Relu", {name}, name + "_relu");
    };
    std::string t = conv("image", "c1", 3, 16);
    t = conv(t, "c2", 16, 32);
    t = conv(t, "c3", 32, 32);
    b.add("MaxPool", {t}, "p", {{"kernel_shape", attr_ints({4, 4})}, {"strides", attr_ints({4, 4})}});
    b.add("Flatten", {"p"}, "f");
    b.random_constant("fc", {10, 32 * 8 * 8}, rng, -0.1, 0.1);
    b.add("Gemm", {"f", "fc"}, "scores", {{"transB", attr_int(1)}});
    return b.finish("scores");
}

} // namespace

BOOST_AUTO_TEST_SUITE(winograd)

BOOST_AUTO_TEST_CASE(within_its_stated_error_of_the_double_reference) {
    std::mt19937 rng(21);
    const graph g = vgg_like(rng);
    const tensor x = random_tensor(rng, {1, 3, 32, 32});
    engine_options o;
    o.winograd = true;
    o.check = finite_check::outputs;
    network net(g, x.shape, unfused(o)); // unfused: every layer's output is compared below
    const std::vector<tensor> out = net.forward(x);
    const verify::reference_network ref(g);
    const auto acts = ref.forward(to_d(x));
    double worst = 0;
    for (const auto& name : net.tensor_names()) worst = std::max(worst, rel_l2(net.read(name), acts.at(name)));
    BOOST_TEST_MESSAGE("winograd: forward, max rel L2 over the activations " << worst);
    BOOST_CHECK_LE(worst, 1e-5);

    const auto state = stored_activations(net);
    const auto scores = acts.at("scores");
    const int64_t cls = std::max_element(scores.data.begin(), scores.data.end()) - scores.data.begin();
    dtensor seed(scores.shape);
    seed.data[static_cast<size_t>(cls)] = 1.0;
    for (auto rule : {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided}) {
        const auto sig = net.backward({{target{target::kind::class_score, "", {cls}, {}}, rule}});
        const dtensor want = ref.backward(state, "scores", seed, rule);
        const double err = rel_l2(sig[0], want);
        BOOST_TEST_MESSAGE("winograd: " << to_string(rule) << " at the input, rel L2 " << err);
        BOOST_CHECK_LE(err, 1e-5);
        BOOST_CHECK(max_abs(want) > 0);
    }
}

BOOST_AUTO_TEST_SUITE_END()
