#pragma once
/// What every op does under the three backward rules, and what the paper's section 4 predicts for
/// it: one row per ONNX op type, held in the engine's registry row of that op (an op cannot be
/// registered without it), read through table() and find(). The engine refuses deconvnet/guided at
/// a nonrelu op from it and ReLU's backward takes its masks from relu_masks_of; the verifier takes
/// each layer's expected relation from it; the README's "Rules per op" table is this table
/// (tools/readme_rules_table.py writes it). The question "what does DeconvNet do at this layer?"
/// has its one answer here.
#include <deepinside/network.hpp>

#include <string_view>
#include <vector>

namespace deepinside::rules {

/// How an op's backward depends on the rule.
enum class behaviour {
    exact,   ///< the exact backward under every rule (linear, piecewise-selecting, or a smooth op the
             ///< engine always differentiates exactly: LRN, softmax)
    relu,    ///< the rules differ: relu_masks_of(rule)
    nonrelu, ///< a nonlinearity with no DeconvNet/guided definition: refused under deconvnet and
             ///< guided unless nonrelu_policy::gradient asks for its exact derivative
};

/// Which layer of Zeiler and Fergus's DeconvNet the op is, which decides the paper's prediction.
enum class deconvnet_layer {
    convolution,     ///< filtering with the flipped filters: identical to the gradient
    fully_connected, ///< multiplication by the transposed weights: identical
    max_pooling,     ///< unpooling through the switches: identical (ties aside)
    rectification,   ///< relu of the reconstruction: differs from the gradient
    reshape,         ///< flattening and reshapes: identical
    none,            ///< a layer the paper does not treat: not covered
};

/// The paper's prediction for a layer: DeconvNet against the gradient.
enum class expectation { identical, differs, not_covered };

struct op_rules {
    std::string_view op_type;
    behaviour under_rules;
    deconvnet_layer layer;
    /// What the engine's deconvnet rule does at this op, in words (reports, README).
    std::string_view deconvnet_does;
};

inline constexpr std::string_view exact_backward = "its exact backward, as the gradient";
inline constexpr std::string_view nonrelu_backward =
    "refused (a nonlinearity without a DeconvNet definition); with --nonrelu gradient, its exact derivative";

/// Every op type the engine runs, with its rules: one row per op type, held in the engine's op
/// registry (lib/ops/registry.cpp) beside the family that implements it, in alphabetical order.
const std::vector<op_rules>& table();

/// The row of an op type of the default ONNX domain; nullptr when the engine has none.
const op_rules* find(std::string_view op_type);

/// The masks a ReLU's backward multiplies the signal R by: 1(X > 0) on its forward input X, 1(R > 0)
/// on the signal (the paper's section 4; Springenberg et al. for guided).
struct relu_masks {
    bool input_positive;
    bool signal_positive;
};

constexpr relu_masks relu_masks_of(backward_rule r) {
    switch (r) {
    case backward_rule::gradient: return {true, false};
    case backward_rule::deconvnet: return {false, true};
    case backward_rule::guided: return {true, true};
    }
    return {true, false};
}

constexpr expectation expected_relation(deconvnet_layer layer) {
    switch (layer) {
    case deconvnet_layer::rectification: return expectation::differs;
    case deconvnet_layer::none: return expectation::not_covered;
    default: return expectation::identical;
    }
}

constexpr std::string_view to_string(expectation e) {
    switch (e) {
    case expectation::identical: return "identical";
    case expectation::differs: return "differs";
    case expectation::not_covered: return "not-covered";
    }
    return "?";
}

constexpr std::string_view to_string(deconvnet_layer l) {
    switch (l) {
    case deconvnet_layer::convolution: return "convolution";
    case deconvnet_layer::fully_connected: return "fully connected";
    case deconvnet_layer::max_pooling: return "max pooling";
    case deconvnet_layer::rectification: return "rectification";
    case deconvnet_layer::reshape: return "reshape";
    case deconvnet_layer::none: return "none";
    }
    return "?";
}

} // namespace deepinside::rules
