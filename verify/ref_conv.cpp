// Conv (2-D, groups, dilations, strides, pads, auto_pad, optional bias) and the window geometry it
// shares with pooling.
#include "ref_ops.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace deepinside::verify {

namespace {
int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
} // namespace

std::pair<int64_t, int64_t> valid_outputs(int64_t offset, int64_t stride, int64_t in, int64_t out) {
    int64_t lo = offset >= 0 ? 0 : ceil_div(-offset, stride);
    int64_t hi = floor_div(in - 1 - offset, stride) + 1;
    hi = std::min(hi, out);
    lo = std::min(lo, std::max<int64_t>(hi, 0));
    return {lo, std::max(lo, hi)};
}

std::vector<window_axis> resolve_windows(const node& n, const std::vector<int64_t>& in,
                                         const std::vector<int64_t>& kernel, bool ceil_mode_allowed) {
    const size_t rank = in.size();
    const auto strides = n.get_ints("strides", std::vector<int64_t>(rank, 1));
    const auto dilations = n.get_ints("dilations", std::vector<int64_t>(rank, 1));
    const auto pads = n.get_ints("pads", std::vector<int64_t>(2 * rank, 0));
    const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
    const bool ceil_mode = ceil_mode_allowed && n.get_int("ceil_mode", 0) != 0;
    if (strides.size() != rank || dilations.size() != rank || pads.size() != 2 * rank || kernel.size() != rank)
        throw model_error(fmt::format("{}: kernel_shape/strides/dilations/pads do not match {} spatial axes",
                                      n.describe(), rank));
    std::vector<window_axis> axes(rank);
    for (size_t i = 0; i < rank; ++i) {
        window_axis& a = axes[i];
        a.in = in[i];
        a.kernel = kernel[i];
        a.stride = strides[i];
        a.dilation = dilations[i];
        if (a.kernel < 1 || a.stride < 1 || a.dilation < 1 || pads[i] < 0 || pads[i + rank] < 0)
            throw model_error(fmt::format("{}: kernel {}, strides {}, dilations {} and pads {} must be positive "
                                          "(pads non-negative)",
                                          n.describe(), fmt::join(kernel, "x"), fmt::join(strides, "x"),
                                          fmt::join(dilations, "x"), fmt::join(pads, ",")));
        const int64_t extent = (a.kernel - 1) * a.dilation + 1;
        if (auto_pad == "NOTSET") {
            a.pad_begin = pads[i];
            a.pad_end = pads[i + rank];
            const int64_t span = a.in + a.pad_begin + a.pad_end - extent;
            if (span < 0)
                throw model_error(fmt::format("{}: window of extent {} is larger than the padded input {} on axis {}",
                                              n.describe(), extent, a.in + a.pad_begin + a.pad_end, i));
            a.out = (ceil_mode ? ceil_div(span, a.stride) : span / a.stride) + 1;
            // A ceil_mode window that would start inside the end padding is dropped (PyTorch, ONNX >= 1.16).
            if (ceil_mode && (a.out - 1) * a.stride >= a.in + a.pad_begin) --a.out;
        } else if (auto_pad == "VALID") {
            if (a.in < extent)
                throw model_error(fmt::format("{}: window of extent {} is larger than the input {} on axis {}",
                                              n.describe(), extent, a.in, i));
            a.out = (a.in - extent) / a.stride + 1;
        } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            a.out = ceil_div(a.in, a.stride);
            const int64_t total = std::max<int64_t>(0, (a.out - 1) * a.stride + extent - a.in);
            // The odd padding element goes to the end for SAME_UPPER, to the beginning for SAME_LOWER.
            const int64_t small = total / 2;
            a.pad_begin = auto_pad == "SAME_UPPER" ? small : total - small;
            a.pad_end = total - a.pad_begin;
        } else {
            throw model_error(fmt::format("{}: auto_pad '{}' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID",
                                          n.describe(), auto_pad));
        }
        if (a.out < 1) throw model_error(fmt::format("{}: empty output on spatial axis {}", n.describe(), i));
    }
    return axes;
}

