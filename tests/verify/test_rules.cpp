// The backward rules (gradient, deconvnet, guided) against hand-derived signals, the nonrelu policy,
// max-pooling ties, partial backward passes and the whole-graph finite difference.
#include "support.hpp"

#include <deepinside/errors.hpp>

#include <boost/test/unit_test.hpp>

using namespace deepinside;
using namespace deepinside::verify;
using namespace deepinside::verify::testing;

namespace {

void expect(const dtensor& got, const std::vector<double>& values) {
    BOOST_REQUIRE_EQUAL(got.data.size(), values.size());
    for (size_t i = 0; i < values.size(); ++i)
        BOOST_CHECK_MESSAGE(std::fabs(got.data[i] - values[i]) <= 1e-12,
                            "element " << i << ": " << got.data[i] << " expected " << values[i]);
}

// x [1,1,2,2] = (1, -2, 3, -4); 1x1 conv to 3 channels with weights (1, -1, 1) and bias (0, 0, -10):
//   c0 = ( 1, -2,  3,  -4)   relu ( 1, 0, 3, 0)   max pool 3 at index 2
//   c1 = (-1,  2, -3,   4)   relu ( 0, 2, 0, 4)   max pool 4 at index 3
//   c2 = (-9,-12, -7, -14)   relu ( 0, 0, 0, 0)   max pool 0, a 4-way tie: index 0
// relu2 (3, 4, 0); Gemm with B = [[1,-1],[-2,1],[1,2]]: logits (-5, 1).
graph tiny_network() {
    graph_builder g({1, 1, 2, 2});
    g.constant("w", {3, 1, 1, 1}, {1, -1, 1});
    g.constant("b", {3}, {0, 0, -10});
    g.add("Conv", {"x", "w", "b"}, "c");
    g.add("Relu", {"c"}, "r1");
    g.add("MaxPool", {"r1"}, "p", {{"kernel_shape", attr_ints({2, 2})}});
    g.add("Relu", {"p"}, "r2");
    g.add("Flatten", {"r2"}, "f");
    g.constant("B", {3, 2}, {1, -1, -2, 1, 1, 2});
    g.add("Gemm", {"f", "B"}, "logits");
    return g.finish("logits");
}

} // namespace

BOOST_AUTO_TEST_SUITE(rules)

BOOST_AUTO_TEST_CASE(tiny_network_under_each_rule) {
    const reference_network net(tiny_network());
    const auto acts = net.forward(dtensor({1, 1, 2, 2}, {1, -2, 3, -4}));
    expect(acts.at("logits"), {-5, 1});
    const dtensor seed({1, 2}, {1, 0});
    // d logits0 / d f = column 0 of B = (1, -2, 1).
    //  relu2 (inputs 3, 4, 0):  gradient (1, -2, 0); deconvnet max(g,0) = (1, 0, 1); guided (1, 0, 0)
    //  pool routes channel k to its argmax (2, 3, 0 within the 2x2 plane)
    //  relu1: gradient keeps c > 0; deconvnet ignores c (channel 2 passes although c2 = -9 < 0); guided both
    //  conv: dx = d0 - d1 + d2
    // gradient:  (0,0,1,0) - (0,0,0,-2)        = (0, 0, 1, 2)
    // deconvnet: (0,0,1,0) + (1,0,0,0)         = (1, 0, 1, 0)
    // guided:    (0,0,1,0)                     = (0, 0, 1, 0)
    expect(net.backward(acts, "logits", seed, backward_rule::gradient), {0, 0, 1, 2});
    expect(net.backward(acts, "logits", seed, backward_rule::deconvnet), {1, 0, 1, 0});
    expect(net.backward(acts, "logits", seed, backward_rule::guided), {0, 0, 1, 0});
    // The signal entering relu1 (wrt its output r1): the pooled routing before any relu1 masking.
    expect(net.backward(acts, "logits", seed, backward_rule::gradient, nonrelu_policy::refuse, "r1"),
           {0, 0, 1, 0, 0, 0, 0, -2, 0, 0, 0, 0});
    expect(net.backward(acts, "logits", seed, backward_rule::deconvnet, nonrelu_policy::refuse, "r1"),
           {0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0});
    // From a tensor to itself the seed comes back; to a tensor `from` does not depend on, zeros.
    expect(net.backward(acts, "r2", dtensor({1, 3, 1, 1}, {1, 2, 3}), backward_rule::guided,
                        nonrelu_policy::refuse, "r2"),
           {1, 2, 3});
    expect(net.backward(acts, "c", dtensor({1, 3, 2, 2}), backward_rule::gradient, nonrelu_policy::refuse, "f"),
           {0, 0, 0});
    BOOST_CHECK_THROW(net.backward(acts, "logits", dtensor({1, 3}), backward_rule::gradient), input_error);
    BOOST_CHECK_THROW(net.backward(acts, "nope", seed, backward_rule::gradient), input_error);
}

