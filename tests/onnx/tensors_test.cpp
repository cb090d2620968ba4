// Initializers and Constant nodes: element types, storage fields, and every size check.
#include "expect_error.hpp"
#include "model_builder.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

#include <cstring>
#include <functional>

using namespace deepinside;
using namespace onnx_test;

namespace {

graph load(const temp_dir& dir, const onnx::ModelProto& m) { return read_onnx(dir.write("model.onnx", m)); }

// tiny_model with Flatten replaced by Reshape(r, shape) where `shape` comes from a Constant node.
onnx::ModelProto reshape_model(const std::function<void(onnx::NodeProto*)>& set_value) {
    auto m = tiny_model();
    auto* flat = node_named(m, "flat");
    flat->set_op_type("Reshape");
    flat->clear_attribute();
    flat->add_input("shape");
    auto* nodes = m.mutable_graph()->mutable_node();
    auto* constant = nodes->Add();
    constant->set_op_type("Constant");
    constant->set_name("shape_const");
    constant->add_output("shape");
    set_value(constant);
    // Put the Constant first, where exporters write it.
    for (int i = nodes->size() - 1; i > 0; --i) nodes->SwapElements(i, i - 1);
    return m;
}

} // namespace

BOOST_AUTO_TEST_SUITE(tensors)

BOOST_AUTO_TEST_CASE(negative_dims_are_refused) {
    temp_dir dir;
    auto m = tiny_model();
    initializer(m, "fc.b")->set_dims(0, -3);
    const std::string path = dir.write("model.onnx", m);
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": initializer 'fc.b'");
    CHECK_HAS(msg, "negative");
}

BOOST_AUTO_TEST_CASE(overflowing_dims_are_refused) {
    temp_dir dir;
    auto m = tiny_model();
    auto* t = initializer(m, "fc.w");
    t->clear_dims();
    for (int i = 0; i < 3; ++i) t->add_dims(int64_t(1) << 30);
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "initializer 'fc.w'");
    CHECK_HAS(msg, "overflows");

    // Fits int64 as a count, not as bytes.
    t->clear_dims();
    t->add_dims(int64_t(1) << 62);
    CHECK_HAS(error_of<model_error>([&] { load(dir, m); }), "overflows");
}

BOOST_AUTO_TEST_CASE(tensors_larger_than_the_file_are_refused_before_allocating) {
    temp_dir dir;
    auto m = tiny_model();
    auto* t = initializer(m, "fc.w");
    t->clear_dims();
    t->add_dims(int64_t(1) << 20);
    t->add_dims(int64_t(1) << 20); // 4 TiB of floats
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "initializer 'fc.w'");
    CHECK_HAS(msg, "more than the whole file");

    auto m2 = tiny_model();
    auto* b = initializer(m2, "conv.b"); // float_data storage
    b->clear_dims();
    b->add_dims(int64_t(1) << 40);
    CHECK_HAS(error_of<model_error>([&] { load(dir, m2); }), "more values than the whole file");
}

BOOST_AUTO_TEST_CASE(raw_data_size_mismatch) {
    temp_dir dir;
    auto m = tiny_model();
    initializer(m, "fc.w")->set_raw_data(std::string(100, '\0'));
    const std::string path = dir.write("model.onnx", m);
    const std::string msg = error_of<model_error>([&] { read_onnx(path); });
    BOOST_TEST(msg == path + ": initializer 'fc.w': raw_data holds 100 bytes, shape [3, 32] of float needs 384");
}

BOOST_AUTO_TEST_CASE(typed_field_count_mismatch) {
    temp_dir dir;
    auto m = tiny_model();
    initializer(m, "conv.b")->add_float_data(7.0f); // 3 values for shape [2]
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "initializer 'conv.b': float_data holds 3 values, shape [2] needs 2");
}

BOOST_AUTO_TEST_CASE(values_in_the_wrong_typed_field) {
    temp_dir dir;
    auto m = tiny_model();
    auto* b = initializer(m, "conv.b");
    b->clear_float_data();
    b->add_int64_data(1);
    b->add_int64_data(2);
    const std::string msg = error_of<model_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "initializer 'conv.b'");
    CHECK_HAS(msg, "int64_data");
}

