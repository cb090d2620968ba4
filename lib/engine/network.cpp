// The compiled network: builds every forward primitive once per input shape, and one backward plan
// per (target tensor, signal tensor, number of stacked requests), then only executes recorded steps.
// This file compiles the forward plan and holds the public API; see network_impl.hpp for the rest.
#include "engine/network_impl.hpp"
#include "engine/thread_scope.hpp"
#include "graph/constant_folding.hpp"
#include "graph/lowering.hpp"
#include "ops/registry.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>
#include <deepinside/rules.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <set>
#include <thread>

namespace deepinside {

const char* to_string(backward_rule r) {
    switch (r) {
    case backward_rule::gradient: return "gradient";
    case backward_rule::deconvnet: return "deconvnet";
    case backward_rule::guided: return "guided";
    }
    return "?";
}

backward_rule parse_backward_rule(const std::string& name) {
    if (name == "gradient") return backward_rule::gradient;
    if (name == "deconvnet") return backward_rule::deconvnet;
    if (name == "guided") return backward_rule::guided;
    throw input_error(fmt::format("unknown method '{}': choose gradient, deconvnet or guided", name));
}

std::string unsupported_nodes(const graph& g) {
    std::vector<std::string> nodes;
    for (const node& n : g.nodes) {
        try {
            ops::check_supported(n);
        } catch (const unsupported_error&) {
            nodes.push_back(fmt::format("{} (opset {})", n.describe(), n.opset));
        }
    }
    if (nodes.empty()) return "";
    return fmt::format("{}: {} node{} the engine cannot run: {}; supported ops: {}", g.source, nodes.size(),
                       nodes.size() == 1 ? "" : "s", fmt::join(nodes, ", "), ops::supported_op_list());
}

namespace {

/// CPUs in the calling thread's affinity mask (the process's, unless a thread changed its own).
int affinity_cpus() {
    for (int cpus = 1024; cpus <= (1 << 20); cpus *= 2) {
        cpu_set_t* set = CPU_ALLOC(cpus);
        if (!set) break;
        const size_t size = CPU_ALLOC_SIZE(cpus);
        CPU_ZERO_S(size, set);
        const int rc = sched_getaffinity(0, size, set);
        const int count = rc == 0 ? CPU_COUNT_S(size, set) : 0;
        const int err = errno;
        CPU_FREE(set);
        if (rc == 0) return std::max(count, 1);
        if (err != EINVAL) break; // EINVAL: the kernel's mask is larger than `cpus`
    }
    return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

} // namespace

int default_threads() {
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
        char* end = nullptr;
        errno = 0;
        const long n = std::strtol(env, &end, 10);
        if (end != env && errno == 0 && n > 0 && n <= 1 << 16 && (*end == '\0' || *end == ',' || *end == ' ')) return static_cast<int>(n);
    }
    return affinity_cpus();
}

namespace {

/// The class-score tensor of a graph with outputs: a graph ending in Softmax/LogSoftmax is
/// differentiated from the layer before it (the paper), any other from its first output.
const std::string& score_tensor_of(const graph& g) {
    const std::string& output = g.outputs.front().name;
    if (auto p = g.producer_of(output)) {
        const node& last = g.nodes[*p];
        if (last.op_type == "Softmax" || last.op_type == "LogSoftmax") return last.inputs.at(0);
    }
    return output;
}

/// Rethrows a model or unsupported error of a node with the file name in front.
[[noreturn]] void rethrow_with_source(const error& e, const std::string& source) {
    const std::string what = fmt::format("{}: {}", source, e.what());
    if (dynamic_cast<const unsupported_error*>(&e)) throw unsupported_error(what);
    if (dynamic_cast<const input_error*>(&e)) throw input_error(what);
    throw model_error(what);
}

} // namespace

void engine::run_steps(step_list& steps, dnnl::stream& s) {
    for (auto& st : steps) {
        if (st.host) st.host();
        else st.primitive.execute(s, st.args);
    }
    s.wait();
}

network::impl::impl(graph model, const shape_t& shape, const engine_options& opts, bool fuse_activations)
    : g(std::move(model)), options(opts), input_shape(shape) {
    if (options.threads < 0)
        throw input_error(fmt::format("engine_options.threads is {}: give a positive number of threads, or 0 for the default",
                                      options.threads));
    threads = options.threads > 0 ? options.threads : default_threads();
    // Before any primitive is created: oneDNN sizes its work partitions from this count.
    const engine::thread_scope scope(threads);
    if (g.inputs.empty()) throw model_error(fmt::format("{}: the graph has no input", g.source));
    const value_info& in = g.inputs.front();
    for (size_t i = 1; i < g.inputs.size(); ++i)
        throw unsupported_error(fmt::format("{}: input '{}': the network takes one image input; '{}' would be a second",
                                            g.source, g.inputs[i].name, g.inputs[i].name));
    input_name = in.name;
    if (in.shape.size() != shape.size())
        throw input_error(fmt::format("{}: input '{}' has rank {} ({}); given a tensor of shape {}", g.source, in.name,
                                      in.shape.size(), to_string(in.shape), to_string(shape)));
    for (size_t d = 0; d < shape.size(); ++d)
        if (in.shape[d] >= 0 && in.shape[d] != shape[d])
            throw input_error(fmt::format("{}: input '{}' must have shape {}; given {}", g.source, in.name,
                                          to_string(in.shape), to_string(shape)));
    if (shape.empty()) throw input_error(fmt::format("{}: input '{}' needs at least a batch axis", g.source, in.name));
    if (element_count(shape) == 0)
        throw unsupported_error(fmt::format("{}: input '{}' of shape {} is empty", g.source, in.name, to_string(shape)));

    acts[input_name] = {shape, buffers->allocate(eng, engine::plain_desc(shape))};
    tensor_names.push_back(input_name);
    engine::forward_builder fb(g, eng, *buffers, acts, forward_steps);
    // Under the full check a fused activation's input is proved finite by a bound instead of being
    // scanned (magnitude_bound); Winograd's transforms would loosen the bound, so not with them.
    const bool full_check = options.check == finite_check::all;
    activations_fused = options.fuse && fuse_activations && !(full_check && options.winograd);
    if (options.fuse) fb.enable_fusion(kept_under_fusion(), activations_fused, full_check);
    fb.allow_winograd(options.winograd);
    const passes::shape_lookup shape_of_activation = [this](const std::string& name) -> const shape_t* {
        auto it = acts.find(name);
        return it == acts.end() ? nullptr : &it->second.shape;
    };
    std::vector<node> compiled; // the nodes that became ops; the folded ones became constants
    // A worklist: a lowered node (graph/lowering.hpp) is replaced in place by the nodes it becomes.
    std::deque<node> pending(g.nodes.begin(), g.nodes.end());
    while (!pending.empty()) {
        const node n = std::move(pending.front());
        pending.pop_front();
        std::optional<std::vector<constant>> folded;
        std::optional<std::vector<node>> lowered;
        try {
            folded = passes::fold_node(n, g, shape_of_activation);
            if (!folded) lowered = passes::lower_node(n, g, shape_of_activation);
        } catch (const error& e) {
            rethrow_with_source(e, g.source);
        }
        if (folded) {
            for (size_t i = 0; i < n.outputs.size(); ++i)
                if (!n.outputs[i].empty()) g.constants[n.outputs[i]] = std::move((*folded)[i]);
            ++folded_nodes;
            continue;
        }
        if (lowered) {
            pending.insert(pending.begin(), lowered->begin(), lowered->end());
            continue;
        }
        std::unique_ptr<ops::op> o;
        try {
            o = ops::make_op(n);
        } catch (const unsupported_error& e) {
            throw unsupported_error(fmt::format("{}: {}", g.source, e.what()));
        }
        fb.set_node(&o->spec());
        try {
            o->build_forward(fb);
        } catch (const dnnl::error& e) {
            throw unsupported_error(fmt::format("{}: oneDNN cannot build it: {}", n.describe(), e.what()));
        } catch (const std::out_of_range&) {
            throw model_error(fmt::format("{}: too few inputs", n.describe()));
        }
        for (const auto& out : n.outputs)
            if (!out.empty() && acts.count(out)) tensor_names.push_back(out); // (Dropout's unread mask is never defined)
        ops.push_back(std::move(o));
        compiled.push_back(n);
        // An output the op leaves undefined (nothing reads it: Dropout's mask) is not part of the
        // compiled graph, so that every output of model() is a tensor the network computes.
        for (auto& out : compiled.back().outputs)
            if (!out.empty() && !acts.count(out)) out.clear();
    }
    g.nodes = std::move(compiled);
    fused_away = fb.absorbed_tensors();
    bounds = fb.bounds();
    if (g.outputs.empty()) throw model_error(fmt::format("{}: the graph has no output", g.source));
    for (const auto& out : g.outputs)
        if (!acts.count(out.name)) throw model_error(fmt::format("{}: graph output '{}' is never computed", g.source, out.name));
    // The outputs in C order, converted by steps of the forward plan (no primitive per call).
    for (const auto& out : g.outputs) {
        const engine::activation& a = acts.at(out.name);
        const dnnl::memory::desc plain = engine::plain_desc(a.shape);
        if (a.mem.get_desc() == plain) {
            outputs_plain.push_back(a.mem);
        } else {
            outputs_plain.push_back(buffers->allocate(eng, plain));
            engine::add_reorder(forward_steps, a.mem, outputs_plain.back(), "output " + out.name);
        }
    }
    output_name = probability_name = g.outputs.front().name;
    score_name = score_tensor_of(g);
}

std::set<std::string> network::impl::kept_under_fusion() const {
    std::set<std::string> kept{input_name};
    for (const std::string& name : options.keep) {
        kept.insert(name);
        for (const node& n : g.nodes) // a node's name stands for its outputs (as in tensor_name_of)
            if (n.name == name) kept.insert(n.outputs.begin(), n.outputs.end());
    }
    // The class scores are read by every saliency request: the input of a final softmax stays.
    if (!g.outputs.empty()) kept.insert(score_tensor_of(g));
    return kept;
}

void network::impl::require_stored(const std::string& tensor) const {
    if (!fused_away.count(tensor)) return;
    throw input_error(fmt::format(
        "{}: tensor '{}' is not stored: fusion applied the layer after it in place (a batch norm folded into the "
        "convolution before it, or an activation applied by that convolution); keep it with engine_options::keep "
        "(deepinside does so for --layer and --wrt), or compile with engine_options::fuse = false",
        g.source, tensor));
}

const std::string& network::impl::tensor_name_of(const std::string& name) const {
    if (auto it = acts.find(name); it != acts.end()) return it->first;
    for (const node& n : g.nodes)
        if (n.name == name && !n.outputs.empty())
            if (auto it = acts.find(n.outputs.front()); it != acts.end()) return it->first;
    std::vector<std::string> names;
    for (const auto& [tensor_name, a] : acts) names.push_back(tensor_name);
    for (const node& n : g.nodes)
        if (!n.name.empty()) names.push_back(n.name);
    throw input_error(fmt::format("{}: no tensor or node named '{}'; nearest: '{}' (`deepinside info` lists them all)", g.source,
                                  name, fmt::join(nearest_names(name, names), "', '")));
}

network::network(const graph& g, const shape_t& input_shape, const engine_options& options)
    : impl_(std::make_unique<impl>(g, input_shape, options)) {}
network::network(graph&& g, const shape_t& input_shape, const engine_options& options)
    : impl_(std::make_unique<impl>(std::move(g), input_shape, options)) {}
network::~network() = default;

const shape_t& network::input_shape() const { return impl_->input_shape; }
int network::threads() const { return impl_->threads; }
const graph& network::model() const { return impl_->g; }
size_t network::folded_nodes() const { return impl_->folded_nodes; }
const std::string& network::input_name() const { return impl_->input_name; }
const std::vector<std::string>& network::tensor_names() const { return impl_->tensor_names; }
shape_t network::shape_of(const std::string& name) const { return impl_->act(name).shape; }
const std::string& network::output_tensor() const { return impl_->output_name; }
const std::string& network::score_tensor() const { return impl_->score_name; }
const std::string& network::probability_tensor() const { return impl_->probability_name; }

std::vector<tensor> network::forward(const tensor& input) {
    if (input.shape != impl_->input_shape)
        throw input_error(fmt::format("input of shape {} given to a network compiled for {}", to_string(input.shape),
                                      to_string(impl_->input_shape)));
    require_finite(input, fmt::format("{}: input '{}'", impl_->g.source, impl_->input_name));
    const engine::thread_scope scope(impl_->threads);
    dnnl::memory& m = impl_->acts[impl_->input_name].mem;
    std::memcpy(m.get_data_handle(), input.data.data(), input.data.size() * sizeof(float));
    impl_->forward_done = false;
    engine::run_steps(impl_->forward_steps, impl_->stream);
    std::vector<tensor> outs;
    for (size_t i = 0; i < impl_->g.outputs.size(); ++i) {
        tensor t(impl_->acts.at(impl_->g.outputs[i].name).shape);
        std::memcpy(t.data.data(), impl_->outputs_plain[i].get_data_handle(), t.data.size() * sizeof(float));
        outs.push_back(std::move(t));
    }
    impl_->check_forward(outs);
    impl_->forward_done = true;
    return outs;
}

tensor network::read(const std::string& name) const {
    impl_->require_stored(impl_->tensor_name_of(name));
    const engine::thread_scope scope(impl_->threads); // the first read of a tensor creates its reorder
    return impl_->read(name);
}

void network::prepare_backward(size_t requests, const std::string& wrt) {
    const engine::thread_scope scope(impl_->threads);
    impl_->plan_for(impl_->score_name, wrt.empty() ? impl_->input_name : wrt, static_cast<int64_t>(std::max<size_t>(requests, 1)));
}

void network::release_backward_plans() { impl_->plans.clear(); }

std::vector<tensor> network::backward(const std::vector<backward_request>& requests, const std::string& wrt) {
    const engine::thread_scope scope(impl_->threads);
    return impl_->backward(requests, wrt);
}

} // namespace deepinside
