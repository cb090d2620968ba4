// Zeiler and Fergus's DeconvNet operators in double precision (deconvnet.hpp). Written apart from
// the engine's backward (lib/) and the reference's (reference.cpp, ref_*.cpp): the window geometry
// below is this file's own reading of the ONNX attributes, and filtering is done the way the paper
// describes it, as a forward correlation of the zero-inserted, padded reconstruction with flipped
// filters, rather than as the scatter over forward windows in which gradient rules are written.
#include "deconvnet.hpp"

#include <deepinside/errors.hpp>

#include <Eigen/Dense>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace deepinside::verify::zf {

namespace {

using row_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using row_map = Eigen::Map<row_matrix, Eigen::Unaligned, Eigen::OuterStride<>>;
using const_row_map = Eigen::Map<const row_matrix>;

int64_t div_up(int64_t a, int64_t b) { return (a + b - 1) / b; } // a >= 0, b > 0

int max_threads() {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/// One spatial axis of a sliding window, as this file resolves it.
struct axis_window {
    int64_t in = 0, kernel = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0, out = 0;
    int64_t extent() const { return (kernel - 1) * dilation + 1; }
};

/// Reads strides, dilations, pads and auto_pad (and ceil_mode when `ceil_mode`) of `n` for the 2-D
/// input `in` and kernel `kernel`, following the ONNX Conv / MaxPool output-shape formulas:
///   NOTSET      out = floor_or_ceil((in + pads - extent) / stride) + 1; with ceil_mode a window
///               that would start inside the end padding is dropped (ONNX >= 1.16, PyTorch);
///   VALID       out = floor((in - extent) / stride) + 1, no padding (the same with ceil_mode);
///   SAME_*      out = ceil(in / stride), total padding (out - 1) * stride + extent - in (at least 0),
///               the odd element at the end (UPPER) or the beginning (LOWER).
std::array<axis_window, 2> read_windows(const node& n, const std::array<int64_t, 2>& in,
                                        const std::array<int64_t, 2>& kernel, bool ceil_mode) {
    const auto strides = n.get_ints("strides", {1, 1});
    const auto dilations = n.get_ints("dilations", {1, 1});
    const auto pads = n.get_ints("pads", {0, 0, 0, 0});
    const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
    if (strides.size() != 2 || dilations.size() != 2 || pads.size() != 4)
        throw model_error(fmt::format("{}: strides [{}], dilations [{}] and pads [{}] must list 2, 2 and 4 values "
                                      "for a 2-D window",
                                      n.describe(), fmt::join(strides, ","), fmt::join(dilations, ","),
                                      fmt::join(pads, ",")));
    if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
        throw model_error(
            fmt::format("{}: auto_pad '{}' is not NOTSET, VALID, SAME_UPPER or SAME_LOWER", n.describe(), auto_pad));
    std::array<axis_window, 2> w;
    for (size_t i = 0; i < 2; ++i) {
        axis_window& a = w[i];
        a.in = in[i];
        a.kernel = kernel[i];
        a.stride = strides[i];
        a.dilation = dilations[i];
        if (a.kernel < 1 || a.stride < 1 || a.dilation < 1 || pads[i] < 0 || pads[i + 2] < 0 || a.in < 1)
            throw model_error(fmt::format("{}: spatial axis {}: input {}, kernel {}, stride {}, dilation {} must be "
                                          "positive and pads {}, {} non-negative",
                                          n.describe(), i, a.in, a.kernel, a.stride, a.dilation, pads[i], pads[i + 2]));
        const int64_t extent = a.extent();
        if (auto_pad == "NOTSET") {
            a.pad_begin = pads[i];
            a.pad_end = pads[i + 2];
            const int64_t room = a.in + a.pad_begin + a.pad_end - extent;
            if (room < 0)
                throw model_error(fmt::format("{}: spatial axis {}: window extent {} exceeds the padded input {}",
                                              n.describe(), i, extent, a.in + a.pad_begin + a.pad_end));
            a.out = (ceil_mode ? div_up(room, a.stride) : room / a.stride) + 1;
            if (ceil_mode && (a.out - 1) * a.stride >= a.in + a.pad_begin) a.out -= 1;
        } else if (auto_pad == "VALID") {
            if (a.in < extent)
                throw model_error(fmt::format("{}: spatial axis {}: window extent {} exceeds the input {} (VALID)",
                                              n.describe(), i, extent, a.in));
            a.out = (a.in - extent) / a.stride + 1;
        } else {
            a.out = div_up(a.in, a.stride);
            const int64_t total = std::max<int64_t>(0, (a.out - 1) * a.stride + extent - a.in);
            a.pad_begin = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
            a.pad_end = total - a.pad_begin;
        }
    }
    return w;
}

void require_shape(const char* op, const dtensor& r, const shape_t& expected) {
    if (r.shape != expected)
        throw input_error(fmt::format("DeconvNet {}: the reconstruction has shape {}, the layer's output is {}", op,
                                      to_string(r.shape), to_string(expected)));
}

} // namespace

// ---------------------------------------------------------------------------------------------
// Convolution

conv_layer conv_layer_of(const node& n, const dtensor& filters, const shape_t& input_shape) {
    if (n.op_type != "Conv")
        throw unsupported_error(fmt::format("{}: DeconvNet filtering applies to Conv only", n.describe()));
    if (filters.shape.size() != 4 || input_shape.size() != 4) {
        if (filters.shape.size() == input_shape.size() && filters.shape.size() >= 3)
            throw unsupported_error(fmt::format("{}: {}-D convolution (filters {}); DeconvNet handles 2-D only",
                                                n.describe(), filters.shape.size() - 2, to_string(filters.shape)));
        throw model_error(fmt::format("{}: filters {} and input {} are not a 2-D convolution's [M, C/group, kH, kW] "
                                      "and [N, C, H, W]",
                                      n.describe(), to_string(filters.shape), to_string(input_shape)));
    }
    conv_layer L;
    L.group = n.get_int("group", 1);
    const int64_t m = filters.shape[0], cg = filters.shape[1], c = input_shape[1];
    if (L.group < 1 || cg * L.group != c || m % L.group != 0 || m < 1)
        throw model_error(fmt::format("{}: filters {} do not fit input {} with group {}", n.describe(),
                                      to_string(filters.shape), to_string(input_shape), L.group));
    const std::array<int64_t, 2> kernel{filters.shape[2], filters.shape[3]};
    if (n.has("kernel_shape") && n.get_ints("kernel_shape", {}) != std::vector<int64_t>{kernel[0], kernel[1]})
        throw model_error(fmt::format("{}: kernel_shape [{}] disagrees with filters {}", n.describe(),
                                      fmt::join(n.get_ints("kernel_shape", {}), ","), to_string(filters.shape)));
    const auto w = read_windows(n, {input_shape[2], input_shape[3]}, kernel, false);
    for (size_t i = 0; i < 2; ++i) {
        L.stride[i] = w[i].stride;
        L.dilation[i] = w[i].dilation;
        L.pad_begin[i] = w[i].pad_begin;
        L.pad_end[i] = w[i].pad_end;
    }
    L.filters = filters;
    L.input_shape = input_shape;
    L.output_shape = {input_shape[0], m, w[0].out, w[1].out};
    return L;
}

// Filtering, as Zeiler and Fergus describe it. Per image and group, with kernel extent E = (k - 1)
// d + 1 on an axis:
//   R_up    R with s - 1 zeros inserted between samples: length (Ho - 1) s + 1;
//   R_pad   R_up padded with E - 1 zeros on each side;
//   F       the correlation of R_pad with the filters flipped in both spatial axes, input and output
//           channels swapped, dilation d applied to the flipped taps:
//             F[c, q] = sum_{m, j} R_pad[m, q + j d] W[m, c, k - 1 - j],  q in [0, (Ho - 1) s + E);
//   crop    F at q = i + pad_begin is the reconstruction at input position i; input positions with
//           q >= (Ho - 1) s + E (the rows a floor-mode stride leaves out) stay zero.
// Only the kept positions are computed. An im2col gathers, for each input position (i, x) of a band
// of input rows, the R_pad samples every flipped tap (m, jh, jw) reads: the matrix col has rows
// (m, jh, jw) and columns (i, x), and the band of the output is one GEMM, flipped filters [Cg, Mg kH
// kW] times col, written straight into the result (no copy). Bands bound the size of col; the
// (image, group, band) tasks are shared among the OpenMP threads, each with its own col and a serial
// GEMM, so there is one parallel region per call and no barrier between gathering and multiplying.
dtensor filter(const conv_layer& L, const dtensor& r) {
    require_shape("filtering", r, L.output_shape);
    if (L.filters.shape.size() != 4 || L.input_shape.size() != 4 || L.output_shape.size() != 4 || L.group < 1 ||
        L.filters.shape[0] != L.output_shape[1] || L.filters.shape[1] * L.group != L.input_shape[1] ||
        L.output_shape[1] % L.group != 0 || L.input_shape[0] != L.output_shape[0])
        throw input_error(fmt::format("DeconvNet filtering: filters {} with group {} do not map {} to {}",
                                      to_string(L.filters.shape), L.group, to_string(L.input_shape),
                                      to_string(L.output_shape)));
    const int64_t batch = L.input_shape[0], c = L.input_shape[1], h = L.input_shape[2], w = L.input_shape[3];
    const int64_t m = L.output_shape[1], ho = L.output_shape[2], wo = L.output_shape[3];
    const int64_t kh = L.filters.shape[2], kw = L.filters.shape[3];
    const int64_t cg = c / L.group, mg = m / L.group;
    const int64_t sh = L.stride[0], sw = L.stride[1], dh = L.dilation[0], dw = L.dilation[1];
    const int64_t eh = (kh - 1) * dh + 1, ew = (kw - 1) * dw + 1;
    // Offset from an input position plus a tap's dilated step to the R_up coordinate it reads:
    // u = i + pad_begin + j d - (E - 1).
    const int64_t off_h = L.pad_begin[0] - (eh - 1), off_w = L.pad_begin[1] - (ew - 1);
    const int64_t taps = mg * kh * kw;
    const int64_t plane = h * w, out_plane = ho * wo;

    // Flipped, channel-swapped filters per group: flipped[g](c, (m, jh, jw)) = W[g Mg + m, c, kH-1-jh, kW-1-jw].
    std::vector<row_matrix> flipped(static_cast<size_t>(L.group), row_matrix(cg, taps));
    for (int64_t g = 0; g < L.group; ++g)
        for (int64_t ci = 0; ci < cg; ++ci)
            for (int64_t mi = 0; mi < mg; ++mi)
                for (int64_t jh = 0; jh < kh; ++jh)
                    for (int64_t jw = 0; jw < kw; ++jw)
                        flipped[static_cast<size_t>(g)](ci, (mi * kh + jh) * kw + jw) =
                            L.filters.data[static_cast<size_t>((((g * mg + mi) * cg + ci) * kh + (kh - 1 - jh)) * kw +
                                                               (kw - 1 - jw))];

    // Tasks: (image, group, band of input rows). Bands keep col within ~8 MB per thread, and there are
    // at least two per thread when the rows allow, so that a thread slowed by other load does not hold
    // up the rest (dynamic schedule).
    const int threads = max_threads();
    const int64_t budget = int64_t(1) << 20;
    const int64_t wanted_bands = div_up(2 * threads, batch * L.group);
    const int64_t band_rows =
        std::clamp<int64_t>(std::min(budget / std::max<int64_t>(1, taps * w), div_up(h, wanted_bands)), 1, h);
    const int64_t bands = div_up(h, band_rows), tasks = batch * L.group * bands;
    const int64_t ld = band_rows * w;

    dtensor out(L.input_shape);
    // One parallel region; each thread gathers into its own col and runs its GEMMs serially (Eigen
    // does not nest its own threads inside a parallel region).
#pragma omp parallel num_threads(threads) if (threads > 1 && tasks > 1 && taps * ld * tasks >= 65536)
    {
        row_matrix col;
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < tasks; ++k) {
            const int64_t b = k / (L.group * bands), g = (k / bands) % L.group, i0 = (k % bands) * band_rows;
            const int64_t rows = std::min(band_rows, h - i0), cols = rows * w;
            if (col.size() == 0) col.resize(taps, ld);
            const double* rg = r.data.data() + (b * m + g * mg) * out_plane;
            for (int64_t t = 0; t < taps; ++t) {
                const int64_t mi = t / (kh * kw), jh = (t / kw) % kh, jw = t % kw;
                double* dst = col.data() + t * ld;
                std::fill(dst, dst + cols, 0.0);
                const double* rm = rg + mi * out_plane;
                // Input column x reads R_up column x + shift: nonzero where that is ox sw, ox < Wo.
                const int64_t shift = off_w + jw * dw;
                const int64_t ox0 = shift > 0 ? div_up(shift, sw) : 0;
                const int64_t ox1 = w - 1 + shift >= 0 ? std::min<int64_t>(wo, (w - 1 + shift) / sw + 1) : 0;
                for (int64_t i = i0; i < i0 + rows; ++i) {
                    const int64_t u = i + off_h + jh * dh; // R_up row read by input row i
                    if (u < 0 || u % sh != 0 || u / sh >= ho) continue;
                    const double* src = rm + (u / sh) * wo;
                    double* d = dst + (i - i0) * w;
                    for (int64_t ox = ox0; ox < ox1; ++ox) d[ox * sw - shift] = src[ox];
                }
            }
            row_map dst(out.data.data() + (b * c + g * cg) * plane + i0 * w, cg, cols, Eigen::OuterStride<>(plane));
            dst.noalias() = flipped[static_cast<size_t>(g)] * col.leftCols(cols);
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// Fully connected

fc_layer fc_layer_of(const node& n, const dtensor& weight, const shape_t& input_shape) {
    fc_layer L;
    L.input_shape = input_shape;
    if (weight.shape.size() != 2)
        throw unsupported_error(fmt::format("{}: weight of shape {}; DeconvNet's fully connected layer needs a 2-D "
                                            "constant second operand",
                                            n.describe(), to_string(weight.shape)));
    const int64_t rows = weight.shape[0], cols = weight.shape[1];
    const const_row_map b(weight.data.data(), rows, cols);
    if (n.op_type == "Gemm") {
        if (n.get_int("transA", 0) != 0)
            throw unsupported_error(fmt::format("{}: Gemm with transA = 1 is not a fully connected layer on the "
                                                "activations' last axis",
                                                n.describe()));
        if (input_shape.size() != 2)
            throw model_error(
                fmt::format("{}: Gemm input of shape {} is not 2-D", n.describe(), to_string(input_shape)));
        const double alpha = static_cast<double>(n.get_float("alpha", 1.0f));
        // y = alpha x B' with B' = B (transB 0, [in, out]) or B^T (transB 1, B [out, in]): W = alpha B'^T.
        const bool trans_b = n.get_int("transB", 0) != 0;
        L.weights = trans_b ? dtensor({rows, cols}) : dtensor({cols, rows});
        row_map wm(L.weights.data.data(), L.weights.shape[0], L.weights.shape[1],
                   Eigen::OuterStride<>(L.weights.shape[1]));
        if (trans_b)
            wm = alpha * b;
        else
            wm = alpha * b.transpose();
    } else if (n.op_type == "MatMul") {
        if (input_shape.empty()) throw model_error(fmt::format("{}: MatMul of a scalar", n.describe()));
        // y = x B, B [in, out]: W = B^T.
        L.weights = dtensor({cols, rows});
        row_map(L.weights.data.data(), cols, rows, Eigen::OuterStride<>(rows)) = b.transpose();
    } else {
        throw unsupported_error(
            fmt::format("{}: DeconvNet's fully connected layer is a Gemm or a MatMul", n.describe()));
    }
    if (input_shape.back() != L.weights.shape[1])
        throw model_error(fmt::format("{}: input {} does not end in the weight's {} inputs", n.describe(),
                                      to_string(input_shape), L.weights.shape[1]));
    return L;
}

dtensor transpose_multiply(const fc_layer& L, const dtensor& r) {
    const int64_t outs = L.weights.shape[0], ins = L.weights.shape[1];
    shape_t expected = L.input_shape;
    expected.back() = outs;
    require_shape("transposed multiplication", r, expected);
    const int64_t rows = r.size() / std::max<int64_t>(1, outs);
    dtensor out(L.input_shape);
    row_map(out.data.data(), rows, ins, Eigen::OuterStride<>(ins)).noalias() =
        const_row_map(r.data.data(), rows, outs) * const_row_map(L.weights.data.data(), outs, ins);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Max pooling

switches record_switches(const node& n, const dtensor& x) {
    switches s;
    s.input_shape = x.shape;
    if (n.op_type == "GlobalMaxPool") {
        if (x.shape.size() < 3)
            throw model_error(
                fmt::format("{}: input of shape {} has no spatial axis", n.describe(), to_string(x.shape)));
        s.output_shape = {x.shape[0], x.shape[1]};
        s.output_shape.resize(x.shape.size(), 1);
        const int64_t planes = x.shape[0] * x.shape[1];
        const int64_t plane = planes ? x.size() / planes : 0;
        for (int64_t p = 0; p < planes; ++p) {
            int64_t best = -1, count = 0;
            for (int64_t k = 0; k < plane; ++k) {
                const double v = x.data[static_cast<size_t>(p * plane + k)];
                if (best < 0 || v > x.data[static_cast<size_t>(best)]) {
                    best = p * plane + k;
                    count = 1;
                } else if (v == x.data[static_cast<size_t>(best)]) {
                    ++count;
                }
            }
            s.position.push_back(best);
            s.holders.push_back(static_cast<int32_t>(count));
        }
    } else if (n.op_type == "MaxPool") {
        if (x.shape.size() != 4)
            throw unsupported_error(fmt::format("{}: {}-D max pooling (input {}); DeconvNet handles 2-D only",
                                                n.describe(), static_cast<int64_t>(x.shape.size()) - 2,
                                                to_string(x.shape)));
        const auto kernel = n.get_ints("kernel_shape", {});
        if (kernel.size() != 2)
            throw model_error(
                fmt::format("{}: kernel_shape [{}] must list 2 sizes", n.describe(), fmt::join(kernel, ",")));
        // ceil_mode exists from MaxPool-10 on.
        const bool ceil_mode = n.opset >= 10 && n.get_int("ceil_mode", 0) != 0;
        const auto w = read_windows(n, {x.shape[2], x.shape[3]}, {kernel[0], kernel[1]}, ceil_mode);
        const int64_t planes = x.shape[0] * x.shape[1], h = x.shape[2], wd = x.shape[3];
        s.output_shape = {x.shape[0], x.shape[1], w[0].out, w[1].out};
        s.position.reserve(static_cast<size_t>(planes * w[0].out * w[1].out));
        s.holders.reserve(s.position.capacity());
        for (int64_t p = 0; p < planes; ++p)
            for (int64_t oy = 0; oy < w[0].out; ++oy)
                for (int64_t ox = 0; ox < w[1].out; ++ox) {
                    int64_t best = -1, count = 0;
                    double best_value = 0;
                    // Row-major window order; padding positions are skipped, so they never win.
                    for (int64_t ky = 0; ky < w[0].kernel; ++ky) {
                        const int64_t iy = oy * w[0].stride + ky * w[0].dilation - w[0].pad_begin;
                        if (iy < 0 || iy >= h) continue;
                        for (int64_t kx = 0; kx < w[1].kernel; ++kx) {
                            const int64_t ix = ox * w[1].stride + kx * w[1].dilation - w[1].pad_begin;
                            if (ix < 0 || ix >= wd) continue;
                            const int64_t at = (p * h + iy) * wd + ix;
                            const double v = x.data[static_cast<size_t>(at)];
                            if (best < 0 || v > best_value) {
                                best = at;
                                best_value = v;
                                count = 1;
                            } else if (v == best_value) {
                                ++count;
                            }
                        }
                    }
                    s.position.push_back(best);
                    s.holders.push_back(static_cast<int32_t>(count));
                }
    } else {
        throw unsupported_error(
            fmt::format("{}: switches are recorded for MaxPool and GlobalMaxPool only", n.describe()));
    }
    s.windows = static_cast<int64_t>(s.position.size());
    s.tied_windows = std::count_if(s.holders.begin(), s.holders.end(), [](int32_t k) { return k > 1; });
    return s;
}

dtensor unpool(const switches& s, const dtensor& r) {
    require_shape("unpooling", r, s.output_shape);
    dtensor out(s.input_shape);
    for (size_t e = 0; e < s.position.size(); ++e)
        if (s.position[e] >= 0) out.data[static_cast<size_t>(s.position[e])] += r.data[e];
    return out;
}

// ---------------------------------------------------------------------------------------------
// ReLU

dtensor rectify(const dtensor& r, const dtensor& /*x: not consulted by DeconvNet*/) {
    dtensor out(r.shape);
    for (size_t i = 0; i < r.data.size(); ++i) out.data[i] = r.data[i] > 0 ? r.data[i] : 0.0;
    return out;
}

} // namespace deepinside::verify::zf
