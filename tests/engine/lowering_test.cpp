// Einsum, lowered to Transpose / Reshape / MatMul (lib/graph/lowering.cpp): its forward against a
// direct double-precision evaluation of the equation (a sum over every index assignment, written
// here from the einsum definition, independent of the lowering), its backward under the three rules
// against the reference on the compiled graph, that reference against finite differences, and the
// forms that are not a matrix product refused naming the node.
#include "support.hpp"
#include "support/finite_differences.hpp"

#include <map>

using namespace engine_test;

namespace {

/// out[output letters] = Σ over the other letters of a[...] · b[...], by brute force.
dtensor einsum_by_definition(const std::string& a_idx, const dtensor& a, const std::string& b_idx, const dtensor& b,
                             const std::string& out_idx) {
    std::map<char, int64_t> size;
    for (size_t i = 0; i < a_idx.size(); ++i) size[a_idx[i]] = a.shape[i];
    for (size_t i = 0; i < b_idx.size(); ++i) size[b_idx[i]] = b.shape[i];
    std::string all;
    for (const auto& [c, d] : size) all += c;
    shape_t out_shape;
    for (char c : out_idx) out_shape.push_back(size[c]);
    dtensor out(out_shape);
    std::map<char, int64_t> at;
    for (char c : all) at[c] = 0;
    auto flat = [&](const std::string& idx, const shape_t& shape) {
        int64_t f = 0;
        for (size_t i = 0; i < idx.size(); ++i) f = f * shape[i] + at[idx[i]];
        return static_cast<size_t>(f);
    };
    while (true) {
        out.data[flat(out_idx, out_shape)] += a.data[flat(a_idx, a.shape)] * b.data[flat(b_idx, b.shape)];
        size_t k = all.size();
        while (k > 0 && ++at[all[k - 1]] == size[all[k - 1]]) at[all[--k]] = 0;
        if (k == 0) break;
    }
    return out;
}

struct einsum_case {
    std::string equation, a_idx, b_idx, out_idx;
    shape_t a_shape, b_shape;
    bool b_constant;
};

} // namespace

BOOST_AUTO_TEST_SUITE(lowering)

