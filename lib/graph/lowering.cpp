#include "graph/lowering.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

namespace deepinside::passes {

namespace {

[[noreturn]] void refuse(const node& n, const std::string& why) {
    throw unsupported_error(fmt::format("{}: {}", n.describe(), why));
}

/// The letters of one term of an einsum equation, spaces dropped.
std::string letters(const node& n, const std::string& term) {
    std::string out;
    for (char c : term) {
        if (c == ' ') continue;
        if (c == '.') refuse(n, "an ellipsis in the equation is not supported");
        if (!std::isalpha(static_cast<unsigned char>(c))) throw model_error(fmt::format("{}: '{}' in the equation", n.describe(), c));
        if (out.find(c) != std::string::npos) refuse(n, fmt::format("index '{}' repeated within one term (a trace or diagonal) is not supported", c));
        out += c;
    }
    return out;
}

/// Builds the replacement nodes, naming every intermediate after the Einsum's output.
class builder {
public:
    builder(const node& n, graph& g) : n_(n), g_(g) {}

    std::string transpose(const std::string& in, const std::vector<int64_t>& perm, const std::string& tag) {
        bool identity = true;
        for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int64_t>(i);
        if (identity) return in;
        node t = base("Transpose", tag);
        t.inputs = {in};
        t.attributes["perm"] = perm;
        nodes_.push_back(t);
        return t.outputs[0];
    }

    std::string reshape(const std::string& in, const shape_t& from, const shape_t& to, const std::string& tag) {
        if (from == to) return in;
        node r = base("Reshape", tag);
        constant shape;
        shape.is_int = true;
        shape.shape = {static_cast<int64_t>(to.size())};
        shape.ints = to;
        const std::string name = r.outputs[0] + "_shape";
        g_.constants[name] = shape;
        r.inputs = {in, name};
        nodes_.push_back(r);
        return r.outputs[0];
    }

    std::string matmul(const std::string& a, const std::string& b) {
        node m = base("MatMul", "matmul");
        m.inputs = {a, b};
        nodes_.push_back(m);
        return m.outputs[0];
    }

    /// Renames the last node's output to the Einsum's own output.
    std::vector<node> finish(const std::string& last) {
        if (nodes_.empty() || nodes_.back().outputs[0] != last) refuse(n_, "internal: nothing to lower");
        nodes_.back().outputs[0] = n_.outputs.at(0);
        return nodes_;
    }

private:
    node base(const std::string& op, const std::string& tag) const {
        node x;
        x.op_type = op;
        x.opset = std::max<int64_t>(n_.opset, 13);
        x.name = n_.name + "/" + tag;
        x.outputs = {n_.outputs.at(0) + "/einsum_" + tag};
        return x;
    }

    const node& n_;
    graph& g_;
    std::vector<node> nodes_;
};

std::vector<node> lower_einsum(const node& n, graph& g, const shape_lookup& shape_of) {
    const std::string equation = n.get_string("equation", "");
    const size_t arrow = equation.find("->");
    if (arrow == std::string::npos) refuse(n, "an equation without '->' (implicit output) is not supported");
    const std::string lhs = equation.substr(0, arrow);
    const size_t comma = lhs.find(',');
    if (comma == std::string::npos || lhs.find(',', comma + 1) != std::string::npos || n.inputs.size() != 2)
        refuse(n, "only Einsum of two operands is supported");
    const std::string a = letters(n, lhs.substr(0, comma)), b = letters(n, lhs.substr(comma + 1)),
                      out = letters(n, equation.substr(arrow + 2));

    auto shape = [&](size_t i) -> shape_t {
        if (const constant* c = g.find_constant(n.inputs[i])) return c->shape;
        if (const shape_t* s = shape_of(n.inputs[i])) return *s;
        throw model_error(fmt::format("{}: input '{}' is not computed before the node", n.describe(), n.inputs[i]));
    };
    const shape_t sa = shape(0), sb = shape(1);
    if (sa.size() != a.size() || sb.size() != b.size())
        throw model_error(fmt::format("{}: equation '{}' does not fit operands of shapes {} and {}", n.describe(), equation,
                                      to_string(sa), to_string(sb)));
    std::map<char, int64_t> size;
    auto record = [&](char c, int64_t d) {
        auto [it, fresh] = size.emplace(c, d);
        if (!fresh && it->second != d)
            throw model_error(fmt::format("{}: index '{}' has sizes {} and {}", n.describe(), c, it->second, d));
    };
    for (size_t i = 0; i < a.size(); ++i) record(a[i], sa[i]);
    for (size_t i = 0; i < b.size(); ++i) record(b[i], sb[i]);

    // Batch: in both and the output; M: A and output; N: B and output; K: both, summed.
    std::string batch, m, k, nn;
    for (char c : a) {
        const bool in_b = b.find(c) != std::string::npos, in_out = out.find(c) != std::string::npos;
        if (in_b && in_out) batch += c;
        else if (in_b) k += c;
        else if (in_out) m += c;
        else refuse(n, fmt::format("index '{}' is summed within the first operand alone (not a matrix product)", c));
    }
    for (char c : b) {
        const bool in_a = a.find(c) != std::string::npos, in_out = out.find(c) != std::string::npos;
        if (!in_a && in_out) nn += c;
        else if (!in_a) refuse(n, fmt::format("index '{}' is summed within the second operand alone (not a matrix product)", c));
    }
    for (char c : out)
        if (a.find(c) == std::string::npos && b.find(c) == std::string::npos)
            throw model_error(fmt::format("{}: output index '{}' is in no operand", n.describe(), c));

    auto product = [&](const std::string& idx) {
        int64_t p = 1;
        for (char c : idx) p *= size.at(c);
        return p;
    };
    auto dims = [&](const std::string& idx) {
        shape_t s;
        for (char c : idx) s.push_back(size.at(c));
        return s;
    };
    auto perm_to = [](const std::string& from, const std::string& to) {
        std::vector<int64_t> p;
        for (char c : to) p.push_back(static_cast<int64_t>(from.find(c)));
        return p;
    };
    builder bld(n, g);
    // A → [batch..., M, K], B → [batch..., K, N] (M, K, N each merged into one axis).
    shape_t lead = dims(batch);
    shape_t a3 = lead, b3 = lead;
    a3.insert(a3.end(), {product(m), product(k)});
    b3.insert(b3.end(), {product(k), product(nn)});
    const std::string a_order = batch + m + k, b_order = batch + k + nn;
    const std::string at = bld.reshape(bld.transpose(n.inputs[0], perm_to(a, a_order), "a_t"), dims(a_order), a3, "a_3d");
    const std::string bt = bld.reshape(bld.transpose(n.inputs[1], perm_to(b, b_order), "b_t"), dims(b_order), b3, "b_3d");
    std::string y = bld.matmul(at, bt);
    shape_t y3 = lead;
    y3.insert(y3.end(), {product(m), product(nn)});
    const std::string y_order = batch + m + nn;
    y = bld.reshape(y, y3, dims(y_order), "y_nd");
    y = bld.transpose(y, perm_to(y_order, out), "y_t");
    return bld.finish(y);
}

} // namespace

bool lowered_op(const node& n) { return (n.domain.empty() || n.domain == "ai.onnx") && n.op_type == "Einsum"; }

std::optional<std::vector<node>> lower_node(const node& n, graph& g, const shape_lookup& shape_of) {
    if (!lowered_op(n)) return std::nullopt;
    return lower_einsum(n, g, shape_of);
}

} // namespace deepinside::passes
