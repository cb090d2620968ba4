#pragma once
// Helpers of the engine's certificates: where the test data is, random tensors, error measures and
// the engine-vs-reference comparison every sweep uses; graphs are built with
// tests/support/graph_builder.hpp.
// tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of the area; only main.cpp may
// see it, or each file would define its own main().
#undef BOOST_TEST_MODULE
#include "reference.hpp"
#include "support/graph_builder.hpp"
#include "support/numbers.hpp"
#include "support/stored_state.hpp"
#include "support/requirements.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/graph.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/tensor.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace engine_test {

using namespace deepinside;
using test_support::attr_float;
using test_support::attr_int;
using test_support::attr_ints;
using test_support::attr_string;
using test_support::graph_builder;
using test_support::random_values;
using verify::dtensor;
namespace fs = std::filesystem;

// ---- Test data --------------------------------------------------------------------------------

using test_support::needs_shared_models;

/// The folder of a shared model; the test case declares *needs_shared_models(name), so an absent
/// folder is an error here.
inline fs::path shared_model(const std::string& name) {
    return test_support::require_file(fs::path(test_support::env("DEEPINSIDE_SHARED_MODELS")) / name / "model.onnx")
        .parent_path();
}

/// The bundled model, part of the repository.
inline fs::path bundled_model() {
    return test_support::require_file(fs::path(test_support::env("DEEPINSIDE_SOURCE_DIR")) / "models" /
                                      "fashion-mnist-convnet.onnx");
}

/// The input shape of a graph with its symbolic dimensions set to 1.
inline shape_t concrete_input_shape(const graph& g) {
    shape_t s = g.inputs.at(0).shape;
    for (auto& d : s)
        if (d < 0) d = 1;
    return s;
}

// ---- Numbers ----------------------------------------------------------------------------------

inline dtensor to_d(const tensor& t) { return verify::to_double(t); }

using test_support::rel_l2;

template <typename T>
double max_abs(const T& t) {
    double m = 0;
    for (auto v : t.data) m = std::max(m, std::fabs(double(v)));
    return m;
}

/// Uniform values in [lo, hi), as float (the engine's precision) so both sides see the same input.
inline tensor random_tensor(std::mt19937& rng, const shape_t& shape, double lo = -1, double hi = 1) {
    tensor t(shape);
    std::uniform_real_distribution<double> u(lo, hi);
    for (float& v : t.data) v = static_cast<float>(u(rng));
    return t;
}

/// Distinct values (a shuffled grid), so max pooling and ReLU boundaries are unambiguous.
inline tensor random_distinct(std::mt19937& rng, const shape_t& shape) {
    tensor t(shape);
    const size_t n = t.data.size();
    for (size_t i = 0; i < n; ++i) t.data[i] = static_cast<float>(-1.0 + (2.0 * static_cast<double>(i) + 1.0) / static_cast<double>(n));
    std::shuffle(t.data.begin(), t.data.end(), rng);
    return t;
}

inline int64_t argmax(const std::vector<float>& v, size_t begin, size_t count) {
    return static_cast<int64_t>(std::max_element(v.begin() + static_cast<long>(begin), v.begin() + static_cast<long>(begin + count)) -
                                (v.begin() + static_cast<long>(begin)));
}

/// `o` with fusion off (engine_options::fuse): for checks that read or differentiate at every layer.
inline engine_options unfused(engine_options o = {}) {
    o.fuse = false;
    return o;
}

using deepinside::test_support::stored_activations;

} // namespace engine_test