BOOST_AUTO_TEST_CASE(einsum_is_the_matrix_product_it_spells) {
    std::mt19937 rng(77);
    const std::vector<backward_rule> three{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};
    const std::vector<einsum_case> cases = {
        {"B G H I D, B G H J D -> B G H I J", "BGHID", "BGHJD", "BGHIJ", {2, 2, 3, 4, 5}, {2, 2, 3, 6, 5}, false}, // MaxViT's Q·Kᵀ
        {"B G H I J, B G H J D -> B G H I D", "BGHIJ", "BGHJD", "BGHID", {2, 2, 3, 4, 6}, {2, 2, 3, 6, 5}, false}, // and P·V
        {"bij,bjk->bki", "bij", "bjk", "bki", {2, 3, 4}, {2, 4, 5}, false},                                      // output transposed
        {"bij,jk->bik", "bij", "jk", "bik", {2, 3, 4}, {4, 5}, true},                                            // constant weights
        {"bcij,dc->bdij", "bcij", "dc", "bdij", {2, 3, 2, 2}, {4, 3}, true},                                     // a 1x1 convolution
        {"bi,bi->b", "bi", "bi", "b", {3, 5}, {3, 5}, false},                                                    // row-wise dot product
        {"bmk,bkn->bmkn", "bmk", "bkn", "bmkn", {2, 2, 3}, {2, 3, 2}, false},                                    // no summed index: k is batch-like
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT(c.equation) {
            // The network input feeds A; B is the input through a Tanh (so both operands carry signal),
            // or a constant.
            graph_builder g(c.a_shape);
            std::vector<double> b_values = random_values(rng, static_cast<size_t>(element_count(c.b_shape)));
            std::string b_name;
            if (c.b_constant) {
                b_name = g.constant("b", c.b_shape, b_values);
            } else {
                // B from A: Reshape(Tanh(x)) needs the same element count; else a separate constant Mul of x.
                if (element_count(c.a_shape) == element_count(c.b_shape)) {
                    g.add("Tanh", {"x"}, "t");
                    std::vector<int64_t> s(c.b_shape.begin(), c.b_shape.end());
                    b_name = g.add("Reshape", {"t", g.int_constant("b_shape", s)}, "b");
                } else {
                    // B = Tanh(w · sum-free projection of x): a MatMul by a constant of the right size.
                    const int64_t rows = element_count(c.a_shape), cols = element_count(c.b_shape);
                    g.add("Reshape", {"x", g.int_constant("flat", {1, rows})}, "xf");
                    g.constant("w", {rows, cols}, random_values(rng, static_cast<size_t>(rows * cols), -0.3, 0.3));
                    g.add("MatMul", {"xf", "w"}, "p");
                    g.add("Tanh", {"p"}, "t");
                    std::vector<int64_t> s(c.b_shape.begin(), c.b_shape.end());
                    b_name = g.add("Reshape", {"t", g.int_constant("b_shape", s)}, "b");
                }
            }
            g.add("Einsum", {"x", b_name}, "y", {{"equation", attr_string(c.equation)}}, 12);
            g.add("Relu", {"y"}, "r"); // so the three rules differ downstream of the Einsum
            const graph model = g.finish("r");
            const tensor x = random_tensor(rng, c.a_shape);
            engine_options opts;
            opts.nonrelu = nonrelu_policy::gradient; // B passes through a Tanh: exact there under every rule
            network net(model, x.shape, opts);
            net.forward(x);
            for (const node& n : net.model().nodes) BOOST_TEST(n.op_type != "Einsum");

            // Forward: the einsum by definition on the same operands, widened.
            const dtensor b = c.b_constant ? dtensor(c.b_shape, b_values) : to_d(net.read("b"));
            const dtensor want = einsum_by_definition(c.a_idx, to_d(x), c.b_idx, b, c.out_idx);
            const tensor y = net.read("y");
            BOOST_REQUIRE(y.shape == want.shape);
            BOOST_TEST(rel_l2(y, want) <= 1e-6);

            // Backward under each rule against the reference on the compiled (lowered) graph.
            const verify::reference_network ref(net.model());
            const auto acts = ref.forward(to_d(x));
            dtensor seed(acts.at("r").shape);
            for (double& v : seed.data) v = std::uniform_real_distribution<double>(-1, 1)(rng);
            std::vector<backward_request> requests;
            std::vector<float> weights(seed.data.begin(), seed.data.end());
            for (auto rule : three) {
                backward_request r;
                r.what.what = target::kind::weighted_sum;
                r.what.tensor = "r";
                r.what.weights = weights;
                r.rule = rule;
                requests.push_back(r);
            }
            const auto signals = net.backward(requests);
            for (size_t k = 0; k < three.size(); ++k) {
                const dtensor ref_signal = ref.backward(acts, "r", seed, three[k], nonrelu_policy::gradient);
                BOOST_TEST(rel_l2(signals[k], ref_signal) <= 1e-5, to_string(three[k]));
            }
            test_support::check_gradient(net.model(), to_d(x), rng, 40);
        }
    }
}

BOOST_AUTO_TEST_CASE(einsum_forms_that_are_not_a_matrix_product_are_refused) {
    const std::vector<std::pair<std::string, std::string>> refused = {
        {"ii,ij->ij", "repeated"}, {"ij,jk->i", "second operand alone"}, {"ij,jk->k", "first operand alone"},
        {"...ij,jk->...ik", "ellipsis"}, {"ij,jk", "'->'"}};
    for (const auto& [equation, why] : refused) {
        BOOST_TEST_CONTEXT(equation) {
            graph_builder g({3, 3});
            g.constant("w", {3, 3}, std::vector<double>(9, 0.5));
            g.add("Einsum", {"x", "w"}, "y", {{"equation", attr_string(equation)}}, 12);
            BOOST_CHECK_EXCEPTION(network(g.finish("y"), {3, 3}), unsupported_error, [&](const unsupported_error& e) {
                const std::string m = e.what();
                return m.find("node 'y_node' (Einsum") != std::string::npos && m.find(why) != std::string::npos;
            });
        }
    }
    // An equation that contradicts the shapes is a model error.
    graph_builder g({3, 4});
    g.constant("w", {5, 2}, std::vector<double>(10, 0.5));
    g.add("Einsum", {"x", "w"}, "y", {{"equation", attr_string("ij,jk->ik")}}, 12);
    BOOST_CHECK_THROW(network(g.finish("y"), {3, 4}), model_error);
}

BOOST_AUTO_TEST_SUITE_END()
