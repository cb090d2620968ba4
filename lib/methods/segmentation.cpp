// Weakly supervised segmentation: quantile seeds, GMM colour models, GraphCut (Boykov-Kolmogorov
// max-flow), the largest component and its box. The rules are stated in segmentation.hpp.
#include "io/raster.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/segmentation.hpp>

#include <Eigen/Cholesky>
#include <Eigen/Core>
// Boost.Graph's iterators trip GCC's -Wmaybe-uninitialized falsely.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/graph/boykov_kolmogorov_max_flow.hpp>
#include <boost/graph/compressed_sparse_row_graph.hpp>
#pragma GCC diagnostic pop
#include <boost/property_map/property_map.hpp>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <random>

namespace deepinside {

namespace {

// Added to every covariance's diagonal, in 8-bit colour units squared: a standard deviation of at
// least one level, so that a seed set of one colour still has a density.
constexpr double covariance_regularisation = 1.0;
constexpr int max_components = 64;

Eigen::Vector3d colour_of(const image& img, size_t pixel) {
    const uint8_t* p = img.pixels.data() + pixel * size_t(img.channels);
    return img.channels == 1 ? Eigen::Vector3d(p[0], p[0], p[0]) : Eigen::Vector3d(p[0], p[1], p[2]);
}

/// A uniform double in [0, 1) from the generator's bits: the same on every standard library
/// (std::uniform_real_distribution is not).
double unit_uniform(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

/// Colours as columns (3 x n), 0..255 units.
using points_t = Eigen::Matrix<double, 3, Eigen::Dynamic>;

/// Per point and component, log(weight) + log N(x; mean, covariance): an n x K matrix. Each
/// covariance is factored once (Cholesky); the points are processed as whole arrays.
Eigen::MatrixXd component_log_densities(const colour_mixture& m, const points_t& x) {
    Eigen::MatrixXd out(x.cols(), Eigen::Index(m.components.size()));
    for (size_t k = 0; k < m.components.size(); ++k) {
        const colour_gaussian& g = m.components[k];
        const Eigen::Matrix3d cov = Eigen::Map<const Eigen::Matrix<double, 3, 3, Eigen::RowMajor>>(g.covariance.data());
        const Eigen::Matrix3d l = Eigen::LLT<Eigen::Matrix3d>(cov).matrixL();
        const Eigen::Matrix3d inv_chol = l.triangularView<Eigen::Lower>().solve(Eigen::Matrix3d::Identity());
        const double log_det = 2.0 * (std::log(l(0, 0)) + std::log(l(1, 1)) + std::log(l(2, 2)));
        const double log_scale = std::log(g.weight) - 0.5 * (3.0 * std::log(2.0 * std::numbers::pi) + log_det);
        const Eigen::Vector3d mean(g.mean[0], g.mean[1], g.mean[2]);
        const points_t d = inv_chol * (x.colwise() - mean);
        out.col(Eigen::Index(k)) = (log_scale - 0.5 * d.colwise().squaredNorm().array()).transpose();
    }
    return out;
}

/// log p(x) of the mixture for every point (log-sum-exp over the components).
Eigen::VectorXd mixture_log_density(const colour_mixture& m, const points_t& x) {
    const Eigen::MatrixXd l = component_log_densities(m, x);
    const Eigen::VectorXd top = l.rowwise().maxCoeff();
    return top.array() + (l.colwise() - top).array().exp().rowwise().sum().log();
}

/// The M step: each component's weight, mean and regularised covariance from responsibilities
/// (points x components); components without weight are dropped.
colour_mixture m_step(const points_t& x, const Eigen::MatrixXd& resp) {
    colour_mixture m;
    const double n = double(x.cols());
    for (Eigen::Index k = 0; k < resp.cols(); ++k) {
        const double nk = resp.col(k).sum();
        if (!(nk > 1e-9 * n)) continue;
        const Eigen::Vector3d mean = x * resp.col(k) / nk;
        const points_t centred = x.colwise() - mean;
        Eigen::Matrix3d cov =
            (centred.array().rowwise() * resp.col(k).transpose().array()).matrix() * centred.transpose() / nk;
        cov.diagonal().array() += covariance_regularisation;
        colour_gaussian g;
        g.weight = nk / n;
        for (int r = 0; r < 3; ++r) {
            g.mean[size_t(r)] = mean[r];
            for (int c = 0; c < 3; ++c) g.covariance[size_t(r * 3 + c)] = cov(r, c);
        }
        m.components.push_back(g);
    }
    double total = 0;
    for (const auto& g : m.components) total += g.weight;
    for (auto& g : m.components) g.weight /= total;
    return m;
}

colour_mixture fit_mixture(const points_t& x, int components, int iterations, uint64_t seed) {
    const auto n = size_t(x.cols());
    // k-means++ seeding: the first centre uniform, each next one with probability proportional to the
    // squared distance to the nearest centre; stops early when every point is a centre's colour.
    std::mt19937_64 rng(seed);
    std::vector<Eigen::Vector3d> centres{x.col(Eigen::Index(rng() % n))};
    Eigen::VectorXd d2 = (x.colwise() - centres[0]).colwise().squaredNorm().transpose();
    while (int(centres.size()) < components) {
        const double total = d2.sum();
        if (!(total > 0)) break;
        const double r = unit_uniform(rng) * total;
        double cumulative = 0;
        size_t pick = n;
        for (size_t i = 0; i < n; ++i) {
            cumulative += d2[Eigen::Index(i)];
            if (cumulative > r && d2[Eigen::Index(i)] > 0) {
                pick = i;
                break;
            }
        }
        if (pick == n) // rounding at the end of the sum: take the last point not yet a centre
            for (size_t i = n; i-- > 0;)
                if (d2[Eigen::Index(i)] > 0) {
                    pick = i;
                    break;
                }
        centres.push_back(x.col(Eigen::Index(pick)));
        d2 = d2.cwiseMin((x.colwise() - centres.back()).colwise().squaredNorm().transpose());
    }
    // Hard assignment to the nearest centre (ties: the first), then EM.
    Eigen::MatrixXd dist(Eigen::Index(n), Eigen::Index(centres.size()));
    for (size_t k = 0; k < centres.size(); ++k)
        dist.col(Eigen::Index(k)) = (x.colwise() - centres[k]).colwise().squaredNorm().transpose();
    Eigen::MatrixXd resp = Eigen::MatrixXd::Zero(dist.rows(), dist.cols());
    for (Eigen::Index i = 0; i < dist.rows(); ++i) {
        Eigen::Index best = 0;
        dist.row(i).minCoeff(&best);
        resp(i, best) = 1.0;
    }
    colour_mixture m = m_step(x, resp);
    for (int it = 0; it < iterations; ++it) {
        const Eigen::MatrixXd l = component_log_densities(m, x);
        const Eigen::VectorXd top = l.rowwise().maxCoeff();
        resp = (l.colwise() - top).array().exp();
        resp.array().colwise() /= resp.rowwise().sum().array();
        m = m_step(x, resp);
    }
    return m;
}

/// MATLAB's quantile of sorted values: the i-th (0-based) value sits at p = (i + 0.5) / n, linear in
/// between, the extremes outside.
double quantile_sorted(const std::vector<float>& sorted, double p) {
    const size_t n = sorted.size();
    const double pos = p * double(n) - 0.5;
    if (pos <= 0) return sorted.front();
    if (pos >= double(n - 1)) return sorted.back();
    const auto lo = size_t(pos);
    const double frac = pos - double(lo);
    return double(sorted[lo]) + frac * (double(sorted[lo + 1]) - double(sorted[lo]));
}

/// GraphCut over the picture's 8-neighbour grid: source = foreground. `cost_fg` / `cost_bg` are the
/// per-pixel unaries, `hard` the constraints. Returns 1 for the pixels on the source side.
/// The graph is a compressed sparse row graph filled in place (each arc's index and its reverse's
/// known before construction): no allocation per edge, which an adjacency_list would make.
std::vector<uint8_t> graph_cut(const points_t& colours, int width, int height, const Eigen::VectorXd& cost_fg,
                               const Eigen::VectorXd& cost_bg, const std::vector<int8_t>& hard, double gamma) {
    using graph_t = boost::compressed_sparse_row_graph<boost::directedS>;
    using vertex_t = boost::graph_traits<graph_t>::vertex_descriptor;
    using edge_t = boost::graph_traits<graph_t>::edge_descriptor;

    const size_t pixels = size_t(width) * size_t(height);
    // Neighbour offsets: right, down, down-right, down-left (each unordered pair once).
    struct offset {
        int dx, dy;
        double inv_dist;
    };
    const offset offsets[] = {
        {1, 0, 1.0}, {0, 1, 1.0}, {1, 1, 1.0 / std::numbers::sqrt2}, {-1, 1, 1.0 / std::numbers::sqrt2}};
    const auto for_each_pair = [&](auto&& fn) {
        for (int y = 0; y < height; ++y)
            for (int x = 0; x < width; ++x)
                for (const offset& o : offsets) {
                    const int nx = x + o.dx, ny = y + o.dy;
                    if (nx < 0 || nx >= width || ny >= height) continue;
                    fn(size_t(y) * size_t(width) + size_t(x), size_t(ny) * size_t(width) + size_t(nx), o.inv_dist);
                }
    };
    // GrabCut's beta: 1 / (2 <|I_i - I_j|^2>) over all neighbour pairs.
    double sum_d2 = 0;
    size_t pairs = 0;
    for_each_pair([&](size_t i, size_t j, double) {
        sum_d2 += (colours.col(Eigen::Index(i)) - colours.col(Eigen::Index(j))).squaredNorm();
        ++pairs;
    });
    const double beta = pairs > 0 && sum_d2 > 0 ? double(pairs) / (2.0 * sum_d2) : 0.0;
    // A hard constraint's t-link outweighs every n-link of its pixel (Boykov & Jolly's K).
    const double hard_capacity = 1.0 + gamma * (4.0 + 4.0 / std::numbers::sqrt2);

    // Links: each becomes two arcs, u->v and v->u, reverses of each other.
    struct link {
        vertex_t u, v;
        double cap_uv, cap_vu;
    };
    const vertex_t source = pixels, sink = pixels + 1;
    std::vector<link> links;
    links.reserve(pairs + pixels);
    for_each_pair([&](size_t i, size_t j, double inv_dist) {
        const double w = gamma *
                         std::exp(-beta * (colours.col(Eigen::Index(i)) - colours.col(Eigen::Index(j))).squaredNorm()) *
                         inv_dist;
        if (w > 0) links.push_back({i, j, w, w});
    });
    for (size_t i = 0; i < pixels; ++i) {
        // Cutting source->i puts i in the background (pays its background cost), i->sink the foreground.
        double to_source = 0, to_sink = 0;
        if (hard[i] > 0) {
            to_source = hard_capacity;
        } else if (hard[i] < 0) {
            to_sink = hard_capacity;
        } else {
            const double fg = cost_fg[Eigen::Index(i)], bg = cost_bg[Eigen::Index(i)];
            to_source = bg - std::min(fg, bg);
            to_sink = fg - std::min(fg, bg);
        }
        if (to_source > 0) links.push_back({source, i, to_source, 0.0});
        if (to_sink > 0) links.push_back({i, sink, to_sink, 0.0});
    }

    // Arcs sorted by source, in link order within a source.
    const size_t vertices = pixels + 2, arcs = 2 * links.size();
    std::vector<size_t> next(vertices + 1, 0);
    for (const link& l : links) ++next[l.u + 1], ++next[l.v + 1];
    for (size_t v = 0; v < vertices; ++v) next[v + 1] += next[v];
    std::vector<std::pair<vertex_t, vertex_t>> ends(arcs);
    std::vector<double> capacity(arcs), residual(arcs);
    std::vector<size_t> reverse_index(arcs);
    for (const link& l : links) {
        const size_t a = next[l.u]++, b = next[l.v]++;
        ends[a] = {l.u, l.v};
        ends[b] = {l.v, l.u};
        capacity[a] = l.cap_uv;
        capacity[b] = l.cap_vu;
        reverse_index[a] = b;
        reverse_index[b] = a;
    }
    const graph_t g(boost::edges_are_sorted, ends.begin(), ends.end(), vertices, arcs);
    std::vector<edge_t> reverse(arcs);
    for (size_t a = 0; a < arcs; ++a) reverse[a] = edge_t(ends[a].second, reverse_index[a]);

    std::vector<edge_t> predecessor(vertices);
    std::vector<boost::default_color_type> colour(vertices);
    std::vector<long> distance(vertices);
    const auto vertex_index = get(boost::vertex_index, g);
    const auto edge_index = get(boost::edge_index, g);
    boost::boykov_kolmogorov_max_flow(g, boost::make_iterator_property_map(capacity.begin(), edge_index),
                                      boost::make_iterator_property_map(residual.begin(), edge_index),
                                      boost::make_iterator_property_map(reverse.begin(), edge_index),
                                      boost::make_iterator_property_map(predecessor.begin(), vertex_index),
                                      boost::make_iterator_property_map(colour.begin(), vertex_index),
                                      boost::make_iterator_property_map(distance.begin(), vertex_index), vertex_index,
                                      source, sink);
    // The source tree (black) is what the source reaches in the residual graph: the foreground.
    // Free (grey) pixels, which either side would take at the same cost, go to the background.
    std::vector<uint8_t> fg(pixels);
    for (size_t i = 0; i < pixels; ++i) fg[i] = colour[i] == boost::black_color ? 1 : 0;
    return fg;
}

void check_mask(const binary_mask& m, const char* what) {
    if (m.width < 0 || m.height < 0 || m.pixels.size() != size_t(m.width) * size_t(m.height))
        throw input_error(fmt::format("{}: mask of {}x{} holds {} bytes, expected width * height", what, m.width,
                                      m.height, m.pixels.size()));
}

} // namespace

void check_segmentation_options(const segmentation_options& o) {
    const auto in_unit = [](double q, const char* name) {
        if (!(q >= 0.0 && q <= 1.0))
            throw input_error(fmt::format("segmentation option {} = {} is not a quantile in [0, 1]", name, q));
    };
    in_unit(o.fg_quantile, "fg_quantile");
    in_unit(o.bg_quantile, "bg_quantile");
    in_unit(o.clamp_low, "clamp_low");
    in_unit(o.clamp_high, "clamp_high");
    if (!(o.bg_quantile < o.fg_quantile))
        throw input_error(fmt::format("segmentation option bg_quantile = {} must be below fg_quantile = {}",
                                      o.bg_quantile, o.fg_quantile));
    if (o.clamp_low > o.bg_quantile)
        throw input_error(fmt::format("segmentation option clamp_low = {} must not exceed bg_quantile = {}",
                                      o.clamp_low, o.bg_quantile));
    if (o.clamp_high < o.fg_quantile)
        throw input_error(fmt::format("segmentation option clamp_high = {} must not be below fg_quantile = {}",
                                      o.clamp_high, o.fg_quantile));
    if (o.components < 1 || o.components > max_components)
        throw input_error(
            fmt::format("segmentation option components = {} is not in [1, {}]", o.components, max_components));
    if (!(o.gamma >= 0.0) || !std::isfinite(o.gamma))
        throw input_error(fmt::format("segmentation option gamma = {} is not a finite number >= 0", o.gamma));
    if (o.em_iterations < 0 || o.em_iterations > 1000)
        throw input_error(fmt::format("segmentation option em_iterations = {} is not in [0, 1000]", o.em_iterations));
}

double box_iou(const pixel_box& a, const pixel_box& b) {
    const pixel_box inter{std::max(a.x0, b.x0), std::max(a.y0, b.y0), std::min(a.x1, b.x1), std::min(a.y1, b.y1)};
    const int64_t i = inter.area(), u = a.area() + b.area() - i;
    return u > 0 ? double(i) / double(u) : 0.0;
}

pixel_box bounding_box(const binary_mask& m) {
    check_mask(m, "bounding_box");
    pixel_box b{m.width, m.height, 0, 0};
    for (int y = 0; y < m.height; ++y)
        for (int x = 0; x < m.width; ++x)
            if (m.pixels[size_t(y) * size_t(m.width) + size_t(x)]) {
                b.x0 = std::min(b.x0, x);
                b.y0 = std::min(b.y0, y);
                b.x1 = std::max(b.x1, x + 1);
                b.y1 = std::max(b.y1, y + 1);
            }
    return b.empty() ? pixel_box{} : b;
}

binary_mask largest_component(const binary_mask& m) {
    check_mask(m, "largest_component");
    const size_t n = m.pixels.size();
    std::vector<int32_t> label(n, -1);
    std::vector<size_t> stack;
    int32_t best = -1, count = 0;
    size_t best_size = 0;
    for (size_t start = 0; start < n; ++start) {
        if (!m.pixels[start] || label[start] >= 0) continue;
        // Flood fill (8-connected); components are met in row-major order of their first pixel.
        size_t size = 0;
        label[start] = count;
        stack.assign(1, start);
        while (!stack.empty()) {
            const size_t p = stack.back();
            stack.pop_back();
            ++size;
            const int x = int(p % size_t(m.width)), y = int(p / size_t(m.width));
            for (int dy = -1; dy <= 1; ++dy)
                for (int dx = -1; dx <= 1; ++dx) {
                    const int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= m.width || ny >= m.height) continue;
                    const size_t q = size_t(ny) * size_t(m.width) + size_t(nx);
                    if (m.pixels[q] && label[q] < 0) {
                        label[q] = count;
                        stack.push_back(q);
                    }
                }
        }
        if (size > best_size) best_size = size, best = count;
        ++count;
    }
    binary_mask out{m.width, m.height, std::vector<uint8_t>(n, 0)};
    for (size_t i = 0; i < n; ++i) out.pixels[i] = best >= 0 && label[i] == best ? 1 : 0;
    return out;
}

double mask_iou(const binary_mask& a, const binary_mask& b) {
    check_mask(a, "mask_iou");
    check_mask(b, "mask_iou");
    if (a.width != b.width || a.height != b.height)
        throw input_error(
            fmt::format("mask_iou: masks of {}x{} and {}x{} differ in size", a.width, a.height, b.width, b.height));
    int64_t inter = 0, uni = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) {
        const bool p = a.pixels[i] != 0, q = b.pixels[i] != 0;
        inter += p && q;
        uni += p || q;
    }
    return uni > 0 ? double(inter) / double(uni) : 0.0;
}

