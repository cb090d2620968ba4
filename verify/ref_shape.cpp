// Ops that move values without arithmetic: Identity, Dropout (inference), Reshape, Flatten, Squeeze,
// Unsqueeze, Concat, Pad (constant mode), and ReduceMean.
#include "ref_ops.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

namespace deepinside::verify {

dtensor identity_fwd(const node& n, const src_list& src) { return input(n, src, 0); }

std::vector<dtensor> identity_bwd(const backward_args& a) {
    auto diffs = empty_diffs(a);
    diffs[0] = a.diff_dst;
    return diffs;
}

void dropout_check(const node& n) {
    // Before opset 7 the flag lived in an attribute; inference graphs set it or leave it to the runtime.
    if (n.opset >= 7 && n.has("is_test"))
        throw model_error(fmt::format("{}: is_test is not an attribute of this opset", n.describe()));
}

dtensor dropout_fwd(const node& n, const src_list& src) {
    // Training mode drops nothing at ratio 0 (see the engine's Dropout).
    const bool zero_ratio = src.size() > 1 && src[1] && src[1]->size() == 1 && src[1]->data[0] == 0;
    if (src.size() > 2 && src[2] && src[2]->size() == 1 && src[2]->data[0] != 0 && !zero_ratio)
        throw unsupported_error(fmt::format("{}: training_mode is true with a non-zero ratio; the reference runs inference only",
                                            n.describe()));
    return input(n, src, 0);
}

std::vector<dtensor> reshape_like_bwd(const backward_args& a) {
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape, a.diff_dst.data);
    return diffs;
}

namespace {
/// Axes from the attribute (before `input_opset`) or the optional input 1 (from it).
std::optional<std::vector<int64_t>> axes_of(const node& n, const src_list& src, int64_t input_opset) {
    if (n.opset < input_opset) {
        if (!n.has("axes")) return std::nullopt;
        return n.get_ints("axes", {});
    }
    if (src.size() < 2 || !src[1]) return std::nullopt;
    return to_ints(n, *src[1], "axes");
}

std::vector<int64_t> normalized_axes(const node& n, const std::vector<int64_t>& axes, int64_t rank) {
    std::vector<int64_t> out;
    for (int64_t a : axes) out.push_back(normalize_axis(n, a, rank));
    std::sort(out.begin(), out.end());
    if (std::adjacent_find(out.begin(), out.end()) != out.end())
        throw model_error(fmt::format("{}: axes [{}] repeat an axis", n.describe(), fmt::join(axes, ", ")));
    return out;
}
} // namespace

dtensor reshape_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const std::vector<int64_t> spec =
        n.opset < 5 ? n.get_ints("shape", {}) : to_ints(n, input(n, src, 1), "the shape input");
    const bool allow_zero = n.get_int("allowzero", 0) != 0;
    shape_t out(spec.size());
    int64_t inferred = -1, known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
        int64_t d = spec[i];
        if (d == 0 && !allow_zero) {
            if (i >= x.shape.size())
                throw model_error(fmt::format("{}: shape entry {} is 0 but the input {} has no axis {}", n.describe(), i,
                                              to_string(x.shape), i));
            d = x.shape[i];
        }
        if (d == -1) {
            if (inferred >= 0) throw model_error(fmt::format("{}: shape [{}] has two -1", n.describe(), fmt::join(spec, ", ")));
            if (allow_zero && std::count(spec.begin(), spec.end(), 0) > 0)
                throw model_error(fmt::format("{}: allowzero with both 0 and -1 in the shape", n.describe()));
            inferred = static_cast<int64_t>(i);
            continue;
        }
        if (d < 0) throw model_error(fmt::format("{}: shape entry {} is {}", n.describe(), i, d));
        out[i] = d;
        known *= d;
    }
    if (inferred >= 0) {
        if (known == 0 || x.size() % known != 0)
            throw model_error(fmt::format("{}: cannot reshape {} to [{}]", n.describe(), to_string(x.shape),
                                          fmt::join(spec, ", ")));
        out[static_cast<size_t>(inferred)] = x.size() / known;
    }
    if (element_count(out) != x.size())
        throw model_error(fmt::format("{}: cannot reshape {} ({} values) to {}", n.describe(), to_string(x.shape),
                                      x.size(), to_string(out)));
    return dtensor(out, x.data);
}

