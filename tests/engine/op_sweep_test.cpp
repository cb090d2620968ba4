// Op sweeps: small one- or two-op graphs built in C++, run on the engine and on the double
// reference, forward and backward, over attribute and shape sweeps with random inputs (fixed seeds).
//
// Every graph gets a "head": its output times a random constant (Mul, broadcast over the batch),
// and the backward target is the sum of the head (engine target tensor_sum; reference seed of ones).
// So the signal reaching the op under test is a random tensor, not all ones (a sum of a softmax,
// for instance, has gradient zero and would certify nothing).
//
// Every case also checks the reference against central finite differences of its own forward, on
// 24 input coordinates (tests/support/finite_differences.hpp, tolerance 1e-6 relative): one entry
// here certifies an op's engine rule and its reference.
//
// Tolerances: forward and backward relative L2 <= 1e-5. The graphs are tiny: each value is a sum of
// at most a few hundred f32 products (a 3x3x16 convolution, a 96-wide Gemm), so f32 accumulation
// error is ~sqrt(terms) * 6e-8 < 1e-6 relative; 1e-5 keeps a 10x margin, while a wrong padding,
// stride, broadcast axis or routing shows up at 1e-2..1. Inputs of ReLU and max pooling come from
// shuffled grids or random values whose ties and near-zero values are improbable at f32 resolution.
#include "support.hpp"
#include "support/finite_differences.hpp"

#include <functional>
#include <sstream>

using namespace engine_test;

namespace {

constexpr double tolerance = 1e-5;
/// Input coordinates probed by central differences per case (each costs two reference forwards).
constexpr size_t finite_difference_coordinates = 24;

/// Runs the cases of one op family and summarises them.
class sweep {
public:
    explicit sweep(std::string family) : family_(std::move(family)) {}
    ~sweep() {
        BOOST_TEST_MESSAGE(family_ << ": " << cases_ << " cases, " << refusals_ << " refusals checked, max forward rel L2 "
                                   << max_fwd_ << ", max backward rel L2 " << max_bwd_);
    }
    sweep(const sweep&) = delete;
    sweep& operator=(const sweep&) = delete;

    /// Compares engine and reference on `g` (output = the op under test) with input `x`.
    /// `batch_head`: the head's weights differ per image too (needed where the op mixes images, as a
    /// softmax along axis 0 does: weights shared across the batch would make its gradient exactly 0).
    void run(const std::string& label, const graph& g, const tensor& x,
             const std::vector<backward_rule>& rules = {backward_rule::gradient}, bool batch_head = false) {
        ++cases_;
        try {
            compare(label, g, x, rules, static_cast<uint32_t>(cases_), batch_head);
        } catch (const std::exception& e) {
            BOOST_ERROR(family_ << " [" << label << "]: threw " << e.what());
        }
    }

    /// The engine must refuse `g` with unsupported_error, at construction or (with `in_backward`)
    /// when asked for a signal.
    void refuses(const std::string& label, const graph& g, const tensor& x, bool in_backward) {
        ++refusals_;
        try {
            network net(g, x.shape);
            net.forward(x);
            if (in_backward) net.backward({{target{target::kind::tensor_sum, g.outputs[0].name, {}, {}}, backward_rule::gradient}});
            BOOST_ERROR(family_ << " [" << label << "]: expected unsupported_error, nothing was thrown");
        } catch (const unsupported_error& e) {
            BOOST_TEST_MESSAGE(family_ << " [" << label << "]: refused: " << e.what());
        } catch (const std::exception& e) {
            BOOST_ERROR(family_ << " [" << label << "]: expected unsupported_error, got: " << e.what());
        }
    }

private:
    void compare(const std::string& label, const graph& g0, const tensor& x, const std::vector<backward_rule>& rules, uint32_t seed,
                 bool batch_head) {
        const std::string out = g0.outputs.at(0).name;
        const verify::reference_network ref0(g0);
        const shape_t out_shape = ref0.forward(to_d(x)).at(out).shape;
        BOOST_REQUIRE(!out_shape.empty());
        // The head: out * w, w random of out's shape with batch 1.
        graph g = g0;
        shape_t w_shape = out_shape;
        if (!batch_head) w_shape[0] = 1;
        std::mt19937 rng(seed * 7919u + 17u);
        deepinside::constant w;
        w.shape = w_shape;
        for (double v : random_values(rng, static_cast<size_t>(element_count(w_shape)))) w.floats.push_back(static_cast<float>(v));
        g.constants["head_weights"] = w;
        node head;
        head.name = "head";
        head.op_type = "Mul";
        head.opset = 13;
        head.inputs = {out, "head_weights"};
        head.outputs = {"head"};
        g.nodes.push_back(head);
        g.outputs = {{"head", {}}};

        network net(g, x.shape);
        net.forward(x);
        const verify::reference_network ref(g);
        const auto acts = ref.forward(to_d(x));
        const tensor y = net.read(out);
        BOOST_REQUIRE_MESSAGE(y.shape == acts.at(out).shape, family_ << " [" << label << "]: engine shape " << to_string(y.shape)
                                                                     << ", reference " << to_string(acts.at(out).shape));
        const double fwd = rel_l2(y, acts.at(out));
        max_fwd_ = std::max(max_fwd_, fwd);
        BOOST_CHECK_MESSAGE(fwd <= tolerance, family_ << " [" << label << "]: forward rel L2 " << fwd);

        std::vector<backward_request> requests;
        for (auto r : rules) requests.push_back({target{target::kind::tensor_sum, "head", {}, {}}, r});
        const auto signals = net.backward(requests);
        dtensor ones(acts.at("head").shape);
        std::fill(ones.data.begin(), ones.data.end(), 1.0);
        for (size_t k = 0; k < rules.size(); ++k) {
            const dtensor want = ref.backward(acts, "head", ones, rules[k]);
            BOOST_REQUIRE(signals[k].shape == want.shape);
            const double err = rel_l2(signals[k], want);
            max_bwd_ = std::max(max_bwd_, err);
            BOOST_CHECK_MESSAGE(err <= tolerance, family_ << " [" << label << "]: " << to_string(rules[k]) << " rel L2 " << err);
        }
        // The reference the engine was held to, against central differences of its own forward: one
        // sweep entry certifies both (a new op needs no separate finite-difference case).
        BOOST_TEST_CONTEXT(family_ << " [" << label << "]: reference vs finite differences") {
            std::mt19937 fd_rng(seed);
            test_support::check_gradient(g0, to_d(x), fd_rng, finite_difference_coordinates);
        }
    }

    std::string family_;
    int cases_ = 0, refusals_ = 0;
    double max_fwd_ = 0, max_bwd_ = 0;
};

/// The tensor the op under test reads: the input itself (plain NCHW), or a 1x1 convolution of it
/// to `channels` channels, which oneDNN keeps in its blocked layout.
std::string feed(graph_builder& b, bool blocked, int64_t in_channels, int64_t channels, std::mt19937& rng) {
    if (!blocked) return "x";
    b.random_constant("feed_w", {channels, in_channels, 1, 1}, rng, -0.5, 0.5);
    return b.add("Conv", {"x", "feed_w"}, "fed", {{"kernel_shape", attr_ints({1, 1})}});
}

/// A 1x1 convolution of the input to `channels` channels with weights in [0.1, 0.5]: oneDNN keeps
/// its output blocked, and a positive input stays positive (for divisors, Sqrt and fractional powers).
std::string positive_feed(graph_builder& b, int64_t in_channels, int64_t channels, std::mt19937& rng) {
    b.random_constant("pos_w", {channels, in_channels, 1, 1}, rng, 0.1, 0.5);
    return b.add("Conv", {"x", "pos_w"}, "fed", {{"kernel_shape", attr_ints({1, 1})}});
}

std::string label_of(const std::vector<std::pair<std::string, std::string>>& parts) {
    std::ostringstream ss;
    for (const auto& [k, v] : parts) ss << k << "=" << v << " ";
    return ss.str();
}

template <typename T>
std::string list(const std::vector<T>& v) {
    std::ostringstream ss;
    for (size_t i = 0; i < v.size(); ++i) ss << (i ? "," : "") << v[i];
    return ss.str();
}

} // namespace

BOOST_AUTO_TEST_SUITE(op_sweeps)

