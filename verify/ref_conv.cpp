// Conv (2-D, groups, dilations, strides, pads, auto_pad, optional bias) as im2col and Eigen matrix
// products in double, and the window geometry it shares with pooling.
#include "ref_ops.hpp"

#include <Eigen/Dense>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#ifdef _OPENMP
#include <omp.h>
#endif

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

using row_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row_map = Eigen::Map<row_matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using const_row_map = Eigen::Map<const row_matrix, Eigen::Unaligned, Eigen::OuterStride<>>;

int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; } // a >= 0, b > 0

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// Doubles one task's buffer may hold (8 MB), unless a single output row needs more.
constexpr int64_t buffer_budget = int64_t(1) << 20;
/// Tasks a call aims at, so that a few threads share the work and a thread slowed by other load does
/// not hold up the rest. Fixed, not taken from the thread count: the way a product is cut into
/// pieces decides its rounding, and the reference gives the same numbers on any number of threads.
constexpr int64_t wanted_tasks = 8;
/// Below this many multiply-adds a call runs on one thread.
constexpr int64_t parallel_work = int64_t(1) << 16;

/// `out_rows` output rows cut into bands of nearly equal height, each within buffer_budget at
/// `row_cost` doubles a row (at least one row a band).
struct banding {
    int64_t rows = 1, count = 1;
    banding(int64_t out_rows, int64_t row_cost) {
        const int64_t most = std::clamp<int64_t>(buffer_budget / std::max<int64_t>(1, row_cost), 1, out_rows);
        count = div_up(out_rows, most);
        rows = div_up(out_rows, count);
        count = div_up(out_rows, rows);
    }
};

/// Splits `extent` items (channels) into blocks so that `base` tasks become about wanted_tasks,
/// with at least `least` items per block.
struct blocking {
    int64_t size = 1, count = 1;
    blocking(int64_t extent, int64_t base, int64_t least) {
        count = std::clamp<int64_t>(div_up(wanted_tasks, std::max<int64_t>(1, base)), 1,
                                    std::max<int64_t>(1, extent / std::max<int64_t>(1, least)));
        size = div_up(extent, count);
        count = div_up(extent, size);
    }
};

/// im2col of one image and group: for input channels [c0, c1) of the group (planes at `planes`, one
/// every in_plane) and output rows [oy0, oy1), row (c - c0, kh, kw) of `col` (leading dimension
/// `ld`) holds, for every output position (oy, ox) of the band, the input sample that tap reads,
/// zero where it falls into the padding.
void gather(const conv_shape& s, const double* planes, int64_t c0, int64_t c1, int64_t oy0, int64_t oy1,
            const std::vector<std::pair<int64_t, int64_t>>& x_range, double* col, int64_t ld) {
    const int64_t in_plane = s.in_h * s.in_w, wo = s.x.out;
    for (int64_t c = c0; c < c1; ++c) {
        const double* plane = planes + c * in_plane;
        for (int64_t kh = 0; kh < s.k_h; ++kh)
            for (int64_t kw = 0; kw < s.k_w; ++kw) {
                double* dst = col + (((c - c0) * s.k_h + kh) * s.k_w + kw) * ld;
                const auto [ox0, ox1] = x_range[static_cast<size_t>(kw)];
                const int64_t shift = kw * s.x.dilation - s.x.pad_begin;
                for (int64_t oy = oy0; oy < oy1; ++oy, dst += wo) {
                    const int64_t iy = oy * s.y.stride + kh * s.y.dilation - s.y.pad_begin;
                    if (iy < 0 || iy >= s.in_h || ox0 >= ox1) {
                        std::fill(dst, dst + wo, 0.0);
                        continue;
                    }
                    std::fill(dst, dst + ox0, 0.0);
                    std::fill(dst + ox1, dst + wo, 0.0);
                    const double* src = plane + iy * s.in_w + shift;
                    if (s.x.stride == 1)
                        std::copy(src + ox0, src + ox1, dst + ox0);
                    else
                        for (int64_t ox = ox0; ox < ox1; ++ox) dst[ox] = src[ox * s.x.stride];
                }
            }
    }
}

/// col2im, the adjoint of gather: adds row (c - c0, kh, kw) of `col` into the input planes at the
/// samples each tap read.
void scatter(const conv_shape& s, double* planes, int64_t c0, int64_t c1, int64_t oy0, int64_t oy1,
             const std::vector<std::pair<int64_t, int64_t>>& x_range, const double* col, int64_t ld) {
    const int64_t in_plane = s.in_h * s.in_w, wo = s.x.out;
    for (int64_t c = c0; c < c1; ++c) {
        double* plane = planes + c * in_plane;
        for (int64_t kh = 0; kh < s.k_h; ++kh)
            for (int64_t kw = 0; kw < s.k_w; ++kw) {
                const double* src = col + (((c - c0) * s.k_h + kh) * s.k_w + kw) * ld;
                const auto [ox0, ox1] = x_range[static_cast<size_t>(kw)];
                if (ox0 >= ox1) continue;
                const int64_t shift = kw * s.x.dilation - s.x.pad_begin;
                for (int64_t oy = oy0; oy < oy1; ++oy, src += wo) {
                    const int64_t iy = oy * s.y.stride + kh * s.y.dilation - s.y.pad_begin;
                    if (iy < 0 || iy >= s.in_h) continue;
                    double* dst = plane + iy * s.in_w + shift;
                    if (s.x.stride == 1)
                        for (int64_t ox = ox0; ox < ox1; ++ox) dst[ox] += src[ox];
                    else
                        for (int64_t ox = ox0; ox < ox1; ++ox) dst[ox * s.x.stride] += src[ox];
                }
            }
    }
}

