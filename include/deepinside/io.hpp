#pragma once
/// Tensor and image I/O: NumPy .npy files, PNG/JPEG images, the preprocessing that turns an image
/// into a classifier's input, and heatmaps of saliency maps.
///
/// Every reader treats its file as untrusted: sizes are checked before anything is allocated and a
/// malformed file throws input_error with one line naming the file and the rule it breaks. Failures
/// of the operating system (cannot open, read or write) throw io_error naming the path. Writers
/// never leave a half-written file: they write a temporary file in the destination folder and
/// rename it over the destination only once it is complete.
#include <deepinside/graph.hpp>
#include <deepinside/tensor.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace deepinside {

/// How far a writer goes before the file takes its name. `synced` (the default): the file is flushed
/// to disk first, so even a crash never leaves an empty or partial file under the final name; that
/// costs a disk flush per file. `deferred`: written and renamed at once, flushed by the system later;
/// for a run writing thousands of files, which calls sync_files() once at the end (a crash before it
/// may leave recent files empty, never half-written ones from a failed write).
enum class write_durability { synced, deferred };

/// Flushes every file written on the filesystem holding `path` (syncfs). Throws io_error.
void sync_files(const std::string& path);

// ---- NumPy .npy -------------------------------------------------------------------------------

/// Reads a .npy file holding a little-endian float32 array ('<f4') in C order, of rank 0 to 8,
/// format version 1.0, 2.0 or 3.0. The result has the file's shape (rank 0 gives shape [] and one
/// value). Any other dtype, Fortran order, a malformed header, a shape whose element count
/// overflows, or a body whose size is not exactly 4 bytes per element throws input_error.
tensor read_npy(const std::string& path);

/// Writes `t` as a version 1.0 .npy file ('<f4', C order), header padded to a multiple of 64 bytes
/// as NumPy does. Atomic: the file appears complete or not at all. Throws io_error on failure and
/// input_error when t.data does not hold element_count(t.shape) values.
void write_npy(const std::string& path, const tensor& t, write_durability durability = write_durability::synced);

// ---- Text -------------------------------------------------------------------------------------

/// Writes `text` to `path` atomically, like write_npy (reports, JSON). Throws io_error naming the path.
void write_text(const std::string& path, const std::string& text,
                write_durability durability = write_durability::synced);

// ---- Class names ------------------------------------------------------------------------------

/// A model's class names: `labels_file` (one per line) when given; else the model's
/// `deepinside.labels` metadata (comma-separated); else the file <model stem>.labels.txt beside
/// `model_path` when it exists; else none. Carriage returns and blank lines at the end of a file are
/// dropped. Throws io_error naming the file when a given one cannot be opened.
std::vector<std::string> read_class_labels(const std::string& labels_file, const std::string& model_path,
                                           const std::map<std::string, std::string>& metadata);

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
void write_png(const std::string& path, const image& img, write_durability durability = write_durability::synced);

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

/// The same values as a user typed them (a command line's --mean, --std, --scale, --channel-order;
/// "" leaves a value as in `defaults`): the same rules, but a bad value's input_error names the
/// option ("--std '0,1,1': a standard deviation must not be zero"), not the model's metadata.
preprocess_options preprocess_from_user(const std::string& mean, const std::string& std, const std::string& scale,
                                        const std::string& channel_order, preprocess_options defaults);

/// Turns `img` into a classifier input of shape [1, channels, height, width] (NCHW float32).
/// The image is resized with bilinear interpolation, half-pixel centres (align_corners=false) and
/// no antialiasing: exactly torch.nn.functional.interpolate(mode="bilinear", align_corners=False)
/// on the float image, which is also torchvision's resize(..., antialias=False) before rounding.
/// Strong downscaling therefore aliases (PIL would prefilter). Grey becomes RGB by replication;
/// RGB becomes grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B). `channels` must be 1 or 3.
/// Throws input_error for bad sizes or options (mean/std lengths, zero std).
tensor image_to_tensor(const image& img, int64_t channels, int64_t height, int64_t width,
                       const preprocess_options& options);