BOOST_AUTO_TEST_CASE(conv) {
    sweep s("Conv");
    std::mt19937 rng(101);
    const shape_t xs{2, 4, 7, 8};
    const std::vector<std::string> paddings = {"none", "asym", "SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int64_t groups : {1, 2, 4})
        for (int64_t dil : {1, 2})
            for (int64_t stride : {1, 2})
                for (const auto& pad : paddings)
                    for (bool bias : {false, true}) {
                        const int64_t out_c = groups == 4 ? 8 : 6; // 4: depthwise with multiplier 2
                        graph_builder b(xs);
                        b.random_constant("w", {out_c, 4 / groups, 3, 2}, rng);
                        std::vector<std::string> ins{"x", "w"};
                        if (bias) ins.push_back(b.random_constant("b", {out_c}, rng));
                        std::map<std::string, attribute> at{{"kernel_shape", attr_ints({3, 2})},
                                                            {"group", attr_int(groups)},
                                                            {"dilations", attr_ints({dil, dil})},
                                                            {"strides", attr_ints({stride, stride})}};
                        if (pad == "asym") at["pads"] = attr_ints({1, 0, 2, 1});
                        else if (pad != "none") at["auto_pad"] = attr_string(pad);
                        b.add("Conv", ins, "y", at);
                        s.run(label_of({{"group", std::to_string(groups)}, {"dilation", std::to_string(dil)},
                                        {"stride", std::to_string(stride)}, {"pad", pad}, {"bias", bias ? "1" : "0"}}),
                              b.finish("y"), random_tensor(rng, xs));
                    }
}

// Conv -> Relu -> MaxPool under the three rules: the one chain where the rules differ.
BOOST_AUTO_TEST_CASE(conv_relu_maxpool_three_rules) {
    sweep s("Conv-Relu-MaxPool");
    std::mt19937 rng(102);
    const std::vector<backward_rule> rules{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};
    struct pool_cfg { int64_t k, stride, pad; };
    for (int64_t out_c : {3, 16})
        for (auto p : {pool_cfg{2, 2, 0}, pool_cfg{3, 1, 0}, pool_cfg{3, 2, 1}})
            for (int64_t batch : {1, 2}) {
                const shape_t xs{batch, 4, 9, 8};
                graph_builder b(xs);
                b.random_constant("w", {out_c, 4, 3, 3}, rng);
                b.random_constant("b", {out_c}, rng, -0.2, 0.2);
                b.add("Conv", {"x", "w", "b"}, "c", {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})}});
                b.add("Relu", {"c"}, "r");
                b.add("MaxPool", {"r"}, "y", {{"kernel_shape", attr_ints({p.k, p.k})}, {"strides", attr_ints({p.stride, p.stride})},
                                              {"pads", attr_ints({p.pad, p.pad, p.pad, p.pad})}});
                s.run(label_of({{"channels", std::to_string(out_c)}, {"pool", std::to_string(p.k) + "/" + std::to_string(p.stride)},
                                {"pad", std::to_string(p.pad)}, {"batch", std::to_string(batch)}}),
                      b.finish("y"), random_tensor(rng, xs), rules);
            }
}

BOOST_AUTO_TEST_CASE(max_and_average_pool) {
    sweep s("MaxPool/AveragePool");
    std::mt19937 rng(103);
    const std::vector<std::vector<int64_t>> pads = {{0, 0, 0, 0}, {1, 1, 1, 1}, {0, 1, 1, 0}};
    for (const std::string op : {"MaxPool", "AveragePool"})
        for (bool blocked : {false, true})
            for (int64_t k : {2, 3})
                for (int64_t stride : {1, 2})
                    for (const auto& pad : pads)
                        for (int64_t ceil : {0, 1})
                            for (int64_t include : {0, 1}) {
                                if (op == "MaxPool" && include) continue;
                                const shape_t xs{2, 3, 7, 6};
                                graph_builder b(xs);
                                const std::string src = feed(b, blocked, 3, 16, rng);
                                std::map<std::string, attribute> at{{"kernel_shape", attr_ints({k, k})},
                                                                    {"strides", attr_ints({stride, stride})},
                                                                    {"pads", attr_ints(pad)},
                                                                    {"ceil_mode", attr_int(ceil)}};
                                if (op == "AveragePool") at["count_include_pad"] = attr_int(include);
                                b.add(op, {src}, "y", at);
                                const graph g = b.finish("y");
                                const tensor x = random_distinct(rng, xs);
                                const std::string label = label_of({{"op", op}, {"blocked", blocked ? "1" : "0"}, {"k", std::to_string(k)},
                                                                    {"stride", std::to_string(stride)}, {"pads", list(pad)},
                                                                    {"ceil", std::to_string(ceil)}, {"include_pad", std::to_string(include)}});
                                // ceil_mode adds windows past the declared padding when the ceil output size
                                // exceeds the floor one (the last window starting inside input + left pad).
                                bool ceil_adds = false;
                                const int64_t in[2] = {7, 6};
                                for (int a = 0; a < 2; ++a) {
                                    const int64_t span = in[a] + pad[a] + pad[a + 2] - k;
                                    const int64_t floor_out = span / stride + 1;
                                    int64_t ceil_out = (span + stride - 1) / stride + 1;
                                    if ((ceil_out - 1) * stride >= in[a] + pad[a]) --ceil_out;
                                    ceil_adds = ceil_adds || (ceil && ceil_out > floor_out);
                                }
                                if (include && ceil_adds) s.refuses(label, g, x, false);
                                else s.run(label, g, x);
                            }
    // Dilated max pooling (opset 10+).
    for (int64_t dil : {2, 3}) {
        const shape_t xs{1, 2, 9, 8};
        graph_builder b(xs);
        b.add("MaxPool", {"x"}, "y", {{"kernel_shape", attr_ints({2, 2})}, {"dilations", attr_ints({dil, dil})}, {"strides", attr_ints({1, 2})}});
        s.run("dilation " + std::to_string(dil), b.finish("y"), random_distinct(rng, xs));
    }
}

BOOST_AUTO_TEST_CASE(global_pools) {
    sweep s("GlobalAveragePool/GlobalMaxPool");
    std::mt19937 rng(104);
    for (const std::string op : {"GlobalAveragePool", "GlobalMaxPool"})
        for (bool blocked : {false, true}) {
            const shape_t xs{2, 5, 6, 7};
            graph_builder b(xs);
            b.add(op, {feed(b, blocked, 5, 16, rng)}, "y");
            s.run(op + (blocked ? " blocked" : " plain"), b.finish("y"), random_distinct(rng, xs));
        }
    // GlobalAveragePool then Flatten then Gemm: the classifier tail of SqueezeNet-like nets.
    const shape_t xs{2, 5, 4, 4};
    graph_builder b(xs);
    b.add("GlobalAveragePool", {feed(b, true, 5, 16, rng)}, "g");
    b.add("Flatten", {"g"}, "f");
    b.random_constant("fc16", {16, 3}, rng);
    b.add("MatMul", {"f", "fc16"}, "y");
    s.run("gap-flatten-matmul", b.finish("y"), random_tensor(rng, xs));
}

BOOST_AUTO_TEST_CASE(gemm_and_matmul) {
    sweep s("Gemm/MatMul");
    std::mt19937 rng(105);
    const std::vector<shape_t> biases = {{}, {4}, {1, 4}, {3, 4}, {3, 1}, {1}};
    for (int64_t trans_b : {0, 1})
        for (double alpha : {1.0, 0.5})
            for (double beta : {1.0, 2.0})
                for (int bias = -1; bias < static_cast<int>(biases.size()); ++bias) {
                    const shape_t xs{3, 6};
                    graph_builder b(xs);
                    b.random_constant("B", trans_b ? shape_t{4, 6} : shape_t{6, 4}, rng);
                    std::vector<std::string> ins{"x", "B"};
                    if (bias >= 0) ins.push_back(b.random_constant("C", biases[static_cast<size_t>(bias)], rng));
                    b.add("Gemm", ins, "y", {{"transB", attr_int(trans_b)}, {"alpha", attr_float(alpha)}, {"beta", attr_float(beta)}});
                    s.run(label_of({{"transB", std::to_string(trans_b)}, {"alpha", std::to_string(alpha)}, {"beta", std::to_string(beta)},
                                    {"C", bias < 0 ? "none" : to_string(biases[static_cast<size_t>(bias)])}}),
                          b.finish("y"), random_tensor(rng, xs));
                }
    {   // transA: forward is supported, the signal through it is refused.
        const shape_t xs{6, 3};
        graph_builder b(xs);
        b.random_constant("B", {6, 4}, rng);
        b.add("Gemm", {"x", "B"}, "y", {{"transA", attr_int(1)}});
        s.refuses("transA=1 backward", b.finish("y"), random_tensor(rng, xs), true);
    }
    const std::vector<std::pair<shape_t, shape_t>> matmuls = {
        {{2, 5}, {5, 3}}, {{2, 3, 5}, {5, 4}}, {{2, 2, 3, 5}, {5, 4}}, {{2, 3, 5}, {1, 5, 4}}, {{1, 96}, {96, 10}}};
    for (const auto& [a, bs] : matmuls) {
        graph_builder b(a);
        b.random_constant("B", bs, rng);
        b.add("MatMul", {"x", "B"}, "y");
        s.run("MatMul " + to_string(a) + " x " + to_string(bs), b.finish("y"), random_tensor(rng, a));
    }
}

