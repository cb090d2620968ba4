// deepinside saliency MODEL (IMAGE | --input X.npy) [--class C] [--method M] [--layer T --channel K [--unit Y,X]] [--out PREFIX]
// Computes every (method, class) pair from one forward pass and one stacked backward pass, then
// writes each pair's files: PREFIX[.method.class].grad.npy, .npy (the map), .png, .overlay.png.
#include "commands.hpp"
#include "common.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

namespace deepinside::cli {

command add_saliency(CLI::App& app) {
    struct options {
        std::string model, labels, image, input, out = "saliency", classes, methods = "gradient", layer, unit, reduce = "max",
                                          nonrelu = "refuse", wrt;
        std::optional<int64_t> channel;
        bool probability = false;
        int threads = 0;
        preprocess_flags pre;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    auto* img = app.add_option("IMAGE", o->image, "PNG or JPEG image (preprocessed as for classify)");
    auto* npy = app.add_option("--input", o->input, "float32 .npy tensor used exactly as given (NCHW), no preprocessing");
    img->excludes(npy);
    app.add_option("--class", o->classes, "Class index or comma list (default: the top-1 prediction of each image)");
    app.add_option("--method", o->methods, "gradient, deconvnet, guided, or a comma list")->capture_default_str();
    app.add_option("--layer", o->layer, "Visualise activity of this tensor instead of a class score (alone: the whole tensor's sum)");
    app.add_option("--channel", o->channel, "Channel of --layer");
    app.add_option("--unit", o->unit, "Y,X of the unit in --channel (default: see --reduce)");
    app.add_option("--reduce", o->reduce, "Without --unit: max (the channel's largest unit, per image) or sum")->capture_default_str();
    app.add_flag("--probability", o->probability, "Differentiate the softmax probability instead of the unnormalised score");
    app.add_option("--wrt", o->wrt, "Take the signal at this tensor instead of the input");
    app.add_option("--nonrelu", o->nonrelu,
                   "deconvnet/guided at a non-ReLU nonlinearity: refuse, or gradient (apply its exact derivative)")->capture_default_str();
    app.add_option("--out", o->out, "Prefix of the output files")->capture_default_str();
    app.add_option("--labels", o->labels, "Class names, one per line (default: model metadata or MODEL's .labels.txt)");
    add_threads_option(app, o->threads);
    o->pre.add_to(app);
    return [o] {
        if (o->image.empty() && o->input.empty()) throw input_error("saliency needs an IMAGE or --input X.npy");
        // Options first: a typo should not wait for a model to load.
        std::vector<backward_rule> rules;
        for (const auto& m : split(o->methods, ',')) rules.push_back(parse_backward_rule(m));
        graph g = read_onnx(o->model);
        const auto labels = load_labels(o->labels, o->model, g);
        std::optional<image> picture;
        tensor x;
        if (!o->image.empty()) {
            picture = read_image(o->image);
            const shape_t shape = image_input_shape(g, *picture);
            x = image_to_tensor(*picture, shape[1], shape[2], shape[3], o->pre.resolve(g));
        } else {
            x = read_input_npy(o->input);
        }

        network net(g, x.shape, engine_flags(o->threads, o->nonrelu));
        net.forward(x);
        const int64_t batch = x.shape[0];

        // Targets: class scores (default top-1 per image), or a unit of a layer.
        std::vector<target> targets;
        std::vector<std::string> target_names;
        if (!o->layer.empty()) {
            targets.push_back(layer_target(o->layer, o->channel, o->unit, o->reduce));
            target_names.push_back(o->channel ? fmt::format("channel{}", *o->channel) : std::string("all"));
        } else {
            if (o->channel || !o->unit.empty()) throw input_error("--channel and --unit need --layer");
            const std::string scores_name = o->probability ? net.probability_tensor() : net.score_tensor();
            std::vector<std::vector<int64_t>> per_class;
            if (o->classes.empty()) {
                per_class.push_back(top1_per_image(net.read(net.score_tensor())));
            } else {
                for (int64_t c : parse_int_list(o->classes, "--class")) per_class.push_back({c});
            }
            for (const auto& idx : per_class) {
                targets.push_back({target::kind::class_score, scores_name, idx, {}});
                // The class number names the files; a batch of images with their own top-1 classes says "top1".
                const bool same = std::all_of(idx.begin(), idx.end(), [&](int64_t c) { return c == idx[0]; });
                target_names.push_back(same ? fmt::format("{}", idx[0]) : "top1");
            }
        }
        std::vector<backward_request> requests;
        for (const auto& r : rules)
            for (const auto& t : targets) requests.push_back({t, r});
        const std::vector<tensor> signals = net.backward(requests, o->wrt);

        // Everything is computed; now write each pair's files.
        const bool single = requests.size() == 1;
        for (size_t k = 0; k < requests.size(); ++k) {
            const std::string prefix = single ? o->out
                                              : fmt::format("{}.{}.{}", o->out, to_string(requests[k].rule),
                                                            target_names[k % targets.size()]);
            const tensor& signal = signals[k];
            write_npy(prefix + ".grad.npy", batch == 1 ? image_of(signal, 0) : signal);
            if (signal.shape.size() == 4) {
                const tensor map = saliency_map(signal);
                write_npy(prefix + ".npy", batch == 1 ? image_of(map, 0) : map);
                for (int64_t b = 0; b < batch; ++b) {
                    const std::string suffix = batch == 1 ? "" : fmt::format(".{}", b);
                    const tensor one = image_of(map, b);
                    write_png(prefix + suffix + ".png", heatmap(one));
                    if (picture && b == 0) write_png(prefix + suffix + ".overlay.png", overlay(*picture, one));
                }
            }
            const auto& idx = requests[k].what.index;
            const std::string what = !o->layer.empty() ? fmt::format("{} {}", o->layer, target_names[k % targets.size()])
                                   : idx.size() == 1 ? fmt::format("class {} ({})", idx[0], label_of(labels, idx[0]))
                                                     : fmt::format("classes {}", fmt::join(idx, ","));
            fmt::print("{:<10} {:<32} -> {}.{{grad.npy{}}}\n", to_string(requests[k].rule), what, prefix,
                       signal.shape.size() != 4 ? "" : picture ? ",npy,png,overlay.png" : ",npy,png");
        }
        return 0;
    };
}

} // namespace deepinside::cli
