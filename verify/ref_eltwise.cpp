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

// ---- HardSigmoid, HardSwish, Erf, Gelu, PRelu: nonrelu like the ones above. Pow and Sqrt: exact
// arithmetic (rules.hpp), so no policy check.

namespace {
/// HardSigmoid's and HardSwish's ramp max(0, min(1, alpha x + beta)), and where x is on it:
/// 0 below, 1 on the ramp, 2 above (the encoding of clip_decisions).
struct ramp {
    double alpha, beta;
    double operator()(double x) const { return std::min(1.0, std::max(0.0, alpha * x + beta)); }
    int64_t where(double x) const {
        const double v = alpha * x + beta;
        return v <= 0 ? 0 : v < 1 ? 1 : 2;
    }
};
ramp hard_sigmoid_ramp(const node& n) { return {attr(n, "alpha", 0.2f), attr(n, "beta", 0.5f)}; }
/// ONNX fixes HardSwish's ramp at alpha 1/6, beta 1/2.
constexpr ramp hard_swish_ramp{1.0 / 6.0, 0.5};

std::vector<int64_t> ramp_decisions(const node& n, const src_list& src, const ramp& r) {
    const dtensor& x = input(n, src, 0);
    std::vector<int64_t> d(x.data.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = r.where(x.data[i]);
    return d;
}

constexpr double pi = 3.14159265358979323846;
} // namespace

dtensor hard_sigmoid_fwd(const node& n, const src_list& src) {
    return map(n, src, hard_sigmoid_ramp(n));
}
std::vector<dtensor> hard_sigmoid_bwd(const backward_args& a) {
    const ramp r = hard_sigmoid_ramp(a.n);
    // alpha strictly on the ramp, 0 at and beyond its ends (PyTorch's hardsigmoid backward).
    return chain(a, [r](double x, double) { return r.where(x) == 1 ? r.alpha : 0.0; });
}
std::vector<int64_t> hard_sigmoid_decisions(const node& n, const src_list& src) {
    return ramp_decisions(n, src, hard_sigmoid_ramp(n));
}

dtensor hard_swish_fwd(const node& n, const src_list& src) {
    return map(n, src, [](double x) { return x * hard_swish_ramp(x); });
}
std::vector<dtensor> hard_swish_bwd(const backward_args& a) {
    // d/dx x h(x) = h(x) + x h'(x): 0 below -3, x/3 + 1/2 on [-3, 3], 1 above (PyTorch's choice at the kinks).
    return chain(a, [](double x, double) { return x < -3 ? 0.0 : x <= 3 ? x / 3 + 0.5 : 1.0; });
}
std::vector<int64_t> hard_swish_decisions(const node& n, const src_list& src) {
    return ramp_decisions(n, src, hard_swish_ramp);
}

dtensor erf_fwd(const node& n, const src_list& src) {
    return map(n, src, [](double x) { return std::erf(x); });
}
std::vector<dtensor> erf_bwd(const backward_args& a) {
    return chain(a, [](double x, double) { return 2.0 / std::sqrt(pi) * std::exp(-x * x); });
}

void gelu_check(const node& n) {
    const std::string approximate = n.get_string("approximate", "none");
    if (approximate != "none" && approximate != "tanh")
        throw model_error(fmt::format("{}: approximate must be \"none\" or \"tanh\", not \"{}\"", n.describe(), approximate));
}

namespace {
bool gelu_tanh(const node& n) { return n.get_string("approximate", "none") == "tanh"; }
constexpr double gelu_c = 0.044715;
} // namespace

dtensor gelu_fwd(const node& n, const src_list& src) {
    if (gelu_tanh(n))
        return map(n, src, [](double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / pi) * (x + gelu_c * x * x * x))); });
    return map(n, src, [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); });
}
std::vector<dtensor> gelu_bwd(const backward_args& a) {
    if (gelu_tanh(a.n))
        return chain(a, [](double x, double) {
            const double k = std::sqrt(2 / pi), t = std::tanh(k * (x + gelu_c * x * x * x));
            return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * gelu_c * x * x);
        });
    // Phi(x) + x phi(x)
    return chain(a, [](double x, double) {
        return 0.5 * (1 + std::erf(x / std::sqrt(2.0))) + x * std::exp(-0.5 * x * x) / std::sqrt(2 * pi);
    });
}

