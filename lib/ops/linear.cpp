// Gemm and MatMul on oneDNN matmul. With a constant right-hand side (a fully connected layer) the
// backward is diff_A = diff_Y · Bᵀ, a second matmul over the transposed view of the same weights.
// MatMul of two activations (attention's Q·Kᵀ and P·V) differentiates both factors:
// diff_A = diff_Y · Bᵀ and diff_B = Aᵀ · diff_Y, on the stacked forward values.
#include "ops/op.hpp"

namespace deepinside::ops {

namespace {

using dt = dnnl::memory::data_type;

/// C-order strides of `d`, with the last two axes swapped when `transposed` (a transposed view).
engine::dims strides_of(const engine::dims& d, bool transposed) {
    engine::dims logical = d;
    if (transposed) std::swap(logical[d.size() - 1], logical[d.size() - 2]);
    engine::dims s(d.size(), 1);
    for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * logical[i + 1];
    if (transposed) std::swap(s[d.size() - 1], s[d.size() - 2]);
    return s;
}

class linear_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& a = fb.input(0).shape;
        const constant& b = fb.constant_input(1, "B");
        if (b.is_int) throw model_error(fmt::format("{}: B must be float", node_.describe()));
        const bool gemm = node_.op_type == "Gemm";
        trans_a_ = gemm && node_.get_int("transA", 0) != 0;
        const bool trans_b = gemm && node_.get_int("transB", 0) != 0;
        const float alpha = gemm ? node_.get_float("alpha", 1.0f) : 1.0f;
        if (gemm && (a.size() != 2 || b.shape.size() != 2))
            throw model_error(fmt::format("{}: Gemm needs 2-D inputs, has {} and {}", node_.describe(), to_string(a), to_string(b.shape)));
        if (a.size() < 2 || b.shape.size() < 2)
            refuse(fmt::format("MatMul of 1-D operands is not supported ({} × {})", to_string(a), to_string(b.shape)));

        // Align ranks (batch axes broadcast as in NumPy), then read M, K, N.
        const size_t rank = std::max(a.size(), b.shape.size());
        a_dims_ = engine::dims(rank - a.size(), 1);
        a_dims_.insert(a_dims_.end(), a.begin(), a.end());
        b_dims_ = engine::dims(rank - b.shape.size(), 1);
        b_dims_.insert(b_dims_.end(), b.shape.begin(), b.shape.end());
        if (trans_a_) std::swap(a_dims_[rank - 1], a_dims_[rank - 2]);
        if (trans_b) std::swap(b_dims_[rank - 1], b_dims_[rank - 2]);
        const int64_t m = a_dims_[rank - 2], k = a_dims_[rank - 1], n = b_dims_[rank - 1];
        if (b_dims_[rank - 2] != k)
            throw model_error(fmt::format("{}: inner dimensions differ ({} × {})", node_.describe(), to_string(a), to_string(b.shape)));
        y_dims_ = engine::dims(rank);
        for (size_t i = 0; i + 2 < rank; ++i) {
            if (a_dims_[i] != b_dims_[i] && a_dims_[i] != 1 && b_dims_[i] != 1)
                throw model_error(fmt::format("{}: batch axes do not broadcast ({} × {})", node_.describe(), to_string(a), to_string(b.shape)));
            y_dims_[i] = std::max(a_dims_[i], b_dims_[i]);
        }
        y_dims_[rank - 2] = m;
        y_dims_[rank - 1] = n;

        // Weights: read in place from the graph's constant, B or (transB) Bᵀ as a transposed view,
        // in both passes, so that a fully connected layer's weights are held once (they are most
        // of VGG's 553 MB). Only alpha ≠ 1 makes a copy, with alpha folded in, in C order.
        if (alpha == 1.0f) {
            weights_data_ = const_cast<float*>(b.floats.data()); // never written: both primitives only read it
            weights_transposed_ = trans_b;
        } else {
            weights_.assign(b.floats.size(), 0.0f);
            const int64_t batches = static_cast<int64_t>(b.floats.size()) / (k * n);
            for (int64_t q = 0; q < batches; ++q)
                for (int64_t r = 0; r < k; ++r)
                    for (int64_t c = 0; c < n; ++c)
                        weights_[(q * k + r) * n + c] = alpha * b.floats[q * k * n + (trans_b ? c * k + r : r * n + c)];
            weights_data_ = weights_.data();
            weights_transposed_ = false;
        }

