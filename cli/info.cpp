// deepinside info MODEL [--json FILE|-]
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace deepinside::cli {

command add_info(CLI::App& app) {
    struct options {
        std::string model;
        json_output json_out;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("--json", o->json_out.path,
                   "Write the description as JSON (schema deepinside.info/1, see README) to FILE, or - for stdout");
    return [o] {
        const std::string* model = &o->model;
        std::FILE* text = o->json_out.text_stream();
        // With --json - stdout carries the document alone; the table goes to stderr.
        const auto print = [text](fmt::string_view format, const auto&... args) {
            fmt::vprint(text, format, fmt::make_format_args(args...));
        };
        graph g = read_onnx(*model);
        nlohmann::ordered_json doc = {
            {"schema", "deepinside.info/1"},
            {"model", *model},
            {"format", {{"ir_version", g.ir_version}, {"opset", g.opset}, {"producer", g.producer}}}};
        const auto shape_json = [](const shape_t& s) {
            nlohmann::ordered_json dims = nlohmann::ordered_json::array();
            for (int64_t d : s)
                dims.push_back(d < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(d)); // open: null
            return dims;
        };
        print("model     {}\nformat    ONNX IR {}, opset {}, producer '{}'\n", *model, g.ir_version, g.opset,
              g.producer);
        for (const auto& in : g.inputs) {
            print("input     {} {}\n", in.name, to_string(in.shape));
            doc["inputs"].push_back({{"name", in.name}, {"shape", shape_json(in.shape)}});
        }
        for (const auto& out : g.outputs) {
            print("output    {} {}\n", out.name, to_string(out.shape));
            doc["outputs"].push_back({{"name", out.name}, {"shape", shape_json(out.shape)}});
        }
        // Shapes come from compiling the network for the declared input (open dimensions as 1). The
        // graph is moved into it (VGG-16's weights are 550 MB); should compiling fail, the model is
        // read again for the layer table.
        std::unique_ptr<network> net;
        if (!g.inputs.empty()) {
            shape_t s = g.inputs.front().shape;
            for (auto& d : s) d = d < 0 ? 1 : d;
            try {
                net = std::make_unique<network>(std::move(g), s);
                print("scores    {} (the class scores differentiated by default)\n", net->score_tensor());
                doc["score_tensor"] = net->score_tensor();
                doc["compiled_for"] = net->input_shape();
            } catch (const unsupported_error&) {
                throw;
            } catch (const error& e) {
                print("shapes    unknown: {}\n", e.what());
                doc["shapes_unknown"] = e.what();
                g = read_onnx(*model);
            }
        }
        // The layers as the engine runs them: nodes computing on constants only (shape arithmetic,
        // an Identity of a shared initializer) are evaluated when the network is compiled.
        const graph& layers = net ? net->model() : g;
        if (net && net->folded_nodes() > 0)
            print("folded    {} node{} computing on constants only (shape arithmetic, masks, shared weights)\n",
                  net->folded_nodes(), net->folded_nodes() == 1 ? "" : "s");
        doc["folded_nodes"] = net ? net->folded_nodes() : 0;
        doc["layers"] = nlohmann::ordered_json::array();
        print("\n{:<4} {:<28} {:<18} {:<34} {:<20} {:>10}\n", "#", "layer", "op", "output tensor (for --layer, --wrt)",
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
            print("{:<4} {:<28} {:<18} {:<34} {:<20} {:>10}\n", i, fit(n.name, 28), n.op_type,
                  n.outputs.empty() ? "" : n.outputs[0], shape, params);
            doc["layers"].push_back(
                {{"index", i},
                 {"name", n.name},
                 {"op", n.op_type},
                 {"output", n.outputs.empty() ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(n.outputs[0])},
                 {"shape", net && !n.outputs.empty() ? nlohmann::ordered_json(net->shape_of(n.outputs[0]))
                                                     : nlohmann::ordered_json(nullptr)},
                 {"parameters", params}});
        }
        print("\n{} layers, {} parameters\n", layers.nodes.size(), total);
        doc["parameters"] = total;
        doc["metadata"] = nlohmann::ordered_json::object();
        if (!layers.metadata.empty()) {
            print("\nmetadata\n");
            for (const auto& [k, v] : layers.metadata) {
                print("  {} = {}\n", k, v.size() > 80 ? v.substr(0, 77) + "..." : v);
                doc["metadata"][k] = v;
            }
        }
        if (o->json_out.wanted())
            o->json_out.write(doc.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n");
        return 0;
    };
}

} // namespace deepinside::cli
