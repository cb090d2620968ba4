// The reader on whole models: a valid one, broken files, versions, graph structure, ops, inputs.
#include "expect_error.hpp"
#include "model_builder.hpp"
#include "ops/registry.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

#include <random>

using namespace deepinside;
using namespace onnx_test;

namespace {

graph load(const temp_dir& dir, const onnx::ModelProto& m, const read_options& options = {}) {
    return read_onnx(dir.write("model.onnx", m), options);
}

const node& find_node(const graph& g, const std::string& name) {
    for (const auto& n : g.nodes)
        if (n.name == name) return n;
    throw std::runtime_error("no node " + name);
}

} // namespace

BOOST_AUTO_TEST_SUITE(reader)

BOOST_AUTO_TEST_CASE(tiny_model_loads_with_shapes_constants_and_attributes) {
    temp_dir dir;
    const tiny_weights w;
    const std::string path = dir.write("model.onnx", tiny_model(w));
    const graph g = read_onnx(path);

    BOOST_TEST(g.source == path);
    BOOST_TEST(g.ir_version == 8);
    BOOST_TEST(g.opset == 13);
    BOOST_TEST(g.producer == "deepinside-tests");
    BOOST_TEST(g.metadata.at("labels") == "a,b,c");

    BOOST_TEST_REQUIRE(g.inputs.size() == 1u); // initializers are not inputs
    BOOST_TEST(g.inputs[0].name == "x");
    BOOST_TEST(g.inputs[0].shape == (shape_t{-1, 1, 4, 4}), boost::test_tools::per_element());
    BOOST_TEST_REQUIRE(g.outputs.size() == 1u);
    BOOST_TEST(g.outputs[0].name == "y");
    BOOST_TEST(g.outputs[0].shape == (shape_t{-1, 3}), boost::test_tools::per_element());

    BOOST_TEST_REQUIRE(g.constants.size() == 4u);
    const constant& conv_w = g.constants.at("conv.w");
    BOOST_TEST(!conv_w.is_int);
    BOOST_TEST(conv_w.shape == (shape_t{2, 1, 3, 3}), boost::test_tools::per_element());
    BOOST_TEST(conv_w.floats == w.conv_w, boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("conv.b").floats == w.conv_b, boost::test_tools::per_element()); // from float_data
    BOOST_TEST(g.constants.at("fc.w").floats == w.fc_w, boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("fc.b").floats == w.fc_b, boost::test_tools::per_element());

    BOOST_TEST_REQUIRE(g.nodes.size() == 4u);
    BOOST_TEST(g.nodes[0].name == "conv1");
    BOOST_TEST(g.nodes[0].op_type == "Conv");
    BOOST_TEST(g.nodes[0].domain == "");
    BOOST_TEST(g.nodes[0].opset == 13);
    BOOST_TEST(g.nodes[0].inputs == (std::vector<std::string>{"x", "conv.w", "conv.b"}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes[0].outputs == (std::vector<std::string>{"c"}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes[0].get_ints("pads", {}) == (std::vector<int64_t>{1, 1, 1, 1}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes[0].get_ints("kernel_shape", {}) == (std::vector<int64_t>{3, 3}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes[1].name == "Relu_1"); // generated: the file leaves it unnamed
    BOOST_TEST(g.nodes[1].op_type == "Relu");
    BOOST_TEST(g.nodes[2].get_int("axis", -7) == 1);
    const node& fc = find_node(g, "fc");
    BOOST_TEST(fc.get_int("transB", 0) == 1);
    BOOST_TEST(fc.get_float("alpha", 0.0f) == 1.0f);
    BOOST_TEST(!fc.has("beta"));
}

BOOST_AUTO_TEST_CASE(bytes_and_file_give_the_same_graph) {
    temp_dir dir;
    const auto m = tiny_model();
    const graph from_file = load(dir, m);
    const graph from_bytes = read_onnx_bytes(serialize(m), "memory", "");
    BOOST_TEST(from_bytes.source == "memory");
    BOOST_TEST(from_bytes.nodes.size() == from_file.nodes.size());
    BOOST_TEST(from_bytes.constants.at("fc.w").floats == from_file.constants.at("fc.w").floats,
               boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(missing_file_is_an_io_error) {
    temp_dir dir;
    const std::string path = (dir.path() / "absent.onnx").string();
    const std::string msg = error_of<io_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path);
}

BOOST_AUTO_TEST_CASE(empty_file_is_refused) {
    temp_dir dir;
    const std::string path = dir.write("empty.onnx", std::string());
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": ");
    CHECK_HAS(msg, "not a valid ONNX protobuf");
}

BOOST_AUTO_TEST_CASE(truncated_file_is_refused) {
    temp_dir dir;
    const std::string bytes = serialize(tiny_model());
    const std::string path = dir.write("half.onnx", bytes.substr(0, bytes.size() / 2));
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": ");
    CHECK_HAS(msg, "not a valid ONNX protobuf");
}

BOOST_AUTO_TEST_CASE(random_bytes_are_refused) {
    temp_dir dir;
    std::mt19937 rng(20240611);
    for (int trial = 0; trial < 50; ++trial) {
        std::string bytes(1 + rng() % 4096, '\0');
        for (auto& b : bytes) b = static_cast<char>(rng());
        const std::string path = dir.write("random.onnx", bytes);
        const std::string msg = error_of<model_error>([&] { read_onnx(path); });
        CHECK_HAS(msg, path + ": ");
    }
}

BOOST_AUTO_TEST_CASE(corrupted_models_never_escape_the_error_hierarchy) {
    // Random byte changes in a valid model: each must load or throw one of our errors (which the
    // CLI reports as one line), never crash or leak another exception type.
    const std::string original = serialize(tiny_model());
    std::mt19937 rng(7);
    int loaded = 0, refused = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        std::string bytes = original;
        const int changes = 1 + static_cast<int>(rng() % 4);
        for (int c = 0; c < changes; ++c) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        try {
            read_onnx_bytes(bytes, "mutated.onnx", "");
            ++loaded;
        } catch (const deepinside::error& e) {
            ++refused;
            BOOST_TEST(std::string(e.what()).rfind("mutated.onnx: ", 0) == 0u, e.what());
        }
    }
    BOOST_TEST_MESSAGE("mutated models: " << loaded << " loaded, " << refused << " refused");
    BOOST_TEST(refused > 0);
}

BOOST_AUTO_TEST_CASE(names_from_the_file_cannot_break_the_message_onto_two_lines) {
    temp_dir dir;
    auto m = tiny_model();
    node_named(m, "flat")->set_input(0, "evil\nFAKE LOG LINE");
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    BOOST_TEST(msg.find('\n') == std::string::npos);
    CHECK_HAS(msg, "'evil\\x0aFAKE LOG LINE'");
}

BOOST_AUTO_TEST_CASE(duplicate_metadata_keys_are_refused) {
    temp_dir dir;
    auto m = tiny_model();
    *m.add_metadata_props() = m.metadata_props(0);
    CHECK_HAS(error_of<model_error>([&] { load(dir, m); }), "metadata_props has key 'labels' twice");
}

BOOST_AUTO_TEST_CASE(files_above_the_size_limit_are_refused_before_reading) {
    temp_dir dir;
    read_options options;
    options.max_file_bytes = 100;
    const std::string path = dir.write("model.onnx", tiny_model());
    const std::string msg = error_of<model_error>([&] { read_onnx(path, options); });
    CHECK_HAS(msg, path + ": ");
    CHECK_HAS(msg, "limit of 100 bytes");
    error_of<model_error>([&] { read_onnx_bytes(serialize(tiny_model()), "mem", "", options); });
}

BOOST_AUTO_TEST_CASE(unsupported_ir_versions) {
    temp_dir dir;
    for (int64_t ir : {2, 11}) {
        auto m = tiny_model();
        m.set_ir_version(ir);
        const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
        CHECK_HAS(msg, (dir.path() / "model.onnx").string() + ": ");
        CHECK_HAS(msg, "IR version " + std::to_string(ir));
    }
}

BOOST_AUTO_TEST_CASE(unsupported_opsets) {
    temp_dir dir;
    for (int64_t opset : {6, 22}) {
        auto m = tiny_model();
        m.mutable_opset_import(0)->set_version(opset);
        const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
        CHECK_HAS(msg, (dir.path() / "model.onnx").string() + ": ");
        CHECK_HAS(msg, "opset " + std::to_string(opset));
    }
}

BOOST_AUTO_TEST_CASE(models_without_the_default_domain_are_unsupported) {
    temp_dir dir;
    auto m = tiny_model();
    m.mutable_opset_import(0)->set_domain("com.example");
    const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "default ONNX domain");
}

BOOST_AUTO_TEST_CASE(newer_files_than_the_checker_knows_still_load) {
    // IR 10 / opset 18 is past Debian's onnx 1.12 checker: our own checks run instead.
    temp_dir dir;
    auto m = tiny_model();
    m.set_ir_version(10);
    m.mutable_opset_import(0)->set_version(18);
    const graph g = load(dir, m);
    BOOST_TEST(g.ir_version == 10);
    BOOST_TEST(g.opset == 18);
    BOOST_TEST(g.nodes.size() == 4u);
    BOOST_TEST(g.nodes[0].opset == 18);

    // Our structural checks still apply there.
    m.mutable_graph()->mutable_node(1)->set_input(0, "nowhere");
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "'nowhere'");
}

