#include "reference.hpp"

#include "ref_ops.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <cstdint>
#include <set>

namespace deepinside::verify {

namespace {

/// The one table: every family's rows (ref_ops.hpp), in the order listed here.
const std::vector<op_entry>& op_table() {
    static const std::vector<op_entry> table = [] {
        std::vector<op_entry> all;
        for (auto family : {conv_ops, conv_transpose_ops, pool_ops, eltwise_ops, linear_ops, binary_ops, shape_ops, norm_ops, softmax_ops, layout_ops, resize_ops}) {
            const std::vector<op_entry> rows = family();
            all.insert(all.end(), rows.begin(), rows.end());
        }
        return all;
    }();
    return table;
}

std::string known_ops() {
    std::string out;
    for (const auto& e : op_table()) out += (out.empty() ? "" : ", ") + std::string(e.op_type);
    return out;
}

const op_entry* find_op(const node& n) {
    if (!n.domain.empty() && n.domain != "ai.onnx") return nullptr;
    for (const auto& e : op_table())
        if (n.op_type == e.op_type) return &e;
    return nullptr;
}

const op_entry& op_of(const node& n) {
    const op_entry* e = find_op(n);
    if (!e)
        throw unsupported_error(
            fmt::format("{} is not implemented by the reference; it knows: {}", n.describe(), known_ops()));
    return *e;
}

dtensor to_double(const constant& c) {
    if (c.is_int) return dtensor(c.shape, std::vector<double>(c.ints.begin(), c.ints.end()));
    return dtensor(c.shape, std::vector<double>(c.floats.begin(), c.floats.end()));
}

} // namespace

reference_network::reference_network(const graph& g) : graph_(g) {
    if (graph_.inputs.size() != 1)
        throw unsupported_error(fmt::format("{}: the reference takes graphs with exactly one input, this one has {}",
                                            graph_.source, graph_.inputs.size()));
    if (graph_.outputs.empty()) throw model_error(fmt::format("{}: the graph has no output", graph_.source));
    // Split is the one op with several outputs: it runs as one node per output.
    split_into_parts(graph_);
    // The values live on in double only (a VGG-16 holds 138 M weights: the float copy would be 0.5 GB).
    for (auto& [name, c] : graph_.constants) {
        constants_.emplace(name, to_double(c));
        std::vector<float>().swap(c.floats);
        std::vector<int64_t>().swap(c.ints);
    }

    // Tensors that depend on the network input: only their diffs are ever needed.
    std::set<std::string> known{graph_.inputs[0].name};
    std::set<std::string> dependent{graph_.inputs[0].name};
    for (const auto& n : graph_.nodes) {
        const op_entry& e = op_of(n);
        if (e.check) e.check(n);
        if (n.outputs.empty() || n.outputs[0].empty())
            throw model_error(fmt::format("{}: has no output", n.describe()));
        for (size_t i = 1; i < n.outputs.size(); ++i)
            if (!n.outputs[i].empty())
                throw unsupported_error(fmt::format("{}: its optional output '{}' (output {}) is not supported",
                                                    n.describe(), n.outputs[i], i));
        bool depends = false;
        for (size_t i = 0; i < n.inputs.size(); ++i) {
            const std::string& in = n.inputs[i];
            if (in.empty()) continue;
            if (!known.count(in) && !constants_.count(in))
                throw model_error(fmt::format("{}: input '{}' is neither a constant nor computed before the node",
                                              n.describe(), in));
            if (!dependent.count(in)) continue;
            depends = true;
            if (i >= 32 || !((e.differentiable >> i) & 1u))
                throw unsupported_error(fmt::format(
                    "{}: input '{}' (input {}) depends on the network input; the reference differentiates "
                    "this op only with respect to its data input(s)",
                    n.describe(), in, i));
        }
        known.insert(n.outputs[0]);
        if (depends) dependent.insert(n.outputs[0]);
    }
    for (const auto& out : graph_.outputs)
        if (!known.count(out.name) && !constants_.count(out.name))
            throw model_error(fmt::format("{}: graph output '{}' is not computed by any node", graph_.source, out.name));

    score_tensor_ = graph_.outputs[0].name;
    if (auto p = graph_.producer_of(score_tensor_)) {
        const node& last = graph_.nodes[*p];
        if ((last.op_type == "Softmax" || last.op_type == "LogSoftmax") && !last.inputs.empty())
            score_tensor_ = last.inputs[0];
    }
}

const std::string& reference_network::input_name() const { return graph_.inputs[0].name; }
const std::string& reference_network::output_tensor() const { return graph_.outputs[0].name; }
const std::string& reference_network::score_tensor() const { return score_tensor_; }

std::map<std::string, dtensor> reference_network::forward(const dtensor& input) const {
    if (element_count(input.shape) != input.size())
        throw input_error(fmt::format("input of shape {} holds {} values", to_string(input.shape), input.size()));
    std::map<std::string, dtensor> acts;
    acts.emplace(input_name(), input);
    for (const auto& n : graph_.nodes) {
        dtensor dst = op_of(n).forward(n, inputs_of(n, acts));
        if (element_count(dst.shape) != dst.size())
            throw std::logic_error(fmt::format("reference {}: produced a malformed tensor", n.describe()));
        acts.insert_or_assign(n.outputs[0], std::move(dst));
    }
    return acts;
}

dtensor reference_network::forward_to(const dtensor& input, const std::string& wanted,
                                      std::vector<std::vector<int64_t>>* decisions) const {
    if (element_count(input.shape) != input.size())
        throw input_error(fmt::format("input of shape {} holds {} values", to_string(input.shape), input.size()));
    // The last node reading each activation: after it, the activation is let go.
    std::map<std::string, size_t> last_use;
    for (size_t i = 0; i < graph_.nodes.size(); ++i)
        for (const auto& in : graph_.nodes[i].inputs) last_use[in] = i;
    std::map<std::string, dtensor> acts;
    acts.emplace(input_name(), input);
    if (decisions) decisions->clear();
    for (size_t i = 0; i < graph_.nodes.size(); ++i) {
        const node& n = graph_.nodes[i];
        const op_entry& e = op_of(n);
        const src_list src = inputs_of(n, acts);
        if (decisions && e.decisions) decisions->push_back(e.decisions(n, src));
        dtensor dst = e.forward(n, src);
        if (element_count(dst.shape) != dst.size())
            throw std::logic_error(fmt::format("reference {}: produced a malformed tensor", n.describe()));
        acts.insert_or_assign(n.outputs[0], std::move(dst));
        for (const auto& in : n.inputs) {
            auto it = acts.find(in);
            if (it != acts.end() && in != wanted && last_use[in] == i) acts.erase(it);
        }
    }
    auto it = acts.find(wanted);
    if (it == acts.end()) throw input_error(fmt::format("{}: '{}' is not an activation of the forward pass", graph_.source, wanted));
    return std::move(it->second);
}

dtensor reference_network::backward(const std::map<std::string, dtensor>& activations, const std::string& from,
                                    const dtensor& seed, backward_rule rule, nonrelu_policy policy,
                                    const std::string& wrt) const {
    const std::string& wrt_name = wrt.empty() ? input_name() : wrt;
    auto find_act = [&](const std::string& name) -> const dtensor& {
        auto it = activations.find(name);
        if (it == activations.end())
            throw input_error(fmt::format("{}: '{}' is not an activation of the forward pass", graph_.source, name));
        return it->second;
    };
    const dtensor& from_act = find_act(from);
    const dtensor& wrt_act = find_act(wrt_name);
    if (seed.shape != from_act.shape || seed.size() != from_act.size())
        throw input_error(fmt::format("seed of shape {} for tensor '{}' of shape {}", to_string(seed.shape), from,
                                      to_string(from_act.shape)));

    // Nodes at or before the producer of `wrt` cannot reach it, so the walk stops there.
    size_t stop = 0;
    if (wrt_name != input_name()) {
        auto p = graph_.producer_of(wrt_name);
        if (!p) throw input_error(fmt::format("{}: '{}' is not computed by any node", graph_.source, wrt_name));
        stop = *p + 1;
    }
    std::map<std::string, dtensor> diffs;
    diffs.emplace(from, seed);
    for (size_t i = graph_.nodes.size(); i-- > stop;) {
        const node& n = graph_.nodes[i];
        auto d = diffs.find(n.outputs[0]);
        if (d == diffs.end()) continue;
        std::vector<dtensor> diff_src = node_backward(n, activations, d->second, rule, policy);
        for (size_t k = 0; k < diff_src.size(); ++k) {
            if (diff_src[k].data.empty() && diff_src[k].shape.empty()) continue;
            dtensor& g = diff_src[k];
            auto [it, inserted] = diffs.try_emplace(n.inputs[k], std::move(g));
            if (!inserted)
                for (size_t j = 0; j < it->second.data.size(); ++j) it->second.data[j] += g.data[j];
        }
    }
    auto r = diffs.find(wrt_name);
    return r != diffs.end() ? r->second : dtensor(wrt_act.shape);
}

std::vector<dtensor> reference_network::node_backward(const node& n, const std::map<std::string, dtensor>& activations,
                                                     const dtensor& diff_dst, backward_rule rule,
                                                     nonrelu_policy policy) const {
    auto out = activations.find(n.outputs.at(0));
    if (out == activations.end())
        throw input_error(fmt::format("{}: output '{}' is not an activation of the forward pass", n.describe(), n.outputs[0]));
    if (diff_dst.shape != out->second.shape || diff_dst.size() != out->second.size())
        throw input_error(fmt::format("{}: signal of shape {} for output '{}' of shape {}", n.describe(),
                                      to_string(diff_dst.shape), n.outputs[0], to_string(out->second.shape)));
    src_list src;
    std::vector<bool> need;
    for (const auto& in : n.inputs) {
        auto a = in.empty() ? activations.end() : activations.find(in);
        if (a != activations.end()) {
            src.push_back(&a->second);
            need.push_back(true);
        } else {
            src.push_back(in.empty() ? nullptr : &constants_.at(in));
            need.push_back(false);
        }
    }
    // An input that does not depend on the network input may still be an activation (computed from
    // constants); the table only guarantees diffs for inputs that do depend on it.
    const op_entry& e = op_of(n);
    for (size_t k = 0; k < need.size(); ++k)
        if (need[k] && (k >= 32 || !((e.differentiable >> k) & 1u))) need[k] = false;
    const backward_args args{n, src, out->second, diff_dst, need, rule, policy};
    std::vector<dtensor> diff_src = e.backward(args);
    diff_src.resize(need.size());
    for (size_t k = 0; k < need.size(); ++k) {
        if (!need[k]) {
            diff_src[k] = dtensor();
            continue;
        }
        const dtensor& g = diff_src[k];
        if (g.shape != src[k]->shape || g.size() != src[k]->size())
            throw std::logic_error(fmt::format("reference {}: backward produced a malformed diff", n.describe()));
    }
    return diff_src;
}

const dtensor* reference_network::constant(const std::string& name) const {
    auto it = constants_.find(name);
    return it == constants_.end() ? nullptr : &it->second;
}

src_list reference_network::inputs_of(const node& n, const std::map<std::string, dtensor>& acts) const {
    src_list src;
    for (const auto& in : n.inputs) {
        if (in.empty()) {
            src.push_back(nullptr);
        } else if (auto a = acts.find(in); a != acts.end()) {
            src.push_back(&a->second);
        } else if (auto c = constants_.find(in); c != constants_.end()) {
            src.push_back(&c->second);
        } else {
            throw input_error(fmt::format("{}: input '{}' is not an activation of the forward pass", n.describe(), in));
        }
    }
    return src;
}

std::vector<reference_network::decision_difference>
reference_network::compare_decisions(const std::map<std::string, dtensor>& a, const std::map<std::string, dtensor>& b) const {
    std::vector<decision_difference> out;
    for (const auto& n : graph_.nodes) {
        const op_entry& e = op_of(n);
        if (!e.decisions) continue;
        const std::vector<int64_t> da = e.decisions(n, inputs_of(n, a)), db = e.decisions(n, inputs_of(n, b));
        if (da.size() != db.size())
            throw input_error(fmt::format("{}: the two forward passes have inputs of different sizes", n.describe()));
        decision_difference d{n.name, n.op_type, static_cast<int64_t>(da.size()), 0};
        for (size_t i = 0; i < da.size(); ++i) d.differing += da[i] != db[i];
        out.push_back(std::move(d));
    }
    return out;
}

std::vector<std::vector<int64_t>> reference_network::decisions(const std::map<std::string, dtensor>& activations) const {
    std::vector<std::vector<int64_t>> out;
    for (const auto& n : graph_.nodes) {
        const op_entry& e = op_of(n);
        if (e.decisions) out.push_back(e.decisions(n, inputs_of(n, activations)));
    }
    return out;
}

double finite_difference(const reference_network& net, const dtensor& input, const std::string& from,
                         const dtensor& seed, size_t coordinate, double h) {
    if (coordinate >= input.data.size())
        throw input_error(fmt::format("coordinate {} is outside an input of {} values", coordinate, input.size()));
    // The step actually taken is what the rounded coordinates differ by, not 2h.
    const double plus = input.data[coordinate] + h;
    const double minus = input.data[coordinate] - h;
    auto f = [&](double value) {
        dtensor x = input;
        x.data[coordinate] = value;
        const auto acts = net.forward(x);
        const dtensor& y = acts.at(from);
        if (y.shape != seed.shape)
            throw input_error(fmt::format("seed of shape {} for tensor '{}' of shape {}", to_string(seed.shape), from,
                                          to_string(y.shape)));
        double s = 0;
        for (size_t i = 0; i < y.data.size(); ++i) s += seed.data[i] * y.data[i];
        return s;
    };
    return (f(plus) - f(minus)) / (plus - minus);
}

} // namespace deepinside::verify