double colour_mixture::log_density(const std::array<double, 3>& colour) const {
    if (components.empty()) throw input_error("colour_mixture::log_density: the mixture has no component");
    return mixture_log_density(*this, Eigen::Vector3d(colour[0], colour[1], colour[2]))[0];
}

colour_mixture fit_colour_mixture(const std::vector<std::array<uint8_t, 3>>& colours, int components, int iterations,
                                  uint64_t seed) {
    if (colours.empty()) throw input_error("fit_colour_mixture: no colours to fit");
    if (components < 1) throw input_error(fmt::format("fit_colour_mixture: components = {} is below 1", components));
    if (iterations < 0) throw input_error(fmt::format("fit_colour_mixture: iterations = {} is negative", iterations));
    points_t x(3, Eigen::Index(colours.size()));
    for (size_t i = 0; i < colours.size(); ++i)
        x.col(Eigen::Index(i)) = Eigen::Vector3d(colours[i][0], colours[i][1], colours[i][2]);
    return fit_mixture(x, components, iterations, seed);
}

segmentation segment(const image& picture, const tensor& map, const segmentation_options& options) {
    check_segmentation_options(options);
    io_detail::check_image_layout(picture, "segment: picture");
    if (map.shape.size() != 2)
        throw input_error(fmt::format("segment: the saliency map has shape {}, expected [H, W]", to_string(map.shape)));
    if (map.shape[0] != picture.height || map.shape[1] != picture.width)
        throw input_error(fmt::format("segment: the saliency map is {}x{} (W x H) but the picture is {}x{}",
                                      map.shape[1], map.shape[0], picture.width, picture.height));
    if (map.data.size() != size_t(picture.width) * size_t(picture.height))
        throw input_error("segment: the saliency map holds the wrong number of values for its shape");
    require_finite(map, "segment: the saliency map");

    const int width = picture.width, height = picture.height;
    const size_t pixels = map.data.size();
    std::vector<float> sorted = map.data;
    std::sort(sorted.begin(), sorted.end());
    if (sorted.front() == sorted.back())
        throw input_error(
            fmt::format("segment: the saliency map has the single value {}; it gives no foreground or background "
                        "seeds",
                        sorted.front()));

    segmentation s;
    s.fg_threshold = quantile_sorted(sorted, options.fg_quantile);
    s.bg_threshold = quantile_sorted(sorted, options.bg_quantile);
    s.hard_fg_threshold = quantile_sorted(sorted, options.clamp_high);
    s.hard_bg_threshold = quantile_sorted(sorted, options.clamp_low);
    // Seeds inclusive at both thresholds (ksseg.m); a tie spanning both quantiles goes to the
    // background unless it reaches the maximum (see segmentation.hpp).
    const double tf = s.fg_threshold, tb = s.bg_threshold;
    const bool tie = !(tf > tb);
    const bool tie_at_top = tie && !(double(sorted.back()) > tf);
    s.seeds.assign(pixels, 0);
    s.hard.assign(pixels, 0);
    size_t n_fg = 0, n_bg = 0;
    for (size_t i = 0; i < pixels; ++i) {
        const double v = map.data[i];
        const bool fg = !tie ? v >= tf : tie_at_top ? v >= tf : v > tf;
        const bool bg = !tie ? v <= tb : tie_at_top ? v < tb : v <= tb;
        if (fg) {
            s.seeds[i] = 1, ++n_fg;
            if (v >= s.hard_fg_threshold) s.hard[i] = 1;
        } else if (bg) {
            s.seeds[i] = -1, ++n_bg;
            if (v <= s.hard_bg_threshold) s.hard[i] = -1;
        }
    }
    // A map with two distinct values always leaves both sets non-empty; kept as a guard.
    if (n_fg == 0 || n_bg == 0)
        throw input_error(
            fmt::format("segment: the saliency map gives {} foreground and {} background seeds; both must be "
                        "non-empty",
                        n_fg, n_bg));

    points_t colours(3, Eigen::Index(pixels)), fg_colours(3, Eigen::Index(n_fg)), bg_colours(3, Eigen::Index(n_bg));
    for (size_t i = 0, f = 0, b = 0; i < pixels; ++i) {
        colours.col(Eigen::Index(i)) = colour_of(picture, i);
        if (s.seeds[i] > 0)
            fg_colours.col(Eigen::Index(f++)) = colours.col(Eigen::Index(i));
        else if (s.seeds[i] < 0)
            bg_colours.col(Eigen::Index(b++)) = colours.col(Eigen::Index(i));
    }
    const colour_mixture fg_model = fit_mixture(fg_colours, options.components, options.em_iterations, options.seed);
    const colour_mixture bg_model =
        fit_mixture(bg_colours, options.components, options.em_iterations, options.seed + 1);
    const Eigen::VectorXd cost_fg = -mixture_log_density(fg_model, colours),
                          cost_bg = -mixture_log_density(bg_model, colours);
    s.graphcut = {width, height, graph_cut(colours, width, height, cost_fg, cost_bg, s.hard, options.gamma)};
    s.mask = options.largest_component ? largest_component(s.graphcut) : s.graphcut;
    s.box = bounding_box(s.mask);
    return s;
}

