// MaxPool, AveragePool (2-D) and the global pools (any spatial rank).
#include "ref_ops.hpp"

#include <fmt/format.h>

#include <limits>

namespace deepinside::verify {

namespace {

struct pool_shape {
    int64_t planes = 0; ///< N * C
    int64_t in_h = 0, in_w = 0;
    window_axis y, x;
};

pool_shape pool_geometry(const node& n, const dtensor& src, bool ceil_mode_allowed) {
    require_rank(n, src, 4, "input X");
    const auto kernel = n.get_ints("kernel_shape", {});
    if (kernel.size() != 2)
        throw model_error(fmt::format("{}: kernel_shape must list 2 sizes for a 4-D input", n.describe()));
    pool_shape s;
    s.planes = src.shape[0] * src.shape[1];
    s.in_h = src.shape[2];
    s.in_w = src.shape[3];
    const auto axes = resolve_windows(n, {s.in_h, s.in_w}, kernel, ceil_mode_allowed);
    s.y = axes[0];
    s.x = axes[1];
    return s;
}

/// Flat index (within the plane) of the first maximum of window (oy, ox) in row-major order; padding
/// never wins, so a window must hold at least one input element.
int64_t first_max(const node& n, const pool_shape& s, const double* plane, int64_t oy, int64_t ox) {
    int64_t best = -1;
    double best_value = 0;
    for (int64_t ky = 0; ky < s.y.kernel; ++ky) {
        const int64_t iy = oy * s.y.stride + ky * s.y.dilation - s.y.pad_begin;
        if (iy < 0 || iy >= s.in_h) continue;
        for (int64_t kx = 0; kx < s.x.kernel; ++kx) {
            const int64_t ix = ox * s.x.stride + kx * s.x.dilation - s.x.pad_begin;
            if (ix < 0 || ix >= s.in_w) continue;
            const double v = plane[iy * s.in_w + ix];
            // Strictly greater: a later equal value never displaces the first maximum.
            if (best < 0 || v > best_value) {
                best = iy * s.in_w + ix;
                best_value = v;
            }
        }
    }
    if (best < 0)
        throw model_error(fmt::format("{}: pooling window ({}, {}) lies entirely in the padding", n.describe(), oy, ox));
    return best;
}

/// Number of window positions counted by the average's divisor along one axis: positions inside the
/// input, plus (count_include_pad) positions inside the declared padding, never beyond it.
int64_t counted(const window_axis& a, int64_t o, bool include_pad) {
    const int64_t lo = include_pad ? -a.pad_begin : 0;
    const int64_t hi = include_pad ? a.in + a.pad_end : a.in;
    int64_t count = 0;
    for (int64_t k = 0; k < a.kernel; ++k) {
        const int64_t i = o * a.stride + k * a.dilation - a.pad_begin;
        if (i >= lo && i < hi) ++count;
    }
    return count;
}

} // namespace

void max_pool_check(const node& n) {
    if (n.get_int("storage_order", 0) != 0)
        throw unsupported_error(fmt::format("{}: storage_order 1 is not supported (only 0, row-major)", n.describe()));
}

dtensor max_pool_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const pool_shape s = pool_geometry(n, x, n.opset >= 10);
    dtensor y({x.shape[0], x.shape[1], s.y.out, s.x.out});
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out;
    for (int64_t p = 0; p < s.planes; ++p) {
        const double* plane = &x.data[static_cast<size_t>(p * in_plane)];
        for (int64_t oy = 0; oy < s.y.out; ++oy)
            for (int64_t ox = 0; ox < s.x.out; ++ox)
                y.data[static_cast<size_t>(p * out_plane + oy * s.x.out + ox)] = plane[first_max(n, s, plane, oy, ox)];
    }
    return y;
}

