#pragma once
// Pixel-level helpers shared by preprocessing and heatmaps.
#include <deepinside/io.hpp>

#include <cstdint>
#include <string>

namespace deepinside::io_detail {

/// Throws input_error, prefixed by `what`, unless `img` has positive size, 1 or 3 channels and
/// exactly width * height * channels bytes.
void check_image_layout(const image& img, const std::string& what);

/// Bilinear resize of one row-major float plane, half-pixel centres, no antialiasing: the same
/// arithmetic as PyTorch's upsample_bilinear2d with align_corners=false.
void resize_bilinear(const float* src, int64_t src_height, int64_t src_width, float* dst, int64_t dst_height,
                     int64_t dst_width);

} // namespace deepinside::io_detail
