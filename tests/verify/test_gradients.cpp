// Backward of every reference op against central finite differences of <seed, output>, over sweeps
// of shapes and attributes (see check_gradient in support.hpp for the tolerance argument).
#include "support.hpp"

#include <boost/test/unit_test.hpp>

using namespace deepinside;
using namespace deepinside::verify;
using namespace deepinside::verify::testing;

namespace {
std::vector<double> random_values(std::mt19937& rng, int64_t count) {
    return random_tensor(rng, {count}).data;
}
} // namespace

BOOST_AUTO_TEST_SUITE(gradients)

BOOST_AUTO_TEST_CASE(conv_sweep) {
    std::mt19937 rng(1);
    const int64_t channels = 4;
    for (int64_t group : {int64_t(1), int64_t(2), channels})
        for (int64_t dilation : {1, 2})
            for (int64_t stride : {1, 2})
                for (const char* auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"})
                    for (int64_t pad : {0, 1}) {
                        if (pad && std::string(auto_pad) != "NOTSET") continue;
                        BOOST_TEST_CONTEXT("group " << group << " dilation " << dilation << " stride " << stride
                                                    << " auto_pad " << auto_pad << " pad " << pad) {
                            const int64_t out_c = group == channels ? 2 * channels : 6;
                            graph_builder b({2, channels, 6, 7});
                            b.constant("w", {out_c, channels / group, 3, 2}, random_values(rng, out_c * channels / group * 6));
                            b.constant("b", {out_c}, random_values(rng, out_c));
                            std::map<std::string, attribute> attrs{{"group", attr_int(group)},
                                                                   {"dilations", attr_ints({dilation, dilation})},
                                                                   {"strides", attr_ints({stride, stride})},
                                                                   {"auto_pad", attr_string(auto_pad)}};
                            if (pad) attrs["pads"] = attr_ints({1, 0, 1, 1});
                            b.add("Conv", {"x", "w", pad ? "b" : ""}, "y", attrs);
                            check_gradient(b.finish("y"), random_tensor(rng, {2, channels, 6, 7}), rng, 80);
                        }
                    }
}

BOOST_AUTO_TEST_CASE(conv_weight_and_bias) {
    std::mt19937 rng(2);
    // The weight as the network input: y = Conv(X0, reshape(x), b).
    graph_builder w({2 * 2 * 3 * 3}, 13);
    w.constant("x0", {1, 4, 5, 5}, random_values(rng, 100));
    w.int_constant("s", {2, 2, 3, 3});
    w.add("Reshape", {"x", "s"}, "w");
    w.add("Conv", {"x0", "w"}, "y", {{"group", attr_int(2)}, {"pads", attr_ints({1, 1, 0, 0})}, {"strides", attr_ints({2, 1})}});
    check_gradient(w.finish("y"), random_tensor(rng, {36}), rng);
    graph_builder b({3}, 13);
    b.constant("x0", {1, 2, 4, 4}, random_values(rng, 32));
    b.constant("w", {3, 2, 2, 2}, random_values(rng, 24));
    b.add("Conv", {"x0", "w", "x"}, "y");
    check_gradient(b.finish("y"), random_tensor(rng, {3}), rng);
}

BOOST_AUTO_TEST_CASE(pool_sweep) {
    std::mt19937 rng(3);
    for (const char* op : {"MaxPool", "AveragePool"})
        for (int64_t kernel : {2, 3})
            for (int64_t stride : {1, 2})
                for (int64_t dilation : {1, 2})
                    for (int64_t ceil : {0, 1})
                        for (const char* auto_pad : {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"})
                            for (int64_t pad : {0, 1}) {
                                if (pad && std::string(auto_pad) != "NOTSET") continue;
                                const bool max = std::string(op) == "MaxPool";
                                BOOST_TEST_CONTEXT(op << " kernel " << kernel << " stride " << stride << " dilation "
                                                      << dilation << " ceil " << ceil << " auto_pad " << auto_pad
                                                      << " pad " << pad) {
                                    graph_builder b({1, 2, 7, 6}, 19);
                                    std::map<std::string, attribute> attrs{
                                        {"kernel_shape", attr_ints({kernel, kernel})},
                                        {"strides", attr_ints({stride, stride})},
                                        {"dilations", attr_ints({dilation, dilation})},
                                        {"ceil_mode", attr_int(ceil)},
                                        {"auto_pad", attr_string(auto_pad)}};
                                    if (pad) attrs["pads"] = attr_ints({1, 1, 0, 1});
                                    if (!max) attrs["count_include_pad"] = attr_int(pad);
                                    b.add(op, {"x"}, "y", attrs);
                                    // Distinct values keep max pooling away from ties.
                                    check_gradient(b.finish("y"), random_distinct(rng, {1, 2, 7, 6}), rng, 84);
                                }
                            }
}

BOOST_AUTO_TEST_CASE(global_pools) {
    std::mt19937 rng(4);
    for (const char* op : {"GlobalAveragePool", "GlobalMaxPool"}) {
        graph_builder b({2, 3, 4, 5});
        b.add(op, {"x"}, "y");
        check_gradient(b.finish("y"), random_distinct(rng, {2, 3, 4, 5}), rng);
    }
}

BOOST_AUTO_TEST_CASE(unary_nonlinearities) {
    std::mt19937 rng(5);
    const shape_t shape{2, 3, 4};
    for (const char* op : {"Relu", "LeakyRelu", "Elu", "Selu", "Sigmoid", "Tanh", "Identity", "Dropout"}) {
        BOOST_TEST_CONTEXT(op) {
            graph_builder b(shape);
            b.add(op, {"x"}, "y", std::string(op) == "Elu" ? std::map<std::string, attribute>{{"alpha", attr_float(0.7)}}
                                                           : std::map<std::string, attribute>{});
            check_gradient(b.finish("y"), random_away_from_zero(rng, shape), rng);
        }
    }
    // Clip on [-0.5, 0.5], inputs kept at least 0.05 away from both bounds; attribute and input forms.
    dtensor x = random_away_from_zero(rng, shape);
    for (double& v : x.data)
        if (std::fabs(std::fabs(v) - 0.5) < 0.05) v *= 1.3;
    graph_builder c6(shape, 6);
    c6.add("Clip", {"x"}, "y", {{"min", attr_float(-0.5)}, {"max", attr_float(0.5)}});
    check_gradient(c6.finish("y"), x, rng);
    graph_builder c13(shape, 13);
    c13.constant("lo", {}, {-0.5});
    c13.constant("hi", {}, {0.5});
    c13.add("Clip", {"x", "lo", "hi"}, "y");
    check_gradient(c13.finish("y"), x, rng);
}

BOOST_AUTO_TEST_CASE(gemm_all_operands) {
    std::mt19937 rng(6);
    const int64_t m = 3, k = 4, n = 5;
    for (int64_t ta : {0, 1})
        for (int64_t tb : {0, 1})
            for (const shape_t& c_shape : {shape_t{n}, shape_t{m, n}, shape_t{1, n}, shape_t{m, 1}, shape_t{}})
                for (int operand : {0, 1, 2}) {
                    BOOST_TEST_CONTEXT("transA " << ta << " transB " << tb << " C " << to_string(c_shape)
                                                 << " operand " << operand) {
                        const shape_t a_shape = ta ? shape_t{k, m} : shape_t{m, k};
                        const shape_t b_shape = tb ? shape_t{n, k} : shape_t{k, n};
                        const shape_t shapes[3] = {a_shape, b_shape, c_shape};
                        graph_builder g(shapes[operand], 13);
                        std::vector<std::string> inputs;
                        for (int i = 0; i < 3; ++i) {
                            const std::string name = std::string("c") + char('0' + i);
                            if (i == operand) {
                                inputs.push_back("x");
                            } else {
                                g.constant(name, shapes[i], random_values(rng, element_count(shapes[i])));
                                inputs.push_back(name);
                            }
                        }
                        g.add("Gemm", inputs, "y",
                              {{"transA", attr_int(ta)}, {"transB", attr_int(tb)}, {"alpha", attr_float(0.75)},
                               {"beta", attr_float(-1.5)}});
                        check_gradient(g.finish("y"), random_tensor(rng, shapes[operand]), rng);
                    }
                }
}

BOOST_AUTO_TEST_CASE(matmul_shapes) {
    std::mt19937 rng(7);
    const std::vector<std::pair<shape_t, shape_t>> cases = {
        {{3, 4}, {4, 2}}, {{2, 1, 3, 4}, {5, 4, 2}}, {{4}, {4, 2}}, {{3, 4}, {4}}, {{2, 3, 4}, {4, 3}}, {{4}, {2, 4, 3}}};
    for (const auto& [a, b] : cases)
        for (int operand : {0, 1}) {
            BOOST_TEST_CONTEXT(to_string(a) << " x " << to_string(b) << " operand " << operand) {
                graph_builder g(operand == 0 ? a : b);
                const shape_t& other = operand == 0 ? b : a;
                g.constant("c", other, random_values(rng, element_count(other)));
                g.add("MatMul", operand == 0 ? std::vector<std::string>{"x", "c"} : std::vector<std::string>{"c", "x"}, "y");
                check_gradient(g.finish("y"), random_tensor(rng, operand == 0 ? a : b), rng);
            }
        }
    // Both operands from the input: y = x @ tanh(x) on a batched square.
    graph_builder sq({2, 3, 3});
    sq.add("Tanh", {"x"}, "t");
    sq.add("MatMul", {"x", "t"}, "y");
    check_gradient(sq.finish("y"), random_tensor(rng, {2, 3, 3}), rng);
}

BOOST_AUTO_TEST_CASE(binary_broadcasting) {
    std::mt19937 rng(8);
    const shape_t x_shape{2, 3, 4};
    for (const char* op : {"Add", "Sub", "Mul", "Div"})
        for (const shape_t& c_shape : {shape_t{3, 1}, shape_t{4}, shape_t{}, shape_t{2, 3, 4}, shape_t{5, 1, 1, 1}})
            for (bool x_first : {true, false}) {
                BOOST_TEST_CONTEXT(op << " with constant " << to_string(c_shape) << (x_first ? " second" : " first")) {
                    graph_builder g(x_shape);
                    // Divisors stay away from zero.
                    g.constant("c", c_shape, random_away_from_zero(rng, c_shape).data);
                    g.add(op, x_first ? std::vector<std::string>{"x", "c"} : std::vector<std::string>{"c", "x"}, "y");
                    check_gradient(g.finish("y"), random_away_from_zero(rng, x_shape), rng);
                }
            }
    // Two activations broadcast against each other: x [2,3,4] op mean(x, axis 1) [2,1,4] (and reversed).
    for (const char* op : {"Add", "Sub", "Mul", "Div"})
        for (bool x_first : {true, false}) {
            BOOST_TEST_CONTEXT(op << " of two activations, x " << (x_first ? "first" : "second")) {
                graph_builder g(x_shape);
                g.add("ReduceMean", {"x"}, "m0", {{"axes", attr_ints({1})}});
                g.add("Sigmoid", {"m0"}, "m1");
                g.add("Add", {"m1", "m1"}, "m"); // in (0, 2): a safe divisor
                g.add(op, x_first ? std::vector<std::string>{"x", "m"} : std::vector<std::string>{"m", "x"}, "y");
                check_gradient(g.finish("y"), random_away_from_zero(rng, x_shape), rng);
            }
        }
}

BOOST_AUTO_TEST_CASE(shape_ops) {
    std::mt19937 rng(9);
    const shape_t s{2, 1, 3, 2};
    const dtensor x = random_tensor(rng, s);
    {
        graph_builder g(s);
        g.int_constant("t", {0, -1});
        g.add("Reshape", {"x", "t"}, "r");
        g.add("Tanh", {"r"}, "y"); // a nonlinearity after, so position matters
        check_gradient(g.finish("y"), x, rng);
    }
    {
        graph_builder g(s);
        g.add("Flatten", {"x"}, "f", {{"axis", attr_int(2)}});
        g.add("Squeeze", {"f"}, "q"); // nothing to squeeze: [2, 6]
        g.int_constant("a", {0, 3});
        g.add("Unsqueeze", {"q", "a"}, "u");
        g.add("Tanh", {"u"}, "y");
        check_gradient(g.finish("y"), x, rng);
    }
    for (int64_t axis : {0, 1, 2, -1}) {
        graph_builder g(s);
        g.add("Sigmoid", {"x"}, "sx");
        shape_t k_shape = s;
        k_shape[static_cast<size_t>(axis < 0 ? axis + 4 : axis)] = 2;
        g.constant("k", k_shape, random_values(rng, element_count(k_shape)));
        g.add("Concat", {"x", "k", "sx"}, "c", {{"axis", attr_int(axis)}});
        g.add("Tanh", {"c"}, "y");
        check_gradient(g.finish("y"), x, rng);
    }
    for (const std::vector<int64_t>& pads : {std::vector<int64_t>{0, 0, 1, 2, 1, 0, 0, 1}, std::vector<int64_t>{0, 0, -1, 1, 0, 0, 0, -1}}) {
        graph_builder g(s, 11);
        g.int_constant("p", pads);
        g.constant("v", {}, {0.25});
        g.add("Pad", {"x", "p", "v"}, "pd");
        g.add("Tanh", {"pd"}, "y");
        check_gradient(g.finish("y"), x, rng);
    }
    for (const std::vector<int64_t>& axes : {std::vector<int64_t>{1}, std::vector<int64_t>{0, 2}, std::vector<int64_t>{-1}, std::vector<int64_t>{}})
        for (int64_t keep : {0, 1}) {
            graph_builder g(s, 18);
            std::vector<std::string> inputs{"x"};
            if (!axes.empty()) inputs.push_back(g.int_constant("a", axes));
            g.add("ReduceMean", inputs, "m", {{"keepdims", attr_int(keep)}});
            g.add("Tanh", {"m"}, "y");
            check_gradient(g.finish("y"), x, rng);
        }
}

BOOST_AUTO_TEST_CASE(normalisation) {
    std::mt19937 rng(10);
    {
        graph_builder g({2, 3, 2, 2});
        g.constant("s", {3}, random_values(rng, 3));
        g.constant("b", {3}, random_values(rng, 3));
        g.constant("m", {3}, random_values(rng, 3));
        g.constant("v", {3}, random_tensor(rng, {3}, 0.5, 2).data);
        g.add("BatchNormalization", {"x", "s", "b", "m", "v"}, "y");
        check_gradient(g.finish("y"), random_tensor(rng, {2, 3, 2, 2}), rng);
    }
    for (int64_t size : {1, 2, 3, 4, 5}) {
        BOOST_TEST_CONTEXT("LRN size " << size) {
            graph_builder g({2, 6, 2, 3});
            g.add("LRN", {"x"}, "y", {{"size", attr_int(size)}, {"alpha", attr_float(0.3)}, {"beta", attr_float(0.75)},
                                      {"bias", attr_float(1.5)}});
            check_gradient(g.finish("y"), random_tensor(rng, {2, 6, 2, 3}, -2, 2), rng);
        }
    }
}

BOOST_AUTO_TEST_CASE(softmax_family) {
    std::mt19937 rng(11);
    for (const char* op : {"Softmax", "LogSoftmax"})
        for (int64_t opset : {11, 13})
            for (int64_t axis : {0, 1, 2, -1}) {
                BOOST_TEST_CONTEXT(op << " opset " << opset << " axis " << axis) {
                    graph_builder g({2, 3, 4}, opset);
                    g.add(op, {"x"}, "y", {{"axis", attr_int(axis)}});
                    check_gradient(g.finish("y"), random_tensor(rng, {2, 3, 4}, -3, 3), rng);
                }
            }
}

BOOST_AUTO_TEST_CASE(small_network_with_fan_out) {
    // conv -> relu -> (maxpool, avgpool) -> add -> flatten -> gemm -> softmax, the input also feeding a
    // second branch: fan-out at the input and at the ReLU must sum.
    std::mt19937 rng(12);
    graph_builder g({1, 2, 6, 6});
    g.constant("w", {3, 2, 3, 3}, random_values(rng, 54));
    g.constant("b", {3}, random_values(rng, 3));
    g.add("Conv", {"x", "w", "b"}, "c", {{"pads", attr_ints({1, 1, 1, 1})}});
    g.add("Relu", {"c"}, "r");
    g.add("MaxPool", {"r"}, "mp", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    g.add("AveragePool", {"r"}, "ap", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    g.add("Add", {"mp", "ap"}, "s");
    g.add("Flatten", {"s"}, "f");
    g.add("GlobalAveragePool", {"x"}, "gx");
    g.add("Flatten", {"gx"}, "fx");
    g.add("Concat", {"f", "fx"}, "cat", {{"axis", attr_int(1)}});
    g.constant("fc", {4, 29}, random_values(rng, 116));
    g.add("Gemm", {"cat", "fc"}, "logits", {{"transB", attr_int(1)}});
    g.add("Softmax", {"logits"}, "y");
    const graph net = g.finish("y");
    // Check the whole graph at several random points; a kink hit by chance would show as one outlier.
    for (int trial = 0; trial < 3; ++trial) check_gradient(net, random_tensor(rng, {1, 2, 6, 6}), rng);
}

// The routing ops (ref_layout.cpp), each followed by a Tanh so that where a value lands matters
// to the gradient, not only that it lands somewhere.
namespace {
/// `g` with the outputs of its Split node set to `outputs` (graph_builder writes one output per node).
graph with_split_outputs(graph g, const std::vector<std::string>& outputs) {
    for (auto& n : g.nodes)
        if (n.op_type == "Split") n.outputs = outputs;
    return g;
}
} // namespace

BOOST_AUTO_TEST_CASE(layout_ops) {
    std::mt19937 rng(13);
    const shape_t s{2, 3, 4, 5};
    const dtensor x = random_tensor(rng, s);
    for (const std::vector<int64_t>& perm : {std::vector<int64_t>{0, 2, 3, 1}, std::vector<int64_t>{3, 1, 0, 2}, std::vector<int64_t>{},
                                             std::vector<int64_t>{0, -1, 1, 2}})
        BOOST_TEST_CONTEXT("Transpose perm " << perm.size()) {
            graph_builder g(s);
            std::map<std::string, attribute> at;
            if (!perm.empty()) at["perm"] = attr_ints(perm);
            g.add("Transpose", {"x"}, "t", at);
            g.add("Tanh", {"t"}, "y");
            check_gradient(g.finish("y"), x, rng);
        }
    struct slice_case { std::vector<int64_t> starts, ends, axes, steps; };
    const std::vector<slice_case> slices = {
        {{1}, {3}, {2}, {}},                         // one axis, step 1
        {{0, 1}, {2, -1}, {1, 3}, {2, 1}},           // negative end, step 2
        {{-1}, {-1000}, {3}, {-2}},                  // backwards from the end, clamped below
        {{3, 100}, {0, -100}, {-1, 2}, {-1, -1}},    // two negative steps, clamped starts
        {{0}, {1000}, {0}, {}},                      // the batch axis, clamped end
    };
    for (int64_t opset : {1, 10, 13})
        for (const auto& c : slices) {
            if (opset == 1 && std::any_of(c.steps.begin(), c.steps.end(), [](int64_t v) { return v != 1; })) continue;
            BOOST_TEST_CONTEXT("Slice opset " << opset << " starts " << c.starts.front() << " axes " << c.axes.front()) {
                graph_builder g(s, opset);
                std::vector<std::string> ins{"x"};
                std::map<std::string, attribute> at;
                if (opset == 1) {
                    at = {{"starts", attr_ints(c.starts)}, {"ends", attr_ints(c.ends)}, {"axes", attr_ints(c.axes)}};
                } else {
                    ins = {"x", g.int_constant("st", c.starts), g.int_constant("en", c.ends), g.int_constant("ax", c.axes)};
                    if (!c.steps.empty()) ins.push_back(g.int_constant("sp", c.steps));
                }
                g.add("Slice", ins, "sl", at);
                g.add("Tanh", {"sl"}, "y");
                check_gradient(g.finish("y"), x, rng);
            }
        }
    // Split into three (one part unused), concatenated back in another order.
    struct split_case { int64_t opset; int64_t axis; std::vector<int64_t> split; bool num_outputs; };
    for (const auto& c : {split_case{11, 1, {1, 1, 1}, false}, split_case{11, 3, {}, false}, split_case{13, 2, {2, 1, 1}, false},
                          split_case{13, -1, {3, 0, 2}, false}, split_case{18, 3, {}, true}, split_case{18, 0, {}, false}})
        BOOST_TEST_CONTEXT("Split opset " << c.opset << " axis " << c.axis << " parts " << c.split.size()) {
            const shape_t xs = c.num_outputs ? shape_t{2, 3, 4, 7} : c.axis == 3 ? shape_t{2, 3, 4, 6} : c.axis == 0 ? shape_t{3, 2, 2, 2} : s;
            graph_builder g(xs, c.opset);
            std::vector<std::string> ins{"x"};
            std::map<std::string, attribute> at{{"axis", attr_int(c.axis)}};
            if (c.num_outputs) at["num_outputs"] = attr_int(3);
            else if (!c.split.empty() && c.opset < 13) at["split"] = attr_ints(c.split);
            else if (!c.split.empty()) ins.push_back(g.int_constant("parts", c.split));
            g.add("Split", ins, "p0", at);
            g.add("Concat", {"p2", "p0"}, "c", {{"axis", attr_int(c.axis)}});
            g.add("Tanh", {"c"}, "y");
            // axis 3 of length 7 in 3 parts (num_outputs 3): 3, 3, 1.
            check_gradient(with_split_outputs(g.finish("y"), {"p0", "p1", "p2"}), random_tensor(rng, xs), rng);
        }
    // Gather: any axis, repeated and negative indices, a scalar index (rank drops), a 2-D index.
    struct gather_case { int64_t axis; shape_t index_shape; std::vector<int64_t> indices; };
    for (const auto& c : {gather_case{1, {4}, {2, 0, -1, 2}}, gather_case{3, {}, {-2}}, gather_case{0, {1}, {1}},
                          gather_case{2, {2, 2}, {3, 3, 0, -4}}, gather_case{-1, {3}, {4, 0, 1}}})
        BOOST_TEST_CONTEXT("Gather axis " << c.axis << " indices " << to_string(c.index_shape)) {
            graph_builder g(s);
            g.int_constant("i", c.indices);
            g.add("Gather", {"x", "i"}, "ga", {{"axis", attr_int(c.axis)}});
            g.add("Tanh", {"ga"}, "y");
            graph gr = g.finish("y");
            gr.constants["i"].shape = c.index_shape; // int_constant writes 1-D
            check_gradient(gr, x, rng);
        }
    // Expand: to more axes, along axes of length 1, and a shape smaller than the input (numpy rules).
    for (const auto& [in, target] : std::vector<std::pair<shape_t, std::vector<int64_t>>>{
             {{2, 1, 3, 1}, {2, 4, 3, 5}}, {{2, 3, 1}, {4, 1, 3, 2}}, {{2, 3}, {1, 1}}, {{2, 1}, {3, 2, 4}}})
        BOOST_TEST_CONTEXT("Expand " << to_string(in)) {
            graph_builder g(in, 13);
            g.int_constant("shape", target);
            g.add("Expand", {"x", "shape"}, "e");
            g.add("Tanh", {"e"}, "y");
            check_gradient(g.finish("y"), random_tensor(rng, in), rng);
        }
    // Where: a constant mask broadcast against an activation and a constant, or two activations.
    for (int variant = 0; variant < 4; ++variant)
        BOOST_TEST_CONTEXT("Where variant " << variant) {
            graph_builder g(s);
            const shape_t mask_shape = variant == 2 ? shape_t{3, 1, 5} : shape_t{1, 1, 4, 5};
            std::vector<double> mask(static_cast<size_t>(element_count(mask_shape)));
            for (double& m : mask) m = rng() % 2;
            g.constant("mask", mask_shape, mask);
            g.constant("fill", variant == 1 ? shape_t{5} : shape_t{}, random_values(rng, variant == 1 ? 5 : 1));
            g.add("Sigmoid", {"x"}, "sx");
            std::vector<std::string> ins = variant == 0 ? std::vector<std::string>{"mask", "x", "fill"}
                                         : variant == 1 ? std::vector<std::string>{"mask", "fill", "x"}
                                                        : std::vector<std::string>{"mask", "x", "sx"};
            if (variant == 3) { // an activation that broadcasts: a mean over axis 1
                g.add("ReduceMean", {"x"}, "m", {{"axes", attr_ints({1})}});
                ins = {"mask", "m", "x"};
            }
            g.add("Where", ins, "w");
            g.add("Tanh", {"w"}, "y");
            check_gradient(g.finish("y"), x, rng);
        }
}

BOOST_AUTO_TEST_CASE(resize_and_upsample) {
    std::mt19937 rng(14);
    const shape_t s{1, 2, 3, 4};
    const dtensor x = random_tensor(rng, s);
    const std::vector<std::string> transforms = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn"};
    for (const std::string mode : {"nearest", "linear"})
        for (const auto& t : transforms)
            for (const std::vector<double>& scales : {std::vector<double>{1, 1, 2, 1.5}, std::vector<double>{1, 1, 0.67, 0.5}})
                for (const std::string rounding : {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"}) {
                    if (mode == "linear" && rounding != "floor") continue;
                    BOOST_TEST_CONTEXT(mode << " " << t << " " << rounding << " scale " << scales[2]) {
                        graph_builder g(s, t == "tf_half_pixel_for_nn" ? 11 : 13); // Resize-13 dropped it
                        g.constant("scales", {4}, scales);
                        g.add("Resize", {"x", "", "scales"}, "r",
                              {{"mode", attr_string(mode)}, {"coordinate_transformation_mode", attr_string(t)},
                               {"nearest_mode", attr_string(rounding)}});
                        g.add("Tanh", {"r"}, "y");
                        check_gradient(g.finish("y"), x, rng);
                    }
                }
    // Sizes instead of scales (opset 11 with an empty scales tensor), opset 18's axes, Upsample.
    for (const std::string mode : {"nearest", "linear"}) {
        graph_builder g(s, 11);
        g.constant("roi", {0}, {});
        g.constant("no_scales", {0}, {});
        g.int_constant("sizes", {1, 2, 7, 3});
        g.add("Resize", {"x", "roi", "no_scales", "sizes"}, "r", {{"mode", attr_string(mode)}});
        g.add("Tanh", {"r"}, "y");
        check_gradient(g.finish("y"), x, rng);
        graph_builder a(s, 18);
        a.int_constant("sizes", {5, 2});
        a.add("Resize", {"x", "", "", "sizes"}, "r", {{"mode", attr_string(mode)}, {"axes", attr_ints({2, 3})}});
        a.add("Tanh", {"r"}, "y");
        check_gradient(a.finish("y"), x, rng);
        graph_builder u(s, 9);
        u.constant("scales", {4}, {1, 1, 2, 3});
        u.add("Upsample", {"x", "scales"}, "r", {{"mode", attr_string(mode)}});
        u.add("Tanh", {"r"}, "y");
        check_gradient(u.finish("y"), x, rng);
    }
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(gradients)

// HardSigmoid, HardSwish, Erf, Gelu (both forms), PRelu (three slope shapes): inputs in [-4, 4] so
// that the flat parts of the hard ramps are exercised, kept 0.05 from every kink.
BOOST_AUTO_TEST_CASE(newer_nonlinearities) {
    std::mt19937 rng(13);
    const shape_t shape{2, 3, 4};
    dtensor x = random_tensor(rng, shape, -4, 4);
    for (double& v : x.data)
        for (double kink : {-3.0, 3.0, -2.5, 2.5, 0.0, -0.4 / 0.3, 0.6 / 0.3}) // the ramps' ends, PRelu's 0
            if (std::fabs(v - kink) < 0.05) v += 0.1;
    struct cfg { const char* op; int64_t opset; std::map<std::string, attribute> at; shape_t slope; };
    const std::vector<cfg> cfgs = {
        {"HardSigmoid", 6, {}, {}},
        {"HardSigmoid", 6, {{"alpha", attr_float(0.3)}, {"beta", attr_float(0.4)}}, {}},
        {"HardSwish", 14, {}, {}},
        {"Erf", 13, {}, {}},
        {"Gelu", 20, {}, {}},
        {"Gelu", 20, {{"approximate", attr_string("tanh")}}, {}},
        {"PRelu", 16, {}, {3, 1}},
        {"PRelu", 16, {}, {1}},
        {"PRelu", 16, {}, {3, 4}},
    };
    for (const auto& c : cfgs) {
        BOOST_TEST_CONTEXT(c.op << " attrs " << c.at.size() << " slope " << to_string(c.slope)) {
            graph_builder b(shape, c.opset);
            std::vector<std::string> ins{"x"};
            if (!c.slope.empty()) ins.push_back(b.constant("slope", c.slope, random_tensor(rng, c.slope, 0.05, 0.5).data));
            b.add(c.op, ins, "y", c.at);
            check_gradient(b.finish("y"), x, rng);
        }
    }
}

// Pow with constant exponents (float and int, scalar and [1]) and Sqrt, on inputs in [0.5, 2]; Pow 2
// and 3 also on inputs of both signs.
BOOST_AUTO_TEST_CASE(pow_and_sqrt) {
    std::mt19937 rng(14);
    const shape_t shape{2, 3, 4};
    for (double e : {2.0, 3.0, 0.5, -1.0, 1.5, 1.0})
        for (bool mixed_signs : {false, true}) {
            if (mixed_signs && e != 2.0 && e != 3.0) continue;
            BOOST_TEST_CONTEXT("Pow " << e << (mixed_signs ? " on both signs" : "")) {
                graph_builder b(shape, 15);
                b.constant("e", e == 3.0 ? shape_t{1} : shape_t{}, {e});
                b.add("Pow", {"x", "e"}, "y");
                check_gradient(b.finish("y"), mixed_signs ? random_away_from_zero(rng, shape) : random_tensor(rng, shape, 0.5, 2), rng);
            }
        }
    {
        graph_builder b(shape, 15);
        b.int_constant("e", {2});
        b.add("Pow", {"x", "e"}, "y");
        check_gradient(b.finish("y"), random_away_from_zero(rng, shape), rng);
    }
    graph_builder b(shape);
    b.add("Sqrt", {"x"}, "y");
    check_gradient(b.finish("y"), random_tensor(rng, shape, 0.5, 2), rng);
}

// LayerNormalization over each axis, Scale broadcast or not, with and without B; and the decomposed
// form (ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul, Add), whose forward must equal
// the operator's (to 1e-12: the same double arithmetic in another order) and whose gradient must pass.
BOOST_AUTO_TEST_CASE(layer_normalisation) {
    std::mt19937 rng(15);
    const shape_t shape{2, 3, 4};
    for (int64_t axis : {-1, 1, 0})
        for (bool bias : {false, true}) {
            BOOST_TEST_CONTEXT("axis " << axis << (bias ? " with B" : "")) {
                graph_builder b(shape, 17);
                const size_t a = static_cast<size_t>(axis < 0 ? axis + 3 : axis);
                shape_t normalised(shape.begin() + static_cast<long>(a), shape.end());
                if (bias) normalised.erase(normalised.begin()); // Scale broadcast along the first normalised axis
                if (normalised.empty()) normalised = {1};
                std::vector<std::string> ins{"x", b.constant("scale", normalised, random_tensor(rng, normalised, 0.5, 1.5).data)};
                if (bias) ins.push_back(b.constant("bias", {4}, random_values(rng, 4)));
                b.add("LayerNormalization", ins, "y", {{"axis", attr_int(axis)}, {"epsilon", attr_float(1e-3)}});
                check_gradient(b.finish("y"), random_tensor(rng, shape), rng);
            }
        }
    const std::vector<double> gamma = random_values(rng, 4), beta = random_values(rng, 4);
    graph_builder d(shape, 18);
    d.int_constant("axes", {-1});
    d.add("ReduceMean", {"x", "axes"}, "mu");
    d.add("Sub", {"x", "mu"}, "centred");
    d.add("Pow", {"centred", d.constant("two", {}, {2.0})}, "sq");
    d.add("ReduceMean", {"sq", "axes"}, "var");
    d.add("Add", {"var", d.constant("eps", {}, {static_cast<double>(1e-3f)})}, "var_eps");
    d.add("Sqrt", {"var_eps"}, "std");
    d.add("Div", {"centred", "std"}, "normed");
    d.add("Mul", {"normed", d.constant("gamma", {4}, gamma)}, "scaled");
    d.add("Add", {"scaled", d.constant("beta", {4}, beta)}, "y");
    graph_builder w(shape, 17);
    w.add("LayerNormalization", {"x", w.constant("gamma", {4}, gamma), w.constant("beta", {4}, beta)}, "y",
          {{"epsilon", attr_float(1e-3)}});
    const dtensor x = random_tensor(rng, shape);
    const dtensor decomposed = run(d.finish("y"), x), whole = run(w.finish("y"), x);
    for (size_t i = 0; i < x.data.size(); ++i) BOOST_CHECK_SMALL(decomposed.data[i] - whole.data[i], 1e-12);
    check_gradient(d.finish("y"), x, rng);
}

// Squeeze-and-excitation, x * sigmoid(conv(pool(x))), and two activations that both broadcast
// ([2, 3, 1, 5] op [2, 1, 4, 1]), divisors kept in (0, 2).
BOOST_AUTO_TEST_CASE(binary_of_broadcast_activations) {
    std::mt19937 rng(16);
    const shape_t shape{2, 3, 4, 5};
    for (const char* op : {"Add", "Sub", "Mul", "Div"})
        for (bool x_first : {true, false}) {
            BOOST_TEST_CONTEXT(op << " squeeze-and-excitation, x " << (x_first ? "first" : "second")) {
                graph_builder b(shape);
                b.add("GlobalAveragePool", {"x"}, "p");
                b.constant("w", {3, 3, 1, 1}, random_values(rng, 9));
                b.add("Conv", {"p", "w"}, "f");
                b.add("Sigmoid", {"f"}, "gate");
                b.add(op, x_first ? std::vector<std::string>{"x", "gate"} : std::vector<std::string>{"gate", "x"}, "y");
                check_gradient(b.finish("y"), random_away_from_zero(rng, shape), rng, 120);
            }
            BOOST_TEST_CONTEXT(op << " of [2,3,1,5] and [2,1,4,1], " << (x_first ? "in order" : "swapped")) {
                graph_builder b(shape, 18);
                b.add("ReduceMean", {"x", b.int_constant("a2", {2})}, "m2");
                b.add("ReduceMean", {"x", b.int_constant("a13", {1, 3})}, "m13");
                b.add("Sigmoid", {"m13"}, "s13");
                b.add("Sigmoid", {"m2"}, "s2");
                b.add(op, x_first ? std::vector<std::string>{"m2", "s13"} : std::vector<std::string>{"m13", "s2"}, "y");
                check_gradient(b.finish("y"), random_away_from_zero(rng, shape), rng, 120);
            }
        }
}

BOOST_AUTO_TEST_CASE(conv_transpose_sweep) {
    std::mt19937 rng(41);
    struct cfg { int64_t groups, stride, dilation, out_pad; const char* pad; };
    for (const cfg& c : {cfg{1, 1, 1, 0, "none"}, cfg{1, 2, 1, 1, "asym"}, cfg{2, 2, 2, 1, "none"}, cfg{4, 3, 1, 2, "asym"},
                         cfg{1, 2, 1, 0, "SAME_UPPER"}, cfg{1, 2, 1, 0, "SAME_LOWER"}, cfg{2, 2, 1, 1, "output_shape"}})
        BOOST_TEST_CONTEXT("group " << c.groups << " stride " << c.stride << " dilation " << c.dilation << " output_padding "
                                    << c.out_pad << " " << c.pad) {
            graph_builder b({2, 4, 3, 4});
            b.constant("w", {4, 2, 3, 2}, random_values(rng, 48));
            b.constant("b", {2 * c.groups}, random_values(rng, 2 * c.groups));
            std::map<std::string, attribute> at{{"group", attr_int(c.groups)}, {"strides", attr_ints({c.stride, c.stride})},
                                                {"dilations", attr_ints({c.dilation, c.dilation})},
                                                {"output_padding", attr_ints({c.out_pad, c.out_pad})}};
            if (std::string(c.pad) == "asym") at["pads"] = attr_ints({1, 0, 0, 1});
            else if (std::string(c.pad) == "output_shape") at["output_shape"] = attr_ints({6, 7});
            else if (std::string(c.pad) != "none") at["auto_pad"] = attr_string(c.pad);
            b.add("ConvTranspose", {"x", "w", "b"}, "y", at);
            check_gradient(b.finish("y"), random_tensor(rng, {2, 4, 3, 4}), rng);
        }
}

BOOST_AUTO_TEST_SUITE_END()
