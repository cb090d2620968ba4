#include "ops/window.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

namespace deepinside::ops {

window window::from_node(const node& n, const int64_t in_hw[2], const int64_t* kernel_hw, bool allow_ceil) {
    window w;
    std::vector<int64_t> ks = n.get_ints("kernel_shape", {});
    if (kernel_hw) {
        if (!ks.empty() && (ks.size() != 2 || ks[0] != kernel_hw[0] || ks[1] != kernel_hw[1]))
            throw model_error(fmt::format("{}: kernel_shape contradicts the weights' shape", n.describe()));
        ks = {kernel_hw[0], kernel_hw[1]};
    }
    if (ks.size() != 2) throw unsupported_error(fmt::format("{}: only 2-D windows are supported (kernel_shape has {} values)", n.describe(), ks.size()));
    auto two = [&](const char* attr, int64_t fallback) {
        auto v = n.get_ints(attr, {fallback, fallback});
        if (v.size() != 2) throw model_error(fmt::format("{}: attribute '{}' needs 2 values, has {}", n.describe(), attr, v.size()));
        return v;
    };
    auto strides = two("strides", 1), dil = two("dilations", 1);
    auto pads = n.get_ints("pads", {0, 0, 0, 0});
    if (pads.size() != 4) throw model_error(fmt::format("{}: attribute 'pads' needs 4 values, has {}", n.describe(), pads.size()));
    const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
    const bool ceil_mode = n.get_int("ceil_mode", 0) != 0;
    if (ceil_mode && !allow_ceil) throw model_error(fmt::format("{}: ceil_mode is not an attribute of this op", n.describe()));
    if (n.get_int("storage_order", 0) != 0)
        throw unsupported_error(fmt::format("{}: storage_order=1 (column-major indices) is not supported", n.describe()));

    for (int i = 0; i < 2; ++i) {
        w.kernel[i] = ks[i];
        w.stride[i] = strides[i];
        w.dilation[i] = dil[i];
        if (ks[i] < 1 || strides[i] < 1 || dil[i] < 1)
            throw model_error(fmt::format("{}: kernel, strides and dilations must be positive", n.describe()));
        if (in_hw[i] < 1) throw model_error(fmt::format("{}: empty spatial input", n.describe()));
        const int64_t extent = (ks[i] - 1) * dil[i] + 1;
        if (auto_pad == "NOTSET") {
            w.pad_begin[i] = pads[i];
            w.pad_end[i] = pads[i + 2];
            if (pads[i] < 0 || pads[i + 2] < 0) throw model_error(fmt::format("{}: negative pads", n.describe()));
            const int64_t span = in_hw[i] + pads[i] + pads[i + 2] - extent;
            if (span < 0) throw model_error(fmt::format("{}: the window is larger than the padded input", n.describe()));
            if (ceil_mode) {
                w.out[i] = (span + strides[i] - 1) / strides[i] + 1;
                // The last window must start inside the input or the left padding (PyTorch's rule, ONNX's reference).
                if ((w.out[i] - 1) * strides[i] >= in_hw[i] + pads[i]) --w.out[i];
            } else {
                w.out[i] = span / strides[i] + 1;
            }
        } else if (auto_pad == "VALID") {
            if (in_hw[i] < extent) throw model_error(fmt::format("{}: the window is larger than the input", n.describe()));
            w.out[i] = (in_hw[i] - extent) / strides[i] + 1;
        } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            w.out[i] = (in_hw[i] + strides[i] - 1) / strides[i];
            const int64_t total = std::max<int64_t>(0, (w.out[i] - 1) * strides[i] + extent - in_hw[i]);
            const int64_t small = total / 2, large = total - small;
            w.pad_begin[i] = auto_pad == "SAME_UPPER" ? small : large;
            w.pad_end[i] = auto_pad == "SAME_UPPER" ? large : small;
        } else {
            throw model_error(fmt::format("{}: unknown auto_pad '{}'", n.describe(), auto_pad));
        }
        if (w.out[i] < 1) throw model_error(fmt::format("{}: empty output", n.describe()));
        // oneDNN derives the output size as floor((in + pl + pr - extent) / stride) + 1.
        w.pad_end_eff[i] = (w.out[i] - 1) * strides[i] + extent - in_hw[i] - w.pad_begin[i];
        if (w.pad_end_eff[i] < w.pad_end[i]) w.pad_end_eff[i] = w.pad_end[i];
        while ((in_hw[i] + w.pad_begin[i] + w.pad_end_eff[i] - extent) / strides[i] + 1 > w.out[i]) --w.pad_end_eff[i];
    }
    return w;
}

} // namespace deepinside::ops
