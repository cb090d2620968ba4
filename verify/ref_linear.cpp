// Gemm and MatMul (numpy matmul semantics, batched with broadcasting), on Eigen matrices in double.
#include "ref_ops.hpp"

#include <Eigen/Dense>
#include <fmt/format.h>

namespace deepinside::verify {

namespace {

using row_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using const_view = Eigen::Map<const row_matrix>;
using view = Eigen::Map<row_matrix>;

struct gemm_shape {
    int64_t m = 0, k = 0, n = 0;
    bool trans_a = false, trans_b = false;
    double alpha = 1, beta = 1;
    const dtensor* c = nullptr;
};

gemm_shape gemm_geometry(const node& n, const src_list& src) {
    const dtensor& a = input(n, src, 0);
    const dtensor& b = input(n, src, 1);
    require_rank(n, a, 2, "input A");
    require_rank(n, b, 2, "input B");
    gemm_shape s;
    s.trans_a = n.get_int("transA", 0) != 0;
    s.trans_b = n.get_int("transB", 0) != 0;
    s.alpha = static_cast<double>(n.get_float("alpha", 1.0f));
    s.beta = static_cast<double>(n.get_float("beta", 1.0f));
    s.m = s.trans_a ? a.shape[1] : a.shape[0];
    s.k = s.trans_a ? a.shape[0] : a.shape[1];
    const int64_t kb = s.trans_b ? b.shape[1] : b.shape[0];
    s.n = s.trans_b ? b.shape[0] : b.shape[1];
    if (kb != s.k)
        throw model_error(fmt::format("{}: A {} and B {} (transA {}, transB {}) have inner sizes {} and {}",
                                      n.describe(), to_string(a.shape), to_string(b.shape), s.trans_a, s.trans_b, s.k,
                                      kb));
    s.c = src.size() > 2 ? src[2] : nullptr;
    // C broadcasts unidirectionally to [M, N].
    if (s.c && broadcast_shapes(n, s.c->shape, {s.m, s.n}) != shape_t{s.m, s.n})
        throw model_error(fmt::format("{}: C of shape {} does not broadcast to [{}, {}]", n.describe(),
                                      to_string(s.c->shape), s.m, s.n));
    return s;
}

/// Calls f with the 2-D view of `t`, transposed or not, without copying: Eigen folds the transpose
/// into the product (a copy of a 4096x25088 weight would dominate a VGG pass).
template <typename F>
row_matrix with_op(const dtensor& t, bool transpose, F&& f) {
    const const_view v(t.data.data(), t.shape[0], t.shape[1]);
    return transpose ? row_matrix(f(v.transpose())) : row_matrix(f(v));
}

} // namespace

dtensor gemm_fwd(const node& n, const src_list& src) {
    const gemm_shape s = gemm_geometry(n, src);
    dtensor y({s.m, s.n});
    view(y.data.data(), s.m, s.n) = with_op(*src[0], s.trans_a, [&](const auto& a) {
        return with_op(*src[1], s.trans_b, [&](const auto& b) { return row_matrix(s.alpha * (a * b)); });
    });
    if (s.c) {
        const auto idx = broadcast_index(s.c->shape, y.shape);
        for (size_t i = 0; i < idx.size(); ++i) y.data[i] += s.beta * s.c->data[static_cast<size_t>(idx[i])];
    }
    return y;
}

std::vector<dtensor> gemm_bwd(const backward_args& a) {
    const gemm_shape s = gemm_geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    const const_view g(a.diff_dst.data.data(), s.m, s.n);
    if (a.need[0]) {
        const row_matrix d = with_op(*a.src[1], s.trans_b, [&](const auto& b) {
            return row_matrix(s.alpha * (g * b.transpose())); // [M, K]
        });
        diffs[0] = dtensor(a.src[0]->shape);
        view(diffs[0].data.data(), a.src[0]->shape[0], a.src[0]->shape[1]) = s.trans_a ? row_matrix(d.transpose()) : d;
    }
    if (a.need[1]) {
        const row_matrix d = with_op(*a.src[0], s.trans_a, [&](const auto& x) {
            return row_matrix(s.alpha * (x.transpose() * g)); // [K, N]
        });
        diffs[1] = dtensor(a.src[1]->shape);
        view(diffs[1].data.data(), a.src[1]->shape[0], a.src[1]->shape[1]) = s.trans_b ? row_matrix(d.transpose()) : d;
    }
    if (a.need.size() > 2 && a.need[2]) {
        diffs[2] = reduce_to_shape(a.diff_dst, s.c->shape);
        for (double& v : diffs[2].data) v *= s.beta;
    }
    return diffs;
}

namespace {

struct matmul_shape {
    int64_t m = 0, k = 0, n = 0;
    shape_t out;
    std::vector<int64_t> a_batch, b_batch; ///< per output batch: the batch index into A and into B
};

matmul_shape matmul_geometry(const node& n, const src_list& src) {
    const dtensor& a = input(n, src, 0);
    const dtensor& b = input(n, src, 1);
    if (a.shape.empty() || b.shape.empty())
        throw model_error(fmt::format("{}: MatMul operands must have rank >= 1", n.describe()));
    // numpy: a 1-D A is a row [1, K], a 1-D B a column [K, 1]; the added axis is removed from the output.
    shape_t as = a.shape.size() == 1 ? shape_t{1, a.shape[0]} : a.shape;
    shape_t bs = b.shape.size() == 1 ? shape_t{b.shape[0], 1} : b.shape;
    matmul_shape s;
    s.m = as[as.size() - 2];
    s.k = as.back();
    s.n = bs.back();
    if (bs[bs.size() - 2] != s.k)
        throw model_error(fmt::format("{}: A {} and B {} have inner sizes {} and {}", n.describe(), to_string(a.shape),
                                      to_string(b.shape), s.k, bs[bs.size() - 2]));
    const shape_t a_batch(as.begin(), as.end() - 2), b_batch(bs.begin(), bs.end() - 2);
    const shape_t batch = broadcast_shapes(n, a_batch, b_batch);
    s.a_batch = broadcast_index(a_batch, batch);
    s.b_batch = broadcast_index(b_batch, batch);
    s.out = batch;
    if (a.shape.size() > 1) s.out.push_back(s.m);
    if (b.shape.size() > 1) s.out.push_back(s.n);
    return s;
}

} // namespace

dtensor matmul_fwd(const node& n, const src_list& src) {
    const matmul_shape s = matmul_geometry(n, src);
    dtensor y(s.out);
    for (size_t i = 0; i < s.a_batch.size(); ++i) {
        const const_view a(src[0]->data.data() + s.a_batch[i] * s.m * s.k, s.m, s.k);
        const const_view b(src[1]->data.data() + s.b_batch[i] * s.k * s.n, s.k, s.n);
        view(y.data.data() + static_cast<int64_t>(i) * s.m * s.n, s.m, s.n) = a * b;
    }
    return y;
}

std::vector<dtensor> matmul_bwd(const backward_args& args) {
    const matmul_shape s = matmul_geometry(args.n, args.src);
    auto diffs = empty_diffs(args);
    if (args.need[0]) diffs[0] = dtensor(args.src[0]->shape);
    if (args.need[1]) diffs[1] = dtensor(args.src[1]->shape);
    // Summing into the broadcast operand's single batch reduces over the broadcast batch axes.
    for (size_t i = 0; i < s.a_batch.size(); ++i) {
        const const_view g(args.diff_dst.data.data() + static_cast<int64_t>(i) * s.m * s.n, s.m, s.n);
        const const_view a(args.src[0]->data.data() + s.a_batch[i] * s.m * s.k, s.m, s.k);
        const const_view b(args.src[1]->data.data() + s.b_batch[i] * s.k * s.n, s.k, s.n);
        if (args.need[0]) view(diffs[0].data.data() + s.a_batch[i] * s.m * s.k, s.m, s.k) += g * b.transpose();
        if (args.need[1]) view(diffs[1].data.data() + s.b_batch[i] * s.k * s.n, s.k, s.n) += a.transpose() * g;
    }
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> linear_ops() {
    return {
        {"Gemm", gemm_fwd, gemm_bwd, nullptr, all_inputs, nullptr},
        {"MatMul", matmul_fwd, matmul_bwd, nullptr, all_inputs, nullptr},
    };
}

} // namespace deepinside::verify