BOOST_AUTO_TEST_CASE(raw_and_typed_data_together_are_refused) {
    temp_dir dir;
    auto m = tiny_model();
    initializer(m, "conv.b")->set_raw_data(le_bytes(std::vector<float>{1, 2}));
    CHECK_HAS(error_of<model_error>([&] { load(dir, m); }), "both raw_data and typed");
}

BOOST_AUTO_TEST_CASE(used_double_initializer_is_unsupported) {
    temp_dir dir;
    auto m = tiny_model();
    auto* t = initializer(m, "fc.b");
    t->set_data_type(onnx::TensorProto::DOUBLE);
    t->set_raw_data(le_bytes(std::vector<double>{0.1, 0.2, 0.3}));
    const std::string path = dir.write("model.onnx", m);
    const std::string msg = error_of<unsupported_error>([&] { read_onnx(path); });
    CHECK_HAS(msg, path + ": initializer 'fc.b'");
    CHECK_HAS(msg, "double");
}

BOOST_AUTO_TEST_CASE(other_element_types_are_unsupported_when_used) {
    temp_dir dir;
    for (auto type : {onnx::TensorProto::FLOAT16, onnx::TensorProto::INT8, onnx::TensorProto::UINT8}) {
        auto m = tiny_model();
        auto* t = initializer(m, "conv.b");
        t->clear_float_data();
        t->set_data_type(type);
        t->set_raw_data(std::string(4, '\0'));
        const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
        CHECK_HAS(msg, "initializer 'conv.b'");
    }
}

BOOST_AUTO_TEST_CASE(unused_tensors_of_other_types_are_skipped) {
    temp_dir dir;
    auto m = tiny_model();
    onnx::TensorProto names;
    names.set_name("class_names");
    names.set_data_type(onnx::TensorProto::STRING);
    names.add_dims(2);
    names.add_string_data("cat");
    names.add_string_data("dog");
    *m.mutable_graph()->add_initializer() = names;
    const graph g = load(dir, m);
    BOOST_TEST(g.constants.count("class_names") == 0u);
    BOOST_TEST(g.constants.size() == 4u);
}

BOOST_AUTO_TEST_CASE(integer_initializers_become_int64) {
    temp_dir dir;
    auto m = tiny_model();
    *m.mutable_graph()->add_initializer() = int64_tensor("i64_raw", {3}, {-1, int64_t(1) << 40, 7}, /*raw=*/true);
    *m.mutable_graph()->add_initializer() = int64_tensor("i64_typed", {2}, {5, -6});
    onnx::TensorProto i32;
    i32.set_name("i32_raw");
    i32.set_data_type(onnx::TensorProto::INT32);
    i32.add_dims(2);
    i32.set_raw_data(le_bytes(std::vector<int32_t>{-2147483647 - 1, 123}));
    *m.mutable_graph()->add_initializer() = i32;
    onnx::TensorProto i32_typed = i32;
    i32_typed.set_name("i32_typed");
    i32_typed.clear_raw_data();
    i32_typed.add_int32_data(9);
    i32_typed.add_int32_data(-9);
    *m.mutable_graph()->add_initializer() = i32_typed;

    const graph g = load(dir, m);
    const auto check = [&](const std::string& name, const std::vector<int64_t>& expected) {
        const constant& c = g.constants.at(name);
        BOOST_TEST(c.is_int);
        BOOST_TEST(c.floats.empty());
        BOOST_TEST(c.ints == expected, boost::test_tools::per_element());
        BOOST_TEST(c.shape == (shape_t{static_cast<int64_t>(expected.size())}), boost::test_tools::per_element());
    };
    check("i64_raw", {-1, int64_t(1) << 40, 7});
    check("i64_typed", {5, -6});
    check("i32_raw", {-2147483648LL, 123});
    check("i32_typed", {9, -9});
}

