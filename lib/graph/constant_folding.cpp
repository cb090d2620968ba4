#include "graph/constant_folding.hpp"
#include "graph/slicing.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace deepinside::passes {

namespace {

// Every op type the folder evaluates. The first group is arithmetic the engine also runs on
// activations (folded only when all inputs are constants); the second exists only as shape and
// mask arithmetic.
const char* const engine_also[] = {"Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Concat", "Gather", "Reshape", "Flatten",
                                   "Squeeze", "Unsqueeze", "Slice", "Expand", "Transpose", "Where", "Identity", "Dropout",
                                   "Split", "Neg"};
const char* const constant_only[] = {"Shape", "Size", "Cast", "CastLike", "Range", "ConstantOfShape", "Equal", "Less",
                                     "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "Mod",
                                     "ScatterND", "Abs", "Floor", "Ceil", "Min", "Max", "Tile", "ReduceProd",
                                     "ReduceSum", "NonZero"};

bool in(const char* const* first, const char* const* last, const std::string& t) {
    return std::any_of(first, last, [&](const char* s) { return t == s; });
}

[[noreturn]] void bad(const node& n, const std::string& why) { throw model_error(fmt::format("{}: {}", n.describe(), why)); }

int64_t count_of(const node& n, const shape_t& s) {
    int64_t c = 1;
    for (int64_t d : s) {
        if (d < 0) bad(n, fmt::format("negative dimension in shape {}", to_string(s)));
        // Folded values are shapes and masks: anything near this size is a malformed model.
        if (d != 0 && c > (int64_t(1) << 31) / d) bad(n, fmt::format("the folded value of shape {} is too large", to_string(s)));
        c *= d;
    }
    return c;
}

double at(const constant& c, int64_t i) {
    return c.is_int ? static_cast<double>(c.ints[static_cast<size_t>(i)]) : static_cast<double>(c.floats[static_cast<size_t>(i)]);
}

/// The values of `c` at flat indices `idx`, of shape `shape`, same element type.
constant pick(const constant& c, const std::vector<int64_t>& idx, shape_t shape) {
    constant out;
    out.shape = std::move(shape);
    out.is_int = c.is_int;
    if (c.is_int) {
        out.ints.reserve(idx.size());
        for (int64_t i : idx) out.ints.push_back(c.ints[static_cast<size_t>(i)]);
    } else {
        out.floats.reserve(idx.size());
        for (int64_t i : idx) out.floats.push_back(c.floats[static_cast<size_t>(i)]);
    }
    return out;
}

constant ints(shape_t shape, std::vector<int64_t> v) {
    constant c;
    c.shape = std::move(shape);
    c.is_int = true;
    c.ints = std::move(v);
    return c;
}

std::vector<int64_t> strides(const shape_t& s) {
    std::vector<int64_t> st(s.size(), 1);
    for (size_t d = s.size(); d-- > 1;) st[d - 1] = st[d] * s[d];
    return st;
}

/// Calls f(flat index, multi-index) for every element of `shape`, in C order.
template <typename F>
void for_each_index(const shape_t& shape, F&& f) {
    const int64_t total = element_count(shape);
    std::vector<int64_t> idx(shape.size(), 0);
    for (int64_t i = 0; i < total; ++i) {
        f(i, idx);
        for (size_t d = shape.size(); d-- > 0;) {
            if (++idx[d] < shape[d]) break;
            idx[d] = 0;
        }
    }
}

int64_t axis_of(const node& n, int64_t axis, size_t rank, bool inclusive = false) {
    const auto r = static_cast<int64_t>(rank) + (inclusive ? 1 : 0);
    if (axis < -r || axis >= r) bad(n, fmt::format("axis {} is out of range for rank {}", axis, rank));
    return axis < 0 ? axis + r : axis;
}

std::vector<int64_t> int_values(const node& n, const constant& c, const char* what) {
    if (c.is_int) return c.ints;
    std::vector<int64_t> v;
    for (float f : c.floats) {
        if (f != std::floor(f)) bad(n, fmt::format("{} must be integers; it holds {}", what, f));
        v.push_back(static_cast<int64_t>(f));
    }
    return v;
}

shape_t broadcast(const node& n, const std::vector<const shape_t*>& shapes) {
    size_t rank = 0;
    for (auto* s : shapes) rank = std::max(rank, s->size());
    shape_t out(rank, 1);
    for (auto* s : shapes)
        for (size_t k = 0; k < s->size(); ++k) {
            int64_t& o = out[rank - s->size() + k];
            const int64_t d = (*s)[k];
            if (d == o || d == 1) continue;
            if (o != 1) bad(n, fmt::format("shapes do not broadcast (axis {} is {} and {})", rank - s->size() + k, o, d));
            o = d;
        }
    return out;
}

/// Flat index into a tensor of shape `src` broadcast to `dst`, for each element of `dst`.
std::vector<int64_t> broadcast_index(const shape_t& src, const shape_t& dst) {
    const shape_t s = [&] {
        shape_t a(dst.size() - src.size(), 1);
        a.insert(a.end(), src.begin(), src.end());
        return a;
    }();
    const auto st = strides(s);
    std::vector<int64_t> out(static_cast<size_t>(element_count(dst)));
    for_each_index(dst, [&](int64_t i, const std::vector<int64_t>& idx) {
        int64_t f = 0;
        for (size_t d = 0; d < dst.size(); ++d) f += s[d] == 1 ? 0 : idx[d] * st[d];
        out[static_cast<size_t>(i)] = f;
    });
    return out;
}

/// The element type of an arithmetic result: integer only when every operand is.
template <typename IntOp, typename FloatOp>
constant elementwise(const node& n, const std::vector<const constant*>& args, IntOp int_op, FloatOp float_op, bool to_bool = false) {
    std::vector<const shape_t*> shapes;
    for (auto* a : args) shapes.push_back(&a->shape);
    const shape_t out_shape = broadcast(n, shapes);
    count_of(n, out_shape);
    std::vector<std::vector<int64_t>> idx;
    for (auto* a : args) idx.push_back(broadcast_index(a->shape, out_shape));
    const bool all_int = std::all_of(args.begin(), args.end(), [](const constant* a) { return a->is_int; });
    constant out;
    out.shape = out_shape;
    out.is_int = all_int || to_bool;
    const auto total = static_cast<size_t>(element_count(out_shape));
    std::vector<double> v(args.size());
    std::vector<int64_t> iv(args.size());
    for (size_t i = 0; i < total; ++i) {
        if (all_int) {
            for (size_t k = 0; k < args.size(); ++k) iv[k] = args[k]->ints[static_cast<size_t>(idx[k][i])];
            out.ints.push_back(int_op(iv));
        } else {
            for (size_t k = 0; k < args.size(); ++k) v[k] = at(*args[k], idx[k][i]);
            const double r = float_op(v);
            if (to_bool) out.ints.push_back(r != 0.0 ? 1 : 0);
            else out.floats.push_back(static_cast<float>(r));
        }
    }
    return out;
}

std::vector<int64_t> axes_input_or_attr(const node& n, const std::vector<const constant*>& in, size_t input, int64_t from_opset) {
    if (n.opset >= from_opset) return input < in.size() && in[input] ? int_values(n, *in[input], "axes") : std::vector<int64_t>{};
    return n.get_ints("axes", {});
}

constant transpose(const node& n, const constant& x) {
    const size_t r = x.shape.size();
    std::vector<int64_t> perm = n.get_ints("perm", {});
    if (perm.empty())
        for (size_t d = r; d-- > 0;) perm.push_back(static_cast<int64_t>(d));
    if (perm.size() != r) bad(n, fmt::format("perm has {} entries for rank {}", perm.size(), r));
    std::vector<bool> seen(r, false);
    shape_t out(r);
    for (size_t d = 0; d < r; ++d) {
        if (perm[d] < 0 || perm[d] >= static_cast<int64_t>(r) || seen[static_cast<size_t>(perm[d])])
            bad(n, fmt::format("perm {} is not a permutation of 0..{}", fmt::join(perm, ","), r - 1));
        seen[static_cast<size_t>(perm[d])] = true;
        out[d] = x.shape[static_cast<size_t>(perm[d])];
    }
    const auto st = strides(x.shape);
    std::vector<int64_t> idx;
    for_each_index(out, [&](int64_t, const std::vector<int64_t>& o) {
        int64_t f = 0;
        for (size_t d = 0; d < r; ++d) f += o[d] * st[static_cast<size_t>(perm[d])];
        idx.push_back(f);
    });
    return pick(x, idx, out);
}

constant slice(const node& n, const std::vector<const constant*>& in) {
    const constant& x = *in.at(0);
    const size_t r = x.shape.size();
    std::vector<int64_t> starts, ends, axes, steps;
    if (n.opset < 10) {
        starts = n.get_ints("starts", {});
        ends = n.get_ints("ends", {});
        axes = n.get_ints("axes", {});
    } else {
        starts = int_values(n, *in.at(1), "starts");
        ends = int_values(n, *in.at(2), "ends");
        if (in.size() > 3 && in[3]) axes = int_values(n, *in[3], "axes");
        if (in.size() > 4 && in[4]) steps = int_values(n, *in[4], "steps");
    }
    const slice_extent ext = resolve_slice(n, x.shape, starts, ends, axes, steps);
    const std::vector<int64_t>&first = ext.start, &step = ext.step;
    const shape_t& out = ext.shape;
    const auto st = strides(x.shape);
    std::vector<int64_t> idx;
    for_each_index(out, [&](int64_t, const std::vector<int64_t>& o) {
        int64_t f = 0;
        for (size_t d = 0; d < r; ++d) f += (first[d] + o[d] * step[d]) * st[d];
        idx.push_back(f);
    });
    return pick(x, idx, out);
}

constant gather(const node& n, const constant& x, const constant& indices) {
    const size_t r = x.shape.size();
    if (r == 0) bad(n, "Gather of a scalar");
    const auto a = static_cast<size_t>(axis_of(n, n.get_int("axis", 0), r));
    const std::vector<int64_t> ind = int_values(n, indices, "indices");
    shape_t out(x.shape.begin(), x.shape.begin() + static_cast<long>(a));
    out.insert(out.end(), indices.shape.begin(), indices.shape.end());
    out.insert(out.end(), x.shape.begin() + static_cast<long>(a) + 1, x.shape.end());
    count_of(n, out);
    int64_t outer = 1, inner = 1;
    for (size_t d = 0; d < a; ++d) outer *= x.shape[d];
    for (size_t d = a + 1; d < r; ++d) inner *= x.shape[d];
    const int64_t dim = x.shape[a];
    std::vector<int64_t> idx;
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t k : ind) {
            const int64_t j = k < 0 ? k + dim : k;
            if (j < 0 || j >= dim) bad(n, fmt::format("index {} is out of range for axis {} of size {}", k, a, dim));
            for (int64_t i = 0; i < inner; ++i) idx.push_back((o * dim + j) * inner + i);
        }
    return pick(x, idx, out);
}