BOOST_AUTO_TEST_CASE(binary_with_constants) {
    sweep s("Add/Mul/Sub/Div with a constant");
    std::mt19937 rng(106);
    const shape_t xs{2, 3, 4, 5};
    const std::vector<shape_t> shapes = {{}, {5}, {4, 1}, {3, 1, 1}, {1, 3, 1, 1}, {1, 3, 4, 5}, {4, 5}};
    for (const std::string op : {"Add", "Mul", "Sub", "Div"})
        for (bool blocked : {false, true})
            for (const auto& cs : shapes)
                for (bool const_first : {false, true}) {
                    const shape_t in_shape = blocked ? shape_t{2, 2, 4, 5} : xs;
                    graph_builder b(in_shape);
                    // A divisor fed from the input stays away from 0: positive weights on inputs in [0.5, 1.5].
                    const bool divisor = op == "Div" && const_first;
                    const std::string src = !blocked ? "x" : divisor ? positive_feed(b, 2, 3, rng) : feed(b, true, 2, 3, rng);
                    // Divisors away from zero: magnitude in [0.5, 1.5].
                    std::vector<double> v = random_values(rng, static_cast<size_t>(element_count(cs)), 0.5, 1.5);
                    for (double& d : v)
                        if (rng() % 2) d = -d;
                    b.constant("c", cs, v);
                    b.add(op, const_first ? std::vector<std::string>{"c", src} : std::vector<std::string>{src, "c"}, "y");
                    const graph g = b.finish("y");
                    const std::string label = label_of({{"op", op}, {"blocked", blocked ? "1" : "0"}, {"c", to_string(cs)},
                                                        {"order", const_first ? "c-op-x" : "x-op-c"}});
                    tensor x = random_tensor(rng, in_shape, 0.5, 1.5);
                    s.run(label, g, x);
                }
}

// A constant operand that carries the batch axis itself ([N, C, H, W], not [1, C, H, W]) under a
// stacked backward pass of several requests: the stack multiplies the batch of the signal only.
BOOST_AUTO_TEST_CASE(binary_with_a_full_batch_constant_stacked) {
    sweep s("Add/Mul/Sub/Div with a full-batch constant, stacked");
    std::mt19937 rng(114);
    const shape_t xs{2, 3, 4, 5};
    for (const std::string op : {"Add", "Mul", "Sub", "Div"}) {
        graph_builder b(xs);
        b.random_constant("c", xs, rng, 0.5, 1.5);
        b.add(op, {"x", "c"}, "y");
        s.run(op + " by [2, 3, 4, 5], 3 stacked requests", b.finish("y"), random_tensor(rng, xs),
              {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided}, true);
    }
}

BOOST_AUTO_TEST_CASE(binary_of_two_activations) {
    sweep s("Add/Sub/Mul of two activations");
    std::mt19937 rng(107);
    for (int64_t channels : {4, 16})
        for (const std::string op : {"Add", "Sub", "Mul"})
            for (int variant = 0; variant < 3; ++variant) {
                const shape_t xs{2, channels, 5, 5};
                graph_builder b(xs);
                b.random_constant("w", {channels, channels, 3, 3}, rng, -0.3, 0.3);
                b.add("Conv", {"x", "w"}, "c", {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})}});
                std::vector<std::string> ins;
                if (variant == 0) ins = {"c", "x"};   // residual: conv(x) op x
                else if (variant == 1) ins = {"x", "c"};
                else {                                // two branches, both blocked
                    b.random_constant("w2", {channels, channels, 1, 1}, rng);
                    b.add("Conv", {"x", "w2"}, "c2", {{"kernel_shape", attr_ints({1, 1})}});
                    ins = {"c", "c2"};
                }
                b.add(op, ins, "y");
                s.run(label_of({{"op", op}, {"channels", std::to_string(channels)}, {"inputs", ins[0] + "," + ins[1]}}), b.finish("y"),
                      random_tensor(rng, xs));
            }
}

BOOST_AUTO_TEST_CASE(concat) {
    sweep s("Concat");
    std::mt19937 rng(108);
    for (int64_t axis : {1, 2, 3, -1})
        for (int variant = 0; variant < 3; ++variant) {
            const shape_t xs{2, 3, 5, 5};
            graph_builder b(xs);
            const int64_t c1 = axis == 1 ? 4 : 3, c2 = axis == 1 ? 16 : 3;
            b.random_constant("w1", {c1, 3, 3, 3}, rng);
            b.random_constant("w2", {c2, 3, 1, 1}, rng);
            b.add("Conv", {"x", "w1"}, "a", {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})}});
            b.add("Conv", {"x", "w2"}, "b", {{"kernel_shape", attr_ints({1, 1})}});
            std::vector<std::string> ins = variant == 0 ? std::vector<std::string>{"a", "b"}
                                         : variant == 1 ? std::vector<std::string>{"x", "a", "x"}
                                                        : std::vector<std::string>{"b", "x"};
            if (axis != 1 && variant == 2) ins = {"b", "a"};
            b.add("Concat", ins, "y", {{"axis", attr_int(axis)}});
            s.run(label_of({{"axis", std::to_string(axis)}, {"inputs", list(ins)}}), b.finish("y"), random_tensor(rng, xs));
        }
}

BOOST_AUTO_TEST_CASE(lrn_and_batch_norm) {
    sweep s("LRN/BatchNormalization");
    std::mt19937 rng(109);
    for (int64_t size : {3, 5})
        for (bool blocked : {false, true})
            for (double alpha : {1e-4, 0.5})
                for (double bias : {1.0, 2.0}) {
                    const shape_t xs{2, 7, 4, 5};
                    graph_builder b(xs);
                    b.add("LRN", {feed(b, blocked, 7, 16, rng)}, "y",
                          {{"size", attr_int(size)}, {"alpha", attr_float(alpha)}, {"beta", attr_float(0.75)}, {"bias", attr_float(bias)}});
                    s.run(label_of({{"LRN size", std::to_string(size)}, {"blocked", blocked ? "1" : "0"}, {"alpha", std::to_string(alpha)},
                                    {"bias", std::to_string(bias)}}),
                          b.finish("y"), random_tensor(rng, xs, -2, 2));
                }
    // Small variances too: there epsilon moves the scale by a few percent, so a backward that drops
    // or misplaces it (tools/faults/batchnorm-backward-epsilon.patch) is far outside the tolerance.
    for (int64_t opset : {9, 15})
        for (bool blocked : {false, true})
            for (double eps : {1e-5, 1e-2})
                for (const auto& [var_lo, var_hi] : {std::pair{0.1, 2.0}, std::pair{1e-4, 1e-3}}) {
                    const shape_t xs{2, 4, 5, 5};
                    const int64_t c = blocked ? 16 : 4;
                    graph_builder b(xs, opset);
                    const std::string src = feed(b, blocked, 4, c, rng);
                    b.random_constant("scale", {c}, rng, 0.5, 1.5);
                    b.random_constant("B", {c}, rng);
                    b.random_constant("mean", {c}, rng);
                    b.random_constant("var", {c}, rng, var_lo, var_hi);
                    b.add("BatchNormalization", {src, "scale", "B", "mean", "var"}, "y",
                          {{"epsilon", attr_float(eps)}});
                    s.run(label_of({{"BatchNormalization opset", std::to_string(opset)},
                                    {"blocked", blocked ? "1" : "0"},
                                    {"epsilon", std::to_string(eps)},
                                    {"variance", std::to_string(var_lo) + ".." + std::to_string(var_hi)}}),
                          b.finish("y"), random_tensor(rng, xs));
                }
}

BOOST_AUTO_TEST_CASE(softmax_and_log_softmax) {
    sweep s("Softmax/LogSoftmax");
    std::mt19937 rng(110);
    struct cfg { int64_t opset; std::optional<int64_t> axis; shape_t shape; };
    const std::vector<cfg> cfgs = {
        {11, std::nullopt, {2, 3, 4}}, {11, 2, {2, 3, 4}}, {11, -1, {2, 3, 4}}, {11, 0, {2, 3, 4}}, {11, std::nullopt, {2, 10}},
        {13, std::nullopt, {2, 3, 4}}, {13, 1, {2, 3, 4}}, {13, 0, {2, 3, 4}}, {13, -2, {2, 3, 4}}, {13, std::nullopt, {2, 10}},
        {13, 1, {2, 3, 4, 2}},
    };
    for (const std::string op : {"Softmax", "LogSoftmax"})
        for (const auto& c : cfgs) {
            graph_builder b(c.shape, c.opset);
            std::map<std::string, attribute> at;
            if (c.axis) at["axis"] = attr_int(*c.axis);
            b.add(op, {"x"}, "y", at);
            s.run(label_of({{"op", op}, {"opset", std::to_string(c.opset)}, {"axis", c.axis ? std::to_string(*c.axis) : "default"},
                            {"shape", to_string(c.shape)}}),
                  b.finish("y"), random_tensor(rng, c.shape, -3, 3), {backward_rule::gradient}, c.axis && *c.axis == 0);
        }
}

