// Forward pass of every reference op against expectations worked out by hand (in the comments).
#include "support.hpp"

#include <deepinside/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <cmath>

using namespace deepinside;
using namespace deepinside::verify;
using namespace deepinside::verify::testing;

namespace {

void expect(const dtensor& got, const shape_t& shape, const std::vector<double>& values, double tol = 1e-12) {
    BOOST_REQUIRE_MESSAGE(got.shape == shape, "shape " << to_string(got.shape) << " expected " << to_string(shape));
    BOOST_REQUIRE_EQUAL(got.data.size(), values.size());
    for (size_t i = 0; i < values.size(); ++i)
        BOOST_CHECK_MESSAGE(std::fabs(got.data[i] - values[i]) <= tol * (1 + std::fabs(values[i])),
                            "element " << i << ": " << got.data[i] << " expected " << values[i]);
}

dtensor iota(const shape_t& shape, double start = 1) {
    dtensor t(shape);
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = start + static_cast<double>(i);
    return t;
}

const std::vector<double> laplacian = {0, 1, 0, 1, -4, 1, 0, 1, 0};

} // namespace

BOOST_AUTO_TEST_SUITE(forward)

BOOST_AUTO_TEST_CASE(conv_3x3_laplacian_with_zero_padding) {
    // x = 1..16 on a 4x4 grid; the Laplacian of a linear ramp vanishes inside, the borders see zeros.
    graph_builder b({1, 1, 4, 4});
    b.constant("w", {1, 1, 3, 3}, laplacian);
    b.constant("b", {1}, {0.5});
    b.add("Conv", {"x", "w", "b"}, "y", {{"pads", attr_ints({1, 1, 1, 1})}});
    const std::vector<double> lap = {3, 2, 1, -5, -4, 0, 0, -9, -8, 0, 0, -13, -29, -18, -19, -37};
    std::vector<double> with_bias;
    for (double v : lap) with_bias.push_back(v + 0.5);
    expect(run(b.finish("y"), iota({1, 1, 4, 4})), {1, 1, 4, 4}, with_bias);

    graph_builder s({1, 1, 4, 4});
    s.constant("w", {1, 1, 3, 3}, laplacian);
    s.add("Conv", {"x", "w"}, "y", {{"pads", attr_ints({1, 1, 1, 1})}, {"strides", attr_ints({2, 2})}});
    expect(run(s.finish("y"), iota({1, 1, 4, 4})), {1, 1, 2, 2}, {3, 1, -8, 0});
}

BOOST_AUTO_TEST_CASE(conv_groups_dilation_auto_pad) {
    // Depthwise 1x1: channel 0 times 2, channel 1 times 3.
    graph_builder g({1, 2, 1, 2});
    g.constant("w", {2, 1, 1, 1}, {2, 3});
    g.add("Conv", {"x", "w"}, "y", {{"group", attr_int(2)}});
    expect(run(g.finish("y"), iota({1, 2, 1, 2})), {1, 2, 1, 2}, {2, 4, 9, 12});

    // 2x2 ones with dilation 2 on a 5x5 ramp: y[i][j] = x[i][j] + x[i][j+2] + x[i+2][j] + x[i+2][j+2].
    graph_builder d({1, 1, 5, 5});
    d.constant("w", {1, 1, 2, 2}, {1, 1, 1, 1});
    d.add("Conv", {"x", "w"}, "y", {{"dilations", attr_ints({2, 2})}});
    const dtensor y = run(d.finish("y"), iota({1, 1, 5, 5}));
    BOOST_REQUIRE(y.shape == shape_t({1, 1, 3, 3}));
    BOOST_TEST(y.data[0] == 1 + 3 + 11 + 13);
    BOOST_TEST(y.data[8] == 13 + 15 + 23 + 25);

    // Even kernel, SAME: the odd padding row/column goes after (UPPER) or before (LOWER).
    for (const char* mode : {"SAME_UPPER", "SAME_LOWER"}) {
        graph_builder a({1, 1, 3, 3});
        a.constant("w", {1, 1, 2, 2}, {1, 1, 1, 1});
        a.add("Conv", {"x", "w"}, "y", {{"auto_pad", attr_string(mode)}});
        const dtensor r = run(a.finish("y"), iota({1, 1, 3, 3}));
        BOOST_REQUIRE(r.shape == shape_t({1, 1, 3, 3}));
        if (std::string(mode) == "SAME_UPPER") {
            BOOST_TEST(r.data[0] == 1 + 2 + 4 + 5);
            BOOST_TEST(r.data[8] == 9);
        } else {
            BOOST_TEST(r.data[0] == 1);
            BOOST_TEST(r.data[8] == 5 + 6 + 8 + 9);
        }
    }
    graph_builder v({1, 1, 5, 5});
    v.constant("w", {1, 1, 2, 2}, {1, 1, 1, 1});
    v.add("Conv", {"x", "w"}, "y", {{"auto_pad", attr_string("VALID")}, {"strides", attr_ints({2, 2})}});
    BOOST_TEST(run(v.finish("y"), iota({1, 1, 5, 5})).shape == shape_t({1, 1, 2, 2}));
}

