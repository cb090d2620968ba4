#include "ops/registry.hpp"

#include "ops/op.hpp"
#include "graph/constant_folding.hpp"
#include "graph/lowering.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/rules.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace deepinside::ops {

// The op families' factories, each defined in its family's file (forward and backward side by side).
std::unique_ptr<op> make_conv(const node& n);
std::unique_ptr<op> make_conv_transpose(const node& n);
std::unique_ptr<op> make_max_pool(const node& n);
std::unique_ptr<op> make_average_pool(const node& n);
std::unique_ptr<op> make_global_pool(const node& n);
std::unique_ptr<op> make_reduce_mean(const node& n);
std::unique_ptr<op> make_relu(const node& n);
std::unique_ptr<op> make_eltwise(const node& n);
std::unique_ptr<op> make_gemm(const node& n);
std::unique_ptr<op> make_matmul(const node& n);
std::unique_ptr<op> make_binary(const node& n);
std::unique_ptr<op> make_reshape_like(const node& n);
std::unique_ptr<op> make_identity(const node& n);
std::unique_ptr<op> make_concat(const node& n);
std::unique_ptr<op> make_batch_norm(const node& n);
std::unique_ptr<op> make_lrn(const node& n);
std::unique_ptr<op> make_layer_norm(const node& n);
std::unique_ptr<op> make_softmax(const node& n);
std::unique_ptr<op> make_pad(const node& n);
std::unique_ptr<op> make_transpose(const node& n);
std::unique_ptr<op> make_slice(const node& n);
std::unique_ptr<op> make_split(const node& n);
std::unique_ptr<op> make_gather(const node& n);
std::unique_ptr<op> make_expand(const node& n);
std::unique_ptr<op> make_where(const node& n);
std::unique_ptr<op> make_resize(const node& n);