constant concat(const node& n, const std::vector<const constant*>& in) {
    if (in.empty() || !in[0]) bad(n, "no inputs");
    const size_t r = in[0]->shape.size();
    const auto a = static_cast<size_t>(axis_of(n, n.get_int("axis", 0), r));
    shape_t out = in[0]->shape;
    out[a] = 0;
    bool any_float = false;
    for (auto* c : in) {
        if (!c || c->shape.size() != r) bad(n, "inputs of different rank");
        for (size_t d = 0; d < r; ++d)
            if (d != a && c->shape[d] != out[d]) bad(n, "inputs differ off the concatenation axis");
        out[a] += c->shape[a];
        any_float = any_float || !c->is_int;
    }
    int64_t outer = 1;
    for (size_t d = 0; d < a; ++d) outer *= out[d];
    constant res;
    res.shape = out;
    res.is_int = !any_float;
    for (int64_t o = 0; o < outer; ++o)
        for (auto* c : in) {
            const int64_t block = element_count(c->shape) / std::max<int64_t>(outer, 1);
            for (int64_t i = 0; i < block; ++i) {
                const int64_t f = o * block + i;
                if (res.is_int) res.ints.push_back(c->ints[static_cast<size_t>(f)]);
                else res.floats.push_back(static_cast<float>(at(*c, f)));
            }
        }
    return res;
}