/// The shape [1, C, H, W] a network of model `g` is built for to classify `img`: the first input's
/// declared shape, with a symbolic (-1) batch taken as 1, symbolic channels as the image's (1 for
/// grey, 3 for RGB) and a symbolic height or width as the image's. image_to_tensor(img, C, H, W, ...)
/// then gives the network's input. Throws model_error for a graph without inputs, input_error for an
/// input that is not of rank 4 or whose batch is fixed at more than 1 (images are fed one at a time).
shape_t input_shape_for_image(const graph& g, const image& img);

/// `img` resized to width x height, rounded to 8 bits, channels kept. Without `antialias`, exactly as
/// image_to_tensor resizes (bilinear, half-pixel centres, no prefilter): the picture a network of that
/// input size was fed (segment draws its masks on it). With `antialias`, PIL's Image.resize(...,
/// BILINEAR), which torchvision's Resize applies to PIL images: a triangle filter whose support grows
/// with the downscale factor (so shrinking averages every source pixel instead of sampling two), in
/// PIL's fixed-point arithmetic, width first, then height. Throws input_error for a bad image or size.
image resize_image(const image& img, int width, int height, bool antialias = false);

/// The centre width x height window of `img`, by torchvision's CenterCrop rule: the window starts at
/// int(round((size - crop) / 2.0)) (Python's round, half to even) on each axis; on an axis where the
/// crop is larger than the image, the image is padded with zeros, (crop - size) / 2 (rounded down)
/// before it and the rest after. Throws input_error for a bad image or size.
image crop_center(const image& img, int width, int height);

/// How a picture is brought to the network's input size before image_to_tensor.
struct geometry_options {
    enum class resize_mode { stretch, shorter, none };
    resize_mode resize = resize_mode::stretch; ///< stretch: straight to the network's size (today's behaviour)
    int shorter_side = 0;                      ///< resize_mode::shorter: the shorter side's length after resizing (aspect kept)
    int crop_width = 0, crop_height = 0;       ///< centre crop after resizing; 0: no crop
    bool antialias = false;                    ///< prefilter when downscaling (as PIL and torchvision's antialias=True do)
};

/// The picture the network is fed, 8-bit, and where it lies in the original picture.
struct prepared_image {
    image fed;             ///< what image_to_tensor turns into the input (after resize and crop)
    double x0, y0, x1, y1; ///< the region of the original picture `fed` shows (pixel edges, original coordinates)
};

/// Applies `g` for a network of input size net_width x net_height (either may be -1 when the model
/// leaves it open: then the crop or the resized size decides; stretch with an open size keeps the
/// picture's size on that axis).
///   stretch: resize to the network size (resize_image, antialiased when g.antialias) unless already
///            that size;
///   shorter: the shorter side becomes shorter_side and the longer side int(shorter_side * long / short)
///            (torchvision's Resize(int) rule; a square picture becomes shorter_side square);
///   none:    no resizing;
/// then, when crop_width and crop_height are set, crop_center. The result must equal the network's size
/// on every axis the network fixes, else input_error naming both sizes (so stretch with a crop only
/// makes sense where the network leaves a size open). The region x0..x1, y0..y1 maps the resize back
/// (edges to edges, as both resamplers do) and may reach outside the picture where a crop pads.
/// Throws input_error for nonsense: a network side of 0 or below -1, a crop with only one side or a
/// negative side, shorter_side missing (<= 0) with resize shorter or set with another mode, or a
/// result above 2^28 pixels.
prepared_image prepare_image(const image& img, const geometry_options& g, int net_width, int net_height);

// ---- Heatmaps ---------------------------------------------------------------------------------
// The first heatmap and overlay; deepinside/display.hpp has the configurable ones (colormaps, signed
// maps, percentile scales, panels). Both are implemented in lib/methods/display.cpp, the one home of
// the colormaps.

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