image seeds_image(const segmentation& s) {
    const binary_mask& m = s.mask;
    check_mask(m, "seeds_image");
    if (s.seeds.size() != m.pixels.size()) throw input_error("seeds_image: the seeds and the mask differ in size");
    image img{m.width, m.height, 3, std::vector<uint8_t>(s.seeds.size() * 3)};
    for (size_t i = 0; i < s.seeds.size(); ++i) {
        uint8_t* p = img.pixels.data() + i * 3;
        if (s.seeds[i] > 0)
            p[0] = 0, p[1] = 0, p[2] = 255; // foreground colour model: blue
        else if (s.seeds[i] < 0)
            p[0] = 0, p[1] = 255, p[2] = 255; // background colour model: cyan
        else
            p[0] = 255, p[1] = 0, p[2] = 0; // unused: red
    }
    return img;
}

image mask_image(const binary_mask& m) {
    check_mask(m, "mask_image");
    image img{m.width, m.height, 1, std::vector<uint8_t>(m.pixels.size())};
    for (size_t i = 0; i < m.pixels.size(); ++i) img.pixels[i] = m.pixels[i] ? 255 : 0;
    return img;
}

image segmentation_overlay(const image& picture, const segmentation& s) {
    io_detail::check_image_layout(picture, "segmentation_overlay: picture");
    const binary_mask& m = s.mask;
    check_mask(m, "segmentation_overlay");
    if (picture.width != m.width || picture.height != m.height)
        throw input_error(fmt::format("segmentation_overlay: the picture is {}x{} but the segmentation {}x{}",
                                      picture.width, picture.height, m.width, m.height));
    const size_t pixels = m.pixels.size();
    image img{m.width, m.height, 3, std::vector<uint8_t>(pixels * 3)};
    for (size_t i = 0; i < pixels; ++i)
        for (size_t c = 0; c < 3; ++c) {
            const uint8_t v = picture.pixels[i * size_t(picture.channels) + (picture.channels == 1 ? 0 : c)];
            img.pixels[i * 3 + c] = m.pixels[i] ? v : uint8_t((v * 3 + 5) / 10);
        }
    const pixel_box& b = s.box;
    if (!b.empty()) {
        const auto paint = [&](int x, int y) {
            if (x < 0 || y < 0 || x >= m.width || y >= m.height) return;
            uint8_t* p = img.pixels.data() + (size_t(y) * size_t(m.width) + size_t(x)) * 3;
            p[0] = 255, p[1] = 255, p[2] = 0;
        };
        for (int t = 0; t < 2; ++t) {
            for (int x = b.x0; x < b.x1; ++x) paint(x, b.y0 + t), paint(x, b.y1 - 1 - t);
            for (int y = b.y0; y < b.y1; ++y) paint(b.x0 + t, y), paint(b.x1 - 1 - t, y);
        }
    }
    return img;
}

} // namespace deepinside