/// For each kernel column kw, the output columns [ox0, ox1) whose tap reads inside the input.
std::vector<std::pair<int64_t, int64_t>> column_ranges(const conv_shape& s) {
    std::vector<std::pair<int64_t, int64_t>> r(static_cast<size_t>(s.k_w));
    for (int64_t kw = 0; kw < s.k_w; ++kw)
        r[static_cast<size_t>(kw)] = valid_outputs(kw * s.x.dilation - s.x.pad_begin, s.x.stride, s.in_w, s.x.out);
    return r;
}

} // namespace

// im2col and matrix products, per image and group g with taps K = (C/group) kH kW:
//   forward      Y_g [M/group, Ho Wo] = W_g [M/group, K] cols [K, Ho Wo] (+ bias),
//   data diff    dX_g = col2im(W_g^T dY_g),
//   weight diff  dW_g = sum over images of dY_g cols^T,
// where cols gathers, for every output position, the input sample each tap (c, kh, kw) reads (zero
// in the padding). The work is cut into tasks of bounded buffer (~8 MB) shared among the OpenMP
// threads in one parallel region, each with its own buffer and a serial Eigen product written
// straight into the result. How the work is cut depends on the shapes only, never on the thread
// count, so the numbers are the same on any number of threads.

// Forward tasks: (image, group, band of output rows, block of output channels). Blocks of output
// channels give the deep, small layers (VGG's 14x14) enough tasks; each gathers its band again, which
// costs 1 / (channels per block) of its product.
dtensor conv_fwd(const node& n, const src_list& src) {
    const conv_shape s = conv_geometry(n, src);
    const dtensor& x = *src[0];
    const dtensor& w = *src[1];
    const dtensor* b = src.size() > 2 ? src[2] : nullptr;
    dtensor y({s.batch, s.out_c, s.y.out, s.x.out});
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out, wo = s.x.out;
    const int64_t depth = s.in_cg * s.k_h * s.k_w;
    const auto x_range = column_ranges(s);
    const banding band(s.y.out, depth * wo);
    const blocking block(s.out_cg, s.batch * s.group * band.count, 16);
    const int64_t tasks = s.batch * s.group * band.count * block.count;
    const int64_t ld = band.rows * wo;
    const int threads = max_threads();
    const bool parallel = threads > 1 && tasks > 1 && s.batch * s.out_c * out_plane * depth >= parallel_work;
#pragma omp parallel num_threads(threads) if (parallel)
    {
        row_matrix col;
        int64_t gathered = -1; // the (image, group, band) col holds
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < tasks; ++k) {
            const int64_t slab = k / block.count, mb = k % block.count;
            const int64_t nb = slab / (s.group * band.count), g = (slab / band.count) % s.group;
            const int64_t oy0 = (slab % band.count) * band.rows, oy1 = std::min(oy0 + band.rows, s.y.out);
            const int64_t m0 = mb * block.size, m1 = std::min(m0 + block.size, s.out_cg);
            const int64_t cols = (oy1 - oy0) * wo;
            if (col.size() == 0) col.resize(depth, ld);
            if (gathered != slab) {
                gather(s, x.data.data() + (nb * s.in_c + g * s.in_cg) * in_plane, 0, s.in_cg, oy0, oy1, x_range,
                       col.data(), ld);
                gathered = slab;
            }
            const int64_t m_first = g * s.out_cg + m0;
            row_map dst(y.data.data() + (nb * s.out_c + m_first) * out_plane + oy0 * wo, m1 - m0, cols,
                        Eigen::OuterStride<>(out_plane));
            const const_row_map wg(w.data.data() + m_first * depth, m1 - m0, depth, Eigen::OuterStride<>(depth));
            dst.noalias() = wg * col.leftCols(cols);
            if (b)
                for (int64_t m = m0; m < m1; ++m)
                    dst.row(m - m0).array() += b->data[static_cast<size_t>(g * s.out_cg + m)];
        }
    }
    return y;
}

