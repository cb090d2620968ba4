// Ops that move values without arithmetic, written from the ONNX operator definitions: Transpose,
// Slice, Split, Gather, Expand, Where. Every forward is "output element at multi-index j reads input
// element f(j)" spelled out per element; every backward adds each output element's signal to the
// input element it was read from (for Where: to the branch the condition chose).
#include "ref_ops.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <numeric>

namespace deepinside::verify {

namespace {

/// Calls f(flat index, multi-index) for every element of `shape` in C order.
template <typename F>
void for_each_index(const shape_t& shape, F&& f) {
    const int64_t count = element_count(shape);
    std::vector<int64_t> j(shape.size(), 0);
    for (int64_t i = 0; i < count; ++i) {
        f(i, j);
        for (size_t d = shape.size(); d-- > 0;) {
            if (++j[d] < shape[d]) break;
            j[d] = 0;
        }
    }
}

int64_t flat(const std::vector<int64_t>& j, const std::vector<int64_t>& strides) {
    int64_t o = 0;
    for (size_t d = 0; d < j.size(); ++d) o += j[d] * strides[d];
    return o;
}

/// A forward that reads y[i] = x[source(i)] for every output element i (the ops of this file only route
/// values; each says where from).
template <typename Source>
dtensor route_forward(const dtensor& x, const shape_t& out, Source&& source) {
    dtensor y(out);
    for_each_index(out, [&](int64_t k, const std::vector<int64_t>& j) {
        y.data[static_cast<size_t>(k)] = x.data[static_cast<size_t>(source(j))];
    });
    return y;
}

/// A backward that adds diff_dst[i] to diff_src[source(i)] for every output element i.
template <typename Source>
std::vector<dtensor> route_back(const backward_args& a, Source&& source) {
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    for_each_index(a.dst.shape, [&](int64_t i, const std::vector<int64_t>& j) {
        diffs[0].data[static_cast<size_t>(source(j))] += a.diff_dst.data[static_cast<size_t>(i)];
    });
    return diffs;
}

// ---- Transpose

std::vector<int64_t> transpose_perm(const node& n, size_t rank) {
    std::vector<int64_t> perm;
    if (n.has("perm")) {
        for (int64_t p : n.get_ints("perm", {})) perm.push_back(normalize_axis(n, p, static_cast<int64_t>(rank)));
    } else {
        for (size_t d = rank; d-- > 0;) perm.push_back(static_cast<int64_t>(d)); // default: reverse the axes
    }
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> identity(rank);
    std::iota(identity.begin(), identity.end(), 0);
    if (sorted != identity)
        throw model_error(fmt::format("{}: perm [{}] is not a permutation of the {} axes", n.describe(), fmt::join(perm, ","), rank));
    return perm;
}

} // namespace

dtensor transpose_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const auto perm = transpose_perm(n, x.shape.size());
    shape_t out;
    for (int64_t p : perm) out.push_back(x.shape[static_cast<size_t>(p)]);
    const auto xs = strides_of(x.shape);
    // y[j] = x[i] with i[perm[d]] = j[d].
    return route_forward(x, out, [&](const std::vector<int64_t>& j) {
        int64_t from = 0;
        for (size_t d = 0; d < j.size(); ++d) from += j[d] * xs[static_cast<size_t>(perm[d])];
        return from;
    });
}

std::vector<dtensor> transpose_bwd(const backward_args& a) {
    const auto perm = transpose_perm(a.n, a.src[0]->shape.size());
    const auto xs = strides_of(a.src[0]->shape);
    return route_back(a, [&](const std::vector<int64_t>& j) {
        int64_t from = 0;
        for (size_t d = 0; d < j.size(); ++d) from += j[d] * xs[static_cast<size_t>(perm[d])];
        return from;
    });
}

// ---- Slice

