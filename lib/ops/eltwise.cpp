// Elementwise nonlinearities. Forward on oneDNN eltwise primitives; backward as host loops over the
// stacked signal, because ReLU's backward is where the three rules differ (the paper's section 4)
// and each slice of a stacked pass may run under its own rule. Each derivative sits next to its
// forward's parameters.
#include "ops/fusion.hpp"
#include "ops/op.hpp"

#include <deepinside/rules.hpp>

#include <cmath>
#include <limits>
#include <tuple>

namespace deepinside::ops {

namespace {

/// Below this many elements a host loop is faster on one thread than after waking the others.
constexpr int64_t parallel_threshold = 1 << 15;

/// Shared by every elementwise op: forward on oneDNN, backward by `derivative` in a host loop.
class eltwise_op : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        configure(fb);
        const engine::activation& x = fb.input(0);
        if (fb.absorbed(node_.inputs[0])) { // applied by the convolution before it (fusion.hpp)
            fb.define_output(0, x.shape, x.mem);
            return;
        }
        if (host_forward_) {
            // The output keeps the input's layout: the loop runs over the stored elements, padding
            // included, which stays zero because every host forward maps 0 to 0.
            dnnl::memory dst = fb.allocate(x.mem.get_desc());
            const dnnl::memory src = x.mem;
            const int64_t n = static_cast<int64_t>(engine::byte_size(src) / sizeof(float));
            fb.add_host([this, src, dst, n] {
                forward_slice(static_cast<float*>(dst.get_data_handle()), static_cast<const float*>(src.get_data_handle()), n);
            });
            fb.define_output(0, x.shape, dst);
            return;
        }
        dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, alg_, x.mem.get_desc(), alpha_, beta_);
        dnnl::primitive_attr attr;
        dnnl::post_ops po = post_ops_;
        if (scale_ != 1.0f) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, scale_, 0.0f);
        if (po.len() > 0) attr.set_post_ops(po);
        dnnl::eltwise_forward::primitive_desc pd(desc, attr, fb.eng());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        fb.add(dnnl::eltwise_forward(pd), {{DNNL_ARG_SRC, x.mem}, {DNNL_ARG_DST, dst}});
        fb.define_output(0, x.shape, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const dnnl::memory x = bb.forward_value(in).mem, y = bb.forward_value(node_.outputs[0]).mem;
        if (!(x.get_desc() == y.get_desc()))
            throw error(fmt::format("internal: {}: input and output layouts differ", node_.describe()));
        dnnl::memory diff_dst = bb.diff_as(node_.outputs[0], bb.diff_desc(in));
        dnnl::memory diff_src = bb.allocate(bb.diff_desc(in));
        const int64_t slice = static_cast<int64_t>(engine::byte_size(x) / sizeof(float)), slices = bb.stack();
        const engine::rule_slices* rules = &bb.rules();
        bb.add_host([this, diff_src, diff_dst, x, y, slice, slices, rules] {
            auto* out = static_cast<float*>(diff_src.get_data_handle());
            const auto* g = static_cast<const float*>(diff_dst.get_data_handle());
            const auto* xs = static_cast<const float*>(x.get_data_handle());
            const auto* ys = static_cast<const float*>(y.get_data_handle());
            for (int64_t k = 0; k < slices; ++k) backward_slice(out + k * slice, g + k * slice, xs, ys, slice, (*rules)[k]);
        });
        bb.contribute(in, diff_src);
    }

protected:
    virtual void configure(engine::forward_builder& fb) = 0;
    /// One slice of the stacked signal: out = d(input) from g = d(output), x = input, y = output.
    virtual void backward_slice(float* out, const float* g, const float* x, const float* y, int64_t n,
                                backward_rule rule) const = 0;
    /// The forward as a host loop, for functions oneDNN has no eltwise algorithm for (host_forward_).
    virtual void forward_slice(float*, const float*, int64_t) const {
        throw error(fmt::format("internal: {}: no host forward", node_.describe()));
    }

    dnnl::algorithm alg_ = dnnl::algorithm::eltwise_relu;
    float alpha_ = 0.0f, beta_ = 0.0f, scale_ = 1.0f;
    dnnl::post_ops post_ops_; ///< applied after alg_ (before the scale)
    bool host_forward_ = false;
};

