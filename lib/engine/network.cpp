// The compiled network: builds every forward primitive once per input shape, and one backward plan
// per (target tensor, signal tensor, number of stacked requests), then only executes recorded steps.
#include "engine/builders.hpp"
#include "graph/passes.hpp"
#include "ops/op.hpp"
#include "ops/registry.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>
#include <deepinside/rules.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
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

std::string describe_target(const target& t, const std::string& tensor_name) {
    const std::string idx = fmt::format("{}", fmt::join(t.index, ","));
    switch (t.what) {
    case target::kind::class_score: return fmt::format("class {} of '{}'", idx, tensor_name);
    case target::kind::neuron:
        if (t.unit.empty()) return fmt::format("unit {} of '{}'", idx, tensor_name);
        return fmt::format("unit ({}) of channel {} of '{}'", fmt::join(t.unit, ","), idx, tensor_name);
    case target::kind::channel_sum: return fmt::format("the sum of channel {} of '{}'", idx, tensor_name);
    case target::kind::channel_max: return fmt::format("the largest unit of channel {} of '{}'", idx, tensor_name);
    case target::kind::tensor_sum: return fmt::format("the sum of '{}'", tensor_name);
    case target::kind::weighted_sum: return fmt::format("a weighted sum of '{}'", tensor_name);
    }
    return "?";
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

void run_steps(engine::step_list& steps, dnnl::stream& s) {
    for (auto& st : steps) {
        if (st.host) st.host();
        else st.primitive.execute(s, st.args);
    }
    s.wait();
}

/// One backward plan: everything between a target tensor and the tensor the signal is read at.
struct backward_plan {
    std::string from, wrt;
    int64_t stack = 1;
    std::unique_ptr<engine::rule_slices> rules = std::make_unique<engine::rule_slices>();
    engine::step_list prologue, steps;
    dnnl::memory seed_plain;   ///< host-filled target, stacked, C order
    dnnl::memory result_plain; ///< the signal at `wrt`, stacked, C order
    std::vector<const ops::op*> nonrelu; ///< nonlinearities without a DeconvNet/guided definition
    /// Every complete signal of the pass (stacked, in its own layout), target first: what the
    /// non-finite check scans (engine_options::check).
    std::vector<std::pair<std::string, dnnl::memory>> signals;
};


/// Whether a oneDNN memory holds a NaN or an infinity anywhere in its buffer (padding included: a
/// hit is confirmed on the C-order values before anything is reported).
bool buffer_has_non_finite(const dnnl::memory& m) {
    return first_non_finite(static_cast<const float*>(m.get_data_handle()),
                            static_cast<int64_t>(engine::byte_size(m) / sizeof(float))) >= 0;
}

} // namespace