BOOST_AUTO_TEST_CASE(max_pool_ceil_mode_output_sizes) {
    auto out_shape = [](int64_t size, int64_t pad, int64_t ceil) {
        graph_builder b({1, 1, size, size}, 12);
        b.add("MaxPool", {"x"}, "y",
              {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})},
               {"pads", attr_ints({pad, pad, pad, pad})}, {"ceil_mode", attr_int(ceil)}});
        return run(b.finish("y"), iota({1, 1, size, size})).shape;
    };
    BOOST_TEST(out_shape(5, 0, 0) == shape_t({1, 1, 2, 2}));
    BOOST_TEST(out_shape(5, 0, 1) == shape_t({1, 1, 3, 3}));
    // 5 + 2 padding: ceil((7 - 2) / 2) + 1 = 4 windows, but the 4th would start at 6, inside the right
    // padding, so it is dropped.
    BOOST_TEST(out_shape(5, 1, 1) == shape_t({1, 1, 3, 3}));
    BOOST_TEST(out_shape(4, 1, 1) == shape_t({1, 1, 3, 3}));

    graph_builder b({1, 1, 3, 3}, 12);
    b.add("MaxPool", {"x"}, "y", {{"kernel_shape", attr_ints({2, 2})}, {"ceil_mode", attr_int(1)},
                                  {"strides", attr_ints({2, 2})}});
    expect(run(b.finish("y"), iota({1, 1, 3, 3})), {1, 1, 2, 2}, {5, 6, 8, 9});
}

BOOST_AUTO_TEST_CASE(average_pool_count_include_pad) {
    // 3x3 window, pads 1 on 1..9: the corner window holds 1 + 2 + 4 + 5 = 12 over 4 cells of input.
    for (int64_t include : {0, 1}) {
        graph_builder b({1, 1, 3, 3}, 11);
        b.add("AveragePool", {"x"}, "y",
              {{"kernel_shape", attr_ints({3, 3})}, {"pads", attr_ints({1, 1, 1, 1})},
               {"count_include_pad", attr_int(include)}});
        const dtensor y = run(b.finish("y"), iota({1, 1, 3, 3}));
        BOOST_TEST(y.data[0] == (include ? 12.0 / 9 : 12.0 / 4), boost::test_tools::tolerance(1e-14));
        BOOST_TEST(y.data[4] == 45.0 / 9, boost::test_tools::tolerance(1e-14));
    }
    // Width 6, kernel 3, stride 2, pads 1/1, ceil_mode: windows start at -1, 1, 3, 5. The last holds
    // x[5] (=6), the declared pad cell 6 and cell 7 beyond the pads: count_include_pad divides by 2.
    for (int64_t include : {0, 1}) {
        graph_builder b({1, 1, 1, 6}, 11);
        b.add("AveragePool", {"x"}, "y",
              {{"kernel_shape", attr_ints({1, 3})}, {"strides", attr_ints({1, 2})}, {"pads", attr_ints({0, 1, 0, 1})},
               {"ceil_mode", attr_int(1)}, {"count_include_pad", attr_int(include)}});
        const dtensor y = run(b.finish("y"), iota({1, 1, 1, 6}));
        if (include)
            expect(y, {1, 1, 1, 4}, {3.0 / 3, 9.0 / 3, 15.0 / 3, 6.0 / 2});
        else
            expect(y, {1, 1, 1, 4}, {3.0 / 2, 9.0 / 3, 15.0 / 3, 6.0 / 1});
    }
}

