// Conv: oneDNN convolution forward; backward-data with the same (flipped) kernel — the paper's
// "DeconvNet = gradient" identity for convolution. Weight gradients are never computed.
#include "ops/fusion.hpp"
#include "ops/op.hpp"
#include "ops/window.hpp"

#include <cmath>
#include <optional>

namespace deepinside::ops {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

class conv_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        if (x.size() != 4) refuse(fmt::format("only 2-D convolution on 4-D inputs is supported (input is {})", to_string(x)));
        const constant& w = fb.constant_input(1, "weights");
        if (w.shape.size() != 4) throw model_error(fmt::format("{}: weights of shape {} are not 4-D", node_.describe(), to_string(w.shape)));
        groups_ = node_.get_int("group", 1);
        out_channels_ = w.shape[0];
        if (groups_ < 1 || x[1] % groups_ != 0 || out_channels_ % groups_ != 0 || w.shape[1] * groups_ != x[1])
            throw model_error(fmt::format("{}: {} input channels, weights {} and group {} do not fit", node_.describe(), x[1],
                                          to_string(w.shape), groups_));
        const int64_t in_hw[2] = {x[2], x[3]}, k_hw[2] = {w.shape[2], w.shape[3]};
        win_ = window::from_node(node_, in_hw, k_hw, false);
        src_dims_ = {x[0], x[1], x[2], x[3]};
        dst_dims_ = {x[0], out_channels_, win_.out[0], win_.out[1]};
        weight_dims_ = groups_ == 1 ? engine::dims{w.shape[0], w.shape[1], w.shape[2], w.shape[3]}
                                    : engine::dims{groups_, w.shape[0] / groups_, w.shape[1], w.shape[2], w.shape[3]};
        if (w.is_int || element_count(w.shape) != static_cast<int64_t>(w.floats.size()))
            throw model_error(fmt::format("{}: weights hold {} values for shape {}", node_.describe(), w.floats.size(), to_string(w.shape)));
        // Read in place from the graph's constant (each pass converts them into its primitive's
        // layout), unless a folded batch norm makes them our own (fuse_followers).
        weights_data_ = const_cast<float*>(w.floats.data()); // never written
        has_bias_ = fb.has_input(2);
        if (has_bias_) {
            const constant& b = fb.constant_input(2, "bias");
            if (b.is_int || static_cast<int64_t>(b.floats.size()) != out_channels_)
                throw model_error(fmt::format("{}: bias has {} values for {} output channels", node_.describe(), element_count(b.shape), out_channels_));
            bias_ = b.floats;
        }
        fuse_followers(fb, w.floats);
        // Winograd where it pays (engine_options::winograd): measured 2.2-2.5x on 28x28 to 224x224
        // outputs, slower on 14x14. oneDNN refuses the shapes and ISAs it has no kernel for.
        const auto pd = [&] {
            if (fb.winograd_allowed() && groups_ == 1 && k_hw[0] == 3 && k_hw[1] == 3 && win_.stride[0] == 1 &&
                win_.stride[1] == 1 && win_.dilation[0] == 1 && win_.dilation[1] == 1 && win_.out[0] * win_.out[1] >= 28 * 28) {
                try {
                    algorithm_ = dnnl::algorithm::convolution_winograd;
                    return forward_pd(fb.eng(), x[0]);
                } catch (const dnnl::error&) {
                    algorithm_ = dnnl::algorithm::convolution_direct;
                }
            }
            return forward_pd(fb.eng(), x[0]);
        }();
        weights_plain_ = engine::view(fb.eng(), {weight_dims_, dt::f32, groups_ == 1 ? tag::oihw : tag::goihw}, weights_data_);

        dnnl::memory src = fb.input_as(0, pd.src_desc());
        dnnl::memory weights = fb.convert_now(weights_plain_, pd.weights_desc());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}};
        if (has_bias_) args[DNNL_ARG_BIAS] = engine::view(fb.eng(), {{out_channels_}, dt::f32, tag::x}, bias_.data());
        fb.add(dnnl::convolution_forward(pd), std::move(args));
        fb.define_output(0, {dst_dims_.begin(), dst_dims_.end()}, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const int64_t n = src_dims_[0] * bb.stack();
        auto s = src_dims_, d = dst_dims_;
        s[0] = d[0] = n;
        const auto make_pd = [&](tag diff_src_tag, dnnl::algorithm algorithm) {
            dnnl::convolution_backward_data::desc desc(algorithm, {s, dt::f32, diff_src_tag},
                                                       {weight_dims_, dt::f32, tag::any}, {d, dt::f32, tag::any},
                                                       {win_.stride[0], win_.stride[1]}, win_.dnnl_dilation(),
                                                       {win_.pad_begin[0], win_.pad_begin[1]},
                                                       {win_.pad_end_eff[0], win_.pad_end_eff[1]});
            return dnnl::convolution_backward_data::primitive_desc(desc, bb.eng(), forward_pd(bb.eng(), n, algorithm));
        };
        // A first layer's few input channels (an image's 1 or 3): left to choose, oneDNN pads the
        // signal at the input to 16 channels and runs its blocked kernel on it, three times slower
        // than its gemm kernel on the plain layout (ResNet-18's 7x7 stride-2 layer at batch 6: 71 ms
        // against 24 ms). Not when the plain layout would only have the reference kernel.
        auto pd = [&] {
            if (algorithm_ != dnnl::algorithm::convolution_direct) {
                try {
                    return make_pd(tag::any, algorithm_);
                } catch (const dnnl::error&) { // (no Winograd backward for this shape: the direct one)
                }
            }
            return make_pd(tag::any, dnnl::algorithm::convolution_direct);
        }();
        if (groups_ == 1 && src_dims_[1] < 16) {
            auto plain = make_pd(tag::abcd, dnnl::algorithm::convolution_direct);
            if (std::string(plain.impl_info_str()).rfind("ref", 0) != 0) pd = plain;
        }
        dnnl::memory weights = bb.convert_now(weights_plain_, pd.weights_desc());
        dnnl::memory diff_dst = bb.diff_as(node_.outputs[0], pd.diff_dst_desc());
        dnnl::memory diff_src = bb.allocate(pd.diff_src_desc());
        bb.add(dnnl::convolution_backward_data(pd),
               {{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, diff_src}});
        bb.contribute(in, diff_src);
    }

