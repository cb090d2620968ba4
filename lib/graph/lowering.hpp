#pragma once
// Lowering: a node rewritten, once its inputs' shapes are known, into nodes of ops the engine and the
// reference already have, so that it needs no forward, backward or reference of its own. Einsum of
// two operands becomes the matrix product it spells: Transpose and Reshape of each operand to
// [batch..., M, K] and [batch..., K, N], MatMul, and Reshape and Transpose to the output's order
// (attention in MaxViT writes "BGHID,BGHJD->BGHIJ").
#include "graph/constant_folding.hpp"

#include <deepinside/graph.hpp>

#include <optional>
#include <vector>

namespace deepinside::passes {

/// Whether nodes of this op type are lowered (so the engine supports them without an op of their own).
bool lowered_op(const node& n);

/// The nodes that replace `n`, in order, with any constants they need added to `g` (names derived
/// from the node's output, so they cannot collide); nullopt when `n` is not lowered. Throws
/// unsupported_error naming the node for a form that is not a matrix product (an index summed
/// within one operand, a repeated index, an ellipsis, more than two operands) and model_error for
/// an equation that contradicts the shapes.
std::optional<std::vector<node>> lower_node(const node& n, graph& g, const shape_lookup& shape_of);

} // namespace deepinside::passes