// Max pooling routes the signal to the first maximum under every rule: it is not a rule-dependent op.
std::vector<dtensor> max_pool_bwd(const backward_args& a) {
    const dtensor& x = *a.src[0];
    const pool_shape s = pool_geometry(a.n, x, a.n.opset >= 10);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out;
    for (int64_t p = 0; p < s.planes; ++p) {
        const double* plane = &x.data[static_cast<size_t>(p * in_plane)];
        for (int64_t oy = 0; oy < s.y.out; ++oy)
            for (int64_t ox = 0; ox < s.x.out; ++ox)
                diffs[0].data[static_cast<size_t>(p * in_plane + first_max(a.n, s, plane, oy, ox))] +=
                    a.diff_dst.data[static_cast<size_t>(p * out_plane + oy * s.x.out + ox)];
    }
    return diffs;
}

std::vector<int64_t> max_pool_decisions(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const pool_shape s = pool_geometry(n, x, n.opset >= 10);
    std::vector<int64_t> d;
    d.reserve(static_cast<size_t>(s.planes * s.y.out * s.x.out));
    const int64_t in_plane = s.in_h * s.in_w;
    for (int64_t p = 0; p < s.planes; ++p) {
        const double* plane = &x.data[static_cast<size_t>(p * in_plane)];
        for (int64_t oy = 0; oy < s.y.out; ++oy)
            for (int64_t ox = 0; ox < s.x.out; ++ox) d.push_back(first_max(n, s, plane, oy, ox));
    }
    return d;
}

void avg_pool_check(const node& n) {
    const int64_t c = n.get_int("count_include_pad", 0);
    if (c != 0 && c != 1) throw model_error(fmt::format("{}: count_include_pad must be 0 or 1", n.describe()));
}

namespace {
/// Calls f(input flat index within plane, output flat index within plane, 1 / divisor) for every
/// (window position inside the input, output) pair of an average pool.
template <typename F>
void for_each_avg_tap(const node& n, const pool_shape& s, F&& f) {
    const bool include_pad = n.get_int("count_include_pad", 0) != 0;
    for (int64_t oy = 0; oy < s.y.out; ++oy)
        for (int64_t ox = 0; ox < s.x.out; ++ox) {
            const int64_t divisor = counted(s.y, oy, include_pad) * counted(s.x, ox, include_pad);
            if (divisor == 0)
                throw model_error(fmt::format("{}: pooling window ({}, {}) lies entirely in the padding",
                                              n.describe(), oy, ox));
            const double scale = 1.0 / static_cast<double>(divisor);
            for (int64_t ky = 0; ky < s.y.kernel; ++ky) {
                const int64_t iy = oy * s.y.stride + ky * s.y.dilation - s.y.pad_begin;
                if (iy < 0 || iy >= s.in_h) continue;
                for (int64_t kx = 0; kx < s.x.kernel; ++kx) {
                    const int64_t ix = ox * s.x.stride + kx * s.x.dilation - s.x.pad_begin;
                    if (ix < 0 || ix >= s.in_w) continue;
                    f(iy * s.in_w + ix, oy * s.x.out + ox, scale);
                }
            }
        }
}
} // namespace

dtensor avg_pool_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const pool_shape s = pool_geometry(n, x, n.opset >= 10);
    dtensor y({x.shape[0], x.shape[1], s.y.out, s.x.out});
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out;
    for (int64_t p = 0; p < s.planes; ++p) {
        const double* src_plane = &x.data[static_cast<size_t>(p * in_plane)];
        double* dst_plane = &y.data[static_cast<size_t>(p * out_plane)];
        for_each_avg_tap(n, s, [&](int64_t i, int64_t o, double scale) { dst_plane[o] += scale * src_plane[i]; });
    }
    return y;
}

std::vector<dtensor> avg_pool_bwd(const backward_args& a) {
    const dtensor& x = *a.src[0];
    const pool_shape s = pool_geometry(a.n, x, a.n.opset >= 10);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out;
    for (int64_t p = 0; p < s.planes; ++p) {
        double* dx = &diffs[0].data[static_cast<size_t>(p * in_plane)];
        const double* gy = &a.diff_dst.data[static_cast<size_t>(p * out_plane)];
        for_each_avg_tap(a.n, s, [&](int64_t i, int64_t o, double scale) { dx[i] += scale * gy[o]; });
    }
    return diffs;
}