BOOST_AUTO_TEST_CASE(global_pools) {
    graph_builder a({1, 2, 2, 2});
    a.add("GlobalAveragePool", {"x"}, "y");
    expect(run(a.finish("y"), iota({1, 2, 2, 2})), {1, 2, 1, 1}, {2.5, 6.5});
    graph_builder m({1, 2, 2, 2});
    m.add("GlobalMaxPool", {"x"}, "y");
    expect(run(m.finish("y"), iota({1, 2, 2, 2})), {1, 2, 1, 1}, {4, 8});
}

BOOST_AUTO_TEST_CASE(lrn_on_a_known_vector) {
    // size 3, alpha/size = 1, beta 1, bias 1 on channels (1, 2, 3): D = 1 + (1+4), 1 + (1+4+9), 1 + (4+9).
    graph_builder b({1, 3, 1, 1});
    b.add("LRN", {"x"}, "y", {{"size", attr_int(3)}, {"alpha", attr_float(3)}, {"beta", attr_float(1)}});
    expect(run(b.finish("y"), iota({1, 3, 1, 1})), {1, 3, 1, 1}, {1.0 / 6, 2.0 / 15, 3.0 / 14});
    // size 2: the window of c is [c, c+1]; alpha 2 so alpha/size = 1; beta 0.5; bias 2.
    graph_builder c({1, 3, 1, 1});
    c.add("LRN", {"x"}, "y",
          {{"size", attr_int(2)}, {"alpha", attr_float(2)}, {"beta", attr_float(0.5)}, {"bias", attr_float(2)}});
    expect(run(c.finish("y"), iota({1, 3, 1, 1})), {1, 3, 1, 1},
           {1 / std::sqrt(7.0), 2 / std::sqrt(15.0), 3 / std::sqrt(11.0)});
}

BOOST_AUTO_TEST_CASE(gemm_transposes_alpha_beta) {
    // A = [[1,2,3],[4,5,6]], B^T with B = [[1,0,1],[0,1,0]]: A B^T = [[4,2],[10,5]]; 2 * that + 0.5 * [1,-2].
    graph_builder b({2, 3});
    b.constant("B", {2, 3}, {1, 0, 1, 0, 1, 0});
    b.constant("C", {2}, {1, -2});
    b.add("Gemm", {"x", "B", "C"}, "y", {{"transB", attr_int(1)}, {"alpha", attr_float(2)}, {"beta", attr_float(0.5)}});
    expect(run(b.finish("y"), iota({2, 3})), {2, 2}, {8.5, 3, 20.5, 9});
    // transA: A is stored [K, M] = [3, 2]; A^T = [[1,3,5],[2,4,6]]; B = [[1],[1],[1]]; no C.
    graph_builder t({3, 2}, 11);
    t.constant("B", {3, 1}, {1, 1, 1});
    t.add("Gemm", {"x", "B"}, "y", {{"transA", attr_int(1)}});
    expect(run(t.finish("y"), iota({3, 2})), {2, 1}, {9, 12});
}

