// deepinside classify MODEL IMAGE... and deepinside forward MODEL --input X.npy --out Y.npy
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"
#include "parallel.hpp"
#include "progress.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>

namespace deepinside::cli {

command add_classify(CLI::App& app) {
    struct options {
        std::string model, labels, save_input;
        std::vector<std::string> images;
        int64_t top = 5, batch = 0;
        int threads = 0;
        bool winograd = false;
        image_flags pre;
        json_output json_out;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("IMAGE", o->images, "PNG or JPEG images, folders of them, or quoted globs ('photos/*.jpg')")
        ->required();
    app.add_option("--top", o->top, "How many classes to print per image")
        ->capture_default_str()
        ->check(positive_integer("classes", 1'000'000));
    app.add_option("--batch", o->batch, "Images per forward pass (default: about 4 MB of input, at most 64)")
        ->check(positive_integer("images", 65536));
    app.add_option("--json", o->json_out.path,
                   "Write the results as JSON (schema deepinside.classify/1, see README) to FILE, or - for stdout");
    app.add_option("--save-input", o->save_input,
                   "Write the exact float32 tensor fed to the network ([N, C, H, W], every image) as .npy");
    app.add_option("--labels", o->labels, "Class names, one per line (default: model metadata or MODEL's .labels.txt)");
    add_threads_option(app, o->threads);
    add_winograd_flag(app, o->winograd);
    o->pre.add_to(app);
    return [o] {
        const auto start = std::chrono::steady_clock::now();
        const std::vector<std::string> paths = expand_image_arguments(o->images);
        std::FILE* text = o->json_out.text_stream();
        process_group world; // one process, or this rank of an mpirun
        if (world.size() > 1 && !o->save_input.empty())
            throw input_error("--save-input writes one file from one process; run it without mpirun");
        const int threads = o->threads > 0 ? o->threads : threads_per_process(world);
        rank_output out;
        int64_t batch = 0;
        std::string score_tensor;
        const auto work = [&] {
            graph g = read_onnx(o->model);
            engine_options engine = engine_flags(threads, "refuse");
            engine.winograd = o->winograd;
            batch_network nets(g, engine);
            const graph& header = nets.header();
            const auto labels = load_labels(o->labels, o->model, header);
            const image_flags::resolved how = o->pre.resolve(header);
            std::vector<tensor> inputs_fed;
            progress_bar progress("classify", int(paths.size()));
            const auto run = [&](const std::vector<fed_picture>& pending, size_t done) {
                const tensor x = stack_inputs(pending);
                if (nets.forward(x)) {
                    require_label_count(labels, classes_per_image(nets.net().shape_of(nets.net().score_tensor())),
                                        o->labels, o->model, header);
                    score_tensor = nets.net().score_tensor();
                }
                const tensor scores = nets.net().read(score_tensor);
                const int64_t n = classes_per_image(scores.shape);
                for (size_t b = 0; b < pending.size(); ++b) {
                    const float* row = scores.data.data() + int64_t(b) * n;
                    const auto probs = softmax(row, n);
                    std::string lines = pending[b].path;
                    nlohmann::ordered_json top = nlohmann::ordered_json::array();
                    int rank = 1;
                    for (int64_t c : top_k(row, n, o->top)) {
                        lines += fmt::format("\n  {}. {:<24} class {:>4}  score {:>9.4f}  p {:.4f}", rank++,
                                             label_of(labels, c), c, row[c], probs[size_t(c)]);
                        top.push_back({{"class", c},
                                       {"label", label_of(labels, c)},
                                       {"score", row[c]},
                                       {"probability", probs[size_t(c)]}});
                    }
                    out.say(world, text, lines);
                    out.images.push_back({{"path", pending[b].path}, {"index", done + b}, {"top", top}});
                }
                if (!o->save_input.empty()) inputs_fed.push_back(x);
                progress.update(int(done + pending.size()));
            };
            batch = for_each_batch(header, paths, how, o->batch, 1, world, threads, run);
            if (!o->save_input.empty())
                write_npy(o->save_input, concatenate_batches(inputs_fed, "--save-input " + o->save_input));
        };
        if (const auto status = run_share(world, work, out, text)) return *status;
        batch = std::min<int64_t>(batch, int64_t(paths.size())); // the batch that ran
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (o->json_out.wanted())
            o->json_out.write(nlohmann::ordered_json{{"schema", "deepinside.classify/1"},
                                                     {"model", o->model},
                                                     {"score_tensor", score_tensor},
                                                     {"batch", batch},
                                                     {"processes", world.size()},
                                                     {"images", out.images},
                                                     {"summary", {{"images", paths.size()}, {"seconds", seconds}}}}
                                  .dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) +
                              "\n");
        if (paths.size() > 1)
            fmt::print(text, "classify: {} images in {:.2f} s ({:.1f} ms per image, batch {})\n", paths.size(), seconds,
                       1e3 * seconds / double(paths.size()), batch);
        return 0;
    };
}

command add_forward(CLI::App& app) {
    struct options {
        std::string model, input, out;
        int threads = 0;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("--input", o->input, "float32 .npy tensor fed to the first input as it is (NCHW)")->required();
    app.add_option("--out", o->out, "where to write the first output (.npy, float32)")->required();
    add_threads_option(app, o->threads);
    return [o] {
        graph g = read_onnx(o->model);
        tensor x = read_input_npy(o->input);
        network net(g, x.shape, engine_flags(o->threads, "refuse"));
        write_npy(o->out, net.forward(x).front());
        return 0;
    };
}

} // namespace deepinside::cli
