#pragma once
// The two build contexts an op family sees: forward_builder while the forward plan is compiled
// (once per model and input shape) and backward_builder while a backward plan is compiled (once per
// number of stacked requests). Ops create every primitive and buffer through them; running a plan
// only executes the recorded steps.
#include "engine/memory.hpp"

#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#include <functional>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace deepinside::engine {

/// One recorded action of a plan: a primitive with its arguments, or a host loop.
struct step {
    dnnl::primitive primitive;
    std::unordered_map<int, dnnl::memory> args;
    std::function<void()> host; ///< when set, runs instead of the primitive
    std::string origin;         ///< the node it came from, for error messages
};

using step_list = std::vector<step>;

/// A forward activation: its logical shape and the memory (layout chosen by its producer).
struct activation {
    shape_t shape;
    dnnl::memory mem;
};

/// What proves a tensor that fusion does not store finite from tensors the check scans (under
/// finite_check::all): every value v of `tensor` obeys |v| <= gain * (the sum over `inputs` of their
/// largest magnitude) + offset. A convolution's output: the largest L1 norm of a filter, the largest
/// bias; a sum's: 1 over both operands. Float rounding adds a relative (1 + 2^-24) per operation,
/// which the check's margin (half the float range) covers.
struct magnitude_bound {
    std::string tensor;
    std::vector<std::string> inputs;
    double gain = 1, offset = 0;
};

class forward_builder {
public:
    forward_builder(const graph& g, const dnnl::engine& eng, buffer_arena& arena, std::map<std::string, activation>& acts,
                    step_list& steps)
        : g_(g), eng_(eng), arena_(arena), acts_(acts), steps_(steps) {}

    const dnnl::engine& eng() const { return eng_; }
    const graph& model() const { return g_; }
    void set_node(const node* n) { node_ = n; }

    bool has_input(size_t i) const;                 ///< the node's input i exists and is not ""
    bool is_constant(const std::string& name) const { return g_.find_constant(name) != nullptr; }
    /// The constant feeding input i of the current node; model_error when it is an activation.
    const constant& constant_input(size_t i, const char* role) const;
    const activation& input(size_t i) const;         ///< the activation feeding input i
    const shape_t& input_shape(size_t i) const;      ///< shape of input i (activation or constant)
    /// Input i as memory in layout `want`, reordering once at run time when its layout differs.
    dnnl::memory input_as(size_t i, const dnnl::memory::desc& want);
    dnnl::memory input_plain(size_t i);

    /// A constant as a plain f32 memory of `shape` (same element count as the constant).
    dnnl::memory constant_memory(const constant& c, const shape_t& shape) const;
    dnnl::memory constant_memory(const std::vector<float>& values, const shape_t& shape) const;
    /// A buffer of `d` that lives as long as the network (in its buffer_arena).
    dnnl::memory allocate(const dnnl::memory::desc& d) const { return arena_.allocate(eng_, d); }
    /// Reorders a constant memory into `want` now (weights are converted once, at compile time).
    dnnl::memory convert_now(const dnnl::memory& src, const dnnl::memory::desc& want) const {
        return reorder_now(eng_, src, want, arena_);
    }

    void define_output(size_t i, shape_t shape, dnnl::memory mem);
    void add(dnnl::primitive p, std::unordered_map<int, dnnl::memory> args);
    void add_host(std::function<void()> fn);

    // Fusion (engine_options::fuse): a producer applying its tensor's one consumer itself.
    /// Turns fusion on, with the tensors that must stay readable (kept names, graph outputs);
    /// `activations`: whether an activation may be applied by its producer. `bounds_needed` (every
    /// tensor is checked for NaN and infinity): a ReLU maps NaN and -inf to 0, so a producer applying
    /// one must give a magnitude_bound for the tensor it no longer stores, or not fuse.
    void enable_fusion(std::set<std::string> kept, bool activations, bool bounds_needed);
    bool fuses_activations() const { return fuse_activations_; }
    bool needs_bounds() const { return bounds_needed_; }
    void bound(magnitude_bound b) { bounds_.push_back(std::move(b)); }
    const std::vector<magnitude_bound>& bounds() const { return bounds_; }
    /// Whether convolutions may run Winograd's algorithm (engine_options::winograd).
    void allow_winograd(bool allowed) { winograd_ = allowed; }
    bool winograd_allowed() const { return winograd_; }
    /// The node reading `tensor` when its producer may apply that node itself: fusion is on, the
    /// tensor is not kept, and exactly one input of one node reads it, that node's first (its data
    /// input). nullptr otherwise.
    const node* sole_consumer(const std::string& tensor) const;
    /// Records that the producer of `tensor` applied its sole consumer: the tensor's memory holds the
    /// consumer's result, and the consumer's op (asking absorbed()) passes that memory on.
    void absorb(const std::string& tensor) { absorbed_.insert(tensor); }
    bool absorbed(const std::string& tensor) const { return absorbed_.count(tensor) != 0; }
    /// The tensors fused away, which hold a later tensor's values (not readable, see engine_options::fuse).
    const std::set<std::string>& absorbed_tensors() const { return absorbed_; }

private:
    const graph& g_;
    dnnl::engine eng_;
    buffer_arena& arena_;
    std::map<std::string, activation>& acts_;
    step_list& steps_;
    const node* node_ = nullptr;
    std::map<std::pair<std::string, std::string>, dnnl::memory> reordered_; // (tensor, layout) → copy
    bool fuse_ = false, fuse_activations_ = false, bounds_needed_ = false, winograd_ = false;
    std::set<std::string> kept_, absorbed_;
    std::vector<magnitude_bound> bounds_;
    std::map<std::string, std::vector<std::pair<const node*, size_t>>> readers_; ///< tensor → (node, input slot)
};

