#pragma once
// Graph passes run before compiling a network.
#include <deepinside/graph.hpp>

namespace deepinside::passes {

/// Identity and Dropout nodes whose input is a constant (exporters write them for shared weights)
/// become constants themselves, so that ops see weights where they expect weights.
void fold_constant_identities(graph& g);

} // namespace deepinside::passes