// The reader does not consult the engine's op table (the verifier reads models holding ops the engine
// lacks, to report them); the network refuses such a node when it is built, and unsupported_nodes
// lists every one.
BOOST_AUTO_TEST_CASE(unsupported_op_names_node_op_opset_and_the_supported_list) {
    temp_dir dir;
    auto m = tiny_model();
    auto* relu = m.mutable_graph()->mutable_node(1);
    relu->set_op_type("Hardmax");
    relu->set_name("hardmax1");
    const std::string path = dir.write("model.onnx", m);
    const graph g = read_onnx(path);
    BOOST_REQUIRE_EQUAL(g.nodes.size(), 4u);
    BOOST_TEST(g.nodes[1].op_type == "Hardmax");
    for (const std::string& msg : {error_of<unsupported_error>([&] { network net(g, {1, 1, 4, 4}); }), unsupported_nodes(g)}) {
        CHECK_HAS(msg, path + ": ");
        CHECK_HAS(msg, "'hardmax1'");
        CHECK_HAS(msg, "Hardmax");
        CHECK_HAS(msg, "opset 13");
        CHECK_HAS(msg, deepinside::ops::supported_op_list());
        BOOST_TEST(msg.find('\n') == std::string::npos);
    }
    BOOST_TEST(unsupported_nodes(read_onnx(dir.write("fine.onnx", tiny_model()))).empty());
}