        dnnl::memory src = fb.input_plain(0);
        dnnl::memory::desc a_md(a_dims_, dt::f32, strides_of(a_dims_, trans_a_));
        dnnl::memory a_view = engine::view(fb.eng(), a_md, src.get_data_handle());
        dnnl::memory::desc y_md(y_dims_, dt::f32, strides_of(y_dims_, false));

        dnnl::memory::desc bias_md;
        dnnl::memory bias;
        if (gemm && fb.has_input(2)) {
            bias_ = broadcast_bias(fb.constant_input(2, "C"), node_.get_float("beta", 1.0f), m, n);
            bias_md = dnnl::memory::desc({bias_rows_, n}, dt::f32, dnnl::memory::format_tag::ab);
            bias = engine::view(fb.eng(), bias_md, bias_.data());
        }
        dnnl::memory dst = fb.allocate(y_md);
        // A few rows (a fully connected layer at a small batch) read the weights once, at memory
        // speed: oneDNN's inner product (its gemm kernel) does so on the weights as stored, 13.4 ms
        // for VGG-16's 25088 x 4096 layer at batch 1 against 18.8 ms for the matmul; from some tens
        // of rows on, the matmul is faster (72.8 against 145.6 ms at 64).
        if (rank == 2 && !trans_a_ && bias_rows_ == 1 && m <= 16) {
            const dnnl::memory::desc src_md({m, k}, dt::f32, dnnl::memory::format_tag::nc);
            const dnnl::memory::desc w_md = inner_product_weights(n, k);
            const dnnl::memory::desc b_md = bias ? dnnl::memory::desc({n}, dt::f32, dnnl::memory::format_tag::x) : dnnl::memory::desc();
            const dnnl::inner_product_forward::primitive_desc ip({dnnl::prop_kind::forward_training, src_md, w_md, b_md, y_md}, fb.eng());
            std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, engine::view(fb.eng(), src_md, src.get_data_handle())},
                                                       {DNNL_ARG_WEIGHTS, engine::view(fb.eng(), w_md, weights_data_)},
                                                       {DNNL_ARG_DST, dst}};
            if (bias) args[DNNL_ARG_BIAS] = engine::view(fb.eng(), b_md, bias_.data());
            fb.add(dnnl::inner_product_forward(ip), std::move(args));
            fb.define_output(0, shape_t(y_dims_.begin(), y_dims_.end()), dst);
            return;
        }
        const dnnl::memory weights = engine::view(fb.eng(), {b_dims_, dt::f32, strides_of(b_dims_, weights_transposed_)}, weights_data_);
        dnnl::matmul::desc desc(a_md, weights.get_desc(), bias_md, y_md);
        dnnl::matmul::primitive_desc pd(desc, fb.eng());
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, a_view}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
        if (bias) args[DNNL_ARG_BIAS] = bias;
        fb.add(dnnl::matmul(pd), std::move(args));
        fb.define_output(0, shape_t(y_dims_.begin(), y_dims_.end()), dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        if (trans_a_) refuse("backward through transA=1 is not supported");
        const size_t rank = a_dims_.size();
        for (size_t i = 0; i + 2 < rank; ++i)
            if (a_dims_[i] != y_dims_[i] || b_dims_[i] != 1)
                refuse("backward through a batched MatMul with broadcast or batched weights is not supported");
        // Stacked copies along the outermost axis: in plain layout that is K copies of the whole tensor.
        // diff_A = diff_Y · Bᵀ, every leading axis folded into the rows, is the backward-data of an
        // inner product whose weights are B as stored ([N, K]: "oi", or [K, N] under transB = 0:
        // "io"). oneDNN's gemm kernel reads them in place at the speed of a copy into its preferred
        // layout: VGG-16's 25088 × 4096 layer took 13.5 ms at batch 1 and 62 ms at 64, against 38 and
        // 82 ms for a matmul over the same view, and 18 and 64 ms after a 411 MB copy.
        const int64_t rows = element_count(shape_t(a_dims_.begin(), a_dims_.end() - 1)) * bb.stack();
        const int64_t k = a_dims_[rank - 1], n = y_dims_[rank - 1];
        const dnnl::memory::desc da_md({rows, k}, dt::f32, dnnl::memory::format_tag::nc);
        const dnnl::memory::desc dy_md({rows, n}, dt::f32, dnnl::memory::format_tag::nc);
        const dnnl::memory::desc w_md = inner_product_weights(n, k);
        const dnnl::inner_product_forward::primitive_desc hint({dnnl::prop_kind::forward_training, da_md, w_md, dy_md}, bb.eng());
        const dnnl::inner_product_backward_data::primitive_desc pd({da_md, w_md, dy_md}, bb.eng(), hint);
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(bb.forward_value(node_.outputs[0]).shape), bb.stack()));
        dnnl::memory diff_a = bb.allocate(da_md);
        bb.add(dnnl::inner_product_backward_data(pd),
               {{DNNL_ARG_DIFF_DST, engine::view(bb.eng(), dy_md, g.get_data_handle())},
                {DNNL_ARG_WEIGHTS, engine::view(bb.eng(), w_md, weights_data_)},
                {DNNL_ARG_DIFF_SRC, diff_a}});
        const dnnl::memory::desc a_plain = engine::scale_batch(engine::plain_desc(bb.forward_value(in).shape), bb.stack());
        bb.contribute(in, engine::view(bb.eng(), a_plain, diff_a.get_data_handle()));
    }