struct network::impl {
    graph g;
    engine_options options;
    dnnl::engine eng{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{eng};
    shape_t input_shape;
    std::string input_name, output_name, score_name, probability_name;
    std::vector<std::string> tensor_names;
    std::map<std::string, engine::activation> acts;
    std::vector<std::unique_ptr<ops::op>> ops;
    engine::step_list forward_steps;
    std::vector<dnnl::memory> outputs_plain; ///< the graph's outputs in C order, filled by forward_steps
    std::vector<std::unique_ptr<backward_plan>> plans;
    std::map<std::string, dnnl::reorder> read_reorders; ///< see reorder_to_plain()
    bool forward_done = false;
    int threads = 1; ///< options.threads resolved (see default_threads())

    impl(const graph& model, const shape_t& shape, const engine_options& opts) : g(model), options(opts), input_shape(shape) {
        if (options.threads < 0)
            throw input_error(fmt::format("engine_options.threads is {}: give a positive number of threads, or 0 for the default",
                                          options.threads));
        threads = options.threads > 0 ? options.threads : default_threads();
        // Before any primitive is created: oneDNN sizes its work partitions from this count.
        omp_set_num_threads(threads);
        passes::fold_constant_identities(g);
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

        acts[input_name] = {shape, dnnl::memory(engine::plain_desc(shape), eng)};
        tensor_names.push_back(input_name);
        engine::forward_builder fb(g, eng, acts, forward_steps);
        for (const node& n : g.nodes) {
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
                if (!out.empty()) tensor_names.push_back(out);
            ops.push_back(std::move(o));
        }
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
                outputs_plain.emplace_back(plain, eng);
                engine::add_reorder(forward_steps, a.mem, outputs_plain.back(), "output " + out.name);
            }
        }
        output_name = g.outputs.front().name;
        score_name = probability_name = output_name;
        // A graph ending in Softmax/LogSoftmax is differentiated from the layer before it (the paper).
        if (auto p = g.producer_of(output_name)) {
            const node& last = g.nodes[*p];
            if (last.op_type == "Softmax" || last.op_type == "LogSoftmax") score_name = last.inputs.at(0);
        }
    }

    const engine::activation& act(const std::string& name) const {
        auto it = acts.find(name);
        if (it == acts.end()) throw input_error(fmt::format("{}: no tensor named '{}'", g.source, name));
        return it->second;
    }

    /// The reorder of an activation into C order, created on its first use and kept: read() may be
    /// called per image or per backward pass, and primitive creation costs far more than the copy.
    dnnl::reorder& reorder_to_plain(const std::string& name) {
        auto it = read_reorders.find(name);
        if (it == read_reorders.end()) {
            const engine::activation& a = act(name);
            const dnnl::reorder::primitive_desc pd(eng, a.mem.get_desc(), eng, engine::plain_desc(a.shape));
            it = read_reorders.emplace(name, dnnl::reorder(pd)).first;
        }
        return it->second;
    }

    tensor read(const std::string& name) {
        const engine::activation& a = act(name);
        dnnl::reorder& to_plain = reorder_to_plain(name);
        tensor t(a.shape);
        dnnl::memory dst(engine::plain_desc(a.shape), eng, t.data.data());
        to_plain.execute(stream, {{DNNL_ARG_FROM, a.mem}, {DNNL_ARG_TO, dst}});
        stream.wait();
        return t;
    }

    backward_plan& plan_for(const std::string& from, const std::string& wrt, int64_t stack) {
        for (auto& p : plans)
            if (p->from == from && p->wrt == wrt && p->stack == stack) return *p;
        auto p = std::make_unique<backward_plan>();
        p->from = from;
        p->wrt = wrt;
        p->stack = stack;
        p->rules->assign(static_cast<size_t>(stack), backward_rule::gradient);
        act(from);
        act(wrt);
        // A channel_max target reads `from` on every backward pass: its reorder is made with the plan.
        reorder_to_plain(from);
        // Tensors the target depends on, and tensors that depend on wrt: the plan covers both.
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

        engine::backward_builder bb(eng, acts, stack, *p->rules, p->steps, p->prologue);
        bb.set_wanted(wanted);
        const engine::activation& target = act(from);
        p->seed_plain = dnnl::memory(engine::scale_batch(engine::plain_desc(target.shape), stack), eng);
        dnnl::memory::desc seed_md = engine::scale_batch(target.mem.get_desc(), stack);
        dnnl::memory seed = p->seed_plain;
        if (!(seed_md == p->seed_plain.get_desc())) {
            seed = dnnl::memory(seed_md, eng);
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
            p->result_plain = dnnl::memory(result_md, eng);
            engine::add_reorder(p->steps, r, p->result_plain, "signal at " + wrt);
        }
        plans.push_back(std::move(p));
        return *plans.back();
    }

    /// Writes request k's target into slice k of the plan's seed.
    void fill_seed(backward_plan& p, const std::vector<backward_request>& requests) {
        const engine::activation& t = act(p.from);
        const int64_t batch = t.shape.empty() ? 1 : t.shape[0];
        const int64_t per_image = element_count(t.shape) / batch;
        auto* seed = static_cast<float*>(p.seed_plain.get_data_handle());
        std::fill_n(seed, per_image * batch * p.stack, 0.0f);
        tensor values; // forward values of the target tensor, read once if a request needs them
        for (size_t k = 0; k < requests.size(); ++k) {
            const target& tg = requests[k].what;
            if (!tg.index.empty() && tg.index.size() != 1 && static_cast<int64_t>(tg.index.size()) != batch)
                throw input_error(fmt::format("target on '{}': {} indices for a batch of {}", p.from, tg.index.size(), batch));
            for (int64_t n = 0; n < batch; ++n) {
                float* s = seed + (static_cast<int64_t>(k) * batch + n) * per_image;
                const int64_t idx = tg.index.empty() ? 0 : tg.index[tg.index.size() == 1 ? 0 : static_cast<size_t>(n)];
                const int64_t channels = t.shape.size() >= 2 ? t.shape[1] : per_image;
                const int64_t plane = t.shape.size() >= 2 ? per_image / channels : 1;
                auto check_index = [&](int64_t limit, const char* what) {
                    if (idx < 0 || idx >= limit)
                        throw input_error(fmt::format("{} {} is out of range for tensor '{}' of shape {} (0..{})", what, idx,
                                                      p.from, to_string(t.shape), limit - 1));
                };
                switch (tg.what) {
                case target::kind::class_score:
                    if (plane != 1)
                        throw input_error(fmt::format("tensor '{}' of shape {} is not a vector of class scores", p.from, to_string(t.shape)));
                    check_index(channels, "class");
                    s[idx] = 1.0f;
                    break;
                case target::kind::neuron: {
                    check_index(channels, "channel");
                    int64_t offset = idx * plane;
                    if (!tg.unit.empty()) {
                        if (t.shape.size() != 4 || tg.unit.size() != 2 || tg.unit[0] < 0 || tg.unit[0] >= t.shape[2] ||
                            tg.unit[1] < 0 || tg.unit[1] >= t.shape[3])
                            throw input_error(fmt::format("unit ({}) is outside tensor '{}' of shape {}", fmt::join(tg.unit, ","),
                                                          p.from, to_string(t.shape)));
                        offset += tg.unit[0] * t.shape[3] + tg.unit[1];
                    } else if (plane != 1) {
                        throw input_error(fmt::format("a neuron of tensor '{}' of shape {} needs a unit (y,x)", p.from, to_string(t.shape)));
                    }
                    s[offset] = 1.0f;
                    break;
                }
                case target::kind::channel_sum:
                    check_index(channels, "channel");
                    std::fill_n(s + idx * plane, plane, 1.0f);
                    break;
                case target::kind::channel_max: {
                    check_index(channels, "channel");
                    if (values.data.empty()) values = read(p.from);
                    const float* v = values.data.data() + n * per_image + idx * plane;
                    s[idx * plane + (std::max_element(v, v + plane) - v)] = 1.0f;
                    break;
                }
                case target::kind::tensor_sum:
                    std::fill_n(s, per_image, 1.0f);
                    break;
                case target::kind::weighted_sum:
                    if (static_cast<int64_t>(tg.weights.size()) != per_image * batch)
                        throw input_error(fmt::format("weighted target on '{}' of shape {}: {} weights, expected {}", p.from,
                                                      to_string(t.shape), tg.weights.size(), per_image * batch));
                    std::copy_n(tg.weights.data() + n * per_image, per_image, s);
                    break;
                }
            }
        }
    }

    /// After a forward pass: throws numerical_error when a computed value is not finite (see
    /// engine_options::check). The normal case reads the outputs (`outputs`) or every activation's
    /// buffer (`all`); only a hit searches the tensors in topological order, in C order.
    void check_forward(const std::vector<tensor>& outs) {
        bool suspect = false;
        if (options.check == finite_check::outputs)
            for (const tensor& t : outs) suspect = suspect || first_non_finite(t.data.data(), t.size()) >= 0;
        if (options.check == finite_check::all)
            for (const std::string& name : tensor_names) suspect = suspect || buffer_has_non_finite(act(name).mem);
        if (!suspect) return;
        for (const std::string& name : tensor_names) {
            const tensor t = read(name);
            const int64_t i = first_non_finite(t.data.data(), t.size());
            if (i < 0) continue;
            const auto producer = g.producer_of(name);
            throw numerical_error(fmt::format(
                "{}: tensor '{}' ({}) holds {} at {}, the first tensor in topological order with a value that is not finite "
                "(from finite input: an overflow, or weights that are not finite)",
                g.source, name, producer ? "output of " + g.nodes[*producer].describe() : std::string("the input"), t.data[size_t(i)],
                index_to_string(t.shape, i)));
        }
        // Only a layout's padding held one: no value of any tensor is affected.
    }

    /// Slice `slice` of a stacked signal of `name` (K = plan.stack slices), in C order.
    std::vector<float> signal_slice(const backward_plan& p, const std::string& name, const dnnl::memory& m, int64_t slice) {
        const shape_t& shape = act(name).shape;
        shape_t stacked = shape.empty() ? shape_t{p.stack} : shape;
        if (!shape.empty()) stacked[0] *= p.stack;
        const dnnl::memory::desc plain = engine::plain_desc(stacked);
        std::vector<float> values(static_cast<size_t>(element_count(stacked)));
        if (m.get_desc() == plain) {
            std::memcpy(values.data(), m.get_data_handle(), values.size() * sizeof(float));
        } else {
            dnnl::memory dst(plain, eng, values.data());
            dnnl::memory src = m;
            dnnl::reorder(src, dst).execute(stream, src, dst);
            stream.wait();
        }
        const auto count = static_cast<size_t>(element_count(shape));
        return std::vector<float>(values.begin() + static_cast<long>(count * size_t(slice)),
                                  values.begin() + static_cast<long>(count * size_t(slice + 1)));
    }

    /// After a backward pass: throws numerical_error when a signal is not finite (see
    /// engine_options::check), naming the first such request in the caller's order (under `outputs`,
    /// the first whose returned signal holds one), its method and target, and the first tensor of
    /// its pass (from the target back) whose signal holds one.
    void check_backward(const std::vector<backward_request>& requests, const std::vector<tensor>& results,
                        const std::vector<std::pair<backward_plan*, int64_t>>& where) {
        bool suspect = false;
        if (options.check == finite_check::outputs)
            for (const tensor& t : results) suspect = suspect || first_non_finite(t.data.data(), t.size()) >= 0;
        if (options.check == finite_check::all)
            for (const auto& [p, slice] : where)
                if (slice == 0)
                    for (const auto& sig : p->signals) suspect = suspect || buffer_has_non_finite(sig.second);
        if (!suspect) return;
        for (size_t k = 0; k < requests.size(); ++k) {
            // Under `outputs`, a request is reported only for what it returns.
            if (options.check == finite_check::outputs && first_non_finite(results[k].data.data(), results[k].size()) < 0) continue;
            const auto& [p, slice] = where[k];
            for (const auto& [name, mem] : p->signals) {
                const std::vector<float> values = signal_slice(*p, name, mem, slice);
                const int64_t i = first_non_finite(values.data(), static_cast<int64_t>(values.size()));
                if (i < 0) continue;
                throw numerical_error(fmt::format(
                    "{}: the {} signal for {} holds {} at {} of the signal at tensor '{}', the first tensor of the backward "
                    "pass (from the target back) whose signal is not finite",
                    g.source, to_string(requests[k].rule), describe_target(requests[k].what, p->from), values[size_t(i)],
                    index_to_string(act(name).shape, i), name));
            }
        }
    }

    std::vector<tensor> backward(const std::vector<backward_request>& requests, const std::string& wrt_name) {
        if (!forward_done) throw input_error("backward needs a forward pass first");
        if (requests.empty()) return {};
        const std::string wrt = wrt_name.empty() ? input_name : wrt_name;
        std::vector<tensor> results(requests.size());
        std::vector<std::pair<backward_plan*, int64_t>> where(requests.size()); // each request's plan and slice
        // Requests on the same target tensor share one stacked pass.
        std::map<std::string, std::vector<size_t>> groups;
        for (size_t k = 0; k < requests.size(); ++k)
            groups[requests[k].what.tensor.empty() ? score_name : requests[k].what.tensor].push_back(k);
        for (auto& [from, members] : groups) {
            backward_plan& p = plan_for(from, wrt, static_cast<int64_t>(members.size()));
            std::vector<backward_request> group;
            for (size_t k = 0; k < members.size(); ++k) {
                group.push_back(requests[members[k]]);
                (*p.rules)[k] = requests[members[k]].rule;
                if (requests[members[k]].rule != backward_rule::gradient && !p.nonrelu.empty() &&
                    options.nonrelu == nonrelu_policy::refuse)
                    throw unsupported_error(fmt::format(
                        "{}: the {} rule is defined for ReLU only; pass --nonrelu gradient to apply the exact derivative there",
                        p.nonrelu.front()->spec().describe(), to_string(requests[members[k]].rule)));
            }
            fill_seed(p, group);
            run_steps(p.prologue, stream);
            run_steps(p.steps, stream);
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
};

network::network(const graph& g, const shape_t& input_shape, const engine_options& options)
    : impl_(std::make_unique<impl>(g, input_shape, options)) {}
network::~network() = default;

const shape_t& network::input_shape() const { return impl_->input_shape; }
int network::threads() const { return impl_->threads; }
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
    omp_set_num_threads(impl_->threads); // this network's count, whichever network ran last on this thread
    dnnl::memory& m = impl_->acts[impl_->input_name].mem;
    std::memcpy(m.get_data_handle(), input.data.data(), input.data.size() * sizeof(float));
    impl_->forward_done = false;
    run_steps(impl_->forward_steps, impl_->stream);
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

tensor network::read(const std::string& name) const { return impl_->read(name); }

void network::prepare_backward(size_t requests, const std::string& wrt) {
    omp_set_num_threads(impl_->threads);
    impl_->plan_for(impl_->score_name, wrt.empty() ? impl_->input_name : wrt, static_cast<int64_t>(std::max<size_t>(requests, 1)));
}

void network::release_backward_plans() { impl_->plans.clear(); }

std::vector<tensor> network::backward(const std::vector<backward_request>& requests, const std::string& wrt) {
    omp_set_num_threads(impl_->threads);
    return impl_->backward(requests, wrt);
}

} // namespace deepinside