BOOST_AUTO_TEST_CASE(nodes_of_other_domains_are_unsupported) {
    temp_dir dir;
    auto m = tiny_model();
    auto* import = m.add_opset_import();
    import->set_domain("com.example");
    import->set_version(1);
    m.mutable_graph()->mutable_node(1)->set_domain("com.example");
    m.mutable_graph()->mutable_node(0)->set_domain("com.example");
    const graph g = load(dir, m);
    const std::string msg = unsupported_nodes(g);
    CHECK_HAS(msg, "2 nodes the engine cannot run");
    CHECK_HAS(msg, "com.example");
    CHECK_HAS(msg, "Relu_1");
    CHECK_HAS(error_of<unsupported_error>([&] { network net(g, {1, 1, 4, 4}); }), "com.example");
}

BOOST_AUTO_TEST_CASE(node_of_a_domain_not_imported_is_a_model_error) {
    temp_dir dir;
    auto m = tiny_model();
    m.mutable_graph()->mutable_node(1)->set_domain("com.example");
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "does not import");
}

BOOST_AUTO_TEST_CASE(node_input_never_produced) {
    temp_dir dir;
    auto m = tiny_model();
    node_named(m, "flat")->set_input(0, "ghost");
    const std::string path = dir.write("model.onnx", m);
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": ");
    CHECK_HAS(msg, "node 'flat' (Flatten)");
    CHECK_HAS(msg, "'ghost'");
}

BOOST_AUTO_TEST_CASE(tensor_produced_twice) {
    temp_dir dir;
    auto m = tiny_model();
    node_named(m, "flat")->set_output(0, "c"); // conv1 already writes c
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "'c' is produced twice");

    auto m2 = tiny_model();
    node_named(m2, "flat")->set_output(0, "fc.w"); // an initializer
    CHECK_HAS(error_of<model_error>([&] { load(dir, m2); }), "'fc.w'");

    auto m3 = tiny_model();
    *m3.mutable_graph()->add_initializer() = float_tensor("fc.b", {3}, {1, 2, 3});
    CHECK_HAS(error_of<model_error>([&] { load(dir, m3); }), "initializer 'fc.b' is defined twice");
}

