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

// A value's error names where it came from: the model's metadata property, or the option the user
// typed ("--std", "--channel-order"), so that a typo on the command line is not blamed on the model.
enum class value_origin { metadata, user };

[[noreturn]] void bad_value(value_origin origin, const std::string& key, const std::string& value, std::string_view rule) {
    if (origin == value_origin::user) {
        std::string option = "--" + key.substr(key.find('.') + 1);
        std::replace(option.begin(), option.end(), '_', '-');
        throw input_error(fmt::format("{} '{}': {}", option, value, rule));
    }
    throw input_error(fmt::format("model metadata '{}' = '{}': {}", key, value, rule));
}

float parse_number(std::string_view text, value_origin origin, const std::string& key, const std::string& value) {
    text = trim(text);
    float v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
        bad_value(origin, key, value, "expected finite numbers separated by commas, e.g. 0.485,0.456,0.406");
    return v;
}

std::vector<float> parse_numbers(value_origin origin, const std::string& key, const std::string& value) {
    std::vector<float> numbers;
    std::string_view rest = value;
    while (true) {
        const size_t comma = rest.find(',');
        numbers.push_back(parse_number(rest.substr(0, comma), origin, key, value));
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

namespace {

/// The values of `props` (keys deepinside.mean, .std, .scale, .channel_order) over `o`.
preprocess_options apply_values(const std::map<std::string, std::string>& props, preprocess_options o, value_origin origin) {
    if (const auto it = props.find("deepinside.mean"); it != props.end()) o.mean = parse_numbers(origin, it->first, it->second);
    if (const auto it = props.find("deepinside.std"); it != props.end()) {
        o.std = parse_numbers(origin, it->first, it->second);
        for (float s : o.std)
            if (s == 0.0f) bad_value(origin, it->first, it->second, "a standard deviation must not be zero");
    }
    if (const auto it = props.find("deepinside.scale"); it != props.end()) {
        const std::vector<float> v = parse_numbers(origin, it->first, it->second);
        if (v.size() != 1) bad_value(origin, it->first, it->second, "expected one number");
        o.scale = v[0];
    }
    if (const auto it = props.find("deepinside.channel_order"); it != props.end()) {
        const std::string_view order = trim(it->second);
        if (order == "RGB" || order == "rgb")
            o.bgr = false;
        else if (order == "BGR" || order == "bgr")
            o.bgr = true;
        else
            bad_value(origin, it->first, it->second, "expected RGB or BGR");
    }
    return o;
}

} // namespace

preprocess_options preprocess_from_metadata(const std::map<std::string, std::string>& metadata_props,
                                            preprocess_options defaults) {
    return apply_values(metadata_props, std::move(defaults), value_origin::metadata);
}

preprocess_options preprocess_from_user(const std::string& mean, const std::string& std, const std::string& scale,
                                        const std::string& channel_order, preprocess_options defaults) {
    std::map<std::string, std::string> given;
    if (!mean.empty()) given["deepinside.mean"] = mean;
    if (!std.empty()) given["deepinside.std"] = std;
    if (!scale.empty()) given["deepinside.scale"] = scale;
    if (!channel_order.empty()) given["deepinside.channel_order"] = channel_order;
    return apply_values(given, std::move(defaults), value_origin::user);
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

shape_t input_shape_for_image(const graph& g, const image& img) {
    if (g.inputs.empty()) throw model_error(fmt::format("{}: the graph has no input", g.source));
    shape_t s = g.inputs.front().shape;
    if (s.size() != 4)
        throw input_error(fmt::format("{}: input '{}' of shape {} is not an NCHW image input", g.source, g.inputs.front().name,
                                      to_string(s)));
    if (s[0] < 0) s[0] = 1;
    if (s[0] != 1) throw input_error(fmt::format("{}: input batch is fixed at {}; images are fed one at a time", g.source, s[0]));
    if (s[1] < 0) s[1] = img.channels == 1 ? 1 : 3;
    if (s[2] < 0) s[2] = img.height;
    if (s[3] < 0) s[3] = img.width;
    return s;
}

} // namespace deepinside