BOOST_AUTO_TEST_CASE(scalar_and_empty_tensors) {
    temp_dir dir;
    auto m = tiny_model();
    *m.mutable_graph()->add_initializer() = float_tensor("scalar", {}, {2.5f});
    *m.mutable_graph()->add_initializer() = float_tensor("empty", {0, 4}, {});
    const graph g = load(dir, m);
    BOOST_TEST(g.constants.at("scalar").shape.empty());
    BOOST_TEST(g.constants.at("scalar").floats == (std::vector<float>{2.5f}), boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("empty").floats.empty());
}

BOOST_AUTO_TEST_CASE(constant_node_is_folded_into_constants) {
    temp_dir dir;
    const auto m = reshape_model([](onnx::NodeProto* n) {
        auto* a = n->add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        *a->mutable_t() = int64_tensor("", {2}, {-1, 32}, /*raw=*/true);
    });
    const graph g = load(dir, m);
    BOOST_TEST(g.nodes.size() == 4u);
    for (const auto& n : g.nodes) BOOST_TEST(n.op_type != "Constant");
    const constant& shape = g.constants.at("shape");
    BOOST_TEST(shape.is_int);
    BOOST_TEST(shape.ints == (std::vector<int64_t>{-1, 32}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes[2].op_type == "Reshape");
    BOOST_TEST(g.nodes[2].inputs[1] == "shape");
}

BOOST_AUTO_TEST_CASE(constant_value_int_float_and_lists) {
    temp_dir dir;
    const auto with = [](const char* name, onnx::AttributeProto::AttributeType type, auto fill) {
        return [=](onnx::NodeProto* n) {
            auto* a = n->add_attribute();
            a->set_name(name);
            a->set_type(type);
            fill(a);
        };
    };
    // value_ints feeds Reshape, so the model passes ONNX's checker and shape inference.
    graph g = load(dir, reshape_model(with("value_ints", onnx::AttributeProto::INTS, [](onnx::AttributeProto* a) {
        a->add_ints(-1);
        a->add_ints(32);
    })));
    BOOST_TEST(g.constants.at("shape").is_int);
    BOOST_TEST(g.constants.at("shape").shape == (shape_t{2}), boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("shape").ints == (std::vector<int64_t>{-1, 32}), boost::test_tools::per_element());

    // The others as extra outputs of the graph: used, so decoded, yet never fed to a node.
    auto m = tiny_model();
    const auto add_constant = [&](const char* out, const char* attr, onnx::AttributeProto::AttributeType type,
                                  const std::function<void(onnx::AttributeProto*)>& fill) {
        auto* n = add_node(m.mutable_graph(), "Constant", "", {}, {out});
        with(attr, type, fill)(n);
        m.mutable_graph()->add_output()->set_name(out);
    };
    add_constant("k_float", "value_float", onnx::AttributeProto::FLOAT, [](auto* a) { a->set_f(0.75f); });
    add_constant("k_floats", "value_floats", onnx::AttributeProto::FLOATS, [](auto* a) {
        a->add_floats(1.5f);
        a->add_floats(-2.5f);
    });
    add_constant("k_int", "value_int", onnx::AttributeProto::INT, [](auto* a) { a->set_i(-42); });
    // Outputs without a type do not pass ONNX's checker: read as a file past its IR range.
    m.set_ir_version(10);
    m.mutable_opset_import(0)->set_version(18);
    g = read_onnx(dir.write("constants.onnx", m));
    BOOST_TEST(g.constants.at("k_float").shape.empty());
    BOOST_TEST(g.constants.at("k_float").floats == (std::vector<float>{0.75f}), boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("k_floats").shape == (shape_t{2}), boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("k_floats").floats == (std::vector<float>{1.5f, -2.5f}), boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("k_int").is_int);
    BOOST_TEST(g.constants.at("k_int").ints == (std::vector<int64_t>{-42}), boost::test_tools::per_element());
    BOOST_TEST(g.nodes.size() == 4u);
}

BOOST_AUTO_TEST_CASE(constant_node_errors_name_the_node) {
    temp_dir dir;
    // A double-typed Constant value that Reshape reads.
    const auto m = reshape_model([](onnx::NodeProto* n) {
        auto* a = n->add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        auto* t = a->mutable_t();
        t->set_data_type(onnx::TensorProto::DOUBLE);
        t->add_dims(2);
        t->add_double_data(-1);
        t->add_double_data(32);
    });
    const std::string msg = error_of<unsupported_error>([&] { load(dir, m); });
    CHECK_HAS(msg, "node 'shape_const' (Constant, opset 13) value");
    CHECK_HAS(msg, "double");

    // No value at all.
    const auto empty = reshape_model([](onnx::NodeProto*) {});
    CHECK_HAS(error_of<model_error>([&] { load(dir, empty); }), "node 'shape_const'");

    // A value with a bad size.
    const auto bad = reshape_model([](onnx::NodeProto* n) {
        auto* a = n->add_attribute();
        a->set_name("value");
        a->set_type(onnx::AttributeProto::TENSOR);
        *a->mutable_t() = int64_tensor("", {2}, {-1, 32}, /*raw=*/true);
        a->mutable_t()->mutable_raw_data()->pop_back();
    });
    CHECK_HAS(error_of<model_error>([&] { load(dir, bad); }), "raw_data holds 15 bytes, shape [2] of int64 needs 16");
}

BOOST_AUTO_TEST_CASE(tensor_attributes_become_constants) {
    temp_dir dir;
    auto m = tiny_model();
    m.set_ir_version(10); // Flatten has no tensor attribute: keep ONNX's checker out of it
    m.mutable_opset_import(0)->set_version(18);
    auto* a = node_named(m, "flat")->add_attribute();
    a->set_name("extra");
    a->set_type(onnx::AttributeProto::TENSOR);
    *a->mutable_t() = float_tensor("", {2}, {3.0f, 4.0f}, /*raw=*/false);
    const graph g = load(dir, m);
    const constant* c = g.nodes[2].get_tensor("extra");
    BOOST_TEST_REQUIRE(c != nullptr);
    BOOST_TEST(c->floats == (std::vector<float>{3.0f, 4.0f}), boost::test_tools::per_element());
}

// Initializers of more than 65,536 values are checked before ONNX's checker and taken after it; a
// float raw_data is moved out of the protobuf in 8 MiB slices (take_float_bytes), each slice's pages
// handed back as it is copied. A weight of 2,613,600 values (10.5 MB: one whole slice, one partial,
// the boundary inside a page) comes out bit for bit, from a file and from bytes, as raw_data and as
// float_data; the small initializers beside it too.
BOOST_AUTO_TEST_CASE(large_initializers_are_taken_whole_and_in_order) {
    temp_dir dir;
    tiny_weights w;
    const int64_t side = 660, flat = 2 * side * side;
    w.fc_w = ramp(size_t(3 * flat), 1e-6f);
    for (const bool raw : {true, false}) {
        BOOST_TEST_CONTEXT((raw ? "raw_data" : "float_data")) {
            auto m = tiny_model(w);
            auto* x = m.mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->mutable_shape();
            x->mutable_dim(2)->set_dim_value(side);
            x->mutable_dim(3)->set_dim_value(side);
            *initializer(m, "fc.w") = float_tensor("fc.w", {3, flat}, w.fc_w, raw);
            const std::string path = dir.write(raw ? "raw.onnx" : "typed.onnx", m);
            for (const bool from_file : {true, false}) {
                BOOST_TEST_CONTEXT((from_file ? "read_onnx" : "read_onnx_bytes")) {
                    const graph g = from_file ? read_onnx(path) : read_onnx_bytes(serialize(m), "model.onnx", dir.path().string());
                    const constant& fc = g.constants.at("fc.w");
                    BOOST_TEST((fc.shape == shape_t{3, flat}));
                    BOOST_TEST_REQUIRE(fc.floats.size() == w.fc_w.size());
                    BOOST_TEST((std::memcmp(fc.floats.data(), w.fc_w.data(), w.fc_w.size() * sizeof(float)) == 0));
                    BOOST_TEST(g.constants.at("conv.w").floats == w.conv_w, boost::test_tools::per_element());
                    BOOST_TEST(g.constants.at("fc.b").floats == w.fc_b, boost::test_tools::per_element());
                }
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