private:
    /// weights_data_ as an inner product's [N, K] weights: "oi" when stored [N, K] (transB), else "io".
    dnnl::memory::desc inner_product_weights(int64_t n, int64_t k) const {
        return {{n, k}, dt::f32, weights_transposed_ ? dnnl::memory::format_tag::oi : dnnl::memory::format_tag::io};
    }

    /// beta·C broadcast to [1, N] when C is a row vector or scalar, else to [M, N].
    std::vector<float> broadcast_bias(const constant& c, float beta, int64_t m, int64_t n) {
        if (c.is_int) throw model_error(fmt::format("{}: C must be float", node_.describe()));
        shape_t cs = c.shape;
        while (cs.size() < 2) cs.insert(cs.begin(), 1);
        if (cs.size() != 2 || (cs[0] != 1 && cs[0] != m) || (cs[1] != 1 && cs[1] != n))
            throw model_error(fmt::format("{}: C of shape {} does not broadcast to [{}, {}]", node_.describe(), to_string(c.shape), m, n));
        bias_rows_ = cs[0] == 1 ? 1 : m;
        std::vector<float> out(static_cast<size_t>(bias_rows_ * n));
        for (int64_t r = 0; r < bias_rows_; ++r)
            for (int64_t q = 0; q < n; ++q)
                out[r * n + q] = beta * c.floats[(cs[0] == 1 ? 0 : r) * cs[1] + (cs[1] == 1 ? 0 : q)];
        return out;
    }

    bool trans_a_ = false;
    engine::dims a_dims_, b_dims_, y_dims_;
    int64_t bias_rows_ = 1;
    std::vector<float> weights_, bias_; ///< weights_: only when alpha ≠ 1 (else the graph's constant is read)
    float* weights_data_ = nullptr;     ///< B as [.., K, N]: the graph's constant, or weights_
    bool weights_transposed_ = false;   ///< weights_data_ holds [.., N, K] (B given with transB)
};

