#pragma once
/// Weakly supervised segmentation from a saliency map (the paper's section 3.2): seeds from the map's
/// quantiles, a Gaussian mixture colour model per seed set, GraphCut, the largest connected component
/// and its bounding box. Defaults are those of the authors' group's MATLAB reimplementation
/// (Mahendran and Vedaldi, deconvnet_analysis, saliency/ksseg.m, called by salseg.m): quantiles 95 % /
/// 30 % for the colour models (the paper's values and ksseg.m's defaults; salseg.m's own 'sal' variant
/// passes 90 % / 30 %), hard constraints at the 99.5 % / 0.5 % quantiles, 5 + 5 Gaussians, GraphCut
/// gamma 150, the largest connected component.
///
/// How the map becomes constraints (ksseg.m's "soft labels" and "hard labels"; quantiles are
/// MATLAB's, linear between the sorted values placed at (i - 0.5) / n):
///   - foreground seeds: map >= q(fg_quantile); background seeds: map <= q(bg_quantile). They fit the
///     two colour models and are otherwise free: GraphCut may label them either way.
///   - hard constraints: the foreground seeds with map >= q(clamp_high) are fixed to the foreground,
///     the background seeds with map <= q(clamp_low) to the background. (clamp_high = fg_quantile
///     and clamp_low = bg_quantile make every seed a hard constraint.)
///   - ties: when q(fg_quantile) == q(bg_quantile) = t (a map constant over that range, e.g. zero on
///     96 % of the pixels), the seeds are map > t (foreground) and map <= t (background); when no
///     pixel exceeds t (the tie reaches the maximum), map >= t and map < t. A map with a single value
///     throws input_error. A map that is zero on 40 % of the pixels thus has all its zeros as
///     background seeds (and hard background constraints: q(0.005) is 0 too).
#include <deepinside/io.hpp>
#include <deepinside/tensor.hpp>

#include <array>
#include <cstdint>
#include <vector>

