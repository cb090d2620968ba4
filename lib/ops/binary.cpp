// Add, Sub, Mul, Div with NumPy broadcasting, on oneDNN binary primitives. The operand that spans
// the output (an activation) is src0; the other may broadcast (a bias, a per-channel scale) or be a
// second activation of the same shape (a residual connection).
#include "ops/op.hpp"

#include <deque>

namespace deepinside::ops {

namespace {

using dt = dnnl::memory::data_type;

shape_t aligned(const shape_t& s, size_t rank) {
    shape_t out(rank - s.size(), 1);
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

/// A constant broadcast to `shape` (C order), for a constant that must span the output.
std::vector<float> broadcast_to(const constant& c, const shape_t& shape) {
    shape_t cs = aligned(c.shape, shape.size());
    std::vector<float> out(static_cast<size_t>(element_count(shape)));
    std::vector<int64_t> idx(shape.size(), 0);
    for (size_t i = 0; i < out.size(); ++i) {
        int64_t src = 0;
        for (size_t d = 0; d < shape.size(); ++d) src = src * cs[d] + (cs[d] == 1 ? 0 : idx[d]);
        out[i] = c.floats[static_cast<size_t>(src)];
        for (int d = static_cast<int>(shape.size()) - 1; d >= 0; --d) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
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
        const shape_t a0 = aligned(s0, rank), a1 = aligned(s1, rank);
        out_.resize(rank);
        for (size_t d = 0; d < rank; ++d) {
            if (a0[d] != a1[d] && a0[d] != 1 && a1[d] != 1)
                throw model_error(fmt::format("{}: shapes {} and {} do not broadcast", node_.describe(), to_string(s0), to_string(s1)));
            out_[d] = std::max(a0[d], a1[d]);
        }
        // src0 must span the output. Prefer an activation there; swap for commutative ops.
        first_ = 0;
        const bool spans0 = a0 == out_, spans1 = a1 == out_;
        if ((c0 || !spans0) && !c1 && spans1 && (t == "Add" || t == "Mul")) first_ = 1;
        const size_t second = 1 - first_;
        const shape_t& sa = first_ == 0 ? a0 : a1;
        const shape_t& sb = first_ == 0 ? a1 : a0;

        dnnl::memory src0, src1;
        if (fb.is_constant(node_.inputs[first_])) {
            // A constant first operand (c - x, c / x): spell it out over the output, plain.
            const_first_ = broadcast_to(fb.constant_input(first_, "A"), out_);
            src0 = engine::view(fb.eng(), engine::plain_desc(out_), const_first_.data());
        } else {
            if (sa != out_) refuse(fmt::format("an activation of shape {} broadcast to {} is not supported", to_string(fb.input_shape(first_)), to_string(out_)));
            src0 = fb.input(first_).mem;
            // A lower-rank activation under a higher-rank constant: view it at the output's rank.
            if (src0.get_desc().data.ndims != static_cast<int>(rank))
                src0 = engine::view(fb.eng(), engine::plain_desc(out_), fb.input_plain(first_).get_data_handle());
        }
        if (fb.is_constant(node_.inputs[second])) {
            const constant& c = fb.constant_input(second, "B");
            if (c.is_int) throw model_error(fmt::format("{}: integer operand", node_.describe()));
            second_const_ = c.floats;
            second_shape_ = sb;
            src1 = constant_operand(fb.eng(), src0.get_desc(), second_in_layout_);
        } else {
            if (sb != out_) refuse(fmt::format("an activation of shape {} broadcast to {} is not supported", to_string(fb.input_shape(second)), to_string(out_)));
            src1 = fb.input_as(second, src0.get_desc());
        }
        dnnl::binary::desc desc(alg_, src0.get_desc(), src1.get_desc(), src0.get_desc());
        dnnl::binary::primitive_desc pd(desc, fb.eng());
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
            if (type == "Add" || (type == "Sub" && i == 0)) {
                bb.contribute(in, g);
            } else if (type == "Sub") { // d(a - b)/db = -1
                bb.contribute(in, scaled(bb, g, -1.0f));
            } else if (type == "Mul" || (type == "Div" && i == 0)) {
                // d(a·b)/da = b, d(a/b)/da = 1/b: the other operand, constant or stacked activation.
                const size_t other = 1 - i;
                dnnl::memory o;
                if (!second_const_.empty() && other == 1 - first_) {
                    o = constant_operand(bb.eng(), g.get_desc(), diff_operands_.emplace_back());
                    // A constant with the batch axis itself: one copy per stacked request, as the signal has.
                    if (o.get_desc().data.dims[0] != 1 && g.get_desc().data.dims[0] != o.get_desc().data.dims[0]) o = bb.stacked(o);
                } else { // (a constant first operand only occurs for c - x and c / x, handled above)
                    o = bb.stacked_forward(node_.inputs[other]);
                    if (!(o.get_desc() == g.get_desc())) {
                        dnnl::memory r = bb.allocate(g.get_desc());
                        bb.add(dnnl::reorder(o, r), {{DNNL_ARG_FROM, o}, {DNNL_ARG_TO, r}});
                        o = r;
                    }
                }
                dnnl::binary::desc desc(type == "Mul" ? dnnl::algorithm::binary_mul : dnnl::algorithm::binary_div, g.get_desc(),
                                        o.get_desc(), g.get_desc());
                dnnl::binary::primitive_desc pd(desc, bb.eng());
                dnnl::memory d = bb.allocate(pd.dst_desc());
                bb.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, g}, {DNNL_ARG_SRC_1, o}, {DNNL_ARG_DST, d}});
                bb.contribute(in, d);
            } else {
                refuse("backward to the divisor of Div is not supported");
            }
        }
    }

private:
    /// The constant second operand for a primitive whose first operand is stored as `like`: a
    /// per-channel constant ([1, C, 1, 1]) in `like`'s own layout, so that oneDNN's jit kernel runs
    /// (a plain one against a blocked activation falls back to its reference kernel); else plain.
    dnnl::memory constant_operand(const dnnl::engine& eng, const dnnl::memory::desc& like, std::vector<float>& storage) {
        const bool per_channel = second_shape_.size() == 4 && second_shape_[0] == 1 && second_shape_[2] == 1 && second_shape_[3] == 1;
        if (per_channel) return engine::per_channel(eng, like, second_const_, storage);
        return engine::view(eng, engine::plain_desc(second_shape_), second_const_.data());
    }

    static dnnl::memory scaled(engine::backward_builder& bb, const dnnl::memory& g, float factor) {
        dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::eltwise_linear, g.get_desc(), factor, 0.0f);
        dnnl::eltwise_forward::primitive_desc pd(desc, bb.eng());
        dnnl::memory d = bb.allocate(pd.dst_desc());
        bb.add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, g}, {DNNL_ARG_DST, d}});
        return d;
    }

    dnnl::algorithm alg_ = dnnl::algorithm::binary_add;
    size_t first_ = 0;
    shape_t out_, second_shape_;
    std::vector<float> const_first_, second_const_;
    std::vector<float> second_in_layout_;        ///< the constant in the forward input's layout
    std::deque<std::vector<float>> diff_operands_; ///< the same for each backward plan (stable addresses)
};

} // namespace

std::unique_ptr<op> make_binary(const node& n) { return std::make_unique<binary_op>(n); }

} // namespace deepinside::ops
