#pragma once
/// Image-specific class saliency (the paper's section 3.1): the map of a signal at the input.
#include <deepinside/tensor.hpp>

namespace deepinside {

/// The paper's map of a signal [N, C, H, W]: per image and pixel, the maximum over channels of
/// |signal| (max, not sum), shape [N, H, W]. A signal of another rank (a vector input) maps to
/// |signal| with its shape kept. Throws input_error for a signal without a batch axis.
tensor saliency_map(const tensor& signal);

} // namespace deepinside