BOOST_AUTO_TEST_CASE(relu_rules_elementwise) {
    std::mt19937 rng(21);
    graph_builder g({50});
    g.add("Relu", {"x"}, "y");
    const reference_network net(g.finish("y"));
    const dtensor x = random_away_from_zero(rng, {50});
    const dtensor seed = random_away_from_zero(rng, {50});
    const auto acts = net.forward(x);
    const dtensor grad = net.backward(acts, "y", seed, backward_rule::gradient);
    const dtensor deconv = net.backward(acts, "y", seed, backward_rule::deconvnet);
    const dtensor guided = net.backward(acts, "y", seed, backward_rule::guided);
    for (size_t i = 0; i < 50; ++i) {
        const double g_i = seed.data[i], x_i = x.data[i];
        BOOST_TEST(grad.data[i] == (x_i > 0 ? g_i : 0.0));
        BOOST_TEST(deconv.data[i] == (g_i > 0 ? g_i : 0.0));
        BOOST_TEST(guided.data[i] == (g_i > 0 && x_i > 0 ? g_i : 0.0));
    }
    // At x == 0 exactly, the gradient passes nothing (PyTorch's convention).
    const auto zero = net.forward(dtensor({50}));
    for (double v : net.backward(zero, "y", seed, backward_rule::gradient).data) BOOST_TEST(v == 0.0);
}

BOOST_AUTO_TEST_CASE(nonrelu_policy_refuses_or_applies_the_derivative) {
    std::mt19937 rng(22);
    for (const char* op : {"Selu", "Elu", "LeakyRelu", "Sigmoid", "Tanh", "Clip"}) {
        graph_builder g({6}, 14);
        g.add(op, {"x"}, "y");
        const reference_network net(g.finish("y"));
        const auto acts = net.forward(random_away_from_zero(rng, {6}));
        const dtensor seed = random_tensor(rng, {6});
        for (backward_rule rule : {backward_rule::deconvnet, backward_rule::guided}) {
            try {
                net.backward(acts, "y", seed, rule, nonrelu_policy::refuse);
                BOOST_ERROR(op << ": the refuse policy did not refuse");
            } catch (const unsupported_error& e) {
                const std::string rule_name = rule == backward_rule::deconvnet ? "deconvnet" : "guided";
                BOOST_TEST(std::string(e.what()) ==
                           "node 'y_node' (" + std::string(op) + ", opset 14): the " + rule_name +
                               " rule is defined for ReLU only; pass --nonrelu gradient to apply the exact "
                               "derivative there");
            }
            const dtensor exact = net.backward(acts, "y", seed, backward_rule::gradient, nonrelu_policy::refuse);
            expect(net.backward(acts, "y", seed, rule, nonrelu_policy::gradient), exact.data);
        }
    }
}