BOOST_AUTO_TEST_CASE(matmul_batched_broadcast) {
    // [2, 1, 2, 2] x [3, 2, 1]: batch broadcast to [2, 3].
    graph_builder b({2, 1, 2, 2});
    b.constant("B", {3, 2, 1}, {1, 0, 0, 1, 1, 1});
    b.add("MatMul", {"x", "B"}, "y");
    const dtensor y = run(b.finish("y"), iota({2, 1, 2, 2}));
    // batch 0: A = [[1,2],[3,4]] -> first column, second column, row sums.
    expect(y, {2, 3, 2, 1}, {1, 3, 2, 4, 3, 7, 5, 7, 6, 8, 11, 15});
    graph_builder v({3});
    v.constant("B", {3, 2}, {1, 0, 0, 1, 1, 1});
    v.add("MatMul", {"x", "B"}, "y");
    expect(run(v.finish("y"), iota({3})), {2}, {4, 5});
}

BOOST_AUTO_TEST_CASE(binary_broadcasting) {
    graph_builder b({2, 1, 3});
    b.constant("c", {4, 1}, {10, 20, 30, 40});
    b.add("Add", {"x", "c"}, "y");
    const dtensor y = run(b.finish("y"), iota({2, 1, 3}));
    BOOST_REQUIRE(y.shape == shape_t({2, 4, 3}));
    for (int64_t i = 0; i < 2; ++i)
        for (int64_t j = 0; j < 4; ++j)
            for (int64_t k = 0; k < 3; ++k)
                BOOST_TEST(y.data[static_cast<size_t>((i * 4 + j) * 3 + k)] == double(1 + i * 3 + k) + 10.0 * double(j + 1));
    graph_builder s({2});
    s.constant("c", {}, {4});
    s.add("Sub", {"x", "c"}, "a");
    s.add("Mul", {"a", "c"}, "m");
    s.add("Div", {"m", "x"}, "y");
    expect(run(s.finish("y"), iota({2})), {2}, {(1 - 4) * 4 / 1.0, (2 - 4) * 4 / 2.0});
    // Legacy broadcasting (opset 6): B of shape [3] aligned with axis 1 of A [2, 3, 2].
    graph_builder l({2, 3, 2}, 6);
    l.constant("c", {3}, {100, 200, 300});
    l.add("Add", {"x", "c"}, "y", {{"broadcast", attr_int(1)}, {"axis", attr_int(1)}});
    const dtensor ly = run(l.finish("y"), iota({2, 3, 2}));
    BOOST_TEST(ly.data[0] == 101);
    BOOST_TEST(ly.data[2] == 203);
    BOOST_TEST(ly.data[11] == 312);
}

