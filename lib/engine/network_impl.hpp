#pragma once
// network::impl, the compiled network. Its work is split by concern: network.cpp compiles the forward
// plan (constant folding, one op per remaining node) and reads activations; backward.cpp builds the
// backward plans (which tensors lie between a target and the tensor the signal is read at, the ops
// walked from the target back, the refusal of a rule an op has no definition for) and runs them;
// targets.cpp turns the five target kinds into the seed; finite_checks.cpp finds the first value
// that is not finite.
#include "engine/builders.hpp"
#include "ops/op.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>

#include <fmt/format.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace deepinside {

namespace engine {

/// One backward plan: everything between a target tensor and the tensor the signal is read at.
struct backward_plan {
    /// The plan's own buffers (declared first: it goes after every memory viewing it), so that
    /// network::release_backward_plans() gives them back.
    std::unique_ptr<buffer_arena> buffers = std::make_unique<buffer_arena>();
    std::string from, wrt;
    int64_t stack = 1;
    std::unique_ptr<rule_slices> rules = std::make_unique<rule_slices>();
    step_list prologue, steps;
    dnnl::memory seed_plain;   ///< host-filled target, stacked, C order
    dnnl::memory result_plain; ///< the signal at `wrt`, stacked, C order
    std::vector<const ops::op*> nonrelu; ///< nonlinearities without a DeconvNet/guided definition
    /// Every complete signal of the pass (stacked, in its own layout), target first: what the
    /// non-finite check scans (engine_options::check).
    std::vector<std::pair<std::string, dnnl::memory>> signals;
};

/// Runs recorded steps in order and waits for the stream.
void run_steps(step_list& steps, dnnl::stream& s);

} // namespace engine

struct network::impl {
    /// The forward plan's buffers (each backward plan has its own); declared first, so that it goes
    /// after every memory viewing it.
    std::unique_ptr<engine::buffer_arena> buffers = std::make_unique<engine::buffer_arena>();
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
    std::vector<std::unique_ptr<engine::backward_plan>> plans;
    std::map<std::string, dnnl::reorder> read_reorders; ///< see reorder_to_plain()
    bool forward_done = false;
    size_t folded_nodes = 0; ///< nodes evaluated at compile time (see constant_folding.hpp)
    std::set<std::string> fused_away; ///< tensors fusion does not store (engine_options::fuse)
    /// Under finite_check::all, what proves each fused-away tensor before an applied activation
    /// finite from the stored ones (see check_forward).
    std::vector<engine::magnitude_bound> bounds;
    bool activations_fused = false; ///< fusion may have applied activations (recheck_unfused then helps)
    int threads = 1; ///< options.threads resolved (see default_threads())

    /// Compiles the forward plan for `shape` (network.cpp). `fuse_activations`: whether fusion
    /// (opts.fuse) may apply activations too; check_forward's second look turns it off.
    impl(graph model, const shape_t& shape, const engine_options& opts, bool fuse_activations = true);

    /// The plan for (target tensor, wrt, stacked requests), built on first use (backward.cpp).
    engine::backward_plan& plan_for(const std::string& from, const std::string& wrt, int64_t stack);

    /// Writes request k's target into slice k of the plan's seed.
    void fill_seed(engine::backward_plan& p, const std::vector<backward_request>& requests);

    /// After a forward pass: throws numerical_error when a computed value is not finite (see
    /// engine_options::check). The normal case reads the outputs (`outputs`) or every activation's
    /// buffer (`all`); only a hit searches the tensors in topological order, in C order.
    void check_forward(const std::vector<tensor>& outs);

    /// check_forward's second look when an activation was fused under finite_check::all and the
    /// check cannot prove the tensor before it finite: the same pass on a copy of the network with
    /// every activation stored, whose own check reports the first tensor that is not finite (as an
    /// unfused network would have); nothing when every value turns out finite.
    void recheck_unfused();

    /// Slice `slice` of a stacked signal of `name` (K = plan.stack slices), in C order.
    std::vector<float> signal_slice(const engine::backward_plan& p, const std::string& name, const dnnl::memory& m, int64_t slice);

    /// After a backward pass: throws numerical_error when a signal is not finite (see
    /// engine_options::check), naming the first such request in the caller's order (under `outputs`,
    /// the first whose returned signal holds one), its method and target, and the first tensor of
    /// its pass (from the target back) whose signal holds one.
    void check_backward(const std::vector<backward_request>& requests, const std::vector<tensor>& results,
                        const std::vector<std::pair<engine::backward_plan*, int64_t>>& where);

    /// Runs the requests, one stacked pass per target tensor (backward.cpp).
    std::vector<tensor> backward(const std::vector<backward_request>& requests, const std::string& wrt_name);

    /// The activation a user's name stands for: a tensor name, or the name of the node computing it
    /// (its first output), since `info` and Netron show both. Anything else throws input_error
    /// offering the nearest names (network.cpp).
    const engine::activation& act(const std::string& name) const {
        auto it = acts.find(name);
        return it != acts.end() ? it->second : acts.at(tensor_name_of(name));
    }
    /// What fusion must leave readable: the input, engine_options::keep (tensor names, and node
    /// names for their outputs) and the class scores; graph outputs are kept by the builder.
    std::set<std::string> kept_under_fusion() const;
    /// Throws input_error when fusion did not store `tensor` (a tensor name).
    void require_stored(const std::string& tensor) const;
    /// The activation tensor's name for a tensor or node name (network.cpp).
    const std::string& tensor_name_of(const std::string& name) const;

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
};

} // namespace deepinside
