#pragma once
// The one table of ops, keyed by ONNX op type and opset range. Each entry points at its family's
// factory; forward and backward of a family live side by side in that family's file.
#include <deepinside/graph.hpp>

#include <string>
#include <vector>

namespace deepinside::ops {

struct op_support {
    const char* op_type;
    int64_t min_opset;
    int64_t max_opset;
};

/// Every (op type, opset range) the engine implements, in the default ONNX domain.
const std::vector<op_support>& supported_ops();

/// "Add, AveragePool, ..." for messages.
std::string supported_op_list();

/// Throws unsupported_error naming the node, its op type and opset, and the supported list,
/// when the node's op is not in the table (or its domain is not the default one).
void check_supported(const node& n);

} // namespace deepinside::ops
