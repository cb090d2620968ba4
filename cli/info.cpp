// deepinside info MODEL
#include "commands.hpp"
#include "common.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>

#include <memory>

namespace deepinside::cli {

command add_info(CLI::App& app) {
    auto model = std::make_shared<std::string>();
    app.add_option("MODEL", *model, "ONNX model file")->required();
    return [model] {
        graph g = read_onnx(*model);
        fmt::print("model     {}\nformat    ONNX IR {}, opset {}, producer '{}'\n", *model, g.ir_version, g.opset, g.producer);
        for (const auto& in : g.inputs) fmt::print("input     {} {}\n", in.name, to_string(in.shape));
        for (const auto& out : g.outputs) fmt::print("output    {} {}\n", out.name, to_string(out.shape));
        // Shapes come from compiling the network for the declared input (open dimensions as 1).
        std::unique_ptr<network> net;
        if (!g.inputs.empty()) {
            shape_t s = g.inputs.front().shape;
            for (auto& d : s) d = d < 0 ? 1 : d;
            try {
                net = std::make_unique<network>(g, s);
                fmt::print("scores    {} (the class scores differentiated by default)\n", net->score_tensor());
            } catch (const unsupported_error&) {
                throw;
            } catch (const error& e) {
                fmt::print("shapes    unknown: {}\n", e.what());
            }
        }
        // The layers as the engine runs them: nodes computing on constants only (shape arithmetic,
        // an Identity of a shared initializer) are evaluated when the network is compiled.
        const graph& layers = net ? net->model() : g;
        if (net && net->folded_nodes() > 0)
            fmt::print("folded    {} node{} computing on constants only (shape arithmetic, masks, shared weights)\n",
                       net->folded_nodes(), net->folded_nodes() == 1 ? "" : "s");
        fmt::print("\n{:<4} {:<28} {:<18} {:<34} {:<20} {:>10}\n", "#", "layer", "op", "output tensor (for --layer, --wrt)",
                   "output shape", "parameters");
        int64_t total = 0;
        for (size_t i = 0; i < layers.nodes.size(); ++i) {
            const node& n = layers.nodes[i];
            int64_t params = 0;
            for (const auto& in : n.inputs)
                if (const constant* c = layers.find_constant(in); c && !c->is_int) params += element_count(c->shape);
            total += params;
            std::string shape = net && !n.outputs.empty() ? to_string(net->shape_of(n.outputs[0])) : "?";
            auto fit = [](const std::string& text, size_t width) {
                return text.size() > width ? "..." + text.substr(text.size() - (width - 3)) : text;
            };
            fmt::print("{:<4} {:<28} {:<18} {:<34} {:<20} {:>10}\n", i, fit(n.name, 28), n.op_type,
                       n.outputs.empty() ? "" : n.outputs[0], shape, params);
        }
        fmt::print("\n{} layers, {} parameters\n", layers.nodes.size(), total);
        if (!g.metadata.empty()) {
            fmt::print("\nmetadata\n");
            for (const auto& [k, v] : g.metadata) fmt::print("  {} = {}\n", k, v.size() > 80 ? v.substr(0, 77) + "..." : v);
        }
        return 0;
    };
}

} // namespace deepinside::cli
