// Softmax and LogSoftmax with ONNX's axis semantics: before opset 13 the input is coerced to 2-D at
// `axis` (default 1) and normalised over the whole trailing block; from 13 over the single `axis` (default -1).
#include "ref_ops.hpp"

#include <fmt/format.h>

#include <cmath>

namespace deepinside::verify {

namespace {

/// Element k of row (o, i) sits at (o * length + k) * inner + i.
struct softmax_plan {
    int64_t outer = 1, length = 1, inner = 1;
};

softmax_plan softmax_geometry(const node& n, const dtensor& x) {
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    softmax_plan p;
    if (n.opset < 13) {
        const int64_t axis = normalize_axis(n, n.get_int("axis", 1), rank, true);
        for (int64_t d = 0; d < rank; ++d) (d < axis ? p.outer : p.length) *= x.shape[static_cast<size_t>(d)];
    } else {
        if (rank == 0) throw model_error(fmt::format("{}: input is a scalar", n.describe()));
        const int64_t axis = normalize_axis(n, n.get_int("axis", -1), rank);
        for (int64_t d = 0; d < rank; ++d)
            (d < axis ? p.outer : d == axis ? p.length : p.inner) *= x.shape[static_cast<size_t>(d)];
    }
    return p;
}

template <typename F>
void for_each_row(const softmax_plan& p, F&& f) {
    for (int64_t o = 0; o < p.outer; ++o)
        for (int64_t i = 0; i < p.inner; ++i) f(o * p.length * p.inner + i, p.inner);
}

/// Writes log softmax of one row (first element at `base`, elements `step` apart) into y.
void log_softmax_row(const dtensor& x, dtensor& y, int64_t base, int64_t step, int64_t length) {
    if (length == 0) return;
    auto at = [&](int64_t k) { return static_cast<size_t>(base + k * step); };
    double m = x.data[at(0)];
    for (int64_t k = 1; k < length; ++k) m = std::max(m, x.data[at(k)]);
    double sum = 0;
    for (int64_t k = 0; k < length; ++k) sum += std::exp(x.data[at(k)] - m);
    const double log_sum = m + std::log(sum);
    for (int64_t k = 0; k < length; ++k) y.data[at(k)] = x.data[at(k)] - log_sum;
}

} // namespace

dtensor softmax_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const softmax_plan p = softmax_geometry(n, x);
    dtensor y(x.shape);
    for_each_row(p, [&](int64_t base, int64_t step) { log_softmax_row(x, y, base, step, p.length); });
    for (double& v : y.data) v = std::exp(v);
    return y;
}

// dx = y * (g - <g, y>) along each row.
std::vector<dtensor> softmax_bwd(const backward_args& a) {
    const softmax_plan p = softmax_geometry(a.n, *a.src[0]);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    for_each_row(p, [&](int64_t base, int64_t step) {
        double dot = 0;
        for (int64_t k = 0; k < p.length; ++k) {
            const size_t i = static_cast<size_t>(base + k * step);
            dot += a.diff_dst.data[i] * a.dst.data[i];
        }
        for (int64_t k = 0; k < p.length; ++k) {
            const size_t i = static_cast<size_t>(base + k * step);
            diffs[0].data[i] = a.dst.data[i] * (a.diff_dst.data[i] - dot);
        }
    });
    return diffs;
}

dtensor log_softmax_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const softmax_plan p = softmax_geometry(n, x);
    dtensor y(x.shape);
    for_each_row(p, [&](int64_t base, int64_t step) { log_softmax_row(x, y, base, step, p.length); });
    return y;
}

// dx = g - softmax(x) * sum(g) along each row, with softmax(x) = exp(y).
std::vector<dtensor> log_softmax_bwd(const backward_args& a) {
    const softmax_plan p = softmax_geometry(a.n, *a.src[0]);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    for_each_row(p, [&](int64_t base, int64_t step) {
        double sum = 0;
        for (int64_t k = 0; k < p.length; ++k) sum += a.diff_dst.data[static_cast<size_t>(base + k * step)];
        for (int64_t k = 0; k < p.length; ++k) {
            const size_t i = static_cast<size_t>(base + k * step);
            diffs[0].data[i] = a.diff_dst.data[i] - std::exp(a.dst.data[i]) * sum;
        }
    });
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> softmax_ops() {
    return {
        {"Softmax", softmax_fwd, softmax_bwd, nullptr, 1, nullptr},
        {"LogSoftmax", log_softmax_fwd, log_softmax_bwd, nullptr, 1, nullptr},
    };
}

} // namespace deepinside::verify