BOOST_AUTO_TEST_CASE(reshape_flatten_squeeze_unsqueeze) {
    auto reshape = [](std::vector<int64_t> spec, int64_t allowzero = 0) {
        graph_builder b({2, 3, 4}, 14);
        b.int_constant("s", spec);
        b.add("Reshape", {"x", "s"}, "y", {{"allowzero", attr_int(allowzero)}});
        return run(b.finish("y"), iota({2, 3, 4}));
    };
    BOOST_TEST(reshape({0, -1}).shape == shape_t({2, 12}));
    BOOST_TEST(reshape({-1, 0, 2}).shape == shape_t({4, 3, 2}));
    BOOST_TEST(reshape({4, 6}).data[23] == 24);
    BOOST_CHECK_THROW(reshape({0, 24}, 1), model_error);
    BOOST_CHECK_THROW(reshape({-1, -1}), model_error);
    BOOST_CHECK_THROW(reshape({5, -1}), model_error);
    graph_builder old({2, 3, 4}, 4);
    old.add("Reshape", {"x"}, "y", {{"shape", attr_ints({0, 12})}});
    BOOST_TEST(run(old.finish("y"), iota({2, 3, 4})).shape == shape_t({2, 12}));

    for (int64_t axis : {0, 2, -1, 3}) {
        graph_builder f({2, 3, 4}, 13);
        f.add("Flatten", {"x"}, "y", {{"axis", attr_int(axis)}});
        const shape_t expected = axis == 0 ? shape_t{1, 24} : axis == 2 ? shape_t{6, 4} : axis == -1 ? shape_t{6, 4} : shape_t{24, 1};
        BOOST_TEST(run(f.finish("y"), iota({2, 3, 4})).shape == expected);
    }
    graph_builder sq11({1, 3, 1, 2}, 11);
    sq11.add("Squeeze", {"x"}, "y", {{"axes", attr_ints({-2})}});
    BOOST_TEST(run(sq11.finish("y"), iota({1, 3, 1, 2})).shape == shape_t({1, 3, 2}));
    graph_builder sq13({1, 3, 1, 2}, 13);
    sq13.add("Squeeze", {"x"}, "y");
    BOOST_TEST(run(sq13.finish("y"), iota({1, 3, 1, 2})).shape == shape_t({3, 2}));
    graph_builder sqa({1, 3, 1, 2}, 13);
    sqa.int_constant("a", {0});
    sqa.add("Squeeze", {"x", "a"}, "y");
    BOOST_TEST(run(sqa.finish("y"), iota({1, 3, 1, 2})).shape == shape_t({3, 1, 2}));
    graph_builder bad({1, 3}, 13);
    bad.int_constant("a", {1});
    bad.add("Squeeze", {"x", "a"}, "y");
    BOOST_CHECK_THROW(run(bad.finish("y"), iota({1, 3})), model_error);

    graph_builder un11({3, 2}, 11);
    un11.add("Unsqueeze", {"x"}, "y", {{"axes", attr_ints({0, -1})}});
    BOOST_TEST(run(un11.finish("y"), iota({3, 2})).shape == shape_t({1, 3, 2, 1}));
    graph_builder un13({3, 2}, 13);
    un13.int_constant("a", {1, 3});
    un13.add("Unsqueeze", {"x", "a"}, "y");
    BOOST_TEST(run(un13.finish("y"), iota({3, 2})).shape == shape_t({3, 1, 2, 1}));
}

BOOST_AUTO_TEST_CASE(concat_and_pad) {
    graph_builder c({2, 2});
    c.constant("k", {2, 1}, {9, 8});
    c.add("Concat", {"x", "k", "x"}, "y", {{"axis", attr_int(-1)}});
    expect(run(c.finish("y"), iota({2, 2})), {2, 5}, {1, 2, 9, 1, 2, 3, 4, 8, 3, 4});
    graph_builder c0({1, 2});
    c0.add("Concat", {"x", "x"}, "y", {{"axis", attr_int(0)}});
    expect(run(c0.finish("y"), iota({1, 2})), {2, 2}, {1, 2, 1, 2});

    // Pads as attribute (opset 2) and as input (opset 11), begin values first; negative pads crop.
    graph_builder p2({1, 2}, 2);
    p2.add("Pad", {"x"}, "y", {{"pads", attr_ints({0, 1, 1, 0})}, {"value", attr_float(7)}});
    expect(run(p2.finish("y"), iota({1, 2})), {2, 3}, {7, 1, 2, 7, 7, 7});
    graph_builder p11({1, 3}, 11);
    p11.int_constant("p", {1, -1, 0, 1});
    p11.constant("v", {}, {-5});
    p11.add("Pad", {"x", "p", "v"}, "y");
    expect(run(p11.finish("y"), iota({1, 3})), {2, 3}, {-5, -5, -5, 2, 3, -5});
    graph_builder p18({1, 3}, 18);
    p18.int_constant("p", {2, 0});
    p18.int_constant("a", {-1});
    p18.add("Pad", {"x", "p", "", "a"}, "y");
    expect(run(p18.finish("y"), iota({1, 3})), {1, 5}, {0, 0, 1, 2, 3});
}