namespace {
struct global_shape {
    int64_t planes = 0, plane = 0;
    shape_t out;
};
global_shape global_geometry(const node& n, const dtensor& x) {
    if (x.shape.size() < 3)
        throw unsupported_error(fmt::format("{}: input of shape {} has no spatial axes", n.describe(),
                                            to_string(x.shape)));
    global_shape s;
    s.planes = x.shape[0] * x.shape[1];
    s.plane = 1;
    for (size_t i = 2; i < x.shape.size(); ++i) s.plane *= x.shape[i];
    if (s.plane == 0) throw model_error(fmt::format("{}: empty spatial extent", n.describe()));
    s.out = x.shape;
    for (size_t i = 2; i < s.out.size(); ++i) s.out[i] = 1;
    return s;
}
} // namespace

dtensor global_avg_pool_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const global_shape s = global_geometry(n, x);
    dtensor y(s.out);
    for (int64_t p = 0; p < s.planes; ++p) {
        double sum = 0;
        for (int64_t i = 0; i < s.plane; ++i) sum += x.data[static_cast<size_t>(p * s.plane + i)];
        y.data[static_cast<size_t>(p)] = sum / static_cast<double>(s.plane);
    }
    return y;
}

std::vector<dtensor> global_avg_pool_bwd(const backward_args& a) {
    const dtensor& x = *a.src[0];
    const global_shape s = global_geometry(a.n, x);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    for (int64_t p = 0; p < s.planes; ++p)
        for (int64_t i = 0; i < s.plane; ++i)
            diffs[0].data[static_cast<size_t>(p * s.plane + i)] =
                a.diff_dst.data[static_cast<size_t>(p)] / static_cast<double>(s.plane);
    return diffs;
}

namespace {
int64_t first_max_of_plane(const double* plane, int64_t size) {
    int64_t best = 0;
    for (int64_t i = 1; i < size; ++i)
        if (plane[i] > plane[best]) best = i;
    return best;
}
} // namespace

dtensor global_max_pool_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const global_shape s = global_geometry(n, x);
    dtensor y(s.out);
    for (int64_t p = 0; p < s.planes; ++p) {
        const double* plane = &x.data[static_cast<size_t>(p * s.plane)];
        y.data[static_cast<size_t>(p)] = plane[first_max_of_plane(plane, s.plane)];
    }
    return y;
}

std::vector<dtensor> global_max_pool_bwd(const backward_args& a) {
    const dtensor& x = *a.src[0];
    const global_shape s = global_geometry(a.n, x);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(x.shape);
    for (int64_t p = 0; p < s.planes; ++p) {
        const double* plane = &x.data[static_cast<size_t>(p * s.plane)];
        diffs[0].data[static_cast<size_t>(p * s.plane + first_max_of_plane(plane, s.plane))] +=
            a.diff_dst.data[static_cast<size_t>(p)];
    }
    return diffs;
}

std::vector<int64_t> global_max_pool_decisions(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const global_shape s = global_geometry(n, x);
    std::vector<int64_t> d(static_cast<size_t>(s.planes));
    for (int64_t p = 0; p < s.planes; ++p) d[static_cast<size_t>(p)] = first_max_of_plane(&x.data[static_cast<size_t>(p * s.plane)], s.plane);
    return d;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> pool_ops() {
    return {
        {"MaxPool", max_pool_fwd, max_pool_bwd, max_pool_check, 1, max_pool_decisions},
        {"AveragePool", avg_pool_fwd, avg_pool_bwd, avg_pool_check, 1, nullptr},
        {"GlobalAveragePool", global_avg_pool_fwd, global_avg_pool_bwd, nullptr, 1, nullptr},
        {"GlobalMaxPool", global_max_pool_fwd, global_max_pool_bwd, nullptr, 1, global_max_pool_decisions},
    };
}

} // namespace deepinside::verify