shape_t reshape_target(const node& n, const shape_t& x, const std::vector<int64_t>& spec) {
    const bool allow_zero = n.get_int("allowzero", 0) != 0;
    shape_t y = spec;
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < y.size(); ++i) {
        if (y[i] == 0 && !allow_zero) {
            if (i >= x.size()) bad(n, fmt::format("shape copies axis {} of a rank-{} input", i, x.size()));
            y[i] = x[i];
        }
        if (y[i] == -1) {
            if (infer >= 0) bad(n, "more than one -1 in the shape");
            infer = static_cast<int64_t>(i);
        } else if (y[i] < 0) {
            bad(n, fmt::format("negative size {} in the shape", y[i]));
        } else {
            known *= y[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || element_count(x) % known != 0) bad(n, fmt::format("cannot reshape {} into {}", to_string(x), to_string(spec)));
        y[static_cast<size_t>(infer)] = element_count(x) / known;
    }
    if (element_count(y) != element_count(x)) bad(n, fmt::format("cannot reshape {} into {}", to_string(x), to_string(y)));
    return y;
}

constant with_shape(constant c, shape_t s) {
    c.shape = std::move(s);
    return c;
}

constant reduce(const node& n, const std::vector<const constant*>& in, bool product) {
    const constant& x = *in.at(0);
    const size_t r = x.shape.size();
    std::vector<int64_t> axes = (n.op_type == "ReduceSum" && n.opset >= 13) || n.opset >= 18
                                    ? (in.size() > 1 && in[1] ? int_values(n, *in[1], "axes") : std::vector<int64_t>{})
                                    : n.get_ints("axes", {});
    const bool keep = n.get_int("keepdims", 1) != 0;
    if (axes.empty() && n.get_int("noop_with_empty_axes", 0) != 0) return x;
    std::vector<bool> reduced(r, axes.empty());
    for (int64_t a : axes) reduced[static_cast<size_t>(axis_of(n, a, r))] = true;
    shape_t kept_shape;
    for (size_t d = 0; d < r; ++d) kept_shape.push_back(reduced[d] ? 1 : x.shape[d]);
    const auto st = strides(kept_shape);
    std::vector<double> acc(static_cast<size_t>(element_count(kept_shape)), product ? 1.0 : 0.0);
    std::vector<int64_t> iacc(acc.size(), product ? 1 : 0);
    for_each_index(x.shape, [&](int64_t i, const std::vector<int64_t>& idx) {
        int64_t f = 0;
        for (size_t d = 0; d < r; ++d) f += reduced[d] ? 0 : idx[d] * st[d];
        const auto k = static_cast<size_t>(f);
        if (x.is_int) iacc[k] = product ? iacc[k] * x.ints[static_cast<size_t>(i)] : iacc[k] + x.ints[static_cast<size_t>(i)];
        else acc[k] = product ? acc[k] * x.floats[static_cast<size_t>(i)] : acc[k] + x.floats[static_cast<size_t>(i)];
    });
    shape_t out;
    for (size_t d = 0; d < r; ++d)
        if (!reduced[d] || keep) out.push_back(kept_shape[d]);
    constant c;
    c.shape = out;
    c.is_int = x.is_int;
    if (x.is_int) c.ints = iacc;
    else c.floats.assign(acc.begin(), acc.end());
    return c;
}