BOOST_AUTO_TEST_CASE(omitted_optional_inputs_stay_empty_names) {
    // Clip(r, min omitted, max): the engine must see that the second input is absent.
    temp_dir dir;
    auto m = tiny_model();
    node_named(m, "flat")->set_input(0, "clipped");
    *m.mutable_graph()->add_initializer() = float_tensor("six", {}, {6.0f});
    add_node(m.mutable_graph(), "Clip", "relu6", {"r", "", "six"}, {"clipped"});
    const graph g = load(dir, m);
    const node& clip = find_node(g, "relu6");
    BOOST_TEST(clip.inputs == (std::vector<std::string>{"r", "", "six"}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes[2].name == "relu6"); // sorted before Flatten, which reads it
}

BOOST_AUTO_TEST_CASE(unsorted_nodes_are_sorted) {
    temp_dir dir;
    auto m = tiny_model();
    auto* nodes = m.mutable_graph()->mutable_node();
    nodes->SwapElements(0, 3); // Gemm first, Conv last
    nodes->SwapElements(1, 2); // Flatten before Relu
    const graph g = load(dir, m);
    std::vector<std::string> order;
    for (const auto& n : g.nodes) order.push_back(n.op_type);
    BOOST_TEST(order == (std::vector<std::string>{"Conv", "Relu", "Flatten", "Gemm"}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(cycles_are_refused) {
    temp_dir dir;
    auto m = tiny_model();
    node_named(m, "conv1")->set_input(0, "f"); // conv reads flatten's output, which depends on conv
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "cycle");
}

BOOST_AUTO_TEST_CASE(graph_outputs_must_exist) {
    temp_dir dir;
    auto m = tiny_model();
    m.mutable_graph()->mutable_output(0)->set_name("nothing");
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "graph output 'nothing'");

    auto m2 = tiny_model();
    m2.mutable_graph()->clear_output();
    CHECK_HAS(error_of<model_error>([&] { load(dir, m2); }), "no outputs");
}

BOOST_AUTO_TEST_CASE(non_float_inputs_are_unsupported) {
    temp_dir dir;
    auto m = tiny_model();
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::INT64);
    const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "graph input 'x'");
    CHECK_HAS(msg, "int64");
}

BOOST_AUTO_TEST_CASE(negative_input_dims_are_refused) {
    temp_dir dir;
    auto m = tiny_model();
    m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(2)->set_dim_value(-4);
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "graph input 'x'");
    CHECK_HAS(msg, "-4");
}

BOOST_AUTO_TEST_CASE(graph_attributes_are_unsupported) {
    temp_dir dir;
    auto m = tiny_model();
    auto* a = node_named(m, "flat")->add_attribute();
    a->set_name("body");
    a->set_type(onnx::AttributeProto::GRAPH);
    a->mutable_g()->set_name("sub");
    const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "node 'flat'");
    CHECK_HAS(msg, "attribute 'body'");
    CHECK_HAS(msg, "GRAPH");
}

BOOST_AUTO_TEST_CASE(checker_failures_are_model_errors_naming_the_file) {
    temp_dir dir;
    auto m = tiny_model();
    add_int(node_named(m, "conv1"), "no_such_attribute", 3);
    const std::string path = dir.write("model.onnx", m);
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": ONNX checker");
    CHECK_HAS(msg, "no_such_attribute");
    BOOST_TEST(msg.find('\n') == std::string::npos);
}

BOOST_AUTO_TEST_CASE(inconsistent_weights_fail_shape_inference) {
    // Gemm's [batch, 3] plus a bias of 4: no declared shape is involved, the weights contradict.
    temp_dir dir;
    auto m = tiny_model();
    node_named(m, "fc")->set_output(0, "scores");
    *m.mutable_graph()->add_initializer() = float_tensor("bias4", {4}, {1, 2, 3, 4});
    add_node(m.mutable_graph(), "Add", "add_bias", {"scores", "bias4"}, {"y"});
    const std::string path = dir.write("model.onnx", m);
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": ONNX shape inference");
    CHECK_HAS(msg, "Add");
}

BOOST_AUTO_TEST_CASE(wrong_value_info_does_not_break_a_file) {
    // Like a shared model: value_info declares a fixed batch of 128 (and here a wrong channel count)
    // for inner tensors while the input batch is dynamic. We never trust value_info.
    temp_dir dir;
    auto m = tiny_model();
    set_tensor_type(m.mutable_graph()->add_value_info(), "c", {128, 5, 4, 4});
    set_tensor_type(m.mutable_graph()->add_value_info(), "f", {128, 99});
    m.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->mutable_shape()->mutable_dim(0)->set_dim_value(128);
    const graph g = load(dir, m);
    BOOST_TEST(g.nodes.size() == 4u);
    BOOST_TEST(g.outputs[0].shape == (shape_t{128, 3}), boost::test_tools::per_element()); // as declared
}

BOOST_AUTO_TEST_SUITE_END()