namespace {
/// Per input axis: the first index read and the step (1 and full length on axes not sliced).
struct slice_plan {
    std::vector<int64_t> start, step;
    shape_t out;
};

slice_plan slice_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<int64_t> starts, ends, axes, steps;
    if (n.opset < 10) {
        starts = n.get_ints("starts", {});
        ends = n.get_ints("ends", {});
        axes = n.get_ints("axes", {});
    } else {
        starts = to_ints(n, input(n, src, 1), "starts");
        ends = to_ints(n, input(n, src, 2), "ends");
        if (src.size() > 3 && src[3]) axes = to_ints(n, *src[3], "axes");
        if (src.size() > 4 && src[4]) steps = to_ints(n, *src[4], "steps");
    }
    if (axes.empty())
        for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
        throw model_error(fmt::format("{}: starts, ends, axes and steps differ in length ({}, {}, {}, {})", n.describe(), starts.size(),
                                      ends.size(), axes.size(), steps.size()));
    slice_plan p;
    p.start.assign(static_cast<size_t>(rank), 0);
    p.step.assign(static_cast<size_t>(rank), 1);
    p.out = x.shape;
    std::vector<bool> done(static_cast<size_t>(rank), false);
    for (size_t i = 0; i < starts.size(); ++i) {
        const size_t a = static_cast<size_t>(normalize_axis(n, axes[i], rank));
        if (done[a]) throw model_error(fmt::format("{}: axes [{}] repeat axis {}", n.describe(), fmt::join(axes, ","), a));
        done[a] = true;
        const int64_t dim = x.shape[a], step = steps[i];
        if (step == 0) throw model_error(fmt::format("{}: a step of 0 on axis {}", n.describe(), a));
        // Slice-13: negative starts and ends count from the end; then clamp to [0, dim] for positive
        // steps and to [-1, dim - 1] (start: [0, dim - 1]) for negative ones.
        int64_t s = starts[i], e = ends[i];
        if (s < 0) s += dim;
        if (e < 0) e += dim;
        if (step > 0) {
            s = std::min(std::max<int64_t>(s, 0), dim);
            e = std::min(std::max<int64_t>(e, 0), dim);
        } else {
            s = std::min(std::max<int64_t>(s, 0), dim - 1);
            e = std::min(std::max<int64_t>(e, -1), dim - 1);
        }
        // The indices s, s + step, ... strictly before e.
        int64_t len = 0;
        for (int64_t k = s; step > 0 ? k < e : k > e; k += step) ++len;
        p.start[a] = s;
        p.step[a] = step;
        p.out[a] = len;
    }
    return p;
}

int64_t slice_source(const slice_plan& p, const std::vector<int64_t>& xs, const std::vector<int64_t>& j) {
    int64_t from = 0;
    for (size_t d = 0; d < j.size(); ++d) from += (p.start[d] + j[d] * p.step[d]) * xs[d];
    return from;
}
} // namespace

dtensor slice_fwd(const node& n, const src_list& src) {
    const slice_plan p = slice_geometry(n, src);
    const dtensor& x = *src[0];
    const auto xs = strides_of(x.shape);
    return route_forward(x, p.out, [&](const std::vector<int64_t>& j) { return slice_source(p, xs, j); });
}

std::vector<dtensor> slice_bwd(const backward_args& a) {
    const slice_plan p = slice_geometry(a.n, a.src);
    const auto xs = strides_of(a.src[0]->shape);
    return route_back(a, [&](const std::vector<int64_t>& j) { return slice_source(p, xs, j); });
}

// ---- Split (run as one node per output: see split_into_parts)

