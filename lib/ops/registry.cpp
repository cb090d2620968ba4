#include "ops/registry.hpp"

#include "ops/op.hpp"
#include "graph/constant_folding.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/rules.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace deepinside::ops {

namespace {

struct op_entry {
    op_support support;
    op_factory make;
};

// The one table: ONNX op type and opset range → the family that implements it.
// Constant nodes never reach it: the reader folds them into the graph's constants.
constexpr op_entry entries[] = {
    {{"Add", 7, 21}, make_binary},
    {{"AveragePool", 7, 21}, make_average_pool},
    {{"BatchNormalization", 7, 21}, make_batch_norm},
    {{"Clip", 6, 21}, make_eltwise},
    {{"Concat", 4, 21}, make_concat},
    {{"Conv", 1, 21}, make_conv},
    {{"ConvTranspose", 1, 21}, make_conv_transpose},
    {{"Div", 7, 21}, make_binary},
    {{"Dropout", 7, 21}, make_identity},
    {{"Elu", 6, 21}, make_eltwise},
    {{"Erf", 9, 21}, make_eltwise},
    {{"Expand", 8, 21}, make_expand},
    {{"Flatten", 1, 21}, make_reshape_like},
    {{"Gather", 1, 21}, make_gather},
    {{"Gelu", 20, 21}, make_eltwise},
    {{"Gemm", 7, 21}, make_gemm},
    {{"GlobalAveragePool", 1, 21}, make_global_pool},
    {{"GlobalMaxPool", 1, 21}, make_global_pool},
    {{"HardSigmoid", 6, 21}, make_eltwise},
    {{"HardSwish", 14, 21}, make_eltwise},
    {{"Identity", 1, 21}, make_identity},
    {{"LayerNormalization", 17, 21}, make_layer_norm},
    {{"LeakyRelu", 6, 21}, make_eltwise},
    {{"LogSoftmax", 1, 21}, make_softmax},
    {{"LRN", 1, 21}, make_lrn},
    {{"MatMul", 1, 21}, make_matmul},
    {{"MaxPool", 1, 21}, make_max_pool},
    {{"Mul", 7, 21}, make_binary},
    {{"Pad", 2, 21}, make_pad},
    {{"Pow", 7, 21}, make_eltwise},
    {{"PRelu", 7, 21}, make_eltwise},
    {{"ReduceMean", 1, 21}, make_reduce_mean},
    {{"Relu", 6, 21}, make_relu},
    {{"Reshape", 5, 21}, make_reshape_like},
    {{"Resize", 10, 21}, make_resize},
    {{"Selu", 6, 21}, make_eltwise},
    {{"Sigmoid", 6, 21}, make_eltwise},
    {{"Slice", 1, 21}, make_slice},
    {{"Softmax", 1, 21}, make_softmax},
    {{"Split", 2, 21}, make_split},
    {{"Sqrt", 6, 21}, make_eltwise},
    {{"Squeeze", 1, 21}, make_reshape_like},
    {{"Sub", 7, 21}, make_binary},
    {{"Tanh", 6, 21}, make_eltwise},
    {{"Transpose", 1, 21}, make_transpose},
    {{"Unsqueeze", 1, 21}, make_reshape_like},
    {{"Upsample", 7, 9}, make_resize},
    {{"Where", 9, 21}, make_where},
};

// How an op behaves under the gradient, DeconvNet and guided rules is declared in rules::table, the
// one answer the engine, the verifier and the README share: an op without a row there cannot be
// registered here.
static_assert(std::all_of(std::begin(entries), std::end(entries),
                          [](const op_entry& e) { return rules::has_row(e.support.op_type); }),
              "every op in the registry needs its row in rules::table (include/deepinside/rules.hpp)");

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
    if (!find(n) && !passes::constant_only_op(n))
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