// Data diff tasks: (image, group, band of output rows, block of input channels), each multiplying
// W_g^T (its channels' rows) by the band of dY and scattering the product into dX. Bands of one
// image overlap in the input rows they reach, so they run in phases: bands b and b + P never
// overlap, and phase p takes the bands b = p mod P, with a barrier between phases. Each input
// sample so receives the bands' contributions in an order fixed by the shapes.
// Weight diff tasks: (group, block of input channels), each summing dY_g cols^T over images and bands
// into its columns of dW, gathering only its channels.
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
    const int64_t in_plane = s.in_h * s.in_w, out_plane = s.y.out * s.x.out, wo = s.x.out;
    const int64_t taps = s.k_h * s.k_w, depth = s.in_cg * taps;
    const auto x_range = column_ranges(s);
    const int threads = max_threads();
    const bool parallel = threads > 1 && s.batch * s.out_c * out_plane * depth >= parallel_work;

    if (need_b)
        for (int64_t nb = 0; nb < s.batch; ++nb)
            for (int64_t m = 0; m < s.out_c; ++m) {
                const double* g_plane = &gy.data[static_cast<size_t>((nb * s.out_c + m) * out_plane)];
                double& db = diffs[2].data[static_cast<size_t>(m)];
                for (int64_t k = 0; k < out_plane; ++k) db += g_plane[k];
            }

    if (need_x) {
        const banding band(s.y.out, depth * wo);
        const blocking block(s.in_cg, s.batch * s.group * band.count, 16);
        // Input rows a band reaches: (rows - 1) stride + extent, bands starting rows * stride apart.
        const int64_t extent = (s.k_h - 1) * s.y.dilation + 1, step = band.rows * s.y.stride;
        const int64_t phases = std::min(band.count, 1 + div_up(std::max<int64_t>(0, extent - s.y.stride), step));
        const int64_t ld = band.rows * wo;
        double* dx = diffs[0].data.data();
#pragma omp parallel num_threads(threads) if (parallel)
        {
            row_matrix col;
            for (int64_t p = 0; p < phases; ++p) {
                const int64_t bands = div_up(band.count - p, phases);
                const int64_t tasks = s.batch * s.group * bands * block.count;
#pragma omp for schedule(dynamic, 1)
                for (int64_t k = 0; k < tasks; ++k) {
                    const int64_t cb = k % block.count, slab = k / block.count;
                    const int64_t nb = slab / (s.group * bands), g = (slab / bands) % s.group;
                    const int64_t oy0 = (p + (slab % bands) * phases) * band.rows;
                    const int64_t oy1 = std::min(oy0 + band.rows, s.y.out);
                    const int64_t c0 = cb * block.size, c1 = std::min(c0 + block.size, s.in_cg);
                    const int64_t cols = (oy1 - oy0) * wo;
                    if (col.size() == 0) col.resize(block.size * taps, ld);
                    const const_row_map wg(w.data.data() + g * s.out_cg * depth + c0 * taps, s.out_cg, (c1 - c0) * taps,
                                           Eigen::OuterStride<>(depth));
                    const const_row_map dy(gy.data.data() + (nb * s.out_c + g * s.out_cg) * out_plane + oy0 * wo,
                                           s.out_cg, cols, Eigen::OuterStride<>(out_plane));
                    row_map dcol(col.data(), (c1 - c0) * taps, cols, Eigen::OuterStride<>(ld));
                    dcol.noalias() = wg.transpose() * dy;
                    scatter(s, dx + (nb * s.in_c + g * s.in_cg) * in_plane, c0, c1, oy0, oy1, x_range, col.data(), ld);
                }
            }
        }
    }

    if (need_w) {
        const blocking block(s.in_cg, s.group, 1);
        const banding band(s.y.out, block.size * taps * wo);
        const int64_t tasks = s.group * block.count;
        const int64_t ld = band.rows * wo;
        double* dw = diffs[1].data.data();
#pragma omp parallel num_threads(threads) if (parallel && tasks > 1)
        {
            row_matrix col;
#pragma omp for schedule(dynamic, 1)
            for (int64_t k = 0; k < tasks; ++k) {
                const int64_t g = k / block.count, cb = k % block.count;
                const int64_t c0 = cb * block.size, c1 = std::min(c0 + block.size, s.in_cg);
                if (col.size() == 0) col.resize(block.size * taps, ld);
                row_map dwg(dw + g * s.out_cg * depth + c0 * taps, s.out_cg, (c1 - c0) * taps,
                            Eigen::OuterStride<>(depth));
                for (int64_t nb = 0; nb < s.batch; ++nb)
                    for (int64_t oy0 = 0; oy0 < s.y.out; oy0 += band.rows) {
                        const int64_t oy1 = std::min(oy0 + band.rows, s.y.out), cols = (oy1 - oy0) * wo;
                        gather(s, x.data.data() + (nb * s.in_c + g * s.in_cg) * in_plane, c0, c1, oy0, oy1, x_range,
                               col.data(), ld);
                        const const_row_map dy(gy.data.data() + (nb * s.out_c + g * s.out_cg) * out_plane + oy0 * wo,
                                               s.out_cg, cols, Eigen::OuterStride<>(out_plane));
                        dwg.noalias() += dy * col.topLeftCorner((c1 - c0) * taps, cols).transpose();
                    }
            }
        }
    }
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> conv_ops() {
    return {
        {"Conv", conv_fwd, conv_bwd, conv_check, all_inputs, nullptr},
    };
}

} // namespace deepinside::verify