namespace {

using rules::behaviour;
using rules::deconvnet_layer;
using rules::exact_backward;
using rules::nonrelu_backward;

struct op_entry {
    op_support support;
    op_factory make;
    rules::op_rules rules; ///< how its backward depends on the rule, and which DeconvNet layer it is
};

// The one table, one row per ONNX op type: its opset range, the family that implements it, and what
// the gradient, DeconvNet and guided rules do there (rules.hpp) — the answer the engine applies, the
// verifier predicts from and the README's "Rules per op" table shows. Nodes computing on constants
// only never reach it (graph/constant_folding.hpp evaluates them), nor do Constant nodes (the reader
// reads them as constants).
constexpr op_entry entries[] = {
    {{"Add", 7, 21}, make_binary, {"Add", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"AveragePool", 7, 21}, make_average_pool, {"AveragePool", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"BatchNormalization", 7, 21}, make_batch_norm, {"BatchNormalization", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Clip", 6, 21}, make_eltwise, {"Clip", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Concat", 4, 21}, make_concat, {"Concat", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Conv", 1, 21}, make_conv, {"Conv", behaviour::exact, deconvnet_layer::convolution, "the transposed convolution (flipped filters)"}},
    {{"ConvTranspose", 1, 21}, make_conv_transpose, {"ConvTranspose", behaviour::exact, deconvnet_layer::convolution, "the convolution with the same filters (its transpose)"}},
    {{"Div", 7, 21}, make_binary, {"Div", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Dropout", 7, 21}, make_identity, {"Dropout", behaviour::exact, deconvnet_layer::reshape, "passes the signal (inference: identity)"}},
    {{"Elu", 6, 21}, make_eltwise, {"Elu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Erf", 9, 21}, make_eltwise, {"Erf", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Expand", 8, 21}, make_expand, {"Expand", behaviour::exact, deconvnet_layer::none, "routes the signal back (sums it over the broadcast axes)"}},
    {{"Flatten", 1, 21}, make_reshape_like, {"Flatten", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"}},
    {{"Gather", 1, 21}, make_gather, {"Gather", behaviour::exact, deconvnet_layer::none, "routes the signal back to the gathered positions (repeats add up)"}},
    {{"Gelu", 20, 21}, make_eltwise, {"Gelu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Gemm", 7, 21}, make_gemm, {"Gemm", behaviour::exact, deconvnet_layer::fully_connected, "multiplication by the transposed weights"}},
    {{"GlobalAveragePool", 1, 21}, make_global_pool, {"GlobalAveragePool", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"GlobalMaxPool", 1, 21}, make_global_pool, {"GlobalMaxPool", behaviour::exact, deconvnet_layer::max_pooling, "unpooling to the first maximum"}},
    {{"HardSigmoid", 6, 21}, make_eltwise, {"HardSigmoid", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"HardSwish", 14, 21}, make_eltwise, {"HardSwish", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Identity", 1, 21}, make_identity, {"Identity", behaviour::exact, deconvnet_layer::reshape, "passes the signal"}},
    {{"LayerNormalization", 17, 21}, make_layer_norm, {"LayerNormalization", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"LeakyRelu", 6, 21}, make_eltwise, {"LeakyRelu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"LogSoftmax", 1, 21}, make_softmax, {"LogSoftmax", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"LRN", 1, 21}, make_lrn, {"LRN", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"MatMul", 1, 21}, make_matmul, {"MatMul", behaviour::exact, deconvnet_layer::fully_connected, "multiplication by the transposed weights"}},
    {{"MaxPool", 1, 21}, make_max_pool, {"MaxPool", behaviour::exact, deconvnet_layer::max_pooling, "unpooling to the first maximum of each window"}},
    {{"Mul", 7, 21}, make_binary, {"Mul", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Pad", 2, 21}, make_pad, {"Pad", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Pow", 7, 21}, make_eltwise, {"Pow", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"PRelu", 7, 21}, make_eltwise, {"PRelu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"ReduceMean", 1, 21}, make_reduce_mean, {"ReduceMean", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Relu", 6, 21}, make_relu, {"Relu", behaviour::relu, deconvnet_layer::rectification, "relu of the signal coming back (ignores the input)"}},
    {{"Reshape", 5, 21}, make_reshape_like, {"Reshape", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"}},
    {{"Resize", 10, 21}, make_resize, {"Resize", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Selu", 6, 21}, make_eltwise, {"Selu", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Sigmoid", 6, 21}, make_eltwise, {"Sigmoid", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Slice", 1, 21}, make_slice, {"Slice", behaviour::exact, deconvnet_layer::none, "routes the signal back into the sliced positions (zero elsewhere)"}},
    {{"Softmax", 1, 21}, make_softmax, {"Softmax", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Split", 2, 21}, make_split, {"Split", behaviour::exact, deconvnet_layer::none, "routes each part's signal back into its place"}},
    {{"Sqrt", 6, 21}, make_eltwise, {"Sqrt", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Squeeze", 1, 21}, make_reshape_like, {"Squeeze", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"}},
    {{"Sub", 7, 21}, make_binary, {"Sub", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Tanh", 6, 21}, make_eltwise, {"Tanh", behaviour::nonrelu, deconvnet_layer::none, nonrelu_backward}},
    {{"Transpose", 1, 21}, make_transpose, {"Transpose", behaviour::exact, deconvnet_layer::none, "routes the signal back (transposes it)"}},
    {{"Unsqueeze", 1, 21}, make_reshape_like, {"Unsqueeze", behaviour::exact, deconvnet_layer::reshape, "reshapes the signal"}},
    {{"Upsample", 7, 9}, make_resize, {"Upsample", behaviour::exact, deconvnet_layer::none, exact_backward}},
    {{"Where", 9, 21}, make_where, {"Where", behaviour::exact, deconvnet_layer::none, "routes the signal back to the branch each element came from"}},
};

const op_entry* find(const node& n) {
    if (!n.domain.empty() && n.domain != "ai.onnx") return nullptr;
    for (const auto& e : entries)
        if (n.op_type == e.support.op_type && n.opset >= e.support.min_opset && n.opset <= e.support.max_opset) return &e;
    return nullptr;
}

} // namespace

const std::vector<op_support>& supported_ops() {
    static const std::vector<op_support> list = [] {
        std::vector<op_support> out;
        for (const auto& e : entries) out.push_back(e.support);
        return out;
    }();
    return list;
}

std::string supported_op_list() {
    std::string out;
    for (const auto& s : supported_ops()) out += (out.empty() ? "" : ", ") + std::string(s.op_type);
    return out;
}

void check_supported(const node& n) {
    if (!find(n) && !passes::constant_only_op(n) && !passes::lowered_op(n))
        throw unsupported_error(
            fmt::format("{} is not supported; supported ops: {}", n.describe(), supported_op_list()));
}

std::unique_ptr<op> make_op(const node& n) {
    const op_entry* e = find(n);
    if (!e && passes::constant_only_op(n))
        throw unsupported_error(fmt::format(
            "{} reads an activation; the engine evaluates {} only on constants, at compile time (shape and mask "
            "arithmetic)",
            n.describe(), n.op_type));
    if (!e) check_supported(n);
    return e->make(n);
}

} // namespace deepinside::ops

namespace deepinside::rules {

const std::vector<op_rules>& table() {
    static const std::vector<op_rules> rows = [] {
        std::vector<op_rules> out;
        for (const auto& e : ops::entries) out.push_back(e.rules);
        return out;
    }();
    return rows;
}

const op_rules* find(std::string_view op_type) {
    for (const auto& e : ops::entries)
        if (e.rules.op_type == op_type) return &e.rules;
    return nullptr;
}

} // namespace deepinside::rules
