#include "ops/registry.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

namespace deepinside::ops {

// TEMPORARY list until the op families register their factories here.
const std::vector<op_support>& supported_ops() {
    static const std::vector<op_support> table = {
        {"Add", 1, 21}, {"AveragePool", 1, 21}, {"BatchNormalization", 1, 21}, {"Clip", 1, 21},
        {"Concat", 1, 21}, {"Constant", 1, 21}, {"Conv", 1, 21}, {"Div", 1, 21}, {"Dropout", 1, 21},
        {"Elu", 1, 21}, {"Flatten", 1, 21}, {"Gemm", 1, 21}, {"GlobalAveragePool", 1, 21},
        {"GlobalMaxPool", 1, 21}, {"Identity", 1, 21}, {"LeakyRelu", 1, 21}, {"LogSoftmax", 1, 21},
        {"LRN", 1, 21}, {"MatMul", 1, 21}, {"MaxPool", 1, 21}, {"Mul", 1, 21}, {"Pad", 1, 21},
        {"ReduceMean", 1, 21}, {"Relu", 1, 21}, {"Reshape", 1, 21}, {"Selu", 1, 21}, {"Sigmoid", 1, 21},
        {"Softmax", 1, 21}, {"Squeeze", 1, 21}, {"Sub", 1, 21}, {"Tanh", 1, 21}, {"Unsqueeze", 1, 21},
    };
    return table;
}

std::string supported_op_list() {
    std::string out;
    for (const auto& s : supported_ops()) out += (out.empty() ? "" : ", ") + std::string(s.op_type);
    return out;
}

void check_supported(const node& n) {
    if (n.domain.empty() || n.domain == "ai.onnx")
        for (const auto& s : supported_ops())
            if (n.op_type == s.op_type && n.opset >= s.min_opset && n.opset <= s.max_opset) return;
    throw unsupported_error(fmt::format("{} is not supported; supported ops: {}", n.describe(), supported_op_list()));
}

} // namespace deepinside::ops
