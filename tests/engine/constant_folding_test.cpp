// Compile-time folding of the nodes that compute on constants only (lib/graph/constant_folding.*):
// each op's result against values worked out by hand from the ONNX specification, and the
// dynamic-batch flatten PyTorch writes for `x.view(x.size(0), -1)` compiled at several batch sizes,
// forward and backward against the static-shape graph it must equal.
#include "support.hpp"

#include "graph/constant_folding.hpp"

using namespace engine_test;

namespace {

constant int_tensor(shape_t shape, std::vector<int64_t> v) {
    constant c;
    c.shape = std::move(shape);
    c.is_int = true;
    c.ints = std::move(v);
    return c;
}

constant float_tensor(shape_t shape, std::vector<float> v) {
    constant c;
    c.shape = std::move(shape);
    c.floats = std::move(v);
    return c;
}

/// Folds one node whose inputs are the given constants (named a, b, c, ...); returns its outputs.
std::vector<constant> fold(const std::string& op, const std::vector<constant>& inputs,
                           const std::map<std::string, attribute>& attributes = {}, int64_t opset = 13, size_t outputs = 1) {
    graph g;
    g.source = "folding test";
    node n;
    n.name = "n";
    n.op_type = op;
    n.opset = opset;
    n.attributes = attributes;
    for (size_t i = 0; i < inputs.size(); ++i) {
        const std::string name(1, static_cast<char>('a' + i));
        g.constants[name] = inputs[i];
        n.inputs.push_back(name);
    }
    for (size_t i = 0; i < outputs; ++i) n.outputs.push_back("y" + std::to_string(i));
    auto out = passes::fold_node(n, g, [](const std::string&) -> const shape_t* { return nullptr; });
    BOOST_REQUIRE_MESSAGE(out.has_value(), op << " was not folded");
    return *out;
}

constant fold1(const std::string& op, const std::vector<constant>& inputs, const std::map<std::string, attribute>& attributes = {},
               int64_t opset = 13) {
    return fold(op, inputs, attributes, opset).at(0);
}

void check_ints(const constant& c, const shape_t& shape, const std::vector<int64_t>& values) {
    BOOST_TEST(c.is_int);
    BOOST_TEST(c.shape == shape, "shape " << to_string(c.shape) << ", expected " << to_string(shape));
    BOOST_TEST(c.ints == values, boost::test_tools::per_element());
}

void check_floats(const constant& c, const shape_t& shape, const std::vector<float>& values) {
    BOOST_TEST(!c.is_int);
    BOOST_TEST(c.shape == shape, "shape " << to_string(c.shape) << ", expected " << to_string(shape));
    BOOST_TEST(c.floats == values, boost::test_tools::per_element());
}

} // namespace

BOOST_AUTO_TEST_SUITE(constant_folding)

