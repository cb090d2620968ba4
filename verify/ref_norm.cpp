// BatchNormalization (inference) and LRN (across channels), ONNX formulas.
#include "ref_ops.hpp"

#include <fmt/format.h>

#include <cmath>

namespace deepinside::verify {

void batch_norm_check(const node& n) {
    if (n.get_int("training_mode", 0) != 0)
        throw unsupported_error(fmt::format("{}: training_mode is set; the reference runs inference only", n.describe()));
    if (n.opset < 9 && n.get_int("spatial", 1) == 0)
        throw unsupported_error(fmt::format("{}: spatial=0 (per-element statistics) is not supported", n.describe()));
}

namespace {
struct bn_plan {
    int64_t batch = 0, channels = 0, plane = 1;
    std::vector<double> scale, shift; ///< y = scale * x + shift per channel
};
bn_plan bn_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    if (x.shape.size() < 2)
        throw model_error(fmt::format("{}: input of shape {} has no channel axis", n.describe(), to_string(x.shape)));
    bn_plan p;
    p.batch = x.shape[0];
    p.channels = x.shape[1];
    for (size_t i = 2; i < x.shape.size(); ++i) p.plane *= x.shape[i];
    for (size_t i = 1; i <= 4; ++i)
        if (input(n, src, i).size() != p.channels)
            throw model_error(fmt::format("{}: parameter input {} has shape {} for {} channels", n.describe(), i,
                                          to_string(src[i]->shape), p.channels));
    const double eps = static_cast<double>(n.get_float("epsilon", 1e-5f));
    for (int64_t c = 0; c < p.channels; ++c) {
        const size_t k = static_cast<size_t>(c);
        const double s = src[1]->data[k] / std::sqrt(src[4]->data[k] + eps);
        p.scale.push_back(s);
        p.shift.push_back(src[2]->data[k] - s * src[3]->data[k]);
    }
    return p;
}
} // namespace

dtensor batch_norm_fwd(const node& n, const src_list& src) {
    const bn_plan p = bn_geometry(n, src);
    dtensor y = *src[0];
    for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t c = 0; c < p.channels; ++c)
            for (int64_t i = 0; i < p.plane; ++i) {
                double& v = y.data[static_cast<size_t>((b * p.channels + c) * p.plane + i)];
                v = p.scale[static_cast<size_t>(c)] * v + p.shift[static_cast<size_t>(c)];
            }
    return y;
}

std::vector<dtensor> batch_norm_bwd(const backward_args& a) {
    const bn_plan p = bn_geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    diffs[0] = a.diff_dst;
    for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t c = 0; c < p.channels; ++c)
            for (int64_t i = 0; i < p.plane; ++i)
                diffs[0].data[static_cast<size_t>((b * p.channels + c) * p.plane + i)] *= p.scale[static_cast<size_t>(c)];
    return diffs;
}

void lrn_check(const node& n) {
    if (n.get_int("size", 0) < 1) throw model_error(fmt::format("{}: size must be a positive integer", n.describe()));
}

