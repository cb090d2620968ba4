#pragma once
// Compile-time evaluation of the nodes that compute on constants only: the shape arithmetic
// exporters write for `x.view(x.size(0), -1)` with a dynamic batch (Shape → Gather → Unsqueeze →
// Concat → Reshape), attention masks built from ConstantOfShape/Range/Equal/Where/ScatterND, an
// Identity of a shared initializer, a class token expanded to the batch. Once the network's input
// shape is known every such value is a constant; folding them leaves the engine and the reference
// only the ops that compute on activations.
#include <deepinside/graph.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace deepinside::passes {

/// Whether the folder knows how to evaluate this op type (on constant inputs).
bool foldable_op(const node& n);

/// Whether the op type exists only as shape/mask arithmetic: the engine never runs it on
/// activations (Shape, Cast, Range, Equal, ...), so a node of it with an activation input is refused.
bool constant_only_op(const node& n);

/// Shapes of the activations computed so far; nullptr for a name that is not an activation.
using shape_lookup = std::function<const shape_t*(const std::string&)>;

/// Evaluates node `n` when every input it reads is a constant of `g` (Shape and Size only need
/// their input's shape). Returns its outputs, or nullopt when an input is an activation whose
/// value is needed. Throws model_error naming the node for invalid inputs or attributes, and
/// unsupported_error for a mode the folder does not implement.
std::optional<std::vector<constant>> fold_node(const node& n, const graph& g, const shape_lookup& activation_shape);

} // namespace deepinside::passes
