#pragma once
// ONNX Slice's arithmetic (Slice-13): which element each sliced axis starts at, its step and how many
// elements it takes, from starts / ends / axes / steps. One answer for the constant folder and the
// engine's Slice, which read those lists from different places.
#include <deepinside/graph.hpp>

#include <vector>

namespace deepinside::passes {

struct slice_extent {
    std::vector<int64_t> start; ///< first element per axis of the input (0 where not sliced)
    std::vector<int64_t> step;  ///< per axis (1 where not sliced; negative walks backwards)
    shape_t shape;              ///< the output's shape
};

/// Empty `axes` means 0, 1, ...; empty `steps` means 1. Negative starts and ends count from the end,
/// out-of-range ones are clamped. Throws model_error naming the node for lists of different
/// lengths, an axis out of range or given twice, and a step of 0.
slice_extent resolve_slice(const node& n, const shape_t& shape, const std::vector<int64_t>& starts,
                           const std::vector<int64_t>& ends, std::vector<int64_t> axes, std::vector<int64_t> steps);

} // namespace deepinside::passes