constant scatter_nd(const node& n, const constant& data, const constant& indices, const constant& updates) {
    if (n.get_string("reduction", "none") != "none") throw unsupported_error(fmt::format("{}: only reduction 'none' is folded", n.describe()));
    const std::vector<int64_t> ind = int_values(n, indices, "indices");
    if (indices.shape.empty()) bad(n, "indices must have rank 1 or more");
    const auto k = static_cast<size_t>(indices.shape.back());
    if (k > data.shape.size()) bad(n, "indices address more axes than the data has");
    const auto st = strides(data.shape);
    int64_t slice = 1;
    for (size_t d = k; d < data.shape.size(); ++d) slice *= data.shape[d];
    const int64_t rows = k == 0 ? 0 : static_cast<int64_t>(ind.size() / k);
    if (element_count(updates.shape) != rows * slice) bad(n, "updates do not match the indices and data shapes");
    constant out = data;
    if (!out.is_int && updates.is_int) bad(n, "updates and data differ in element type");
    for (int64_t row = 0; row < rows; ++row) {
        int64_t f = 0;
        for (size_t d = 0; d < k; ++d) {
            int64_t j = ind[static_cast<size_t>(row) * k + d];
            if (j < 0) j += data.shape[d];
            if (j < 0 || j >= data.shape[d]) bad(n, fmt::format("index {} is out of range for axis {}", j, d));
            f += j * st[d];
        }
        for (int64_t i = 0; i < slice; ++i) {
            if (out.is_int) out.ints[static_cast<size_t>(f + i)] = static_cast<int64_t>(at(updates, row * slice + i));
            else out.floats[static_cast<size_t>(f + i)] = static_cast<float>(at(updates, row * slice + i));
        }
    }
    return out;
}

