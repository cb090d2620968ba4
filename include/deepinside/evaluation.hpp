#pragma once
/// Measures of saliency maps against ground truth and against the model, as `deepinside evaluate`
/// reports them: the pointing game, the relevance mass inside the object, deletion and insertion
/// curves, and the rank correlation of the model-randomisation sanity check. Every function takes a
/// map of shape [H, W] (saliency_map of one image) and, where it needs one, the object's mask of
/// the same size; a mismatch throws input_error.
#include <deepinside/segmentation.hpp>
#include <deepinside/tensor.hpp>

#include <cstdint>
#include <vector>

namespace deepinside {

/// Spearman's rank correlation of two equally long value lists: Pearson's correlation of their
/// ranks, ties given their average rank. 1 when both are constant, 0 when only one is.
double spearman(const std::vector<float>& a, const std::vector<float>& b);

/// Where the map is largest: (y, x) of its first maximum in row-major order.
struct map_point {
    int y = 0, x = 0;
};
map_point map_maximum(const tensor& map);

/// The pointing game of Zhang et al. (2016) as TorchRay's benchmark scores it: a hit when some pixel
/// of the mask lies strictly within `tolerance` pixels (Euclidean distance) of the point.
bool pointing_hit(const binary_mask& mask, const map_point& point, double tolerance);

/// The share of the map's total (|values|) that lies inside the mask: 1 when everything is on the
/// object; the mask's area fraction is what a uniform map scores. 0 for an all-zero map.
double relevance_mass(const tensor& map, const binary_mask& mask);

/// Pixels in the order deletion and insertion visit them: most salient first, ties in row-major order
/// (a stable sort, so the order is the same on every machine).
std::vector<int32_t> saliency_order(const tensor& map);

/// The positions of the first `count` pixels of `order` take `source`'s values in `target`, in
/// every channel: tensors [C, H, W] (or [1, C, H, W]) of the same shape, order over H * W pixels.
void copy_pixels(const tensor& source, tensor& target, const std::vector<int32_t>& order, int64_t count);

/// How many pixels step `s` of `steps` has visited: round(s / steps * pixels), 0 at s = 0 and every
/// pixel at s = steps.
int64_t pixels_at_step(int64_t s, int64_t steps, int64_t pixels);

/// The area under a curve sampled at equally spaced points from 0 to 1 (trapezoid rule); the mean
/// value for a constant curve. Needs at least two points.
double curve_area(const std::vector<double>& values);

} // namespace deepinside