namespace {
/// PRelu's slope for every element of X: ONNX broadcasts it to X unidirectionally.
std::vector<double> prelu_slopes(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const dtensor& slope = input(n, src, 1);
    if (broadcast_shapes(n, x.shape, slope.shape) != x.shape)
        throw model_error(fmt::format("{}: slope {} does not broadcast to the input {}", n.describe(), to_string(slope.shape),
                                      to_string(x.shape)));
    const auto idx = broadcast_index(slope.shape, x.shape);
    std::vector<double> s(idx.size());
    for (size_t i = 0; i < s.size(); ++i) s[i] = slope.data[static_cast<size_t>(idx[i])];
    return s;
}
} // namespace

dtensor prelu_fwd(const node& n, const src_list& src) {
    const auto s = prelu_slopes(n, src);
    dtensor y = input(n, src, 0);
    for (size_t i = 0; i < y.data.size(); ++i)
        if (y.data[i] < 0) y.data[i] *= s[i];
    return y;
}
std::vector<dtensor> prelu_bwd(const backward_args& a) {
    check_nonrelu_rule(a);
    const auto s = prelu_slopes(a.n, a.src);
    auto diffs = empty_diffs(a);
    const dtensor& x = *a.src[0];
    diffs[0] = dtensor(x.shape);
    for (size_t i = 0; i < x.data.size(); ++i) diffs[0].data[i] = a.diff_dst.data[i] * (x.data[i] > 0 ? 1.0 : s[i]);
    return diffs;
}

dtensor pow_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const dtensor& e = input(n, src, 1);
    dtensor y(broadcast_shapes(n, x.shape, e.shape));
    const auto ix = broadcast_index(x.shape, y.shape), ie = broadcast_index(e.shape, y.shape);
    for (size_t i = 0; i < y.data.size(); ++i)
        y.data[i] = std::pow(x.data[static_cast<size_t>(ix[i])], e.data[static_cast<size_t>(ie[i])]);
    return y;
}
std::vector<dtensor> pow_bwd(const backward_args& a) {
    const dtensor& x = *a.src[0];
    const dtensor& e = *a.src[1];
    const auto ix = broadcast_index(x.shape, a.dst.shape), ie = broadcast_index(e.shape, a.dst.shape);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    for (size_t i = 0; i < a.dst.data.size(); ++i) {
        const size_t k = static_cast<size_t>(ix[i]);
        const double p = e.data[static_cast<size_t>(ie[i])];
        // e x^(e-1), with x^0 = 0 written out (0 * 0^-1 would be NaN).
        diffs[0].data[k] += p == 0 ? 0.0 : a.diff_dst.data[i] * p * std::pow(x.data[k], p - 1);
    }
    return diffs;
}

dtensor sqrt_fwd(const node& n, const src_list& src) {
    return map(n, src, [](double x) { return std::sqrt(x); });
}
std::vector<dtensor> sqrt_bwd(const backward_args& a) {
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    for (size_t i = 0; i < a.dst.data.size(); ++i) diffs[0].data[i] = a.diff_dst.data[i] * 0.5 / a.dst.data[i];
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> eltwise_ops() {
    return {
        {"Relu", relu_fwd, relu_bwd, nullptr, 1, positive_decisions},
        {"LeakyRelu", leaky_relu_fwd, leaky_relu_bwd, nullptr, 1, positive_decisions},
        {"Elu", elu_fwd, elu_bwd, nullptr, 1, nullptr},
        {"Selu", selu_fwd, selu_bwd, nullptr, 1, nullptr},
        {"Sigmoid", sigmoid_fwd, sigmoid_bwd, nullptr, 1, nullptr},
        {"Tanh", tanh_fwd, tanh_bwd, nullptr, 1, nullptr},
        {"Clip", clip_fwd, clip_bwd, nullptr, 1, clip_decisions},
        {"HardSigmoid", hard_sigmoid_fwd, hard_sigmoid_bwd, nullptr, 1, hard_sigmoid_decisions},
        {"HardSwish", hard_swish_fwd, hard_swish_bwd, nullptr, 1, hard_swish_decisions},
        {"Erf", erf_fwd, erf_bwd, nullptr, 1, nullptr},
        {"Gelu", gelu_fwd, gelu_bwd, gelu_check, 1, nullptr},
        {"PRelu", prelu_fwd, prelu_bwd, nullptr, 1, positive_decisions},
        {"Pow", pow_fwd, pow_bwd, nullptr, 1, nullptr},
        {"Sqrt", sqrt_fwd, sqrt_bwd, nullptr, 1, nullptr},
    };
}

} // namespace deepinside::verify