namespace {
constexpr const char* part_attr = "__deepinside_split_part";
constexpr const char* parts_attr = "__deepinside_split_parts";

/// The axis, and the offset and length along it of this node's part.
struct split_plan {
    size_t axis = 0;
    int64_t begin = 0, length = 0;
};

split_plan split_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    if (!n.has(part_attr)) throw std::logic_error(fmt::format("reference {}: Split reached without split_into_parts", n.describe()));
    const int64_t part = n.get_int(part_attr, 0), parts = n.get_int(parts_attr, 1);
    split_plan p;
    p.axis = static_cast<size_t>(normalize_axis(n, n.get_int("axis", 0), static_cast<int64_t>(x.shape.size())));
    const int64_t dim = x.shape[p.axis];
    std::vector<int64_t> split;
    if (n.opset < 13) split = n.get_ints("split", {});
    else if (src.size() > 1 && src[1]) split = to_ints(n, *src[1], "split");
    if (split.empty() && n.opset >= 18 && n.has("num_outputs")) {
        // Split-18: parts of ceil(dim / num_outputs), the last one smaller when it does not divide.
        const int64_t k = n.get_int("num_outputs", 0);
        if (k != parts) throw model_error(fmt::format("{}: num_outputs {} for {} outputs", n.describe(), k, parts));
        const int64_t chunk = (dim + k - 1) / k;
        for (int64_t i = 0; i < k; ++i) split.push_back(std::max<int64_t>(0, std::min(chunk, dim - i * chunk)));
    } else if (split.empty()) {
        if (dim % parts != 0)
            throw model_error(fmt::format("{}: axis {} of length {} into {} equal parts", n.describe(), p.axis, dim, parts));
        split.assign(static_cast<size_t>(parts), dim / parts);
    }
    if (static_cast<int64_t>(split.size()) != parts || std::accumulate(split.begin(), split.end(), int64_t(0)) != dim ||
        std::any_of(split.begin(), split.end(), [](int64_t v) { return v < 0; }))
        throw model_error(fmt::format("{}: split [{}] for {} outputs along an axis of length {}", n.describe(), fmt::join(split, ","), parts, dim));
    for (int64_t i = 0; i < part; ++i) p.begin += split[static_cast<size_t>(i)];
    p.length = split[static_cast<size_t>(part)];
    return p;
}
} // namespace

void split_into_parts(graph& g) {
    std::vector<node> nodes;
    for (const node& n : g.nodes) {
        if (n.op_type != "Split" || (!n.domain.empty() && n.domain != "ai.onnx")) {
            nodes.push_back(n);
            continue;
        }
        for (size_t i = 0; i < n.outputs.size(); ++i) {
            if (n.outputs[i].empty()) continue;
            node part = n;
            part.outputs = {n.outputs[i]};
            part.attributes[part_attr] = static_cast<int64_t>(i);
            part.attributes[parts_attr] = static_cast<int64_t>(n.outputs.size());
            nodes.push_back(std::move(part));
        }
    }
    g.nodes = std::move(nodes);
}

dtensor split_fwd(const node& n, const src_list& src) {
    const split_plan p = split_geometry(n, src);
    const dtensor& x = *src[0];
    shape_t out = x.shape;
    out[p.axis] = p.length;
    const auto xs = strides_of(x.shape);
    return route_forward(x, out, [&](const std::vector<int64_t>& j) { return flat(j, xs) + p.begin * xs[p.axis]; });
}

std::vector<dtensor> split_bwd(const backward_args& a) {
    const split_plan p = split_geometry(a.n, a.src);
    const auto xs = strides_of(a.src[0]->shape);
    return route_back(a, [&](const std::vector<int64_t>& j) { return flat(j, xs) + p.begin * xs[p.axis]; });
}

// ---- Gather

namespace {
struct gather_plan {
    size_t axis = 0;
    std::vector<int64_t> indices; ///< normalised to [0, dim)
    shape_t index_shape, out;
};

gather_plan gather_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const dtensor& idx = input(n, src, 1);
    gather_plan p;
    p.axis = static_cast<size_t>(normalize_axis(n, n.get_int("axis", 0), static_cast<int64_t>(x.shape.size())));
    const int64_t dim = x.shape[p.axis];
    p.indices = to_ints(n, idx, "indices");
    for (int64_t& i : p.indices) {
        if (i < -dim || i >= dim) throw model_error(fmt::format("{}: index {} outside an axis of length {}", n.describe(), i, dim));
        if (i < 0) i += dim;
    }
    p.index_shape = idx.shape;
    // out = x.shape[:axis] + indices.shape + x.shape[axis + 1:]
    p.out.assign(x.shape.begin(), x.shape.begin() + static_cast<long>(p.axis));
    p.out.insert(p.out.end(), idx.shape.begin(), idx.shape.end());
    p.out.insert(p.out.end(), x.shape.begin() + static_cast<long>(p.axis) + 1, x.shape.end());
    return p;
}

