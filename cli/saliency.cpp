// deepinside saliency MODEL (IMAGE|FOLDER|GLOB... | --input X.npy) [--class C] [--method M] [--layer T ...] [--out OUT]
// Loads the model once and runs the pictures through it in batches: per batch one forward pass and
// one stacked backward pass for every (method, target) pair, then each image's files:
// PREFIX[.method.target].grad.npy (the exact signal), .npy (the map), .png (the heatmap), .overlay.png,
// and with --panel PREFIX.panel.png (the picture and every pair side by side).
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"
#include "parallel.hpp"
#include "progress.hpp"

#include <deepinside/display.hpp>
#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>

namespace deepinside::cli {

namespace {

using json = nlohmann::ordered_json; // keys in the order written: the schema first

/// How the maps are shown (the raw signal and the map's .npy are never clipped).
struct display_flags {
    std::string map = "max-abs", colormap, overlay_size = "network";
    float clip = 99.5f, alpha = 0.6f;
    int overlay_max = 1024;
    bool shared_scale = false, no_overlay = false, panel = false;

    void add_to(CLI::App& app) {
        app.add_option(
               "--map", map,
               "Map of the signal: max-abs (the paper's: max over channels of |signal|), sum-abs, signed (sum over "
               "channels, shown diverging around 0) or positive (its positive part)")
            ->capture_default_str();
        app.add_option("--clip", clip,
                       "Percentile of |map| shown at full colour (larger values are clipped); 100: the maximum")
            ->capture_default_str()
            ->check(CLI::Range(0.001f, 100.0f));
        app.add_option("--colormap", colormap,
                       "inferno, viridis, gray or coolwarm (default: inferno, coolwarm for --map signed)");
        app.add_option("--alpha", alpha, "Opacity of the heatmap over the picture")
            ->capture_default_str()
            ->check(CLI::Range(0.0f, 1.0f));
        app.add_option(
               "--overlay-size", overlay_size,
               "network: draw the overlay on the picture as fed to the network; image: on the part of the original "
               "picture it shows, at most --overlay-max pixels on a side")
            ->capture_default_str()
            ->check(CLI::IsMember({"network", "image"}));
        app.add_option("--overlay-max", overlay_max,
                       "Longest side of an --overlay-size image overlay, in pixels (0: no limit)")
            ->capture_default_str()
            ->check(CLI::Range(0, 1 << 16));
        app.add_flag(
            "--shared-scale", shared_scale,
            "One colour scale for every method and class of the same image (to compare them), instead of one per map");
        app.add_flag("--no-overlay", no_overlay, "Do not write the .overlay.png files");
        app.add_flag("--panel", panel, "Also write PREFIX.panel.png: the picture and every requested map side by side");
    }
};

/// Statistics of a map [H, W] for the JSON: what a script needs to compare maps without reading them.
json map_statistics(const tensor& map, float scale) {
    double sum = 0, sum_sq = 0;
    int64_t argmax = 0;
    for (int64_t i = 0; i < map.size(); ++i) {
        sum += map.data[size_t(i)];
        sum_sq += double(map.data[size_t(i)]) * map.data[size_t(i)];
        if (map.data[size_t(i)] > map.data[size_t(argmax)]) argmax = i;
    }
    const auto [lo, hi] = std::minmax_element(map.data.begin(), map.data.end());
    const double n = double(map.size());
    const int64_t width = map.shape.back();
    return {{"min", *lo},
            {"max", *hi},
            {"mean", sum / n},
            {"std", std::sqrt(std::max(0.0, sum_sq / n - (sum / n) * (sum / n)))},
            {"argmax", {argmax / width, argmax % width}},
            {"display_scale", scale}};
}

/// A tile of the panel: pictures of small networks (28 x 28) are enlarged by whole pixels to at
/// least 112 rows, so that their captions fit under them and each input pixel stays one square.
image panel_tile(const image& img) {
    const int factor = std::max(1, (112 + img.height - 1) / std::max(img.height, 1));
    if (factor == 1) return img;
    image big;
    big.width = img.width * factor;
    big.height = img.height * factor;
    big.channels = img.channels;
    big.pixels.resize(size_t(big.width) * size_t(big.height) * size_t(big.channels));
    for (int y = 0; y < big.height; ++y)
        for (int x = 0; x < big.width; ++x)
            for (int c = 0; c < img.channels; ++c)
                big.pixels[(size_t(y) * size_t(big.width) + size_t(x)) * size_t(img.channels) + size_t(c)] =
                    img.pixels[(size_t(y / factor) * size_t(img.width) + size_t(x / factor)) * size_t(img.channels) +
                               size_t(c)];
    return big;
}

} // namespace

command add_saliency(CLI::App& app) {
    struct options {
        std::string model, labels, input, out, classes, methods = "gradient", layer, unit, reduce = "max",
                                                        nonrelu = "refuse", wrt, save_input;
        std::vector<std::string> images;
        std::optional<int64_t> channel;
        bool probability = false, winograd = false;
        int threads = 0;
        int64_t batch = 0;
        image_flags pre;
        display_flags show;
        json_output json_out;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    auto* img =
        app.add_option("IMAGE", o->images, "PNG or JPEG images, folders of them, or quoted globs ('photos/*.jpg')");
    auto* npy =
        app.add_option("--input", o->input, "float32 .npy tensor used exactly as given (NCHW), no preprocessing");
    img->excludes(npy);
    auto* cls = app.add_option("--class", o->classes,
                               "Class index or comma list (default: the top-1 prediction of each image)");
    app.add_option("--method", o->methods, "gradient, deconvnet, guided, or a comma list")->capture_default_str();
    app.add_option("--layer", o->layer,
                   "Visualise activity of this tensor or node instead of a class score (alone: the whole tensor's sum)")
        ->excludes(cls);
    app.add_option("--channel", o->channel, "Channel of --layer");
    app.add_option("--unit", o->unit, "Y,X of the unit in --channel (default: see --reduce)");
    app.add_option("--reduce", o->reduce, "Without --unit: max (the channel's largest unit, per image) or sum")
        ->capture_default_str();
    app.add_flag("--probability", o->probability,
                 "Differentiate the softmax probability instead of the unnormalised score");
    app.add_option("--wrt", o->wrt, "Take the signal at this tensor instead of the input");
    app.add_option("--nonrelu", o->nonrelu,
                   "deconvnet/guided at a non-ReLU nonlinearity: refuse, or gradient (apply its exact derivative)")
        ->capture_default_str();
    app.add_option(
        "--out", o->out,
        "One image: the files' prefix (default 'saliency'); several images, or a folder (existing or ending in '/'): "
        "the folder of FOLDER/<image stem>... (default 'saliency/')");
    app.add_option("--batch", o->batch,
                   "Images per forward/backward pass (default: about 4 MB of input, counting each image once per "
                   "(method, class) pair of the stacked backward pass; at most 64)")
        ->check(positive_integer("images", 65536));
    app.add_option("--json", o->json_out.path,
                   "Write a JSON summary (schema deepinside.saliency/1, see README) to FILE, or - for stdout");
    app.add_option("--save-input", o->save_input,
                   "Write the exact float32 tensor fed to the network ([N, C, H, W], every image) as .npy");
    app.add_option("--labels", o->labels, "Class names, one per line (default: model metadata or MODEL's .labels.txt)");
    add_threads_option(app, o->threads);
    add_winograd_flag(app, o->winograd);
    o->pre.add_to(app);
    o->show.add_to(app);
    return [o] {
        const auto start = std::chrono::steady_clock::now();
        if (o->images.empty() && o->input.empty())
            throw input_error("saliency needs IMAGE files or folders, or --input X.npy");
        // Options first: a typo should not wait for a model to load.
        std::vector<backward_rule> rules;
        for (const auto& m : split(o->methods, ',')) rules.push_back(parse_backward_rule(m));
        const map_reduction reduction = parse_map_reduction(o->show.map);
        const bool signed_map = reduction == map_reduction::signed_sum;
        // Thousands of files: each is renamed into place complete, and all are flushed to disk once,
        // at the end of the run (a flush per file cost 3.2 s instead of 0.48 s on 256 small maps).
        constexpr write_durability later = write_durability::deferred;
        heatmap(tensor({1, 1}),
                {o->show.colormap, signed_map, 0}); // an unknown --colormap is refused now, not after the work
        if (o->layer.empty() && (o->channel || !o->unit.empty()))
            throw input_error("--channel and --unit need --layer");
        std::vector<int64_t> classes;
        if (!o->classes.empty()) classes = parse_int_list(o->classes, "--class");
        std::optional<target> layer;
        if (!o->layer.empty()) layer = layer_target(o->layer, o->channel, o->unit, o->reduce);
        // The (method, target) pairs of each image: its maps, and the copies of the batch that the
        // backward pass stacks.
        const size_t pairs = rules.size() * (layer || classes.empty() ? 1 : classes.size());
        const std::vector<std::string> paths = expand_image_arguments(o->images);
        std::FILE* text = o->json_out.text_stream();
        process_group world; // one process, or this rank of an mpirun
        if (world.size() > 1 && !o->input.empty())
            throw input_error("--input X.npy is one tensor for one process; under mpirun give images or folders");
        if (world.size() > 1 && !o->save_input.empty())
            throw input_error("--save-input writes one file from one process; run it without mpirun");
        rank_output out; // this rank's images, lines and counts; the whole run's on rank 0 at the end
        const auto say = [&](const std::string& line) { out.say(world, text, line); };
        const int threads = o->threads > 0 ? o->threads : threads_per_process(world);

        json& images_json = out.images;
        int64_t files_written = 0, maps_computed = 0;
        int64_t batch = 0;
        const bool from_npy = !o->input.empty();
        const size_t image_count = from_npy ? 1 : paths.size();
        // This rank's share of the work; one process does all of it, and its exceptions leave as usual.
        const auto work = [&] {
            graph g = read_onnx(o->model);
            engine_options engine = engine_flags(threads, o->nonrelu);
            engine.winograd = o->winograd;
            // The tensors a request reads must not be fused away.
            if (!o->layer.empty()) engine.keep.push_back(o->layer);
            if (!o->wrt.empty()) engine.keep.push_back(o->wrt);
            batch_network nets(g, engine);
            const graph& header = nets.header();
            const auto labels = load_labels(o->labels, o->model, header);
            const image_flags::resolved how = o->pre.resolve(header);

            // The units of work: each picture (batched below), or the --input tensor as one batch.
            std::optional<output_names> names;
            if (!from_npy) {
                names.emplace(o->out, paths, "saliency");
                // The files each image gets: PREFIX.{grad.npy,npy,png,overlay.png} for one (method,
                // target) pair, else PREFIX.METHOD.TARGET.*, and PREFIX.panel.png.
                std::vector<std::string> endings{".panel.png"};
                if (pairs == 1)
                    endings.insert(endings.end(), {".grad.npy", ".npy", ".png", ".overlay.png"});
                else
                    for (const auto r : rules) endings.push_back(fmt::format(".{}.", to_string(r)));
                names->refuse_overwriting(paths, endings);
            }
            std::vector<tensor> saved_inputs;
            std::string score_name;
            progress_bar progress("saliency", int(image_count));

            // Runs one batch: forward, the requests, and every image's files and JSON.
            auto run_batch = [&](const tensor& x, const std::vector<const fed_picture*>& pictures, size_t first_index) {
                if (nets.forward(x) && !layer)
                    require_label_count(labels, classes_per_image(nets.net().shape_of(nets.net().score_tensor())),
                                        o->labels, o->model, header);
                network* net = &nets.net();
                if (!o->save_input.empty()) saved_inputs.push_back(x);
                const int64_t n = x.shape[0]; // the images of this batch; the network may take more (padding)
                score_name = o->probability ? net->probability_tensor() : net->score_tensor();
                const tensor scores = net->read(net->score_tensor());
                const int64_t class_count = classes_per_image(scores.shape);

                std::vector<target> targets;
                std::vector<std::string> target_names; // per target, for image b: see name_of below
                if (layer) {
                    targets.push_back(*layer);
                } else if (classes.empty()) {
                    targets.push_back({target::kind::class_score, score_name, top1_per_image(scores), {}});
                } else {
                    for (int64_t c : classes) {
                        if (c < 0 || c >= class_count)
                            throw input_error(
                                fmt::format("--class {}: the model has classes 0 to {}", c, class_count - 1));
                        targets.push_back({target::kind::class_score, score_name, {c}, {}});
                    }
                }
                std::vector<backward_request> requests;
                for (const auto r : rules)
                    for (const auto& t : targets) requests.push_back({t, r});
                const std::vector<tensor> signals = net->backward(requests, o->wrt);
                maps_computed += int64_t(requests.size()) * n;

                const auto class_of = [&](const target& t, int64_t b) {
                    return t.index.size() == 1 ? t.index[0] : t.index[size_t(b)];
                };
                const auto target_name = [&](const target& t, int64_t b) {
                    return layer ? (o->channel ? fmt::format("channel{}", *o->channel) : std::string("all"))
                                 : fmt::format("{}", class_of(t, b));
                };
                const auto target_json = [&](const target& t, int64_t b) -> json {
                    if (layer)
                        return {{"kind", "layer"},
                                {"tensor", o->layer},
                                {"channel", o->channel ? json(*o->channel) : json(nullptr)},
                                {"unit", o->unit.empty() ? json(nullptr) : json(t.unit)},
                                {"reduce", o->unit.empty() ? o->reduce : "unit"}};
                    const int64_t c = class_of(t, b);
                    return {{"kind", o->probability ? "probability" : "score"},
                            {"class", c},
                            {"label", label_of(labels, c)},
                            {"tensor", score_name}};
                };
                const bool single_pair = requests.size() == 1;
                // Each pair's map of every image of the batch ([N, H, W]; none for a signal that is not an image).
                std::vector<tensor> batch_maps;
                for (const auto& signal : signals)
                    if (signal.shape.size() == 4) batch_maps.push_back(reduce_map(signal, reduction));

                if (from_npy) {
                    // The --input tensor's files hold the whole batch, as they always have.
                    for (size_t k = 0; k < requests.size(); ++k) {
                        const target& t = requests[k].what;
                        const bool same =
                            std::all_of(t.index.begin(), t.index.end(), [&](int64_t c) { return c == t.index[0]; });
                        const std::string tname = layer || same ? target_name(t, 0) : "top1";
                        const std::string prefix =
                            single_pair ? o->out : fmt::format("{}.{}.{}", o->out, to_string(requests[k].rule), tname);
                        const tensor& signal = signals[k];
                        write_npy(prefix + ".grad.npy", n == 1 ? image_of(signal, 0) : signal, later);
                        ++files_written;
                        std::string written = ".grad.npy";
                        if (signal.shape.size() == 4) {
                            const tensor& map = batch_maps[k];
                            write_npy(prefix + ".npy", n == 1 ? image_of(map, 0) : map, later);
                            for (int64_t b = 0; b < n; ++b) {
                                const tensor one = image_of(map, b);
                                write_png(
                                    prefix + (n == 1 ? "" : fmt::format(".{}", b)) + ".png",
                                    heatmap(one, {o->show.colormap, signed_map, display_scale(one, o->show.clip)}),
                                    later);
                            }
                            files_written += 1 + n;
                            written = ".{grad.npy,npy,png}";
                        }
                        fmt::print(text, "{:<10} {:<32} -> {}{}\n", to_string(requests[k].rule),
                                   layer  ? fmt::format("{} {}", o->layer, tname)
                                   : same ? fmt::format("class {} ({})", t.index[0], label_of(labels, t.index[0]))
                                          : fmt::format("classes {}", fmt::join(t.index, ",")),
                                   prefix, written);
                        for (int64_t b = 0; b < n; ++b) {
                            if (k == 0)
                                images_json.push_back({{"input", o->input}, {"index", b}, {"maps", json::array()}});
                            json entry = {{"method", to_string(requests[k].rule)},
                                          {"target", target_json(t, b)},
                                          {"files", {{"signal", prefix + ".grad.npy"}, {"batch_index", b}}}};
                            if (signal.shape.size() == 4) {
                                const tensor one = image_of(batch_maps[k], b);
                                entry["statistics"] = map_statistics(one, display_scale(one, o->show.clip));
                            }
                            images_json[size_t(b)]["maps"].push_back(entry);
                        }
                    }
                    return;
                }

                names->create_folder();
                // Each image's files, JSON entry and line, made on the run's threads into its own slot,
                // then reported in order.
                struct image_result {
                    json entry;
                    std::string line;
                    int64_t files = 0;
                };
                std::vector<image_result> results(static_cast<size_t>(n));
                for_each_index(size_t(n), threads, [&](size_t slot) {
                    const int64_t b = int64_t(slot);
                    image_result& result = results[slot];
                    const fed_picture& pic = *pictures[slot];
                    const size_t index = first_index + size_t(b);
                    const std::string& base = names->prefix(index);
                    const int64_t top_count = std::min<int64_t>(5, class_count);
                    json top = json::array();
                    const auto probs = softmax(scores.data.data() + b * class_count, class_count);
                    for (int64_t c : top_k(scores.data.data() + b * class_count, class_count, top_count))
                        top.push_back({{"class", c},
                                       {"label", label_of(labels, c)},
                                       {"score", scores.data[size_t(b * class_count + c)]},
                                       {"probability", probs[size_t(c)]}});

                    // Each pair's map, then one colour scale per map or shared by the image's maps.
                    std::vector<tensor> maps;
                    std::vector<float> scales;
                    for (size_t k = 0; k < batch_maps.size(); ++k) {
                        maps.push_back(image_of(batch_maps[k], b));
                        scales.push_back(display_scale(maps.back(), o->show.clip));
                    }
                    if (o->show.shared_scale && !scales.empty())
                        std::fill(scales.begin(), scales.end(), *std::max_element(scales.begin(), scales.end()));

                    // The picture the overlays are drawn on: as fed, or the part of the original it shows.
                    image base_picture = pic.prepared.fed;
                    if (o->show.overlay_size == "image") {
                        const auto& p = pic.prepared;
                        const int x0 = std::max(0, int(std::floor(p.x0))), y0 = std::max(0, int(std::floor(p.y0)));
                        const int x1 = std::min(pic.original.width, int(std::ceil(p.x1))),
                                  y1 = std::min(pic.original.height, int(std::ceil(p.y1)));
                        image region;
                        region.width = x1 - x0;
                        region.height = y1 - y0;
                        region.channels = pic.original.channels;
                        for (int y = y0; y < y1; ++y) {
                            const auto row = pic.original.pixels.begin() +
                                             (int64_t(y) * pic.original.width + x0) * pic.original.channels;
                            region.pixels.insert(region.pixels.end(), row,
                                                 row + int64_t(region.width) * region.channels);
                        }
                        base_picture = o->show.overlay_max > 0 ? fit_within(region, o->show.overlay_max) : region;
                    }

                    json maps_json = json::array();
                    std::vector<image> tiles{panel_tile(pic.prepared.fed)};
                    std::vector<std::string> captions{"input"};
                    std::vector<std::string> written_pairs;
                    for (size_t k = 0; k < requests.size(); ++k) {
                        const target& t = requests[k].what;
                        const std::string tname = target_name(t, b);
                        const std::string prefix =
                            single_pair ? base : fmt::format("{}.{}.{}", base, to_string(requests[k].rule), tname);
                        const tensor signal = image_of(signals[k], b);
                        write_npy(prefix + ".grad.npy", signal, later);
                        json files = {{"signal", prefix + ".grad.npy"}};
                        json entry = {{"method", to_string(requests[k].rule)}, {"target", target_json(t, b)}};
                        if (k < maps.size()) {
                            write_npy(prefix + ".npy", maps[k], later);
                            const image heat = heatmap(maps[k], {o->show.colormap, signed_map, scales[k]});
                            write_png(prefix + ".png", heat, later);
                            files["map"] = prefix + ".npy";
                            files["heatmap"] = prefix + ".png";
                            if (!o->show.no_overlay) {
                                write_png(prefix + ".overlay.png", overlay_image(base_picture, heat, o->show.alpha),
                                          later);
                                files["overlay"] = prefix + ".overlay.png";
                            }
                            tiles.push_back(panel_tile(heat));
                            captions.push_back(fmt::format("{} {}", to_string(requests[k].rule), tname));
                            entry["statistics"] = map_statistics(maps[k], scales[k]);
                        }
                        result.files += int64_t(files.size());
                        entry["files"] = files;
                        maps_json.push_back(entry);
                        written_pairs.push_back(single_pair ? ""
                                                            : fmt::format("{}.{}", to_string(requests[k].rule), tname));
                    }
                    json image_json = {{"path", pic.path},
                                       {"index", index},
                                       {"input_shape", shape_t{1, pic.x.shape[1], pic.x.shape[2], pic.x.shape[3]}},
                                       {"top", top},
                                       {"maps", maps_json}};
                    if (o->show.panel && !maps.empty()) {
                        write_png(base + ".panel.png", panel(tiles, captions), later);
                        image_json["panel"] = base + ".panel.png";
                        ++result.files;
                    }
                    result.entry = std::move(image_json);

                    const std::string what = layer             ? o->layer
                                             : classes.empty() ? fmt::format("class {} ({})", class_of(targets[0], b),
                                                                             label_of(labels, class_of(targets[0], b)))
                                                               : fmt::format("classes {}", fmt::join(classes, ","));
                    result.line = fmt::format("{}  {}  -> {}{}", pic.path, what, base,
                                              single_pair ? std::string()
                                                          : fmt::format(".{{{}}}", fmt::join(written_pairs, ",")));
                });
                for (image_result& result : results) {
                    files_written += result.files;
                    images_json.push_back(std::move(result.entry));
                    say(result.line);
                }
                progress.update(int(first_index) + int(n));
            };

            if (from_npy) {
                const tensor x = read_input_npy(o->input);
                batch = x.shape.empty() ? 1 : x.shape[0];
                run_batch(x, {}, 0);
            } else {
                batch = for_each_batch(header, paths, how, o->batch, int64_t(pairs), world, threads,
                                       [&](const std::vector<fed_picture>& pictures, size_t first) {
                                           std::vector<const fed_picture*> view;
                                           for (const auto& p : pictures) view.push_back(&p);
                                           run_batch(stack_inputs(pictures), view, first);
                                       });
            }

            if (!o->save_input.empty())
                write_npy(o->save_input, concatenate_batches(saved_inputs, "--save-input " + o->save_input));
            // Every file of this rank on disk before its images are reported as written.
            const std::string written_to = from_npy ? o->out : names->prefix(0);
            const std::string folder = std::filesystem::path(written_to).parent_path().string();
            sync_files(folder.empty() ? "." : folder);
            out.counts = {{"files", files_written}, {"maps", maps_computed}};
        };

        if (const auto status = run_share(world, work, out, text)) return *status;
        files_written = out.counts["files"]; // `out` now holds the whole run (on rank 0)
        maps_computed = out.counts["maps"];

        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        const int64_t shown = from_npy ? int64_t(images_json.size()) : int64_t(image_count);
        batch = std::min(batch, std::max<int64_t>(shown, 1)); // the batch that ran: never more than the images
        if (o->json_out.wanted()) {
            std::vector<std::string> method_names;
            for (auto r : rules) method_names.push_back(to_string(r));
            const json doc = {
                {"schema", "deepinside.saliency/1"},
                {"model", o->model},
                {"methods", method_names},
                {"map", to_string(reduction)},
                {"nonrelu", o->nonrelu},
                {"wrt", o->wrt.empty() ? json(nullptr) : json(o->wrt)},
                {"batch", batch},
                {"processes", world.size()},
                {"images", images_json},
                {"summary",
                 {{"images", shown}, {"maps", maps_computed}, {"files", files_written}, {"seconds", seconds}}}};
            o->json_out.write(doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
        }
        fmt::print(
            text,
            "saliency: {} image{}, {} map{} ({} method{}), {} files in {:.2f} s ({:.1f} ms per image, batch {})\n",
            shown, shown == 1 ? "" : "s", maps_computed, maps_computed == 1 ? "" : "s", rules.size(),
            rules.size() == 1 ? "" : "s", files_written, seconds, 1e3 * seconds / double(std::max<int64_t>(shown, 1)),
            batch);
        return 0;
    };
}

} // namespace deepinside::cli
