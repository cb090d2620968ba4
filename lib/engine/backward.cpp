// Backward plans: for a (target tensor, wrt tensor, stacked request count), the tensors that lie
// between them, the backward of every op on that path from the target back, and the signal read at
// wrt; then running them, one stacked pass per target tensor, after refusing a rule an op on the
// path has no definition for.
#include "engine/network_impl.hpp"

#include <deepinside/rules.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace deepinside {

namespace {

/// The activations on a path from `wrt` to `from`: those the target depends on and that depend on
/// wrt. The plan signals exactly these. Throws input_error when wrt does not reach from.
std::map<std::string, bool> tensors_between(const graph& g, const std::map<std::string, engine::activation>& acts,
                                            const std::string& from, const std::string& wrt) {
    std::set<std::string> upstream{from}, downstream{wrt};
    for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it)
        if (std::any_of(it->outputs.begin(), it->outputs.end(), [&](auto& o) { return upstream.count(o); }))
            for (auto& i : it->inputs)
                if (acts.count(i)) upstream.insert(i);
    for (const node& n : g.nodes)
        if (std::any_of(n.inputs.begin(), n.inputs.end(), [&](auto& i) { return downstream.count(i); }))
            for (auto& o : n.outputs) downstream.insert(o);
    if (!upstream.count(wrt))
        throw input_error(fmt::format("{}: tensor '{}' does not influence the target tensor '{}'", g.source, wrt, from));
    std::map<std::string, bool> wanted;
    for (const auto& t : upstream)
        if (downstream.count(t) && acts.count(t)) wanted[t] = true;
    return wanted;
}

/// DeconvNet and guided backpropagation define their own backward at ReLU only (rules.hpp): a pass
/// crossing another nonlinearity is refused, naming the first one met from the target back, unless
/// the caller chose its exact derivative there (nonrelu_policy::gradient).
void refuse_undefined_rule(const engine::backward_plan& p, backward_rule rule, nonrelu_policy policy) {
    if (rule == backward_rule::gradient || p.nonrelu.empty() || policy != nonrelu_policy::refuse) return;
    throw unsupported_error(fmt::format(
        "{}: the {} rule is defined for ReLU only; pass --nonrelu gradient to apply the exact derivative there",
        p.nonrelu.front()->spec().describe(), to_string(rule)));
}

} // namespace

engine::backward_plan& network::impl::plan_for(const std::string& from, const std::string& wrt, int64_t stack) {
    for (auto& p : plans)
        if (p->from == from && p->wrt == wrt && p->stack == stack) return *p;
    auto p = std::make_unique<engine::backward_plan>();
    p->from = from;
    p->wrt = wrt;
    p->stack = stack;
    p->rules->assign(static_cast<size_t>(stack), backward_rule::gradient);
    act(from);
    act(wrt);
    // A channel_max target reads `from` on every backward pass: its reorder is made with the plan.
    reorder_to_plain(from);
    const std::map<std::string, bool> wanted = tensors_between(g, acts, from, wrt);

    engine::backward_builder bb(eng, *p->buffers, acts, stack, *p->rules, p->steps, p->prologue);
    bb.set_wanted(wanted);
    const engine::activation& target = act(from);
    p->seed_plain = p->buffers->allocate(eng, engine::scale_batch(engine::plain_desc(target.shape), stack));
    dnnl::memory::desc seed_md = engine::scale_batch(target.mem.get_desc(), stack);
    dnnl::memory seed = p->seed_plain;
    if (!(seed_md == p->seed_plain.get_desc())) {
        seed = p->buffers->allocate(eng, seed_md);
        engine::add_reorder(p->steps, p->seed_plain, seed, "target");
    }
    bb.seed(from, seed);
    for (size_t k = ops.size(); k-- > 0;) {
        const node& n = ops[k]->spec();
        const bool on_path = std::any_of(n.outputs.begin(), n.outputs.end(), [&](auto& o) { return wanted.count(o); }) &&
                             std::any_of(n.inputs.begin(), n.inputs.end(), [&](auto& i) { return wanted.count(i); });
        if (!on_path) continue; // (the producer of wrt is never on the path: its inputs precede wrt)
        bb.set_node(&n);
        try {
            ops[k]->build_backward(bb);
        } catch (const dnnl::error& e) {
            throw unsupported_error(fmt::format("{}: oneDNN cannot build its backward: {}", n.describe(), e.what()));
        }
        if (rules::find(n.op_type)->under_rules == rules::behaviour::nonrelu) p->nonrelu.push_back(ops[k].get());
    }
    bb.set_node(nullptr);
    const dnnl::memory r = bb.diff(wrt);
    p->signals = bb.signals_in_order();
    const dnnl::memory::desc result_md = engine::scale_batch(engine::plain_desc(act(wrt).shape), stack);
    if (r.get_desc() == result_md) {
        p->result_plain = r;
    } else {
        p->result_plain = p->buffers->allocate(eng, result_md);
        engine::add_reorder(p->steps, r, p->result_plain, "signal at " + wrt);
    }
    plans.push_back(std::move(p));
    return *plans.back();
}

std::vector<tensor> network::impl::backward(const std::vector<backward_request>& requests, const std::string& wrt_name) {
    if (!forward_done) throw input_error("backward needs a forward pass first");
    if (requests.empty()) return {};
    // Names may be tensors or the nodes computing them (as `info` lists both).
    const std::string wrt = wrt_name.empty() ? input_name : tensor_name_of(wrt_name);
    require_stored(wrt);
    for (const backward_request& r : requests)
        if (!r.what.tensor.empty()) require_stored(tensor_name_of(r.what.tensor));
    std::vector<tensor> results(requests.size());
    std::vector<std::pair<engine::backward_plan*, int64_t>> where(requests.size()); // each request's plan and slice
    // Requests on the same target tensor share one stacked pass.
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t k = 0; k < requests.size(); ++k)
        groups[requests[k].what.tensor.empty() ? score_name : tensor_name_of(requests[k].what.tensor)].push_back(k);
    for (auto& [from, members] : groups) {
        engine::backward_plan& p = plan_for(from, wrt, static_cast<int64_t>(members.size()));
        std::vector<backward_request> group;
        for (size_t k = 0; k < members.size(); ++k) {
            group.push_back(requests[members[k]]);
            (*p.rules)[k] = requests[members[k]].rule;
            refuse_undefined_rule(p, requests[members[k]].rule, options.nonrelu);
        }
        fill_seed(p, group);
        engine::run_steps(p.prologue, stream);
        engine::run_steps(p.steps, stream);
        const shape_t& ws = act(wrt).shape;
        const int64_t count = element_count(ws);
        const auto* r = static_cast<const float*>(p.result_plain.get_data_handle());
        for (size_t k = 0; k < members.size(); ++k) {
            results[members[k]] = tensor(ws, std::vector<float>(r + static_cast<int64_t>(k) * count, r + (static_cast<int64_t>(k) + 1) * count));
            where[members[k]] = {&p, static_cast<int64_t>(k)};
        }
    }
    check_backward(requests, results, where);
    return results;
}

} // namespace deepinside
