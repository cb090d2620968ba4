// The independent DeconvNet operators (verify/deconvnet.hpp) against mathematics that does not use
// them: the adjoint identity with the reference's *forward* Conv / Gemm / MatMul, hand-worked
// examples, and brute force over pooling windows.
#include "support.hpp"

#include "deconvnet.hpp"
#include "ref_ops.hpp"

#include <deepinside/errors.hpp>

#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cmath>
#include <string>

using namespace deepinside;
using namespace deepinside::verify;
using namespace deepinside::verify::testing;

namespace {

node make_node(const std::string& op, const std::map<std::string, attribute>& attrs = {}, int64_t opset = 13) {
    node n;
    n.name = "layer_" + op;
    n.op_type = op;
    n.opset = opset;
    n.inputs = {"x", "w"};
    n.outputs = {"y"};
    n.attributes = attrs;
    return n;
}

/// |<a, x> - <r, y>| relative to the sum of the magnitudes of the products on both sides: the size
/// of the rounding error either sum can make. A wrong weight, tap or position changes a whole term,
/// of order 1/terms of that scale, so 1e-12 separates them for any tensor here.
double adjoint_error(const dtensor& a, const dtensor& x, const dtensor& r, const dtensor& y) {
    BOOST_REQUIRE(a.shape == x.shape);
    BOOST_REQUIRE(r.shape == y.shape);
    double lhs = 0, rhs = 0, scale = 0;
    for (size_t i = 0; i < a.data.size(); ++i) {
        lhs += a.data[i] * x.data[i];
        scale += std::fabs(a.data[i] * x.data[i]);
    }
    for (size_t i = 0; i < r.data.size(); ++i) {
        rhs += r.data[i] * y.data[i];
        scale += std::fabs(r.data[i] * y.data[i]);
    }
    return std::fabs(lhs - rhs) / std::max(scale, 1e-300);
}

void expect_values(const dtensor& got, const shape_t& shape, const std::vector<double>& values) {
    BOOST_REQUIRE_MESSAGE(got.shape == shape, "shape " << to_string(got.shape) << " expected " << to_string(shape));
    BOOST_REQUIRE_EQUAL(got.data.size(), values.size());
    for (size_t i = 0; i < values.size(); ++i)
        BOOST_CHECK_MESSAGE(got.data[i] == values[i],
                            "element " << i << ": " << got.data[i] << " expected " << values[i]);
}

int64_t uniform(std::mt19937& rng, int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

/// Values from a few levels (many ties), optionally rectified (all-zero windows).
dtensor tie_rich(std::mt19937& rng, const shape_t& shape, bool rectified) {
    dtensor t(shape);
    for (double& v : t.data) {
        v = 0.5 * static_cast<double>(uniform(rng, -3, 3));
        if (rectified) v = std::max(v, 0.0);
    }
    return t;
}

template <typename E>
void expect_error_naming(const std::function<void()>& f, const std::string& name, const std::string& what) {
    bool thrown = false;
    try {
        f();
    } catch (const E& e) {
        thrown = true;
        BOOST_CHECK_MESSAGE(std::string(e.what()).find(name) != std::string::npos, e.what()
                                                                                       << " does not name " << name);
        BOOST_TEST_MESSAGE(what << ": " << e.what());
    }
    BOOST_CHECK_MESSAGE(thrown, what << ": no error of the expected type");
}

} // namespace

BOOST_AUTO_TEST_SUITE(deconvnet)

// ---- filtering ----

BOOST_AUTO_TEST_CASE(filter_hand_examples) {
    // One channel, 3x3 input, 2x2 kernel w = [[1, 2], [3, 4]], stride 1, output 2x2. The forward map
    // is y[o] = sum_k w[k] x[o + k], so R at the input is the full correlation with the flipped kernel:
    // x[i] = sum_o R[o] w[i - o]. With R = [[1, 10], [100, 1000]]:
    //   [0,0] = 1*1                              = 1       (a flip error would give 1*4)
    //   [0,1] = 1*2 + 10*1                       = 12
    //   [0,2] = 10*2                             = 20
    //   [1,0] = 1*3 + 100*1                      = 103
    //   [1,1] = 1*4 + 10*3 + 100*2 + 1000*1      = 1234
    //   [1,2] = 10*4 + 1000*2                    = 2040
    //   [2,0] = 100*3 = 300, [2,1] = 100*4 + 1000*3 = 3400, [2,2] = 1000*4 = 4000
    const dtensor w({1, 1, 2, 2}, {1, 2, 3, 4});
    const dtensor r({1, 1, 2, 2}, {1, 10, 100, 1000});
    const zf::conv_layer plain = zf::conv_layer_of(make_node("Conv"), w, {1, 1, 3, 3});
    BOOST_TEST(plain.output_shape == (shape_t{1, 1, 2, 2}));
    expect_values(zf::filter(plain, r), {1, 1, 3, 3}, {1, 12, 20, 103, 1234, 2040, 300, 3400, 4000});

    // Stride 2 on 4x4: the windows tile the input, each R value paints w scaled.
    const zf::conv_layer tiled =
        zf::conv_layer_of(make_node("Conv", {{"strides", attr_ints({2, 2})}}), w, {1, 1, 4, 4});
    expect_values(zf::filter(tiled, r), {1, 1, 4, 4},
                  {1, 2, 10, 20, 3, 4, 30, 40, 100, 200, 1000, 2000, 300, 400, 3000, 4000});

    // Stride 2 on 3x3: one window; the last row and column, which no window reaches, get zero.
    const zf::conv_layer floor =
        zf::conv_layer_of(make_node("Conv", {{"strides", attr_ints({2, 2})}}), w, {1, 1, 3, 3});
    BOOST_TEST(floor.output_shape == (shape_t{1, 1, 1, 1}));
    expect_values(zf::filter(floor, dtensor({1, 1, 1, 1}, {5})), {1, 1, 3, 3}, {5, 10, 0, 15, 20, 0, 0, 0, 0});

    // Stride 2, pads 1 on every side, 3x3 input: padded rows/cols [-1, 0] and [1, 2] form the windows;
    // the padding is cropped: x[i][j] = R[oy][ox] w[i + 1 - 2 oy][j + 1 - 2 ox].
    const zf::conv_layer padded = zf::conv_layer_of(
        make_node("Conv", {{"strides", attr_ints({2, 2})}, {"pads", attr_ints({1, 1, 1, 1})}}), w, {1, 1, 3, 3});
    BOOST_TEST(padded.output_shape == (shape_t{1, 1, 2, 2}));
    expect_values(zf::filter(padded, r), {1, 1, 3, 3}, {4, 30, 40, 200, 1000, 2000, 400, 3000, 4000});

    // Channels swapped: 2 input channels, 1 output channel, 1x1 weights [2, 3]: R goes to both
    // input channels, scaled by 2 and 3.
    const zf::conv_layer swap = zf::conv_layer_of(make_node("Conv"), dtensor({1, 2, 1, 1}, {2, 3}), {1, 2, 1, 2});
    expect_values(zf::filter(swap, dtensor({1, 1, 1, 2}, {1, -4})), {1, 2, 1, 2}, {2, -8, 3, -12});

    // Dilation 2, 1x2 kernel [1, 2] on a 1x3 input: y[0] = x[0] + 2 x[2]; R = 7 -> [7, 0, 14].
    const zf::conv_layer dilated = zf::conv_layer_of(make_node("Conv", {{"dilations", attr_ints({1, 2})}}),
                                                     dtensor({1, 1, 1, 2}, {1, 2}), {1, 1, 1, 3});
    expect_values(zf::filter(dilated, dtensor({1, 1, 1, 1}, {7})), {1, 1, 1, 3}, {7, 0, 14});
}

BOOST_AUTO_TEST_CASE(filter_adjoint_sweep) {
    // <filter(R), X> = <R, conv(X)> (no bias), conv from the reference's forward, over random
    // geometries covering every stride 1..4, dilation 1..2, auto_pad mode and group kind.
    std::mt19937 rng(2013);
    double worst = 0;
    int cases = 0, with_remainder = 0, asymmetric = 0;
    for (int repeat = 0; repeat < 3; ++repeat)
        for (int64_t stride = 1; stride <= 4; ++stride)
            for (int64_t dilation = 1; dilation <= 2; ++dilation)
                for (const char* auto_pad : {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"})
                    for (int group_kind = 0; group_kind < 3; ++group_kind) {
                        // group_kind 0: group 1; 1: 2 or 3 groups; 2: depthwise (channel multiplier 1 or 2).
                        const int64_t group = group_kind == 0   ? 1
                                              : group_kind == 1 ? uniform(rng, 2, 3)
                                                                : uniform(rng, 2, 5);
                        const int64_t cg = group_kind == 2 ? 1 : uniform(rng, 1, 3);
                        const int64_t mg = group_kind == 2 ? uniform(rng, 1, 2) : uniform(rng, 1, 3);
                        const int64_t kh = uniform(rng, 1, 5), kw = uniform(rng, 1, 5);
                        // The second axis gets its own stride and dilation now and then (non-square).
                        const int64_t sw = repeat == 2 ? uniform(rng, 1, 4) : stride;
                        const int64_t dw = repeat == 2 ? uniform(rng, 1, 2) : dilation;
                        const int64_t eh = (kh - 1) * dilation + 1, ew = (kw - 1) * dw + 1;
                        std::vector<int64_t> pads{uniform(rng, 0, 3), uniform(rng, 0, 3), uniform(rng, 0, 3),
                                                  uniform(rng, 0, 3)};
                        const int64_t h = std::max<int64_t>(eh, 1) + uniform(rng, 0, 7);
                        const int64_t w = std::max<int64_t>(ew, 1) + uniform(rng, 0, 7);
                        const int64_t batch = uniform(rng, 1, 2);
                        std::map<std::string, attribute> attrs{{"strides", attr_ints({stride, sw})},
                                                               {"dilations", attr_ints({dilation, dw})},
                                                               {"group", attr_int(group)},
                                                               {"auto_pad", attr_string(auto_pad)}};
                        const bool notset = std::string(auto_pad) == "NOTSET";
                        if (notset) attrs["pads"] = attr_ints(pads);
                        if (uniform(rng, 0, 1)) attrs["kernel_shape"] = attr_ints({kh, kw});
                        const node n = make_node("Conv", attrs);
                        BOOST_TEST_CONTEXT("x [" << batch << "," << group * cg << "," << h << "," << w << "] W ["
                                                 << group * mg << "," << cg << "," << kh << "," << kw << "] group "
                                                 << group << " strides " << stride << "," << sw << " dilations "
                                                 << dilation << "," << dw << " auto_pad " << auto_pad << " pads "
                                                 << pads[0] << "," << pads[1] << "," << pads[2] << "," << pads[3]) {
                            const dtensor filters = random_tensor(rng, {group * mg, cg, kh, kw});
                            const dtensor x = random_tensor(rng, {batch, group * cg, h, w});
                            const dtensor y = conv_fwd(n, {&x, &filters});
                            const zf::conv_layer layer = zf::conv_layer_of(n, filters, x.shape);
                            BOOST_REQUIRE(layer.output_shape == y.shape);
                            const dtensor r = random_tensor(rng, y.shape);
                            const dtensor back = zf::filter(layer, r);
                            const double e = adjoint_error(back, x, r, y);
                            BOOST_CHECK_LE(e, 1e-12);
                            worst = std::max(worst, e);
                            ++cases;
                            // Input rows or columns that no window reaches (a stride remainder).
                            const int64_t pb_h = layer.pad_begin[0], pb_w = layer.pad_begin[1];
                            if ((y.shape[2] - 1) * stride + eh < h + pb_h || (y.shape[3] - 1) * sw + ew < w + pb_w)
                                ++with_remainder;
                            if (layer.pad_begin != layer.pad_end) ++asymmetric;
                        }
                    }
    BOOST_TEST_MESSAGE("filter adjoint: " << cases << " geometries (" << with_remainder << " with uncovered input, "
                                          << asymmetric << " with asymmetric padding), worst relative error " << worst);
    BOOST_TEST(with_remainder > 20);
    BOOST_TEST(asymmetric > 20);
}

BOOST_AUTO_TEST_CASE(filter_rejects) {
    // 1-D and 3-D convolutions are not DeconvNet's; a filter that does not fit the groups is a model error.
    const node n = make_node("Conv");
    expect_error_naming<unsupported_error>(
        [&] {
            zf::conv_layer_of(n, dtensor({2, 3, 3}), {1, 3, 8});
        },
        n.name, "1-D conv");
    expect_error_naming<unsupported_error>(
        [&] {
            zf::conv_layer_of(n, dtensor({2, 3, 3, 3, 3}), {1, 3, 8, 8, 8});
        },
        n.name, "3-D conv");
    const node grouped = make_node("Conv", {{"group", attr_int(2)}});
    expect_error_naming<model_error>(
        [&] {
            zf::conv_layer_of(grouped, dtensor({3, 2, 3, 3}), {1, 4, 8, 8});
        },
        n.name, "3 filters in 2 groups");
    const node bad_pad = make_node("Conv", {{"auto_pad", attr_string("SAME")}});
    expect_error_naming<model_error>(
        [&] {
            zf::conv_layer_of(bad_pad, dtensor({2, 3, 3, 3}), {1, 3, 8, 8});
        },
        n.name, "auto_pad SAME");
    const zf::conv_layer layer = zf::conv_layer_of(n, dtensor({2, 3, 3, 3}), {1, 3, 8, 8});
    BOOST_CHECK_THROW(zf::filter(layer, dtensor({1, 2, 5, 6})), error);
}

// ---- fully connected ----

BOOST_AUTO_TEST_CASE(fc_hand_example) {
    // Gemm transB 1, alpha 2, B = [[1, 2, 3], [4, 5, 6]] ([out 2, in 3]): W = 2B; R = [1, 10] ->
    // R W = 2 [1 + 40, 2 + 50, 3 + 60] = [82, 104, 126].
    const zf::fc_layer g = zf::fc_layer_of(make_node("Gemm", {{"transB", attr_int(1)}, {"alpha", attr_float(2)}}),
                                           dtensor({2, 3}, {1, 2, 3, 4, 5, 6}), {1, 3});
    expect_values(g.weights, {2, 3}, {2, 4, 6, 8, 10, 12});
    expect_values(zf::transpose_multiply(g, dtensor({1, 2}, {1, 10})), {1, 3}, {82, 104, 126});
    // MatMul y = x B with B = [[1, 4], [2, 5], [3, 6]] ([in 3, out 2]): the same W = B^T.
    const zf::fc_layer m = zf::fc_layer_of(make_node("MatMul"), dtensor({3, 2}, {1, 4, 2, 5, 3, 6}), {3});
    expect_values(zf::transpose_multiply(m, dtensor({2}, {1, 10})), {3}, {41, 52, 63});
}

BOOST_AUTO_TEST_CASE(fc_adjoint) {
    std::mt19937 rng(7);
    double worst = 0;
    for (int64_t trans_b : {0, 1})
        for (double alpha : {1.0, 0.5, -2.5})
            for (int64_t batch : {1, 3}) {
                BOOST_TEST_CONTEXT("Gemm transB " << trans_b << " alpha " << alpha << " batch " << batch) {
                    const int64_t in = 7, out = 5;
                    const node n = make_node("Gemm", {{"transB", attr_int(trans_b)}, {"alpha", attr_float(alpha)}});
                    const dtensor b = random_tensor(rng, trans_b ? shape_t{out, in} : shape_t{in, out});
                    const dtensor x = random_tensor(rng, {batch, in});
                    const dtensor y = gemm_fwd(n, {&x, &b});
                    const zf::fc_layer layer = zf::fc_layer_of(n, b, x.shape);
                    const dtensor r = random_tensor(rng, y.shape);
                    const double e = adjoint_error(zf::transpose_multiply(layer, r), x, r, y);
                    BOOST_CHECK_LE(e, 1e-12);
                    worst = std::max(worst, e);
                }
            }
    for (const shape_t& xs : {shape_t{6}, shape_t{4, 6}, shape_t{2, 3, 6}}) {
        BOOST_TEST_CONTEXT("MatMul x " << to_string(xs)) {
            const node n = make_node("MatMul");
            const dtensor b = random_tensor(rng, {6, 9});
            const dtensor x = random_tensor(rng, xs);
            const dtensor y = matmul_fwd(n, {&x, &b});
            const zf::fc_layer layer = zf::fc_layer_of(n, b, x.shape);
            const dtensor r = random_tensor(rng, y.shape);
            const double e = adjoint_error(zf::transpose_multiply(layer, r), x, r, y);
            BOOST_CHECK_LE(e, 1e-12);
            worst = std::max(worst, e);
        }
    }
    BOOST_TEST_MESSAGE("fc adjoint: worst relative error " << worst);
}

BOOST_AUTO_TEST_CASE(fc_rejects) {
    const node gemm_t = make_node("Gemm", {{"transA", attr_int(1)}});
    expect_error_naming<unsupported_error>(
        [&] {
            zf::fc_layer_of(gemm_t, dtensor({3, 4}), {3, 2});
        },
        gemm_t.name, "Gemm transA 1");
    const node matmul = make_node("MatMul");
    expect_error_naming<unsupported_error>(
        [&] {
            zf::fc_layer_of(matmul, dtensor({2, 3, 4}), {2, 5, 3});
        },
        matmul.name, "MatMul with a 3-D second operand");
    expect_error_naming<model_error>(
        [&] {
            zf::fc_layer_of(matmul, dtensor({3, 4}), {2, 5});
        },
        matmul.name, "inner sizes 5 and 3");
}

// ---- max pooling ----

namespace {

struct brute_window {
    int64_t position = -1;
    int32_t holders = 0;
};

/// Brute force: every window, every position in row-major order, padding skipped. The geometry is
/// read directly from the attributes here (SAME padding worked out by the ONNX formula) and the
/// output size is the reference forward's.
std::vector<brute_window> brute_force_pool(const node& n, const dtensor& x, const shape_t& out_shape) {
    const auto kernel = n.get_ints("kernel_shape", {});
    const auto strides = n.get_ints("strides", {1, 1});
    const auto dilations = n.get_ints("dilations", {1, 1});
    const auto pads = n.get_ints("pads", {0, 0, 0, 0});
    const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
    std::array<int64_t, 2> begin{};
    for (size_t a = 0; a < 2; ++a) {
        const int64_t in = x.shape[2 + a], out = out_shape[2 + a];
        const int64_t total = std::max<int64_t>(0, (out - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - in);
        begin[a] = auto_pad == "NOTSET"       ? pads[a]
                   : auto_pad == "SAME_UPPER" ? total / 2
                   : auto_pad == "SAME_LOWER" ? (total + 1) / 2
                                              : 0;
    }
    std::vector<brute_window> result;
    const int64_t h = x.shape[2], w = x.shape[3];
    for (int64_t p = 0; p < x.shape[0] * x.shape[1]; ++p)
        for (int64_t oy = 0; oy < out_shape[2]; ++oy)
            for (int64_t ox = 0; ox < out_shape[3]; ++ox) {
                std::vector<int64_t> positions;
                for (int64_t ky = 0; ky < kernel[0]; ++ky)
                    for (int64_t kx = 0; kx < kernel[1]; ++kx) {
                        const int64_t iy = oy * strides[0] + ky * dilations[0] - begin[0];
                        const int64_t ix = ox * strides[1] + kx * dilations[1] - begin[1];
                        if (iy >= 0 && iy < h && ix >= 0 && ix < w) positions.push_back((p * h + iy) * w + ix);
                    }
                brute_window b;
                if (!positions.empty()) {
                    double best = x.data[static_cast<size_t>(positions[0])];
                    for (int64_t q : positions) best = std::max(best, x.data[static_cast<size_t>(q)]);
                    for (int64_t q : positions)
                        if (x.data[static_cast<size_t>(q)] == best) {
                            if (b.position < 0) b.position = q;
                            ++b.holders;
                        }
                }
                result.push_back(b);
            }
    return result;
}

void check_unpool_adjoint(std::mt19937& rng, const zf::switches& s) {
    // <unpool(R), X> = sum over windows R[e] X[switch(e)].
    const dtensor r = random_tensor(rng, s.output_shape);
    const dtensor x = random_tensor(rng, s.input_shape);
    const dtensor back = zf::unpool(s, r);
    BOOST_REQUIRE(back.shape == s.input_shape);
    double lhs = dot(back, x), rhs = 0, scale = 0;
    for (size_t e = 0; e < s.position.size(); ++e)
        if (s.position[e] >= 0) {
            rhs += r.data[e] * x.data[static_cast<size_t>(s.position[e])];
            scale += std::fabs(r.data[e] * x.data[static_cast<size_t>(s.position[e])]);
        }
    BOOST_CHECK_LE(std::fabs(lhs - rhs), 1e-12 * (scale + 1e-300));
}

} // namespace

BOOST_AUTO_TEST_CASE(switches_brute_force_sweep) {
    std::mt19937 rng(1513);
    int cases = 0, tied = 0, ceil_cases = 0;
    for (int64_t kernel = 1; kernel <= 3; ++kernel)
        for (int64_t stride = 1; stride <= 3; ++stride)
            for (int64_t dilation = 1; dilation <= 2; ++dilation)
                for (int64_t ceil : {0, 1})
                    for (const char* auto_pad : {"NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"})
                        for (int input_kind = 0; input_kind < 3; ++input_kind) {
                            // input_kind 0: rectified (zero ties), 1: all negative, 2: few levels of both signs.
                            const int64_t kw = uniform(rng, 1, 3);
                            const int64_t extent_h = (kernel - 1) * dilation + 1, extent_w = (kw - 1) * dilation + 1;
                            // Pads below the kernel (ONNX's rule), asymmetric.
                            const std::vector<int64_t> pads{uniform(rng, 0, kernel - 1), uniform(rng, 0, kw - 1),
                                                            uniform(rng, 0, kernel - 1), uniform(rng, 0, kw - 1)};
                            const shape_t shape{uniform(rng, 1, 2), uniform(rng, 1, 3), extent_h + uniform(rng, 0, 5),
                                                extent_w + uniform(rng, 0, 5)};
                            std::map<std::string, attribute> attrs{{"kernel_shape", attr_ints({kernel, kw})},
                                                                   {"strides", attr_ints({stride, uniform(rng, 1, 3)})},
                                                                   {"dilations", attr_ints({dilation, dilation})},
                                                                   {"ceil_mode", attr_int(ceil)},
                                                                   {"auto_pad", attr_string(auto_pad)}};
                            if (std::string(auto_pad) == "NOTSET") attrs["pads"] = attr_ints(pads);
                            const node n = make_node("MaxPool", attrs);
                            dtensor x = input_kind == 0 ? tie_rich(rng, shape, true) : tie_rich(rng, shape, false);
                            if (input_kind == 1)
                                for (double& v : x.data) v = -1.0 - std::fabs(v);
                            BOOST_TEST_CONTEXT("MaxPool x " << to_string(shape) << " kernel " << kernel << "x" << kw
                                                            << " stride " << stride << " dilation " << dilation
                                                            << " ceil " << ceil << " auto_pad " << auto_pad << " pads "
                                                            << pads[0] << "," << pads[1] << "," << pads[2] << ","
                                                            << pads[3] << " input kind " << input_kind) {
                                const dtensor y = max_pool_fwd(n, {&x});
                                const zf::switches s = zf::record_switches(n, x);
                                BOOST_REQUIRE(s.output_shape == y.shape);
                                BOOST_REQUIRE(s.input_shape == x.shape);
                                BOOST_REQUIRE_EQUAL(s.windows, y.size());
                                BOOST_REQUIRE_EQUAL(s.position.size(), y.data.size());
                                BOOST_REQUIRE_EQUAL(s.holders.size(), y.data.size());
                                const auto expected = brute_force_pool(n, x, y.shape);
                                int64_t expected_tied = 0;
                                for (size_t e = 0; e < expected.size(); ++e) {
                                    BOOST_CHECK_EQUAL(s.position[e], expected[e].position);
                                    BOOST_CHECK_EQUAL(s.holders[e], expected[e].holders);
                                    // The switch holds the maximum the reference's forward computed: a
                                    // padded position (worth -inf, or 0 in a wrong implementation) never.
                                    BOOST_REQUIRE_GE(s.position[e], 0);
                                    BOOST_CHECK_EQUAL(x.data[static_cast<size_t>(s.position[e])], y.data[e]);
                                    if (expected[e].holders > 1) ++expected_tied;
                                }
                                BOOST_CHECK_EQUAL(s.tied_windows, expected_tied);
                                check_unpool_adjoint(rng, s);
                                ++cases;
                                tied += s.tied_windows > 0;
                                ceil_cases += ceil && std::string(auto_pad) == "NOTSET";
                            }
                        }
    BOOST_TEST_MESSAGE("switches: " << cases << " geometries, " << tied << " with tied windows");
    BOOST_TEST(tied > cases / 4);
    BOOST_TEST(ceil_cases > 0);
}

BOOST_AUTO_TEST_CASE(switches_hand_examples) {
    // All zeros (a rectified patch), 3x3, kernel 2, stride 1: every window is a 4-way tie; the switch is
    // each window's top-left position.
    const node k2 = make_node("MaxPool", {{"kernel_shape", attr_ints({2, 2})}});
    const zf::switches zeros = zf::record_switches(k2, dtensor({1, 1, 3, 3}));
    BOOST_TEST(zeros.position == (std::vector<int64_t>{0, 1, 3, 4}), boost::test_tools::per_element());
    BOOST_TEST(zeros.holders == (std::vector<int32_t>{4, 4, 4, 4}), boost::test_tools::per_element());
    BOOST_TEST(zeros.windows == 4);
    BOOST_TEST(zeros.tied_windows == 4);

    // One peak in the centre: all four windows switch to it, and unpooling adds their values there.
    const dtensor peak({1, 1, 3, 3}, {0, 0, 0, 0, 9, 0, 0, 0, 0});
    const zf::switches shared = zf::record_switches(k2, peak);
    BOOST_TEST(shared.position == (std::vector<int64_t>{4, 4, 4, 4}), boost::test_tools::per_element());
    BOOST_TEST(shared.tied_windows == 0);
    expect_values(zf::unpool(shared, dtensor({1, 1, 2, 2}, {1, 2, 3, 4})), {1, 1, 3, 3}, {0, 0, 0, 0, 10, 0, 0, 0, 0});

    // Negative input with padding 1, kernel 2, stride 2: each window holds one real value and three
    // padded ones; padding never wins even though every value is below zero.
    const node padded = make_node(
        "MaxPool",
        {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}, {"pads", attr_ints({1, 1, 1, 1})}});
    const zf::switches neg = zf::record_switches(padded, dtensor({1, 1, 2, 2}, {-4, -3, -2, -1}));
    BOOST_TEST(neg.output_shape == (shape_t{1, 1, 2, 2}));
    BOOST_TEST(neg.position == (std::vector<int64_t>{0, 1, 2, 3}), boost::test_tools::per_element());
    BOOST_TEST(neg.holders == (std::vector<int32_t>{1, 1, 1, 1}), boost::test_tools::per_element());

    // ceil_mode: 5x5, kernel 2, stride 2 -> 3x3 (floor: 2x2); the last row/column of windows holds
    // only input row/column 4. Values are the flat index, so the maximum is the bottom-right element.
    dtensor ramp({1, 1, 5, 5});
    for (size_t i = 0; i < ramp.data.size(); ++i) ramp.data[i] = static_cast<double>(i);
    const node ceil = make_node(
        "MaxPool", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}, {"ceil_mode", attr_int(1)}});
    const zf::switches c = zf::record_switches(ceil, ramp);
    BOOST_TEST(c.output_shape == (shape_t{1, 1, 3, 3}));
    BOOST_TEST(c.position == (std::vector<int64_t>{6, 8, 9, 16, 18, 19, 21, 23, 24}), boost::test_tools::per_element());
    const node floor = make_node("MaxPool", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    BOOST_TEST(zf::record_switches(floor, ramp).output_shape == (shape_t{1, 1, 2, 2}));
    // ceil_mode exists from MaxPool-10 on; an opset-8 node floors.
    BOOST_TEST(zf::record_switches(make_node("MaxPool", ceil.attributes, 8), ramp).output_shape ==
               (shape_t{1, 1, 2, 2}));

    // A window that would start in the end padding is dropped: 4 wide, kernel 2, stride 2, end pad 1,
    // ceil: ceil((4 + 1 - 2) / 2) + 1 = 3 windows, the third starting at 4 (padding) -> 2.
    const node drop = make_node("MaxPool", {{"kernel_shape", attr_ints({1, 2})},
                                            {"strides", attr_ints({1, 2})},
                                            {"pads", attr_ints({0, 0, 0, 1})},
                                            {"ceil_mode", attr_int(1)}});
    const dtensor row({1, 1, 1, 4}, {1, 2, 3, 4});
    BOOST_TEST(zf::record_switches(drop, row).output_shape == (shape_t{1, 1, 1, 2}));
    BOOST_TEST(max_pool_fwd(drop, {&row}).shape == (shape_t{1, 1, 1, 2}));
}

BOOST_AUTO_TEST_CASE(global_max_pool_switches) {
    std::mt19937 rng(11);
    const node n = make_node("GlobalMaxPool");
    for (bool rectified : {false, true}) {
        const dtensor x = tie_rich(rng, {2, 3, 4, 5}, rectified);
        const zf::switches s = zf::record_switches(n, x);
        BOOST_REQUIRE(s.output_shape == (shape_t{2, 3, 1, 1}));
        BOOST_REQUIRE_EQUAL(s.windows, 6);
        int64_t tied = 0;
        for (int64_t p = 0; p < 6; ++p) {
            int64_t first = -1;
            int32_t holders = 0;
            double best = -1e300;
            for (int64_t k = 0; k < 20; ++k) best = std::max(best, x.data[static_cast<size_t>(p * 20 + k)]);
            for (int64_t k = 0; k < 20; ++k)
                if (x.data[static_cast<size_t>(p * 20 + k)] == best) {
                    if (first < 0) first = p * 20 + k;
                    ++holders;
                }
            BOOST_CHECK_EQUAL(s.position[static_cast<size_t>(p)], first);
            BOOST_CHECK_EQUAL(s.holders[static_cast<size_t>(p)], holders);
            tied += holders > 1;
        }
        BOOST_CHECK_EQUAL(s.tied_windows, tied);
        BOOST_TEST(tied > 0); // seven levels over 20 positions: ties are certain enough to require
        check_unpool_adjoint(rng, s);
    }
}

BOOST_AUTO_TEST_CASE(pool_rejects) {
    const node one_d = make_node("MaxPool", {{"kernel_shape", attr_ints({2})}});
    expect_error_naming<unsupported_error>(
        [&] {
            zf::record_switches(one_d, dtensor({1, 1, 6}));
        },
        one_d.name, "1-D max pooling");
    const node avg = make_node("AveragePool", {{"kernel_shape", attr_ints({2, 2})}});
    expect_error_naming<unsupported_error>(
        [&] {
            zf::record_switches(avg, dtensor({1, 1, 4, 4}));
        },
        avg.name, "average pooling");
}

// ---- ReLU ----

BOOST_AUTO_TEST_CASE(rectify_is_relu_of_the_signal) {
    std::mt19937 rng(17);
    const dtensor r = random_away_from_zero(rng, {2, 3, 4});
    dtensor positive = random_tensor(rng, r.shape, 0.1, 1), negative = random_tensor(rng, r.shape, -1, -0.1);
    const dtensor a = zf::rectify(r, positive), b = zf::rectify(r, negative), c = zf::rectify(r, r);
    BOOST_REQUIRE(a.shape == r.shape);
    int64_t kept = 0;
    for (size_t i = 0; i < r.data.size(); ++i) {
        BOOST_CHECK_EQUAL(a.data[i], std::max(r.data[i], 0.0));
        BOOST_CHECK_EQUAL(b.data[i], a.data[i]);
        BOOST_CHECK_EQUAL(c.data[i], a.data[i]);
        kept += r.data[i] > 0;
    }
    BOOST_TEST(kept > 0);
    BOOST_TEST(kept < r.size());
    expect_values(zf::rectify(dtensor({4}, {-2, 0, 0.5, 3}), dtensor({4}, {5, 5, -5, -5})), {4}, {0, 0, 0.5, 3});
}

BOOST_AUTO_TEST_SUITE_END()

// Timing of filtering, not a test: a suite of its own, disabled, so that --run_test=deconvnet leaves it
// out; run it by hand with --run_test=deconvnet_speed (OMP_NUM_THREADS sets the threads).
BOOST_AUTO_TEST_SUITE(deconvnet_speed, *boost::unit_test::disabled())

BOOST_AUTO_TEST_CASE(vgg16_filter) {
    // Filtering through the 13 VGG-16 conv layers at 224x224 (3x3, pad 1): about 15.3 G multiply-adds.
    std::mt19937 rng(16);
    struct layer_shape {
        int64_t in, out, size;
    };
    const std::vector<layer_shape> layers = {
        {3, 64, 224},   {64, 64, 224},  {64, 128, 112}, {128, 128, 112}, {128, 256, 56}, {256, 256, 56}, {256, 256, 56},
        {256, 512, 28}, {512, 512, 28}, {512, 512, 28}, {512, 512, 14},  {512, 512, 14}, {512, 512, 14}};
    const node n = make_node("Conv", {{"pads", attr_ints({1, 1, 1, 1})}});
    double total = 0;
    for (const auto& l : layers) {
        const zf::conv_layer layer =
            zf::conv_layer_of(n, random_tensor(rng, {l.out, l.in, 3, 3}), {1, l.in, l.size, l.size});
        const dtensor r = random_tensor(rng, layer.output_shape);
        const auto t0 = std::chrono::steady_clock::now();
        const dtensor back = zf::filter(layer, r);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        total += s;
        BOOST_TEST(back.shape == layer.input_shape);
        BOOST_TEST_MESSAGE("filter " << l.out << " -> " << l.in << " @ " << l.size << ": " << s << " s");
    }
    BOOST_TEST_MESSAGE("VGG-16 conv layers, filtering in double: " << total << " s");
}

BOOST_AUTO_TEST_SUITE_END()
