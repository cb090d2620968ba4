// Picture geometry before image_to_tensor: resizing (plain bilinear, or PIL's antialiased bilinear),
// centre cropping, and the preprocessing presets built from them (prepare_image).
#include "io/raster.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace deepinside {

namespace {

constexpr int64_t max_pixels = int64_t{1} << 28;

void check_size(int width, int height, const char* what) {
    if (width <= 0 || height <= 0 || int64_t(width) * height > max_pixels)
        throw input_error(
            fmt::format("{}: size {}x{} is not positive or above {} pixels", what, width, height, max_pixels));
}

// ---- PIL's antialiased bilinear resampling (Pillow's libImaging/Resample.c) -------------------

/// Pillow's fixed point for 8-bit images: weights carry 22 fraction bits, so a sum of up to a few
/// hundred 8-bit samples fits in 32 bits.
constexpr int precision_bits = 32 - 8 - 2;

/// For each output index along one axis: the first source index, the number of taps and the taps'
/// fixed-point weights (max_taps per output index, unused ones zero).
struct resample_taps {
    std::vector<int> first, count;
    std::vector<int64_t> weights;
    int max_taps = 0;
};

/// Pillow's precompute_coeffs with the bilinear (triangle) filter followed by normalize_coeffs_8bpc:
/// the filter is stretched by the downscale factor, centred on (out + 0.5) * scale, cut to the
/// source and normalised to sum 1, then rounded to fixed point.
resample_taps pil_bilinear_taps(int src_size, int dst_size) {
    const double scale = double(src_size) / dst_size;
    const double filter_scale = std::max(scale, 1.0);
    const double support = 1.0 * filter_scale; // the triangle's support is 1
    resample_taps taps;
    taps.max_taps = int(std::ceil(support)) * 2 + 1;
    taps.first.resize(size_t(dst_size));
    taps.count.resize(size_t(dst_size));
    taps.weights.assign(size_t(dst_size) * size_t(taps.max_taps), 0);
    std::vector<double> w(size_t(taps.max_taps));
    for (int d = 0; d < dst_size; ++d) {
        const double centre = (d + 0.5) * scale;
        // Pillow truncates with a C cast (towards zero) before clamping; both bounds round the same way.
        const int lo = std::max(int(centre - support + 0.5), 0);
        const int hi = std::min(int(centre + support + 0.5), src_size);
        const int n = hi - lo;
        double total = 0;
        for (int k = 0; k < n; ++k) {
            const double x = std::fabs((k + lo - centre + 0.5) / filter_scale);
            w[size_t(k)] = x < 1.0 ? 1.0 - x : 0.0;
            total += w[size_t(k)];
        }
        int64_t* dst = taps.weights.data() + size_t(d) * size_t(taps.max_taps);
        for (int k = 0; k < n; ++k) {
            const double normalised = total != 0.0 ? w[size_t(k)] / total : w[size_t(k)];
            dst[k] = int64_t(normalised * (1 << precision_bits) + (normalised < 0 ? -0.5 : 0.5));
        }
        taps.first[size_t(d)] = lo;
        taps.count[size_t(d)] = n;
    }
    return taps;
}

uint8_t clip_fixed_point(int64_t sum) {
    if (sum <= 0) return 0;
    return uint8_t(std::min<int64_t>(sum >> precision_bits, 255));
}

/// One pass of Pillow's resampling along one axis of an interleaved 8-bit image. `along_x` resizes
/// the width (rows stay), otherwise the height.
image pil_resample_axis(const image& src, int dst_size, bool along_x) {
    const int src_size = along_x ? src.width : src.height;
    const resample_taps taps = pil_bilinear_taps(src_size, dst_size);
    image dst{along_x ? dst_size : src.width, along_x ? src.height : dst_size, src.channels, {}};
    dst.pixels.resize(size_t(dst.width) * size_t(dst.height) * size_t(dst.channels));
    const auto channels = size_t(src.channels);
    // Steps between neighbouring samples along the resized axis and across it, in bytes.
    const size_t step = along_x ? channels : size_t(src.width) * channels;
    const size_t lines = size_t(along_x ? src.height : src.width);
    const size_t src_line_step = along_x ? size_t(src.width) * channels : channels;
    const size_t dst_line_step = along_x ? size_t(dst.width) * channels : channels;
    const size_t dst_step = along_x ? channels : size_t(dst.width) * channels;
    for (size_t line = 0; line < lines; ++line) {
        const uint8_t* src_line = src.pixels.data() + line * src_line_step;
        uint8_t* dst_line = dst.pixels.data() + line * dst_line_step;
        for (int d = 0; d < dst_size; ++d) {
            const int64_t* w = taps.weights.data() + size_t(d) * size_t(taps.max_taps);
            const uint8_t* first = src_line + size_t(taps.first[size_t(d)]) * step;
            for (size_t c = 0; c < channels; ++c) {
                int64_t sum = int64_t{1} << (precision_bits - 1); // rounds the final shift to nearest
                for (int k = 0; k < taps.count[size_t(d)]; ++k) sum += first[size_t(k) * step + c] * w[k];
                dst_line[size_t(d) * dst_step + c] = clip_fixed_point(sum);
            }
        }
    }
    return dst;
}

/// PIL's Image.resize(size, BILINEAR): the width first, then the height, each pass rounded to
/// 8 bits as Pillow does; an axis that keeps its size is not resampled.
image pil_resize_bilinear(const image& img, int width, int height) {
    image dst = img.width != width ? pil_resample_axis(img, width, true) : img;
    if (dst.height != height) dst = pil_resample_axis(dst, height, false);
    return dst;
}

/// The bilinear resize of image_to_tensor, channel by channel, rounded to 8 bits.
image plain_resize_bilinear(const image& img, int width, int height) {
    const size_t src_pixels = size_t(img.width) * size_t(img.height), dst_pixels = size_t(width) * size_t(height);
    const auto channels = size_t(img.channels);
    image dst{width, height, img.channels, std::vector<uint8_t>(dst_pixels * channels)};
    std::vector<float> src_plane(src_pixels), dst_plane(dst_pixels);
    for (size_t c = 0; c < channels; ++c) {
        for (size_t i = 0; i < src_pixels; ++i) src_plane[i] = img.pixels[i * channels + c];
        io_detail::resize_bilinear(src_plane.data(), img.height, img.width, dst_plane.data(), height, width);
        for (size_t i = 0; i < dst_pixels; ++i)
            dst.pixels[i * channels + c] = uint8_t(std::clamp(std::lround(dst_plane[i]), 0L, 255L));
    }
    return dst;
}

// ---- Centre crop ------------------------------------------------------------------------------

/// Where torchvision's CenterCrop starts the window along one axis (negative: zero padding before).
int crop_start(int size, int crop) {
    if (crop > size) return -((crop - size) / 2);
    // int(round((size - crop) / 2.0)) with Python's round, which takes a half to the even neighbour.
    const int excess = size - crop;
    int start = excess / 2;
    if (excess % 2 == 1 && start % 2 == 1) ++start;
    return start;
}

const char* mode_name(geometry_options::resize_mode mode) {
    switch (mode) {
    case geometry_options::resize_mode::stretch:
        return "stretch";
    case geometry_options::resize_mode::shorter:
        return "shorter";
    case geometry_options::resize_mode::none:
        return "none";
    }
    return "unknown";
}

void check_geometry(const geometry_options& g, int net_width, int net_height) {
    if (net_width == 0 || net_width < -1 || net_height == 0 || net_height < -1)
        throw input_error(
            fmt::format("image geometry: network input size {}x{}: each side must be positive, or -1 where "
                        "the model leaves it open",
                        net_width, net_height));
    if (g.crop_width < 0 || g.crop_height < 0 || (g.crop_width > 0) != (g.crop_height > 0))
        throw input_error(fmt::format("image geometry: centre crop {}x{}: give both sides, positive (or neither)",
                                      g.crop_width, g.crop_height));
    const bool shorter = g.resize == geometry_options::resize_mode::shorter;
    if (shorter && g.shorter_side <= 0)
        throw input_error(fmt::format(
            "image geometry: resize 'shorter' needs the shorter side's length, positive; got {}", g.shorter_side));
    if (!shorter && g.shorter_side != 0)
        throw input_error(fmt::format("image geometry: a shorter side ({}) is given but resize is '{}'; it is used by "
                                      "resize 'shorter' only",
                                      g.shorter_side, mode_name(g.resize)));
}

} // namespace

