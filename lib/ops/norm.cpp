// BatchNormalization (inference), LRN and LayerNormalization. Batch norm in inference is a
// per-channel affine map, so its backward is a per-channel scale; LRN runs in training mode so its
// backward has the workspace; layer norm keeps its forward statistics for its backward.
#include "ops/fusion.hpp"
#include "ops/op.hpp"

#include <cmath>
#include <deque>

namespace deepinside::ops {

namespace {

using dt = dnnl::memory::data_type;

} // namespace

channel_affine batch_norm_affine(const node& bn, const graph& g, int64_t channels) {
    if (bn.get_int("training_mode", 0) != 0)
        throw unsupported_error(fmt::format("{}: training_mode=1 is not supported (inference only)", bn.describe()));
    for (size_t i = 1; i < bn.outputs.size(); ++i)
        if (!bn.outputs[i].empty())
            throw unsupported_error(fmt::format("{}: running mean/variance outputs (training) are not supported", bn.describe()));
    const char* roles[] = {"scale", "B", "mean", "var"};
    const std::vector<float>* p[4] = {};
    for (size_t i = 1; i <= 4; ++i) {
        const bool given = i < bn.inputs.size() && !bn.inputs[i].empty();
        const constant* k = given ? g.find_constant(bn.inputs[i]) : nullptr;
        if (!given) throw model_error(fmt::format("{}: missing input {} ({})", bn.describe(), i, roles[i - 1]));
        if (!k)
            throw unsupported_error(fmt::format("{}: input '{}' ({}) must be a constant (an initializer or Constant node)",
                                                bn.describe(), bn.inputs[i], roles[i - 1]));
        if (k->is_int || static_cast<int64_t>(k->floats.size()) != channels)
            throw model_error(fmt::format("{}: {} must hold {} floats", bn.describe(), roles[i - 1], channels));
        p[i - 1] = &k->floats;
    }
    // y = (x - mean) / sqrt(var + eps) * gamma + beta = x * s + t per channel, with s and t in
    // double. This form is also the more accurate in f32: oneDNN's own batch norm, (x - mean) *
    // rsqrt(var + eps) * gamma + beta in f32, departs further from the exact result and flips
    // near-tied ReLU6/max-pool decisions on MobileNetV2 and GoogLeNet.
    const double eps = bn.get_float("epsilon", 1e-5f);
    channel_affine map;
    map.scale.resize(static_cast<size_t>(channels));
    map.shift.resize(static_cast<size_t>(channels));
    for (int64_t k = 0; k < channels; ++k) {
        const double sk = double((*p[0])[k]) / std::sqrt(double((*p[3])[k]) + eps);
        map.scale[k] = sk;
        map.shift[k] = double((*p[1])[k]) - double((*p[2])[k]) * sk;
    }
    return map;
}

namespace {

class batch_norm_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const engine::activation& x = fb.input(0);
        if (x.shape.size() < 2) throw model_error(fmt::format("{}: input {} has no channel axis", node_.describe(), to_string(x.shape)));
        const channel_affine map = batch_norm_affine(node_, fb.model(), x.shape[1]);
        folded_ = fb.absorbed(node_.inputs[0]);
        if (folded_) { // the convolution before it applies the map (fusion.hpp); the signal passes through
            fb.define_output(0, x.shape, x.mem);
            return;
        }
        const int64_t c = x.shape[1];
        // Backward is the per-channel scale s.
        scale_.resize(static_cast<size_t>(c));
        shift_.resize(static_cast<size_t>(c));
        for (int64_t k = 0; k < c; ++k) {
            scale_[k] = static_cast<float>(map.scale[k]);
            shift_[k] = static_cast<float>(map.shift[k]);
        }
        // Both operands in the activation's layout, so that oneDNN's jit binary kernel runs.
        dnnl::memory sm = engine::per_channel(fb.eng(), x.mem.get_desc(), scale_, scale_in_layout_);
        dnnl::memory tm = engine::per_channel(fb.eng(), x.mem.get_desc(), shift_, shift_in_layout_);
        dnnl::post_ops po;
        po.append_binary(dnnl::algorithm::binary_add, tm.get_desc());
        dnnl::primitive_attr attr;
        attr.set_post_ops(po);
        dnnl::binary::desc desc(dnnl::algorithm::binary_mul, x.mem.get_desc(), sm.get_desc(), x.mem.get_desc());
        dnnl::binary::primitive_desc pd(desc, attr, fb.eng());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        fb.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, x.mem}, {DNNL_ARG_SRC_1, sm}, {DNNL_ARG_DST, dst},
                                  {DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, tm}});
        fb.define_output(0, x.shape, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        if (folded_) return bb.contribute(in, bb.diff(node_.outputs[0]));
        dnnl::memory g = bb.diff(node_.outputs[0]);
        // Each backward plan keeps its own copy: an earlier plan's memory must stay valid.
        dnnl::memory s = engine::per_channel(bb.eng(), g.get_desc(), scale_, diff_scales_.emplace_back());
        dnnl::binary::desc desc(dnnl::algorithm::binary_mul, g.get_desc(), s.get_desc(), g.get_desc());
        dnnl::binary::primitive_desc pd(desc, bb.eng());
        dnnl::memory d = bb.allocate(pd.dst_desc());
        bb.add(dnnl::binary(pd), {{DNNL_ARG_SRC_0, g}, {DNNL_ARG_SRC_1, s}, {DNNL_ARG_DST, d}});
        bb.contribute(in, d);
    }

