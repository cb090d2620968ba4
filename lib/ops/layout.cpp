// Transpose, Slice, Split, Gather, Expand, Where: ops that move values without arithmetic. Each
// works on plain (C-order) memory; its forward is a host loop that reads the input through a strided
// view (a permutation of the strides, an offset and scaled strides for a slice, a zero stride along a
// broadcast axis) and its backward is the adjoint of that view: a scatter for the injective ones, a
// sum over the broadcast axes for Expand and Where.
//
// Backward runs once per stacked slice: the signal of K stacked requests is K C-order copies of the
// output back to back (the outermost axis scaled by K, engine::scale_batch), and the signal of the
// input is K copies of the input. Treating slice k as one output-shaped block is right whatever the
// op does to axis 0, so Transpose, Slice, Gather and Split along the batch axis need no special case.
#include "ops/op.hpp"
#include "graph/slicing.hpp"

#include <cstring>
#include <numeric>

namespace deepinside::ops {

namespace {

/// Below this many elements a loop runs on one thread: forking costs more than it saves.
constexpr int64_t parallel_threshold = 1 << 15;

/// A strided view of a C-order source: the element of the view at multi-index j (C order over
/// `shape`) is source element offset + sum_d j[d] * stride[d]. Strides may be negative (Slice with
/// a negative step) or zero (an axis broadcast by Expand or Where).
struct strided_view {
    shape_t shape;
    std::vector<int64_t> stride;
    int64_t offset = 0;
};

/// The C-order strides of `shape`.
std::vector<int64_t> c_strides(const shape_t& shape) {
    std::vector<int64_t> s(shape.size(), 1);
    for (size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
    return s;
}

/// Source offset of row `row` of a view (its multi-index over every axis but the last).
int64_t row_offset(const strided_view& v, int64_t row) {
    int64_t o = v.offset;
    for (size_t d = v.shape.size() - 1; d-- > 0;) {
        o += (row % v.shape[d]) * v.stride[d];
        row /= v.shape[d];
    }
    return o;
}

/// dst[i] = src[view(i)] for every element i of the view, dst in C order.
void gather_view(const float* src, float* dst, const strided_view& v) {
    if (v.shape.empty()) {
        dst[0] = src[v.offset];
        return;
    }
    const int64_t inner = v.shape.back(), step = v.stride.back(), rows = element_count(v.shape) / inner;
#pragma omp parallel for if (rows * inner > parallel_threshold)
    for (int64_t r = 0; r < rows; ++r) {
        const float* s = src + row_offset(v, r);
        float* t = dst + r * inner;
        for (int64_t j = 0; j < inner; ++j) t[j] = s[j * step];
    }
}

/// The adjoint of gather_view for an injective view (no zero stride along an axis longer than 1):
/// dst[view(i)] = src[i]. Elements of dst outside the view are left as they are.
void scatter_view(const float* src, float* dst, const strided_view& v) {
    if (v.shape.empty()) {
        dst[v.offset] = src[0];
        return;
    }
    const int64_t inner = v.shape.back(), step = v.stride.back(), rows = element_count(v.shape) / inner;
#pragma omp parallel for if (rows * inner > parallel_threshold)
    for (int64_t r = 0; r < rows; ++r) {
        float* t = dst + row_offset(v, r);
        const float* s = src + r * inner;
        for (int64_t j = 0; j < inner; ++j) t[j * step] = s[j];
    }
}

/// `s` with ones prepended up to `rank` (NumPy's right alignment).
shape_t aligned(const shape_t& s, size_t rank) {
    shape_t out(rank - s.size(), 1);
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

/// The view of a C-order tensor of shape `small` broadcast to `big` (rank >= small's).
strided_view broadcast_view(const shape_t& small, const shape_t& big) {
    const shape_t a = aligned(small, big.size());
    const std::vector<int64_t> s = c_strides(a);
    strided_view v{big, std::vector<int64_t>(big.size(), 0), 0};
    for (size_t d = 0; d < big.size(); ++d) v.stride[d] = a[d] == 1 ? 0 : s[d];
    return v;
}

/// The adjoint of a broadcast from `small` to `big`: dst[e] = the sum of src (shape `big`) over every
/// position e was copied to, counting only positions p with mask[p] == want when `mask` is given.
/// Parallel over dst, so no two threads write one element.
void reduce_broadcast(const float* src, const shape_t& big, float* dst, const shape_t& small, const uint8_t* mask, uint8_t want) {
    const size_t rank = big.size();
    const shape_t a = aligned(small, rank);
    const std::vector<int64_t> bs = c_strides(big);
    std::vector<size_t> spread; // the axes along which `small` was broadcast
    for (size_t d = 0; d < rank; ++d)
        if (a[d] == 1 && big[d] > 1) spread.push_back(d);
    const int64_t count = element_count(small);
    const int64_t per = element_count(big) / std::max<int64_t>(count, 1);
#pragma omp parallel for if (count * per > parallel_threshold)
    for (int64_t e = 0; e < count; ++e) {
        int64_t base = 0, rest = e;
        for (size_t d = rank; d-- > 0;) {
            base += (rest % a[d]) * bs[d];
            rest /= a[d];
        }
        std::vector<int64_t> pos(spread.size(), 0);
        double sum = 0; // double: a broadcast over thousands of positions (a mask over T x T) sums as many terms
        int64_t at = base;
        for (int64_t k = 0; k < per; ++k) {
            if (!mask || mask[at] == want) sum += src[at];
            for (size_t q = spread.size(); q-- > 0;) {
                const size_t d = spread[q];
                if (++pos[q] < big[d]) {
                    at += bs[d];
                    break;
                }
                at -= bs[d] * (big[d] - 1);
                pos[q] = 0;
            }
        }
        dst[e] = static_cast<float>(sum);
    }
}

int64_t normalised_axis(const node& n, int64_t axis, size_t rank) {
    const int64_t r = static_cast<int64_t>(rank);
    if (axis < -r || axis >= r) throw model_error(fmt::format("{}: axis {} is out of range for rank {}", n.describe(), axis, rank));
    return axis < 0 ? axis + r : axis;
}

std::vector<int64_t> int_input(engine::forward_builder& fb, const node& n, size_t i, const char* role) {
    const constant& c = fb.constant_input(i, role);
    if (!c.is_int) throw model_error(fmt::format("{}: {} must be integers", n.describe(), role));
    return c.ints;
}

/// The activation input's signal, stacked, in C order; and the memory for its own contribution.
struct stacked_pair {
    dnnl::memory dy, dx;
    int64_t y_count, x_count;
};

/// Base of the ops whose forward reads one activation through strided views into one or more outputs
/// and whose backward scatters each output's signal back (Transpose, Slice, Split): the views must
/// be injective. `covers` says whether the views together reach every input element (else the
/// input's signal is zeroed first).
class view_op : public op {
public:
    using op::op;

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const shape_t& x = bb.forward_value(in).shape;
        const int64_t stack = bb.stack(), x_count = element_count(x);
        dnnl::memory dx = bb.allocate(engine::scale_batch(engine::plain_desc(x), stack));
        std::vector<std::pair<dnnl::memory, size_t>> signals; // (stacked signal, view index)
        for (size_t o = 0; o < views_.size(); ++o) {
            const std::string& out = node_.outputs[o];
            // An output no consumer on the path reads (a Split part the target does not depend on)
            // sends back nothing: its signal is zero.
            if (out.empty() || !bb.wants_diff(out)) continue;
            signals.emplace_back(bb.diff_as(out, engine::scale_batch(engine::plain_desc(views_[o].shape), stack)), o);
        }
        const bool zero = !covers_ || signals.size() != views_.size();
        const auto views = views_;
        bb.add_host([=]() {
            auto* d = static_cast<float*>(dx.get_data_handle());
            if (zero) std::memset(d, 0, static_cast<size_t>(stack * x_count) * sizeof(float));
            for (const auto& [g, o] : signals) {
                const auto* s = static_cast<const float*>(g.get_data_handle());
                const int64_t y_count = element_count(views[o].shape);
                for (int64_t k = 0; k < stack; ++k) scatter_view(s + k * y_count, d + k * x_count, views[o]);
            }
        });
        bb.contribute(in, dx);
    }

protected:
    /// Defines output o as the view `v` of input 0 (plain), read by a host step.
    void define_view_output(engine::forward_builder& fb, size_t o, strided_view v) {
        if (element_count(v.shape) == 0) refuse(fmt::format("output {} would be empty ({}); empty tensors are not supported", o, to_string(v.shape)));
        dnnl::memory src = fb.input_plain(0);
        dnnl::memory dst = fb.allocate(engine::plain_desc(v.shape));
        views_.resize(std::max(views_.size(), o + 1));
        views_[o] = v;
        fb.add_host([src, dst, v]() {
            gather_view(static_cast<const float*>(src.get_data_handle()), static_cast<float*>(dst.get_data_handle()), v);
        });
        fb.define_output(o, v.shape, dst);
    }

    std::vector<strided_view> views_; ///< one per output
    bool covers_ = false;
};

/// Transpose: output axis d is input axis perm[d].
class transpose_op final : public view_op {
public:
    using view_op::view_op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const size_t rank = x.size();
        std::vector<int64_t> perm(rank);
        for (size_t d = 0; d < rank; ++d) perm[d] = static_cast<int64_t>(rank - 1 - d); // the default reverses the axes
        if (node_.has("perm")) perm = node_.get_ints("perm", {});
        if (perm.size() != rank)
            throw model_error(fmt::format("{}: perm [{}] has {} entries for an input of rank {}", node_.describe(), fmt::join(perm, ","),
                                          perm.size(), rank));
        std::vector<bool> seen(rank, false);
        const std::vector<int64_t> xs = c_strides(x);
        strided_view v{shape_t(rank), std::vector<int64_t>(rank), 0};
        for (size_t d = 0; d < rank; ++d) {
            const int64_t a = normalised_axis(node_, perm[d], rank);
            if (seen[static_cast<size_t>(a)])
                throw model_error(fmt::format("{}: perm [{}] is not a permutation", node_.describe(), fmt::join(perm, ",")));
            seen[static_cast<size_t>(a)] = true;
            v.shape[d] = x[static_cast<size_t>(a)];
            v.stride[d] = xs[static_cast<size_t>(a)];
        }
        covers_ = true;
        define_view_output(fb, 0, v);
    }
};

/// Slice: opset 1 from attributes, opset 10+ from constant inputs; negative indices count from the
/// end, out-of-range ones are clamped, negative steps walk backwards (ONNX's rules, Slice-13).
class slice_op final : public view_op {
public:
    using view_op::view_op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const size_t rank = x.size();
        std::vector<int64_t> starts, ends, axes, steps;
        if (node_.opset < 10) {
            starts = node_.get_ints("starts", {});
            ends = node_.get_ints("ends", {});
            axes = node_.get_ints("axes", {});
        } else {
            starts = int_input(fb, node_, 1, "starts");
            ends = int_input(fb, node_, 2, "ends");
            if (fb.has_input(3)) axes = int_input(fb, node_, 3, "axes");
            if (fb.has_input(4)) steps = int_input(fb, node_, 4, "steps");
        }
        const passes::slice_extent ext = passes::resolve_slice(node_, x, starts, ends, axes, steps);
        const std::vector<int64_t> xs = c_strides(x);
        strided_view v{ext.shape, xs, 0};
        for (size_t a = 0; a < rank; ++a) {
            v.stride[a] = xs[a] * ext.step[a];
            v.offset += ext.start[a] * xs[a];
        }
        covers_ = v.shape == x && std::all_of(ext.step.begin(), ext.step.end(), [](int64_t s) { return s == 1; });
        define_view_output(fb, 0, v);
    }
};

/// Split: the parts along `axis` from the `split` attribute (opsets 2-12) or input (13+), from
/// num_outputs (18+), or equal parts, one per output.
class split_op final : public view_op {
public:
    using view_op::view_op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const size_t axis = static_cast<size_t>(normalised_axis(node_, node_.get_int("axis", 0), x.size()));
        const int64_t dim = x[axis];
        const int64_t outputs = static_cast<int64_t>(node_.outputs.size());
        std::vector<int64_t> split;
        if (node_.opset < 13) split = node_.get_ints("split", {});
        else if (fb.has_input(1)) split = int_input(fb, node_, 1, "split");
        if (split.empty()) {
            if (node_.opset >= 18 && node_.has("num_outputs")) {
                const int64_t parts = node_.get_int("num_outputs", 0);
                if (parts != outputs)
                    throw model_error(fmt::format("{}: num_outputs is {} but the node has {} outputs", node_.describe(), parts, outputs));
                // Parts of ceil(dim / parts); the last one takes what is left.
                const int64_t chunk = (dim + parts - 1) / parts;
                for (int64_t p = 0, left = dim; p < parts; ++p, left -= chunk) split.push_back(std::max<int64_t>(0, std::min(chunk, left)));
            } else {
                if (dim % outputs != 0)
                    throw model_error(fmt::format("{}: axis {} of size {} does not split into {} equal parts", node_.describe(), axis, dim, outputs));
                split.assign(static_cast<size_t>(outputs), dim / outputs);
            }
        }
        if (static_cast<int64_t>(split.size()) != outputs)
            throw model_error(fmt::format("{}: split [{}] lists {} parts for {} outputs", node_.describe(), fmt::join(split, ","), split.size(), outputs));
        if (std::any_of(split.begin(), split.end(), [](int64_t s) { return s < 0; }) ||
            std::accumulate(split.begin(), split.end(), int64_t(0)) != dim)
            throw model_error(fmt::format("{}: split [{}] does not add up to axis {} of size {}", node_.describe(), fmt::join(split, ","), axis, dim));
        const std::vector<int64_t> xs = c_strides(x);
        int64_t begin = 0;
        for (size_t o = 0; o < split.size(); ++o) {
            strided_view v{x, xs, begin * xs[axis]};
            v.shape[axis] = split[o];
            begin += split[o];
            if (node_.outputs[o].empty()) continue;
            define_view_output(fb, o, v);
        }
        views_.resize(split.size());
        covers_ = std::none_of(node_.outputs.begin(), node_.outputs.end(), [](const std::string& s) { return s.empty(); });
    }
};