BOOST_AUTO_TEST_CASE(max_pool_ties_route_to_the_first_maximum) {
    // Window 0 = {5, 1 / 5, 0}: maxima at (0,0) and (1,0); window 1 = {5, 5 / 2, 5}: at (0,2), (0,3), (1,3).
    graph_builder g({1, 1, 2, 4}, 12);
    g.add("MaxPool", {"x"}, "y", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    const reference_network net(g.finish("y"));
    const auto acts = net.forward(dtensor({1, 1, 2, 4}, {5, 1, 5, 5, 5, 0, 2, 5}));
    expect(acts.at("y"), {5, 5});
    for (backward_rule rule : {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided})
        expect(net.backward(acts, "y", dtensor({1, 1, 1, 2}, {1, -2}), rule), {1, 0, -2, 0, 0, 0, 0, 0});

    // Overlapping windows (stride 1) that share a first maximum accumulate there.
    graph_builder o({1, 1, 1, 3}, 12);
    o.add("MaxPool", {"x"}, "y", {{"kernel_shape", attr_ints({1, 2})}});
    const reference_network on(o.finish("y"));
    const auto oa = on.forward(dtensor({1, 1, 1, 3}, {1, 7, 7}));
    expect(on.backward(oa, "y", dtensor({1, 1, 1, 2}, {1, 10}), backward_rule::gradient), {0, 11, 0});

    // Padding never wins, even over negative inputs.
    graph_builder p({1, 1, 2, 2}, 12);
    p.add("MaxPool", {"x"}, "y", {{"kernel_shape", attr_ints({2, 2})}, {"pads", attr_ints({1, 1, 1, 1})}});
    expect(run(p.finish("y"), dtensor({1, 1, 2, 2}, {-4, -3, -2, -1})), {-4, -3, -3, -2, -1, -1, -2, -1, -1});

    graph_builder gm({1, 1, 3});
    gm.add("GlobalMaxPool", {"x"}, "y");
    const reference_network gn(gm.finish("y"));
    const auto ga = gn.forward(dtensor({1, 1, 3}, {3, 7, 7}));
    expect(gn.backward(ga, "y", dtensor({1, 1, 1}, {2}), backward_rule::guided), {0, 2, 0});
}

BOOST_AUTO_TEST_CASE(decisions_of_two_forward_states_are_compared_per_node) {
    // x -> Relu -> MaxPool 2x2 -> Clip[0, 1]. Two activation sets of the same graph that differ in
    // one ReLU sign, one pooling switch and one Clip region.
    graph_builder g({1, 1, 2, 4}, 12);
    g.add("Relu", {"x"}, "r");
    g.add("MaxPool", {"r"}, "p", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    g.constant("lo", {}, {0.0});
    g.constant("hi", {}, {1.0});
    g.add("Clip", {"p", "lo", "hi"}, "y");
    const reference_network net(g.finish("y"));
    const auto a = net.forward(dtensor({1, 1, 2, 4}, {0.5, -1, 2, 0.25, 0.75, 0.5, -3, 0.125}));
    auto b = a;
    b.at("x").data[1] = 1e-9; // ReLU: -1 becomes +1e-9, one sign of 8 differs
    b.at("r").data[0] = 0.9;  // window 0 = {0.5, 0, 0.75, 0.5}: its maximum moves from (1,0) to (0,0)
    b.at("p").data[0] = -0.5; // Clip: 0.75 (inside) becomes -0.5 (below); p[1] = 2 stays above
    const auto diff = net.compare_decisions(a, b);
    BOOST_REQUIRE_EQUAL(diff.size(), 3u);
    BOOST_TEST(diff[0].op_type == "Relu");
    BOOST_TEST(diff[0].decisions == 8);
    BOOST_TEST(diff[0].differing == 1);
    BOOST_TEST(diff[1].op_type == "MaxPool");
    BOOST_TEST(diff[1].decisions == 2);
    BOOST_TEST(diff[1].differing == 1);
    BOOST_TEST(diff[2].op_type == "Clip");
    BOOST_TEST(diff[2].decisions == 2);
    BOOST_TEST(diff[2].differing == 1);
    const auto same = net.compare_decisions(a, a);
    for (const auto& d : same) BOOST_TEST(d.differing == 0, d.node);
}

BOOST_AUTO_TEST_CASE(whole_graph_finite_difference) {
    // f = <seed, x * x> has df/dx_i = 2 seed_i x_i, and the central difference of a quadratic is exact
    // up to rounding.
    graph_builder g({4});
    g.add("Mul", {"x", "x"}, "y");
    const reference_network net(g.finish("y"));
    const dtensor x({4}, {0.5, -1.5, 2, 3});
    const dtensor seed({4}, {1, 2, -1, 0.5});
    for (size_t i = 0; i < 4; ++i)
        BOOST_TEST(finite_difference(net, x, "y", seed, i, 1e-3) == 2 * seed.data[i] * x.data[i],
                   boost::test_tools::tolerance(1e-9));
    BOOST_CHECK_THROW(finite_difference(net, x, "y", seed, 4, 1e-3), input_error);
}

BOOST_AUTO_TEST_SUITE_END()