private:
    bool folded_ = false; ///< folded into the convolution before it (engine_options::fuse)
    std::vector<float> scale_, shift_;
    std::vector<float> scale_in_layout_, shift_in_layout_; ///< forward operands in the input's layout
    std::deque<std::vector<float>> diff_scales_;           ///< scale_ in each backward plan's layout
};

class lrn_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const engine::activation& x = fb.input(0);
        if (x.shape.size() != 4) refuse(fmt::format("LRN on a {}-D input is not supported", x.shape.size()));
        if (!node_.has("size")) throw model_error(fmt::format("{}: attribute 'size' is required", node_.describe()));
        size_ = node_.get_int("size", 1);
        if (size_ < 1) throw model_error(fmt::format("{}: size must be positive", node_.describe()));
        alpha_ = node_.get_float("alpha", 1e-4f);
        beta_ = node_.get_float("beta", 0.75f);
        bias_ = node_.get_float("bias", 1.0f);
        auto pd = forward_pd(fb.eng(), x.mem.get_desc());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        workspace_ = fb.allocate(pd.workspace_desc());
        fb.add(dnnl::lrn_forward(pd), {{DNNL_ARG_SRC, x.mem}, {DNNL_ARG_DST, dst}, {DNNL_ARG_WORKSPACE, workspace_}});
        fb.define_output(0, x.shape, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        dnnl::memory src = bb.stacked_forward(in);
        auto hint = forward_pd(bb.eng(), src.get_desc());
        dnnl::lrn_backward::desc desc(dnnl::algorithm::lrn_across_channels, src.get_desc(), src.get_desc(), size_, alpha_, beta_, bias_);
        dnnl::lrn_backward::primitive_desc pd(desc, bb.eng(), hint);
        dnnl::memory ws = bb.stacked(workspace_);
        if (ws.get_desc().get_size() != hint.workspace_desc().get_size())
            throw error(fmt::format("internal: {}: stacked workspace layout differs from oneDNN's", node_.describe()));
        dnnl::memory g = bb.diff_as(node_.outputs[0], pd.diff_dst_desc());
        dnnl::memory d = bb.allocate(pd.diff_src_desc());
        bb.add(dnnl::lrn_backward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, g}, {DNNL_ARG_WORKSPACE, ws}, {DNNL_ARG_DIFF_SRC, d}});
        bb.contribute(in, d);
    }