BOOST_AUTO_TEST_CASE(shape_arithmetic_ops) {
    const constant v = int_tensor({2, 3}, {0, 1, 2, 3, 4, 5});
    // Gather along axis 1 with a negative index; a scalar index drops the axis.
    check_ints(fold1("Gather", {v, int_tensor({2}, {-1, 0})}, {{"axis", attr_int(1)}}), {2, 2}, {2, 0, 5, 3});
    check_ints(fold1("Gather", {v, int_tensor({}, {1})}), {3}, {3, 4, 5});
    // Slice: negative step from the end, clamped bounds.
    check_ints(fold1("Slice", {v, int_tensor({1}, {-1}), int_tensor({1}, {-100}), int_tensor({1}, {1}), int_tensor({1}, {-2})}), {2, 2},
               {2, 0, 5, 3});
    check_ints(fold1("Slice", {v, int_tensor({1}, {1}), int_tensor({1}, {INT64_MAX})}), {1, 3}, {3, 4, 5});
    check_ints(fold1("Slice", {v}, {{"starts", attr_ints({0})}, {"ends", attr_ints({2})}, {"axes", attr_ints({1})}}, 9), {2, 2},
               {0, 1, 3, 4});
    check_ints(fold1("Concat", {int_tensor({1}, {7}), int_tensor({2}, {-1, 3})}, {{"axis", attr_int(0)}}), {3}, {7, -1, 3});
    check_ints(fold1("Unsqueeze", {int_tensor({}, {4}), int_tensor({1}, {0})}), {1}, {4});
    check_ints(fold1("Unsqueeze", {v}, {{"axes", attr_ints({0, 3})}}, 11), {1, 2, 3, 1}, {0, 1, 2, 3, 4, 5});
    check_ints(fold1("Squeeze", {int_tensor({1, 3, 1}, {1, 2, 3}), int_tensor({1}, {-1})}), {1, 3}, {1, 2, 3});
    check_ints(fold1("Transpose", {v}, {{"perm", attr_ints({1, 0})}}), {3, 2}, {0, 3, 1, 4, 2, 5});
    check_ints(fold1("Reshape", {v, int_tensor({2}, {0, -1})}), {2, 3}, {0, 1, 2, 3, 4, 5});
    check_ints(fold1("Expand", {int_tensor({2, 1}, {1, 2}), int_tensor({3}, {2, 1, 3})}), {2, 2, 3}, {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2});
    check_ints(fold1("Tile", {int_tensor({2}, {1, 2}), int_tensor({1}, {3})}), {6}, {1, 2, 1, 2, 1, 2});
    check_ints(fold1("Range", {int_tensor({}, {5}), int_tensor({}, {-2}), int_tensor({}, {-3})}), {3}, {5, 2, -1});
    check_floats(fold1("Range", {float_tensor({}, {0.5f}), float_tensor({}, {2.0f}), float_tensor({}, {0.5f})}), {3}, {0.5f, 1.0f, 1.5f});
    check_ints(fold1("ReduceProd", {v}, {{"axes", attr_ints({1})}, {"keepdims", attr_int(0)}}), {2}, {0, 60});
    // Integer Div truncates (ONNX Runtime); Mod follows the divisor's sign unless fmod = 1.
    check_ints(fold1("Div", {int_tensor({2}, {7, -7}), int_tensor({}, {2})}), {2}, {3, -3});
    check_ints(fold1("Mod", {int_tensor({2}, {7, -7}), int_tensor({}, {3})}), {2}, {1, 2});
    check_ints(fold1("Mod", {int_tensor({2}, {7, -7}), int_tensor({}, {3})}, {{"fmod", attr_int(1)}}), {2}, {1, -1});
    check_ints(fold1("Mul", {int_tensor({2}, {2, 3}), int_tensor({2, 1}, {1, 10})}), {2, 2}, {2, 3, 20, 30});
    check_floats(fold1("Pow", {float_tensor({2}, {2.0f, 3.0f}), int_tensor({}, {2})}), {2}, {4.0f, 9.0f});
    const auto halves = fold("Split", {v, int_tensor({2}, {1, 2})}, {{"axis", attr_int(1)}}, 13, 2);
    check_ints(halves.at(0), {2, 1}, {0, 3});
    check_ints(halves.at(1), {2, 2}, {1, 2, 4, 5});
}

BOOST_AUTO_TEST_CASE(mask_ops) {
    const constant a = int_tensor({4}, {0, 1, 2, 3});
    const constant eq = fold1("Equal", {a, int_tensor({}, {2})});
    check_ints(eq, {4}, {0, 0, 1, 0});
    check_ints(fold1("Not", {eq}), {4}, {1, 1, 0, 1});
    check_floats(fold1("Where", {eq, float_tensor({}, {-100.0f}), float_tensor({4}, {1, 2, 3, 4})}), {4}, {1, 2, -100.0f, 4});
    check_ints(fold1("Cast", {float_tensor({3}, {-1.7f, 0.2f, 2.9f})}, {{"to", attr_int(7)}}), {3}, {-1, 0, 2});
    check_ints(fold1("Cast", {float_tensor({2}, {0.0f, -3.0f})}, {{"to", attr_int(9)}}), {2}, {0, 1});
    constant value = float_tensor({1}, {0.25f});
    check_floats(fold1("ConstantOfShape", {int_tensor({2}, {2, 2})}, {{"value", value}}), {2, 2}, {0.25f, 0.25f, 0.25f, 0.25f});
    check_floats(fold1("ConstantOfShape", {int_tensor({1}, {2})}), {2}, {0.0f, 0.0f});
    check_floats(fold1("ScatterND", {float_tensor({2, 2}, {0, 0, 0, 0}), int_tensor({2, 1}, {1, 0}), float_tensor({2, 2}, {1, 2, 3, 4})}),
                 {2, 2}, {3, 4, 1, 2});
    check_ints(fold1("Max", {int_tensor({3}, {1, 5, 2}), int_tensor({}, {3})}), {3}, {3, 5, 3});
}

