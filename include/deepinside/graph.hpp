#pragma once
/// The project's own graph: what the ONNX reader produces and the engine compiles. It holds no
/// protobuf types. Nodes are in topological order; constants (initializers and the values of
/// Constant nodes) are kept apart from the nodes that compute activations.
#include <deepinside/tensor.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace deepinside {

/// A constant tensor from the model: float32 (weights) or int64 (shapes, axes, pads).
struct constant {
    shape_t shape;
    bool is_int = false;
    std::vector<float> floats;  ///< when !is_int
    std::vector<int64_t> ints;  ///< when is_int
};

using attribute = std::variant<int64_t, float, std::string, std::vector<int64_t>, std::vector<float>, constant>;

/// One ONNX node. `inputs` may hold "" for an omitted optional input.
struct node {
    std::string name;     ///< the node's name, or "<op_type>_<index>" when the model gives none
    std::string op_type;
    std::string domain;   ///< "" for the default ONNX domain
    int64_t opset = 0;    ///< opset version of the node's domain in this model
    std::vector<std::string> inputs;
    std::vector<std::string> outputs;
    std::map<std::string, attribute> attributes;

    bool has(const std::string& attr) const { return attributes.count(attr) != 0; }
    /// Typed attribute getters; a present attribute of the wrong type is a model_error naming the node.
    int64_t get_int(const std::string& attr, int64_t fallback) const;
    float get_float(const std::string& attr, float fallback) const;
    std::string get_string(const std::string& attr, const std::string& fallback) const;
    std::vector<int64_t> get_ints(const std::string& attr, const std::vector<int64_t>& fallback) const;
    std::vector<float> get_floats(const std::string& attr, const std::vector<float>& fallback) const;
    const constant* get_tensor(const std::string& attr) const;
    /// "node 'conv1' (Conv, opset 11)": how every message refers to a node.
    std::string describe() const;
};

/// A graph input or output with its declared shape (-1 where the dimension is symbolic or unknown).
struct value_info {
    std::string name;
    shape_t shape;
};

struct graph {
    std::string source;                        ///< the file it was read from, for messages
    int64_t ir_version = 0;
    int64_t opset = 0;                         ///< default-domain opset
    std::string producer;
    std::vector<node> nodes;                   ///< topological order, Constant nodes removed
    std::map<std::string, constant> constants; ///< initializers and Constant node outputs
    std::vector<value_info> inputs;            ///< real inputs (initializers excluded)
    std::vector<value_info> outputs;
    std::map<std::string, std::string> metadata; ///< metadata_props

    const constant* find_constant(const std::string& name) const;
    /// Index of the node producing `tensor_name`, if any.
    std::optional<size_t> producer_of(const std::string& tensor_name) const;
};

/// The `count` names of `candidates` nearest to `given`, ignoring case: those containing it first
/// (shortest first), then by edit distance; ties in the candidates' order, for "did you mean" messages when a user names a tensor or node that is not there.
std::vector<std::string> nearest_names(const std::string& given, const std::vector<std::string>& candidates,
                                       size_t count = 3);

} // namespace deepinside
