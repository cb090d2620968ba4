// Models found by the fuzz target fuzz/onnx_reader.cpp (tools/fuzz.sh, reports/fuzzing.md), rebuilt
// here with the model builder so that each fixed finding stays fixed. The original inputs are seeds
// in fuzz/seeds/onnx_reader/.
#include "expect_error.hpp"
#include "model_builder.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

using namespace deepinside;
using namespace onnx_test;

BOOST_AUTO_TEST_SUITE(fuzz_regressions)

// fuzz_onnx_reader, crash-03c9317c32f5deb7e736751631c527b46a0f887c (seed crash-maxpool-stride-0.onnx):
// a MaxPool with strides [0, 2] in an IR 7 / opset 10 file killed the process with SIGFPE inside
// ONNX 1.12's shape inference (onnx::convPoolShapeInference1), which the reader runs for IR <= 8
// and opset <= 17. Conv and AveragePool share that code; all three are refused before it runs.
BOOST_AUTO_TEST_CASE(non_positive_strides_are_refused_before_onnx_shape_inference) {
    temp_dir dir;
    for (const std::string op : {"Conv", "MaxPool", "AveragePool"}) {
        for (const int64_t stride : {int64_t{0}, int64_t{-1}}) {
            BOOST_TEST_CONTEXT(op << " with strides [1, " << stride << "]") {
                auto m = tiny_model();
                onnx::NodeProto* n = node_named(m, "conv1");
                if (op != "Conv") {
                    // x -> conv1 -> c -> Relu -> r -> pool -> p -> Flatten: the pool keeps r's shape.
                    n = add_node(m.mutable_graph(), op, "pool", {"r"}, {"p"});
                    add_ints(n, "kernel_shape", {1, 1});
                    node_named(m, "flat")->set_input(0, "p");
                }
                add_ints(n, "strides", {1, stride});
                const std::string msg = error_of<model_error>([&] { read_onnx(dir.write("model.onnx", m)); });
                CHECK_HAS(msg, "node '" + n->name() + "' (" + op + ") attribute 'strides' holds " +
                                   std::to_string(stride) + " at position 1; strides must be positive");
            }
        }
    }
}

BOOST_AUTO_TEST_SUITE_END()
