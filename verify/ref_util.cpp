#include "ref_ops.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace deepinside::verify {

dtensor::dtensor(shape_t s) : shape(std::move(s)), data(static_cast<size_t>(element_count(shape)), 0.0) {}

dtensor::dtensor(shape_t s, std::vector<double> d) : shape(std::move(s)), data(std::move(d)) {
    if (element_count(shape) != static_cast<int64_t>(data.size()))
        throw input_error(fmt::format("double tensor of shape {} given {} values", to_string(shape), data.size()));
}

dtensor to_double(const tensor& src) {
    return dtensor(src.shape, std::vector<double>(src.data.begin(), src.data.end()));
}

tensor to_float(const dtensor& src) {
    std::vector<float> d(src.data.size());
    for (size_t i = 0; i < d.size(); ++i) d[i] = static_cast<float>(src.data[i]);
    return tensor(src.shape, std::move(d));
}

std::vector<int64_t> strides_of(const shape_t& shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (size_t i = shape.size(); i-- > 1;) s[i - 1] = s[i] * shape[i];
    return s;
}

shape_t broadcast_shapes(const node& n, const shape_t& a, const shape_t& b) {
    const size_t rank = std::max(a.size(), b.size());
    shape_t out(rank);
    for (size_t i = 0; i < rank; ++i) {
        // Align from the right, as numpy does.
        const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
        const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
        if (da != db && da != 1 && db != 1)
            throw model_error(fmt::format("{}: shapes {} and {} do not broadcast", n.describe(), to_string(a),
                                          to_string(b)));
        out[i] = da == 1 ? db : da;
    }
    return out;
}

std::vector<int64_t> broadcast_index(const shape_t& src_shape, const shape_t& dst_shape) {
    const size_t rank = dst_shape.size();
    const size_t offset = rank - src_shape.size();
    const auto src_strides = strides_of(src_shape);
    // Stride 0 along broadcast axes turns the multi-index walk into the source index.
    std::vector<int64_t> step(rank, 0);
    for (size_t i = offset; i < rank; ++i)
        step[i] = src_shape[i - offset] == 1 ? 0 : src_strides[i - offset];
    const int64_t count = element_count(dst_shape);
    std::vector<int64_t> index(static_cast<size_t>(count));
    std::vector<int64_t> pos(rank, 0);
    int64_t cur = 0;
    for (int64_t k = 0; k < count; ++k) {
        index[static_cast<size_t>(k)] = cur;
        for (size_t d = rank; d-- > 0;) {
            if (++pos[d] < dst_shape[d]) {
                cur += step[d];
                break;
            }
            cur -= step[d] * (dst_shape[d] - 1);
            pos[d] = 0;
        }
    }
    return index;
}

dtensor reduce_to_shape(const dtensor& src, const shape_t& target) {
    dtensor out(target);
    const auto idx = broadcast_index(target, src.shape);
    for (size_t k = 0; k < idx.size(); ++k) out.data[static_cast<size_t>(idx[k])] += src.data[k];
    return out;
}

std::vector<int64_t> to_ints(const node& n, const dtensor& t, const char* what) {
    std::vector<int64_t> out;
    out.reserve(t.data.size());
    for (double v : t.data) {
        // INT64_MAX and INT64_MIN, exporters' "to the end" in Slice, widen to ±2^63: they stay the
        // extreme values (only a clamp reads them); other values beyond 2^53 are not exact in double.
        if (std::fabs(v) == 9223372036854775808.0) {
            out.push_back(v > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min());
            continue;
        }
        if (!std::isfinite(v) || v != std::floor(v) || std::fabs(v) > 9.0e15)
            throw model_error(fmt::format("{}: {} must hold integers, found {}", n.describe(), what, v));
        out.push_back(static_cast<int64_t>(v));
    }
    return out;
}

int64_t normalize_axis(const node& n, int64_t a, int64_t rank, bool inclusive) {
    const int64_t hi = inclusive ? rank : rank - 1;
    if (a < -rank || a > hi)
        throw model_error(fmt::format("{}: axis {} is out of range for rank {}", n.describe(), a, rank));
    return a < 0 ? a + rank : a;
}

const dtensor& input(const node& n, const src_list& src, size_t i) {
    if (i >= src.size() || src[i] == nullptr)
        throw model_error(fmt::format("{}: required input {} is missing", n.describe(), i));
    return *src[i];
}

void require_rank(const node& n, const dtensor& t, size_t rank, const char* what) {
    if (t.shape.size() != rank)
        throw unsupported_error(fmt::format("{}: {} has shape {}; the reference supports rank {} only",
                                            n.describe(), what, to_string(t.shape), rank));
}

std::vector<dtensor> empty_diffs(const backward_args& a) { return std::vector<dtensor>(a.src.size()); }

// Spelled here rather than borrowed from the engine so that the verifier links without it.
static const char* rule_name(backward_rule r) {
    switch (r) {
    case backward_rule::gradient: return "gradient";
    case backward_rule::deconvnet: return "deconvnet";
    case backward_rule::guided: return "guided";
    }
    return "unknown";
}

void check_nonrelu_rule(const backward_args& a) {
    if (a.rule != backward_rule::gradient && a.policy == nonrelu_policy::refuse)
        throw unsupported_error(fmt::format(
            "{}: the {} rule is defined for ReLU only; pass --nonrelu gradient to apply the exact derivative there",
            a.n.describe(), rule_name(a.rule)));
}

} // namespace deepinside::verify
