// Add, Sub, Mul, Div with NumPy broadcasting, on oneDNN binary primitives. The operand that spans
// the output is src0; the other may broadcast (a bias, a per-channel scale, the [N, C, 1, 1] gate of
// a squeeze-and-excitation block, the [N, H, W, 1] mean of a decomposed layer norm) or be a second
// activation of the same shape (a residual connection). oneDNN broadcasts src1 only, so an
// activation that must be src0 but does not span the output (mean - x, mean / x) is first spelled
// out over the output by a host loop.
//
// Backward: the signal to an operand is the elementwise partial derivative times the signal at the
// output, summed (a oneDNN reduction) over the axes along which that operand was broadcast. An
// activation may broadcast along every axis but the batch one: a stacked backward pass multiplies
// the batch axis of every activation and signal, so a sum along it would mix the requests.
#include "ops/fusion.hpp"
#include "ops/op.hpp"

#include <algorithm>
#include <cmath>
#include <deque>

namespace deepinside::ops {

namespace {

using dt = dnnl::memory::data_type;

shape_t aligned(const shape_t& s, size_t rank) {
    shape_t out(rank - s.size(), 1);
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

/// Writes `src` (C order, `src_shape` of the same rank as `shape`, 1 where it broadcasts) spelled out
/// over `shape` into `dst` (C order).
void broadcast_into(const float* src, const shape_t& src_shape, float* dst, const shape_t& shape) {
    const int64_t count = element_count(shape);
    std::vector<int64_t> idx(shape.size(), 0);
    for (int64_t i = 0; i < count; ++i) {
        int64_t from = 0;
        for (size_t d = 0; d < shape.size(); ++d) from = from * src_shape[d] + (src_shape[d] == 1 ? 0 : idx[d]);
        dst[i] = src[from];
        for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

/// A constant broadcast to `shape` (C order), for a constant that must span the output.
std::vector<float> broadcast_to(const constant& c, const shape_t& shape) {
    std::vector<float> out(static_cast<size_t>(element_count(shape)));
    broadcast_into(c.floats.data(), aligned(c.shape, shape.size()), out.data(), shape);
    return out;
}

class binary_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const std::string& t = node_.op_type;
        alg_ = t == "Add" ? dnnl::algorithm::binary_add
             : t == "Sub" ? dnnl::algorithm::binary_sub
             : t == "Mul" ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_div;
        const bool c0 = fb.is_constant(node_.inputs.at(0)), c1 = fb.is_constant(node_.inputs.at(1));
        if (c0 && c1) refuse("both operands are constants (constant folding is not supported)");
        const shape_t s0 = fb.input_shape(0), s1 = fb.input_shape(1);
        const size_t rank = std::max(s0.size(), s1.size());
        aligned_[0] = aligned(s0, rank);
        aligned_[1] = aligned(s1, rank);
        const shape_t &a0 = aligned_[0], &a1 = aligned_[1];
        out_.resize(rank);
        for (size_t d = 0; d < rank; ++d) {
            if (a0[d] != a1[d] && a0[d] != 1 && a1[d] != 1)
                throw model_error(fmt::format("{}: shapes {} and {} do not broadcast", node_.describe(), to_string(s0), to_string(s1)));
            out_[d] = std::max(a0[d], a1[d]);
        }
        spans_[0] = a0 == out_;
        spans_[1] = a1 == out_;
        // An activation that broadcasts keeps its own batch axis (see the top of the file).
        const shape_t* act_shape[2] = {c0 ? nullptr : &s0, c1 ? nullptr : &s1};
        for (size_t i = 0; i < 2; ++i)
            if (act_shape[i] && !spans_[i] && (act_shape[i]->size() != rank || (*act_shape[i])[0] != out_[0]))
                refuse(fmt::format("activation '{}' of shape {} broadcast to {}: broadcasting an activation along "
                                   "(or without) the batch axis is not supported",
                                   node_.inputs[i], to_string(*act_shape[i]), to_string(out_)));
        // src0 must span the output. Prefer an activation there; swap for commutative ops.
        first_ = 0;
        if ((c0 || !spans_[0]) && !c1 && spans_[1] && (t == "Add" || t == "Mul")) first_ = 1;
        const size_t second = 1 - first_;

        dnnl::memory src0, src1;
        if (fb.is_constant(node_.inputs[first_])) {
            // A constant first operand (c - x, c / x): spell it out over the output, plain.
            const_first_ = broadcast_to(fb.constant_input(first_, "A"), out_);
            src0 = engine::view(fb.eng(), engine::plain_desc(out_), const_first_.data());
        } else if (!spans_[first_]) {
            // An activation that broadcasts but must be src0 (mean - x, or both operands broadcast).
            dnnl::memory from = fb.input_plain(first_);
            src0 = fb.allocate(engine::plain_desc(out_));
            const shape_t from_shape = aligned_[first_], to_shape = out_;
            fb.add_host([from, src0, from_shape, to_shape] {
                broadcast_into(static_cast<const float*>(from.get_data_handle()), from_shape,
                               static_cast<float*>(src0.get_data_handle()), to_shape);
            });
        } else {
            src0 = fb.input(first_).mem;
            // A lower-rank activation under a higher-rank constant: view it at the output's rank.
            if (src0.get_desc().data.ndims != static_cast<int>(rank))
                src0 = engine::view(fb.eng(), engine::plain_desc(out_), fb.input_plain(first_).get_data_handle());
        }
        if (fb.is_constant(node_.inputs[second])) {
            const constant& c = fb.constant_input(second, "B");
            if (c.is_int) throw model_error(fmt::format("{}: integer operand", node_.describe()));
            second_const_ = c.floats;
            second_shape_ = aligned_[second];
            src1 = constant_operand(fb.eng(), src0.get_desc(), second_in_layout_);
        } else if (spans_[second]) {
            src1 = fb.input_as(second, src0.get_desc());
        } else {
            // Broadcast by oneDNN as src1; the rank equals the output's (checked above).
            src1 = fb.input_plain(second);
        }
        dnnl::binary::desc desc(alg_, src0.get_desc(), src1.get_desc(), src0.get_desc());
        // A Relu or Clip alone reading the result is applied here (fusion.hpp: a residual block's
        // Add and ReLU in one pass). The backward needs nothing of the output: Add and Sub pass the
        // signal, Mul and Div read their operands.
        dnnl::primitive_attr attr;
        dnnl::post_ops activation;
        // Under the full NaN check only a sum or difference is fused: |a ± b| <= max|a| + max|b|
        // bounds the tensor no longer stored (a product or quotient has no such bound worth having).
        const bool bounded = alg_ == dnnl::algorithm::binary_add || alg_ == dnnl::algorithm::binary_sub;
        if (const node* next = fb.sole_consumer(node_.outputs[0]);
            next && fb.fuses_activations() && (bounded || !fb.needs_bounds()) &&
            append_activation(*next, fb.model(), activation)) {
            attr.set_post_ops(activation);
            fb.absorb(node_.outputs[0]);
            if (fb.needs_bounds()) fb.bound(sum_bound(fb));
        }
        dnnl::binary::primitive_desc pd(desc, attr, fb.eng());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        fb.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, src0}, {DNNL_ARG_SRC_1, src1}, {DNNL_ARG_DST, dst}});
        fb.define_output(0, out_, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        for (size_t i = 0; i < 2; ++i) {
            const std::string& in = node_.inputs[i];
            if (!bb.wants_diff(in)) continue;
            dnnl::memory g = bb.diff(node_.outputs[0]);
            const auto& type = node_.op_type;
            dnnl::memory full; // the partial derivative times the signal, over the output's shape
            if (type == "Add" || (type == "Sub" && i == 0)) {
                full = g;
            } else if (type == "Sub") { // d(a - b)/db = -1
                full = binary(bb, dnnl::algorithm::eltwise_linear, g, {}, -1.0f);
            } else if (type == "Mul" || (type == "Div" && i == 0)) {
                // d(a·b)/da = b, d(a/b)/da = 1/b: the other operand, constant or stacked activation.
                full = binary(bb, type == "Mul" ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_div, g,
                              operand(bb, 1 - i, g.get_desc()), 1.0f);
            } else {
                // d(a/b)/db = -a/b² = -(a/b)/b: the output over the divisor, so a constant dividend
                // (c / x) needs no copy of its own.
                dnnl::memory y = like(bb, bb.stacked_forward(node_.outputs[0]), g.get_desc());
                dnnl::memory gy = binary(bb, dnnl::algorithm::binary_mul, g, y, 1.0f);
                full = binary(bb, dnnl::algorithm::binary_div, gy, operand(bb, 1, g.get_desc()), -1.0f);
            }
            bb.contribute(in, spans_[i] ? full : summed(bb, full, i));
        }
    }

private:
    /// |a ± b| <= max|a| + max|b|: the activation operands' largest magnitudes, found by the check,
    /// plus a constant operand's largest one (infinite when one of its values is not finite).
    engine::magnitude_bound sum_bound(const engine::forward_builder& fb) const {
        engine::magnitude_bound b{node_.outputs[0], {}, 1.0, 0.0};
        for (size_t k = 0; k < 2; ++k)
            if (!fb.is_constant(node_.inputs[k])) b.inputs.push_back(node_.inputs[k]);
        for (const std::vector<float>* c : {&const_first_, &second_const_})
            for (float v : *c) b.offset = std::max(b.offset, std::isfinite(v) ? std::fabs(double(v)) : HUGE_VAL);
        return b;
    }