BOOST_AUTO_TEST_CASE(shape_of_an_activation_and_refusals) {
    graph g;
    g.source = "folding test";
    node shape;
    shape.name = "s";
    shape.op_type = "Shape";
    shape.opset = 15;
    shape.inputs = {"act"};
    shape.outputs = {"dims"};
    shape.attributes["start"] = int64_t(1);
    shape.attributes["end"] = int64_t(-1);
    const shape_t act_shape{5, 3, 7, 9};
    auto out = passes::fold_node(shape, g, [&](const std::string& name) -> const shape_t* { return name == "act" ? &act_shape : nullptr; });
    BOOST_REQUIRE(out.has_value());
    check_ints(out->at(0), {2}, {3, 7});
    // An activation whose value is needed: not folded.
    node add;
    add.name = "add";
    add.op_type = "Add";
    add.opset = 13;
    add.inputs = {"act", "act"};
    add.outputs = {"y"};
    BOOST_TEST(!passes::fold_node(add, g, [&](const std::string&) -> const shape_t* { return &act_shape; }).has_value());
    // Malformed values are model errors naming the node.
    BOOST_CHECK_EXCEPTION(fold1("Gather", {int_tensor({2}, {1, 2}), int_tensor({}, {2})}), model_error,
                          [](const model_error& e) { return std::string(e.what()).find("node 'n' (Gather") != std::string::npos; });
    BOOST_CHECK_THROW(fold1("Reshape", {int_tensor({2}, {1, 2}), int_tensor({1}, {3})}), model_error);
}

// `x.view(x.size(0), -1)` exported with a dynamic batch: Shape → Gather → Unsqueeze → Concat → Reshape.
BOOST_AUTO_TEST_CASE(dynamic_batch_flatten_runs_at_every_batch) {
    std::mt19937 rng(5);
    graph_builder b({-1, 2, 3, 3});
    b.random_constant("w", {4, 2, 2, 2}, rng);
    b.add("Conv", {"x", "w"}, "c");
    b.add("Relu", {"c"}, "r");
    b.add("Shape", {"r"}, "dims");
    b.int_constant("zero", {0});
    b.add("Gather", {"dims", "zero"}, "batch", {{"axis", attr_int(0)}});
    b.int_constant("minus_one", {-1});
    b.add("Concat", {"batch", "minus_one"}, "target", {{"axis", attr_int(0)}});
    b.add("Reshape", {"r", "target"}, "flat");
    b.random_constant("fc", {16, 3}, rng);
    b.add("MatMul", {"flat", "fc"}, "logits");
    const graph dynamic = b.finish("logits");

    graph_builder s({-1, 2, 3, 3});
    s.random_constant("w", {4, 2, 2, 2}, rng);
    s.add("Conv", {"x", "w"}, "c");
    s.add("Relu", {"c"}, "r");
    s.add("Flatten", {"r"}, "flat");
    s.random_constant("fc", {16, 3}, rng);
    s.add("MatMul", {"flat", "fc"}, "logits");
    graph fixed = s.finish("logits");
    fixed.constants = dynamic.constants; // same weights

    for (int64_t batch : {1, 3}) {
        BOOST_TEST_CONTEXT("batch " << batch) {
            const shape_t shape{batch, 2, 3, 3};
            tensor x(shape);
            for (float& v : x.data) v = static_cast<float>(std::uniform_real_distribution<double>(-1, 1)(rng));
            network dyn(dynamic, shape), fix(fixed, shape);
            BOOST_TEST(dyn.folded_nodes() == 3u); // Shape, Gather, Concat
            for (const node& n : dyn.model().nodes) BOOST_TEST(n.op_type != "Shape");
            const tensor a = dyn.forward(x).front(), want = fix.forward(x).front();
            BOOST_TEST(a.shape == want.shape);
            BOOST_TEST(a.data == want.data, boost::test_tools::per_element());
            const backward_request r{target{target::kind::class_score, "", {1}, {}}, backward_rule::guided};
            const tensor ga = dyn.backward({r}).front(), gw = fix.backward({r}).front();
            BOOST_TEST(ga.data == gw.data, boost::test_tools::per_element());
            // The reference runs on the compiled graph.
            const verify::reference_network ref(dyn.model());
            BOOST_TEST(ref.forward(to_d(x)).at("logits").shape == a.shape);
        }
    }
}

BOOST_AUTO_TEST_CASE(shape_arithmetic_on_activation_values_is_refused) {
    graph_builder b({1, 4});
    b.add("Relu", {"x"}, "r");
    b.add("Equal", {"r", "x"}, "y");
    BOOST_CHECK_EXCEPTION(network(b.finish("y"), {1, 4}), unsupported_error, [](const unsupported_error& e) {
        const std::string m = e.what();
        BOOST_TEST_MESSAGE(m);
        return m.find("node 'y_node' (Equal") != std::string::npos && m.find("only on constants") != std::string::npos;
    });
}

BOOST_AUTO_TEST_SUITE_END()
