// Unary nonlinearities: ReLU (the one op whose backward depends on the rule) and the others, whose
// exact derivative deconvnet/guided apply only when the user's nonrelu policy allows it.
#include "ref_ops.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace deepinside::verify {

namespace {

template <typename F>
dtensor map(const node& n, const src_list& src, F&& f) {
    dtensor y = input(n, src, 0);
    for (double& v : y.data) v = f(v);
    return y;
}

/// diff_src = diff_dst * derivative(x, y), after the nonrelu policy check.
template <typename D>
std::vector<dtensor> chain(const backward_args& a, D&& derivative) {
    check_nonrelu_rule(a);
    auto diffs = empty_diffs(a);
    const dtensor& x = *a.src[0];
    diffs[0] = dtensor(x.shape);
    for (size_t i = 0; i < x.data.size(); ++i)
        diffs[0].data[i] = a.diff_dst.data[i] * derivative(x.data[i], a.dst.data[i]);
    return diffs;
}

double attr(const node& n, const char* name, float fallback) { return static_cast<double>(n.get_float(name, fallback)); }

} // namespace

dtensor relu_fwd(const node& n, const src_list& src) {
    return map(n, src, [](double x) { return x > 0 ? x : 0.0; });
}

std::vector<dtensor> relu_bwd(const backward_args& a) {
    auto diffs = empty_diffs(a);
    const dtensor& x = *a.src[0];
    diffs[0] = dtensor(x.shape);
    for (size_t i = 0; i < x.data.size(); ++i) {
        const double g = a.diff_dst.data[i];
        const bool open = x.data[i] > 0; // at x == 0 nothing passes, as in PyTorch
        double r = 0;
        switch (a.rule) {
        case backward_rule::gradient: r = open ? g : 0.0; break;
        case backward_rule::deconvnet: r = g > 0 ? g : 0.0; break;
        case backward_rule::guided: r = open && g > 0 ? g : 0.0; break;
        }
        diffs[0].data[i] = r;
    }
    return diffs;
}

std::vector<int64_t> positive_decisions(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    std::vector<int64_t> d(x.data.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = x.data[i] > 0 ? 1 : 0;
    return d;
}

dtensor leaky_relu_fwd(const node& n, const src_list& src) {
    const double alpha = attr(n, "alpha", 0.01f);
    return map(n, src, [alpha](double x) { return x > 0 ? x : alpha * x; });
}
std::vector<dtensor> leaky_relu_bwd(const backward_args& a) {
    const double alpha = attr(a.n, "alpha", 0.01f);
    return chain(a, [alpha](double x, double) { return x > 0 ? 1.0 : alpha; });
}

dtensor elu_fwd(const node& n, const src_list& src) {
    const double alpha = attr(n, "alpha", 1.0f);
    return map(n, src, [alpha](double x) { return x > 0 ? x : alpha * std::expm1(x); });
}
std::vector<dtensor> elu_bwd(const backward_args& a) {
    const double alpha = attr(a.n, "alpha", 1.0f);
    return chain(a, [alpha](double x, double) { return x > 0 ? 1.0 : alpha * std::exp(x); });
}

// ONNX's defaults are float attributes; promoting the same float values keeps models that spell them
// out and models that rely on the defaults identical.
constexpr float selu_alpha = 1.67326319217681884765625f;
constexpr float selu_gamma = 1.05070102214813232421875f;

dtensor selu_fwd(const node& n, const src_list& src) {
    const double alpha = attr(n, "alpha", selu_alpha), gamma = attr(n, "gamma", selu_gamma);
    return map(n, src, [=](double x) { return x > 0 ? gamma * x : gamma * alpha * std::expm1(x); });
}
std::vector<dtensor> selu_bwd(const backward_args& a) {
    const double alpha = attr(a.n, "alpha", selu_alpha), gamma = attr(a.n, "gamma", selu_gamma);
    return chain(a, [=](double x, double) { return x > 0 ? gamma : gamma * alpha * std::exp(x); });
}

dtensor sigmoid_fwd(const node& n, const src_list& src) {
    // Written so that neither branch overflows.
    return map(n, src, [](double x) {
        if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
        const double e = std::exp(x);
        return e / (1.0 + e);
    });
}
std::vector<dtensor> sigmoid_bwd(const backward_args& a) {
    return chain(a, [](double, double y) { return y * (1.0 - y); });
}

dtensor tanh_fwd(const node& n, const src_list& src) {
    return map(n, src, [](double x) { return std::tanh(x); });
}
std::vector<dtensor> tanh_bwd(const backward_args& a) {
    return chain(a, [](double, double y) { return 1.0 - y * y; });
}

namespace {
/// Clip's bounds: attributes before opset 11, optional scalar inputs from opset 11.
std::pair<double, double> clip_bounds(const node& n, const src_list& src) {
    double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
    if (n.opset < 11) {
        if (n.has("min")) lo = attr(n, "min", 0.0f);
        if (n.has("max")) hi = attr(n, "max", 0.0f);
    } else {
        auto scalar = [&](size_t i, double& v) {
            if (src.size() <= i || !src[i]) return;
            if (src[i]->size() != 1)
                throw model_error(fmt::format("{}: bound input {} must be a scalar, has shape {}", n.describe(), i,
                                              to_string(src[i]->shape)));
            v = src[i]->data[0];
        };
        scalar(1, lo);
        scalar(2, hi);
    }
    return {lo, hi};
}
} // namespace

dtensor clip_fwd(const node& n, const src_list& src) {
    const auto [lo, hi] = clip_bounds(n, src);
    // ONNX applies min then max: with min > max every value becomes max.
    return map(n, src, [lo = lo, hi = hi](double x) { return std::min(std::max(x, lo), hi); });
}
std::vector<dtensor> clip_bwd(const backward_args& a) {
    const auto [lo, hi] = clip_bounds(a.n, a.src);
    return chain(a, [lo = lo, hi = hi](double x, double) { return lo < x && x < hi ? 1.0 : 0.0; });
}

std::vector<int64_t> clip_decisions(const node& n, const src_list& src) {
    const auto [lo, hi] = clip_bounds(n, src);
    const dtensor& x = input(n, src, 0);
    std::vector<int64_t> d(x.data.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = x.data[i] <= lo ? 0 : x.data[i] < hi ? 1 : 2;
    return d;
}

} // namespace deepinside::verify
