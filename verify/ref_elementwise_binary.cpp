// Add, Sub, Mul, Div with numpy multidirectional broadcasting (and the legacy broadcast/axis
// attributes of opsets before 7). Gradients sum over the axes an operand was broadcast along.
#include "ref_ops.hpp"

#include <fmt/format.h>

namespace deepinside::verify {

namespace {

/// B's shape as broadcasting sees it: before opset 7 B lines up with A starting at `axis`, and
/// without broadcast=1 the shapes must agree.
shape_t aligned_b_shape(const node& n, const dtensor& a, const dtensor& b) {
    if (n.opset >= 7) return b.shape;
    if (n.get_int("broadcast", 0) == 0) {
        if (a.shape != b.shape)
            throw model_error(fmt::format("{}: shapes {} and {} differ and broadcast is not set", n.describe(),
                                          to_string(a.shape), to_string(b.shape)));
        return b.shape;
    }
    if (!n.has("axis")) return b.shape;
    const int64_t rank = static_cast<int64_t>(a.shape.size());
    const int64_t axis = normalize_axis(n, n.get_int("axis", 0), rank);
    if (axis + static_cast<int64_t>(b.shape.size()) > rank)
        throw model_error(fmt::format("{}: B {} does not fit A {} at axis {}", n.describe(), to_string(b.shape),
                                      to_string(a.shape), axis));
    shape_t s = b.shape;
    s.resize(static_cast<size_t>(rank - axis), 1);
    return s;
}

struct binary_plan {
    shape_t out;
    std::vector<int64_t> ia, ib;
};

binary_plan plan(const node& n, const src_list& src) {
    const dtensor& a = input(n, src, 0);
    const dtensor& b = input(n, src, 1);
    const shape_t bs = aligned_b_shape(n, a, b);
    binary_plan p;
    p.out = broadcast_shapes(n, a.shape, bs);
    if (n.opset < 7 && p.out != a.shape)
        throw model_error(fmt::format("{}: legacy broadcasting must not grow A {}", n.describe(), to_string(a.shape)));
    p.ia = broadcast_index(a.shape, p.out);
    p.ib = broadcast_index(bs, p.out);
    return p;
}

template <typename F>
dtensor binary_fwd(const node& n, const src_list& src, F&& f) {
    const binary_plan p = plan(n, src);
    dtensor y(p.out);
    const auto& a = src[0]->data;
    const auto& b = src[1]->data;
    for (size_t i = 0; i < y.data.size(); ++i)
        y.data[i] = f(a[static_cast<size_t>(p.ia[i])], b[static_cast<size_t>(p.ib[i])]);
    return y;
}

/// da(a, b) and db(a, b) are the partial derivatives of the elementwise function.
template <typename DA, typename DB>
std::vector<dtensor> binary_bwd(const backward_args& args, DA&& da, DB&& db) {
    const binary_plan p = plan(args.n, args.src);
    auto diffs = empty_diffs(args);
    const auto& a = args.src[0]->data;
    const auto& b = args.src[1]->data;
    if (args.need[0]) diffs[0] = dtensor(args.src[0]->shape);
    if (args.need[1]) diffs[1] = dtensor(args.src[1]->shape);
    for (size_t i = 0; i < args.diff_dst.data.size(); ++i) {
        const size_t ia = static_cast<size_t>(p.ia[i]), ib = static_cast<size_t>(p.ib[i]);
        const double g = args.diff_dst.data[i];
        if (args.need[0]) diffs[0].data[ia] += g * da(a[ia], b[ib]);
        if (args.need[1]) diffs[1].data[ib] += g * db(a[ia], b[ib]);
    }
    return diffs;
}

} // namespace

void binary_check(const node& n) {
    const int64_t b = n.get_int("broadcast", 0);
    if (b != 0 && b != 1) throw model_error(fmt::format("{}: broadcast must be 0 or 1", n.describe()));
}

dtensor add_fwd(const node& n, const src_list& src) {
    return binary_fwd(n, src, [](double a, double b) { return a + b; });
}
std::vector<dtensor> add_bwd(const backward_args& a) {
    return binary_bwd(a, [](double, double) { return 1.0; }, [](double, double) { return 1.0; });
}

dtensor sub_fwd(const node& n, const src_list& src) {
    return binary_fwd(n, src, [](double a, double b) { return a - b; });
}
std::vector<dtensor> sub_bwd(const backward_args& a) {
    return binary_bwd(a, [](double, double) { return 1.0; }, [](double, double) { return -1.0; });
}

dtensor mul_fwd(const node& n, const src_list& src) {
    return binary_fwd(n, src, [](double a, double b) { return a * b; });
}
std::vector<dtensor> mul_bwd(const backward_args& a) {
    return binary_bwd(a, [](double, double b) { return b; }, [](double a, double) { return a; });
}

dtensor div_fwd(const node& n, const src_list& src) {
    return binary_fwd(n, src, [](double a, double b) { return a / b; });
}
std::vector<dtensor> div_bwd(const backward_args& a) {
    return binary_bwd(a, [](double, double b) { return 1.0 / b; }, [](double a, double b) { return -a / (b * b); });
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> binary_ops() {
    return {
        {"Add", add_fwd, add_bwd, binary_check, all_inputs, nullptr},
        {"Sub", sub_fwd, sub_bwd, binary_check, all_inputs, nullptr},
        {"Mul", mul_fwd, mul_bwd, binary_check, all_inputs, nullptr},
        {"Div", div_fwd, div_bwd, binary_check, all_inputs, nullptr},
    };
}

} // namespace deepinside::verify