private:
    dnnl::lrn_forward::primitive_desc forward_pd(const dnnl::engine& eng, const dnnl::memory::desc& src) const {
        dnnl::lrn_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::lrn_across_channels, src, size_, alpha_, beta_, bias_);
        return {desc, eng};
    }

    int64_t size_ = 1;
    float alpha_ = 1e-4f, beta_ = 0.75f, bias_ = 1.0f;
    dnnl::memory workspace_;
};

/// LayerNormalization (opset 17): y = (x - mean) / sqrt(var + epsilon) * scale + bias, the statistics
/// over every axis from `axis` on. oneDNN normalises over the last axis, so the input is viewed, plain,
/// as [outer, inner] with inner the product of the normalised axes. Exact under every rule: its
/// backward is oneDNN's backward_data, from the forward's saved mean and variance (scale and bias
/// are constants: no signal goes to them).
class layer_norm_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        for (size_t i = 1; i < node_.outputs.size(); ++i)
            if (!node_.outputs[i].empty()) refuse("the Mean and InvStdDev outputs are not supported (only output 0)");
        const engine::activation& x = fb.input(0);
        const int64_t rank = static_cast<int64_t>(x.shape.size());
        int64_t axis = node_.get_int("axis", -1);
        if (axis < -rank || axis >= rank)
            throw model_error(fmt::format("{}: axis {} is outside the input's rank {}", node_.describe(), axis, rank));
        if (axis < 0) axis += rank;
        shape_ = x.shape;
        outer_ = inner_ = 1;
        for (int64_t d = 0; d < rank; ++d) (d < axis ? outer_ : inner_) *= x.shape[static_cast<size_t>(d)];
        const shape_t normalised(x.shape.begin() + axis, x.shape.end());
        eps_ = node_.get_float("epsilon", 1e-5f);
        scale_ = spelled_out(fb, 1, "Scale", normalised, 1.0f);
        shift_ = spelled_out(fb, 2, "B", normalised, 0.0f);

        x_plain_ = fb.input_plain(0);
        const dnnl::memory src = engine::view(fb.eng(), matrix(1), x_plain_.get_data_handle());
        auto pd = forward_pd(fb.eng(), src.get_desc());
        mean_ = fb.allocate(pd.mean_desc());
        variance_ = fb.allocate(pd.variance_desc());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        fb.add(dnnl::layer_normalization_forward(pd),
               {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}, {DNNL_ARG_MEAN, mean_}, {DNNL_ARG_VARIANCE, variance_},
                {DNNL_ARG_SCALE, scale_memory(fb.eng())}, {DNNL_ARG_SHIFT, shift_memory(fb.eng())}});
        fb.define_output(0, x.shape, engine::view(fb.eng(), engine::plain_desc(x.shape), dst.get_data_handle()));
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const int64_t k = bb.stack();
        // Stacking K copies of the plain [outer, inner] buffer is the plain [K outer, inner] buffer.
        const dnnl::memory src = engine::view(bb.eng(), matrix(k), bb.stacked(x_plain_).get_data_handle());
        const dnnl::memory mean = bb.stacked(mean_), variance = bb.stacked(variance_);
        auto hint = forward_pd(bb.eng(), src.get_desc());
        // prop_kind::backward, not backward_data: oneDNN 2.6 has no backward_data with a scale. It
        // also computes the scale and shift gradients, which nothing reads.
        dnnl::layer_normalization_backward::desc desc(dnnl::prop_kind::backward, src.get_desc(), src.get_desc(),
                                                      mean.get_desc(), eps_, flags());
        dnnl::layer_normalization_backward::primitive_desc pd(desc, bb.eng(), hint);
        shape_t stacked_shape = shape_;
        stacked_shape[0] *= k;
        const dnnl::memory g = engine::view(bb.eng(), src.get_desc(),
                                            bb.diff_as(node_.outputs[0], engine::plain_desc(stacked_shape)).get_data_handle());
        dnnl::memory d = bb.allocate(pd.diff_src_desc());
        bb.add(dnnl::layer_normalization_backward(pd),
               {{DNNL_ARG_SRC, src}, {DNNL_ARG_MEAN, mean}, {DNNL_ARG_VARIANCE, variance}, {DNNL_ARG_DIFF_DST, g},
                {DNNL_ARG_SCALE, scale_memory(bb.eng())}, {DNNL_ARG_SHIFT, shift_memory(bb.eng())}, {DNNL_ARG_DIFF_SRC, d},
                {DNNL_ARG_DIFF_SCALE, bb.allocate(pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_SCALE))},
                {DNNL_ARG_DIFF_SHIFT, bb.allocate(pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_DIFF_SHIFT))}});
        bb.contribute(in, engine::view(bb.eng(), engine::plain_desc(stacked_shape), d.get_data_handle()));
    }

