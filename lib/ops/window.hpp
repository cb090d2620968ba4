#pragma once
// Output size and padding of a sliding window over the two spatial axes, as ONNX defines it for
// Conv, MaxPool and AveragePool (pads, strides, dilations, auto_pad, ceil_mode), translated into
// the explicit left/right padding oneDNN takes.
#include <deepinside/graph.hpp>

namespace deepinside::ops {

struct window {
    int64_t kernel[2]{1, 1};
    int64_t stride[2]{1, 1};
    int64_t dilation[2]{1, 1};
    int64_t pad_begin[2]{0, 0};  ///< as declared (or derived from auto_pad)
    int64_t pad_end[2]{0, 0};    ///< as declared
    int64_t pad_end_eff[2]{0, 0};///< what oneDNN needs to produce `out` (ceil_mode may add to pad_end)
    int64_t out[2]{1, 1};

    /// Reads kernel_shape (or `kernel_hw` when the op has weights), strides, dilations, pads,
    /// auto_pad and ceil_mode from `n` for an input of spatial size `in_hw`. Throws model_error
    /// naming the node for invalid values (non-positive sizes, an empty output).
    static window from_node(const node& n, const int64_t in_hw[2], const int64_t* kernel_hw, bool allow_ceil);

    /// oneDNN's dims: dilation counted from 0.
    std::vector<int64_t> dnnl_dilation() const { return {dilation[0] - 1, dilation[1] - 1}; }
    bool ceil_padding_added() const { return pad_end_eff[0] > pad_end[0] || pad_end_eff[1] > pad_end[1]; }
};

} // namespace deepinside::ops