constant cast(const node& n, const constant& x, int64_t to) {
    // ONNX TensorProto element types: FLOAT 1, FLOAT16 10, DOUBLE 11, BFLOAT16 16; BOOL 9; the rest integers.
    const bool to_float = to == 1 || to == 10 || to == 11 || to == 16;
    constant c;
    c.shape = x.shape;
    c.is_int = !to_float;
    const int64_t total = element_count(x.shape);
    for (int64_t i = 0; i < total; ++i) {
        if (to_float) {
            c.floats.push_back(static_cast<float>(at(x, i)));
        } else if (to == 9) {
            c.ints.push_back(at(x, i) != 0.0 ? 1 : 0);
        } else if (x.is_int) {
            c.ints.push_back(x.ints[static_cast<size_t>(i)]);
        } else {
            const double v = std::trunc(x.floats[static_cast<size_t>(i)]);
            if (!(std::abs(v) < 9.2e18)) bad(n, fmt::format("cannot cast {} to an integer", v));
            c.ints.push_back(static_cast<int64_t>(v));
        }
    }
    return c;
}

std::vector<constant> evaluate(const node& n, const std::vector<const constant*>& in) {
    const std::string& t = n.op_type;
    auto arg = [&](size_t i) -> const constant& {
        if (i >= in.size() || !in[i]) bad(n, fmt::format("input {} is missing", i));
        return *in[i];
    };
    auto binary = [&](auto int_op, auto float_op, bool to_bool = false) {
        return elementwise(
            n, {&arg(0), &arg(1)}, [&](const std::vector<int64_t>& v) { return int_op(v[0], v[1]); },
            [&](const std::vector<double>& v) { return float_op(v[0], v[1]); }, to_bool);
    };
    auto unary = [&](auto int_op, auto float_op) {
        return elementwise(
            n, {&arg(0)}, [&](const std::vector<int64_t>& v) { return int_op(v[0]); },
            [&](const std::vector<double>& v) { return float_op(v[0]); });
    };
    if (t == "Identity" || t == "Dropout") return {arg(0)};
    if (t == "Add") return {binary([](int64_t a, int64_t b) { return a + b; }, [](double a, double b) { return a + b; })};
    if (t == "Sub") return {binary([](int64_t a, int64_t b) { return a - b; }, [](double a, double b) { return a - b; })};
    if (t == "Mul") return {binary([](int64_t a, int64_t b) { return a * b; }, [](double a, double b) { return a * b; })};
    if (t == "Div")
        return {binary(
            [&](int64_t a, int64_t b) {
                if (b == 0) bad(n, "integer division by zero");
                return a / b; // C's truncation, as ONNX Runtime's integer Div
            },
            [](double a, double b) { return a / b; })};
    if (t == "Mod") {
        const bool fmod = n.get_int("fmod", 0) != 0;
        return {binary(
            [&](int64_t a, int64_t b) {
                if (b == 0) bad(n, "integer modulo by zero");
                const int64_t m = a % b;
                return (!fmod && m != 0 && ((m < 0) != (b < 0))) ? m + b : m; // Python's sign rule unless fmod
            },
            [&](double a, double b) {
                const double m = std::fmod(a, b);
                return (!fmod && m != 0 && ((m < 0) != (b < 0))) ? m + b : m;
            })};
    }
    if (t == "Pow") {
        constant c = binary([](int64_t a, int64_t b) { return static_cast<int64_t>(std::pow(double(a), double(b))); },
                            [](double a, double b) { return std::pow(a, b); });
        // Pow's result has the base's element type.
        if (arg(0).is_int != c.is_int) c = cast(n, c, arg(0).is_int ? 7 : 1);
        return {c};
    }
    if (t == "Min" || t == "Max") {
        std::vector<const constant*> args;
        for (size_t i = 0; i < in.size(); ++i) args.push_back(&arg(i));
        const bool mx = t == "Max";
        return {elementwise(
            n, args,
            [&](const std::vector<int64_t>& v) { return mx ? *std::max_element(v.begin(), v.end()) : *std::min_element(v.begin(), v.end()); },
            [&](const std::vector<double>& v) { return mx ? *std::max_element(v.begin(), v.end()) : *std::min_element(v.begin(), v.end()); })};
    }
    if (t == "Equal") return {binary([](int64_t a, int64_t b) -> int64_t { return a == b; }, [](double a, double b) -> double { return a == b; }, true)};
    if (t == "Less") return {binary([](int64_t a, int64_t b) -> int64_t { return a < b; }, [](double a, double b) -> double { return a < b; }, true)};
    if (t == "Greater") return {binary([](int64_t a, int64_t b) -> int64_t { return a > b; }, [](double a, double b) -> double { return a > b; }, true)};
    if (t == "LessOrEqual") return {binary([](int64_t a, int64_t b) -> int64_t { return a <= b; }, [](double a, double b) -> double { return a <= b; }, true)};
    if (t == "GreaterOrEqual") return {binary([](int64_t a, int64_t b) -> int64_t { return a >= b; }, [](double a, double b) -> double { return a >= b; }, true)};
    if (t == "And") return {binary([](int64_t a, int64_t b) -> int64_t { return a && b; }, [](double a, double b) -> double { return a != 0 && b != 0; }, true)};
    if (t == "Or") return {binary([](int64_t a, int64_t b) -> int64_t { return a || b; }, [](double a, double b) -> double { return a != 0 || b != 0; }, true)};
    if (t == "Xor") return {binary([](int64_t a, int64_t b) -> int64_t { return (a != 0) != (b != 0); }, [](double a, double b) -> double { return (a != 0) != (b != 0); }, true)};
    if (t == "Not") return {unary([](int64_t a) -> int64_t { return a == 0; }, [](double a) -> double { return a == 0; })};
    if (t == "Neg") return {unary([](int64_t a) { return -a; }, [](double a) { return -a; })};
    if (t == "Abs") return {unary([](int64_t a) { return a < 0 ? -a : a; }, [](double a) { return std::abs(a); })};
    if (t == "Floor") return {unary([](int64_t a) { return a; }, [](double a) { return std::floor(a); })};
    if (t == "Ceil") return {unary([](int64_t a) { return a; }, [](double a) { return std::ceil(a); })};
    if (t == "Sqrt") {
        if (arg(0).is_int) bad(n, "Sqrt of integers");
        return {unary([](int64_t a) { return a; }, [](double a) { return std::sqrt(a); })};
    }
    if (t == "Where") {
        const constant& cond = arg(0);
        const shape_t out = broadcast(n, {&cond.shape, &arg(1).shape, &arg(2).shape});
        count_of(n, out);
        const auto ci = broadcast_index(cond.shape, out), xi = broadcast_index(arg(1).shape, out), yi = broadcast_index(arg(2).shape, out);
        constant c;
        c.shape = out;
        c.is_int = arg(1).is_int && arg(2).is_int;
        for (size_t i = 0; i < ci.size(); ++i) {
            const bool take_x = at(cond, ci[i]) != 0.0;
            const constant& src = take_x ? arg(1) : arg(2);
            const int64_t f = take_x ? xi[i] : yi[i];
            if (c.is_int) c.ints.push_back(src.ints[static_cast<size_t>(f)]);
            else c.floats.push_back(static_cast<float>(at(src, f)));
        }
        return {c};
    }
    if (t == "Cast") return {cast(n, arg(0), n.get_int("to", 1))};
    if (t == "CastLike") return {cast(n, arg(0), arg(1).is_int ? 7 : 1)};
    if (t == "Range") {
        const double start = at(arg(0), 0), limit = at(arg(1), 0), delta = at(arg(2), 0);
        if (delta == 0) bad(n, "delta is 0");
        const auto count = static_cast<int64_t>(std::max(std::ceil((limit - start) / delta), 0.0));
        count_of(n, {count});
        constant c;
        c.shape = {count};
        c.is_int = arg(0).is_int && arg(1).is_int && arg(2).is_int;
        for (int64_t i = 0; i < count; ++i) {
            if (c.is_int) c.ints.push_back(arg(0).ints[0] + i * arg(2).ints[0]);
            else c.floats.push_back(static_cast<float>(start + static_cast<double>(i) * delta));
        }
        return {c};
    }
    if (t == "ConstantOfShape") {
        const shape_t s = int_values(n, arg(0), "shape");
        const auto count = static_cast<size_t>(count_of(n, s));
        const constant* value = n.get_tensor("value");
        constant c;
        c.shape = s;
        c.is_int = value && value->is_int;
        if (value && element_count(value->shape) != 1) bad(n, "value must hold one element");
        if (c.is_int) c.ints.assign(count, value->ints.at(0));
        else c.floats.assign(count, value ? value->floats.at(0) : 0.0f);
        return {c};
    }
    if (t == "Concat") return {concat(n, in)};
    if (t == "Gather") return {gather(n, arg(0), arg(1))};
    if (t == "Slice") return {slice(n, in)};
    if (t == "Transpose") return {transpose(n, arg(0))};
    if (t == "Reshape") return {with_shape(arg(0), reshape_target(n, arg(0).shape, int_values(n, arg(1), "shape")))};
    if (t == "Flatten") {
        const shape_t& x = arg(0).shape;
        const int64_t a = axis_of(n, n.get_int("axis", 1), x.size(), true);
        int64_t outer = 1;
        for (int64_t d = 0; d < a; ++d) outer *= x[static_cast<size_t>(d)];
        return {with_shape(arg(0), {outer, element_count(x) / std::max<int64_t>(outer, 1)})};
    }
    if (t == "Unsqueeze") {
        const std::vector<int64_t> axes = axes_input_or_attr(n, in, 1, 13);
        const size_t r = arg(0).shape.size() + axes.size();
        std::vector<bool> at_axis(r, false);
        for (int64_t a : axes) {
            const auto k = static_cast<size_t>(axis_of(n, a, r));
            if (at_axis[k]) bad(n, fmt::format("axis {} is given twice", a));
            at_axis[k] = true;
        }
        shape_t out;
        size_t next = 0;
        for (size_t d = 0; d < r; ++d) out.push_back(at_axis[d] ? 1 : arg(0).shape[next++]);
        return {with_shape(arg(0), out)};
    }
    if (t == "Squeeze") {
        const std::vector<int64_t> axes = axes_input_or_attr(n, in, 1, 13);
        const shape_t& x = arg(0).shape;
        std::vector<bool> drop(x.size(), axes.empty());
        for (int64_t a : axes) {
            const auto k = static_cast<size_t>(axis_of(n, a, x.size()));
            if (x[k] != 1) bad(n, fmt::format("axis {} has size {}, not 1", a, x[k]));
            drop[k] = true;
        }
        shape_t out;
        for (size_t d = 0; d < x.size(); ++d)
            if (!(drop[d] && x[d] == 1)) out.push_back(x[d]);
        return {with_shape(arg(0), out)};
    }
    if (t == "Expand") {
        const shape_t spec = int_values(n, arg(1), "shape");
        const shape_t out = broadcast(n, {&arg(0).shape, &spec});
        count_of(n, out);
        return {pick(arg(0), broadcast_index(arg(0).shape, out), out)};
    }
    if (t == "Tile") {
        const std::vector<int64_t> reps = int_values(n, arg(1), "repeats");
        const shape_t& x = arg(0).shape;
        if (reps.size() != x.size()) bad(n, "repeats must have one entry per axis");
        shape_t out(x.size());
        for (size_t d = 0; d < x.size(); ++d) {
            if (reps[d] < 0) bad(n, "a repeat is negative");
            out[d] = x[d] * reps[d];
        }
        count_of(n, out);
        const auto st = strides(x);
        std::vector<int64_t> idx;
        for_each_index(out, [&](int64_t, const std::vector<int64_t>& o) {
            int64_t f = 0;
            for (size_t d = 0; d < x.size(); ++d) f += (o[d] % x[d]) * st[d];
            idx.push_back(f);
        });
        return {pick(arg(0), idx, out)};
    }
    if (t == "Split") {
        const constant& x = arg(0);
        const auto a = static_cast<size_t>(axis_of(n, n.get_int("axis", 0), x.shape.size()));
        std::vector<int64_t> sizes = n.opset >= 13 ? (in.size() > 1 && in[1] ? int_values(n, *in[1], "split") : std::vector<int64_t>{})
                                                   : n.get_ints("split", {});
        const int64_t dim = x.shape[a];
        if (sizes.empty()) {
            const auto parts = static_cast<int64_t>(n.has("num_outputs") ? n.get_int("num_outputs", 1) : int64_t(n.outputs.size()));
            if (parts <= 0) bad(n, "no outputs");
            const int64_t each = (dim + parts - 1) / parts;
            for (int64_t p = 0, left = dim; p < parts; ++p, left -= each) sizes.push_back(std::max<int64_t>(std::min(each, left), 0));
        }
        if (std::accumulate(sizes.begin(), sizes.end(), int64_t(0)) != dim) bad(n, "split sizes do not add up to the axis");
        std::vector<constant> outs;
        int64_t begin = 0;
        for (int64_t s : sizes) {
            node part = n;
            constant starts = ints({1}, {begin}), ends = ints({1}, {begin + s}), axes = ints({1}, {static_cast<int64_t>(a)});
            part.opset = 13;
            outs.push_back(slice(part, {&x, &starts, &ends, &axes}));
            begin += s;
        }
        return outs;
    }
    if (t == "ScatterND") return {scatter_nd(n, arg(0), arg(1), arg(2))};
    if (t == "ReduceProd" || t == "ReduceSum") return {reduce(n, in, t == "ReduceProd")};
    if (t == "NonZero") {
        const constant& x = arg(0);
        std::vector<std::vector<int64_t>> coords(x.shape.size());
        for_each_index(x.shape, [&](int64_t i, const std::vector<int64_t>& idx) {
            if (at(x, i) != 0.0)
                for (size_t d = 0; d < idx.size(); ++d) coords[d].push_back(idx[d]);
        });
        const auto hits = static_cast<int64_t>(coords.empty() ? 0 : coords[0].size());
        constant c = ints({static_cast<int64_t>(x.shape.size()), hits}, {});
        for (auto& row : coords) c.ints.insert(c.ints.end(), row.begin(), row.end());
        return {c};
    }
    throw unsupported_error(fmt::format("{}: the constant folder does not implement {}", n.describe(), t));
}

} // namespace