private:
    /// Applies what engine_options::fuse allows of the nodes after this one: a batch norm reading
    /// the output alone is folded into the weights and bias (each rounded once from double, so the
    /// folded layer is at least as close to the exact map as the two layers were), and a Relu or
    /// Clip reading the result alone becomes a post-op of the forward primitive. The backward needs
    /// nothing else: the folded weights are the derivative of the folded map, the batch norm passes
    /// the signal through, and the activation's backward reads only its output.
    void fuse_followers(engine::forward_builder& fb, const std::vector<float>& weights) {
        std::string out = node_.outputs[0];
        const node* next = fb.sole_consumer(out);
        std::optional<channel_affine> map;
        if (next && next->op_type == "BatchNormalization") {
            try {
                map = batch_norm_affine(*next, fb.model(), out_channels_);
            } catch (const error&) { // not foldable: the batch norm's own op reports why
            }
        }
        if (map) {
            weights_ = weights;
            weights_data_ = weights_.data();
            const int64_t per_channel = static_cast<int64_t>(weights_.size()) / out_channels_;
            for (int64_t o = 0; o < out_channels_; ++o)
                for (int64_t i = 0; i < per_channel; ++i) {
                    float& w = weights_[static_cast<size_t>(o * per_channel + i)];
                    w = static_cast<float>(double(w) * map->scale[o]);
                }
            if (!has_bias_) bias_.assign(static_cast<size_t>(out_channels_), 0.0f);
            has_bias_ = true;
            for (int64_t o = 0; o < out_channels_; ++o) bias_[o] = static_cast<float>(double(bias_[o]) * map->scale[o] + map->shift[o]);
            fb.absorb(out);
            out = next->outputs.at(0);
            next = fb.sole_consumer(out);
        }
        if (next && fb.fuses_activations() && append_activation(*next, fb.model(), post_ops_)) {
            fb.absorb(out);
            if (fb.needs_bounds()) fb.bound(output_bound(out, map ? weights_ : weights));
        }
    }

    /// |out| <= (largest L1 norm of a filter) * max|input| + max|bias|, in double. A NaN or infinite
    /// weight or bias makes the bound infinite, and the check then looks for the tensor itself.
    engine::magnitude_bound output_bound(const std::string& out, const std::vector<float>& weights) const {
        const auto magnitude = [](double v) { return std::isfinite(v) ? std::fabs(v) : HUGE_VAL; };
        engine::magnitude_bound b{out, {node_.inputs[0]}, 0.0, 0.0};
        const size_t per_filter = weights.size() / static_cast<size_t>(out_channels_);
        for (size_t o = 0; o < static_cast<size_t>(out_channels_); ++o) {
            double norm = 0;
            for (size_t i = 0; i < per_filter; ++i) norm += magnitude(weights[o * per_filter + i]);
            b.gain = std::max(b.gain, norm);
        }
        for (float v : bias_) b.offset = std::max(b.offset, magnitude(v));
        return b;
    }

    dnnl::convolution_forward::primitive_desc forward_pd(const dnnl::engine& eng, int64_t batch) const {
        return forward_pd(eng, batch, algorithm_);
    }
    dnnl::convolution_forward::primitive_desc forward_pd(const dnnl::engine& eng, int64_t batch, dnnl::algorithm algorithm) const {
        auto s = src_dims_, d = dst_dims_;
        s[0] = d[0] = batch;
        dnnl::memory::desc bias_md = has_bias_ ? dnnl::memory::desc({out_channels_}, dt::f32, tag::x) : dnnl::memory::desc();
        dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, algorithm,
                                             {s, dt::f32, tag::any}, {weight_dims_, dt::f32, tag::any}, bias_md,
                                             {d, dt::f32, tag::any}, {win_.stride[0], win_.stride[1]},
                                             win_.dnnl_dilation(), {win_.pad_begin[0], win_.pad_begin[1]},
                                             {win_.pad_end_eff[0], win_.pad_end_eff[1]});
        dnnl::primitive_attr attr;
        if (post_ops_.len() > 0) attr.set_post_ops(post_ops_);
        return {desc, attr, eng};
    }

    window win_;
    int64_t groups_ = 1, out_channels_ = 0;
    bool has_bias_ = false;
    engine::dims src_dims_, dst_dims_, weight_dims_;
    std::vector<float> weights_, bias_; ///< weights_: with a batch norm folded in (fuse_followers)
    float* weights_data_ = nullptr;     ///< the graph's constant, or weights_
    dnnl::memory weights_plain_;        ///< views weights_data_
    dnnl::post_ops post_ops_;    ///< the activation after it, applied by the forward primitive
    dnnl::algorithm algorithm_ = dnnl::algorithm::convolution_direct;
};

} // namespace

std::unique_ptr<op> make_conv(const node& n) { return std::make_unique<conv_op>(n); }

} // namespace deepinside::ops