void conv_check(const node& n) {
    if (n.get_int("group", 1) < 1) throw model_error(fmt::format("{}: group must be positive", n.describe()));
}

namespace {

struct conv_shape {
    int64_t batch, in_c, in_h, in_w, out_c, group, in_cg, out_cg, k_h, k_w;
    window_axis y, x;
};

conv_shape conv_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const dtensor& w = input(n, src, 1);
    require_rank(n, x, 4, "input X");
    require_rank(n, w, 4, "weight W");
    conv_shape s{};
    s.batch = x.shape[0];
    s.in_c = x.shape[1];
    s.in_h = x.shape[2];
    s.in_w = x.shape[3];
    s.out_c = w.shape[0];
    s.group = n.get_int("group", 1);
    s.in_cg = w.shape[1];
    s.k_h = w.shape[2];
    s.k_w = w.shape[3];
    if (s.group < 1 || s.in_cg * s.group != s.in_c || s.out_c % s.group != 0)
        throw model_error(fmt::format("{}: input {} and weight {} do not fit group {}", n.describe(),
                                      to_string(x.shape), to_string(w.shape), s.group));
    s.out_cg = s.out_c / s.group;
    if (n.has("kernel_shape") && n.get_ints("kernel_shape", {}) != std::vector<int64_t>{s.k_h, s.k_w})
        throw model_error(fmt::format("{}: kernel_shape disagrees with weight {}", n.describe(), to_string(w.shape)));
    if (src.size() > 2 && src[2] && src[2]->shape != shape_t{s.out_c})
        throw model_error(fmt::format("{}: bias of shape {} for {} output channels", n.describe(),
                                      to_string(src[2]->shape), s.out_c));
    const auto axes = resolve_windows(n, {s.in_h, s.in_w}, {s.k_h, s.k_w}, false);
    s.y = axes[0];
    s.x = axes[1];
    return s;
}

} // namespace

namespace {
/// dst[o] += w * src[o * stride] for o in [0, count); the unit-stride case is split out so that the
/// compiler vectorises it.
inline void axpy_strided(double* dst, const double* src, double w, int64_t count, int64_t stride) {
    if (stride == 1)
        for (int64_t o = 0; o < count; ++o) dst[o] += w * src[o];
    else
        for (int64_t o = 0; o < count; ++o) dst[o] += w * src[o * stride];
}
} // namespace

// Output rows innermost, one row at a time so that the rows stay in cache: a 224x224 VGG-11 then
// runs in seconds in double.
dtensor conv_fwd(const node& n, const src_list& src) {
    const conv_shape s = conv_geometry(n, src);
    const dtensor& x = *src[0];
    const dtensor& w = *src[1];
    const dtensor* b = src.size() > 2 ? src[2] : nullptr;
    dtensor y({s.batch, s.out_c, s.y.out, s.x.out});
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out;
    std::vector<std::pair<int64_t, int64_t>> x_range(static_cast<size_t>(s.k_w));
    for (int64_t kw = 0; kw < s.k_w; ++kw)
        x_range[static_cast<size_t>(kw)] =
            valid_outputs(kw * s.x.dilation - s.x.pad_begin, s.x.stride, s.in_w, s.x.out);
    for (int64_t nb = 0; nb < s.batch; ++nb)
        for (int64_t m = 0; m < s.out_c; ++m) {
            double* dst = &y.data[static_cast<size_t>((nb * s.out_c + m) * out_plane)];
            if (b) std::fill(dst, dst + out_plane, b->data[static_cast<size_t>(m)]);
            const int64_t g = m / s.out_cg;
            for (int64_t c = 0; c < s.in_cg; ++c) {
                const double* plane = &x.data[static_cast<size_t>((nb * s.in_c + g * s.in_cg + c) * in_plane)];
                const double* wk = &w.data[static_cast<size_t>((m * s.in_cg + c) * s.k_h * s.k_w)];
                for (int64_t oy = 0; oy < s.y.out; ++oy) {
                    double* out = dst + oy * s.x.out;
                    for (int64_t kh = 0; kh < s.k_h; ++kh) {
                        const int64_t iy = oy * s.y.stride + kh * s.y.dilation - s.y.pad_begin;
                        if (iy < 0 || iy >= s.in_h) continue;
                        for (int64_t kw = 0; kw < s.k_w; ++kw) {
                            const auto [ox0, ox1] = x_range[static_cast<size_t>(kw)];
                            if (ox0 >= ox1) continue;
                            const int64_t ix0 = ox0 * s.x.stride + kw * s.x.dilation - s.x.pad_begin;
                            axpy_strided(out + ox0, plane + iy * s.in_w + ix0, wk[kh * s.k_w + kw], ox1 - ox0,
                                         s.x.stride);
                        }
                    }
                }
            }
        }
    return y;
}

