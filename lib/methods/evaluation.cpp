// Measures of saliency maps against ground truth and the model (see evaluation.hpp).
#include <deepinside/errors.hpp>
#include <deepinside/evaluation.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

namespace deepinside {

namespace {

void require_map(const tensor& map, const char* what) {
    if (map.shape.size() != 2 || map.shape[0] <= 0 || map.shape[1] <= 0 || map.size() != map.shape[0] * map.shape[1])
        throw input_error(fmt::format("{}: the map must have shape [H, W], not {}", what, to_string(map.shape)));
}

void require_same_size(const tensor& map, const binary_mask& mask, const char* what) {
    require_map(map, what);
    if (mask.height != map.shape[0] || mask.width != map.shape[1] ||
        mask.pixels.size() != size_t(mask.width) * size_t(mask.height))
        throw input_error(fmt::format("{}: the mask is {}x{} but the map is {}x{}", what, mask.width, mask.height,
                                      map.shape[1], map.shape[0]));
}

/// Ranks with ties given their average rank (0-based).
std::vector<double> average_ranks(const std::vector<float>& v) {
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> r(v.size());
    for (size_t i = 0; i < order.size();) {
        size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
        const double mean = 0.5 * double(i + j);
        for (size_t k = i; k <= j; ++k) r[order[k]] = mean;
        i = j + 1;
    }
    return r;
}

} // namespace

double spearman(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size() || a.empty())
        throw input_error(fmt::format("spearman: needs two lists of the same non-zero length, not {} and {}", a.size(), b.size()));
    const std::vector<double> ra = average_ranks(a), rb = average_ranks(b);
    const double n = double(ra.size());
    const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
    double sab = 0, saa = 0, sbb = 0;
    for (size_t i = 0; i < ra.size(); ++i) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    if (saa == 0 || sbb == 0) return saa == sbb ? 1.0 : 0.0;
    return sab / std::sqrt(saa * sbb);
}

map_point map_maximum(const tensor& map) {
    require_map(map, "map_maximum");
    const auto at = std::max_element(map.data.begin(), map.data.end()) - map.data.begin();
    return {int(at / map.shape[1]), int(at % map.shape[1])};
}

bool pointing_hit(const binary_mask& mask, const map_point& point, double tolerance) {
    if (mask.pixels.size() != size_t(mask.width) * size_t(mask.height))
        throw input_error("pointing_hit: the mask's pixels do not match its size");
    if (!(tolerance >= 0)) throw input_error(fmt::format("pointing_hit: tolerance {} must be >= 0", tolerance));
    // Only rows and columns within the tolerance can hold a hit.
    const int reach = int(std::ceil(tolerance));
    const double limit = tolerance * tolerance;
    for (int y = std::max(0, point.y - reach); y <= std::min(mask.height - 1, point.y + reach); ++y)
        for (int x = std::max(0, point.x - reach); x <= std::min(mask.width - 1, point.x + reach); ++x) {
            const double dy = y - point.y, dx = x - point.x;
            if (dy * dy + dx * dx < limit && mask.pixels[size_t(y) * mask.width + x]) return true;
        }
    return false;
}

double relevance_mass(const tensor& map, const binary_mask& mask) {
    require_same_size(map, mask, "relevance_mass");
    double inside = 0, total = 0;
    for (size_t i = 0; i < map.data.size(); ++i) {
        const double v = std::fabs(double(map.data[i]));
        total += v;
        if (mask.pixels[i]) inside += v;
    }
    return total > 0 ? inside / total : 0.0;
}

std::vector<int32_t> saliency_order(const tensor& map) {
    require_map(map, "saliency_order");
    std::vector<int32_t> order(map.data.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t i, int32_t j) { return map.data[size_t(i)] > map.data[size_t(j)]; });
    return order;
}

void copy_pixels(const tensor& source, tensor& target, const std::vector<int32_t>& order, int64_t count) {
    if (source.shape != target.shape || source.shape.size() < 3)
        throw input_error(fmt::format("copy_pixels: needs two [C, H, W] tensors of one shape, not {} and {}",
                                      to_string(source.shape), to_string(target.shape)));
    const size_t r = source.shape.size();
    const int64_t plane = source.shape[r - 1] * source.shape[r - 2];
    const int64_t channels = source.size() / plane;
    if (int64_t(order.size()) != plane || count < 0 || count > plane)
        throw input_error(fmt::format("copy_pixels: an order of {} pixels and a count of {} for a plane of {}", order.size(),
                                      count, plane));
    for (int64_t c = 0; c < channels; ++c) {
        const float* src = source.data.data() + c * plane;
        float* dst = target.data.data() + c * plane;
        for (int64_t k = 0; k < count; ++k) dst[order[size_t(k)]] = src[order[size_t(k)]];
    }
}

int64_t pixels_at_step(int64_t s, int64_t steps, int64_t pixels) {
    if (steps <= 0 || s < 0 || s > steps) throw input_error(fmt::format("pixels_at_step: step {} of {}", s, steps));
    return int64_t(std::llround(double(s) / double(steps) * double(pixels)));
}

double curve_area(const std::vector<double>& values) {
    if (values.size() < 2) throw input_error("curve_area: needs at least two points");
    double area = 0;
    for (size_t i = 1; i < values.size(); ++i) area += 0.5 * (values[i - 1] + values[i]);
    return area / double(values.size() - 1);
}

} // namespace deepinside