BOOST_AUTO_TEST_CASE(reshapes) {
    sweep s("Flatten/Reshape/Squeeze/Unsqueeze");
    std::mt19937 rng(111);
    const shape_t xs{2, 3, 4, 5};
    for (bool blocked : {false, true}) {
        for (int64_t axis : {0, 1, 2, 3, 4, -1, -3}) {
            graph_builder b(xs);
            b.add("Flatten", {feed(b, blocked, 3, 3, rng)}, "y", {{"axis", attr_int(axis)}});
            s.run("Flatten axis " + std::to_string(axis) + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs));
        }
        for (const std::vector<int64_t>& shape : std::vector<std::vector<int64_t>>{{2, -1}, {0, 12, 5}, {0, 0, -1}, {-1, 5}, {2, 60, 1}, {0, 3, 2, 2, 5}}) {
            graph_builder b(xs);
            b.int_constant("shape", shape);
            b.add("Reshape", {feed(b, blocked, 3, 3, rng), "shape"}, "y");
            s.run("Reshape " + list(shape) + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs));
        }
    }
    const shape_t sq{2, 1, 3, 1};
    for (int64_t opset : {11, 13})
        for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{1, 3}, {-1}, {}}) {
            graph_builder b(sq, opset);
            std::vector<std::string> ins{"x"};
            std::map<std::string, attribute> at;
            if (!axes.empty()) {
                if (opset >= 13) ins.push_back(b.int_constant("axes", axes));
                else at["axes"] = attr_ints(axes);
            }
            b.add("Squeeze", ins, "y", at);
            s.run("Squeeze opset " + std::to_string(opset) + " axes " + list(axes), b.finish("y"), random_tensor(rng, sq));
        }
    const shape_t us{2, 3, 4};
    for (int64_t opset : {11, 13})
        for (const std::vector<int64_t>& axes : std::vector<std::vector<int64_t>>{{1}, {3}, {-1}, {1, 3}, {4, 1}}) {
            graph_builder b(us, opset);
            std::vector<std::string> ins{"x"};
            std::map<std::string, attribute> at;
            if (opset >= 13) ins.push_back(b.int_constant("axes", axes));
            else at["axes"] = attr_ints(axes);
            b.add("Unsqueeze", ins, "y", at);
            s.run("Unsqueeze opset " + std::to_string(opset) + " axes " + list(axes), b.finish("y"), random_tensor(rng, us));
        }
}

BOOST_AUTO_TEST_CASE(pad) {
    sweep s("Pad");
    std::mt19937 rng(112);
    const shape_t xs{2, 3, 4, 5};
    for (bool blocked : {false, true})
        for (double value : {0.0, 0.5}) {
            {
                graph_builder b(xs, 11);
                b.int_constant("pads", {0, 0, 1, 2, 0, 0, 2, 1});
                b.constant("value", {}, {value});
                b.add("Pad", {feed(b, blocked, 3, 16, rng), "pads", "value"}, "y");
                s.run("opset 11 value " + std::to_string(value) + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs));
            }
            {
                graph_builder b(xs, 2);
                b.add("Pad", {feed(b, blocked, 3, 16, rng)}, "y", {{"pads", attr_ints({0, 1, 0, 3, 0, 2, 1, 0})}, {"value", attr_float(value)}});
                s.run("opset 2 value " + std::to_string(value) + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs));
            }
            {
                graph_builder b(xs, 18);
                b.int_constant("pads", {1, 0, 0, 2});
                b.constant("value", {}, {value});
                b.int_constant("axes", {2, -1});
                b.add("Pad", {feed(b, blocked, 3, 16, rng), "pads", "value", "axes"}, "y");
                s.run("opset 18 axes value " + std::to_string(value) + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs));
            }
        }
    {
        graph_builder b(xs, 11);
        b.int_constant("pads", {0, 0, 1, 1, 0, 0, 1, 1});
        b.add("Pad", {"x", "pads"}, "y", {{"mode", attr_string("reflect")}});
        s.refuses("reflect mode", b.finish("y"), random_tensor(rng, xs), false);
    }
    {
        graph_builder b(xs, 11);
        b.int_constant("pads", {1, 0, 0, 0, 0, 0, 0, 0});
        b.add("Pad", {"x", "pads"}, "y");
        s.refuses("padding the batch axis", b.finish("y"), random_tensor(rng, xs), false);
    }
}

BOOST_AUTO_TEST_CASE(unary_nonlinearities) {
    sweep s("Relu/LeakyRelu/Elu/Selu/Sigmoid/Tanh/Clip");
    std::mt19937 rng(113);
    struct cfg { std::string op; int64_t opset; std::map<std::string, attribute> at; std::vector<std::pair<std::string, double>> inputs; };
    const std::vector<cfg> cfgs = {
        {"Relu", 13, {}, {}},
        {"LeakyRelu", 13, {}, {}},
        {"LeakyRelu", 13, {{"alpha", attr_float(0.3)}}, {}},
        {"Elu", 13, {}, {}},
        {"Elu", 13, {{"alpha", attr_float(0.5)}}, {}},
        {"Selu", 13, {}, {}},
        {"Selu", 13, {{"alpha", attr_float(1.5)}, {"gamma", attr_float(1.2)}}, {}},
        {"Sigmoid", 13, {}, {}},
        {"Tanh", 13, {}, {}},
        {"Clip", 6, {{"min", attr_float(-0.5)}, {"max", attr_float(0.7)}}, {}},
        {"Clip", 6, {}, {}},
        {"Clip", 11, {}, {{"min", -0.4}, {"max", 0.9}}},
        {"Clip", 13, {}, {{"min", -0.3}}},
        {"Clip", 13, {}, {}},
    };
    for (const auto& c : cfgs)
        for (bool blocked : {false, true}) {
            const shape_t xs{2, 3, 4, 5};
            graph_builder b(xs, c.opset);
            std::vector<std::string> ins{feed(b, blocked, 3, 16, rng)};
            for (const auto& [name, v] : c.inputs) ins.push_back(b.constant(name, {}, {v}));
            b.add(c.op, ins, "y", c.at);
            std::ostringstream label;
            label << c.op << " opset " << c.opset << " attrs " << c.at.size() << " inputs " << c.inputs.size() << (blocked ? " blocked" : "");
            s.run(label.str(), b.finish("y"), random_tensor(rng, xs, -2, 2));
        }
}

// The routing ops (lib/ops/layout.cpp): every case runs the three rules as one stacked pass of
// three requests on a batch of 2, with head weights that differ per image, so a slice of the stacked
// signal routed into another slice, or an op along the batch axis that mixes images or requests, shows. Half the cases end in a ReLU, where the
// three rules send different signals back through the op under test.
namespace {
const std::vector<backward_rule> three_rules{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};

/// Appends a ReLU after `y` when `relu` (the graph's output is then "out"); returns the output name.
std::string maybe_relu(graph_builder& b, const std::string& y, bool relu) { return relu ? b.add("Relu", {y}, "out", {}, 13) : y; }

/// `g` with the outputs of its Split node set to `outputs` (graph_builder gives every node one output).
graph with_split_outputs(graph g, const std::vector<std::string>& outputs) {
    for (auto& n : g.nodes)
        if (n.op_type == "Split") n.outputs = outputs;
    return g;
}
} // namespace

BOOST_AUTO_TEST_CASE(transpose) {
    sweep s("Transpose");
    std::mt19937 rng(115);
    const shape_t xs{2, 3, 4, 5};
    for (const std::vector<int64_t>& perm : std::vector<std::vector<int64_t>>{
             {0, 2, 3, 1}, {0, 3, 1, 2}, {0, 1, 3, 2}, {1, 0, 2, 3}, {3, 2, 1, 0}, {}, {2, 0, 3, 1}, {0, -1, 1, 2}})
        for (bool blocked : {false, true})
            for (bool relu : {false, true}) {
                graph_builder b(xs);
                std::map<std::string, attribute> at;
                if (!perm.empty()) at["perm"] = attr_ints(perm);
                b.add("Transpose", {feed(b, blocked, 3, 16, rng)}, "y", at);
                const std::string out = maybe_relu(b, "y", relu);
                s.run(label_of({{"perm", perm.empty() ? "default" : list(perm)}, {"blocked", blocked ? "1" : "0"}, {"relu", relu ? "1" : "0"}}),
                      b.finish(out), random_tensor(rng, xs), three_rules, true);
            }
    // ShuffleNet's channel shuffle: Reshape [N, g, C/g, H, W] -> Transpose -> Reshape back, after a convolution.
    {
        graph_builder b(xs);
        const std::string src = feed(b, true, 3, 16, rng);
        b.int_constant("split", {0, 4, 4, 4, 5});
        b.int_constant("merge", {0, 16, 4, 5});
        b.add("Reshape", {src, "split"}, "r");
        b.add("Transpose", {"r"}, "t", {{"perm", attr_ints({0, 2, 1, 3, 4})}});
        b.add("Reshape", {"t", "merge"}, "y");
        s.run("channel shuffle", b.finish(maybe_relu(b, "y", true)), random_tensor(rng, xs), three_rules, true);
    }
    // Swin's window partition: [N, H, W, C] -> [N, H/2, 2, W/2, 2, C] -> perm (0, 1, 3, 2, 4, 5), rank 6.
    {
        const shape_t nhwc{2, 4, 6, 3};
        graph_builder b(nhwc);
        b.int_constant("windows", {2, 2, 2, 3, 2, 3});
        b.add("Reshape", {"x", "windows"}, "r");
        b.add("Transpose", {"r"}, "y", {{"perm", attr_ints({0, 1, 3, 2, 4, 5})}});
        s.run("window partition rank 6", b.finish("y"), random_tensor(rng, nhwc), three_rules, true);
    }
}