/// Gather of an activation along `axis` at constant indices (any shape; a scalar drops the axis).
class gather_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        if (fb.is_constant(node_.inputs.at(0))) refuse("gathering from a constant at indices computed from the input is not supported");
        const shape_t& x = fb.input(0).shape;
        if (!fb.is_constant(node_.inputs.at(1))) refuse("indices computed from the input are not supported (they must be constants)");
        const constant& c = fb.constant_input(1, "indices");
        if (!c.is_int) throw model_error(fmt::format("{}: indices must be integers", node_.describe()));
        const size_t axis = static_cast<size_t>(normalised_axis(node_, node_.get_int("axis", 0), x.size()));
        const int64_t dim = x[axis];
        indices_ = c.ints;
        for (int64_t& i : indices_) {
            if (i < -dim || i >= dim)
                throw model_error(fmt::format("{}: index {} is out of range for axis {} of size {}", node_.describe(), i, axis, dim));
            if (i < 0) i += dim;
        }
        shape_t y(x.begin(), x.begin() + static_cast<long>(axis));
        y.insert(y.end(), c.shape.begin(), c.shape.end());
        y.insert(y.end(), x.begin() + static_cast<long>(axis) + 1, x.end());
        if (element_count(y) == 0) refuse(fmt::format("the output {} would be empty; empty tensors are not supported", to_string(y)));
        outer_ = 1;
        inner_ = 1;
        for (size_t d = 0; d < axis; ++d) outer_ *= x[d];
        for (size_t d = axis + 1; d < x.size(); ++d) inner_ *= x[d];
        dim_ = dim;
        dnnl::memory src = fb.input_plain(0);
        dnnl::memory dst = fb.allocate(engine::plain_desc(y));
        const int64_t outer = outer_, inner = inner_, q = static_cast<int64_t>(indices_.size());
        const auto idx = indices_;
        fb.add_host([=]() {
            const auto* s = static_cast<const float*>(src.get_data_handle());
            auto* d = static_cast<float*>(dst.get_data_handle());
#pragma omp parallel for if (outer * q * inner > parallel_threshold)
            for (int64_t r = 0; r < outer * q; ++r)
                std::memcpy(d + r * inner, s + ((r / q) * dim + idx[static_cast<size_t>(r % q)]) * inner, static_cast<size_t>(inner) * sizeof(float));
        });
        fb.define_output(0, y, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const shape_t& x = bb.forward_value(in).shape;
        const shape_t& y = bb.forward_value(node_.outputs[0]).shape;
        const int64_t stack = bb.stack();
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y), stack));
        dnnl::memory dx = bb.allocate(engine::scale_batch(engine::plain_desc(x), stack));
        // Per stacked slice the outer rows are stack * outer: the slices lie back to back.
        const int64_t outer = outer_ * stack, inner = inner_, dim = dim_, q = static_cast<int64_t>(indices_.size());
        const auto idx = indices_;
        bb.add_host([=]() {
            const auto* s = static_cast<const float*>(g.get_data_handle());
            auto* d = static_cast<float*>(dx.get_data_handle());
            std::memset(d, 0, static_cast<size_t>(outer * dim * inner) * sizeof(float));
            // Repeated indices add up; rows of different outer index never meet, so threads split those.
#pragma omp parallel for if (outer > 1 && outer * q * inner > parallel_threshold)
            for (int64_t o = 0; o < outer; ++o)
                for (int64_t k = 0; k < q; ++k) {
                    const float* from = s + (o * q + k) * inner;
                    float* to = d + (o * dim + idx[static_cast<size_t>(k)]) * inner;
                    for (int64_t j = 0; j < inner; ++j) to[j] += from[j];
                }
        });
        bb.contribute(in, dx);
    }