dtensor flatten_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    const int64_t axis = normalize_axis(n, n.get_int("axis", 1), rank, true);
    int64_t outer = 1;
    for (int64_t i = 0; i < axis; ++i) outer *= x.shape[static_cast<size_t>(i)];
    return dtensor({outer, outer == 0 ? 0 : x.size() / outer}, x.data);
}

dtensor squeeze_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    const auto axes = axes_of(n, src, 13);
    std::set<int64_t> drop;
    if (axes) {
        for (int64_t a : normalized_axes(n, *axes, rank)) {
            if (x.shape[static_cast<size_t>(a)] != 1)
                throw model_error(fmt::format("{}: cannot squeeze axis {} of size {}", n.describe(), a,
                                              x.shape[static_cast<size_t>(a)]));
            drop.insert(a);
        }
    } else {
        for (int64_t a = 0; a < rank; ++a)
            if (x.shape[static_cast<size_t>(a)] == 1) drop.insert(a);
    }
    shape_t out;
    for (int64_t a = 0; a < rank; ++a)
        if (!drop.count(a)) out.push_back(x.shape[static_cast<size_t>(a)]);
    return dtensor(out, x.data);
}

dtensor unsqueeze_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const auto axes = axes_of(n, src, 13);
    if (!axes) throw model_error(fmt::format("{}: axes are required", n.describe()));
    const int64_t out_rank = static_cast<int64_t>(x.shape.size() + axes->size());
    const auto inserted = normalized_axes(n, *axes, out_rank);
    shape_t out;
    size_t next = 0;
    for (int64_t a = 0; a < out_rank; ++a) {
        if (std::binary_search(inserted.begin(), inserted.end(), a))
            out.push_back(1);
        else
            out.push_back(x.shape[next++]);
    }
    return dtensor(out, x.data);
}

namespace {
struct concat_plan {
    int64_t axis = 0, outer = 1, inner = 1;
    shape_t out;
};
concat_plan concat_geometry(const node& n, const src_list& src) {
    if (src.empty()) throw model_error(fmt::format("{}: no inputs", n.describe()));
    const dtensor& first = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(first.shape.size());
    concat_plan p;
    p.axis = normalize_axis(n, n.get_int("axis", 1), rank);
    p.out = first.shape;
    p.out[static_cast<size_t>(p.axis)] = 0;
    for (size_t i = 0; i < src.size(); ++i) {
        const dtensor& t = input(n, src, i);
        for (int64_t d = 0; d < rank; ++d)
            if (t.shape.size() != first.shape.size() ||
                (d != p.axis && t.shape[static_cast<size_t>(d)] != first.shape[static_cast<size_t>(d)]))
                throw model_error(fmt::format("{}: input {} of shape {} does not concatenate with {} on axis {}",
                                              n.describe(), i, to_string(t.shape), to_string(first.shape), p.axis));
        p.out[static_cast<size_t>(p.axis)] += t.shape[static_cast<size_t>(p.axis)];
    }
    for (int64_t d = 0; d < p.axis; ++d) p.outer *= first.shape[static_cast<size_t>(d)];
    for (int64_t d = p.axis + 1; d < rank; ++d) p.inner *= first.shape[static_cast<size_t>(d)];
    return p;
}
} // namespace