BOOST_AUTO_TEST_CASE(slice) {
    sweep s("Slice");
    std::mt19937 rng(116);
    const shape_t xs{2, 3, 6, 5};
    struct cfg { std::vector<int64_t> starts, ends, axes, steps; };
    const std::vector<cfg> cfgs = {
        {{1}, {4}, {2}, {}},
        {{0, 1, 1}, {16, -1, 5}, {1, 2, 3}, {}},
        {{0, 1}, {1000, 6}, {2, 3}, {2, 3}},
        {{-1}, {-1000}, {2}, {-1}},
        {{4, -2}, {0, -6}, {-2, 3}, {-2, -1}},
        {{1}, {2}, {0}, {}},          // the batch axis: one image of two
        {{-1}, {-3}, {0}, {-1}},      // the batch axis reversed
        {{-100}, {100}, {3}, {1}},    // clamped at both ends: everything
    };
    for (int64_t opset : {1, 10, 13})
        for (const auto& c : cfgs)
            for (bool blocked : {false, true}) {
                if (opset == 1 && !c.steps.empty()) continue;
                const shape_t in = xs;
                graph_builder b(in, opset);
                std::vector<std::string> ins{feed(b, blocked, 3, 16, rng)};
                std::map<std::string, attribute> at;
                if (opset == 1) {
                    at = {{"starts", attr_ints(c.starts)}, {"ends", attr_ints(c.ends)}, {"axes", attr_ints(c.axes)}};
                } else {
                    ins.push_back(b.int_constant("starts", c.starts));
                    ins.push_back(b.int_constant("ends", c.ends));
                    ins.push_back(b.int_constant("axes", c.axes));
                    if (!c.steps.empty()) ins.push_back(b.int_constant("steps", c.steps));
                }
                b.add("Slice", ins, "y", at);
                const bool relu = c.starts.size() > 1;
                s.run(label_of({{"opset", std::to_string(opset)}, {"starts", list(c.starts)}, {"ends", list(c.ends)}, {"axes", list(c.axes)},
                                {"steps", list(c.steps)}, {"blocked", blocked ? "1" : "0"}}),
                      b.finish(maybe_relu(b, "y", relu)), random_tensor(rng, in), three_rules, true);
            }
    {
        graph_builder b(xs, 13);
        b.add("Slice", {"x", b.int_constant("starts", {3}), b.int_constant("ends", {3}), b.int_constant("axes", {2})}, "y");
        s.refuses("an empty slice", b.finish("y"), random_tensor(rng, xs), false);
    }
}

BOOST_AUTO_TEST_CASE(split) {
    sweep s("Split");
    std::mt19937 rng(117);
    struct cfg { int64_t opset, axis; std::vector<int64_t> split; int64_t num_outputs; shape_t shape; };
    const std::vector<cfg> cfgs = {
        {11, 1, {}, 0, {2, 6, 4, 5}},        {11, 2, {1, 2, 1}, 0, {2, 3, 4, 5}}, {13, -1, {2, 2, 1}, 0, {2, 3, 4, 5}},
        {13, 1, {}, 0, {2, 6, 4, 5}},        {18, 3, {}, 3, {2, 3, 4, 7}},        {18, 2, {1, 1, 2}, 0, {2, 3, 4, 5}},
        {13, 0, {1, 1, 1}, 0, {3, 3, 4, 5}}, // the batch axis
    };
    for (const auto& c : cfgs)
        for (bool blocked : {false, true})
            for (bool unused : {false, true}) {
                if (c.axis == 0 && blocked) continue;
                graph_builder b(c.shape, c.opset);
                // Blocked: 16 channels after the convolution (oneDNN's blocked layouts), except where
                // the split is along the channels and its parts are sized for the input's.
                std::vector<std::string> ins{feed(b, blocked, c.shape[1], blocked && c.axis != 1 ? 16 : c.shape[1], rng)};
                std::map<std::string, attribute> at{{"axis", attr_int(c.axis)}};
                if (c.num_outputs) at["num_outputs"] = attr_int(c.num_outputs);
                else if (!c.split.empty() && c.opset < 13) at["split"] = attr_ints(c.split);
                else if (!c.split.empty()) ins.push_back(b.int_constant("parts", c.split));
                b.add("Split", ins, "p0", at);
                // The parts back in another order: a part routed to its neighbour's place shows. With
                // `unused`, the middle part reaches nothing and its signal is zero.
                // Along the batch axis the parts are combined by a subtraction instead: the engine's
                // Concat has no backward along that axis.
                const std::vector<std::string> back = unused ? std::vector<std::string>{"p2", "p0"} : std::vector<std::string>{"p2", "p0", "p1"};
                if (c.axis == 0) b.add("Sub", {"p2", unused ? "p0" : "p1"}, "y");
                else b.add("Concat", back, "y", {{"axis", attr_int(c.axis)}});
                const graph g = with_split_outputs(b.finish(maybe_relu(b, "y", unused)), {"p0", "p1", "p2"});
                s.run(label_of({{"opset", std::to_string(c.opset)}, {"axis", std::to_string(c.axis)}, {"split", list(c.split)},
                                {"num_outputs", std::to_string(c.num_outputs)}, {"blocked", blocked ? "1" : "0"}, {"unused part", unused ? "1" : "0"}}),
                      g, random_tensor(rng, c.shape), three_rules, true);
            }
}

BOOST_AUTO_TEST_CASE(gather) {
    sweep s("Gather");
    std::mt19937 rng(118);
    const shape_t xs{2, 3, 4, 5};
    struct cfg { int64_t axis; shape_t index_shape; std::vector<int64_t> indices; };
    const std::vector<cfg> cfgs = {
        {1, {}, {0}},           // ViT's class token: x[:, 0]
        {1, {3}, {2, 0, 2}},    // repeated: the signals add
        {2, {2, 2}, {-1, 0, 3, -4}},
        {3, {1}, {-2}},
        {-1, {}, {4}},
        {0, {}, {1}},           // one image of the batch: the rank drops and axis 0 is no longer the batch
        {0, {3}, {1, 0, 1}},
    };
    for (const auto& c : cfgs)
        for (bool blocked : {false, true}) {
            graph_builder b(xs);
            const std::string src = feed(b, blocked, 3, 16, rng);
            b.int_constant("i", c.indices);
            b.add("Gather", {src, "i"}, "y", {{"axis", attr_int(c.axis)}});
            graph g = b.finish(maybe_relu(b, "y", c.axis == 2));
            g.constants["i"].shape = c.index_shape; // int_constant writes 1-D
            s.run(label_of({{"axis", std::to_string(c.axis)}, {"index shape", to_string(c.index_shape)}, {"indices", list(c.indices)},
                            {"blocked", blocked ? "1" : "0"}}),
                  g, random_tensor(rng, xs), three_rules, true);
        }
}

BOOST_AUTO_TEST_CASE(expand) {
    sweep s("Expand");
    std::mt19937 rng(119);
    struct cfg { shape_t in; std::vector<int64_t> shape; };
    const std::vector<cfg> cfgs = {
        {{2, 3, 1, 5}, {2, 3, 4, 5}}, {{2, 3, 1, 1}, {1, 1, 4, 6}}, {{2, 1, 4}, {3, 2, 5, 4}}, {{2, 3, 4}, {1}}, {{2, 1}, {2, 3000}},
    };
    for (const auto& c : cfgs)
        for (bool relu : {false, true}) {
            graph_builder b(c.in);
            b.int_constant("shape", c.shape);
            b.add("Expand", {"x", "shape"}, "y");
            s.run(label_of({{"in", to_string(c.in)}, {"shape", list(c.shape)}, {"relu", relu ? "1" : "0"}}), b.finish(maybe_relu(b, "y", relu)),
                  random_tensor(rng, c.in), three_rules, true);
        }
    // After a convolution (a blocked input), expanded along a new leading axis.
    graph_builder b({2, 3, 4, 5});
    b.int_constant("shape", {3, 1, 1, 1, 1});
    b.add("Expand", {feed(b, true, 3, 16, rng), "shape"}, "y");
    s.run("blocked, new leading axis", b.finish("y"), random_tensor(rng, {2, 3, 4, 5}), three_rules, true);
}