/// ReLU: the one op whose backward depends on the rule. Which masks a rule applies is data, read
/// from rules::relu_masks_of; this loop only applies them.
class relu_op final : public eltwise_op {
public:
    using eltwise_op::eltwise_op;

private:
    void configure(engine::forward_builder&) override {}

    // The forward mask 1(x > 0) is read from the output: y > 0 exactly when x > 0. Every loop loads
    // the signal before testing, so that the compiler selects instead of branching: a branch on
    // the sign of a network's values is mispredicted half the time, which made these loops 35
    // times slower (2 ms against 0.06 ms on 802,816 values).
    void backward_slice(float* out, const float* g, const float*, const float* y, int64_t n, backward_rule rule) const override {
        const rules::relu_masks m = rules::relu_masks_of(rule);
        if (m.input_positive && m.signal_positive) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float gi = g[i], yi = y[i];
                out[i] = (gi > 0.0f && yi > 0.0f) ? gi : 0.0f;
            }
        } else if (m.input_positive) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float gi = g[i];
                out[i] = y[i] > 0.0f ? gi : 0.0f;
            }
        } else if (m.signal_positive) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float gi = g[i];
                out[i] = gi > 0.0f ? gi : 0.0f;
            }
        } else {
            std::copy_n(g, n, out);
        }
    }
};

/// LeakyRelu, Elu, Selu, Sigmoid, Tanh, Clip, HardSigmoid, HardSwish, Erf, Gelu: exact derivative;
/// the network refuses deconvnet and guided through them unless the user chose the gradient fallback
/// (see network.cpp).
class smooth_op final : public eltwise_op {
public:
    using eltwise_op::eltwise_op;

private:
    void configure(engine::forward_builder& fb) override {
        const std::string& t = node_.op_type;
        if (t == "LeakyRelu") {
            alg_ = dnnl::algorithm::eltwise_relu;
            alpha_ = node_.get_float("alpha", 0.01f);
        } else if (t == "Elu") {
            alg_ = dnnl::algorithm::eltwise_elu;
            alpha_ = node_.get_float("alpha", 1.0f);
        } else if (t == "Selu") {
            alg_ = dnnl::algorithm::eltwise_elu;
            alpha_ = node_.get_float("alpha", 1.67326319217681884765625f);
            scale_ = node_.get_float("gamma", 1.05070102214813232421875f);
        } else if (t == "Sigmoid") {
            alg_ = dnnl::algorithm::eltwise_logistic;
        } else if (t == "Tanh") {
            alg_ = dnnl::algorithm::eltwise_tanh;
        } else if (t == "Clip") {
            alg_ = dnnl::algorithm::eltwise_clip_v2;
            std::tie(alpha_, beta_) = clip_bounds(node_, fb.model());
        } else if (t == "HardSigmoid") {
            // ONNX: max(0, min(1, alpha x + beta)). oneDNN 2.6 has no hardsigmoid: linear, then clip.
            alg_ = dnnl::algorithm::eltwise_linear;
            alpha_ = node_.get_float("alpha", 0.2f);
            beta_ = node_.get_float("beta", 0.5f);
            post_ops_.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip_v2, 0.0f, 1.0f);
        } else if (t == "HardSwish") {
            // oneDNN 2.6's hardswish is x relu6(x + 3) / 6 = x max(0, min(1, x/6 + 1/2)): ONNX's
            // HardSwish, whose alpha and beta are fixed at 1/6 and 1/2.
            alg_ = dnnl::algorithm::eltwise_hardswish;
        } else if (t == "Erf") {
            host_forward_ = true; // oneDNN 2.6 has gelu_erf but no erf
        } else if (t == "Gelu") {
            // ONNX's two forms are oneDNN's two GELUs: 0.5 x (1 + erf(x/sqrt 2)) and
            // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
            const std::string approximate = node_.get_string("approximate", "none");
            if (approximate == "none") alg_ = dnnl::algorithm::eltwise_gelu_erf;
            else if (approximate == "tanh") alg_ = dnnl::algorithm::eltwise_gelu_tanh;
            else throw model_error(fmt::format("{}: approximate must be \"none\" or \"tanh\", not \"{}\"", node_.describe(), approximate));
        } else {
            refuse("not an elementwise op");
        }
    }

    void forward_slice(float* y, const float* x, int64_t n) const override { // Erf
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
        for (int64_t i = 0; i < n; ++i) y[i] = std::erf(x[i]);
    }

    void backward_slice(float* out, const float* g, const float* x, const float* y, int64_t n, backward_rule) const override {
        const std::string& t = node_.op_type;
        const float a = alpha_, b = beta_, s = scale_;
        if (t == "LeakyRelu") {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float gi = g[i];
                out[i] = x[i] > 0.0f ? gi : gi * a;
            }
        } else if (t == "Elu" || t == "Selu") { // s * (x > 0 ? 1 : a e^x)
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? g[i] * s : g[i] * s * a * std::exp(x[i]);
        } else if (t == "Sigmoid") {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * y[i] * (1.0f - y[i]);
        } else if (t == "Tanh") {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * (1.0f - y[i] * y[i]);
        } else if (t == "HardSigmoid") { // alpha strictly inside the ramp, as PyTorch's hardsigmoid backward
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float v = a * x[i] + b;
                out[i] = (v > 0.0f && v < 1.0f) ? g[i] * a : 0.0f;
            }
        } else if (t == "HardSwish") { // 0 below -3, 1 above 3, x/3 + 1/2 between (PyTorch's choice at the kinks)
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i)
                out[i] = x[i] < -3.0f ? 0.0f : x[i] > 3.0f ? g[i] : g[i] * (x[i] / 3.0f + 0.5f);
        } else if (t == "Erf") { // 2/sqrt(pi) e^(-x^2)
            constexpr float k = 1.12837916709551257f;
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * k * std::exp(-x[i] * x[i]);
        } else if (t == "Gelu" && alg_ == dnnl::algorithm::eltwise_gelu_erf) { // Phi(x) + x phi(x)
            constexpr float inv_sqrt2 = 0.70710678118654752f, inv_sqrt_2pi = 0.39894228040143268f;
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i)
                out[i] = g[i] * (0.5f * (1.0f + std::erf(x[i] * inv_sqrt2)) + x[i] * inv_sqrt_2pi * std::exp(-0.5f * x[i] * x[i]));
        } else if (t == "Gelu") { // u = sqrt(2/pi)(x + c x^3): 0.5(1 + tanh u) + 0.5 x (1 - tanh^2 u) u'
            constexpr float k = 0.79788456080286536f, c = 0.044715f;
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float xi = x[i], th = std::tanh(k * (xi + c * xi * xi * xi));
                out[i] = g[i] * (0.5f * (1.0f + th) + 0.5f * xi * (1.0f - th * th) * k * (1.0f + 3.0f * c * xi * xi));
            }
        } else { // Clip: passes strictly inside (min, max), as PyTorch's hardtanh backward
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) {
                const float gi = g[i], xi = x[i];
                out[i] = (xi > a && xi < b) ? gi : 0.0f;
            }
        }
    }
};