BOOST_AUTO_TEST_CASE(reduce_mean_axes_forms) {
    graph_builder a({2, 3}, 13);
    a.add("ReduceMean", {"x"}, "y", {{"axes", attr_ints({1})}, {"keepdims", attr_int(0)}});
    expect(run(a.finish("y"), iota({2, 3})), {2}, {2, 5});
    graph_builder all({2, 3}, 13);
    all.add("ReduceMean", {"x"}, "y");
    expect(run(all.finish("y"), iota({2, 3})), {1, 1}, {3.5});
    graph_builder in18({2, 3}, 18);
    in18.int_constant("a", {0});
    in18.add("ReduceMean", {"x", "a"}, "y");
    expect(run(in18.finish("y"), iota({2, 3})), {1, 3}, {2.5, 3.5, 4.5});
    graph_builder noop({2, 3}, 18);
    noop.add("ReduceMean", {"x"}, "y", {{"noop_with_empty_axes", attr_int(1)}});
    expect(run(noop.finish("y"), iota({2, 3})), {2, 3}, {1, 2, 3, 4, 5, 6});
}

BOOST_AUTO_TEST_CASE(softmax_axis_semantics) {
    // [1, 2, 2], axis 1: opset 13 normalises each column of 2; opset 11 the whole trailing block of 4.
    const dtensor x({1, 2, 2}, {0, 0, std::log(3.0), 0});
    graph_builder s13({1, 2, 2}, 13);
    s13.add("Softmax", {"x"}, "y", {{"axis", attr_int(1)}});
    expect(run(s13.finish("y"), x), {1, 2, 2}, {0.25, 0.5, 0.75, 0.5});
    graph_builder s11({1, 2, 2}, 11);
    s11.add("Softmax", {"x"}, "y", {{"axis", attr_int(1)}});
    expect(run(s11.finish("y"), x), {1, 2, 2}, {1.0 / 6, 1.0 / 6, 0.5, 1.0 / 6});
    graph_builder l13({1, 2, 2}, 13);
    l13.add("LogSoftmax", {"x"}, "y");
    expect(run(l13.finish("y"), x), {1, 2, 2}, {std::log(0.5), std::log(0.5), std::log(0.75), std::log(0.25)});
}

BOOST_AUTO_TEST_CASE(batch_norm_inference) {
    graph_builder b({1, 2, 1, 2});
    b.constant("s", {2}, {2, 1});
    b.constant("b", {2}, {1, 0});
    b.constant("m", {2}, {1, 5});
    b.constant("v", {2}, {4, 1});
    b.add("BatchNormalization", {"x", "s", "b", "m", "v"}, "y", {{"epsilon", attr_float(0)}});
    // ch0: 2 (x - 1) / 2 + 1 = x; ch1: x - 5.
    expect(run(b.finish("y"), iota({1, 2, 1, 2})), {1, 2, 1, 2}, {1, 2, -2, -1});
}