image resize_image(const image& img, int width, int height, bool antialias) {
    io_detail::check_image_layout(img, "resize_image");
    check_size(width, height, "resize_image");
    return antialias ? pil_resize_bilinear(img, width, height) : plain_resize_bilinear(img, width, height);
}

image crop_center(const image& img, int width, int height) {
    io_detail::check_image_layout(img, "crop_center");
    check_size(width, height, "crop_center");
    const int left = crop_start(img.width, width), top = crop_start(img.height, height);
    const auto channels = size_t(img.channels);
    image dst{width, height, img.channels, std::vector<uint8_t>(size_t(width) * size_t(height) * channels, 0)};
    // Only the part of the window inside the picture is copied; the rest stays zero (the padding).
    const int x_from = std::max(0, -left), x_to = std::min(width, img.width - left);
    for (int y = std::max(0, -top); y < std::min(height, img.height - top); ++y) {
        const uint8_t* src =
            img.pixels.data() + (size_t(y + top) * size_t(img.width) + size_t(x_from + left)) * channels;
        std::copy(src, src + size_t(x_to - x_from) * channels,
                  dst.pixels.data() + (size_t(y) * size_t(width) + size_t(x_from)) * channels);
    }
    return dst;
}

prepared_image prepare_image(const image& img, const geometry_options& g, int net_width, int net_height) {
    io_detail::check_image_layout(img, "prepare_image");
    check_geometry(g, net_width, net_height);

    int resized_width = img.width, resized_height = img.height;
    switch (g.resize) {
    case geometry_options::resize_mode::stretch:
        if (net_width > 0) resized_width = net_width;
        if (net_height > 0) resized_height = net_height;
        break;
    case geometry_options::resize_mode::shorter: {
        // torchvision's Resize(int): the shorter side (the width when square) gets the length, the
        // longer one int(length * long / short), truncated.
        const int short_side = std::min(img.width, img.height), long_side = std::max(img.width, img.height);
        const double long_length = double(g.shorter_side) * long_side / short_side;
        if (long_length > double(max_pixels))
            throw input_error(
                fmt::format("image geometry: resizing {}x{} to a shorter side of {} gives more than {} pixels",
                            img.width, img.height, g.shorter_side, max_pixels));
        const int new_long = int(long_length);
        resized_width = img.width <= img.height ? g.shorter_side : new_long;
        resized_height = img.width <= img.height ? new_long : g.shorter_side;
        break;
    }
    case geometry_options::resize_mode::none:
        break;
    }
    check_size(resized_width, resized_height, "image geometry: resized picture");

    const bool cropped = g.crop_width > 0;
    const int fed_width = cropped ? g.crop_width : resized_width, fed_height = cropped ? g.crop_height : resized_height;
    if ((net_width > 0 && fed_width != net_width) || (net_height > 0 && fed_height != net_height))
        throw input_error(fmt::format(
            "image geometry: resize '{}'{} turns the {}x{} picture into {}x{}, but the network takes "
            "{}x{} (width x height; -1: any)",
            mode_name(g.resize), cropped ? fmt::format(" and a {}x{} centre crop", g.crop_width, g.crop_height) : "",
            img.width, img.height, fed_width, fed_height, net_width, net_height));

    prepared_image prepared;
    prepared.fed = resized_width == img.width && resized_height == img.height
                       ? img
                       : resize_image(img, resized_width, resized_height, g.antialias);
    const int left = cropped ? crop_start(resized_width, fed_width) : 0;
    const int top = cropped ? crop_start(resized_height, fed_height) : 0;
    if (cropped) prepared.fed = crop_center(prepared.fed, fed_width, fed_height);
    // Both resamplers map the resized picture's edges onto the original's, so a resized pixel edge
    // at u lies at u * original / resized.
    const double sx = double(img.width) / resized_width, sy = double(img.height) / resized_height;
    prepared.x0 = left * sx;
    prepared.x1 = (left + fed_width) * sx;
    prepared.y0 = top * sy;
    prepared.y1 = (top + fed_height) * sy;
    return prepared;
}

} // namespace deepinside