private:
    std::vector<int64_t> indices_;
    int64_t outer_ = 1, inner_ = 1, dim_ = 1;
};

/// Multidirectional (NumPy) broadcast of shapes; model_error naming the node when they do not fit.
shape_t broadcast(const node& n, const std::vector<shape_t>& shapes) {
    size_t rank = 0;
    for (const auto& s : shapes) rank = std::max(rank, s.size());
    shape_t out(rank, 1);
    for (const auto& s : shapes) {
        const shape_t a = aligned(s, rank);
        for (size_t d = 0; d < rank; ++d) {
            if (a[d] == out[d] || a[d] == 1) continue;
            if (out[d] != 1) {
                std::string all;
                for (const auto& t : shapes) all += (all.empty() ? "" : ", ") + to_string(t);
                throw model_error(fmt::format("{}: shapes {} do not broadcast", n.describe(), all));
            }
            out[d] = a[d];
        }
    }
    return out;
}

/// Expand of an activation to a constant shape; backward sums over the broadcast axes.
class expand_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const shape_t target = int_input(fb, node_, 1, "shape");
        if (std::any_of(target.begin(), target.end(), [](int64_t d) { return d < 0; }))
            throw model_error(fmt::format("{}: negative size in the shape {}", node_.describe(), to_string(target)));
        const shape_t y = broadcast(node_, {x, target});
        if (element_count(y) == 0) refuse(fmt::format("the output {} would be empty; empty tensors are not supported", to_string(y)));
        const strided_view v = broadcast_view(x, y);
        dnnl::memory src = fb.input_plain(0);
        dnnl::memory dst = fb.allocate(engine::plain_desc(y));
        fb.add_host([src, dst, v]() {
            gather_view(static_cast<const float*>(src.get_data_handle()), static_cast<float*>(dst.get_data_handle()), v);
        });
        fb.define_output(0, y, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const shape_t x = bb.forward_value(in).shape;
        const shape_t y = bb.forward_value(node_.outputs[0]).shape;
        const int64_t stack = bb.stack(), xc = element_count(x), yc = element_count(y);
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y), stack));
        dnnl::memory dx = bb.allocate(engine::scale_batch(engine::plain_desc(x), stack));
        bb.add_host([=]() {
            const auto* s = static_cast<const float*>(g.get_data_handle());
            auto* d = static_cast<float*>(dx.get_data_handle());
            for (int64_t k = 0; k < stack; ++k) reduce_broadcast(s + k * yc, y, d + k * xc, x, nullptr, 0);
        });
        bb.contribute(in, dx);
    }
};

