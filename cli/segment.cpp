// deepinside segment MODEL IMAGE... [--class C | --top K] [--method M] [segmentation options] --out PREFIX
// Weakly supervised segmentation (the paper's section 3.2): per image, one forward pass, one batched
// backward pass for the chosen classes, each class's saliency map, then segment() on the image as the
// network was fed it. Writes PREFIX[.<image stem>][.<class>].{mask,seeds,overlay}.png and PREFIX.json.
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/saliency.hpp>
#include <deepinside/segmentation.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>

namespace deepinside::cli {

namespace {

nlohmann::json box_json(const pixel_box& b) {
    if (b.empty()) return nullptr;
    return {{"x0", b.x0}, {"y0", b.y0}, {"x1", b.x1}, {"y1", b.y1}};
}

/// A half-open box of the network's input (in_w x in_h) in the original image's pixels (w x h): the
/// area the box's pixels cover there (the resize maps pixel edges linearly), widened to whole pixels.
pixel_box scale_box(const pixel_box& b, int in_w, int in_h, int w, int h) {
    if (b.empty()) return {};
    const auto floor_div = [](int64_t a, int64_t d) { return int(a / d); };
    const auto ceil_div = [](int64_t a, int64_t d) { return int((a + d - 1) / d); };
    return {floor_div(int64_t(b.x0) * w, in_w), floor_div(int64_t(b.y0) * h, in_h), ceil_div(int64_t(b.x1) * w, in_w),
            ceil_div(int64_t(b.y1) * h, in_h)};
}

double area_fraction(const binary_mask& m) {
    int64_t n = 0;
    for (uint8_t p : m.pixels) n += p != 0;
    return m.pixels.empty() ? 0.0 : double(n) / double(m.pixels.size());
}

} // namespace

command add_segment(CLI::App& app) {
    struct options {
        std::string model, labels, out, method = "gradient";
        std::vector<std::string> images;
        std::optional<int64_t> class_index;
        std::optional<int64_t> top;
        segmentation_options seg;
        bool all_components = false;
        int threads = 0;
        preprocess_flags pre;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("IMAGE", o->images, "PNG or JPEG images, folders of them, or quoted globs (stretched to the network's size)")->required();
    auto* cls = app.add_option("--class", o->class_index, "Segment for this class (default: the top-1 prediction)");
    auto* top =
        app.add_option("--top", o->top, "Segment for each of the top-K predicted classes (one batched backward pass)");
    cls->excludes(top);
    app.add_option("--method", o->method, "Saliency method: gradient, deconvnet or guided")->capture_default_str();
    app.add_option("--fg-quantile", o->seg.fg_quantile,
                   "Foreground colour-model seeds: the map at or above this quantile")
        ->capture_default_str();
    app.add_option("--bg-quantile", o->seg.bg_quantile,
                   "Background colour-model seeds: the map at or below this quantile")
        ->capture_default_str();
    app.add_option("--clamp-high", o->seg.clamp_high, "Foreground seeds at or above this quantile are hard constraints")
        ->capture_default_str();
    app.add_option("--clamp-low", o->seg.clamp_low, "Background seeds at or below this quantile are hard constraints")
        ->capture_default_str();
    app.add_option("--components", o->seg.components, "Gaussians per colour mixture")->capture_default_str();
    app.add_option("--gamma", o->seg.gamma, "Weight of GraphCut's contrast-sensitive pairwise term")
        ->capture_default_str();
    app.add_option("--em-iterations", o->seg.em_iterations, "EM iterations per colour mixture")->capture_default_str();
    app.add_option("--seed", o->seg.seed, "Seed of the colour mixtures' initialisation")->capture_default_str();
    app.add_flag("--all-components", o->all_components,
                 "Keep GraphCut's whole foreground instead of its largest connected component");
    app.add_option("--out", o->out, "Prefix of the output files (PREFIX.json, PREFIX[.stem][.class].mask.png, ...)")
        ->required();
    app.add_option("--labels", o->labels, "Class names, one per line (default: model metadata or MODEL's .labels.txt)");
    add_threads_option(app, o->threads);
    o->pre.add_to(app);
    return [o] {
        // Options first: a typo should not wait for a model to load, and must leave no file behind.
        const backward_rule rule = parse_backward_rule(o->method);
        o->seg.largest_component = !o->all_components;
        try {
            check_segmentation_options(o->seg);
        } catch (const input_error& e) {
            // The library names its fields; the user typed options.
            std::string message = e.what();
            for (const auto& [field, flag] :
                 {std::pair{"fg_quantile", "--fg-quantile"}, std::pair{"bg_quantile", "--bg-quantile"},
                  std::pair{"clamp_low", "--clamp-low"}, std::pair{"clamp_high", "--clamp-high"},
                  std::pair{"components", "--components"}, std::pair{"gamma", "--gamma"},
                  std::pair{"em_iterations", "--em-iterations"}})
                for (size_t at = message.find(field); at != std::string::npos;
                     at = message.find(field, at + std::string(flag).size()))
                    message.replace(at, std::string(field).size(), flag);
            throw input_error(message);
        }
        if (o->top && *o->top < 1)
            throw input_error(fmt::format("--top expects a number of classes >= 1, got {}", *o->top));
        if (o->class_index && *o->class_index < 0)
            throw input_error(fmt::format("--class expects a class index >= 0, got {}", *o->class_index));
        if (o->out.empty()) throw input_error("--out expects a non-empty prefix");
        o->images = expand_image_arguments(o->images); // folders and quoted globs
        const bool several_images = o->images.size() > 1;
        std::vector<std::string> stems;
        for (const auto& path : o->images) {
            stems.push_back(std::filesystem::path(path).stem().string());
            if (several_images && std::count(stems.begin(), stems.end(), stems.back()) > 1)
                throw input_error(fmt::format(
                    "{}: another image has the same file stem '{}'; output names would collide", path, stems.back()));
        }
        std::vector<image> pictures;
        for (const auto& path : o->images) pictures.push_back(read_image(path));

        const graph g = read_onnx(o->model);
        const auto labels = load_labels(o->labels, o->model, g);
        const preprocess_options pre = o->pre.resolve(g);
        const int64_t classes_wanted = o->top.value_or(1);
        const bool several_classes = !o->class_index && classes_wanted > 1;

        nlohmann::json results = nlohmann::json::array();
        std::unique_ptr<network> net;
        for (size_t k = 0; k < pictures.size(); ++k) {
            const image& img = pictures[k];
            const std::string& path = o->images[k];
            const shape_t shape = input_shape_for_image(g, img);
            if (!net || net->input_shape() != shape) {
                net = std::make_unique<network>(g, shape, engine_flags(o->threads, "refuse"));
                require_label_count(labels, classes_per_image(net->shape_of(net->score_tensor())), o->labels, o->model, g);
            }
            const tensor x = image_to_tensor(img, shape[1], shape[2], shape[3], pre);
            net->forward(x);
            const tensor scores = net->read(net->score_tensor());
            const int64_t n_classes = scores.size();
            std::vector<int64_t> chosen;
            if (o->class_index) {
                if (*o->class_index >= n_classes)
                    throw input_error(fmt::format("--class {} is out of range: {} has {} classes", *o->class_index,
                                                  o->model, n_classes));
                chosen = {*o->class_index};
            } else {
                chosen = top_k(scores.data.data(), n_classes, classes_wanted);
            }
            std::vector<backward_request> requests;
            for (int64_t c : chosen) requests.push_back({target{target::kind::class_score, "", {c}, {}}, rule});
            const std::vector<tensor> signals = net->backward(requests);
            const std::vector<float> probabilities = softmax(scores.data.data(), n_classes);

            const int in_h = int(shape[2]), in_w = int(shape[3]);
            const image fed = resize_image(img, in_w, in_h);
            std::string line = fmt::format("{}:", path);
            for (size_t r = 0; r < chosen.size(); ++r) {
                const int64_t c = chosen[r];
                const tensor batch_map = saliency_map(signals[r]);
                const tensor map({shape[2], shape[3]}, batch_map.data);
                segmentation s;
                try {
                    s = segment(fed, map, o->seg);
                } catch (const input_error& e) {
                    throw input_error(fmt::format("{}: class {}: {}", path, c, e.what()));
                }
                std::string prefix = o->out;
                if (several_images) prefix += "." + stems[k];
                if (several_classes) prefix += fmt::format(".{}", c);
                write_png(prefix + ".mask.png", mask_image(s.mask));
                write_png(prefix + ".seeds.png", seeds_image(s));
                write_png(prefix + ".overlay.png", segmentation_overlay(fed, s));

                const pixel_box original = scale_box(s.box, in_w, in_h, img.width, img.height);
                int64_t fg_seeds = 0, bg_seeds = 0, hard_fg = 0, hard_bg = 0;
                for (size_t i = 0; i < s.seeds.size(); ++i) {
                    fg_seeds += s.seeds[i] > 0;
                    bg_seeds += s.seeds[i] < 0;
                    hard_fg += s.hard[i] > 0;
                    hard_bg += s.hard[i] < 0;
                }
                const double area = area_fraction(s.mask);
                results.push_back({
                    {"image", path},
                    {"image_size", {{"width", img.width}, {"height", img.height}}},
                    {"input_size", {{"width", in_w}, {"height", in_h}}},
                    {"rank", r},
                    {"class", c},
                    {"label", label_of(labels, c)},
                    {"score", scores.data[size_t(c)]},
                    {"probability", probabilities[size_t(c)]},
                    {"method", to_string(rule)},
                    {"box", box_json(s.box)},
                    {"box_original", box_json(original)},
                    {"mask_area", area},
                    {"graphcut_area", area_fraction(s.graphcut)},
                    {"thresholds",
                     {{"fg", s.fg_threshold},
                      {"bg", s.bg_threshold},
                      {"hard_fg", s.hard_fg_threshold},
                      {"hard_bg", s.hard_bg_threshold}}},
                    {"seeds", {{"fg", fg_seeds}, {"bg", bg_seeds}, {"hard_fg", hard_fg}, {"hard_bg", hard_bg}}},
                    {"files",
                     {{"mask", prefix + ".mask.png"},
                      {"seeds", prefix + ".seeds.png"},
                      {"overlay", prefix + ".overlay.png"}}},
                });
                line += fmt::format("{} class {} ({}) score {:.4g}: box [{},{})x[{},{}) of {}x{}, [{},{})x[{},{}) of "
                                    "{}x{}, mask {:.1f}% "
                                    "-> {}.{{mask,seeds,overlay}}.png",
                                    r == 0 ? "" : ";", c, label_of(labels, c), scores.data[size_t(c)], s.box.x0,
                                    s.box.x1, s.box.y0, s.box.y1, in_w, in_h, original.x0, original.x1, original.y0,
                                    original.y1, img.width, img.height, 100.0 * area, prefix);
            }
            fmt::print("{}\n", line);
        }

        const nlohmann::json report = {
            {"model", o->model},
            {"method", to_string(rule)},
            {"options",
             {{"fg_quantile", o->seg.fg_quantile},
              {"bg_quantile", o->seg.bg_quantile},
              {"clamp_low", o->seg.clamp_low},
              {"clamp_high", o->seg.clamp_high},
              {"components", o->seg.components},
              {"gamma", o->seg.gamma},
              {"em_iterations", o->seg.em_iterations},
              {"seed", o->seg.seed},
              {"largest_component", o->seg.largest_component},
              {"class", o->class_index ? nlohmann::json(*o->class_index) : nlohmann::json(nullptr)},
              {"top", classes_wanted}}},
            {"results", results},
        };
        write_text(o->out + ".json", report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
        return 0;
    };
}

} // namespace deepinside::cli