BOOST_AUTO_TEST_CASE(where) {
    sweep s("Where");
    std::mt19937 rng(120);
    const shape_t xs{2, 3, 4, 4};
    for (int variant = 0; variant < 5; ++variant)
        for (bool blocked : {false, true}) {
            graph_builder b(xs);
            const std::string src = feed(b, blocked, 3, 16, rng);
            // A causal mask over the last two axes, as attention builds it; variant 4: a per-channel mask.
            const shape_t mask_shape = variant == 4 ? shape_t{blocked ? 16 : 3, 1, 1} : shape_t{1, 1, 4, 4};
            std::vector<double> mask(static_cast<size_t>(element_count(mask_shape)));
            for (size_t i = 0; i < mask.size(); ++i) mask[i] = variant == 4 ? double(i % 2) : double(i % 4 <= i / 4);
            b.constant("mask", mask_shape, mask);
            b.constant("fill", {}, {-2.5});
            std::vector<std::string> ins;
            if (variant == 0) ins = {"mask", src, "fill"};
            else if (variant == 1) ins = {"mask", "fill", src};
            else if (variant == 2 || variant == 4) {
                b.constant("half", {}, {0.5});
                b.add("Mul", {src, "half"}, "other"); // a second activation (no nonlinearity: the rules would refuse one)
                ins = {"mask", src, "other"};
            } else {   // an activation that broadcasts ([N, C, 1, 1]) against a constant
                b.add("GlobalAveragePool", {src}, "m");
                b.random_constant("full", {1, 1, 4, 4}, rng);
                ins = {"mask", "m", "full"};
            }
            b.add("Where", ins, "y");
            s.run(label_of({{"variant", std::to_string(variant)}, {"blocked", blocked ? "1" : "0"}}), b.finish(maybe_relu(b, "y", variant % 2 == 0)),
                  random_tensor(rng, xs), three_rules, true);
        }
    {
        graph_builder b(xs);
        b.constant("fill", {}, {0.0});
        b.add("Where", {"x", "x", "fill"}, "y");
        s.refuses("a condition computed from the input", b.finish("y"), random_tensor(rng, xs), false);
    }
}