    /// The constant second operand for a primitive whose first operand is stored as `like`: a
    /// per-channel constant ([1, C, 1, 1]) in `like`'s own layout, so that oneDNN's jit kernel runs
    /// (a plain one against a blocked activation falls back to its reference kernel); else plain.
    dnnl::memory constant_operand(const dnnl::engine& eng, const dnnl::memory::desc& like, std::vector<float>& storage) {
        const bool per_channel = second_shape_.size() == 4 && second_shape_[0] == 1 && second_shape_[2] == 1 && second_shape_[3] == 1;
        if (per_channel) return engine::per_channel(eng, like, second_const_, storage);
        return engine::view(eng, engine::plain_desc(second_shape_), second_const_.data());
    }

    /// Operand `k` for a backward primitive whose other operand (the signal) is stored as `g`:
    /// stacked like the signal, in the signal's layout where it spans the output, else as oneDNN's
    /// broadcast src1.
    dnnl::memory operand(engine::backward_builder& bb, size_t k, const dnnl::memory::desc& g) {
        if (k == 1 - first_ && !second_const_.empty()) {
            dnnl::memory o = constant_operand(bb.eng(), g, diff_operands_.emplace_back());
            // A constant with the batch axis itself: one copy per stacked request, as the signal has.
            if (o.get_desc().data.dims[0] != 1 && g.data.dims[0] != o.get_desc().data.dims[0]) o = bb.stacked(o);
            return o;
        }
        if (k == first_ && !const_first_.empty()) { // c - x or c / x: the constant spelled out, plain
            dnnl::memory o = engine::view(bb.eng(), engine::plain_desc(out_), const_first_.data());
            return g.data.dims[0] != out_[0] ? bb.stacked(o) : o;
        }
        dnnl::memory o = bb.stacked_forward(node_.inputs[k]);
        return spans_[k] ? like(bb, o, g) : o;
    }

