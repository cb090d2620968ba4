#pragma once
/// Readable pictures of saliency maps: how a signal [N, C, H, W] becomes one map per image, the value
/// shown at full colour, colormaps for non-negative and signed maps, overlays, and panels of captioned
/// tiles. Every function checks its input and throws input_error naming the function and the rule.
#include <deepinside/io.hpp>
#include <deepinside/tensor.hpp>

#include <string>
#include <vector>

namespace deepinside {

/// How the channels of a signal are combined into one value per pixel.
enum class map_reduction { max_abs, sum_abs, signed_sum, positive };

/// "max-abs", "sum-abs", "signed", "positive"; anything else throws input_error listing the choices.
map_reduction parse_map_reduction(const std::string& name);

/// The spelling parse_map_reduction reads.
const char* to_string(map_reduction r);

/// signal [N, C, H, W] -> map [N, H, W]:
///   max-abs  = max_c |s| (the paper's, the same as saliency_map),
///   sum-abs  = sum_c |s|,
///   signed   = sum_c s (positive and negative evidence kept apart; show with heatmap_style::is_signed),
///   positive = max(sum_c s, 0).
/// Throws input_error for another rank, a shape that does not match the data, or NaN/infinity.
tensor reduce_map(const tensor& signal, map_reduction r);

/// The value shown at full colour: the `percentile`-th percentile (0 < percentile <= 100, linear
/// interpolation between order statistics as numpy.percentile's default) of |map| over all its
/// elements; 100 gives the maximum. 0 when the map is all zero. A percentile below 100 keeps a few
/// extreme pixels from darkening the rest of the picture.
/// Throws input_error for an empty map, NaN/infinity in it, or a percentile outside (0, 100].
float display_scale(const tensor& map, float percentile);

/// How heatmap colours a map.
struct heatmap_style {
    /// "" = inferno for non-negative maps, coolwarm for signed ones; also viridis, gray, coolwarm, inferno.
    std::string colormap = "";
    /// Signed maps: -scale..scale mapped through the colormap with 0 in the middle (white-grey in
    /// coolwarm). Otherwise 0..scale, negative values shown as 0.
    bool is_signed = false;
    /// The value at full colour (values beyond are clipped); 0: the map's own maximum |value|.
    float scale = 0;
};

/// Colours a map of shape [H, W] as an RGB image of W x H. Colormaps: inferno (the 17 samples of
/// matplotlib's table that heatmap(map) uses), viridis (matplotlib's 256 entries), gray (black to
/// white) and coolwarm (Kenneth Moreland's diverging map, 33 nodes computed by his Msh interpolation
/// between (59, 76, 192) and (180, 4, 38), as matplotlib's table), all interpolated linearly.
/// An all-zero map (with scale 0) shows the colour of 0: the colormap's start, or its middle when signed.
/// Throws input_error for another rank, an empty map, NaN/infinity, an unknown colormap (listing the
/// choices) or a negative or non-finite scale.
image heatmap(const tensor& map, const heatmap_style& style);

/// Blends `heat` over `base`: (1 - alpha) * base + alpha * heat, rounded. `heat` is first brought to
/// base's size (resize_image: bilinear, antialiased when it shrinks on either axis). Grey inputs are
/// expanded; the result is RGB. Throws input_error for a bad image or alpha outside [0, 1].
image overlay_image(const image& base, const image& heat, float alpha);

/// Tiles side by side, left to right, all brought to the first tile's height (aspect kept, width
/// rounded, antialiased when shrinking) and separated by `gap` white pixels. `captions` is empty or
/// has one entry per tile ("" for none); when any caption is given, a 12-pixel white band under the
/// tiles holds each caption in black, centred under its tile, in a built-in 5x7 bitmap font (6 pixels
/// per character): lower-case letters (upper case is drawn as lower case), digits, space and
/// . - _ : ( ) , / ; — any other character is drawn as a box. A caption wider than its tile widens the
/// tile's column (the tile is centred in it) rather than being cut. Returns an RGB image.
/// Throws input_error for no tiles, a bad tile, a caption count that does not match, a negative gap
/// or a result above 2^28 pixels.
image panel(const std::vector<image>& tiles, const std::vector<std::string>& captions, int gap = 4);

/// `img` scaled down so its longer side is max_side (the other rounded, at least 1), antialiased;
/// returned unchanged when its longer side is already at most max_side. Throws input_error for a bad
/// image or max_side <= 0.
image fit_within(const image& img, int max_side);

} // namespace deepinside
