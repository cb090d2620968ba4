#pragma once
// What a Conv (or an Add, Sub, Mul, Div) may apply of the node that alone reads its output
// (engine_options::fuse), so that the tensor between them is neither stored nor passed over: an
// inference batch norm, folded into a Conv's weights and bias, and then an activation whose backward
// the fused output still answers, applied as a oneDNN post-op. Each function lives beside the op it
// stands for (norm.cpp, eltwise.cpp).
#include "engine/builders.hpp"

#include <deepinside/graph.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <utility>
#include <vector>

namespace deepinside::ops {

/// Inference batch norm as the per-channel map y = x scale + shift, in double.
struct channel_affine {
    std::vector<double> scale, shift;
};

/// The map of `bn`, an inference BatchNormalization over `channels` channels. Throws
/// unsupported_error (training mode, a parameter that is not a constant) or model_error (a missing
/// parameter, one of another length), naming the node.
channel_affine batch_norm_affine(const node& bn, const graph& g, int64_t channels);

/// Clip's (min, max): attributes before opset 11, constant inputs since; an absent bound is the
/// float range's end. Throws unsupported_error for a bound that is an activation and model_error
/// for one that is not a single float, naming the node.
std::pair<float, float> clip_bounds(const node& clip, const graph& g);

/// Appends `consumer` to `po` when it is a Relu, or a Clip with constant bounds, and returns
/// whether it did (a Clip whose bounds are in error is left to its op to report). Only these: their backward reads their input through a test its output answers
/// alike (x > 0 iff relu(x) > 0; a < x < b iff a < clip(x) < b), so the input need not be stored.
bool append_activation(const node& consumer, const graph& g, dnnl::post_ops& po);

} // namespace deepinside::ops
