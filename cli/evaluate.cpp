// deepinside evaluate MODEL DATASET_DIR [--json OUT.json] [--report DIR]
//
// Measures the gradient, DeconvNet and guided maps of a classifier against the ground truth of a held-out
// split written by tools/make_shapes_dataset.py (images, object masks, boxes, object-free backgrounds
// and "difficult" flags; the classifier never saw the masks): the paper's weakly supervised
// segmentation against three baselines, the pointing game, the relevance mass on the object, deletion
// and insertion curves, and Adebayo et al.'s model-randomisation check. Every map is taken for the
// image's true class (as the pointing game does); the classifier's accuracy is reported beside.
// Under `mpirun -n K` each process takes a contiguous share of the images in whole batches (and of the
// randomisation check's), and the first accumulates every image's numbers in order, as one process does.
#include "commands.hpp"
#include "common.hpp"
#include "evaluate.hpp"
#include "parallel.hpp"
#include "progress.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/evaluation.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/saliency.hpp>
#include <deepinside/segmentation.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <random>

namespace deepinside::cli {

namespace {

using json = nlohmann::ordered_json;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

// ---- The ground truth ----------------------------------------------------------------------------

/// One held-out image with what the classifier never saw.
struct sample {
    std::string image, mask, background; ///< paths
    int64_t label = 0;
    pixel_box box;
    bool difficult = false;
};

/// A path of labels.json, relative to its folder: the file is untrusted, so absolute paths and ".."
/// are refused rather than followed.
std::string resolve_in(const fs::path& root, const json& entry, const char* key, const std::string& where) {
    if (!entry.contains(key) || !entry[key].is_string())
        throw input_error(fmt::format("{}: \"{}\" must be a string (a path relative to the file's folder)", where, key));
    const fs::path rel(entry[key].get<std::string>());
    if (rel.empty() || rel.is_absolute())
        throw input_error(fmt::format("{}: \"{}\" must be a relative path, not '{}'", where, key, rel.string()));
    for (const auto& part : rel)
        if (part == "..") throw input_error(fmt::format("{}: \"{}\" may not leave the data set's folder: '{}'", where, key, rel.string()));
    const fs::path path = root / rel;
    if (!fs::is_regular_file(path)) throw input_error(fmt::format("{}: \"{}\" names no file: '{}'", where, key, path.string()));
    return path.string();
}

/// DATASET_DIR/SPLIT/labels.json, or DATASET_DIR/labels.json when the folder is a split itself.
std::vector<sample> read_ground_truth(const std::string& dataset, const std::string& split, int64_t limit) {
    fs::path root = fs::path(dataset) / split;
    if (!fs::exists(root / "labels.json") && fs::exists(fs::path(dataset) / "labels.json")) root = dataset;
    const fs::path labels = root / "labels.json";
    if (!fs::is_regular_file(labels))
        throw input_error(fmt::format("{}: no labels.json in '{}' or its '{}' folder (make one with tools/make_shapes_dataset.py)",
                                      dataset, dataset, split));
    if (fs::file_size(labels) > (uint64_t{256} << 20))
        throw input_error(fmt::format("{}: larger than the limit of 256 MiB", labels.string()));
    std::ifstream in(labels, std::ios::binary);
    if (!in) throw io_error(fmt::format("{}: cannot open the file", labels.string()));
    json doc;
    try {
        doc = json::parse(in);
    } catch (const json::exception& e) {
        throw input_error(fmt::format("{}: not valid JSON: {}", labels.string(), e.what()));
    }
    if (!doc.is_array() || doc.empty()) throw input_error(fmt::format("{}: must be a non-empty array of images", labels.string()));
    std::vector<sample> out;
    for (size_t i = 0; i < doc.size() && (limit <= 0 || int64_t(out.size()) < limit); ++i) {
        const json& e = doc[i];
        const std::string where = fmt::format("{}: entry {}", labels.string(), i);
        if (!e.is_object()) throw input_error(where + ": must be an object");
        sample s;
        s.image = resolve_in(root, e, "file", where);
        s.mask = resolve_in(root, e, "mask", where);
        s.background = resolve_in(root, e, "background", where);
        if (!e.contains("class") || !e["class"].is_number_integer() || e["class"].get<int64_t>() < 0)
            throw input_error(where + ": \"class\" must be a non-negative integer");
        s.label = e["class"].get<int64_t>();
        const json& b = e.contains("box") ? e["box"] : json();
        if (!b.is_array() || b.size() != 4 || !std::all_of(b.begin(), b.end(), [](const json& v) { return v.is_number_integer(); }))
            throw input_error(where + ": \"box\" must be [x0, y0, x1, y1] in pixels");
        s.box = {b[0].get<int>(), b[1].get<int>(), b[2].get<int>(), b[3].get<int>()};
        s.difficult = e.value("difficult", false);
        out.push_back(std::move(s));
    }
    return out;
}

/// An image of the data set, refused unless it has the network's size.
image read_sized(const std::string& path, int width, int height) {
    image img = read_image(path);
    if (img.width != width || img.height != height)
        throw input_error(fmt::format("{}: the image is {}x{} but the network takes {}x{}; evaluate feeds the data set's "
                                      "images unresized",
                                      path, img.width, img.height, width, height));
    return img;
}

binary_mask read_mask(const std::string& path, int width, int height) {
    const image img = read_sized(path, width, height);
    binary_mask m{width, height, std::vector<uint8_t>(size_t(width) * size_t(height))};
    for (size_t i = 0; i < m.pixels.size(); ++i) m.pixels[i] = img.pixels[i * size_t(img.channels)] >= 128;
    return m;
}

binary_mask box_mask(const pixel_box& b, int width, int height) {
    binary_mask m{width, height, std::vector<uint8_t>(size_t(width) * size_t(height))};
    for (int y = std::max(0, b.y0); y < std::min(height, b.y1); ++y)
        for (int x = std::max(0, b.x0); x < std::min(width, b.x1); ++x) m.pixels[size_t(y) * width + x] = 1;
    return m;
}

// ---- One image's facts ---------------------------------------------------------------------------

/// A number of an image's facts: null (what JSON makes of a NaN sent between processes) read as NaN.
double number_of(const json& v) { return v.is_null() ? std::nan("") : v.get<double>(); }

/// A segmentation's mask and box on one image against the truth: {"iou": mask IoU, "hit": box IoU >= 0.5}.
json box_facts(const binary_mask& mask, const pixel_box& box, const binary_mask& truth, const pixel_box& truth_box) {
    return {{"iou", mask_iou(mask, truth)}, {"hit", box_iou(box, truth_box) >= 0.5}};
}

// ---- What is accumulated -------------------------------------------------------------------------

/// A segmentation's score on one image.
struct box_score {
    double iou_sum = 0;      ///< mask IoU, summed over images
    int64_t localised = 0;   ///< box IoU >= 0.5
    int64_t localised_top1 = 0; ///< ... and the classifier's top-1 class is right
    /// One image's box_facts().
    void add(const json& facts, bool correct) {
        iou_sum += number_of(facts.at("iou"));
        const bool hit = facts.at("hit").get<bool>();
        localised += hit;
        localised_top1 += hit && correct;
    }
    json summary(int64_t n) const {
        return {{"mean_iou", iou_sum / double(n)}, {"localisation", double(localised) / double(n)},
                {"top1_localisation", double(localised_top1) / double(n)}};
    }
};

/// The pointing game, per class as TorchRay counts it (its accuracy is the mean of the classes').
struct pointing_score {
    std::vector<int64_t> hits, misses, hits_difficult, misses_difficult;
    explicit pointing_score(int64_t classes)
        : hits(size_t(classes)), misses(size_t(classes)), hits_difficult(size_t(classes)), misses_difficult(size_t(classes)) {}
    void add(int64_t label, bool hit, bool difficult) {
        (hit ? hits : misses)[size_t(label)]++;
        if (difficult) (hit ? hits_difficult : misses_difficult)[size_t(label)]++;
    }
    static double class_mean(const std::vector<int64_t>& h, const std::vector<int64_t>& m) {
        double sum = 0;
        int64_t seen = 0;
        for (size_t c = 0; c < h.size(); ++c)
            if (h[c] + m[c] > 0) sum += double(h[c]) / double(h[c] + m[c]), ++seen;
        return seen ? sum / double(seen) : 0.0;
    }
    json summary() const {
        std::vector<int64_t> he(hits.size()), me(hits.size());
        for (size_t c = 0; c < hits.size(); ++c) he[c] = hits[c] - hits_difficult[c], me[c] = misses[c] - misses_difficult[c];
        return {{"all", class_mean(hits, misses)}, {"difficult", class_mean(hits_difficult, misses_difficult)},
                {"not_difficult", class_mean(he, me)}};
    }
};

/// Deletion and insertion curves of one pixel order: the true class's probability per step.
struct curve_score {
    std::vector<double> deletion, insertion;
    double deletion_auc = 0, insertion_auc = 0;
    explicit curve_score(int64_t steps) : deletion(size_t(steps + 1)), insertion(size_t(steps + 1)) {}
    json summary(int64_t n) const {
        auto mean = [&](const std::vector<double>& v) {
            std::vector<double> m(v.size());
            for (size_t i = 0; i < v.size(); ++i) m[i] = v[i] / double(n);
            return m;
        };
        return {{"deletion_auc", deletion_auc / double(n)}, {"insertion_auc", insertion_auc / double(n)},
                {"deletion_curve", mean(deletion)}, {"insertion_curve", mean(insertion)}};
    }
};

struct method_scores {
    box_score graphcut, threshold;
    pointing_score pointing;
    double mass = 0;
    curve_score curves;
    double segment_seconds = 0;
    method_scores(int64_t classes, int64_t steps) : pointing(classes), curves(steps) {}
};

/// The parameterised layers (a node with a float weight of rank >= 2: Conv, Gemm, MatMul, ...), in
/// topological order, and the float constants each owns (its weight and bias).
struct layer_parameters {
    std::string node;
    std::vector<std::string> constants;
};

std::vector<layer_parameters> parameterised_layers(const graph& g) {
    std::vector<layer_parameters> out;
    for (const auto& n : g.nodes) {
        layer_parameters l{n.name, {}};
        bool weighted = false;
        for (const auto& in : n.inputs) {
            const constant* c = g.find_constant(in);
            if (!c || c->is_int || c->floats.empty()) continue;
            l.constants.push_back(in);
            weighted |= c->shape.size() >= 2;
        }
        if (weighted) out.push_back(std::move(l));
    }
    return out;
}

/// Adebayo et al.'s cascading randomisation: the top `count` layers' weights and biases replaced by
/// Gaussian values of the same standard deviation as the trained ones (a zero bias stays zero), seeded.
graph randomised(const graph& g, const std::vector<layer_parameters>& layers, size_t count, uint64_t seed) {
    graph r = g;
    for (size_t k = 0; k < count; ++k) {
        const auto& layer = layers[layers.size() - 1 - k];
        for (size_t j = 0; j < layer.constants.size(); ++j) {
            constant& c = r.constants.at(layer.constants[j]);
            double mean = 0, sq = 0;
            for (float v : c.floats) mean += v;
            mean /= double(c.floats.size());
            for (float v : c.floats) sq += (v - mean) * (v - mean);
            const double sd = std::sqrt(sq / double(c.floats.size()));
            std::mt19937_64 rng(seed ^ (0x9e3779b97f4a7c15ULL * (layers.size() - k)) ^ (j + 1));
            std::normal_distribution<double> normal(0.0, sd > 0 ? sd : 1.0);
            for (float& v : c.floats) v = sd > 0 ? float(normal(rng)) : 0.0f;
        }
    }
    return r;
}

} // namespace

command add_evaluate(CLI::App& app) {
    struct options {
        std::string model, dataset, split = "test", json, report, methods = "gradient,deconvnet,guided";
        int64_t limit = 0, batch = 16, curve_steps = 16, randomisation_images = 100;
        double tolerance = -1;
        bool per_image = false;
        uint64_t seed = 0;
        int threads = 0;
        segmentation_options seg;
        preprocess_flags pre;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX classifier")->required();
    app.add_option("DATASET_DIR", o->dataset, "A data set of tools/make_shapes_dataset.py (or one split's folder)")->required();
    app.add_option("--split", o->split, "The held-out split's folder")->capture_default_str();
    app.add_option("--limit", o->limit, "Evaluate only the first N images (0: all)")->capture_default_str();
    app.add_option("--method", o->methods, "Methods to compare (comma list)")->capture_default_str();
    app.add_option("--json", o->json, "Write the results (schema deepinside.evaluate/1) to this file");
    app.add_option("--report", o->report, "Write index.html and evaluation.md into this folder");
    app.add_flag("--per-image", o->per_image, "Also put every image's scores in the JSON");
    app.add_option("--batch", o->batch, "Images per forward and backward pass")->capture_default_str();
    app.add_option("--tolerance", o->tolerance,
                   "Pointing game tolerance in pixels (default: TorchRay's 15 px at 224 px, scaled to the input's size)");
    app.add_option("--curve-steps", o->curve_steps, "Points of the deletion and insertion curves, besides the start")->capture_default_str();
    app.add_option("--randomisation-images", o->randomisation_images,
                   "Images of the model-randomisation check (0: skip it)")->capture_default_str();
    app.add_option("--fg-quantile", o->seg.fg_quantile, "Foreground seeds: map above this quantile")->capture_default_str();
    app.add_option("--bg-quantile", o->seg.bg_quantile, "Background seeds: map below this quantile")->capture_default_str();
    app.add_option("--components", o->seg.components, "Gaussians per colour mixture")->capture_default_str();
    app.add_option("--gamma", o->seg.gamma, "GraphCut contrast weight")->capture_default_str();
    app.add_option("--seed", o->seed, "Seed of the mixtures, the random-order baseline and the randomised weights")->capture_default_str();
    add_threads_option(app, o->threads);
    o->pre.add_to(app);
    return [o] {
        const auto start_time = clock_type::now();
        std::vector<backward_rule> rules;
        for (const auto& m : split(o->methods, ',')) rules.push_back(parse_backward_rule(m));
        if (o->batch < 1 || o->batch > 4096) throw input_error(fmt::format("--batch {} must lie in [1, 4096]", o->batch));
        if (o->curve_steps < 1 || o->curve_steps > 1000) throw input_error(fmt::format("--curve-steps {} must lie in [1, 1000]", o->curve_steps));
        if (o->limit < 0 || o->randomisation_images < 0) throw input_error("--limit and --randomisation-images must be >= 0");
        o->seg.seed = o->seed;

        process_group world; // one process, or this rank of an mpirun
        const int threads = o->threads > 0 ? o->threads : threads_per_process(world);

        const graph g = read_onnx(o->model);
        if (g.inputs.empty() || g.inputs[0].shape.size() != 4)
            throw input_error(fmt::format("{}: evaluate needs an NCHW image input", o->model));
        // The size the images must have: the model's, or the first image's where the model leaves it open.
        shape_t one = g.inputs[0].shape;
        one[0] = 1;
        const std::vector<sample> samples = read_ground_truth(o->dataset, o->split, o->limit);
        const int64_t n = int64_t(samples.size());
        {
            const image first = read_image(samples.front().image);
            if (one[1] < 0) one[1] = 3;
            if (one[2] < 0) one[2] = first.height;
            if (one[3] < 0) one[3] = first.width;
        }
        const int width = int(one[3]), height = int(one[2]);
        const preprocess_options pre = o->pre.resolve(g);
        const int64_t batch = o->batch;
        shape_t batch_shape = one;
        batch_shape[0] = batch;
        network net(g, batch_shape, engine_flags(threads, "refuse", finite_check::outputs));
        const shape_t scores_shape = net.shape_of(net.score_tensor());
        const int64_t classes = element_count(scores_shape) / batch;
        for (const auto& s : samples)
            if (s.label >= classes)
                throw input_error(fmt::format("{}: class {} is beyond the model's {} classes", s.image, s.label, classes));
        const double tolerance = o->tolerance >= 0 ? o->tolerance : 15.0 * double(std::min(width, height)) / 224.0;

        // Deletion and insertion: every order (the methods', then a random one) in one batch per image.
        const int64_t steps = o->curve_steps, orders = int64_t(rules.size()) + 1;
        shape_t curve_shape = one;
        curve_shape[0] = orders * 2 * (steps + 1);
        network curve_net(g, curve_shape, engine_flags(threads, "refuse", finite_check::outputs));
        const int64_t pixels = int64_t(width) * height;

        const int64_t keep_maps = std::min(o->randomisation_images, n);
        const double half = std::sqrt(0.5);
        const int cw = int(std::lround(width * half)), ch = int(std::lround(height * half));
        const pixel_box centre{(width - cw) / 2, (height - ch) / 2, (width - cw) / 2 + cw, (height - ch) / 2 + ch};
        const pixel_box whole{0, 0, width, height};
        const binary_mask centre_mask = box_mask(centre, width, height), whole_mask = box_mask(whole, width, height);
        const map_point centre_pt{height / 2, width / 2};
        const std::vector<layer_parameters> layers = parameterised_layers(g);

        // This rank's share of the images (all of them in one process), in whole batches, so that each
        // batch is one of the single-process run. Every image leaves in `out.images`, in order, the
        // numbers the summary accumulates (its "facts"), and the record --per-image shows; the summary
        // is then accumulated from them in image order, by rank 0 under mpirun, so its sums are the
        // same additions in the same order whatever the split.
        rank_output out;
        const auto work = [&] {
            const auto [lo_share, hi_share] = world.share(size_t(n), size_t(batch));
            const int64_t lo = int64_t(lo_share), hi = int64_t(hi_share);
            const int64_t kept_hi = std::min(hi, keep_maps);
            // The first images' inputs and maps ([image - lo][method]), for the randomisation check.
            std::vector<tensor> kept_inputs(size_t(std::max<int64_t>(0, kept_hi - lo)));
            std::vector<std::vector<tensor>> kept_maps(kept_inputs.size());
            double saliency_seconds = 0, curve_seconds = 0;
            std::vector<int32_t> random_order(size_t(pixels), 0);
            std::iota(random_order.begin(), random_order.end(), 0);
            // The random order of an image is the seeded generator's after the images before it
            // (each shuffles the previous order): replayed up to this rank's first image.
            std::mt19937_64 order_rng(o->seed);
            for (int64_t i = 0; i < lo; ++i) std::shuffle(random_order.begin(), random_order.end(), order_rng);

            progress_bar bar("evaluate", int(hi - lo));
            for (int64_t first = lo; first < hi; first += batch) {
                const int64_t count = std::min(batch, hi - first);
                std::vector<image> pictures;
                std::vector<tensor> inputs, backgrounds;
                std::vector<binary_mask> truths;
                tensor x(batch_shape);
                const int64_t per = element_count(one);
                std::vector<int64_t> labels(static_cast<size_t>(batch));
                for (int64_t b = 0; b < batch; ++b) {
                    const sample& s = samples[size_t(first + std::min(b, count - 1))]; // a short last batch repeats its last image
                    if (b < count) {
                        pictures.push_back(read_sized(s.image, width, height));
                        inputs.push_back(image_to_tensor(pictures.back(), one[1], height, width, pre));
                        backgrounds.push_back(image_to_tensor(read_sized(s.background, width, height), one[1], height, width, pre));
                        truths.push_back(read_mask(s.mask, width, height));
                    }
                    std::copy(inputs.back().data.begin(), inputs.back().data.end(), x.data.begin() + b * per);
                    labels[size_t(b)] = s.label;
                }
                auto t0 = clock_type::now();
                net.forward(x);
                const tensor logits = net.read(net.score_tensor());
                std::vector<backward_request> requests;
                for (auto r : rules) requests.push_back({{target::kind::class_score, net.score_tensor(), labels, {}}, r});
                const std::vector<tensor> signals = net.backward(requests);
                std::vector<tensor> maps; // [method] -> [batch, H, W]
                for (const auto& s : signals) maps.push_back(saliency_map(s));
                std::vector<std::vector<tensor>> image_maps(static_cast<size_t>(count)); // [image][method] -> [H, W]
                for (int64_t b = 0; b < count; ++b)
                    for (const tensor& m : maps) image_maps[size_t(b)].push_back(image_of(m, b));
                saliency_seconds += seconds_since(t0);
                const std::vector<int64_t> predicted = top1_per_image(logits);

                // Segmentations, one per (image, method): independent, so spread over the threads.
                const int64_t jobs = count * int64_t(rules.size());
                std::vector<segmentation> segs(static_cast<size_t>(jobs));
                std::vector<double> seg_time(static_cast<size_t>(jobs));
                std::vector<std::string> seg_error(static_cast<size_t>(jobs));
#pragma omp parallel for schedule(dynamic) num_threads(net.threads())
                for (int64_t j = 0; j < jobs; ++j) {
                    const int64_t b = j / int64_t(rules.size()), m = j % int64_t(rules.size());
                    const auto t = clock_type::now();
                    try {
                        segs[size_t(j)] = segment(pictures[size_t(b)], image_maps[size_t(b)][size_t(m)], o->seg);
                    } catch (const std::exception& e) {
                        seg_error[size_t(j)] = e.what();
                    }
                    seg_time[size_t(j)] = seconds_since(t);
                }
                for (int64_t j = 0; j < jobs; ++j)
                    if (!seg_error[size_t(j)].empty())
                        throw input_error(fmt::format("{}: segmentation failed: {}", samples[size_t(first + j / int64_t(rules.size()))].image,
                                                      seg_error[size_t(j)]));

                for (int64_t b = 0; b < count; ++b) {
                    const sample& s = samples[size_t(first + b)];
                    const binary_mask& truth = truths[size_t(b)];
                    const bool right = predicted[size_t(b)] == s.label;
                    json facts = {{"right", right},
                                  {"centre_box", box_facts(centre_mask, centre, truth, s.box)},
                                  {"whole_image", box_facts(whole_mask, whole, truth, s.box)},
                                  {"centre_point", pointing_hit(truth, centre_pt, tolerance)},
                                  {"uniform_mass", double(std::count(truth.pixels.begin(), truth.pixels.end(), uint8_t(1))) / double(pixels)}};

                    if (first + b < kept_hi) kept_inputs[size_t(first + b - lo)] = inputs[size_t(b)];

                    // The curves: deletion from the image towards its background, insertion the other way.
                    std::vector<std::vector<int32_t>> order_list;
                    for (const tensor& map : image_maps[size_t(b)]) order_list.push_back(saliency_order(map));
                    std::shuffle(random_order.begin(), random_order.end(), order_rng);
                    order_list.push_back(random_order);
                    auto tc = clock_type::now();
                    tensor curve_input(curve_shape);
                    for (int64_t k = 0; k < orders; ++k)
                        for (int64_t st = 0; st <= steps; ++st) {
                            const int64_t visited = pixels_at_step(st, steps, pixels);
                            tensor del = inputs[size_t(b)], ins = backgrounds[size_t(b)];
                            copy_pixels(backgrounds[size_t(b)], del, order_list[size_t(k)], visited);
                            copy_pixels(inputs[size_t(b)], ins, order_list[size_t(k)], visited);
                            const int64_t row = (k * 2) * (steps + 1) + st;
                            std::copy(del.data.begin(), del.data.end(), curve_input.data.begin() + row * per);
                            std::copy(ins.data.begin(), ins.data.end(), curve_input.data.begin() + (row + steps + 1) * per);
                        }
                    curve_net.forward(curve_input);
                    const tensor curve_logits = curve_net.read(curve_net.score_tensor());
                    curve_seconds += seconds_since(tc);
                    auto probability = [&](int64_t row) { return double(softmax(curve_logits.data.data() + row * classes, classes)[size_t(s.label)]); };
                    json record = {{"image", s.image}, {"class", s.label}, {"predicted", predicted[size_t(b)]}, {"difficult", s.difficult}};
                    json curves = json::array();
                    for (int64_t k = 0; k < orders; ++k) {
                        std::vector<double> del(size_t(steps + 1)), ins(size_t(steps + 1));
                        for (int64_t st = 0; st <= steps; ++st) {
                            del[size_t(st)] = probability((k * 2) * (steps + 1) + st);
                            ins[size_t(st)] = probability((k * 2 + 1) * (steps + 1) + st);
                        }
                        if (k < int64_t(rules.size())) {
                            json& r = record[to_string(rules[size_t(k)])];
                            r["deletion_auc"] = curve_area(del);
                            r["insertion_auc"] = curve_area(ins);
                        }
                        curves.push_back({{"deletion", del}, {"insertion", ins}});
                    }
                    facts["curves"] = std::move(curves);

                    json methods = json::array();
                    for (size_t m = 0; m < rules.size(); ++m) {
                        const segmentation& seg = segs[size_t(b) * rules.size() + m];
                        const tensor& map = image_maps[size_t(b)][m];
                        // Baseline: the map thresholded at the foreground seeds' quantile, its largest component.
                        binary_mask above{width, height, std::vector<uint8_t>(size_t(pixels))};
                        for (int64_t p = 0; p < pixels; ++p) above.pixels[size_t(p)] = seg.seeds[size_t(p)] > 0;
                        above = largest_component(above);
                        const bool hit = pointing_hit(truth, map_maximum(map), tolerance);
                        const double mass = relevance_mass(map, truth);
                        methods.push_back({{"graphcut", box_facts(seg.mask, seg.box, truth, s.box)},
                                           {"threshold_box", box_facts(above, bounding_box(above), truth, s.box)},
                                           {"pointing_hit", hit},
                                           {"relevance_mass", mass},
                                           {"seconds", seg_time[size_t(b) * rules.size() + m]}});
                        json& r = record[to_string(rules[m])];
                        r["mask_iou"] = mask_iou(seg.mask, truth);
                        r["box_iou"] = box_iou(seg.box, s.box);
                        r["pointing_hit"] = hit;
                        r["relevance_mass"] = mass;
                        if (first + b < kept_hi) kept_maps[size_t(first + b - lo)].push_back(map);
                    }
                    facts["methods"] = std::move(methods);
                    facts["rho"] = json::array();
                    out.images.push_back({{"record", std::move(record)}, {"facts", std::move(facts)}});
                }
                bar.update(int(first + count - lo));
            }

            // Adebayo et al.'s cascading randomisation, from the top layer down, on this rank's share of
            // the first images: each image's Spearman correlation per stage and method.
            const auto tr = clock_type::now();
            if (kept_hi > lo) {
                progress_bar rbar("randomisation", int(layers.size()));
                for (size_t k = 1; k <= layers.size(); ++k) {
                    const graph rg = randomised(g, layers, k, o->seed);
                    network rnet(rg, batch_shape, engine_flags(threads, "refuse", finite_check::outputs));
                    for (int64_t first = lo; first < kept_hi; first += batch) {
                        const int64_t count = std::min(batch, kept_hi - first);
                        tensor x(batch_shape);
                        const int64_t per = element_count(one);
                        std::vector<int64_t> labels(static_cast<size_t>(batch));
                        for (int64_t b = 0; b < batch; ++b) {
                            const int64_t i = first + std::min(b, count - 1); // a short last batch repeats its last image
                            const tensor& in = kept_inputs[size_t(i - lo)];
                            std::copy(in.data.begin(), in.data.end(), x.data.begin() + b * per);
                            labels[size_t(b)] = samples[size_t(i)].label;
                        }
                        rnet.forward(x);
                        std::vector<backward_request> requests;
                        for (auto r : rules) requests.push_back({{target::kind::class_score, rnet.score_tensor(), labels, {}}, r});
                        const std::vector<tensor> signals = rnet.backward(requests);
                        std::vector<tensor> maps;
                        for (size_t m = 0; m < rules.size(); ++m) maps.push_back(saliency_map(signals[m]));
                        for (int64_t b = 0; b < count; ++b) {
                            std::vector<double> rho;
                            for (size_t m = 0; m < rules.size(); ++m)
                                rho.push_back(spearman(image_of(maps[m], b).data, kept_maps[size_t(first + b - lo)][m].data));
                            out.images[size_t(first + b - lo)]["facts"]["rho"].push_back(rho);
                        }
                    }
                    rbar.update(int(k));
                }
            }
            out.seconds["randomisation"] += seconds_since(tr);
            out.seconds["saliency"] += saliency_seconds;
            out.seconds["curves"] += curve_seconds;
        };
        if (const auto status = run_share(world, work, out, stdout)) return *status;

        // Rank 0 (or the one process): the summary, accumulated from every image's facts in order.
        std::vector<method_scores> scores;
        for (size_t m = 0; m < rules.size(); ++m) scores.emplace_back(classes, steps);
        curve_score random_curves(steps);
        box_score centre_box, whole_image;
        pointing_score centre_point(classes);
        double uniform_mass = 0;
        int64_t correct = 0, difficult = 0;
        std::vector<std::vector<double>> rho_sum(layers.size(), std::vector<double>(rules.size()));
        json per_image = json::array();
        for (int64_t i = 0; i < n; ++i) {
            const sample& s = samples[size_t(i)];
            const json& item = out.images.at(size_t(i));
            const json& facts = item.at("facts");
            const bool right = facts.at("right").get<bool>();
            correct += right;
            difficult += s.difficult;
            centre_box.add(facts.at("centre_box"), right);
            whole_image.add(facts.at("whole_image"), right);
            centre_point.add(s.label, facts.at("centre_point").get<bool>(), s.difficult);
            uniform_mass += number_of(facts.at("uniform_mass"));
            for (int64_t k = 0; k < orders; ++k) {
                curve_score& cs = k < int64_t(rules.size()) ? scores[size_t(k)].curves : random_curves;
                const json& curve = facts.at("curves").at(size_t(k));
                std::vector<double> del(size_t(steps + 1)), ins(size_t(steps + 1));
                for (int64_t st = 0; st <= steps; ++st) {
                    del[size_t(st)] = number_of(curve.at("deletion").at(size_t(st)));
                    ins[size_t(st)] = number_of(curve.at("insertion").at(size_t(st)));
                    cs.deletion[size_t(st)] += del[size_t(st)];
                    cs.insertion[size_t(st)] += ins[size_t(st)];
                }
                cs.deletion_auc += curve_area(del);
                cs.insertion_auc += curve_area(ins);
            }
            for (size_t m = 0; m < rules.size(); ++m) {
                method_scores& ms = scores[m];
                const json& f = facts.at("methods").at(m);
                ms.segment_seconds += number_of(f.at("seconds"));
                ms.graphcut.add(f.at("graphcut"), right);
                ms.threshold.add(f.at("threshold_box"), right);
                ms.pointing.add(s.label, f.at("pointing_hit").get<bool>(), s.difficult);
                ms.mass += number_of(f.at("relevance_mass"));
            }
            if (i < keep_maps)
                for (size_t k = 0; k < layers.size(); ++k)
                    for (size_t m = 0; m < rules.size(); ++m) rho_sum[k][m] += number_of(facts.at("rho").at(k).at(m));
            if (o->per_image) per_image.push_back(item.at("record"));
        }

        json randomisation = json::object();
        if (keep_maps > 0) {
            json stages = json::array();
            for (size_t k = 1; k <= layers.size(); ++k) {
                json stage = {{"randomised_from", layers[layers.size() - k].node}, {"layers", k}};
                for (size_t m = 0; m < rules.size(); ++m) stage[to_string(rules[m])] = rho_sum[k - 1][m] / double(keep_maps);
                stages.push_back(std::move(stage));
            }
            randomisation = {{"images", keep_maps},
                             {"what", "Spearman rank correlation between each map and the trained model's map, averaged over "
                                      "images, after re-initialising the top k parameterised layers"},
                             {"stages", std::move(stages)}};
        }
        const double saliency_seconds = out.seconds["saliency"], curve_seconds = out.seconds["curves"];
        const double randomisation_seconds = keep_maps > 0 ? out.seconds["randomisation"] : 0.0;

        // The summary.
        json methods = json::object();
        for (size_t m = 0; m < rules.size(); ++m) {
            const method_scores& ms = scores[m];
            methods[to_string(rules[m])] = {
                {"segmentation", ms.graphcut.summary(n)},
                {"threshold_box", ms.threshold.summary(n)},
                {"pointing_game", ms.pointing.summary()},
                {"relevance_mass", ms.mass / double(n)},
                {"curves", ms.curves.summary(n)},
                {"segmentation_ms_per_image", 1e3 * ms.segment_seconds / double(n)},
            };
        }
        const double total = seconds_since(start_time);
        json summary = {
            {"schema", "deepinside.evaluate/1"},
            {"model", o->model},
            {"dataset", o->dataset},
            {"split", o->split},
            {"images", n},
            {"difficult_images", difficult},
            {"input", {{"width", width}, {"height", height}}},
            {"classifier", {{"top1_accuracy", double(correct) / double(n)}}},
            {"target", "the true class's unnormalised score"},
            {"options",
             {{"fg_quantile", o->seg.fg_quantile}, {"bg_quantile", o->seg.bg_quantile}, {"clamp_low", o->seg.clamp_low},
              {"clamp_high", o->seg.clamp_high}, {"components", o->seg.components}, {"gamma", o->seg.gamma},
              {"pointing_tolerance_px", tolerance}, {"curve_steps", steps}, {"seed", o->seed}, {"batch", batch}}},
            {"methods", methods},
            {"baselines",
             {{"centre_box", centre_box.summary(n)},
              {"whole_image", whole_image.summary(n)},
              {"centre_point", centre_point.summary()},
              {"uniform_mass", uniform_mass / double(n)},
              {"random_order", random_curves.summary(n)}}},
            {"randomisation", randomisation},
            {"time",
             {{"processes", world.size()},
              {"threads", net.threads()},
              {"saliency_ms_per_image", 1e3 * saliency_seconds / double(n)},
              {"curves_ms_per_image", 1e3 * curve_seconds / double(n)},
              {"randomisation_seconds", randomisation_seconds},
              {"total_seconds", total}}},
        };
        if (o->per_image) summary["per_image"] = std::move(per_image);

        // Stdout: the headline table.
        fmt::print("{} images ({} difficult), classifier top-1 accuracy {:.1f} %\n", n, difficult, 100.0 * correct / double(n));
        fmt::print("{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "", "mask IoU", "loc.", "pointing", "p. diff.", "mass",
                   "del/ins");
        for (size_t m = 0; m < rules.size(); ++m) {
            const json& s = methods[to_string(rules[m])];
            fmt::print("{:<22} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>4.2f}/{:.2f}\n",
                       fmt::format("{} + GraphCut", to_string(rules[m])), s["segmentation"]["mean_iou"].get<double>(),
                       s["segmentation"]["localisation"].get<double>(), s["pointing_game"]["all"].get<double>(),
                       s["pointing_game"]["difficult"].get<double>(), s["relevance_mass"].get<double>(),
                       s["curves"]["deletion_auc"].get<double>(), s["curves"]["insertion_auc"].get<double>());
        }
        const json& base = summary["baselines"];
        fmt::print("{:<22} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>9.3f} {:>4.2f}/{:.2f}\n", "baselines",
                   base["centre_box"]["mean_iou"].get<double>(), base["centre_box"]["localisation"].get<double>(),
                   base["centre_point"]["all"].get<double>(), base["centre_point"]["difficult"].get<double>(),
                   base["uniform_mass"].get<double>(), base["random_order"]["deletion_auc"].get<double>(),
                   base["random_order"]["insertion_auc"].get<double>());
        fmt::print("time: {:.1f} ms saliency (all methods) per image, {:.0f} s in all\n", 1e3 * saliency_seconds / double(n), total);
        if (!o->json.empty()) write_text(o->json, summary.dump(2) + "\n");
        if (!o->report.empty()) write_evaluation_report(o->report, summary);
        return 0;
    };
}

} // namespace deepinside::cli