private:
    static dnnl::normalization_flags flags() { return dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift; }

    /// The plain [k outer, inner] matrix the primitives see.
    dnnl::memory::desc matrix(int64_t k) const { return engine::plain_desc({outer_ * k, inner_}); }

    dnnl::layer_normalization_forward::primitive_desc forward_pd(const dnnl::engine& eng, const dnnl::memory::desc& src) const {
        return {{dnnl::prop_kind::forward_training, src, eps_, flags()}, eng};
    }

    dnnl::memory scale_memory(const dnnl::engine& eng) { return engine::view(eng, engine::plain_desc({inner_}), scale_.data()); }
    dnnl::memory shift_memory(const dnnl::engine& eng) { return engine::view(eng, engine::plain_desc({inner_}), shift_.data()); }

    /// Input i (Scale or B), broadcast unidirectionally to the normalised shape, in C order; `fallback`
    /// everywhere when the optional input is absent.
    std::vector<float> spelled_out(engine::forward_builder& fb, size_t i, const char* role, const shape_t& normalised,
                                   float fallback) const {
        std::vector<float> out(static_cast<size_t>(inner_), fallback);
        if (!fb.has_input(i)) {
            if (i == 1) throw model_error(fmt::format("{}: missing input 1 (Scale)", node_.describe()));
            return out;
        }
        if (!fb.is_constant(node_.inputs[i]))
            refuse(fmt::format("a {} that depends on the network input is not supported (only a constant)", role));
        const constant& c = fb.constant_input(i, role);
        if (c.is_int) throw model_error(fmt::format("{}: {} must be floats", node_.describe(), role));
        const size_t r = normalised.size();
        if (c.shape.size() > r)
            throw model_error(fmt::format("{}: {} of shape {} does not broadcast to the normalised shape {}", node_.describe(),
                                          role, to_string(c.shape), to_string(normalised)));
        shape_t cs(r - c.shape.size(), 1);
        cs.insert(cs.end(), c.shape.begin(), c.shape.end());
        for (size_t d = 0; d < r; ++d)
            if (cs[d] != 1 && cs[d] != normalised[d])
                throw model_error(fmt::format("{}: {} of shape {} does not broadcast to the normalised shape {}", node_.describe(),
                                              role, to_string(c.shape), to_string(normalised)));
        std::vector<int64_t> idx(r, 0);
        for (size_t e = 0; e < out.size(); ++e) {
            int64_t from = 0;
            for (size_t d = 0; d < r; ++d) from = from * cs[d] + (cs[d] == 1 ? 0 : idx[d]);
            out[e] = c.floats[static_cast<size_t>(from)];
            for (int d = static_cast<int>(r) - 1; d >= 0; --d) {
                if (++idx[static_cast<size_t>(d)] < normalised[static_cast<size_t>(d)]) break;
                idx[static_cast<size_t>(d)] = 0;
            }
        }
        return out;
    }

    shape_t shape_;
    int64_t outer_ = 1, inner_ = 1;
    float eps_ = 1e-5f;
    std::vector<float> scale_, shift_;
    dnnl::memory x_plain_, mean_, variance_;
};

} // namespace

std::unique_ptr<op> make_layer_norm(const node& n) { return std::make_unique<layer_norm_op>(n); }
std::unique_ptr<op> make_batch_norm(const node& n) { return std::make_unique<batch_norm_op>(n); }
std::unique_ptr<op> make_lrn(const node& n) { return std::make_unique<lrn_op>(n); }

} // namespace deepinside::ops
