#pragma once
// What a Conv (or an Add, Sub, Mul, Div) may apply of the node that alone reads its output
// (engine_options::fuse), so that the tensor between them is neither stored nor passed over: an
// inference batch norm, folded into a Conv's weights and bias, and then an activation whose backward
// the fused output still answers, applied as a oneDNN post-op. Each function lives beside the op it
// stands for (norm.cpp, eltwise.cpp).
#include "engine/builders.hpp"

#include <deepinside/graph.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#include <optional>
#include <string>
#include <vector>

namespace deepinside::ops {

/// Inference batch norm as the per-channel map y = x scale + shift, in double.
struct channel_affine {
    std::vector<double> scale, shift;
};

/// `bn`'s map over `channels` channels, when it is an inference BatchNormalization with constant
/// parameters of that length; else nullopt, with the reason in `why` (the op's own error message).
std::optional<channel_affine> batch_norm_affine(const node& bn, const graph& g, int64_t channels, std::string& why);

/// Appends `consumer` to `po` when it is a Relu, or a Clip with constant bounds, and returns
/// whether it did. Only these: their backward reads their input through a test its output answers
/// alike (x > 0 iff relu(x) > 0; a < x < b iff a < clip(x) < b), so the input need not be stored.
bool append_activation(const node& consumer, const graph& g, dnnl::post_ops& po);

} // namespace deepinside::ops
