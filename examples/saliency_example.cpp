// The three saliency maps of an image's top-1 class, with nothing but the installed library: one
// forward pass, then the gradient, DeconvNet and guided backpropagation signals in one backward
// pass, each reduced to the paper's map and written as a heatmap.
//
//   saliency_example MODEL.onnx IMAGE [OUT_PREFIX]    writes OUT_PREFIX.<method>.png (default: saliency)
#include <deepinside/deepinside.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace di = deepinside;

int main(int argc, char** argv) {
    if (argc < 3 || argc > 4) {
        std::fprintf(stderr, "usage: %s MODEL.onnx IMAGE [OUT_PREFIX]\n", argv[0]);
        return 1;
    }
    const std::string prefix = argc == 4 ? argv[3] : "saliency";
    try {
        const di::graph model = di::read_onnx(argv[1]);
        const di::image picture = di::read_image(argv[2]);
        // The input shape [1, C, H, W] the model takes for this image, and the preprocessing its
        // metadata states (mean, std, scale, channel order).
        const di::shape_t shape = di::input_shape_for_image(model, picture);
        const di::preprocess_options preprocessing = di::preprocess_from_metadata(model.metadata, {});
        const di::tensor input = di::image_to_tensor(picture, shape[1], shape[2], shape[3], preprocessing);

        di::engine_options options;
        options.threads = 2; // the network's own count: the program's OpenMP setting is left as it was
        di::network net(model, shape, options);
        net.forward(input);

        // The class scores are the logits before a final softmax, as the paper differentiates.
        const di::tensor scores = net.read(net.score_tensor());
        const auto best = std::max_element(scores.data.begin(), scores.data.end());
        const int64_t top_class = best - scores.data.begin();
        std::printf("class %lld score %.4f\n", static_cast<long long>(top_class), *best);

        // One request per method, all for the top class: one batched backward pass.
        const std::vector<di::backward_rule> rules = {di::backward_rule::gradient, di::backward_rule::deconvnet,
                                                      di::backward_rule::guided};
        di::target top;
        top.index = {top_class};
        std::vector<di::backward_request> requests;
        for (di::backward_rule rule : rules) requests.push_back({top, rule});
        const std::vector<di::tensor> signals = net.backward(requests);

        for (size_t i = 0; i < rules.size(); ++i) {
            // The paper's map: per pixel, the maximum over channels of |signal|; [1, H, W] -> [H, W].
            di::tensor map = di::saliency_map(signals[i]);
            map.shape.erase(map.shape.begin());
            const std::string file = prefix + "." + di::to_string(rules[i]) + ".png";
            di::write_png(file, di::heatmap(map));
            std::printf("wrote %s\n", file.c_str());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "saliency_example: %s\n", e.what());
        return 1;
    }
    return 0;
}
