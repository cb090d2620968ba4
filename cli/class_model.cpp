// deepinside class-model MODEL --class C[,C2,...|all] [--steps N] [--lr A] [--l2 LAMBDA] [--init zero|mean|noise]
//                           [--blur SIGMA [--blur-every K]] [--jitter P] [--clip] [--seed S] [--size HxW] --out PREFIX
// The paper's class model images: gradient ascent on S_c(I) - lambda ||I||^2 for all the classes at
// once (one batch), then PREFIX.<class>.{png,npy}, PREFIX.grid.png (several classes) and PREFIX.json.
#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"

#include <deepinside/class_model.hpp>
#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <set>

namespace deepinside::cli {

namespace {

/// Class images of inputs smaller than this are enlarged (nearest neighbour, integer factor).
constexpr int64_t min_display_side = 112;
/// Gap between the tiles of the grid, in pixels (white).
constexpr int grid_gap = 4;

/// "28x28" (also "28X28" or "28,28") → {28, 28}; throws input_error naming --size.
std::pair<int64_t, int64_t> parse_size(const std::string& text) {
    std::string t = text;
    std::replace(t.begin(), t.end(), 'X', 'x');
    std::replace(t.begin(), t.end(), ',', 'x');
    const auto parts = split(t, 'x');
    if (parts.size() != 2) throw input_error(fmt::format("--size expects HxW (for example 224x224), got '{}'", text));
    const auto v = parse_int_list(parts[0] + "," + parts[1], "--size");
    if (v[0] < 1 || v[1] < 1 || v[0] > 8192 || v[1] > 8192)
        throw input_error(fmt::format("--size expects positive H and W up to 8192, got '{}'", text));
    return {v[0], v[1]};
}

/// The integer factor that brings the shorter side to at least min_display_side.
int64_t display_factor(int64_t h, int64_t w) {
    const int64_t side = std::min(h, w);
    return side >= min_display_side ? 1 : (min_display_side + side - 1) / side;
}

image upscale(const image& src, int64_t factor) {
    if (factor == 1) return src;
    image dst;
    dst.width = static_cast<int>(src.width * factor);
    dst.height = static_cast<int>(src.height * factor);
    dst.channels = src.channels;
    dst.pixels.resize(size_t(dst.width) * size_t(dst.height) * size_t(dst.channels));
    for (int y = 0; y < dst.height; ++y)
        for (int x = 0; x < dst.width; ++x)
            for (int c = 0; c < dst.channels; ++c)
                dst.pixels[(size_t(y) * size_t(dst.width) + size_t(x)) * size_t(dst.channels) + size_t(c)] =
                    src.pixels[(size_t(y / factor) * size_t(src.width) + size_t(x / factor)) * size_t(src.channels) + size_t(c)];
    return dst;
}

/// Tiles of one size in a near-square grid (ceil(sqrt(K)) columns), row by row, white gaps.
image grid_of(const std::vector<image>& tiles) {
    const int n = static_cast<int>(tiles.size());
    const int cols = static_cast<int>(std::ceil(std::sqrt(double(n)))), rows = (n + cols - 1) / cols;
    const int tw = tiles[0].width, th = tiles[0].height, ch = tiles[0].channels;
    image g;
    g.width = cols * tw + (cols - 1) * grid_gap;
    g.height = rows * th + (rows - 1) * grid_gap;
    g.channels = ch;
    g.pixels.assign(size_t(g.width) * size_t(g.height) * size_t(ch), 255);
    for (int i = 0; i < n; ++i) {
        const int x0 = (i % cols) * (tw + grid_gap), y0 = (i / cols) * (th + grid_gap);
        for (int y = 0; y < th; ++y)
            std::copy_n(tiles[size_t(i)].pixels.data() + size_t(y) * size_t(tw) * size_t(ch), size_t(tw) * size_t(ch),
                        g.pixels.data() + (size_t(y0 + y) * size_t(g.width) + size_t(x0)) * size_t(ch));
    }
    return g;
}

const char* init_name(class_model_options::start s) {
    switch (s) {
    case class_model_options::start::zero: return "zero";
    case class_model_options::start::mean: return "mean";
    case class_model_options::start::noise: return "noise";
    }
    return "?";
}

} // namespace

command add_class_model(CLI::App& app) {
    struct options {
        std::string model, labels, classes, out, init = "zero", size;
        class_model_options cm;
        float blur = 0.0f;
        int blur_every = 4;
        int threads = 0;
        preprocess_flags pre;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("--class", o->classes, "Class index, comma list, or 'all'; all classes run as one batch")->required();
    app.add_option("--out", o->out, "Prefix of the output files: PREFIX.<class>.png/.npy, PREFIX.grid.png, PREFIX.json")->required();
    app.add_option("--steps", o->cm.steps, "Gradient ascent steps")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--lr", o->cm.lr, "Step size, on the network's (normalised) input values")
        ->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--l2", o->cm.l2, "Lambda of the L2 penalty lambda ||I||^2, on the network's input values")
        ->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_option("--init", o->init,
                   "Start: zero (network input 0: the training mean for a model with a normaliser), mean (the same with a "
                   "normaliser, else mid-grey), noise (mean plus Gaussian noise of 8 pixel levels)")
        ->capture_default_str()->check(CLI::IsMember({"zero", "mean", "noise"}));
    auto* blur = app.add_option("--blur", o->blur, "Gaussian blur sigma in pixels, applied every --blur-every steps (default: off)")
                     ->check(CLI::NonNegativeNumber);
    app.add_option("--blur-every", o->blur_every, "Blur after every K-th step (with --blur)")
        ->capture_default_str()->check(positive_integer("steps", 1'000'000))->needs(blur);
    app.add_option("--jitter", o->cm.jitter, "Random roll of the image by up to P pixels per step, undone after it (default: off)")
        ->check(CLI::NonNegativeNumber);
    app.add_flag("--clip", o->cm.clip, "Clamp the image to the valid pixel range [0, 255] after every step");
    app.add_option("--seed", o->cm.seed, "Seed of --init noise and --jitter")->capture_default_str();
    app.add_option("--size", o->size, "HxW of the input for a model whose spatial size is open (e.g. 224x224)");
    app.add_option("--labels", o->labels, "Class names, one per line (default: model metadata or MODEL's .labels.txt)");
    add_threads_option(app, o->threads);
    o->pre.add_to(app);
    return [o] {
        // Options first: a typo should not wait for a model to load.
        const bool all = o->classes == "all";
        std::vector<int64_t> classes = all ? std::vector<int64_t>{} : parse_int_list(o->classes, "--class");
        std::set<int64_t> seen;
        for (int64_t c : classes) {
            if (c < 0) throw input_error(fmt::format("--class {} is negative", c));
            if (!seen.insert(c).second) throw input_error(fmt::format("--class lists class {} twice", c));
        }
        std::optional<std::pair<int64_t, int64_t>> size;
        if (!o->size.empty()) size = parse_size(o->size);
        class_model_options cm = o->cm;
        cm.init = o->init == "zero" ? class_model_options::start::zero
                  : o->init == "mean" ? class_model_options::start::mean
                                      : class_model_options::start::noise;
        cm.blur_sigma = o->blur;
        cm.blur_every = o->blur > 0.0f ? o->blur_every : 0;
        if (size && cm.jitter >= std::min(size->first, size->second))
            throw input_error(fmt::format("--jitter {} must be below the input's side ({})", cm.jitter, std::min(size->first, size->second)));

        const auto t_load = std::chrono::steady_clock::now();
        graph g = read_onnx(o->model);
        if (g.inputs.empty()) throw model_error(fmt::format("{}: the graph has no input", o->model));
        shape_t s = g.inputs.front().shape;
        if (s.size() != 4)
            throw input_error(fmt::format("{}: input '{}' of shape {} is not an NCHW image input", o->model, g.inputs.front().name,
                                          to_string(s)));
        if (s[1] < 0)
            throw input_error(fmt::format("{}: input '{}' of shape {} leaves its channels open; class-model needs them fixed",
                                          o->model, g.inputs.front().name, to_string(s)));
        for (int d : {2, 3}) {
            const int64_t want = size ? (d == 2 ? size->first : size->second) : -1;
            if (s[size_t(d)] < 0 && !size)
                throw input_error(fmt::format("{}: input '{}' of shape {} leaves its spatial size open; pass --size HxW", o->model,
                                              g.inputs.front().name, to_string(s)));
            if (size && s[size_t(d)] >= 0 && s[size_t(d)] != want)
                throw input_error(fmt::format("{}: input '{}' has the fixed size {}x{}; --size {} differs", o->model,
                                              g.inputs.front().name, s[2], s[3], o->size));
            if (s[size_t(d)] < 0) s[size_t(d)] = want;
        }
        const preprocess_options pre = o->pre.resolve(g);
        const auto labels = load_labels(o->labels, o->model, g);
        if (all) {
            // The class count: the declared width of the first output (a final softmax keeps it), else
            // the score tensor's width read from a batch-1 network built only for that.
            const shape_t& declared = g.outputs.empty() ? shape_t{} : g.outputs.front().shape;
            int64_t n = declared.size() == 2 && declared[1] > 0 ? declared[1] : -1;
            if (n < 0) {
                shape_t one = s;
                one[0] = 1;
                const network probe(g, one, engine_flags(o->threads, "refuse", finite_check::none));
                n = element_count(probe.shape_of(probe.score_tensor()));
            }
            for (int64_t c = 0; c < n; ++c) classes.push_back(c);
        }
        const auto batch = static_cast<int64_t>(classes.size());
        // The classes run as one batch. A model whose batch is fixed at 1 (as exporters often write
        // it) is compiled with its batch axis opened: the engine refuses the graph if an op of it
        // cannot take another batch.
        if (s[0] >= 0 && s[0] != batch) {
            if (s[0] != 1)
                throw input_error(fmt::format("{}: input batch is fixed at {}; {} classes need a batch of {}", o->model, s[0], batch,
                                              batch));
            g.inputs.front().shape[0] = -1;
        }
        s[0] = batch;
        // Per step the engine checks what it returns (the scores and the input signal); `all` would
        // add a read of every activation and signal to every step.
        network net(g, s, engine_flags(o->threads, "refuse", finite_check::outputs));
        const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();

        const auto t_run = std::chrono::steady_clock::now();
        class_model_result r;
        {
            progress_bar bar("class-model", cm.steps);
            r = class_model(net, classes, cm, pre, [&](int done, int) { bar.update(done); });
        }
        const double run_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();

        // Everything is computed; now the files.
        const int64_t channels = s[1], h = s[2], w = s[3], per_image = channels * h * w;
        const int64_t factor = display_factor(h, w);
        std::vector<image> tiles;
        nlohmann::json per_class = nlohmann::json::array();
        for (int64_t k = 0; k < batch; ++k) {
            const int64_t c = classes[size_t(k)];
            const std::vector<float> values(r.images.data.begin() + k * per_image, r.images.data.begin() + (k + 1) * per_image);
            const std::string prefix = fmt::format("{}.{}", o->out, c);
            write_npy(prefix + ".npy", tensor({1, channels, h, w}, values));
            tiles.push_back(upscale(class_model_image(tensor({channels, h, w}, values), pre), factor));
            write_png(prefix + ".png", tiles.back());
            per_class.push_back({{"index", c},
                                 {"label", label_of(labels, c)},
                                 {"score_start", r.score_start[size_t(k)]},
                                 {"score_end", r.score_end[size_t(k)]},
                                 {"probability_start", r.probability_start[size_t(k)]},
                                 {"probability_end", r.probability_end[size_t(k)]},
                                 {"png", prefix + ".png"},
                                 {"npy", prefix + ".npy"}});
            fmt::print("class {:<3} {:<20} score {:9.3f} -> {:9.3f}   probability {:.4f} -> {:.4f}   {}.{{png,npy}}\n", c,
                       label_of(labels, c), r.score_start[size_t(k)], r.score_end[size_t(k)], r.probability_start[size_t(k)],
                       r.probability_end[size_t(k)], prefix);
        }
        nlohmann::json doc;
        doc["model"] = o->model;
        doc["input_shape"] = s;
        doc["score_tensor"] = net.score_tensor();
        doc["classes"] = per_class;
        if (batch > 1) {
            write_png(o->out + ".grid.png", grid_of(tiles));
            doc["grid"] = o->out + ".grid.png";
            fmt::print("grid of {} classes -> {}.grid.png\n", batch, o->out);
        }
        doc["options"] = {{"steps", cm.steps},
                          {"lr", cm.lr},
                          {"l2", cm.l2},
                          {"init", init_name(cm.init)},
                          {"blur_sigma", cm.blur_sigma},
                          {"blur_every", cm.blur_every},
                          {"jitter", cm.jitter},
                          {"clip", cm.clip},
                          {"seed", cm.seed},
                          {"threads", net.threads()}};
        doc["preprocessing"] = {{"mean", pre.mean}, {"std", pre.std}, {"scale", pre.scale}, {"channel_order", pre.bgr ? "BGR" : "RGB"}};
        doc["display"] = {{"upscale", factor}, {"contrast", "stretched per image from its 1st to its 99th percentile pixel value"}};
        doc["steps"] = cm.steps;
        doc["time_s"] = {{"load", load_s}, {"ascent", run_s}, {"per_step", cm.steps > 0 ? run_s / cm.steps : 0.0}};
        write_text(o->out + ".json", doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
        fmt::print("{} steps in {:.2f} s ({:.1f} ms per step, batch {}; model load and compile {:.2f} s) -> {}.json\n", cm.steps,
                   run_s, cm.steps > 0 ? 1e3 * run_s / cm.steps : 0.0, batch, load_s, o->out);
        return 0;
    };
}

} // namespace deepinside::cli