/// Per-slice rules of a running backward pass: slice k of the stacked batch uses rules[k].
using rule_slices = std::vector<backward_rule>;

class backward_builder {
public:
    backward_builder(const dnnl::engine& eng, buffer_arena& arena, const std::map<std::string, activation>& acts, int64_t stack,
                     const rule_slices& rules, step_list& steps, step_list& prologue)
        : eng_(eng), arena_(arena), acts_(acts), stack_(stack), rules_(rules), steps_(steps), prologue_(prologue) {}

    const dnnl::engine& eng() const { return eng_; }
    int64_t stack() const { return stack_; }
    /// The rules of the running pass, one per stacked slice; read by host loops at run time.
    const rule_slices& rules() const { return rules_; }
    void set_node(const node* n) { node_ = n; }
    const node& current() const { return *node_; }

    const activation& forward_value(const std::string& name) const;
    /// The batch-N memory of a forward activation stacked `stack` times (copied at the start of each pass).
    dnnl::memory stacked_forward(const std::string& name);
    dnnl::memory stacked(const dnnl::memory& batch_n_memory);
    /// The stacked descriptor of a forward activation's layout.
    dnnl::memory::desc diff_desc(const std::string& name) const;
    /// Whether the signal must reach this tensor (it is an activation between target and wrt).
    bool wants_diff(const std::string& name) const { return wanted_.count(name) != 0; }

    /// The complete signal at `name` (sums the contributions of all its consumers), stacked layout.
    dnnl::memory diff(const std::string& name);
    dnnl::memory diff_as(const std::string& name, const dnnl::memory::desc& want);
    /// Records `m` (stacked, any layout) as one consumer's contribution to the signal at `name`.
    void contribute(const std::string& name, const dnnl::memory& m);
    /// Seeds the signal at `name` with `m` (the target).
    void seed(const std::string& name, const dnnl::memory& m) {
        finished_[name] = m;
        order_.emplace_back(name, m);
    }
    /// Every complete signal of the plan (stacked, in its own layout), in the order the pass computes
    /// them: the target first, then from the target back. For the non-finite search.
    const std::vector<std::pair<std::string, dnnl::memory>>& signals_in_order() const { return order_; }

    /// A buffer of `d` that lives as long as the network (in its buffer_arena).
    dnnl::memory allocate(const dnnl::memory::desc& d) const { return arena_.allocate(eng_, d); }
    /// Reorders a constant memory into `want` now (the backward's weight layouts, once per plan).
    dnnl::memory convert_now(const dnnl::memory& src, const dnnl::memory::desc& want) const {
        return reorder_now(eng_, src, want, arena_);
    }
    void add(dnnl::primitive p, std::unordered_map<int, dnnl::memory> args);
    void add_host(std::function<void()> fn);
    void set_wanted(std::map<std::string, bool> w) { wanted_ = std::move(w); }

private:
    dnnl::engine eng_;
    buffer_arena& arena_;
    const std::map<std::string, activation>& acts_;
    int64_t stack_;
    const rule_slices& rules_;
    step_list& steps_;
    step_list& prologue_;
    const node* node_ = nullptr;
    std::map<std::string, bool> wanted_;
    std::map<std::string, std::vector<dnnl::memory>> contributions_;
    std::map<std::string, dnnl::memory> finished_;
    std::vector<std::pair<std::string, dnnl::memory>> order_;
    std::map<const void*, dnnl::memory> stacked_;
};

/// Writes `src` into `dst` at run time, as a reorder step (descs may differ only in layout).
void add_reorder(step_list& steps, const dnnl::memory& src, const dnnl::memory& dst, const std::string& origin);

} // namespace deepinside::engine