    /// `m` in layout `want` (a reorder step when it differs).
    static dnnl::memory like(engine::backward_builder& bb, const dnnl::memory& m, const dnnl::memory::desc& want) {
        if (m.get_desc() == want) return m;
        dnnl::memory r = bb.allocate(want);
        bb.add(dnnl::reorder(m, r), {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, r}});
        return r;
    }

    /// factor · (a alg b), or factor · a when `b` is empty; the result in a's layout.
    static dnnl::memory binary(engine::backward_builder& bb, dnnl::algorithm alg, const dnnl::memory& a, const dnnl::memory& b,
                               float factor) {
        if (!b) {
            dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_linear, a.get_desc(), factor, 0.0f);
            dnnl::eltwise_forward::primitive_desc pd(desc, bb.eng());
            dnnl::memory d = bb.allocate(pd.dst_desc());
            bb.add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, a}, {DNNL_ARG_DST, d}});
            return d;
        }
        dnnl::primitive_attr attr;
        if (factor != 1.0f) {
            dnnl::post_ops po;
            po.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, factor, 0.0f);
            attr.set_post_ops(po);
        }
        dnnl::binary::desc desc(alg, a.get_desc(), b.get_desc(), a.get_desc());
        dnnl::binary::primitive_desc pd(desc, attr, bb.eng());
        dnnl::memory d = bb.allocate(pd.dst_desc());
        bb.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, a}, {DNNL_ARG_SRC_1, b}, {DNNL_ARG_DST, d}});
        return d;
    }

    /// `full` (stacked, the output's shape) summed over the axes along which input `k` broadcast:
    /// its stacked shape, plain.
    dnnl::memory summed(engine::backward_builder& bb, const dnnl::memory& full, size_t k) const {
        shape_t s = aligned_[k];
        s[0] *= bb.stack();
        dnnl::reduction::desc desc(dnnl::algorithm::reduction_sum, full.get_desc(), engine::plain_desc(s), 0.0f, 0.0f);
        dnnl::reduction::primitive_desc pd(desc, bb.eng());
        dnnl::memory d = bb.allocate(pd.dst_desc());
        bb.add(dnnl::reduction(pd), {{DNNL_ARG_SRC, full}, {DNNL_ARG_DST, d}});
        return d;
    }

    dnnl::algorithm alg_ = dnnl::algorithm::binary_add;
    size_t first_ = 0;
    shape_t out_, second_shape_;
    shape_t aligned_[2];        ///< each operand's shape at the output's rank
    bool spans_[2] = {true, true}; ///< whether the operand has the output's shape
    std::vector<float> const_first_, second_const_;
    std::vector<float> second_in_layout_;        ///< the constant in the forward input's layout
    std::deque<std::vector<float>> diff_operands_; ///< the same for each backward plan (stable addresses)
};

} // namespace

std::unique_ptr<op> make_binary(const node& n) { return std::make_unique<binary_op>(n); }

} // namespace deepinside::ops