namespace deepinside {

struct segmentation_options {
    double fg_quantile = 0.95;     ///< foreground seeds: map values at or above this quantile of the image's map
    double bg_quantile = 0.30;     ///< background seeds: map values at or below this quantile
    double clamp_low = 0.005;      ///< background seeds at or below this quantile are hard constraints ("clamped")
    double clamp_high = 0.995;     ///< foreground seeds at or above this quantile are hard constraints
    int components = 5;            ///< Gaussians per colour mixture (fewer when the seeds have fewer distinct colours)
    double gamma = 150.0;          ///< weight of the contrast-sensitive pairwise term
    int em_iterations = 10;        ///< EM iterations per mixture (after k-means++-style seeding)
    uint64_t seed = 0;             ///< fixes the mixtures' initialisation: same input, same mask
    bool largest_component = true; ///< keep only the largest 8-connected foreground component
};

/// Throws input_error naming the first option out of range: quantiles must satisfy
/// 0 <= clamp_low <= bg_quantile < fg_quantile <= clamp_high <= 1; components in [1, 64];
/// gamma finite and >= 0; em_iterations in [0, 1000].
void check_segmentation_options(const segmentation_options& options);

/// A box of pixels, half-open: x0 <= x < x1, y0 <= y < y1. Empty when x1 <= x0 or y1 <= y0.
struct pixel_box {
    int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
    bool empty() const { return x1 <= x0 || y1 <= y0; }
    int64_t area() const { return empty() ? 0 : int64_t(x1 - x0) * (y1 - y0); }
};

/// Intersection over union of two boxes (0 when both are empty).
double box_iou(const pixel_box& a, const pixel_box& b);

/// A binary mask, row-major, one byte per pixel (0 or 1).
struct binary_mask {
    int width = 0, height = 0;
    std::vector<uint8_t> pixels;
};

/// The box around the mask's 1-pixels (empty box when there is none).
pixel_box bounding_box(const binary_mask& m);
/// The largest 8-connected component of the mask's 1-pixels (ties: the one met first in row-major
/// order); an all-zero mask stays all zero.
binary_mask largest_component(const binary_mask& m);
/// Intersection over union of two masks of the same size (0 when both are empty). Throws
/// input_error when the sizes differ.
double mask_iou(const binary_mask& a, const binary_mask& b);

// ---- Colour models ----------------------------------------------------------------------------

/// One Gaussian of a colour mixture, in 8-bit colour units (0..255 per channel, RGB order; a grey
/// image counts as R = G = B).
struct colour_gaussian {
    double weight = 0;
    std::array<double, 3> mean{};
    std::array<double, 9> covariance{}; ///< row-major 3x3, regularised: includes 1.0 on the diagonal
};

struct colour_mixture {
    std::vector<colour_gaussian> components; ///< weights sum to 1
    /// log p(colour): the mixture's log density at `colour` (0..255 units).
    double log_density(const std::array<double, 3>& colour) const;
};

/// Fits a mixture of up to `components` full-covariance Gaussians to `colours` by EM: k-means++
/// seeding from std::mt19937_64(seed) (as many centres as there are distinct colours, at most
/// `components`), hard assignment to the nearest centre, then `iterations` EM steps. Each covariance
/// gets 1.0 (one 8-bit level squared) added to its diagonal, so identical colours and fewer pixels
/// than components give a valid (narrow) Gaussian; a component left without weight is dropped.
/// Deterministic: the same colours, components, iterations and seed give the same mixture.
/// Throws input_error when `colours` is empty or components < 1.
colour_mixture fit_colour_mixture(const std::vector<std::array<uint8_t, 3>>& colours, int components, int iterations,
                                  uint64_t seed);

// ---- Segmentation -----------------------------------------------------------------------------

struct segmentation {
    binary_mask mask;                          ///< the object: GraphCut's foreground, reduced to its largest component
    binary_mask graphcut;                      ///< GraphCut's foreground before the component step
    std::vector<int8_t> seeds;                 ///< per pixel: +1 foreground seed, -1 background seed, 0 unused
    pixel_box box;                             ///< bounding_box(mask)
    double fg_threshold = 0, bg_threshold = 0; ///< the map values at the two seed quantiles
    std::vector<int8_t> hard;                  ///< per pixel: +1 fixed to the foreground, -1 to the background, 0 free
    double hard_fg_threshold = 0, hard_bg_threshold = 0; ///< the map values at clamp_high and clamp_low
};

/// Segments `picture` (RGB or grey, the image the network was fed, at the map's size) from `map`
/// ([H, W], the image's saliency map, H x W = picture's size). The colour models are
/// fit_colour_mixture(seed pixels, components, em_iterations, seed) for the foreground and
/// (..., seed + 1) for the background. GraphCut minimises, over labels L,
///   sum_i -log p(I_i | mixture of L_i) + gamma * sum_{i~j, L_i != L_j} exp(-beta |I_i - I_j|^2) / dist(i, j)
/// over 8-neighbours (dist 1 or sqrt 2), beta = 1 / (2 <|I_i - I_j|^2>) averaged over all neighbour
/// pairs (GrabCut's; 0 for a flat image), with the hard constraints fixed; solved with Boost's
/// Boykov-Kolmogorov max-flow (pixels left free by the flow go to the background).
/// Throws input_error for mismatched sizes, an empty or non-finite map, a map with a single value,
/// or options out of range (check_segmentation_options).
segmentation segment(const image& picture, const tensor& map, const segmentation_options& options = {});

/// The seeds drawn as in the paper's figure 3: foreground seeds (the foreground colour model's pixels)
/// blue (0, 0, 255), background seeds cyan (0, 255, 255), unused pixels red (255, 0, 0). RGB.
image seeds_image(const segmentation& s);
/// The mask as a grey image: 255 inside, 0 outside.
image mask_image(const binary_mask& m);
/// The picture (as RGB) with the pixels outside the mask dimmed to 30 % and the box drawn as a 2-pixel
/// yellow (255, 255, 0) rectangle along the inside of its border. Throws input_error when the
/// picture's size is not the segmentation's.
image segmentation_overlay(const image& picture, const segmentation& s);

} // namespace deepinside
