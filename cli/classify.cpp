// deepinside classify MODEL IMAGE... and deepinside forward MODEL --input X.npy --out Y.npy
#include "commands.hpp"
#include "common.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>

#include <memory>

namespace deepinside::cli {

command add_classify(CLI::App& app) {
    struct options {
        std::string model, labels;
        std::vector<std::string> images;
        int64_t top = 5;
        int threads = 0;
        preprocess_flags pre;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("IMAGE", o->images, "PNG or JPEG images")->required();
    app.add_option("--top", o->top, "How many classes to print per image")->capture_default_str()->check(CLI::PositiveNumber);
    app.add_option("--labels", o->labels, "Class names, one per line (default: model metadata or MODEL's .labels.txt)");
    add_threads_option(app, o->threads);
    o->pre.add_to(app);
    return [o] {
        graph g = read_onnx(o->model);
        const auto labels = load_labels(o->labels, o->model, g);
        const preprocess_options pre = o->pre.resolve(g);
        // Decode everything first: a bad image fails the command before any output.
        std::vector<image> images;
        for (const auto& path : o->images) images.push_back(read_image(path));
        std::unique_ptr<network> net;
        for (size_t i = 0; i < images.size(); ++i) {
            const shape_t shape = image_input_shape(g, images[i]);
            if (!net || net->input_shape() != shape) net = std::make_unique<network>(g, shape, engine_flags(o->threads, "refuse"));
            net->forward(image_to_tensor(images[i], shape[1], shape[2], shape[3], pre));
            const tensor scores = net->read(net->score_tensor());
            const int64_t n = scores.size();
            const auto probs = softmax(scores.data.data(), n);
            fmt::print("{}\n", o->images[i]);
            int rank = 1;
            for (int64_t c : top_k(scores.data.data(), n, o->top))
                fmt::print("  {}. {:<24} class {:>4}  score {:>9.4f}  p {:.4f}\n", rank++, label_of(labels, c), c, scores.data[c], probs[c]);
        }
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
