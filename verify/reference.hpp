#pragma once
/// The independent reference: a plain double-precision interpreter of `deepinside::graph`, forward
/// and backward, written without oneDNN so that it can certify the fast engine. Every op follows the
/// ONNX operator specification for the opsets the graph declares; speed is not a goal.
#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>
#include <deepinside/tensor.hpp>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace deepinside::verify {

/// A double tensor in C order; `data` holds element_count(shape) values (a scalar has shape {}).
struct dtensor {
    shape_t shape;
    std::vector<double> data;

    dtensor() = default;
    /// Zero-filled tensor of `s`.
    explicit dtensor(shape_t s);
    /// Throws input_error when `d` does not hold element_count(s) values.
    dtensor(shape_t s, std::vector<double> d);
    int64_t size() const { return static_cast<int64_t>(data.size()); }
};

dtensor to_double(const tensor& src);
/// Rounds every value to the nearest float.
tensor to_float(const dtensor& src);

/// The reference interpreter of one graph. Holds a copy of the graph; immutable after construction,
/// so one instance may serve several threads.
class reference_network {
public:
    /// Checks that the graph has exactly one real input, that every node is an op of the default
    /// ONNX domain the reference knows, and that every input that depends on the network input is one
    /// the reference can differentiate. Throws unsupported_error / model_error naming the node.
    explicit reference_network(const graph& g);

    /// Name of the graph's (only) input.
    const std::string& input_name() const;
    /// The graph's first output.
    const std::string& output_tensor() const;
    /// The input of a final Softmax/LogSoftmax (the class scores), else the first output.
    const std::string& score_tensor() const;

    /// Runs every node on `input` (any shape the graph accepts; declared shapes are not trusted) and
    /// returns every activation by name: the input, every node output (and so the graph's outputs).
    /// Constants are not included.
    std::map<std::string, dtensor> forward(const dtensor& input) const;
    /// The same forward pass keeping only what is still to be read: returns activation `wanted`, and
    /// fills `decisions` (when given) as decisions() would from the whole pass. For repeated
    /// evaluations of one tensor (finite differences): a whole VGG-16 pass in double is 0.2 GB.
    dtensor forward_to(const dtensor& input, const std::string& wanted,
                       std::vector<std::vector<int64_t>>* decisions = nullptr) const;

    /// Propagates `seed` = d f / d `from` (same shape as that activation) backwards through the nodes
    /// between `from` and `wrt` under `rule`, summing over fan-out, and returns the signal at `wrt`
    /// ("" = the network input), shaped like that activation. `activations` must come from forward().
    /// A `wrt` that `from` does not depend on yields zeros. Under deconvnet/guided, a nonlinearity
    /// other than ReLU throws unsupported_error naming the node when `policy` is refuse.
    dtensor backward(const std::map<std::string, dtensor>& activations, const std::string& from, const dtensor& seed,
                     backward_rule rule, nonrelu_policy policy = nonrelu_policy::refuse,
                     const std::string& wrt = "") const;

    /// The backward of one node under `rule`: from `diff_dst` = d f / d (its first output) to d f / d
    /// each input that is a differentiable activation; other entries are empty (shape {} and no data).
    std::vector<dtensor> node_backward(const node& n, const std::map<std::string, dtensor>& activations,
                                       const dtensor& diff_dst, backward_rule rule,
                                       nonrelu_policy policy = nonrelu_policy::refuse) const;

    /// The graph as the reference holds it: nodes, inputs, outputs and the constants' names and
    /// shapes; their values are held in double only (constant()).
    const graph& model() const { return graph_; }
    /// A constant of the graph in double (integers converted exactly); nullptr for other names.
    const dtensor* constant(const std::string& name) const;

    /// Where two forward passes of one input lead backward to different discrete decisions (for
    /// example the engine's f32 activations, widened, against the reference's own double ones): one
    /// entry per node whose backward takes such decisions (ReLU and LeakyReLU signs, Clip regions,
    /// max-pool switches), in graph order, with how many it takes and in how many the two differ.
    struct decision_difference {
        std::string node;
        std::string op_type;
        int64_t decisions = 0;
        int64_t differing = 0;
    };
    std::vector<decision_difference> compare_decisions(const std::map<std::string, dtensor>& a,
                                                       const std::map<std::string, dtensor>& b) const;
    /// The decisions themselves, one vector per decision-taking node in graph order (the encoding of
    /// decision_fn in ref_ops.hpp): kept instead of a whole forward pass to compare two points later.
    std::vector<std::vector<int64_t>> decisions(const std::map<std::string, dtensor>& activations) const;

private:
    /// The node's inputs: activations from `acts`, constants from the graph, nullptr where omitted.
    std::vector<const dtensor*> inputs_of(const node& n, const std::map<std::string, dtensor>& acts) const;

    graph graph_;
    std::map<std::string, dtensor> constants_; ///< the graph's constants in double (ints converted exactly)
    std::string score_tensor_;
};

/// Central difference of f(x) = <seed, activation `from`>(x) along input coordinate `coordinate`:
/// (f(x + h e_i) - f(x - h e_i)) / 2h. Used to certify gradients of whole graphs.
double finite_difference(const reference_network& net, const dtensor& input, const std::string& from,
                         const dtensor& seed, size_t coordinate, double h);

} // namespace deepinside::verify