dtensor concat_fwd(const node& n, const src_list& src) {
    const concat_plan p = concat_geometry(n, src);
    dtensor y(p.out);
    const int64_t out_row = p.out[static_cast<size_t>(p.axis)] * p.inner;
    int64_t offset = 0;
    for (const dtensor* t : src) {
        const int64_t row = t->shape[static_cast<size_t>(p.axis)] * p.inner;
        for (int64_t o = 0; o < p.outer; ++o)
            std::copy_n(t->data.begin() + o * row, row, y.data.begin() + o * out_row + offset);
        offset += row;
    }
    return y;
}

std::vector<dtensor> concat_bwd(const backward_args& a) {
    const concat_plan p = concat_geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    const int64_t out_row = p.out[static_cast<size_t>(p.axis)] * p.inner;
    int64_t offset = 0;
    for (size_t i = 0; i < a.src.size(); ++i) {
        const dtensor& t = *a.src[i];
        const int64_t row = t.shape[static_cast<size_t>(p.axis)] * p.inner;
        if (a.need[i]) {
            diffs[i] = dtensor(t.shape);
            for (int64_t o = 0; o < p.outer; ++o)
                std::copy_n(a.diff_dst.data.begin() + o * out_row + offset, row, diffs[i].data.begin() + o * row);
        }
        offset += row;
    }
    return diffs;
}

void pad_check(const node& n) {
    const std::string mode = n.get_string("mode", "constant");
    if (mode != "constant")
        throw unsupported_error(fmt::format("{}: pad mode '{}' is not supported (only constant)", n.describe(), mode));
}

namespace {
struct pad_plan {
    std::vector<int64_t> begin; ///< per axis; negative values crop
    shape_t out;
    double value = 0;
};
pad_plan pad_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<int64_t> pads;
    pad_plan p;
    if (n.opset < 11) {
        pads = n.get_ints(n.opset < 2 ? "paddings" : "pads", {});
        p.value = static_cast<double>(n.get_float("value", 0.0f));
    } else {
        pads = to_ints(n, input(n, src, 1), "pads");
        if (src.size() > 2 && src[2]) {
            if (src[2]->size() != 1)
                throw model_error(fmt::format("{}: constant_value must be a scalar", n.describe()));
            p.value = src[2]->data[0];
        }
    }
    std::vector<int64_t> axes(static_cast<size_t>(rank));
    for (int64_t i = 0; i < rank; ++i) axes[static_cast<size_t>(i)] = i;
    if (n.opset >= 18 && src.size() > 3 && src[3]) {
        axes.clear();
        for (int64_t a : to_ints(n, *src[3], "axes")) axes.push_back(normalize_axis(n, a, rank));
    }
    if (pads.size() != 2 * axes.size())
        throw model_error(fmt::format("{}: {} pads for {} axes", n.describe(), pads.size(), axes.size()));
    p.begin.assign(static_cast<size_t>(rank), 0);
    p.out = x.shape;
    for (size_t i = 0; i < axes.size(); ++i) {
        const size_t ax = static_cast<size_t>(axes[i]);
        p.begin[ax] = pads[i];
        p.out[ax] = x.shape[ax] + pads[i] + pads[i + axes.size()];
        if (p.out[ax] < 0)
            throw model_error(fmt::format("{}: pads [{}] crop axis {} below zero", n.describe(), fmt::join(pads, ", "), ax));
    }
    return p;
}

/// Calls f(output flat index, input flat index or -1 when the output element is padding).
template <typename F>
void for_each_padded(const shape_t& in, const pad_plan& p, F&& f) {
    const auto in_strides = strides_of(in);
    const size_t rank = in.size();
    std::vector<int64_t> pos(rank, 0);
    const int64_t count = element_count(p.out);
    for (int64_t o = 0; o < count; ++o) {
        int64_t src = 0;
        for (size_t d = 0; d < rank && src >= 0; ++d) {
            const int64_t i = pos[d] - p.begin[d];
            src = (i < 0 || i >= in[d]) ? -1 : src + i * in_strides[d];
        }
        f(o, src);
        for (size_t d = rank; d-- > 0;) {
            if (++pos[d] < p.out[d]) break;
            pos[d] = 0;
        }
    }
}
} // namespace

