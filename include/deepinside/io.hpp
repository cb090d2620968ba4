#pragma once
/// Tensor and image I/O: NumPy .npy files, PNG/JPEG images, the preprocessing that turns an image
/// into a classifier's input, and heatmaps of saliency maps.
///
/// Every reader treats its file as untrusted: sizes are checked before anything is allocated and a
/// malformed file throws input_error with one line naming the file and the rule it breaks. Failures
/// of the operating system (cannot open, read or write) throw io_error naming the path. Writers
/// never leave a half-written file: they write a temporary file in the destination folder and
/// rename it over the destination only once it is complete.
#include <deepinside/tensor.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace deepinside {

// ---- NumPy .npy -------------------------------------------------------------------------------

/// Reads a .npy file holding a little-endian float32 array ('<f4') in C order, of rank 0 to 8,
/// format version 1.0, 2.0 or 3.0. The result has the file's shape (rank 0 gives shape [] and one
/// value). Any other dtype, Fortran order, a malformed header, a shape whose element count
/// overflows, or a body whose size is not exactly 4 bytes per element throws input_error.
tensor read_npy(const std::string& path);

/// Writes `t` as a version 1.0 .npy file ('<f4', C order), header padded to a multiple of 64 bytes
/// as NumPy does. Atomic: the file appears complete or not at all. Throws io_error on failure and
/// input_error when t.data does not hold element_count(t.shape) values.
void write_npy(const std::string& path, const tensor& t);

// ---- Text -------------------------------------------------------------------------------------

/// Writes `text` to `path` atomically, like write_npy (reports, JSON). Throws io_error naming the path.
void write_text(const std::string& path, const std::string& text);

// ---- Images -----------------------------------------------------------------------------------

/// An 8-bit image, interleaved HWC, row-major, no padding between rows:
/// pixels[(y * width + x) * channels + c]. channels is 1 (grey) or 3 (RGB).
struct image {
    int width = 0, height = 0, channels = 0;
    std::vector<uint8_t> pixels; ///< width * height * channels bytes
};

/// Limits that protect the readers from hostile files; both are checked before decoding.
struct image_limits {
    int64_t max_pixels = 64'000'000;      ///< width * height
    int64_t max_file_bytes = 256LL << 20; ///< size of the file on disk
};

/// Reads a PNG or JPEG file; the format is recognised by its first bytes, not its extension.
/// Decoding normalises to 8-bit grey or RGB: palettes are expanded, 16-bit samples are scaled to
/// 8 bits, and an alpha channel (or a tRNS transparency) is removed by compositing the image over
/// a white background (grey + alpha gives grey, RGB + alpha gives RGB). No gamma or colour-profile
/// correction is applied. CMYK JPEGs are refused.
/// Throws input_error for an unknown format, an image larger than the limits (checked from the
/// header, before decoding), or a corrupt or truncated file (including the damaged-data warnings
/// of libjpeg, such as "Premature end of JPEG file", and CRC or zlib checksum failures of PNG);
/// io_error when the file cannot be read.
image read_image(const std::string& path, const image_limits& limits = {});

/// Writes `img` (1 or 3 channels) as an 8-bit PNG. Atomic like write_npy. Throws input_error for
/// an inconsistent image and io_error when the file cannot be written.
void write_png(const std::string& path, const image& img);

// ---- Preprocessing ----------------------------------------------------------------------------

/// How pixels become input values: value = (pixel * scale - mean[c]) / std[c], where c counts the
/// model's channels in RGB order (BGR when `bgr`). A mean or std of one value applies to every
/// channel; otherwise it needs one value per channel.
struct preprocess_options {
    std::vector<float> mean{0.0f};
    std::vector<float> std{1.0f};
    float scale = 1.0f / 255;
    bool bgr = false;
};

/// Overrides `defaults` with the model's metadata properties, when present:
///   deepinside.mean          "0.485,0.456,0.406"  (comma-separated numbers)
///   deepinside.std           "0.229,0.224,0.225"  (non-zero)
///   deepinside.scale         "0.00392156862"
///   deepinside.channel_order "RGB" or "BGR"
/// Other keys are ignored. A malformed value throws input_error naming the key.
preprocess_options preprocess_from_metadata(const std::map<std::string, std::string>& metadata_props,
                                            preprocess_options defaults);

/// Turns `img` into a classifier input of shape [1, channels, height, width] (NCHW float32).
/// The image is resized with bilinear interpolation, half-pixel centres (align_corners=false) and
/// no antialiasing: exactly torch.nn.functional.interpolate(mode="bilinear", align_corners=False)
/// on the float image, which is also torchvision's resize(..., antialias=False) before rounding.
/// Strong downscaling therefore aliases (PIL would prefilter). Grey becomes RGB by replication;
/// RGB becomes grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B). `channels` must be 1 or 3.
/// Throws input_error for bad sizes or options (mean/std lengths, zero std).
tensor image_to_tensor(const image& img, int64_t channels, int64_t height, int64_t width,
                       const preprocess_options& options);

/// `img` resized to width x height exactly as image_to_tensor resizes (bilinear, half-pixel centres,
/// no antialiasing), rounded to 8 bits, channels kept: the picture a network of that input size was
/// fed (segment draws its masks on it). Throws input_error for a bad image or size.
image resize_image(const image& img, int width, int height);

// ---- Heatmaps ---------------------------------------------------------------------------------

/// Colours a saliency map of shape [H, W]: values are clamped below at 0 and divided by the map's
/// maximum (an all-zero or all-negative map stays 0), then mapped through matplotlib's "inferno"
/// colormap (dark purple-black at 0, pale yellow at 1; lightness increases monotonically).
/// Returns an RGB image of W x H. Throws input_error for another rank, an empty map, or a NaN or
/// infinite value.
image heatmap(const tensor& map);

/// Blends heatmap(map resized bilinearly to the base's size) over `base`:
/// dst = (1 - alpha) * base + alpha * heat. A grey base is expanded to RGB; the result is RGB.
/// `alpha` must lie in [0, 1].
image overlay(const image& base, const tensor& map, float alpha = 0.5f);

} // namespace deepinside