/// MatMul of two activations, batch axes equal (attention: [N, heads, T, d] × [N, heads, d, T]).
class bilinear_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t &a = fb.input(0).shape, &b = fb.input(1).shape;
        if (a.size() < 2 || b.size() < 2 || a.size() != b.size())
            refuse(fmt::format("MatMul of two activations needs operands of the same rank, at least 2 ({} × {})", to_string(a),
                               to_string(b)));
        const size_t rank = a.size();
        for (size_t i = 0; i + 2 < rank; ++i)
            if (a[i] != b[i])
                refuse(fmt::format("MatMul of two activations with broadcast batch axes is not supported ({} × {})", to_string(a),
                                   to_string(b)));
        if (a[rank - 1] != b[rank - 2])
            throw model_error(fmt::format("{}: inner dimensions differ ({} × {})", node_.describe(), to_string(a), to_string(b)));
        a_ = a;
        b_ = b;
        y_ = a;
        y_[rank - 1] = b[rank - 1];
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(engine::plain_desc(a_), engine::plain_desc(b_), engine::plain_desc(y_)), fb.eng());
        dnnl::memory dst = fb.allocate(engine::plain_desc(y_));
        fb.add(dnnl::matmul(pd), {{DNNL_ARG_SRC, fb.input_plain(0)}, {DNNL_ARG_WEIGHTS, fb.input_plain(1)}, {DNNL_ARG_DST, dst}});
        fb.define_output(0, y_, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const int64_t k = bb.stack();
        const engine::dims a = stacked_dims(a_, k), b = stacked_dims(b_, k), y = stacked_dims(y_, k);
        const dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y_), k));
        if (bb.wants_diff(node_.inputs[0])) { // diff_A = diff_Y · Bᵀ
            const dnnl::memory b_t = engine::view(bb.eng(), {transposed(b), dt::f32, strides_of(transposed(b), true)},
                                                  plain_stacked(bb, node_.inputs[1], b_).get_data_handle());
            bb.contribute(node_.inputs[0], product(bb, g, b_t, a));
        }
        if (bb.wants_diff(node_.inputs[1])) { // diff_B = Aᵀ · diff_Y
            const dnnl::memory a_t = engine::view(bb.eng(), {transposed(a), dt::f32, strides_of(transposed(a), true)},
                                                  plain_stacked(bb, node_.inputs[0], a_).get_data_handle());
            bb.contribute(node_.inputs[1], product(bb, a_t, g, b));
        }
    }

private:
    static engine::dims stacked_dims(const shape_t& s, int64_t k) {
        engine::dims d(s.begin(), s.end());
        d[0] *= k;
        return d;
    }
    static engine::dims transposed(engine::dims d) {
        std::swap(d[d.size() - 1], d[d.size() - 2]);
        return d;
    }

    /// The forward value of `name`, stacked and in C order (reordered at run time when its producer
    /// chose a blocked layout).
    static dnnl::memory plain_stacked(engine::backward_builder& bb, const std::string& name, const shape_t& shape) {
        dnnl::memory m = bb.stacked_forward(name);
        const dnnl::memory::desc plain = engine::scale_batch(engine::plain_desc(shape), bb.stack());
        if (m.get_desc() == plain) return m;
        dnnl::memory r = bb.allocate(plain);
        bb.add(dnnl::reorder(m, r), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, r}});
        return r;
    }

    static dnnl::memory product(engine::backward_builder& bb, const dnnl::memory& lhs, const dnnl::memory& rhs, const engine::dims& out) {
        const dnnl::memory::desc out_md(out, dt::f32, strides_of(out, false));
        dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(lhs.get_desc(), rhs.get_desc(), out_md), bb.eng());
        dnnl::memory dst = bb.allocate(out_md);
        bb.add(dnnl::matmul(pd), {{DNNL_ARG_SRC, lhs}, {DNNL_ARG_WEIGHTS, rhs}, {DNNL_ARG_DST, dst}});
        return dst;
    }

    shape_t a_, b_, y_;
};

/// MatMul: a fully connected layer when B is a constant, else the product of two activations.
/// Which one is known only when the node is compiled (B may be a folded constant).
class matmul_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        if (fb.is_constant(node_.inputs.at(0)) && !fb.is_constant(node_.inputs.at(1)))
            refuse("MatMul of a constant by an activation (constant on the left) is not supported");
        if (fb.is_constant(node_.inputs.at(1))) impl_ = std::make_unique<linear_op>(node_);
        else impl_ = std::make_unique<bilinear_op>(node_);
        impl_->build_forward(fb);
    }
    void build_backward(engine::backward_builder& bb) override { impl_->build_backward(bb); }

private:
    std::unique_ptr<op> impl_;
};

} // namespace

std::unique_ptr<op> make_gemm(const node& n) { return std::make_unique<linear_op>(n); }
std::unique_ptr<op> make_matmul(const node& n) { return std::make_unique<matmul_op>(n); }

} // namespace deepinside::ops
