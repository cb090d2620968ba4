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

BOOST_AUTO_TEST_SUITE_END()
