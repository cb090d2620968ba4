// Real models: every model.onnx under $DEEPINSIDE_SHARED_MODELS loads, and what the reader returns
// agrees with an independent walk over the same protobuf. ONNX's own node test models (valid by
// construction) may be unsupported but never rejected as malformed.
#include "expect_error.hpp"
#include "model_builder.hpp"
#include "support/requirements.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <optional>
#include <set>

using namespace deepinside;
namespace fs = std::filesystem;

namespace {

using test_support::needs_onnx_testdata;
using test_support::needs_shared_models;

/// A folder named by the environment; the test case declared it as a precondition.
fs::path env_folder(const char* name) { return test_support::require_file(test_support::env(name)); }

onnx::ModelProto parse(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    onnx::ModelProto m;
    BOOST_TEST_REQUIRE(m.ParseFromString(bytes));
    return m;
}

const graph* find_model(const std::map<std::string, graph>& graphs, const std::string& name) {
    const auto it = graphs.find(name);
    BOOST_CHECK_MESSAGE(it != graphs.end(), "shared model " << name << " absent from ../shared/models");
    return it == graphs.end() ? nullptr : &it->second;
}

} // namespace

BOOST_AUTO_TEST_SUITE(shared_models)

BOOST_AUTO_TEST_CASE(every_shared_model_loads, *needs_shared_models()) {
    const fs::path root = env_folder("DEEPINSIDE_SHARED_MODELS");
    std::map<std::string, graph> graphs;
    for (const auto& entry : fs::directory_iterator(root)) {
        const fs::path file = entry.path() / "model.onnx";
        if (!fs::is_regular_file(file)) continue;
        const std::string name = entry.path().filename().string();
        BOOST_TEST_CONTEXT("model " << name) {
            graph g;
            BOOST_REQUIRE_NO_THROW(g = read_onnx(file.string()));
            graphs[name] = g;

            // Cross-check against the protobuf as the file has it.
            const auto m = parse(file);
            BOOST_TEST(g.ir_version == m.ir_version());
            std::set<std::string> initializers;
            for (const auto& t : m.graph().initializer()) initializers.insert(t.name());
            size_t constant_nodes = 0;
            for (const auto& n : m.graph().node()) constant_nodes += n.op_type() == "Constant";
            BOOST_TEST(g.nodes.size() == static_cast<size_t>(m.graph().node_size()) - constant_nodes);
            BOOST_TEST(g.constants.size() == initializers.size() + constant_nodes);
            for (const auto& t : m.graph().initializer()) {
                const constant& c = g.constants.at(t.name());
                BOOST_TEST(c.shape == shape_t(t.dims().begin(), t.dims().end()), boost::test_tools::per_element());
                if (t.data_type() == onnx::TensorProto::FLOAT && t.has_raw_data()) {
                    BOOST_TEST(c.floats.size() * sizeof(float) == t.raw_data().size());
                    BOOST_TEST(std::memcmp(c.floats.data(), t.raw_data().data(), t.raw_data().size()) == 0);
                }
            }
            BOOST_TEST(g.inputs.size() == static_cast<size_t>(m.graph().input_size()) -
                                              std::count_if(m.graph().input().begin(), m.graph().input().end(),
                                                            [&](const auto& in) { return initializers.count(in.name()) != 0; }));
            BOOST_TEST(g.outputs.size() == static_cast<size_t>(m.graph().output_size()));
            for (const auto& n : g.nodes) BOOST_TEST(n.op_type != "Constant");
            // Producers come before consumers.
            std::set<std::string> available(initializers.begin(), initializers.end());
            for (const auto& in : g.inputs) available.insert(in.name);
            for (const auto& [name_, c] : g.constants) available.insert(name_);
            for (const auto& n : g.nodes) {
                for (const auto& in : n.inputs) BOOST_TEST((in.empty() || available.count(in)), n.name << " reads " << in);
                available.insert(n.outputs.begin(), n.outputs.end());
            }
        }
    }
    BOOST_TEST_MESSAGE("loaded " << graphs.size() << " shared models");

    // Facts from the shared models' README, not from the reader.
    if (const graph* g = find_model(graphs, "squeezenet-torch2-opset18")) {
        BOOST_TEST(g->ir_version == 10);
        BOOST_TEST(g->opset == 18);
        BOOST_TEST(g->inputs.at(0).shape == (shape_t{1, 3, 224, 224}), boost::test_tools::per_element());
        BOOST_TEST(g->outputs.at(0).name == "logits");
        bool reduce_mean_has_axes_input = false;
        for (const auto& n : g->nodes)
            if (n.op_type == "ReduceMean" && n.inputs.size() == 2 && g->find_constant(n.inputs[1]))
                reduce_mean_has_axes_input = g->find_constant(n.inputs[1])->is_int;
        BOOST_TEST(reduce_mean_has_axes_input);
    }
    if (const graph* g = find_model(graphs, "fashion-mnist-cnn-opset21")) {
        BOOST_TEST(g->opset == 21);
        BOOST_TEST(g->inputs.at(0).shape == (shape_t{-1, 1, 28, 28}), boost::test_tools::per_element());
        BOOST_TEST(g->nodes.back().op_type == "LogSoftmax");
    }
    if (const graph* g = find_model(graphs, "fashion-mnist-cnn")) {
        BOOST_TEST(g->opset == 10);
        BOOST_TEST(g->inputs.at(0).shape == (shape_t{-1, 1, 28, 28}), boost::test_tools::per_element());
    }
    if (const graph* g = find_model(graphs, "mnist-cnn")) {
        // Reshape takes its shape from a Constant node, now a constant.
        bool found = false;
        for (const auto& n : g->nodes)
            if (n.op_type == "Reshape") found = g->find_constant(n.inputs.at(1)) && g->find_constant(n.inputs.at(1))->is_int;
        BOOST_TEST(found);
    }
    if (const graph* g = find_model(graphs, "cifar100-selu")) {
        BOOST_TEST(g->inputs.at(0).shape == (shape_t{1, 3, 32, 32}), boost::test_tools::per_element());
        BOOST_TEST(std::count_if(g->nodes.begin(), g->nodes.end(), [](const node& n) { return n.op_type == "Selu"; }) > 0);
    }
}

BOOST_AUTO_TEST_CASE(onnx_test_models_are_never_called_malformed, *needs_onnx_testdata()) {
    const fs::path root = env_folder("DEEPINSIDE_ONNX_TESTDATA");
    size_t loaded = 0, unsupported = 0;
    for (const auto& entry : fs::recursive_directory_iterator(root)) {
        if (entry.path().filename() != "model.onnx") continue;
        try {
            read_onnx(entry.path().string());
            ++loaded;
        } catch (const unsupported_error&) {
            ++unsupported;
        } catch (const std::exception& e) {
            BOOST_ERROR(entry.path().string() << ": " << e.what());
        }
    }
    BOOST_TEST_MESSAGE("ONNX test models: " << loaded << " loaded, " << unsupported << " unsupported");
    BOOST_TEST(loaded > 20u);
}

BOOST_AUTO_TEST_SUITE_END()