/// Where with a constant condition; X and Y activations or constants, all three broadcast (the
/// attention-mask form: Where(mask, scores, -inf)).
class where_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        if (!fb.is_constant(node_.inputs.at(0))) refuse("a condition computed from the input is not supported (it must be a constant)");
        const constant& cond = fb.constant_input(0, "condition");
        const shape_t y = broadcast(node_, {cond.shape, fb.input_shape(1), fb.input_shape(2)});
        if (element_count(y) == 0) refuse(fmt::format("the output {} would be empty; empty tensors are not supported", to_string(y)));
        y_ = y;
        const int64_t count = element_count(y);
        // The condition spelled out over the output, once.
        {
            std::vector<float> c(cond.is_int ? cond.ints.size() : cond.floats.size());
            for (size_t i = 0; i < c.size(); ++i) c[i] = (cond.is_int ? cond.ints[i] != 0 : cond.floats[i] != 0.0f) ? 1.0f : 0.0f;
            std::vector<float> full(static_cast<size_t>(count));
            gather_view(c.data(), full.data(), broadcast_view(cond.shape, y));
            mask_ = std::make_shared<std::vector<uint8_t>>(full.size());
            for (size_t i = 0; i < full.size(); ++i) (*mask_)[i] = full[i] != 0.0f;
        }
        // Each branch as memory spanning the output: a constant spelled out once; an activation read
        // in place when it spans the output, else spelled out by a host step before the selection.
        dnnl::memory branch[2];
        for (size_t b = 0; b < 2; ++b) {
            const size_t i = b + 1;
            shapes_[b] = fb.input_shape(i);
            if (fb.is_constant(node_.inputs[i])) {
                const constant& c = fb.constant_input(i, b == 0 ? "X" : "Y");
                if (c.is_int) refuse(fmt::format("input {} is an integer constant; only float tensors are supported", i));
                std::vector<float> full(static_cast<size_t>(count));
                gather_view(c.floats.data(), full.data(), broadcast_view(c.shape, y));
                branch[b] = fb.constant_memory(full, y);
                continue;
            }
            dnnl::memory src = fb.input_plain(i);
            if (aligned(shapes_[b], y.size()) == y) {
                branch[b] = src;
                continue;
            }
            dnnl::memory spread = fb.allocate(engine::plain_desc(y));
            const strided_view v = broadcast_view(shapes_[b], y);
            fb.add_host([src, spread, v]() {
                gather_view(static_cast<const float*>(src.get_data_handle()), static_cast<float*>(spread.get_data_handle()), v);
            });
            branch[b] = spread;
        }
        dnnl::memory dst = fb.allocate(engine::plain_desc(y));
        const auto mask = mask_;
        const dnnl::memory bx = branch[0], by = branch[1];
        fb.add_host([=]() {
            const auto* a = static_cast<const float*>(bx.get_data_handle());
            const auto* b = static_cast<const float*>(by.get_data_handle());
            auto* d = static_cast<float*>(dst.get_data_handle());
            const uint8_t* m = mask->data();
#pragma omp parallel for if (count > parallel_threshold)
            for (int64_t e = 0; e < count; ++e) d[e] = m[e] ? a[e] : b[e];
        });
        fb.define_output(0, y, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const int64_t stack = bb.stack(), yc = element_count(y_);
        dnnl::memory g;
        for (size_t b = 0; b < 2; ++b) {
            const std::string& in = node_.inputs[b + 1];
            if (!bb.wants_diff(in)) continue;
            if (!g) g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y_), stack));
            const shape_t x = shapes_[b], y = y_;
            const int64_t xc = element_count(x);
            dnnl::memory dx = bb.allocate(engine::scale_batch(engine::plain_desc(x), stack));
            const auto mask = mask_;
            const uint8_t want = b == 0 ? 1 : 0; // X where the condition holds, Y elsewhere
            bb.add_host([=]() {
                const auto* s = static_cast<const float*>(g.get_data_handle());
                auto* d = static_cast<float*>(dx.get_data_handle());
                for (int64_t k = 0; k < stack; ++k) reduce_broadcast(s + k * yc, y, d + k * xc, x, mask->data(), want);
            });
            bb.contribute(in, dx);
        }
    }

private:
    shape_t y_, shapes_[2];
    std::shared_ptr<std::vector<uint8_t>> mask_; ///< 1 where the condition holds, over the output; shared with the host steps
};

} // namespace

std::unique_ptr<op> make_transpose(const node& n) { return std::make_unique<transpose_op>(n); }
std::unique_ptr<op> make_slice(const node& n) { return std::make_unique<slice_op>(n); }
std::unique_ptr<op> make_split(const node& n) { return std::make_unique<split_op>(n); }
std::unique_ptr<op> make_gather(const node& n) { return std::make_unique<gather_op>(n); }
std::unique_ptr<op> make_expand(const node& n) { return std::make_unique<expand_op>(n); }
std::unique_ptr<op> make_where(const node& n) { return std::make_unique<where_op>(n); }

} // namespace deepinside::ops
