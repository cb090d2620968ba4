// Elementwise nonlinearities. Forward on oneDNN eltwise primitives; backward as host loops over the
// stacked signal, because ReLU's backward is where the three rules differ (the paper's section 4)
// and each slice of a stacked pass may run under its own rule. Each derivative sits next to its
// forward's parameters.
#include "ops/op.hpp"

#include <deepinside/rules.hpp>

#include <cmath>
#include <limits>

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
        dnnl::eltwise_forward::desc desc(dnnl::prop_kind::forward_training, alg_, x.mem.get_desc(), alpha_, beta_);
        dnnl::primitive_attr attr;
        if (scale_ != 1.0f) {
            dnnl::post_ops po;
            po.append_eltwise(1.0f, dnnl::algorithm::eltwise_linear, scale_, 0.0f);
            attr.set_post_ops(po);
        }
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

    dnnl::algorithm alg_ = dnnl::algorithm::eltwise_relu;
    float alpha_ = 0.0f, beta_ = 0.0f, scale_ = 1.0f;
};

/// ReLU: the one op whose backward depends on the rule. Which masks a rule applies is data, read
/// from rules::relu_masks_of; this loop only applies them.
class relu_op final : public eltwise_op {
public:
    using eltwise_op::eltwise_op;

private:
    void configure(engine::forward_builder&) override {}

    // The forward mask 1(x > 0) is read from the output: y > 0 exactly when x > 0.
    void backward_slice(float* out, const float* g, const float*, const float* y, int64_t n, backward_rule rule) const override {
        const rules::relu_masks m = rules::relu_masks_of(rule);
        if (m.input_positive && m.signal_positive) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = (g[i] > 0.0f && y[i] > 0.0f) ? g[i] : 0.0f;
        } else if (m.input_positive) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = y[i] > 0.0f ? g[i] : 0.0f;
        } else if (m.signal_positive) {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] > 0.0f ? g[i] : 0.0f;
        } else {
            std::copy_n(g, n, out);
        }
    }
};

/// LeakyRelu, Elu, Selu, Sigmoid, Tanh, Clip: exact derivative; the network refuses deconvnet and
/// guided through them unless the user chose the gradient fallback (see network.cpp).
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
            alpha_ = std::numeric_limits<float>::lowest();
            beta_ = std::numeric_limits<float>::max();
            if (node_.opset < 11) {
                alpha_ = node_.get_float("min", alpha_);
                beta_ = node_.get_float("max", beta_);
            } else {
                auto bound = [&](size_t i, float fallback) {
                    if (!fb.has_input(i)) return fallback;
                    const constant& c = fb.constant_input(i, i == 1 ? "min" : "max");
                    if (c.is_int || c.floats.size() != 1)
                        throw model_error(fmt::format("{}: Clip bound must be one float", node_.describe()));
                    return c.floats[0];
                };
                alpha_ = bound(1, alpha_);
                beta_ = bound(2, beta_);
            }
        } else {
            refuse("not an elementwise op");
        }
    }

    void backward_slice(float* out, const float* g, const float* x, const float* y, int64_t n, backward_rule) const override {
        const std::string& t = node_.op_type;
        const float a = alpha_, b = beta_, s = scale_;
        if (t == "LeakyRelu") {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? g[i] : g[i] * a;
        } else if (t == "Elu" || t == "Selu") { // s * (x > 0 ? 1 : a e^x)
#pragma omp parallel for schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = x[i] > 0.0f ? g[i] * s : g[i] * s * a * std::exp(x[i]);
        } else if (t == "Sigmoid") {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * y[i] * (1.0f - y[i]);
        } else if (t == "Tanh") {
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = g[i] * (1.0f - y[i] * y[i]);
        } else { // Clip: passes strictly inside (min, max), as PyTorch's hardtanh backward
#pragma omp parallel for simd schedule(static) if (n > parallel_threshold)
            for (int64_t i = 0; i < n; ++i) out[i] = (x[i] > a && x[i] < b) ? g[i] : 0.0f;
        }
    }
};

/// Identity and inference-mode Dropout: the output is the input's memory; the signal passes through.
class identity_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        if (node_.op_type == "Dropout") {
            if (node_.outputs.size() > 1 && !node_.outputs[1].empty()) refuse("the mask output is not supported");
            if (fb.has_input(2)) {
                const constant& training = fb.constant_input(2, "training_mode");
                if ((training.is_int && !training.ints.empty() && training.ints[0] != 0))
                    refuse("training_mode=true is not supported (inference only)");
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

std::unique_ptr<op> make_relu(const node& n) { return std::make_unique<relu_op>(n); }
std::unique_ptr<op> make_eltwise(const node& n) { return std::make_unique<smooth_op>(n); }
std::unique_ptr<op> make_identity(const node& n) { return std::make_unique<identity_op>(n); }

} // namespace deepinside::ops
