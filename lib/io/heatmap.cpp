// Saliency maps as colour images.
#include "io/raster.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

namespace deepinside {

namespace {

/// matplotlib's "inferno" (Stéfan van der Walt and Nathaniel Smith, CC0), sampled at 17 of its
/// 256 published entries (indices 0, 16, ..., 240, 255; position = index / 255) and interpolated
/// linearly in between. The sampling keeps its monotonically increasing lightness.
struct colormap_node {
    float position, r, g, b;
};
constexpr std::array<colormap_node, 17> inferno{{
    {0.0f / 255, 0.001462f, 0.000466f, 0.013866f},
    {16.0f / 255, 0.042253f, 0.028139f, 0.141141f},
    {32.0f / 255, 0.129285f, 0.047293f, 0.290788f},
    {48.0f / 255, 0.238273f, 0.036621f, 0.396353f},
    {64.0f / 255, 0.341500f, 0.062325f, 0.429425f},
    {80.0f / 255, 0.441207f, 0.099338f, 0.431594f},
    {96.0f / 255, 0.540920f, 0.134729f, 0.415123f},
    {112.0f / 255, 0.640135f, 0.171438f, 0.381065f},
    {128.0f / 255, 0.735683f, 0.215906f, 0.330245f},
    {144.0f / 255, 0.822386f, 0.275197f, 0.266085f},
    {160.0f / 255, 0.894305f, 0.353399f, 0.193584f},
    {176.0f / 255, 0.946965f, 0.449191f, 0.115272f},
    {192.0f / 255, 0.978422f, 0.557937f, 0.034931f},
    {208.0f / 255, 0.987874f, 0.675267f, 0.065257f},
    {224.0f / 255, 0.974638f, 0.797692f, 0.206332f},
    {240.0f / 255, 0.947594f, 0.917399f, 0.410665f},
    {255.0f / 255, 0.988362f, 0.998364f, 0.644924f},
}};

uint8_t to_byte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.0f, 1.0f) * 255.0f)); }

/// Writes the RGB colour of `v` in [0, 1].
void colour_of(float v, uint8_t* dst) {
    size_t i = 1;
    while (i + 1 < inferno.size() && inferno[i].position < v) ++i;
    const colormap_node& a = inferno[i - 1];
    const colormap_node& b = inferno[i];
    const float t = std::clamp((v - a.position) / (b.position - a.position), 0.0f, 1.0f);
    dst[0] = to_byte(a.r + t * (b.r - a.r));
    dst[1] = to_byte(a.g + t * (b.g - a.g));
    dst[2] = to_byte(a.b + t * (b.b - a.b));
}

void check_map(const tensor& map, const char* what) {
    if (map.shape.size() != 2)
        throw input_error(fmt::format("{}: saliency map has shape {}, expected [H, W]", what, to_string(map.shape)));
    if (map.shape[0] <= 0 || map.shape[1] <= 0 || map.shape[0] > std::numeric_limits<int>::max() ||
        map.shape[1] > std::numeric_limits<int>::max())
        throw input_error(fmt::format("{}: saliency map has shape {}, expected positive sizes", what, to_string(map.shape)));
    if (element_count(map.shape) != map.size())
        throw input_error(fmt::format("{}: saliency map of shape {} holds {} values", what, to_string(map.shape), map.size()));
    for (float v : map.data)
        if (!std::isfinite(v)) throw input_error(fmt::format("{}: saliency map contains NaN or infinity", what));
}

/// Colours `values` (already checked finite) as an RGB image of width x height.
image colour_plane(const std::vector<float>& values, int height, int width) {
    float peak = 0.0f;
    for (float v : values) peak = std::max(peak, v);
    image dst;
    dst.width = width;
    dst.height = height;
    dst.channels = 3;
    dst.pixels.resize(values.size() * 3);
    for (size_t i = 0; i < values.size(); ++i) {
        const float v = peak > 0.0f ? std::max(values[i], 0.0f) / peak : 0.0f;
        colour_of(v, dst.pixels.data() + 3 * i);
    }
    return dst;
}

} // namespace

image heatmap(const tensor& map) {
    check_map(map, "heatmap");
    return colour_plane(map.data, static_cast<int>(map.shape[0]), static_cast<int>(map.shape[1]));
}

image overlay(const image& base, const tensor& map, float alpha) {
    io_detail::check_image_layout(base, "overlay");
    check_map(map, "overlay");
    if (!(alpha >= 0.0f && alpha <= 1.0f)) throw input_error(fmt::format("overlay: alpha {} is not in [0, 1]", alpha));

    std::vector<float> resized(size_t(base.width) * size_t(base.height));
    io_detail::resize_bilinear(map.data.data(), map.shape[0], map.shape[1], resized.data(), base.height, base.width);
    image dst = colour_plane(resized, base.height, base.width);
    for (size_t i = 0; i < resized.size(); ++i) {
        for (size_t c = 0; c < 3; ++c) {
            const float under = base.pixels[i * size_t(base.channels) + (base.channels == 1 ? 0 : c)];
            uint8_t& px = dst.pixels[3 * i + c];
            px = static_cast<uint8_t>(std::lround(std::clamp((1.0f - alpha) * under + alpha * px, 0.0f, 255.0f)));
        }
    }
    return dst;
}

} // namespace deepinside
