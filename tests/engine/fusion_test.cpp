// Fusion (engine_options::fuse): a batch norm folded into the convolution before it, and a Relu or
// Clip applied by that convolution. Checked against the double reference on the unfused graph
// (forward 1e-5, backward 1e-4 relative L2, the tolerances of reference_models_test.cpp and for the
// same reasons; folding rounds each weight once, ~6e-8 relative), with the reference taking its
// ReLU and pooling decisions on the fused network's own forward state (stored_activations). Also:
// what is fused away cannot be read and says how to keep it; what is kept is not fused; under the
// full NaN check what a fused ReLU would hide is still found.
#include "support.hpp"

#include <functional>

using namespace engine_test;

namespace {

constexpr double forward_tolerance = 1e-5, backward_tolerance = 1e-4;

/// conv -> BN -> relu -> maxpool -> conv -> BN -> clip(0, 6) -> conv (no BN) -> relu -> flatten
/// -> gemm: every fusion the engine makes, and one batch norm kept for its second reader.
graph fusable(std::mt19937& rng) {
    graph_builder b({2, 3, 12, 12}, 13, "image");
    auto bn_params = [&](const std::string& p, int64_t c) {
        b.random_constant(p + "_scale", {c}, rng, 0.5, 2.0);
        b.random_constant(p + "_bias", {c}, rng, -0.5, 0.5);
        b.random_constant(p + "_mean", {c}, rng, -0.2, 0.2);
        b.random_constant(p + "_var", {c}, rng, 0.5, 3.0);
        return std::vector<std::string>{p + "_scale", p + "_bias", p + "_mean", p + "_var"};
    };
    auto bn = [&](const std::string& in, const std::string& p, int64_t c, const std::string& out) {
        auto k = bn_params(p, c);
        return b.add("BatchNormalization", {in, k[0], k[1], k[2], k[3]}, out, {{"epsilon", attr_float(1e-3f)}});
    };
    const auto pads = attr_ints({1, 1, 1, 1});
    b.random_constant("w1", {6, 3, 3, 3}, rng);
    b.random_constant("b1", {6}, rng);
    b.add("Conv", {"image", "w1", "b1"}, "c1", {{"kernel_shape", attr_ints({3, 3})}, {"pads", pads}});
    bn("c1", "bn1", 6, "n1");
    b.add("Relu", {"n1"}, "r1");
    b.add("MaxPool", {"r1"}, "p1", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    b.random_constant("w2", {8, 6, 3, 3}, rng);
    b.add("Conv", {"p1", "w2"}, "c2", {{"kernel_shape", attr_ints({3, 3})}, {"pads", pads}}); // no bias: the fold adds one
    bn("c2", "bn2", 8, "n2");
    b.constant("lo", {}, {0.0});
    b.constant("hi", {}, {6.0});
    b.add("Clip", {"n2", "lo", "hi"}, "k2");
    b.random_constant("w3", {8, 8, 3, 3}, rng);
    b.random_constant("b3", {8}, rng);
    b.add("Conv", {"k2", "w3", "b3"}, "c3", {{"kernel_shape", attr_ints({3, 3})}, {"pads", pads}});
    b.add("Relu", {"c3"}, "r3");
    b.add("Flatten", {"r3"}, "f");
    b.random_constant("fc", {5, 8 * 6 * 6}, rng, -0.2, 0.2);
    b.add("Gemm", {"f", "fc"}, "scores", {{"transB", attr_int(1)}});
    return b.finish("scores");
}

engine_options fused(finite_check check = finite_check::outputs) {
    engine_options o;
    o.check = check;
    return o;
}

bool readable(const network& net, const std::string& name) {
    try {
        net.read(name);
        return true;
    } catch (const input_error& e) {
        const std::string msg = e.what();
        BOOST_CHECK_MESSAGE(msg.find("'" + name + "'") != std::string::npos && msg.find("keep") != std::string::npos,
                            "the refusal names the tensor and engine_options::keep: " << msg);
        return false;
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(fusion)

BOOST_AUTO_TEST_CASE(fused_network_matches_the_double_reference) {
    std::mt19937 rng(11);
    const graph g = fusable(rng);
    const tensor x = random_tensor(rng, {2, 3, 12, 12});
    network net(g, x.shape, engine_options{.nonrelu = nonrelu_policy::gradient, .check = finite_check::outputs, .fuse = true, .keep = {}});
    const std::vector<tensor> outs = net.forward(x);
    // Every fusion happened: the tensors between conv and activation are not stored.
    for (const char* gone : {"c1", "n1", "c2", "n2", "c3"}) BOOST_CHECK_MESSAGE(!readable(net, gone), gone << " was not fused away");
    for (const char* kept : {"r1", "p1", "k2", "r3"}) BOOST_CHECK_MESSAGE(readable(net, kept), kept << " is stored");

    const verify::reference_network ref(g);
    const auto acts = ref.forward(to_d(x));
    const double fe = rel_l2(outs[0], acts.at("scores"));
    BOOST_TEST_MESSAGE("fused forward rel L2 " << fe);
    BOOST_CHECK_LE(fe, forward_tolerance);

    const auto state = stored_activations(net);
    const std::vector<int64_t> cls = {1, 3};
    dtensor seed(acts.at("scores").shape);
    seed.data[1] = seed.data[5 + 3] = 1.0;
    for (auto rule : {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided}) {
        const auto sig = net.backward({{target{target::kind::class_score, "", cls, {}}, rule}});
        const dtensor want = ref.backward(state, "scores", seed, rule, nonrelu_policy::gradient);
        const double err = rel_l2(sig[0], want);
        BOOST_TEST_MESSAGE("fused " << to_string(rule) << " rel L2 " << err);
        BOOST_CHECK_LE(err, backward_tolerance);
        BOOST_CHECK(max_abs(want) > 0);
    }
}

// A residual block's Add and ReLU: the ReLU applied by the binary primitive, checked as above.
BOOST_AUTO_TEST_CASE(an_activation_after_a_residual_add) {
    std::mt19937 rng(15);
    graph_builder b({2, 4, 6, 6}, 13, "image");
    b.random_constant("w", {4, 4, 3, 3}, rng);
    b.add("Conv", {"image", "w"}, "c", {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})}});
    b.add("Add", {"c", "image"}, "sum");
    b.add("Relu", {"sum"}, "r");
    b.add("Flatten", {"r"}, "f");
    b.random_constant("fc", {3, 4 * 6 * 6}, rng, -0.2, 0.2);
    b.add("Gemm", {"f", "fc"}, "scores", {{"transB", attr_int(1)}});
    const graph g = b.finish("scores");
    const tensor x = random_tensor(rng, {2, 4, 6, 6});
    network net(g, x.shape, fused());
    net.forward(x);
    BOOST_CHECK(!readable(net, "sum"));
    BOOST_CHECK(readable(net, "c")); // its reader is the Add, which a convolution does not apply
    const verify::reference_network ref(g);
    const auto state = stored_activations(net);
    dtensor seed(ref.forward(to_d(x)).at("scores").shape);
    seed.data[2] = seed.data[3 + 1] = 1.0;
    for (auto rule : {backward_rule::gradient, backward_rule::guided}) {
        const auto sig = net.backward({{target{target::kind::class_score, "", {2, 1}, {}}, rule}});
        const dtensor want = ref.backward(state, "scores", seed, rule);
        const double err = rel_l2(sig[0], want);
        BOOST_TEST_MESSAGE("fused Add+ReLU, " << to_string(rule) << " rel L2 " << err);
        BOOST_CHECK_LE(err, backward_tolerance);
        BOOST_CHECK(max_abs(want) > 0);
    }
}

BOOST_AUTO_TEST_CASE(the_same_signals_as_without_fusion) {
    std::mt19937 rng(12);
    const graph g = fusable(rng);
    const tensor x = random_tensor(rng, {2, 3, 12, 12});
    network a(g, x.shape, fused()), b(g, x.shape, unfused(fused()));
    const double fe = rel_l2(a.forward(x)[0], b.forward(x)[0]);
    BOOST_TEST_MESSAGE("fused vs unfused forward rel L2 " << fe);
    BOOST_CHECK_LE(fe, forward_tolerance);
    const backward_request r{target{target::kind::class_score, "", {0, 4}, {}}, backward_rule::gradient};
    const double be = rel_l2(a.backward({r})[0], b.backward({r})[0]);
    BOOST_TEST_MESSAGE("fused vs unfused gradient rel L2 " << be);
    BOOST_CHECK_LE(be, backward_tolerance);
}

BOOST_AUTO_TEST_CASE(kept_tensors_are_not_fused) {
    std::mt19937 rng(13);
    const graph g = fusable(rng);
    const tensor x = random_tensor(rng, {2, 3, 12, 12});
    engine_options keep = fused();
    keep.nonrelu = nonrelu_policy::gradient; // the guided signal below crosses the Clip
    keep.keep = {"n1", "c3"};
    network net(g, x.shape, keep), plain(g, x.shape, unfused(keep));
    net.forward(x);
    plain.forward(x);
    // n1 kept: the batch norm is still folded into c1 (c1 itself is not read), the ReLU is not.
    BOOST_CHECK(!readable(net, "c1"));
    BOOST_CHECK(readable(net, "n1"));
    BOOST_CHECK_LE(rel_l2(net.read("n1"), plain.read("n1")), forward_tolerance);
    BOOST_CHECK(readable(net, "c3"));
    BOOST_CHECK_LE(rel_l2(net.read("c3"), plain.read("c3")), forward_tolerance);
    // Differentiating at a kept tensor and targeting one work; at a fused-away one they are refused.
    const backward_request at_layer{target{target::kind::channel_sum, "c3", {2}, {}}, backward_rule::guided};
    BOOST_CHECK_LE(rel_l2(net.backward({at_layer}, "n1")[0], plain.backward({at_layer}, "n1")[0]), backward_tolerance);
    BOOST_CHECK_THROW(net.backward({{target{target::kind::channel_sum, "c2", {0}, {}}, backward_rule::gradient}}), input_error);
    BOOST_CHECK_THROW(net.backward({at_layer}, "c1"), input_error);
}

namespace {

/// The message of the numerical_error `run` throws ("" when it throws none).
std::string numerical_error_of(const std::function<void()>& run) {
    try {
        run();
    } catch (const numerical_error& e) {
        return e.what();
    }
    return "";
}

/// image [1, 1, 2, 2] -> Conv "c" (one 2x2 filter of `w`, bias `bias`) -> Relu "r" -> Flatten "scores".
graph one_filter(const std::vector<double>& w, double bias) {
    graph_builder b({1, 1, 2, 2}, 13, "image");
    b.constant("w", {1, 1, 2, 2}, w);
    b.constant("b", {1}, {bias});
    b.add("Conv", {"image", "w", "b"}, "c", {{"kernel_shape", attr_ints({2, 2})}});
    b.add("Relu", {"c"}, "r");
    b.add("Flatten", {"r"}, "scores");
    return b.finish("scores");
}

} // namespace

// Under the full NaN check activations are fused too: the tensor before each is proved finite by a
// bound from what is stored (a filter's L1 norm times its input's largest magnitude, plus the bias),
// and where the bound cannot, the pass runs again with every activation stored. So a NaN weight, or
// an overflow to -inf that the fused ReLU turns into 0, is reported exactly as an unfused network
// reports it; and a bound that fails on finite values reports nothing.
BOOST_AUTO_TEST_CASE(the_full_check_fuses_activations_and_finds_what_they_hide) {
    std::mt19937 rng(14);
    graph g = fusable(rng);
    const tensor x = random_tensor(rng, {2, 3, 12, 12});
    network net(g, x.shape, fused(finite_check::all));
    const tensor scores = net.forward(x).at(0);
    BOOST_CHECK(!readable(net, "n1")); // the ReLU applied by the convolution
    BOOST_CHECK(!readable(net, "c1")); // the batch norm folded
    engine_options stored = fused(finite_check::all);
    stored.fuse = false;
    network plain(g, x.shape, stored);
    BOOST_CHECK_LE(rel_l2(scores, plain.forward(x).at(0)), forward_tolerance);

    // A NaN weight whose ReLU would map it to 0: the same message as the unfused network's.
    g.constants.at("w3").floats[0] = std::nanf("");
    network poisoned(g, x.shape, fused(finite_check::all));
    network poisoned_plain(g, x.shape, stored);
    const std::string fused_message = numerical_error_of([&] { poisoned.forward(x); });
    const std::string plain_message = numerical_error_of([&] { poisoned_plain.forward(x); });
    BOOST_TEST(fused_message.find("'c3'") != std::string::npos, fused_message);
    BOOST_TEST(fused_message == plain_message);

    // -1e10 * 1e30 on every tap: "c" is -inf, which the fused ReLU turns into 0 (bound 4e40).
    const graph overflow = one_filter({1e30, 1e30, 1e30, 1e30}, 0.0);
    const tensor negative({1, 1, 2, 2}, {-1e10f, -1e10f, -1e10f, -1e10f});
    network hidden(overflow, negative.shape, fused(finite_check::all));
    const std::string message = numerical_error_of([&] { hidden.forward(negative); });
    BOOST_TEST(message.find("'c'") != std::string::npos, message);
    BOOST_TEST(message.find("-inf") != std::string::npos, message);
    // (What the output scan sees depends on the kernel: jit ReLUs give 0 for -inf, the reference one NaN.)
    network outputs_only(overflow, negative.shape, fused(finite_check::outputs));
    BOOST_TEST_MESSAGE("outputs only: '" << numerical_error_of([&] { outputs_only.forward(negative); }) << "'");

    // 3e38 - 3e38 + 1 - 1 + 0.5: the bound (6e38) exceeds half the float range, every value is
    // finite (what the sum comes to depends on its order, the same in both networks).
    const graph cancelling = one_filter({3e38, -3e38, 1.0, -1.0}, 0.5);
    const tensor ones({1, 1, 2, 2}, {1.0f, 1.0f, 1.0f, 1.0f});
    network large(cancelling, ones.shape, fused(finite_check::all));
    network large_plain(cancelling, ones.shape, stored);
    std::vector<tensor> out;
    BOOST_TEST(numerical_error_of([&] { out = large.forward(ones); }).empty());
    BOOST_TEST_REQUIRE(out.size() == 1u);
    BOOST_TEST(out[0].data == large_plain.forward(ones).at(0).data, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_SUITE_END()