int64_t gather_source(const gather_plan& p, const std::vector<int64_t>& xs, const std::vector<int64_t>& j) {
    const size_t q = p.index_shape.size();
    const auto is = strides_of(p.index_shape);
    int64_t which = 0;
    for (size_t d = 0; d < q; ++d) which += j[p.axis + d] * is[d];
    int64_t from = p.indices[static_cast<size_t>(which)] * xs[p.axis];
    for (size_t d = 0; d < p.axis; ++d) from += j[d] * xs[d];
    for (size_t d = p.axis + 1; d < xs.size(); ++d) from += j[d - 1 + q] * xs[d];
    return from;
}
} // namespace

dtensor gather_fwd(const node& n, const src_list& src) {
    const gather_plan p = gather_geometry(n, src);
    const dtensor& x = *src[0];
    const auto xs = strides_of(x.shape);
    return route_forward(x, p.out, [&](const std::vector<int64_t>& j) { return gather_source(p, xs, j); });
}

std::vector<dtensor> gather_bwd(const backward_args& a) {
    const gather_plan p = gather_geometry(a.n, a.src);
    const auto xs = strides_of(a.src[0]->shape);
    return route_back(a, [&](const std::vector<int64_t>& j) { return gather_source(p, xs, j); });
}

// ---- Expand

namespace {
/// Index into a tensor of `from` (right-aligned, 1 where broadcast) for multi-index j of the output.
int64_t broadcast_source(const shape_t& from, const std::vector<int64_t>& j) {
    const size_t lead = j.size() - from.size();
    int64_t o = 0;
    for (size_t d = 0; d < from.size(); ++d) o = o * from[d] + (from[d] == 1 ? 0 : j[lead + d]);
    return o;
}
} // namespace

dtensor expand_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const shape_t target = to_ints(n, input(n, src, 1), "shape");
    const shape_t out = broadcast_shapes(n, x.shape, target);
    return route_forward(x, out, [&](const std::vector<int64_t>& j) { return broadcast_source(x.shape, j); });
}

std::vector<dtensor> expand_bwd(const backward_args& a) {
    const shape_t& xs = a.src[0]->shape;
    return route_back(a, [&](const std::vector<int64_t>& j) { return broadcast_source(xs, j); });
}

// ---- Where

dtensor where_fwd(const node& n, const src_list& src) {
    const dtensor &c = input(n, src, 0), &x = input(n, src, 1), &y = input(n, src, 2);
    const shape_t out = broadcast_shapes(n, broadcast_shapes(n, c.shape, x.shape), y.shape);
    dtensor r(out);
    for_each_index(out, [&](int64_t k, const std::vector<int64_t>& j) {
        const bool take_x = c.data[static_cast<size_t>(broadcast_source(c.shape, j))] != 0;
        r.data[static_cast<size_t>(k)] = take_x ? x.data[static_cast<size_t>(broadcast_source(x.shape, j))]
                                                : y.data[static_cast<size_t>(broadcast_source(y.shape, j))];
    });
    return r;
}

std::vector<dtensor> where_bwd(const backward_args& a) {
    auto diffs = empty_diffs(a);
    const dtensor& c = *a.src[0];
    for (size_t b = 1; b <= 2; ++b) {
        if (!a.need[b]) continue;
        diffs[b] = dtensor(a.src[b]->shape);
        for_each_index(a.dst.shape, [&](int64_t k, const std::vector<int64_t>& j) {
            const bool take_x = c.data[static_cast<size_t>(broadcast_source(c.shape, j))] != 0;
            if (take_x == (b == 1))
                diffs[b].data[static_cast<size_t>(broadcast_source(a.src[b]->shape, j))] += a.diff_dst.data[static_cast<size_t>(k)];
        });
    }
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> layout_ops() {
    return {
        {"Transpose", transpose_fwd, transpose_bwd, nullptr, 1, nullptr},
        {"Slice", slice_fwd, slice_bwd, nullptr, 1, nullptr},
        {"Split", split_fwd, split_bwd, nullptr, 1, nullptr},
        {"Gather", gather_fwd, gather_bwd, nullptr, 1, nullptr},
        {"Expand", expand_fwd, expand_bwd, nullptr, 1, nullptr},
        {"Where", where_fwd, where_bwd, nullptr, 0b110, nullptr}, // X and Y; the condition selects
    };
}

} // namespace deepinside::verify
