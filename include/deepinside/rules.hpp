#pragma once
/// What every op does under the three backward rules, and what the paper's section 4 predicts for
/// it: one table keyed by ONNX op type. The engine reads it (an op type without a row cannot be
/// registered: registry.cpp checks this at compile time, and ReLU's backward takes its masks from
/// relu_masks_of), the verifier takes each layer's expected relation from it, and the README's
/// "Rules per op" table is this table. The question "what does DeconvNet do at this layer?" has
/// its one answer here.
#include <deepinside/network.hpp>

#include <iterator>
#include <string_view>

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

/// One row per op type; add a row where the op is registered (lib/ops/registry.cpp).
inline constexpr op_rules table[] = {
    {"Add", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"AveragePool", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"BatchNormalization", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Clip", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Concat", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Conv", behaviour::exact, deconvnet_layer::convolution, "the transposed convolution (flipped filters)"},
    {"ConvTranspose", behaviour::exact, deconvnet_layer::convolution, "the convolution with the same filters (its transpose)"},
    {"Div", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Dropout", behaviour::exact, deconvnet_layer::reshape, "passes the signal (inference: identity)"},
    {"Elu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Erf", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Expand", behaviour::exact, deconvnet_layer::none, "routes the signal back (sums it over the broadcast axes)"},
    {"Flatten", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"},
    {"Gather", behaviour::exact, deconvnet_layer::none, "routes the signal back to the gathered positions (repeats add up)"},
    {"Gelu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Gemm", behaviour::exact, deconvnet_layer::fully_connected, "multiplication by the transposed weights"},
    {"GlobalAveragePool", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"GlobalMaxPool", behaviour::exact, deconvnet_layer::max_pooling, "unpooling to the first maximum"},
    {"HardSigmoid", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"HardSwish", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Identity", behaviour::exact, deconvnet_layer::reshape, "passes the signal"},
    {"LayerNormalization", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"LeakyRelu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"LogSoftmax", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"LRN", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"MatMul", behaviour::exact, deconvnet_layer::fully_connected, "multiplication by the transposed weights"},
    {"MaxPool", behaviour::exact, deconvnet_layer::max_pooling, "unpooling to the first maximum of each window"},
    {"Mul", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Pad", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Pow", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"PRelu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"ReduceMean", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Relu", behaviour::relu, deconvnet_layer::rectification, "relu of the signal coming back (ignores the input)"},
    {"Reshape", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"},
    {"Resize", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Selu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Sigmoid", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Slice", behaviour::exact, deconvnet_layer::none, "routes the signal back into the sliced positions (zero elsewhere)"},
    {"Softmax", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Split", behaviour::exact, deconvnet_layer::none, "routes each part's signal back into its place"},
    {"Sqrt", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Squeeze", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"},
    {"Sub", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Tanh", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward},
    {"Transpose", behaviour::exact, deconvnet_layer::none, "routes the signal back (transposes it)"},
    {"Unsqueeze", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"},
    {"Upsample", behaviour::exact, deconvnet_layer::none, exact_backward},
    {"Where", behaviour::exact, deconvnet_layer::none, "routes the signal back to the branch each element came from"},
};

/// The row of an op type of the default ONNX domain; nullptr when it has none.
constexpr const op_rules* find(std::string_view op_type) {
    for (const op_rules& r : table)
        if (r.op_type == op_type) return &r;
    return nullptr;
}

/// Whether an op type has a row. (A function of its own, not find() != nullptr: GCC's
/// -fsanitize=undefined makes that pointer comparison unusable in a constant expression, and the
/// registry checks this in a static_assert.)
constexpr bool has_row(std::string_view op_type) {
    for (const op_rules& r : table)
        if (r.op_type == op_type) return true;
    return false;
}

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