std::vector<dtensor> conv_bwd(const backward_args& a) {
    const conv_shape s = conv_geometry(a.n, a.src);
    const dtensor& x = *a.src[0];
    const dtensor& w = *a.src[1];
    const dtensor& gy = a.diff_dst;
    auto diffs = empty_diffs(a);
    const bool need_x = a.need[0], need_w = a.need[1], need_b = a.need.size() > 2 && a.need[2];
    if (need_x) diffs[0] = dtensor(x.shape);
    if (need_w) diffs[1] = dtensor(w.shape);
    if (need_b) diffs[2] = dtensor(a.src[2]->shape);
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out;
    for (int64_t nb = 0; nb < s.batch; ++nb)
        for (int64_t m = 0; m < s.out_c; ++m) {
            const double* g_plane = &gy.data[static_cast<size_t>((nb * s.out_c + m) * out_plane)];
            if (need_b)
                for (int64_t k = 0; k < out_plane; ++k) diffs[2].data[static_cast<size_t>(m)] += g_plane[k];
            const int64_t g = m / s.out_cg;
            for (int64_t c = 0; c < s.in_cg; ++c) {
                const size_t in_offset = static_cast<size_t>((nb * s.in_c + g * s.in_cg + c) * in_plane);
                for (int64_t kh = 0; kh < s.k_h; ++kh)
                    for (int64_t kw = 0; kw < s.k_w; ++kw) {
                        const size_t wi = static_cast<size_t>(((m * s.in_cg + c) * s.k_h + kh) * s.k_w + kw);
                        const double wv = w.data[wi];
                        const int64_t off_y = kh * s.y.dilation - s.y.pad_begin;
                        const int64_t off_x = kw * s.x.dilation - s.x.pad_begin;
                        const auto [oy0, oy1] = valid_outputs(off_y, s.y.stride, s.in_h, s.y.out);
                        const auto [ox0, ox1] = valid_outputs(off_x, s.x.stride, s.in_w, s.x.out);
                        double dw = 0;
                        for (int64_t oy = oy0; oy < oy1; ++oy) {
                            const int64_t row = (oy * s.y.stride + off_y) * s.in_w + off_x;
                            const double* gr = g_plane + oy * s.x.out;
                            if (need_x) {
                                double* dx = &diffs[0].data[in_offset];
                                for (int64_t ox = ox0; ox < ox1; ++ox) dx[row + ox * s.x.stride] += wv * gr[ox];
                            }
                            if (need_w) {
                                const double* xp = &x.data[in_offset];
                                for (int64_t ox = ox0; ox < ox1; ++ox) dw += xp[row + ox * s.x.stride] * gr[ox];
                            }
                        }
                        if (need_w) diffs[1].data[wi] += dw;
                    }
            }
        }
    return diffs;
}

} // namespace deepinside::verify
