// Image -> classifier input: channel conversion, bilinear resize, normalisation.
#include "io/raster.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <string_view>

namespace deepinside {

namespace io_detail {

namespace {

/// For each destination index along one axis: the two source indices and the weight of the first.
struct axis_taps {
    std::vector<int64_t> lo, hi;
    std::vector<float> w_lo;
};

axis_taps compute_taps(int64_t src_size, int64_t dst_size) {
    axis_taps taps;
    taps.lo.resize(static_cast<size_t>(dst_size));
    taps.hi.resize(static_cast<size_t>(dst_size));
    taps.w_lo.resize(static_cast<size_t>(dst_size));
    // PyTorch computes the scale and source coordinate in float for float tensors; doing the same
    // keeps the results bit-for-bit close to torchvision's resize.
    const float scale = static_cast<float>(src_size) / static_cast<float>(dst_size);
    for (int64_t d = 0; d < dst_size; ++d) {
        const float src = std::max(scale * (static_cast<float>(d) + 0.5f) - 0.5f, 0.0f);
        const auto lo = std::min(static_cast<int64_t>(src), src_size - 1);
        const int64_t hi = lo < src_size - 1 ? lo + 1 : lo;
        const float frac = std::min(src - static_cast<float>(lo), 1.0f);
        taps.lo[size_t(d)] = lo;
        taps.hi[size_t(d)] = hi;
        taps.w_lo[size_t(d)] = 1.0f - frac;
    }
    return taps;
}

} // namespace

void resize_bilinear(const float* src, int64_t src_height, int64_t src_width, float* dst, int64_t dst_height,
                     int64_t dst_width) {
    const axis_taps ys = compute_taps(src_height, dst_height);
    const axis_taps xs = compute_taps(src_width, dst_width);
    for (int64_t y = 0; y < dst_height; ++y) {
        const float* row0 = src + ys.lo[size_t(y)] * src_width;
        const float* row1 = src + ys.hi[size_t(y)] * src_width;
        const float wy0 = ys.w_lo[size_t(y)], wy1 = 1.0f - wy0;
        float* out = dst + y * dst_width;
        for (int64_t x = 0; x < dst_width; ++x) {
            const int64_t x0 = xs.lo[size_t(x)], x1 = xs.hi[size_t(x)];
            const float wx0 = xs.w_lo[size_t(x)], wx1 = 1.0f - wx0;
            out[x] = wy0 * (wx0 * row0[x0] + wx1 * row0[x1]) + wy1 * (wx0 * row1[x0] + wx1 * row1[x1]);
        }
    }
}

} // namespace io_detail

namespace {

constexpr int64_t max_input_pixels = int64_t{1} << 28;

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

[[noreturn]] void bad_metadata(const std::string& key, const std::string& value, std::string_view rule) {
    throw input_error(fmt::format("model metadata '{}' = '{}': {}", key, value, rule));
}

float parse_number(std::string_view text, const std::string& key, const std::string& value) {
    text = trim(text);
    float v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
        bad_metadata(key, value, "expected finite numbers separated by commas, e.g. 0.485,0.456,0.406");
    return v;
}

std::vector<float> parse_numbers(const std::string& key, const std::string& value) {
    std::vector<float> numbers;
    std::string_view rest = value;
    while (true) {
        const size_t comma = rest.find(',');
        numbers.push_back(parse_number(rest.substr(0, comma), key, value));
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
    }
    return numbers;
}

void check_options(const preprocess_options& o, int64_t channels) {
    const auto check_length = [&](const std::vector<float>& v, const char* name) {
        if (v.size() != 1 && static_cast<int64_t>(v.size()) != channels)
            throw input_error(fmt::format("preprocessing {} has {} values, expected 1 or {} (one per channel)", name,
                                          v.size(), channels));
        for (float x : v)
            if (!std::isfinite(x)) throw input_error(fmt::format("preprocessing {} has a non-finite value", name));
    };
    check_length(o.mean, "mean");
    check_length(o.std, "std");
    for (float s : o.std)
        if (s == 0.0f) throw input_error("preprocessing std has a zero value");
    if (!std::isfinite(o.scale)) throw input_error("preprocessing scale is not finite");
}

} // namespace

preprocess_options preprocess_from_metadata(const std::map<std::string, std::string>& metadata_props,
                                            preprocess_options defaults) {
    preprocess_options o = std::move(defaults);
    if (const auto it = metadata_props.find("deepinside.mean"); it != metadata_props.end())
        o.mean = parse_numbers(it->first, it->second);
    if (const auto it = metadata_props.find("deepinside.std"); it != metadata_props.end()) {
        o.std = parse_numbers(it->first, it->second);
        for (float s : o.std)
            if (s == 0.0f) bad_metadata(it->first, it->second, "a standard deviation must not be zero");
    }
    if (const auto it = metadata_props.find("deepinside.scale"); it != metadata_props.end()) {
        const std::vector<float> v = parse_numbers(it->first, it->second);
        if (v.size() != 1) bad_metadata(it->first, it->second, "expected one number");
        o.scale = v[0];
    }
    if (const auto it = metadata_props.find("deepinside.channel_order"); it != metadata_props.end()) {
        const std::string_view order = trim(it->second);
        if (order == "RGB" || order == "rgb")
            o.bgr = false;
        else if (order == "BGR" || order == "bgr")
            o.bgr = true;
        else
            bad_metadata(it->first, it->second, "expected RGB or BGR");
    }
    return o;
}

tensor image_to_tensor(const image& img, int64_t channels, int64_t height, int64_t width,
                       const preprocess_options& options) {
    io_detail::check_image_layout(img, "image_to_tensor");
    if (channels != 1 && channels != 3)
        throw input_error(fmt::format("image_to_tensor: the model wants {} channels; only 1 (grey) and 3 (RGB) are supported",
                                      channels));
    if (height <= 0 || width <= 0 || height > max_input_pixels / width)
        throw input_error(fmt::format("image_to_tensor: input size {}x{} is not positive or too large", width, height));
    check_options(options, channels);

    const int64_t src_h = img.height, src_w = img.width, src_c = img.channels;
    const size_t src_pixels = size_t(src_h * src_w);
    const int64_t plane = height * width;
    tensor dst({1, channels, height, width});
    std::vector<float> src_plane(src_pixels);
    for (int64_t c = 0; c < channels; ++c) {
        const uint8_t* px = img.pixels.data();
        if (channels == 1 && src_c == 3) {
            for (size_t i = 0; i < src_pixels; ++i, px += 3)
                src_plane[i] = 0.299f * px[0] + 0.587f * px[1] + 0.114f * px[2];
        } else {
            // Grey images feed every channel; for RGB pick the model's channel (BGR reverses).
            const int64_t from = src_c == 1 ? 0 : (options.bgr ? 2 - c : c);
            for (size_t i = 0; i < src_pixels; ++i) src_plane[i] = px[i * size_t(src_c) + size_t(from)];
        }
        float* out = dst.data.data() + c * plane;
        io_detail::resize_bilinear(src_plane.data(), src_h, src_w, out, height, width);
        const float mean = options.mean.size() == 1 ? options.mean[0] : options.mean[size_t(c)];
        const float std = options.std.size() == 1 ? options.std[0] : options.std[size_t(c)];
        for (int64_t i = 0; i < plane; ++i) out[i] = (out[i] * options.scale - mean) / std;
    }
    return dst;
}

image resize_image(const image& img, int width, int height) {
    io_detail::check_image_layout(img, "resize_image");
    if (width <= 0 || height <= 0 || int64_t(width) * height > (int64_t{1} << 28))
        throw input_error(fmt::format("resize_image: size {}x{} is not positive or too large", width, height));
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

} // namespace deepinside