BOOST_AUTO_TEST_CASE(unary_nonlinearities) {
    const dtensor x({4}, {-2, -0.5, 0, 1.5});
    auto one = [&](const std::string& op, std::map<std::string, attribute> attrs = {}, int64_t opset = 13) {
        graph_builder b({4}, opset);
        b.add(op, {"x"}, "y", attrs);
        return run(b.finish("y"), x);
    };
    expect(one("Relu"), {4}, {0, 0, 0, 1.5});
    expect(one("LeakyRelu", {{"alpha", attr_float(0.25)}}), {4}, {-0.5, -0.125, 0, 1.5});
    expect(one("Elu", {{"alpha", attr_float(2)}}), {4}, {2 * (std::exp(-2) - 1), 2 * (std::exp(-0.5) - 1), 0, 1.5});
    const double a = 1.67326319217681884765625, g = 1.05070102214813232421875;
    expect(one("Selu"), {4}, {g * a * (std::exp(-2) - 1), g * a * (std::exp(-0.5) - 1), 0, g * 1.5});
    expect(one("Sigmoid"), {4}, {1 / (1 + std::exp(2)), 1 / (1 + std::exp(0.5)), 0.5, 1 / (1 + std::exp(-1.5))});
    expect(one("Tanh"), {4}, {std::tanh(-2), std::tanh(-0.5), 0, std::tanh(1.5)});
    expect(one("Clip", {{"min", attr_float(-1)}, {"max", attr_float(1)}}, 6), {4}, {-1, -0.5, 0, 1});
    expect(one("Identity"), {4}, x.data);
    expect(one("Dropout", {}, 13), {4}, x.data);
    graph_builder c({4}, 13);
    c.constant("lo", {}, {0});
    c.constant("hi", {}, {6});
    c.add("Clip", {"x", "lo", ""}, "y");
    expect(run(c.finish("y"), x), {4}, {0, 0, 0, 1.5});
}

BOOST_AUTO_TEST_CASE(refusals_name_the_node) {
    auto message_of = [](const graph& g, const shape_t& shape) -> std::string {
        try {
            run(g, dtensor(shape));
        } catch (const error& e) {
            return e.what();
        }
        return "";
    };
    graph_builder u({1, 2});
    u.add("Foo", {"x"}, "y");
    BOOST_CHECK_THROW(reference_network(u.finish("y")), unsupported_error);
    BOOST_TEST(message_of(u.finish("y"), {1, 2}).find("y_node") != std::string::npos);

    graph_builder c1({1, 1, 5});
    c1.constant("w", {1, 1, 3}, {1, 1, 1});
    c1.add("Conv", {"x", "w"}, "y");
    BOOST_CHECK_THROW(run(c1.finish("y"), dtensor({1, 1, 5})), unsupported_error);

    graph_builder so({1, 1, 2, 2}, 12);
    so.add("MaxPool", {"x"}, "y", {{"kernel_shape", attr_ints({2, 2})}, {"storage_order", attr_int(1)}});
    BOOST_CHECK_THROW(reference_network(so.finish("y")), unsupported_error);

    graph_builder pr({1, 2}, 11);
    pr.int_constant("p", {0, 1, 0, 1});
    pr.add("Pad", {"x", "p"}, "y", {{"mode", attr_string("reflect")}});
    BOOST_CHECK_THROW(reference_network(pr.finish("y")), unsupported_error);

    graph_builder dm({1, 2}, 13);
    dm.add("Dropout", {"x"}, "y");
    graph g = dm.finish("y");
    g.nodes[0].outputs.push_back("mask");
    BOOST_CHECK_THROW(reference_network{g}, unsupported_error);

    // A shape input computed from the network input cannot be differentiated (nor is it ONNX-typical).
    graph_builder rs({2, 2}, 13);
    rs.add("Reshape", {"x", "x"}, "y");
    BOOST_CHECK_THROW(reference_network(rs.finish("y")), unsupported_error);
}

BOOST_AUTO_TEST_CASE(forward_keeps_every_activation_and_finds_the_score_tensor) {
    graph_builder b({1, 3});
    b.constant("w", {3, 2}, {1, 0, 0, 1, 1, 1});
    b.add("MatMul", {"x", "w"}, "logits");
    b.add("Softmax", {"logits"}, "prob");
    const reference_network net(b.finish("prob"));
    BOOST_TEST(net.score_tensor() == "logits");
    BOOST_TEST(net.output_tensor() == "prob");
    const auto acts = net.forward(iota({1, 3}));
    BOOST_TEST(acts.size() == 3u);
    BOOST_TEST(acts.count("x") == 1u);
    graph_builder r({1, 3});
    r.add("Relu", {"x"}, "y");
    BOOST_TEST(reference_network(r.finish("y")).score_tensor() == "y");
}

BOOST_AUTO_TEST_SUITE_END()