/// Pow with a constant scalar exponent, and Sqrt: arithmetic, differentiated exactly under every
/// rule (rules.hpp: Pow(x, 2) is Mul(x, x), which is exact, and both are the pieces of a decomposed
/// layer norm, itself exact).
class power_op final : public eltwise_op {
public:
    using eltwise_op::eltwise_op;

private:
    void configure(engine::forward_builder& fb) override {
        alg_ = dnnl::algorithm::eltwise_pow;
        alpha_ = 1.0f; // oneDNN's pow is alpha x^beta
        if (node_.op_type == "Sqrt") {
            alg_ = dnnl::algorithm::eltwise_sqrt;
            exponent_ = 0.5f;
            return;
        }
        if (fb.has_input(1) && !fb.is_constant(node_.inputs[1]))
            refuse("an exponent that depends on the network input is not supported (only a constant exponent)");
        const constant& e = fb.constant_input(1, "Y");
        const size_t count = e.is_int ? e.ints.size() : e.floats.size();
        if (count != 1) refuse(fmt::format("only a single-valued exponent is supported (its shape is {})", to_string(e.shape)));
        // A higher-rank exponent would broadcast the output to a higher rank.
        if (e.shape.size() > fb.input(0).shape.size())
            refuse(fmt::format("an exponent of rank {} above the base's {} is not supported", e.shape.size(), fb.input(0).shape.size()));
        exponent_ = e.is_int ? static_cast<float>(e.ints[0]) : e.floats[0];
        beta_ = exponent_;
    }

