#include "inputs.hpp"

#include "common.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <glob.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>

namespace deepinside::cli {

namespace fs = std::filesystem;

namespace {

bool has_image_extension(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

/// "shorter:256" → 256; "WxH" → (W, H); throws naming the option.
int parse_side(const std::string& text, const char* option, const std::string& whole) {
    size_t used = 0;
    long v = 0;
    try {
        v = std::stol(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size() || v < 1 || v > 65535)
        throw input_error(
            fmt::format("{} '{}': expected a size in pixels from 1 to 65535, got '{}'", option, whole, text));
    return int(v);
}

} // namespace

std::vector<std::string> expand_image_arguments(const std::vector<std::string>& arguments) {
    std::vector<std::string> files;
    for (const std::string& arg : arguments) {
        std::error_code ec;
        const fs::file_status st = fs::status(arg, ec);
        if (fs::is_directory(st)) {
            std::vector<std::string> found;
            for (const auto& entry : fs::directory_iterator(arg, ec))
                if (entry.is_regular_file(ec) && has_image_extension(entry.path()))
                    found.push_back(entry.path().string());
            if (ec) throw io_error(fmt::format("{}: cannot list the folder: {}", arg, ec.message()));
            if (found.empty()) throw input_error(fmt::format("{}: the folder holds no .png, .jpg or .jpeg files", arg));
            std::sort(found.begin(), found.end());
            files.insert(files.end(), found.begin(), found.end());
        } else if (fs::exists(st)) {
            files.push_back(arg);
        } else if (arg.find_first_of("*?[") != std::string::npos) {
            glob_t matches{};
            const int status = ::glob(arg.c_str(), 0, nullptr, &matches);
            std::vector<std::string> found;
            if (status == 0)
                for (size_t k = 0; k < matches.gl_pathc; ++k) found.emplace_back(matches.gl_pathv[k]);
            ::globfree(&matches);
            if (found.empty()) throw input_error(fmt::format("{}: the pattern matches no file", arg));
            std::sort(found.begin(), found.end()); // glob sorts by the locale's collation; byte order is stable
            files.insert(files.end(), found.begin(), found.end());
        } else {
            throw input_error(fmt::format("{}: no such file or folder", arg));
        }
    }
    return files;
}

void image_flags::add_to(CLI::App& app) {
    values.add_to(app);
    app.add_option(
        "--resize", resize,
        "How pictures reach the network's size: stretch (both sides straight to it, the default), shorter:N (the "
        "shorter side to N, aspect kept; then --crop), or none (only --crop)");
    app.add_option("--crop", crop, "center:N or center:WxH: the centre crop after --resize (torchvision's CenterCrop)");
    app.add_flag("--antialias", antialias,
                 "Prefilter when shrinking, as PIL and torchvision's antialias=True do (default: plain bilinear)");
    app.add_option(
        "--preset", preset,
        "imagenet: --resize shorter:256 --crop center:224 --antialias with ImageNet's mean and std (the options given "
        "beside it win)");
}

image_flags::resolved image_flags::resolve(const graph& g) const {
    resolved r;
    preprocess_options base = preprocess_from_metadata(g.metadata, preprocess_options{});
    std::string resize_text = resize, crop_text = crop;
    bool prefilter = antialias;
    if (!preset.empty()) {
        if (preset != "imagenet") throw input_error(fmt::format("--preset '{}': the only preset is imagenet", preset));
        base.mean = {0.485f, 0.456f, 0.406f};
        base.std = {0.229f, 0.224f, 0.225f};
        base.scale = 1.0f / 255;
        base.bgr = false;
        if (resize_text.empty()) resize_text = "shorter:256";
        if (crop_text.empty()) crop_text = "center:224";
        prefilter = true;
    }
    r.values = preprocess_from_user(values.mean, values.std, values.scale, values.channel_order, base);

    geometry_options& geo = r.geometry;
    geo.antialias = prefilter;
    if (resize_text.empty() || resize_text == "stretch") {
        geo.resize = geometry_options::resize_mode::stretch;
    } else if (resize_text == "none") {
        geo.resize = geometry_options::resize_mode::none;
    } else if (resize_text.rfind("shorter:", 0) == 0) {
        geo.resize = geometry_options::resize_mode::shorter;
        geo.shorter_side = parse_side(resize_text.substr(8), "--resize", resize_text);
    } else {
        throw input_error(fmt::format("--resize '{}': expected stretch, shorter:N or none", resize_text));
    }
    if (!crop_text.empty()) {
        if (crop_text.rfind("center:", 0) != 0)
            throw input_error(fmt::format("--crop '{}': expected center:N or center:WxH", crop_text));
        const std::string size = crop_text.substr(7);
        const size_t x = size.find('x');
        geo.crop_width = parse_side(size.substr(0, x), "--crop", crop_text);
        geo.crop_height = x == std::string::npos ? geo.crop_width : parse_side(size.substr(x + 1), "--crop", crop_text);
        if (geo.resize == geometry_options::resize_mode::stretch && !resize_text.empty())
            throw input_error(
                "--crop needs --resize shorter:N or none: a stretched picture already has the network's size");
        if (geo.resize == geometry_options::resize_mode::stretch) geo.resize = geometry_options::resize_mode::none;
    }
    return r;
}

fed_picture feed_picture(const graph& g, const std::string& path, const image_flags::resolved& how) {
    fed_picture p;
    p.path = path;
    p.original = read_image(path);
    if (g.inputs.empty()) throw model_error(fmt::format("{}: the graph has no input", g.source));
    const shape_t& declared = g.inputs.front().shape;
    if (declared.size() != 4)
        throw input_error(fmt::format("{}: input '{}' of shape {} is not an NCHW image input", g.source,
                                      g.inputs.front().name, to_string(declared)));
    const int64_t channels = declared[1] >= 0 ? declared[1] : p.original.channels == 1 ? 1 : 3;
    p.prepared = prepare_image(p.original, how.geometry, int(declared[3]), int(declared[2]));
    const image& fed = p.prepared.fed;
    // A plain stretch keeps today's exact float resize of the original (no rounding to 8 bits in
    // between); every other geometry feeds the 8-bit picture it made, as torchvision does.
    const bool exact_stretch = how.geometry.resize == geometry_options::resize_mode::stretch && !how.geometry.antialias;
    p.x = exact_stretch ? image_to_tensor(p.original, channels, fed.height, fed.width, how.values)
                        : image_to_tensor(fed, channels, fed.height, fed.width, how.values);
    return p;
}

int64_t choose_batch(const graph& g, int64_t requested, int64_t elements_per_image, int64_t stacked_per_image) {
    const int64_t fixed = g.inputs.empty() || g.inputs.front().shape.empty() ? -1 : g.inputs.front().shape[0];
    if (fixed > 0) {
        if (requested > 0 && requested != fixed)
            throw input_error(fmt::format(
                "{}: --batch {}: the model's batch axis is fixed at {}; export it with a dynamic batch to batch images "
                "(torch.onnx.export(..., dynamic_axes={{'input': {{0: 'batch'}}}}))",
                g.source, requested, fixed));
        return fixed;
    }
    if (requested > 0) return requested;
    constexpr int64_t input_budget = 1 << 20; // floats: 4 MB of input per batch
    return std::clamp<int64_t>(input_budget / std::max<int64_t>(elements_per_image * std::max<int64_t>(stacked_per_image, 1), 1), 1, 64);
}

int64_t for_each_batch(const graph& g, const std::vector<std::string>& paths, const image_flags::resolved& how,
                       int64_t requested_batch, int64_t stacked_per_image, const process_group& group, int threads,
                       const std::function<void(const std::vector<fed_picture>&, size_t)>& run) {
    const int64_t batch = choose_batch(g, requested_batch, feed_picture(g, paths.at(0), how).x.size(), stacked_per_image);
    const auto [first, last] = group.share(paths.size(), size_t(batch));
    std::vector<fed_picture> pending;
    size_t done = first;
    const auto flush = [&] {
        run(pending, done);
        done += pending.size();
        pending.clear();
    };
    for (size_t start = first; start < last; start += size_t(batch)) {
        const size_t count = std::min(last - start, size_t(batch));
        std::vector<std::optional<fed_picture>> decoded(count);
        std::vector<std::exception_ptr> errors(count);
        for_each_index(count, threads, [&](size_t k) {
            try {
                decoded[k] = feed_picture(g, paths[start + k], how);
            } catch (...) {
                errors[k] = std::current_exception();
            }
        });
        for (size_t k = 0; k < count; ++k) {
            if (errors[k]) std::rethrow_exception(errors[k]);
            fed_picture& p = *decoded[k];
            if (!pending.empty() && p.x.shape != pending.front().x.shape) flush();
            pending.push_back(std::move(p));
            if (int64_t(pending.size()) == batch) flush(); // before the next pictures are read
        }
    }
    if (!pending.empty()) flush();
    return batch;
}

tensor stack_inputs(const std::vector<fed_picture>& pictures) {
    std::vector<tensor> inputs;
    for (const auto& p : pictures) inputs.push_back(p.x);
    return concatenate_batches(inputs, pictures.at(0).path);
}

tensor pad_batch(const tensor& x, int64_t batch) {
    if (x.shape.empty() || x.shape[0] > batch)
        throw std::logic_error(fmt::format("pad_batch: a batch of shape {} does not fit in {}", to_string(x.shape), batch));
    shape_t padded = x.shape;
    padded[0] = batch;
    tensor t(padded); // zeros
    std::copy(x.data.begin(), x.data.end(), t.data.begin());
    return t;
}

namespace {
graph without_weights(graph& g) {
    std::map<std::string, constant> weights = std::move(g.constants);
    g.constants.clear();
    graph header = g;
    g.constants = std::move(weights);
    return header;
}
} // namespace

batch_network::batch_network(graph& g, engine_options options)
    : g_(g), header_(without_weights(g)), options_(std::move(options)) {
    if (header_.inputs.empty()) throw model_error(fmt::format("{}: the graph has no input", header_.source));
    const shape_t& declared = header_.inputs.front().shape;
    one_network_ = !declared.empty() && std::all_of(declared.begin() + 1, declared.end(), [](int64_t d) { return d >= 0; });
}

bool batch_network::forward(const tensor& x) {
    const shape_t* compiled = net_ ? &net_->input_shape() : nullptr;
    const bool fits = compiled && compiled->size() == x.shape.size() && !x.shape.empty() &&
                      std::equal(x.shape.begin() + 1, x.shape.end(), compiled->begin() + 1) && x.shape[0] <= (*compiled)[0];
    if (!fits) {
        if (one_network_ && net_)
            throw std::logic_error(fmt::format("batch_network: a batch of shape {} after one of {}", to_string(x.shape),
                                               to_string(*compiled)));
        net_.reset(); // one compiled network at a time
        net_ = one_network_ ? std::make_unique<network>(std::move(g_), x.shape, options_)
                            : std::make_unique<network>(g_, x.shape, options_);
    }
    const int64_t batch = net_->input_shape()[0];
    net_->forward(x.shape[0] == batch ? x : pad_batch(x, batch));
    return !fits;
}

tensor concatenate_batches(const std::vector<tensor>& batches, const std::string& what) {
    shape_t all = batches.at(0).shape;
    all[0] = 0;
    for (const tensor& t : batches) {
        if (t.shape.size() != all.size() || !std::equal(t.shape.begin() + 1, t.shape.end(), all.begin() + 1))
            throw input_error(
                fmt::format("{}: the images have different input sizes ({} and {}); save them from separate runs", what,
                            to_string(batches[0].shape), to_string(t.shape)));
        all[0] += t.shape[0];
    }
    tensor joined(all);
    size_t offset = 0;
    for (const tensor& t : batches) {
        std::copy(t.data.begin(), t.data.end(), joined.data.begin() + std::ptrdiff_t(offset));
        offset += t.data.size();
    }
    return joined;
}

output_names::output_names(const std::string& out, const std::vector<std::string>& image_paths,
                           const std::string& default_folder) {
    std::error_code ec;
    const bool names_folder = !out.empty() && (out.back() == '/' || fs::is_directory(out, ec));
    if (image_paths.size() == 1 && !names_folder) {
        prefixes_.push_back(out.empty() ? default_folder : out);
        return;
    }
    const fs::path folder = out.empty() ? fs::path(default_folder) : fs::path(out);
    folder_ = folder.string();
    // Files are named by the image's stem; images of the same stem (a.png and a.jpg, or two folders'
    // 0001.png) take their parent folders' names in front until the names differ.
    std::map<std::string, std::vector<size_t>> by_stem;
    std::vector<std::string> names;
    for (size_t i = 0; i < image_paths.size(); ++i) {
        names.push_back(fs::path(image_paths[i]).stem().string());
        by_stem[names.back()].push_back(i);
    }
    for (const auto& [stem, members] : by_stem) {
        if (members.size() == 1) continue;
        // The file name with its extension (a.png vs a.jpg), then one parent folder more at a time.
        std::vector<fs::path> paths;
        for (size_t i : members) paths.push_back(fs::weakly_canonical(image_paths[i], ec));
        for (size_t depth = 0;; ++depth) {
            std::set<std::string> distinct;
            bool more = false;
            for (size_t k = 0; k < members.size(); ++k) {
                std::string name = paths[k].filename().string();
                fs::path parent = paths[k].parent_path();
                for (size_t d = 0; d < depth && parent.has_filename(); ++d, parent = parent.parent_path())
                    name = parent.filename().string() + "_" + name;
                more = more || parent.has_filename();
                names[members[k]] = name;
                distinct.insert(name);
            }
            if (distinct.size() == members.size() || !more) break;
        }
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < image_paths.size(); ++i) {
        if (!seen.insert(names[i]).second)
            throw input_error(
                fmt::format("{}: given twice; each image's files would overwrite the other's", image_paths[i]));
        prefixes_.push_back((folder / names[i]).string());
    }
}

void output_names::refuse_overwriting(const std::vector<std::string>& image_paths,
                                      const std::vector<std::string>& endings) const {
    // Never over a picture of the run: `--out photo` for photo.png, `--out photos/` for the folder
    // the pictures are in, or a picture that happens to be named like an output.
    std::error_code ec;
    std::set<std::string> pictures;
    for (const auto& path : image_paths) pictures.insert(fs::weakly_canonical(path, ec).string());
    for (const auto& prefix : prefixes_) {
        const std::string base = fs::weakly_canonical(prefix, ec).string();
        for (const auto& ending : endings) {
            const std::string taken = base + ending;
            // An ending that stops at a dot stands for every name that goes on from there.
            const auto hit = pictures.lower_bound(taken);
            const bool open_ended = !ending.empty() && ending.back() == '.';
            if (hit != pictures.end() && (open_ended ? hit->rfind(taken, 0) == 0 : *hit == taken))
                throw input_error(
                    fmt::format("{}: the output file {}{} would overwrite this image; choose another --out", *hit,
                                prefix, ending + (open_ended ? "*" : "")));
        }
    }
}

void output_names::create_folder() const {
    if (folder_.empty()) return;
    std::error_code ec;
    fs::create_directories(folder_, ec);
    if (ec) throw io_error(fmt::format("{}: cannot create the output folder: {}", folder_, ec.message()));
}

void json_output::write(const std::string& document) const {
    if (!to_stdout()) {
        write_text(path, document);
        return;
    }
    std::fwrite(document.data(), 1, document.size(), stdout);
    std::fflush(stdout);
}

int64_t classes_per_image(const shape_t& score_shape) {
    if (score_shape.empty()) return 1;
    shape_t one = score_shape;
    one[0] = 1;
    return element_count(one);
}

void require_label_count(const std::vector<std::string>& labels, int64_t classes, const std::string& labels_file,
                         const std::string& model_path, const graph& g) {
    if (labels.empty() || int64_t(labels.size()) == classes) return;
    std::string origin = labels_file;
    if (origin.empty())
        origin = g.metadata.count("deepinside.labels") ? model_path + ": model metadata 'deepinside.labels'"
                                                       : fs::path(model_path).replace_extension(".labels.txt").string();
    throw input_error(fmt::format("{}: {} labels for the model's {} classes; give one name per class, one per line",
                                  origin, labels.size(), classes));
}

} // namespace deepinside::cli
