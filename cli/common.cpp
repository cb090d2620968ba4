#include "common.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <exception>
#include <fstream>
#include <numeric>

namespace deepinside::cli {

void preprocess_flags::add_to(CLI::App& app) {
    app.add_option("--mean", mean, "Per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406 (default: model metadata, else 0)");
    app.add_option("--std", std, "Per-channel standard deviation, e.g. 0.229,0.224,0.225 (default: model metadata, else 1)");
    app.add_option("--scale", scale, "Factor applied to 0..255 pixels before the mean (default: model metadata, else 1/255)");
    app.add_option("--channel-order", channel_order, "RGB or BGR (default: model metadata, else RGB)");
}

preprocess_options preprocess_flags::resolve(const graph& g) const {
    // The command line's values override the model's own; a bad one is blamed on its option.
    return preprocess_from_user(mean, std, scale, channel_order, preprocess_from_metadata(g.metadata, preprocess_options{}));
}

std::vector<std::string> load_labels(const std::string& labels_file, const std::string& model_path, const graph& g) {
    return read_class_labels(labels_file, model_path, g.metadata);
}

std::string label_of(const std::vector<std::string>& labels, int64_t c) {
    return c >= 0 && c < static_cast<int64_t>(labels.size()) ? labels[static_cast<size_t>(c)] : fmt::format("class {}", c);
}

std::vector<float> softmax(const float* scores, int64_t n) {
    const double top = *std::max_element(scores, scores + n);
    double sum = 0;
    std::vector<double> e(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) sum += e[i] = std::exp(double(scores[i]) - top);
    std::vector<float> p(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(e[i] / sum);
    return p;
}

std::vector<int64_t> top_k(const float* values, int64_t n, int64_t k) {
    std::vector<int64_t> idx(static_cast<size_t>(n));
    std::iota(idx.begin(), idx.end(), 0);
    k = std::min(k, n);
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int64_t a, int64_t b) { return values[a] > values[b] || (values[a] == values[b] && a < b); });
    idx.resize(static_cast<size_t>(k));
    return idx;
}

tensor image_of(const tensor& batch, int64_t b) {
    shape_t s(batch.shape.begin() + 1, batch.shape.end());
    const int64_t count = element_count(s);
    return tensor(s, std::vector<float>(batch.data.begin() + b * count, batch.data.begin() + (b + 1) * count));
}

std::vector<int64_t> top1_per_image(const tensor& scores) {
    const int64_t batch = scores.shape.empty() ? 1 : scores.shape[0], classes = scores.size() / batch;
    std::vector<int64_t> top;
    for (int64_t b = 0; b < batch; ++b) top.push_back(top_k(scores.data.data() + b * classes, classes, 1)[0]);
    return top;
}

std::vector<std::string> split(const std::string& text, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
        size_t end = text.find(sep, start);
        out.push_back(text.substr(start, end == std::string::npos ? std::string::npos : end - start));
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return out;
}

target layer_target(const std::string& layer, const std::optional<int64_t>& channel, const std::string& unit,
                    const std::string& reduce) {
    target t;
    t.tensor = layer;
    t.index = {channel.value_or(0)};
    if (!channel) {
        if (!unit.empty()) throw input_error("--unit needs --channel K");
        t.what = target::kind::tensor_sum; // the whole tensor's activity
    } else if (!unit.empty()) {
        t.what = target::kind::neuron;
        t.unit = parse_int_list(unit, "--unit");
        if (t.unit.size() != 2)
            throw input_error(fmt::format("--unit expects Y,X (the unit's row and column in the channel), got '{}'", unit));
    } else if (reduce == "max" || reduce == "sum") {
        t.what = reduce == "max" ? target::kind::channel_max : target::kind::channel_sum;
    } else {
        throw input_error(fmt::format("--reduce expects max or sum, got '{}'", reduce));
    }
    return t;
}

std::vector<int64_t> parse_int_list(const std::string& text, const char* option) {
    std::vector<int64_t> out;
    for (const auto& part : split(text, ',')) {
        size_t used = 0;
        long long v = 0;
        try {
            v = std::stoll(part, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (part.empty() || used != part.size())
            throw input_error(fmt::format("{} expects comma-separated integers, got '{}'", option, text));
        out.push_back(v);
    }
    return out;
}

engine_options engine_flags(int threads, const std::string& nonrelu, finite_check check) {
    engine_options o;
    o.threads = threads;
    o.check = check;
    if (nonrelu == "refuse") o.nonrelu = nonrelu_policy::refuse;
    else if (nonrelu == "gradient") o.nonrelu = nonrelu_policy::gradient;
    else throw input_error(fmt::format("--nonrelu expects refuse or gradient, got '{}'", nonrelu));
    return o;
}

CLI::Validator positive_integer(const std::string& what, long long largest, const std::string& hint) {
    return CLI::Validator(
        [=](std::string& text) -> std::string {
            long long v = 0;
            size_t used = 0;
            try {
                v = std::stoll(text, &used);
            } catch (const std::exception&) {
                used = 0;
            }
            if (used == 0 || used != text.size() || v < 1 || v > largest)
                return fmt::format("expects a positive number of {} (1 to {}), got '{}'{}", what, largest, text, hint);
            return "";
        },
        "N>=1");
}

void add_threads_option(CLI::App& app, int& threads) {
    app.add_option("--threads", threads,
                   "Threads (default: OMP_NUM_THREADS, else the number of CPUs this process may run on, e.g. 1 under taskset -c 0)")
        ->check(positive_integer("threads", 4096,
                                 "; leave it out for the default (OMP_NUM_THREADS, else the CPUs this process may run on)"));
}

void add_winograd_flag(CLI::App& app, bool& winograd) {
    app.add_flag("--winograd", winograd,
                 "Winograd's algorithm for 3x3 stride-1 convolutions on AVX-512: about twice as fast there, not exact "
                 "arithmetic (about two decimal digits fewer; README \"Speed\")");
}

tensor read_input_npy(const std::string& path) {
    tensor x = read_npy(path);
    require_finite(x, path);
    return x;
}

void for_each_index(size_t count, int threads, const std::function<void(size_t)>& work) {
    std::vector<std::exception_ptr> errors(count);
    const int team = int(std::clamp<size_t>(count, 1, size_t(std::max(threads, 1))));
    // Items differ in cost (a picture's size, a map's compressibility): handed out one at a time.
#pragma omp parallel for schedule(dynamic, 1) num_threads(team)
    for (int64_t i = 0; i < int64_t(count); ++i) {
        try {
            work(size_t(i));
        } catch (...) {
            errors[size_t(i)] = std::current_exception();
        }
    }
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
}

} // namespace deepinside::cli