    // d x^e / dx = e x^(e-1); the usual exponents written out, so that x = 0 gives 2x = 0, not 0 * inf.
    void backward_slice(float* out, const float* g, const float* x, const float* y, int64_t n, backward_rule) const override {
        const float e = exponent_;
        if (node_.op_type == "Sqrt") { // 1 / (2 sqrt x)
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * 0.5f / y[i];
        } else if (e == 0.0f) {
            std::fill_n(out, n, 0.0f);
        } else if (e == 1.0f) {
            std::copy_n(g, n, out);
        } else if (e == 2.0f) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * 2.0f * x[i];
        } else {
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * e * std::pow(x[i], e - 1.0f);
        }
    }

    float exponent_ = 1.0f;
};

/// PRelu with a constant slope, on oneDNN's prelu primitives (which broadcast the slope per channel,
/// as a scalar or in full). Nonrelu: x > 0 ? 1 : slope is its exact derivative (PyTorch's choice at
/// 0); the slope is a constant, so no signal goes to it.
class prelu_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const engine::activation& x = fb.input(0);
        if (fb.has_input(1) && !fb.is_constant(node_.inputs[1]))
            refuse("a slope that depends on the network input is not supported (only a constant slope)");
        const constant& slope = fb.constant_input(1, "slope");
        if (slope.is_int) throw model_error(fmt::format("{}: the slope must be floats", node_.describe()));
        if (slope.shape.size() > x.shape.size())
            refuse(fmt::format("a slope of shape {} above the rank of the input {} is not supported", to_string(slope.shape), to_string(x.shape)));
        // ONNX broadcasts the slope to X unidirectionally: at X's rank, each axis 1 or X's.
        slope_shape_ = shape_t(x.shape.size() - slope.shape.size(), 1);
        slope_shape_.insert(slope_shape_.end(), slope.shape.begin(), slope.shape.end());
        for (size_t d = 0; d < x.shape.size(); ++d)
            if (slope_shape_[d] != 1 && slope_shape_[d] != x.shape[d])
                throw model_error(fmt::format("{}: slope {} does not broadcast to the input {}", node_.describe(),
                                              to_string(slope.shape), to_string(x.shape)));
        slope_ = slope.floats;
        const dnnl::memory plain = engine::view(fb.eng(), engine::plain_desc(slope_shape_), slope_.data());
        const dnnl::memory::desc any(engine::to_dims(slope_shape_), dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
        try {
            dnnl::prelu_forward::desc desc(dnnl::prop_kind::forward_training, x.mem.get_desc(), any);
            dnnl::prelu_forward::primitive_desc pd(desc, fb.eng());
            weights_ = fb.convert_now(plain, pd.weights_desc());
            dnnl::memory dst = fb.allocate(pd.dst_desc());
            fb.add(dnnl::prelu_forward(pd), {{DNNL_ARG_SRC, x.mem}, {DNNL_ARG_WEIGHTS, weights_}, {DNNL_ARG_DST, dst}});
            fb.define_output(0, x.shape, dst);
        } catch (const dnnl::error& e) {
            refuse(fmt::format("oneDNN's prelu does not broadcast a slope of shape {} over {} ({})", to_string(slope.shape),
                               to_string(x.shape), e.what()));
        }
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        dnnl::memory src = bb.stacked_forward(in);
        dnnl::memory w = weights_;
        // A slope with the batch axis itself: one copy per stacked request, as the signal has.
        if (slope_shape_[0] != 1) w = bb.stacked(w);
        const dnnl::memory::desc src_d = src.get_desc();
        dnnl::prelu_forward::primitive_desc hint({dnnl::prop_kind::forward_training, src_d, w.get_desc()}, bb.eng());
        dnnl::prelu_backward::desc desc(src_d, w.get_desc(), src_d, w.get_desc());
        dnnl::prelu_backward::primitive_desc pd(desc, bb.eng(), hint);
        dnnl::memory g = bb.diff_as(node_.outputs[0], pd.diff_dst_desc());
        dnnl::memory d = bb.allocate(pd.diff_src_desc());
        dnnl::memory unused_diff_slope = bb.allocate(pd.diff_weights_desc()); // weight gradients are never used
        bb.add(dnnl::prelu_backward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DIFF_DST, g},
                                          {DNNL_ARG_DIFF_SRC, d}, {DNNL_ARG_DIFF_WEIGHTS, unused_diff_slope}});
        bb.contribute(in, d);
    }