namespace {
struct lrn_plan {
    int64_t batch = 0, channels = 0, plane = 1, size = 1, before = 0, after = 0;
    double alpha = 0, beta = 0, bias = 0;
};
lrn_plan lrn_geometry(const node& n, const dtensor& x) {
    if (x.shape.size() < 2)
        throw model_error(fmt::format("{}: input of shape {} has no channel axis", n.describe(), to_string(x.shape)));
    lrn_plan p;
    p.batch = x.shape[0];
    p.channels = x.shape[1];
    for (size_t i = 2; i < x.shape.size(); ++i) p.plane *= x.shape[i];
    p.size = n.get_int("size", 1);
    // The window of channel c is [c - floor((size-1)/2), c + ceil((size-1)/2)], clipped to the channels.
    p.before = (p.size - 1) / 2;
    p.after = p.size - 1 - p.before;
    p.alpha = static_cast<double>(n.get_float("alpha", 1e-4f));
    p.beta = static_cast<double>(n.get_float("beta", 0.75f));
    p.bias = static_cast<double>(n.get_float("bias", 1.0f));
    return p;
}

/// D[c] = bias + alpha / size * sum over the window of x^2, for every element.
std::vector<double> lrn_denominator(const lrn_plan& p, const dtensor& x) {
    std::vector<double> d(x.data.size());
    for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t c = 0; c < p.channels; ++c)
            for (int64_t i = 0; i < p.plane; ++i) {
                double sum = 0;
                for (int64_t j = std::max<int64_t>(0, c - p.before); j <= std::min(p.channels - 1, c + p.after); ++j) {
                    const double v = x.data[static_cast<size_t>((b * p.channels + j) * p.plane + i)];
                    sum += v * v;
                }
                d[static_cast<size_t>((b * p.channels + c) * p.plane + i)] =
                    p.bias + p.alpha / static_cast<double>(p.size) * sum;
            }
    return d;
}
} // namespace

dtensor lrn_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const lrn_plan p = lrn_geometry(n, x);
    const auto d = lrn_denominator(p, x);
    dtensor y = x;
    for (size_t i = 0; i < y.data.size(); ++i) y.data[i] = x.data[i] * std::pow(d[i], -p.beta);
    return y;
}

// y_c = x_c D_c^-beta with D_c = bias + alpha/size sum_{j in win(c)} x_j^2, so
// dx_j = g_j D_j^-beta - 2 alpha/size beta x_j sum_{c : j in win(c)} g_c x_c D_c^(-beta-1).
std::vector<dtensor> lrn_bwd(const backward_args& a) {
    const dtensor& x = *a.src[0];
    const lrn_plan p = lrn_geometry(a.n, x);
    const auto d = lrn_denominator(p, x);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    const double k = 2.0 * p.alpha / static_cast<double>(p.size) * p.beta;
    for (int64_t b = 0; b < p.batch; ++b)
        for (int64_t c = 0; c < p.channels; ++c)
            for (int64_t i = 0; i < p.plane; ++i) {
                const size_t ci = static_cast<size_t>((b * p.channels + c) * p.plane + i);
                const double g = a.diff_dst.data[ci];
                diffs[0].data[ci] += g * std::pow(d[ci], -p.beta);
                const double common = k * g * x.data[ci] * std::pow(d[ci], -p.beta - 1.0);
                for (int64_t j = std::max<int64_t>(0, c - p.before); j <= std::min(p.channels - 1, c + p.after); ++j) {
                    const size_t ji = static_cast<size_t>((b * p.channels + j) * p.plane + i);
                    diffs[0].data[ji] -= common * x.data[ji];
                }
            }
    return diffs;
}

} // namespace deepinside::verify