bool foldable_op(const node& n) {
    if (!n.domain.empty() && n.domain != "ai.onnx") return false;
    return in(std::begin(engine_also), std::end(engine_also), n.op_type) ||
           in(std::begin(constant_only), std::end(constant_only), n.op_type);
}

bool constant_only_op(const node& n) {
    return (n.domain.empty() || n.domain == "ai.onnx") && in(std::begin(constant_only), std::end(constant_only), n.op_type);
}

std::optional<std::vector<constant>> fold_node(const node& n, const graph& g, const shape_lookup& activation_shape) {
    if (!foldable_op(n)) return std::nullopt;
    if (n.op_type == "Shape" || n.op_type == "Size") {
        const shape_t* s = nullptr;
        constant holder;
        if (n.inputs.empty() || n.inputs[0].empty()) bad(n, "input 0 is missing");
        if (const constant* c = g.find_constant(n.inputs[0])) s = &c->shape;
        else s = activation_shape(n.inputs[0]);
        if (!s) return std::nullopt;
        if (n.op_type == "Size") return std::vector<constant>{ints({}, {element_count(*s)})};
        const auto r = static_cast<int64_t>(s->size());
        auto clamp_axis = [&](int64_t a) { return std::clamp(a < 0 ? a + r : a, int64_t(0), r); };
        const int64_t begin = clamp_axis(n.get_int("start", 0)), end = clamp_axis(n.get_int("end", r));
        shape_t dims(s->begin() + begin, s->begin() + std::max(begin, end));
        const auto count = static_cast<int64_t>(dims.size());
        return std::vector<constant>{ints({count}, dims)};
    }
    std::vector<const constant*> in;
    for (const std::string& name : n.inputs) {
        if (name.empty()) {
            in.push_back(nullptr);
            continue;
        }
        const constant* c = g.find_constant(name);
        if (!c) return std::nullopt;
        in.push_back(c);
    }
    // An extra output the folder does not compute (Dropout's mask) leaves the node to the engine.
    for (size_t i = 1; i < n.outputs.size(); ++i)
        if (!n.outputs[i].empty() && n.op_type != "Split") return std::nullopt;
    std::vector<constant> outs = evaluate(n, in);
    const size_t wanted = n.outputs.size();
    if (outs.size() < wanted) bad(n, fmt::format("has {} outputs; its split makes {}", wanted, outs.size()));
    outs.resize(wanted);
    for (const constant& c : outs)
        if (static_cast<size_t>(element_count(c.shape)) != (c.is_int ? c.ints.size() : c.floats.size()))
            throw std::logic_error(fmt::format("constant folding of {} produced a malformed tensor", n.describe()));
    return outs;
}

} // namespace deepinside::passes
