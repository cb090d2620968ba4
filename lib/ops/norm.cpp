// BatchNormalization (inference) and LRN. Batch norm in inference is a per-channel affine map, so
// its backward is a per-channel scale; LRN runs in training mode so its backward has the workspace.
#include "ops/op.hpp"

#include <cmath>
#include <deque>

namespace deepinside::ops {

namespace {

using dt = dnnl::memory::data_type;

class batch_norm_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        if (node_.get_int("training_mode", 0) != 0) refuse("training_mode=1 is not supported (inference only)");
        for (size_t i = 1; i < node_.outputs.size(); ++i)
            if (!node_.outputs[i].empty()) refuse("running mean/variance outputs (training) are not supported");
        const engine::activation& x = fb.input(0);
        if (x.shape.size() < 2) throw model_error(fmt::format("{}: input {} has no channel axis", node_.describe(), to_string(x.shape)));
        const int64_t c = x.shape[1];
        const float eps = node_.get_float("epsilon", 1e-5f);
        auto vec = [&](size_t i, const char* role) {
            const constant& k = fb.constant_input(i, role);
            if (k.is_int || static_cast<int64_t>(k.floats.size()) != c)
                throw model_error(fmt::format("{}: {} must hold {} floats", node_.describe(), role, c));
            return k.floats;
        };
        const auto gamma = vec(1, "scale"), beta = vec(2, "B"), mean = vec(3, "mean"), var = vec(4, "var");
        // y = (x - mean) / sqrt(var + eps) * gamma + beta = x * s + t per channel, with s and t
        // computed in double once. This form is also the more accurate in f32: oneDNN's own batch
        // norm, (x - mean) * rsqrt(var + eps) * gamma + beta in f32, departs further from the exact
        // result and flips near-tied ReLU6/max-pool decisions on MobileNetV2 and GoogLeNet.
        // Backward is the per-channel scale s.
        scale_.resize(static_cast<size_t>(c));
        shift_.resize(static_cast<size_t>(c));
        for (int64_t k = 0; k < c; ++k) {
            const double sk = double(gamma[k]) / std::sqrt(double(var[k]) + double(eps));
            scale_[k] = static_cast<float>(sk);
            shift_[k] = static_cast<float>(double(beta[k]) - double(mean[k]) * sk);
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

} // namespace

std::unique_ptr<op> make_batch_norm(const node& n) { return std::make_unique<batch_norm_op>(n); }
std::unique_ptr<op> make_lrn(const node& n) { return std::make_unique<lrn_op>(n); }

} // namespace deepinside::ops