dtensor pad_fwd(const node& n, const src_list& src) {
    const pad_plan p = pad_geometry(n, src);
    const dtensor& x = *src[0];
    dtensor y(p.out);
    for_each_padded(x.shape, p, [&](int64_t o, int64_t i) {
        y.data[static_cast<size_t>(o)] = i < 0 ? p.value : x.data[static_cast<size_t>(i)];
    });
    return y;
}

std::vector<dtensor> pad_bwd(const backward_args& a) {
    const pad_plan p = pad_geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    for_each_padded(a.src[0]->shape, p, [&](int64_t o, int64_t i) {
        if (i >= 0) diffs[0].data[static_cast<size_t>(i)] += a.diff_dst.data[static_cast<size_t>(o)];
    });
    return diffs;
}

namespace {
struct reduce_plan {
    shape_t kept;  ///< output shape with reduced axes kept as 1
    shape_t out;   ///< the actual output shape (keepdims decides)
    int64_t count = 1;
};
reduce_plan reduce_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    const auto axes = axes_of(n, src, 18);
    const bool keepdims = n.get_int("keepdims", 1) != 0;
    std::vector<int64_t> reduced;
    if (axes && !axes->empty()) {
        reduced = normalized_axes(n, *axes, rank);
    } else if (!(n.opset >= 18 && n.get_int("noop_with_empty_axes", 0) != 0)) {
        for (int64_t i = 0; i < rank; ++i) reduced.push_back(i);
    }
    reduce_plan p;
    p.kept = x.shape;
    for (int64_t a : reduced) {
        p.count *= x.shape[static_cast<size_t>(a)];
        p.kept[static_cast<size_t>(a)] = 1;
    }
    for (int64_t i = 0; i < rank; ++i)
        if (keepdims || !std::binary_search(reduced.begin(), reduced.end(), i))
            p.out.push_back(p.kept[static_cast<size_t>(i)]);
    if (p.count == 0) throw model_error(fmt::format("{}: mean over an empty axis", n.describe()));
    return p;
}
} // namespace

dtensor reduce_mean_fwd(const node& n, const src_list& src) {
    const reduce_plan p = reduce_geometry(n, src);
    const dtensor& x = *src[0];
    dtensor y(p.out);
    const auto idx = broadcast_index(p.kept, x.shape);
    for (size_t i = 0; i < idx.size(); ++i) y.data[static_cast<size_t>(idx[i])] += x.data[i];
    for (double& v : y.data) v /= static_cast<double>(p.count);
    return y;
}

std::vector<dtensor> reduce_mean_bwd(const backward_args& a) {
    const reduce_plan p = reduce_geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    const auto idx = broadcast_index(p.kept, a.src[0]->shape);
    for (size_t i = 0; i < idx.size(); ++i)
        diffs[0].data[i] = a.diff_dst.data[static_cast<size_t>(idx[i])] / static_cast<double>(p.count);
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> shape_ops() {
    return {
        {"Identity", identity_fwd, identity_bwd, nullptr, 1, nullptr},
        {"Dropout", dropout_fwd, identity_bwd, dropout_check, 1, nullptr},
        {"Reshape", reshape_fwd, reshape_like_bwd, nullptr, 1, nullptr},
        {"Flatten", flatten_fwd, reshape_like_bwd, nullptr, 1, nullptr},
        {"Squeeze", squeeze_fwd, reshape_like_bwd, nullptr, 1, nullptr},
        {"Unsqueeze", unsqueeze_fwd, reshape_like_bwd, nullptr, 1, nullptr},
        {"Concat", concat_fwd, concat_bwd, nullptr, all_inputs, nullptr},
        {"Pad", pad_fwd, pad_bwd, pad_check, 1, nullptr},
        {"ReduceMean", reduce_mean_fwd, reduce_mean_bwd, nullptr, 1, nullptr},
    };
}

} // namespace deepinside::verify
