#pragma once
// Builds small ONNX models in C++ for the reader's tests, and temporary folders to write them to.
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

namespace onnx_test {

namespace fs = std::filesystem;

/// A fresh folder under the system temp folder, removed with everything in it on destruction.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        for (int attempt = 0; attempt < 100; ++attempt) {
            fs::path candidate = fs::temp_directory_path() /
                                 ("deepinside_onnx_test_" + std::to_string(::getpid()) + "_" + std::to_string(rd()));
            if (fs::create_directory(candidate)) {
                path_ = candidate;
                return;
            }
        }
        throw std::runtime_error("cannot create a temporary folder");
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const fs::path& path() const { return path_; }

    /// Writes `bytes` to `name` inside the folder (creating subfolders); returns the full path.
    std::string write(const std::string& name, const std::string& bytes) const {
        const fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out) throw std::runtime_error("cannot write " + file.string());
        return file.string();
    }
    std::string write(const std::string& name, const onnx::ModelProto& model) const {
        std::string bytes;
        if (!model.SerializeToString(&bytes)) throw std::runtime_error("cannot serialize a test model");
        return write(name, bytes);
    }

private:
    fs::path path_;
};

/// Little-endian bytes of `values` (the hosts we test on are little-endian; raw_data is).
template <typename T>
std::string le_bytes(const std::vector<T>& values) {
    std::string out(values.size() * sizeof(T), '\0');
    if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
    return out;
}

inline onnx::TensorProto float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                                      const std::vector<float>& values, bool raw = true) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::FLOAT);
    for (int64_t d : dims) t.add_dims(d);
    if (raw)
        t.set_raw_data(le_bytes(values));
    else
        for (float v : values) t.add_float_data(v);
    return t;
}

inline onnx::TensorProto int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                                      const std::vector<int64_t>& values, bool raw = false) {
    onnx::TensorProto t;
    t.set_name(name);
    t.set_data_type(onnx::TensorProto::INT64);
    for (int64_t d : dims) t.add_dims(d);
    if (raw)
        t.set_raw_data(le_bytes(values));
    else
        for (int64_t v : values) t.add_int64_data(v);
    return t;
}

/// Values 0.01 * (i + 1) * sign, distinct so a test sees any reordering.
inline std::vector<float> ramp(size_t n, float scale = 0.01f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = scale * static_cast<float>(i + 1) * (i % 2 ? -1.0f : 1.0f);
    return v;
}

/// dims: a number for a fixed dimension, -1 for a symbolic one named `batch`.
inline void set_tensor_type(onnx::ValueInfoProto* vi, const std::string& name, const std::vector<int64_t>& dims,
                            int32_t elem = onnx::TensorProto::FLOAT) {
    vi->set_name(name);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(elem);
    auto* shape = tt->mutable_shape();
    for (int64_t d : dims) {
        auto* dim = shape->add_dim();
        if (d < 0)
            dim->set_dim_param("batch");
        else
            dim->set_dim_value(d);
    }
}

inline onnx::NodeProto* add_node(onnx::GraphProto* g, const std::string& op, const std::string& name,
                                 const std::vector<std::string>& inputs, const std::vector<std::string>& outputs) {
    auto* n = g->add_node();
    n->set_op_type(op);
    if (!name.empty()) n->set_name(name);
    for (const auto& in : inputs) n->add_input(in);
    for (const auto& out : outputs) n->add_output(out);
    return n;
}

inline void add_ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
}
inline void add_int(onnx::NodeProto* n, const std::string& name, int64_t value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
}
inline void add_float(onnx::NodeProto* n, const std::string& name, float value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
}

/// Weights of the tiny model, so tests can compare what the reader decoded.
struct tiny_weights {
    std::vector<float> conv_w = ramp(2 * 1 * 3 * 3);
    std::vector<float> conv_b = {0.5f, -0.25f};
    std::vector<float> fc_w = ramp(3 * 32, 0.001f);
    std::vector<float> fc_b = {0.1f, 0.2f, 0.3f};
};

/// x [batch, 1, 4, 4] -> Conv "conv1" (2 filters 3x3, pads 1) -> Relu (unnamed) -> Flatten "flat"
/// -> Gemm "fc" (transB, 3 classes) -> y [batch, 3]. IR 8, opset 13: ONNX's checker applies.
inline onnx::ModelProto tiny_model(const tiny_weights& w = {}) {
    onnx::ModelProto m;
    m.set_ir_version(8);
    m.set_producer_name("deepinside-tests");
    auto* opset = m.add_opset_import();
    opset->set_domain("");
    opset->set_version(13);
    auto* prop = m.add_metadata_props();
    prop->set_key("labels");
    prop->set_value("a,b,c");

    auto* g = m.mutable_graph();
    g->set_name("tiny");
    set_tensor_type(g->add_input(), "x", {-1, 1, 4, 4});
    set_tensor_type(g->add_output(), "y", {-1, 3});
    *g->add_initializer() = float_tensor("conv.w", {2, 1, 3, 3}, w.conv_w);
    *g->add_initializer() = float_tensor("conv.b", {2}, w.conv_b, /*raw=*/false);
    *g->add_initializer() = float_tensor("fc.w", {3, 32}, w.fc_w);
    *g->add_initializer() = float_tensor("fc.b", {3}, w.fc_b);

    auto* conv = add_node(g, "Conv", "conv1", {"x", "conv.w", "conv.b"}, {"c"});
    add_ints(conv, "kernel_shape", {3, 3});
    add_ints(conv, "pads", {1, 1, 1, 1});
    add_node(g, "Relu", "", {"c"}, {"r"});
    add_int(add_node(g, "Flatten", "flat", {"r"}, {"f"}), "axis", 1);
    auto* gemm = add_node(g, "Gemm", "fc", {"f", "fc.w", "fc.b"}, {"y"});
    add_int(gemm, "transB", 1);
    add_float(gemm, "alpha", 1.0f);
    return m;
}

inline std::string serialize(const onnx::ModelProto& m) {
    std::string bytes;
    if (!m.SerializeToString(&bytes)) throw std::runtime_error("cannot serialize a test model");
    return bytes;
}

/// The initializer called `name` in `m` (throws when absent, so a test typo fails loudly).
inline onnx::TensorProto* initializer(onnx::ModelProto& m, const std::string& name) {
    for (auto& t : *m.mutable_graph()->mutable_initializer())
        if (t.name() == name) return &t;
    throw std::runtime_error("no initializer " + name);
}

inline onnx::NodeProto* node_named(onnx::ModelProto& m, const std::string& name) {
    for (auto& n : *m.mutable_graph()->mutable_node())
        if (n.name() == name) return &n;
    throw std::runtime_error("no node " + name);
}

} // namespace onnx_test