namespace deepinside::verify {

// LayerNormalization (opset 17): per row of the axes before `axis`, the mean and biased variance over
// the axes from `axis` on; y = (x - mean) / sqrt(var + epsilon) * Scale + B, Scale and B broadcast to
// the normalised shape.
void layer_norm_check(const node& n) {
    for (size_t i = 1; i < n.outputs.size(); ++i)
        if (!n.outputs[i].empty())
            throw unsupported_error(fmt::format("{}: the Mean and InvStdDev outputs are not supported", n.describe()));
}

namespace {
struct ln_plan {
    int64_t rows = 1, width = 1;
    double eps = 0;
    std::vector<double> scale, bias; ///< spelled out over one row
};
ln_plan ln_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    const int64_t axis = normalize_axis(n, n.get_int("axis", -1), rank);
    ln_plan p;
    for (int64_t d = 0; d < rank; ++d) (d < axis ? p.rows : p.width) *= x.shape[static_cast<size_t>(d)];
    const shape_t normalised(x.shape.begin() + axis, x.shape.end());
    p.eps = static_cast<double>(n.get_float("epsilon", 1e-5f));
    auto spelled = [&](size_t i, double fallback) {
        if (src.size() <= i || !src[i]) return std::vector<double>(static_cast<size_t>(p.width), fallback);
        if (broadcast_shapes(n, normalised, src[i]->shape) != normalised)
            throw model_error(fmt::format("{}: input {} of shape {} does not broadcast to the normalised shape {}", n.describe(), i,
                                          to_string(src[i]->shape), to_string(normalised)));
        std::vector<double> v;
        for (int64_t k : broadcast_index(src[i]->shape, normalised)) v.push_back(src[i]->data[static_cast<size_t>(k)]);
        return v;
    };
    input(n, src, 1);
    p.scale = spelled(1, 1.0);
    p.bias = spelled(2, 0.0);
    return p;
}

/// The normalised values (x - mean) / sqrt(var + eps) and each row's 1 / sqrt(var + eps).
std::pair<std::vector<double>, std::vector<double>> ln_normalised(const ln_plan& p, const dtensor& x) {
    std::vector<double> xhat(x.data.size()), inv(static_cast<size_t>(p.rows));
    for (int64_t r = 0; r < p.rows; ++r) {
        const double* row = x.data.data() + r * p.width;
        double mean = 0, var = 0;
        for (int64_t i = 0; i < p.width; ++i) mean += row[i];
        mean /= static_cast<double>(p.width);
        for (int64_t i = 0; i < p.width; ++i) var += (row[i] - mean) * (row[i] - mean);
        var /= static_cast<double>(p.width);
        inv[static_cast<size_t>(r)] = 1.0 / std::sqrt(var + p.eps);
        for (int64_t i = 0; i < p.width; ++i) xhat[static_cast<size_t>(r * p.width + i)] = (row[i] - mean) * inv[static_cast<size_t>(r)];
    }
    return {xhat, inv};
}
} // namespace

dtensor layer_norm_fwd(const node& n, const src_list& src) {
    const ln_plan p = ln_geometry(n, src);
    const dtensor& x = *src[0];
    const auto [xhat, inv] = ln_normalised(p, x);
    dtensor y(x.shape);
    for (size_t i = 0; i < y.data.size(); ++i) {
        const size_t c = i % static_cast<size_t>(p.width);
        y.data[i] = xhat[i] * p.scale[c] + p.bias[c];
    }
    return y;
}

// With u = g * scale: dx = inv (u - mean(u) - xhat mean(u xhat)), per row.
std::vector<dtensor> layer_norm_bwd(const backward_args& a) {
    const ln_plan p = ln_geometry(a.n, a.src);
    const dtensor& x = *a.src[0];
    const auto [xhat, inv] = ln_normalised(p, x);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    const double w = static_cast<double>(p.width);
    for (int64_t r = 0; r < p.rows; ++r) {
        const size_t base = static_cast<size_t>(r * p.width);
        double mu = 0, mux = 0;
        for (size_t i = 0; i < static_cast<size_t>(p.width); ++i) {
            const double u = a.diff_dst.data[base + i] * p.scale[i];
            mu += u;
            mux += u * xhat[base + i];
        }
        mu /= w;
        mux /= w;
        for (size_t i = 0; i < static_cast<size_t>(p.width); ++i)
            diffs[0].data[base + i] =
                inv[static_cast<size_t>(r)] * (a.diff_dst.data[base + i] * p.scale[i] - mu - xhat[base + i] * mux);
    }
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> norm_ops() {
    return {
        {"BatchNormalization", batch_norm_fwd, batch_norm_bwd, batch_norm_check, 1, nullptr},
        {"LRN", lrn_fwd, lrn_bwd, lrn_check, 1, nullptr},
        {"LayerNormalization", layer_norm_fwd, layer_norm_bwd, layer_norm_check, 1, nullptr},
    };
}

} // namespace deepinside::verify
