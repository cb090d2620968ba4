#pragma once
// A small builder of deepinside::graph objects written in C++, shared by the test areas that need
// hand-made graphs (tests/verify, tests/engine). This folder holds headers only, so
// tests/CMakeLists.txt makes no test executable of it; the areas reach it as
// "support/graph_builder.hpp" through their include path (tests/).
// tests/CMakeLists.txt defines BOOST_TEST_MODULE for every file of an area; only the area's main.cpp
// may see it, or each file would define its own main().
#undef BOOST_TEST_MODULE
#include <deepinside/graph.hpp>

#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace deepinside::test_support {

inline attribute attr_int(int64_t v) { return v; }
inline attribute attr_float(double v) { return static_cast<float>(v); }
inline attribute attr_ints(std::vector<int64_t> v) { return v; }
inline attribute attr_string(std::string v) { return v; }

/// `n` uniform values in [lo, hi), each float-representable so that a float engine and a double
/// reference hold exactly the same constant.
inline std::vector<double> random_values(std::mt19937& rng, size_t n, double lo = -1, double hi = 1) {
    std::uniform_real_distribution<double> u(lo, hi);
    std::vector<double> v(n);
    for (double& x : v) x = static_cast<float>(u(rng));
    return v;
}

/// A one-input graph under construction; nodes are appended in topological order.
class graph_builder {
public:
    explicit graph_builder(const shape_t& input_shape, int64_t opset = 13, const std::string& input = "x") : opset_(opset) {
        g_.source = "test graph";
        g_.opset = opset;
        g_.inputs.push_back({input, input_shape});
    }
    /// A float constant (initializer); `values` must hold element_count(shape) values.
    std::string constant(const std::string& name, const shape_t& shape, const std::vector<double>& values) {
        BOOST_REQUIRE_EQUAL(static_cast<int64_t>(values.size()), element_count(shape));
        deepinside::constant c;
        c.shape = shape;
        c.floats.assign(values.begin(), values.end());
        g_.constants[name] = c;
        return name;
    }
    /// A float constant of random_values(rng, ..., lo, hi).
    std::string random_constant(const std::string& name, const shape_t& shape, std::mt19937& rng, double lo = -1, double hi = 1) {
        return constant(name, shape, random_values(rng, static_cast<size_t>(element_count(shape)), lo, hi));
    }
    /// A 1-D int64 constant (shapes, axes, pads).
    std::string int_constant(const std::string& name, const std::vector<int64_t>& values) {
        deepinside::constant c;
        c.shape = {static_cast<int64_t>(values.size())};
        c.is_int = true;
        c.ints = values;
        g_.constants[name] = c;
        return name;
    }
    /// Appends a node computing `output` (opset 0: the builder's opset); returns `output`.
    std::string add(const std::string& op_type, const std::vector<std::string>& inputs, const std::string& output,
                    const std::map<std::string, attribute>& attributes = {}, int64_t opset = 0) {
        node n;
        n.name = output + "_node";
        n.op_type = op_type;
        n.opset = opset ? opset : opset_;
        n.inputs = inputs;
        n.outputs = {output};
        n.attributes = attributes;
        g_.nodes.push_back(n);
        return output;
    }
    /// The graph so far with these outputs (shapes left to inference); the builder stays usable.
    graph finish(const std::vector<std::string>& outputs) const {
        graph g = g_;
        for (const auto& o : outputs) g.outputs.push_back({o, {}});
        return g;
    }
    graph finish(const std::string& output) const { return finish(std::vector<std::string>{output}); }

private:
    graph g_;
    int64_t opset_;
};

} // namespace deepinside::test_support