BOOST_AUTO_TEST_CASE(resize) {
    sweep s("Resize/Upsample");
    std::mt19937 rng(121);
    const shape_t xs{2, 3, 5, 6};
    const std::vector<std::string> transforms = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"};
    const std::vector<std::vector<double>> scale_sets = {{1, 1, 2, 2}, {1, 1, 1.5, 0.5}, {1, 1, 0.6, 3}};
    for (const std::string mode : {"nearest", "linear"})
        for (const auto& t : transforms)
            for (const std::string rounding : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"})
                for (size_t k = 0; k < scale_sets.size(); ++k) {
                    if (mode == "linear" && rounding != "round_prefer_floor") continue;
                    const bool blocked = k == 1;
                    graph_builder b(xs, t == "tf_half_pixel_for_nn" ? 11 : 13); // Resize-13 dropped it
                    b.constant("scales", {4}, scale_sets[k]);
                    b.add("Resize", {feed(b, blocked, 3, 16, rng), "", "scales"}, "y",
                          {{"mode", attr_string(mode)}, {"coordinate_transformation_mode", attr_string(t)}, {"nearest_mode", attr_string(rounding)}});
                    s.run(label_of({{"mode", mode}, {"transform", t}, {"rounding", rounding}, {"scales", list(scale_sets[k])},
                                    {"blocked", blocked ? "1" : "0"}}),
                          b.finish(maybe_relu(b, "y", k == 2)), random_tensor(rng, xs), three_rules, true);
                }
    // Sizes (opset 11 with an empty scales tensor, 13 without scales), opset 18's trailing axes,
    // opset 19's half_pixel_symmetric, Resize-10 and Upsample.
    for (const std::string mode : {"nearest", "linear"}) {
        {
            graph_builder b(xs, 11);
            b.constant("roi", {0}, {});
            b.constant("no_scales", {0}, {});
            b.int_constant("sizes", {2, 3, 9, 4});
            b.add("Resize", {"x", "roi", "no_scales", "sizes"}, "y", {{"mode", attr_string(mode)}});
            s.run(mode + " opset 11 sizes", b.finish("y"), random_tensor(rng, xs), three_rules, true);
        }
        {
            graph_builder b(xs, 13);
            b.int_constant("sizes", {2, 3, 3, 13});
            b.add("Resize", {"x", "", "", "sizes"}, "y", {{"mode", attr_string(mode)}, {"coordinate_transformation_mode", attr_string("align_corners")}});
            s.run(mode + " opset 13 sizes align_corners", b.finish("y"), random_tensor(rng, xs), three_rules, true);
        }
        {
            graph_builder b(xs, 18);
            b.constant("scales", {2}, {2.5, 1.5});
            b.add("Resize", {"x", "", "scales"}, "y", {{"mode", attr_string(mode)}, {"axes", attr_ints({-2, -1})}});
            s.run(mode + " opset 18 axes", b.finish("y"), random_tensor(rng, xs), three_rules, true);
        }
        {
            graph_builder b(xs, 19);
            b.constant("scales", {4}, {1, 1, 1.7, 0.7});
            b.add("Resize", {"x", "", "scales"}, "y", {{"mode", attr_string(mode)}, {"coordinate_transformation_mode", attr_string("half_pixel_symmetric")}});
            s.run(mode + " opset 19 half_pixel_symmetric", b.finish("y"), random_tensor(rng, xs), three_rules, true);
        }
        {
            graph_builder b(xs, 10);
            b.constant("scales", {4}, {1, 1, 2, 3});
            b.add("Resize", {feed(b, true, 3, 16, rng), "scales"}, "y", {{"mode", attr_string(mode)}});
            s.run(mode + " opset 10 blocked", b.finish("y"), random_tensor(rng, xs), three_rules, true);
        }
        for (int64_t opset : {7, 9}) {
            graph_builder b(xs, opset);
            std::vector<std::string> ins{"x"};
            std::map<std::string, attribute> at{{"mode", attr_string(mode)}};
            if (opset == 9) ins.push_back(b.constant("scales", {4}, {1, 1, 2, 2}));
            else at["scales"] = std::vector<float>{1, 1, 3, 2};
            b.add("Upsample", ins, "y", at);
            s.run(mode + " Upsample opset " + std::to_string(opset), b.finish("y"), random_tensor(rng, xs), three_rules, true);
        }
    }
    // Refused, each naming the node and the value.
    auto refused = [&](const std::string& label, int64_t opset, const std::vector<double>& scales, std::map<std::string, attribute> at) {
        graph_builder b(xs, opset);
        b.constant("scales", {static_cast<int64_t>(scales.size())}, scales);
        b.add("Resize", {"x", opset == 10 ? "scales" : "", opset == 10 ? "" : "scales"}, "y", at);
        s.refuses(label, b.finish("y"), random_tensor(rng, xs), false);
    };
    refused("cubic", 13, {1, 1, 2, 2}, {{"mode", attr_string("cubic")}});
    refused("antialias", 18, {1, 1, 0.5, 0.5}, {{"mode", attr_string("linear")}, {"antialias", attr_int(1)}});
    refused("tf_crop_and_resize", 13, {1, 1, 2, 2}, {{"coordinate_transformation_mode", attr_string("tf_crop_and_resize")}});
    refused("a channel scale", 13, {1, 2, 2, 2}, {{"mode", attr_string("linear")}});
    refused("axes with the channel axis", 18, {2, 2, 2}, {{"axes", attr_ints({1, 2, 3})}});
    refused("opset 10 nearest downsampling", 10, {1, 1, 0.5, 0.5}, {});
    {
        graph_builder b(xs, 18);
        b.int_constant("sizes", {4, 4});
        b.add("Resize", {"x", "", "", "sizes"}, "y", {{"axes", attr_ints({2, 3})}, {"keep_aspect_ratio_policy", attr_string("not_larger")}});
        s.refuses("keep_aspect_ratio_policy not_larger", b.finish("y"), random_tensor(rng, xs), false);
    }
}

BOOST_AUTO_TEST_SUITE_END()

// ---- Broadcast activations, the newer nonlinearities, layer norm (whole and decomposed) ----------

namespace {

/// A nonrelu op: refused under deconvnet by default (unsupported_error naming `node_name`), and with
/// nonrelu_policy::gradient every rule gives the reference's gradient, in one stacked pass. The
/// target is the sum of the output (the derivative itself reaches the input).
void check_nonrelu_policy(const std::string& label, const graph& g, const tensor& x, const std::string& node_name, double& max_err) {
    const std::string out = g.outputs.at(0).name;
    const target t{target::kind::tensor_sum, out, {}, {}};
    try {
        network net(g, x.shape);
        net.forward(x);
        net.backward({{t, backward_rule::deconvnet}});
        BOOST_ERROR(label << ": deconvnet through a nonrelu op was not refused");
    } catch (const unsupported_error& e) {
        BOOST_CHECK_MESSAGE(std::string(e.what()).find(node_name) != std::string::npos,
                            label << ": the refusal does not name the node '" << node_name << "': " << e.what());
    }
    engine_options options;
    options.nonrelu = nonrelu_policy::gradient;
    network net(g, x.shape, options);
    net.forward(x);
    const auto signals = net.backward({{t, backward_rule::gradient}, {t, backward_rule::deconvnet}, {t, backward_rule::guided}});
    const verify::reference_network ref(g);
    const auto acts = ref.forward(to_d(x));
    dtensor ones(acts.at(out).shape);
    std::fill(ones.data.begin(), ones.data.end(), 1.0);
    const dtensor want = ref.backward(acts, out, ones, backward_rule::gradient);
    for (const auto& s : signals) {
        const double err = rel_l2(s, want);
        max_err = std::max(max_err, err);
        BOOST_CHECK_MESSAGE(err <= tolerance, label << ": with --nonrelu gradient, rel L2 " << err << " from the gradient");
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(op_sweeps)

// Squeeze-and-excitation and friends: an activation times (plus, minus, over) a [N, C, 1, 1] one
// computed from it, in both operand orders, the big operand plain or blocked. The gate without a
// nonlinearity runs under all three rules in one stacked pass; the Sigmoid gate (nonrelu) under the
// gradient twice, stacked.
BOOST_AUTO_TEST_CASE(binary_of_broadcast_activations) {
    sweep s("Add/Sub/Mul/Div of an activation and a broadcast one");
    std::mt19937 rng(115);
    const std::vector<backward_rule> three{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};
    const std::vector<backward_rule> twice{backward_rule::gradient, backward_rule::gradient};
    for (const std::string op : {"Add", "Sub", "Mul", "Div"})
        for (bool blocked : {false, true})
            for (bool gate_first : {false, true})
                for (bool sigmoid : {false, true}) {
                    if (op == "Div" && !sigmoid) continue; // the divisor must stay away from 0: a sigmoid
                    const shape_t xs{2, 3, 5, 4};
                    const int64_t c = blocked ? 16 : 3;
                    graph_builder b(xs);
                    const std::string src = feed(b, blocked, 3, c, rng);
                    b.add("GlobalAveragePool", {src}, "pooled");
                    b.random_constant("fc", {c, c, 1, 1}, rng);
                    b.random_constant("fc_b", {c}, rng);
                    b.add("Conv", {"pooled", "fc", "fc_b"}, sigmoid ? "fc_out" : "gate", {{"kernel_shape", attr_ints({1, 1})}});
                    if (sigmoid) b.add("Sigmoid", {"fc_out"}, "gate");
                    b.add(op, gate_first ? std::vector<std::string>{"gate", src} : std::vector<std::string>{src, "gate"}, "y");
                    s.run(label_of({{"op", op}, {"blocked", blocked ? "1" : "0"}, {"order", gate_first ? "gate-op-x" : "x-op-gate"},
                                    {"gate", sigmoid ? "sigmoid" : "linear"}}),
                          b.finish("y"), random_tensor(rng, xs), sigmoid ? twice : three);
                }
    // Both operands broadcast: [2, 3, 1, 4] op [2, 1, 5, 1] (means along different axes), each order;
    // and SiLU, x * sigmoid(x), the two operands of the same shape.
    for (const std::string op : {"Add", "Sub", "Mul", "Div"})
        for (bool swap : {false, true}) {
            const shape_t xs{2, 3, 5, 4};
            graph_builder b(xs, 18);
            b.add("ReduceMean", {"x", b.int_constant("a2", {2})}, "m2");
            b.add("ReduceMean", {"x", b.int_constant("a13", {1, 3})}, "m13");
            b.add("Sigmoid", {"m13"}, "s13"); // a divisor in (0, 1)
            b.add(op, swap ? std::vector<std::string>{"s13", "m2"} : std::vector<std::string>{"m2", "s13"}, "y");
            s.run(op + " of [2,3,1,4] and [2,1,5,1]" + (swap ? " swapped" : ""), b.finish("y"), random_tensor(rng, xs), twice);
        }
    for (bool blocked : {false, true}) {
        const shape_t xs{2, 3, 5, 4};
        graph_builder b(xs);
        const std::string src = feed(b, blocked, 3, 16, rng);
        b.add("Sigmoid", {src}, "sg");
        b.add("Mul", {src, "sg"}, "y");
        s.run(std::string("SiLU") + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs), twice);
    }
    // Broadcasting an activation along the batch axis is refused, naming the node.
    {
        graph_builder b({2, 3}, 18);
        b.add("ReduceMean", {"x", b.int_constant("a0", {0})}, "m", {{"keepdims", attr_int(1)}});
        b.add("Mul", {"x", "m"}, "y");
        s.refuses("the batch mean", b.finish("y"), random_tensor(rng, {2, 3}), false);
    }
}

BOOST_AUTO_TEST_CASE(newer_nonlinearities) {
    sweep s("HardSigmoid/HardSwish/Erf/Gelu/PRelu/Pow/Sqrt");
    std::mt19937 rng(116);
    double policy_err = 0;
    struct cfg { std::string op; int64_t opset; std::map<std::string, attribute> at; shape_t slope; };
    const std::vector<cfg> cfgs = {
        {"HardSigmoid", 13, {}, {}},
        {"HardSigmoid", 6, {{"alpha", attr_float(0.3)}, {"beta", attr_float(0.4)}}, {}},
        {"HardSwish", 14, {}, {}},
        {"Erf", 13, {}, {}},
        {"Gelu", 20, {}, {}},
        {"Gelu", 20, {{"approximate", attr_string("tanh")}}, {}},
        {"PRelu", 16, {}, {0, 1, 1}},  // per channel, [C, 1, 1]
        {"PRelu", 16, {}, {1}},        // one slope
        {"PRelu", 16, {}, {0, 5, 4}},  // in full, [C, H, W]
    };
    for (const auto& c : cfgs)
        for (bool blocked : {false, true}) {
            const shape_t xs{2, 3, 5, 4};
            const int64_t ch = blocked ? 16 : 3;
            graph_builder b(xs, c.opset);
            std::vector<std::string> ins{feed(b, blocked, 3, ch, rng)};
            if (!c.slope.empty()) {
                shape_t ss = c.slope;
                if (ss.size() == 3) ss[0] = ch;
                ins.push_back(b.random_constant("slope", ss, rng, 0.05, 0.5));
            }
            b.add(c.op, ins, "y", c.at);
            const graph g = b.finish("y");
            // [-4, 4]: past HardSwish's kinks at -3 and 3 and HardSigmoid's at -2.5 and 2.5 (1.25, -1.67 for alpha 0.3).
            const tensor x = random_tensor(rng, xs, -4, 4);
            std::ostringstream label;
            label << c.op << " opset " << c.opset << " attrs " << c.at.size() << " slope " << to_string(c.slope) << (blocked ? " blocked" : "");
            s.run(label.str(), g, x, {backward_rule::gradient, backward_rule::gradient});
            check_nonrelu_policy(label.str(), g, x, g.nodes.back().name, policy_err);
        }
    // Pow with a constant exponent and Sqrt: exact under every rule. Positive inputs for the
    // fractional exponents and Sqrt; inputs in [0.5, 2] keep x^-1 and 1/(2 sqrt x) moderate.
    struct pow_cfg { double exponent; bool integer; shape_t shape; };
    for (const auto& p : {pow_cfg{2, false, {}}, pow_cfg{2, true, {}}, pow_cfg{3, false, {1}}, pow_cfg{0.5, false, {}},
                          pow_cfg{-1, false, {1, 1, 1, 1}}, pow_cfg{1.5, false, {}}, pow_cfg{0, false, {}}})
        for (bool blocked : {false, true}) {
            const shape_t xs{2, 3, 5, 4};
            graph_builder b(xs, 15);
            const std::string src = blocked ? positive_feed(b, 3, 16, rng) : "x";
            if (p.integer) b.int_constant("e", {static_cast<int64_t>(p.exponent)});
            else b.constant("e", p.shape, {p.exponent});
            b.add("Pow", {src, "e"}, "y");
            s.run("Pow " + std::to_string(p.exponent) + (p.integer ? " int" : "") + " shape " + to_string(p.shape) + (blocked ? " blocked" : ""),
                  b.finish("y"), random_tensor(rng, xs, 0.5, 2),
                  {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided});
        }
    for (bool blocked : {false, true}) {
        const shape_t xs{2, 3, 5, 4};
        graph_builder b(xs);
        b.add("Sqrt", {blocked ? positive_feed(b, 3, 16, rng) : "x"}, "y");
        s.run(std::string("Sqrt") + (blocked ? " blocked" : ""), b.finish("y"), random_tensor(rng, xs, 0.5, 2),
              {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided});
    }
    {
        graph_builder b({2, 3}, 15);
        b.add("Pow", {b.constant("base", {2, 3}, {1, 2, 3, 4, 5, 6}), "x"}, "y");
        s.refuses("an activation as the exponent", b.finish("y"), random_tensor(rng, {2, 3}), false);
    }
    BOOST_TEST_MESSAGE("nonrelu policy: max rel L2 from the gradient " << policy_err);
}

// LayerNormalization, and the decomposed form older exporters write (ReduceMean, Sub, Pow 2,
// ReduceMean, Add epsilon, Sqrt, Div, Mul scale, Add bias): exact ops only, so all three rules in one
// stacked pass must give the gradient.
BOOST_AUTO_TEST_CASE(layer_norm_whole_and_decomposed) {
    sweep s("LayerNormalization/decomposed");
    std::mt19937 rng(117);
    const std::vector<backward_rule> three{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};
    const shape_t xs{2, 3, 5, 4};
    for (int64_t axis : {-1, 1, 2, 0})
        for (bool blocked : {false, true})
            for (int bias : {0, 1}) {
                const int64_t ch = blocked ? 16 : 3;
                graph_builder b(xs, 17);
                const std::string src = feed(b, blocked, 3, ch, rng);
                const shape_t fed{2, ch, 5, 4};
                const size_t a = static_cast<size_t>(axis < 0 ? axis + 4 : axis);
                shape_t normalised(fed.begin() + static_cast<long>(a), fed.end());
                if (bias) normalised.front() = 1; // a Scale that broadcasts along the first normalised axis
                std::vector<std::string> ins{src, b.random_constant("scale", normalised, rng, 0.5, 1.5)};
                if (bias) ins.push_back(b.random_constant("bias", {fed.back()}, rng));
                b.add("LayerNormalization", ins, "y", {{"axis", attr_int(axis)}, {"epsilon", attr_float(1e-3)}});
                s.run(label_of({{"LayerNormalization axis", std::to_string(axis)}, {"blocked", blocked ? "1" : "0"},
                                {"bias", std::to_string(bias)}}),
                      b.finish("y"), random_tensor(rng, xs), three);
            }
    {
        graph_builder b(xs, 17);
        b.random_constant("scale", {4}, rng);
        b.add("LayerNormalization", {"x", "scale"}, "y");
        graph g = b.finish("y");
        g.nodes.back().outputs.push_back("mean");
        s.refuses("the Mean output", g, random_tensor(rng, xs), false);
    }
    // Decomposed over the last axis and over the channels (ConvNeXt-style, NCHW), opsets 13 and 18
    // (axes attribute, axes input).
    for (int64_t axis : {-1, 1})
        for (int64_t opset : {13, 18})
            for (bool blocked : {false, true}) {
                const int64_t ch = blocked ? 16 : 3;
                graph_builder b(xs, opset);
                const std::string src = feed(b, blocked, 3, ch, rng);
                auto mean = [&](const std::string& in, const std::string& out) {
                    if (opset >= 18) b.add("ReduceMean", {in, b.int_constant(out + "_axes", {axis})}, out);
                    else b.add("ReduceMean", {in}, out, {{"axes", attr_ints({axis})}});
                };
                mean(src, "mu");
                b.add("Sub", {src, "mu"}, "centred");
                b.add("Pow", {"centred", b.constant("two", {}, {2.0})}, "sq");
                mean("sq", "var");
                b.add("Add", {"var", b.constant("eps", {}, {1e-3})}, "var_eps");
                b.add("Sqrt", {"var_eps"}, "std");
                b.add("Div", {"centred", "std"}, "normed");
                const shape_t param = axis == -1 ? shape_t{4} : shape_t{ch, 1, 1};
                b.add("Mul", {"normed", b.random_constant("gamma", param, rng, 0.5, 1.5)}, "scaled");
                b.add("Add", {"scaled", b.random_constant("beta", param, rng)}, "y");
                s.run(label_of({{"decomposed axis", std::to_string(axis)}, {"opset", std::to_string(opset)}, {"blocked", blocked ? "1" : "0"}}),
                      b.finish("y"), random_tensor(rng, xs), three);
            }
}

BOOST_AUTO_TEST_CASE(conv_transpose) {
    sweep s("ConvTranspose");
    std::mt19937 rng(131);
    const std::vector<backward_rule> three{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};
    struct cfg { int64_t groups, stride, dilation, out_pad; std::string pad; };
    const std::vector<cfg> cases = {
        {1, 1, 1, 0, "none"}, {1, 2, 1, 0, "none"}, {1, 2, 1, 1, "none"}, {1, 2, 1, 1, "asym"}, {1, 3, 1, 2, "asym"},
        {2, 2, 1, 0, "none"}, {4, 2, 1, 1, "asym"}, {1, 1, 2, 0, "asym"}, {2, 2, 2, 1, "none"}, {1, 2, 1, 0, "SAME_UPPER"},
        {1, 2, 1, 0, "SAME_LOWER"}, {1, 2, 1, 0, "VALID"}, {1, 2, 1, 1, "output_shape"}, {2, 1, 1, 0, "output_shape"}};
    for (const auto& c : cases)
        for (bool blocked : {false, true})
            for (bool bias : {false, true}) {
                const shape_t xs{2, 4, 5, 6};
                graph_builder b(xs);
                const std::string in = feed(b, blocked, 4, 4, rng);
                const int64_t out_cg = c.groups == 4 ? 2 : 3;
                b.random_constant("w", {4, out_cg, 3, 2}, rng);
                std::vector<std::string> ins{in, "w"};
                if (bias) ins.push_back(b.random_constant("b", {out_cg * c.groups}, rng));
                std::map<std::string, attribute> at{{"group", attr_int(c.groups)}, {"strides", attr_ints({c.stride, c.stride})},
                                                    {"dilations", attr_ints({c.dilation, c.dilation})},
                                                    {"output_padding", attr_ints({c.out_pad, c.out_pad})}};
                if (c.pad == "asym") at["pads"] = attr_ints({1, 0, 0, 1});
                else if (c.pad == "output_shape") at["output_shape"] = c.stride == 2 ? attr_ints({9, 11}) : attr_ints({6, 6});
                else if (c.pad != "none") at["auto_pad"] = attr_string(c.pad);
                b.add("ConvTranspose", ins, "y", at);
                s.run(label_of({{"group", std::to_string(c.groups)}, {"stride", std::to_string(c.stride)},
                                {"dilation", std::to_string(c.dilation)}, {"output_padding", std::to_string(c.out_pad)}, {"pad", c.pad},
                                {"blocked", blocked ? "1" : "0"}, {"bias", bias ? "1" : "0"}}),
                      b.finish("y"), random_tensor(rng, xs), three);
            }
    graph_builder big({1, 2, 3, 3});
    big.random_constant("w", {2, 1, 3, 3}, rng);
    big.add("ConvTranspose", {"x", "w"}, "y", {{"output_shape", attr_ints({9, 9})}});
    s.refuses("output_shape beyond the full output", big.finish("y"), random_tensor(rng, {1, 2, 3, 3}), false);
}

// MatMul of two activations (attention: Q·Kᵀ, then P·V), both factors differentiated.
BOOST_AUTO_TEST_CASE(matmul_of_two_activations) {
    sweep s("MatMul of two activations");
    std::mt19937 rng(132);
    const std::vector<backward_rule> three{backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided};
    for (int64_t batch : {1, 2})
        for (int variant = 0; variant < 3; ++variant) {
            const shape_t xs{batch, 3, 4, 5};
            graph_builder b(xs);
            b.random_constant("wq", {5, 5}, rng);
            b.random_constant("wk", {5, 5}, rng);
            b.add("MatMul", {"x", "wq"}, "q");
            b.add("MatMul", {"x", "wk"}, "k");
            b.add("Transpose", {"k"}, "kt", {{"perm", attr_ints({0, 1, 3, 2})}});
            if (variant == 0) {
                b.add("MatMul", {"q", "kt"}, "y"); // [b,3,4,4]
            } else if (variant == 1) {
                b.add("MatMul", {"q", "kt"}, "scores");
                b.add("Softmax", {"scores"}, "p", {{"axis", attr_int(-1)}});
                b.add("MatMul", {"p", "x"}, "y"); // P·V with V the input itself
            } else {
                b.add("MatMul", {"x", "kt"}, "y"); // the same tensor on the left and (through K) on the right
            }
            s.run(label_of({{"batch", std::to_string(batch)}, {"variant", std::to_string(variant)}}), b.finish("y"), random_tensor(rng, xs),
                  three);
        }
    graph_builder bc({2, 3, 4});
    bc.random_constant("w", {3, 4, 4}, rng);
    bc.add("Relu", {"x"}, "r");
    bc.add("Reshape", {"r", bc.int_constant("s", {1, 2, 3, 4})}, "r4");
    bc.add("Reshape", {"x", bc.int_constant("s2", {2, 1, 4, 3})}, "x4");
    bc.add("MatMul", {"r4", "x4"}, "y");
    s.refuses("broadcast batch axes", bc.finish("y"), random_tensor(rng, {2, 3, 4}), false);
}

BOOST_AUTO_TEST_SUITE_END()