private:
    shape_t slope_shape_;
    std::vector<float> slope_;
    dnnl::memory weights_; ///< the slope in the layout oneDNN's prelu chose
};

/// Identity and inference-mode Dropout: the output is the input's memory; the signal passes through.
class identity_op final : public op {
public:
    using op::op;

    static bool is_read(const graph& g, const std::string& tensor) {
        for (const node& n : g.nodes)
            if (std::find(n.inputs.begin(), n.inputs.end(), tensor) != n.inputs.end()) return true;
        return std::any_of(g.outputs.begin(), g.outputs.end(), [&](const value_info& o) { return o.name == tensor; });
    }

    void build_forward(engine::forward_builder& fb) override {
        if (node_.op_type == "Dropout") {
            // Exporters name the mask output even where nothing reads it (torchvision's Swin): only a
            // mask that is used is refused (it would be an all-true bool tensor at inference).
            if (node_.outputs.size() > 1 && !node_.outputs[1].empty() && is_read(fb.model(), node_.outputs[1]))
                refuse("the mask output is read by the graph, which is not supported");
            if (fb.has_input(2)) {
                const constant& training = fb.constant_input(2, "training_mode");
                // Training mode with ratio 0 drops nothing: the identity (torchvision's Swin calls
                // F.dropout without training=self.training, so its export says training_mode=true).
                const bool zero_ratio = fb.has_input(1) && !fb.constant_input(1, "ratio").is_int &&
                                        fb.constant_input(1, "ratio").floats.size() == 1 && fb.constant_input(1, "ratio").floats[0] == 0.0f;
                if ((training.is_int && !training.ints.empty() && training.ints[0] != 0) && !zero_ratio)
                    refuse("training_mode=true with a non-zero ratio is not supported (inference only)");
            }
        }
        const engine::activation& x = fb.input(0);
        fb.define_output(0, x.shape, x.mem);
    }

    void build_backward(engine::backward_builder& bb) override {
        if (bb.wants_diff(node_.inputs[0])) bb.contribute(node_.inputs[0], bb.diff(node_.outputs[0]));
    }
};

} // namespace

std::pair<float, float> clip_bounds(const node& clip, const graph& g) {
    float lo = std::numeric_limits<float>::lowest(), hi = std::numeric_limits<float>::max();
    if (clip.opset < 11) return {clip.get_float("min", lo), clip.get_float("max", hi)};
    auto bound = [&](size_t i, float fallback) {
        if (i >= clip.inputs.size() || clip.inputs[i].empty()) return fallback;
        const constant* c = g.find_constant(clip.inputs[i]);
        if (!c)
            throw unsupported_error(fmt::format("{}: input '{}' ({}) must be a constant (an initializer or Constant node)",
                                                clip.describe(), clip.inputs[i], i == 1 ? "min" : "max"));
        if (c->is_int || c->floats.size() != 1) throw model_error(fmt::format("{}: Clip bound must be one float", clip.describe()));
        return c->floats[0];
    };
    return {bound(1, lo), bound(2, hi)};
}

bool append_activation(const node& consumer, const graph& g, dnnl::post_ops& po) {
    if (consumer.op_type == "Relu") {
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
        return true;
    }
    if (consumer.op_type != "Clip") return false;
    try {
        const auto [lo, hi] = clip_bounds(consumer, g);
        if (!(lo < hi)) return false; // a constant output: the test a < y < b would not answer for x
        po.append_eltwise(1.0f, dnnl::algorithm::eltwise_clip_v2, lo, hi);
        return true;
    } catch (const error&) {
        return false; // the Clip op reports it
    }
}

std::unique_ptr<op> make_relu(const node& n) { return std::make_unique<relu_op>(n); }
std::unique_ptr<op> make_eltwise(const node& n) {
    if (n.op_type == "Pow" || n.op_type == "Sqrt") return std::make_unique<power_op>(n);
    if (n.op_type == "PRelu") return std::make_unique<prelu_op>(n);
    return std::make_unique<smooth_op>(n);
}
std::unique_ptr<op> make_identity(const node& n) { return std::make_unique<identity_op>(n); }

} // namespace deepinside::ops
