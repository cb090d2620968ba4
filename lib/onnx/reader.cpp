// The ONNX reader: ModelProto -> deepinside::graph.
//
// A model file is untrusted input, so the reader checks everything it relies on itself, and runs
// ONNX's checker as a second opinion where Debian's onnx 1.12 knows the format (IR <= 8, opset <= 17;
// newer files are checked by our rules only, not refused). In order:
//  1. Size: the file is refused above read_options::max_file_bytes and above protobuf's 2 GiB limit
//     before it is read; empty, truncated or random bytes fail to parse -> "not a valid ONNX protobuf".
//  2. Versions: ir_version and graph present; IR 3..10 and default-domain opset 7..21, else
//     unsupported_error; each domain imported once.
//  3. Structure (ours, on every file): unique non-empty initializer and input names, no tensor
//     produced twice (by two nodes, or by a node and an input/initializer), every node input is a
//     graph input, an initializer or some node's output, no cycle, every graph output exists. An
//     unsorted file is sorted (stable: a sorted file keeps its order) so the engine and the checker
//     see producers before consumers. Unnamed nodes get "<op_type>_<index>".
//  4. Graph building: initializers and Constant nodes become constants (tensors.cpp checks dims,
//     element count overflow, data size against the bytes that hold it before allocating, and
//     external data paths in external_data.cpp); unused tensors of other element types are skipped,
//     used ones are unsupported; op types are not checked here (the reader does not depend on the
//     engine's op table, so that the verifier can read a model holding an op the engine lacks and
//     report it; the network refuses such a node when it is built); attributes
//     of kinds the engine cannot use (graphs, sparse tensors, strings lists) are unsupported; inputs
//     must be float tensors of known rank with no negative dimension.
//  5. ONNX's checker (check_graph with the model's folder, so external data resolves) and strict
//     shape inference on a copy stripped of value_info and output shapes: exporters write wrong
//     value_info (one shared model declares batch 128 inside a dynamic-batch graph) and the engine
//     computes shapes itself, so only contradictions between nodes, weights and inputs remain errors.
// Every message starts with the file name and names the tensor, node or attribute at fault.
#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include "onnx/detail.hpp"

#include <onnx/checker.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl.h>
#include <onnx/shape_inference/implementation.h>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <queue>
#include <unordered_map>
#include <unordered_set>

namespace deepinside {

namespace {

using namespace onnx_detail;

constexpr int64_t min_ir_version = 3;
constexpr int64_t max_ir_version = 10;
constexpr int64_t min_opset = 7;
constexpr int64_t max_opset = 21;
// What Debian's onnx 1.12 checker and shape inference know.
constexpr int64_t checker_max_ir_version = 8;
constexpr int64_t checker_max_opset = 17;
// Protobuf parses at most INT_MAX bytes in one message.
constexpr uint64_t protobuf_max_bytes = INT_MAX;

using opset_map = std::unordered_map<std::string, int64_t>;

bool is_default_domain(const std::string& domain) { return domain.empty() || domain == "ai.onnx"; }

std::string normalized_domain(const std::string& domain) { return is_default_domain(domain) ? "" : domain; }

// ONNX's messages span several lines; ours are one.
std::string one_line(const std::string& text) {
    std::string out;
    bool space = false;
    for (char c : text) {
        if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
            space = !out.empty();
            continue;
        }
        if (space) out += ' ';
        space = false;
        out += c;
    }
    return out;
}

std::string label(const ::onnx::NodeProto& n) { return fmt::format("node '{}' ({})", n.name(), n.op_type()); }

void check_size(uint64_t size, const std::string& source, const read_options& options) {
    if (options.max_file_bytes >= 0 && size > static_cast<uint64_t>(options.max_file_bytes))
        throw model_error(fmt::format("{}: the file is {} bytes, more than the limit of {} bytes", source, size,
                                      options.max_file_bytes));
    if (size > protobuf_max_bytes)
        throw model_error(fmt::format("{}: the file is {} bytes, more than protobuf's 2 GiB limit for one model "
                                      "(large models must keep their weights as external data)", source, size));
}

opset_map read_versions(const ::onnx::ModelProto& model, const std::string& source) {
    if (!model.has_ir_version() || !model.has_graph())
        throw model_error(fmt::format("{}: not a valid ONNX model (no {})", source,
                                      model.has_ir_version() ? "graph" : "ir_version"));
    if (model.ir_version() < min_ir_version || model.ir_version() > max_ir_version)
        throw unsupported_error(fmt::format("{}: IR version {} is not supported (supported: {} to {})", source,
                                            model.ir_version(), min_ir_version, max_ir_version));
    opset_map opsets;
    for (const auto& import : model.opset_import()) {
        const std::string domain = normalized_domain(import.domain());
        if (!opsets.emplace(domain, import.version()).second)
            throw model_error(fmt::format("{}: opset_import lists domain '{}' twice", source, import.domain()));
    }
    const auto it = opsets.find("");
    if (it == opsets.end())
        throw unsupported_error(fmt::format("{}: opset_import has no entry for the default ONNX domain; only models "
                                            "of default-domain ops are supported", source));
    if (it->second < min_opset || it->second > max_opset)
        throw unsupported_error(fmt::format("{}: opset {} of the default domain is not supported (supported: {} to {})",
                                            source, it->second, min_opset, max_opset));
    return opsets;
}

// Gives every unnamed node "<op_type>_<index>", avoiding names already in use.
void name_nodes(::onnx::GraphProto& g) {
    std::unordered_set<std::string> taken;
    for (const auto& n : g.node())
        if (!n.name().empty()) taken.insert(n.name());
    for (int i = 0; i < g.node_size(); ++i) {
        auto* n = g.mutable_node(i);
        if (!n->name().empty()) continue;
        std::string name = fmt::format("{}_{}", n->op_type(), i);
        for (int suffix = 1; taken.count(name); ++suffix) name = fmt::format("{}_{}_{}", n->op_type(), i, suffix);
        taken.insert(name);
        n->set_name(name);
    }
}

// Our structural rules (see the top of this file); sorts the nodes when the file is not sorted.
void check_structure(::onnx::GraphProto& g, const std::string& source) {
    // Tensors that exist before any node runs.
    std::unordered_set<std::string> initializers;
    for (const auto& t : g.initializer()) {
        if (t.name().empty()) throw model_error(fmt::format("{}: an initializer has no name", source));
        if (!initializers.insert(t.name()).second)
            throw model_error(fmt::format("{}: initializer '{}' is defined twice", source, t.name()));
    }
    std::unordered_set<std::string> given = initializers;
    std::unordered_set<std::string> input_names;
    for (const auto& in : g.input()) {
        if (in.name().empty()) throw model_error(fmt::format("{}: a graph input has no name", source));
        if (!input_names.insert(in.name()).second)
            throw model_error(fmt::format("{}: graph input '{}' is declared twice", source, in.name()));
        given.insert(in.name());
    }

    const int count = g.node_size();
    std::unordered_map<std::string, int> producer;
    for (int i = 0; i < count; ++i) {
        const auto& n = g.node(i);
        if (n.op_type().empty()) throw model_error(fmt::format("{}: {} has no op_type", source, label(n)));
        for (const auto& out : n.output()) {
            if (out.empty()) continue; // an omitted optional output
            if (given.count(out))
                throw model_error(fmt::format("{}: {} writes '{}', which is already a graph input or initializer",
                                              source, label(n), out));
            const auto [it, inserted] = producer.emplace(out, i);
            if (!inserted)
                throw model_error(fmt::format("{}: tensor '{}' is produced twice, by {} and by {}", source, out,
                                              label(g.node(it->second)), label(n)));
        }
    }

    // Kahn's algorithm, always taking the lowest index ready, so that a sorted file keeps its order.
    std::vector<std::vector<int>> consumers(static_cast<size_t>(count));
    std::vector<int> pending(static_cast<size_t>(count), 0);
    for (int i = 0; i < count; ++i) {
        const auto& n = g.node(i);
        for (const auto& in : n.input()) {
            if (in.empty() || given.count(in)) continue;
            const auto it = producer.find(in);
            if (it == producer.end())
                throw model_error(fmt::format("{}: {} reads '{}', which is not a graph input, an initializer or the "
                                              "output of any node", source, label(n), in));
            consumers[static_cast<size_t>(it->second)].push_back(i);
            ++pending[static_cast<size_t>(i)];
        }
    }
    std::priority_queue<int, std::vector<int>, std::greater<>> ready;
    for (int i = 0; i < count; ++i)
        if (pending[static_cast<size_t>(i)] == 0) ready.push(i);
    std::vector<int> order;
    order.reserve(static_cast<size_t>(count));
    while (!ready.empty()) {
        const int i = ready.top();
        ready.pop();
        order.push_back(i);
        for (int c : consumers[static_cast<size_t>(i)])
            if (--pending[static_cast<size_t>(c)] == 0) ready.push(c);
    }
    if (static_cast<int>(order.size()) != count) {
        for (int i = 0; i < count; ++i)
            if (pending[static_cast<size_t>(i)] != 0)
                throw model_error(fmt::format("{}: the graph has a cycle through {}", source, label(g.node(i))));
    }
    bool sorted = true;
    for (int i = 0; i < count; ++i) sorted = sorted && order[static_cast<size_t>(i)] == i;
    if (!sorted) {
        google::protobuf::RepeatedPtrField<::onnx::NodeProto> reordered;
        for (int i : order) *reordered.Add() = std::move(*g.mutable_node(i));
        g.mutable_node()->Swap(&reordered);
    }

    if (g.output_size() == 0) throw model_error(fmt::format("{}: the graph has no outputs", source));
    std::unordered_set<std::string> output_names;
    for (const auto& out : g.output()) {
        if (!output_names.insert(out.name()).second)
            throw model_error(fmt::format("{}: graph output '{}' is declared twice", source, out.name()));
        if (!given.count(out.name()) && !producer.count(out.name()))
            throw model_error(fmt::format("{}: graph output '{}' is not produced by any node, input or initializer",
                                          source, out.name()));
    }
}

// Files before IR 2 may leave the attribute type out; infer it from the one field that is set.
::onnx::AttributeProto::AttributeType type_of(const ::onnx::AttributeProto& a) {
    using A = ::onnx::AttributeProto;
    if (a.type() != A::UNDEFINED) return a.type();
    if (a.has_f()) return A::FLOAT;
    if (a.has_i()) return A::INT;
    if (a.has_s()) return A::STRING;
    if (a.has_t()) return A::TENSOR;
    if (a.has_g()) return A::GRAPH;
    if (a.has_sparse_tensor()) return A::SPARSE_TENSOR;
    if (a.floats_size()) return A::FLOATS;
    if (a.ints_size()) return A::INTS;
    if (a.strings_size()) return A::STRINGS;
    if (a.tensors_size()) return A::TENSORS;
    if (a.graphs_size()) return A::GRAPHS;
    return A::UNDEFINED;
}

std::string attribute_type_name(::onnx::AttributeProto::AttributeType type) {
    return ::onnx::AttributeProto::AttributeType_Name(type);
}

attribute read_attribute(const ::onnx::AttributeProto& a, const node& n, const tensor_source& src) {
    using A = ::onnx::AttributeProto;
    const auto type = type_of(a);
    switch (type) {
    case A::INT: return a.i();
    case A::FLOAT: return a.f();
    case A::STRING: return a.s();
    case A::INTS: return std::vector<int64_t>(a.ints().begin(), a.ints().end());
    case A::FLOATS: return std::vector<float>(a.floats().begin(), a.floats().end());
    case A::TENSOR: return decode_tensor(a.t(), fmt::format("{} attribute '{}'", n.describe(), a.name()), src);
    case A::UNDEFINED:
        throw model_error(fmt::format("{}: {} attribute '{}' has no type and no value", src.file, n.describe(), a.name()));
    default:
        throw unsupported_error(fmt::format("{}: {} attribute '{}' is of type {}, which is not supported", src.file,
                                            n.describe(), a.name(), attribute_type_name(type)));
    }
}

// The value of a Constant node: exactly one of value, value_float(s), value_int(s).
constant constant_value(const ::onnx::NodeProto& np, const node& n, const tensor_source& src) {
    using A = ::onnx::AttributeProto;
    if (np.input_size() != 0 || np.output_size() != 1 || np.output(0).empty())
        throw model_error(fmt::format("{}: {} must have no input and one output", src.file, n.describe()));
    if (np.attribute_size() != 1)
        throw model_error(fmt::format("{}: {} must have exactly one value attribute, it has {}", src.file, n.describe(),
                                      np.attribute_size()));
    const auto& a = np.attribute(0);
    const auto type = type_of(a);
    const auto expect = [&](A::AttributeType wanted) {
        if (type != wanted)
            throw model_error(fmt::format("{}: {} attribute '{}' must be of type {}, not {}", src.file, n.describe(),
                                          a.name(), attribute_type_name(wanted), attribute_type_name(type)));
    };
    constant value;
    if (a.name() == "value") {
        expect(A::TENSOR);
        return decode_tensor(a.t(), fmt::format("{} value", n.describe()), src);
    } else if (a.name() == "value_float") {
        expect(A::FLOAT);
        value.floats = {a.f()};
    } else if (a.name() == "value_floats") {
        expect(A::FLOATS);
        value.shape = {a.floats_size()};
        value.floats.assign(a.floats().begin(), a.floats().end());
    } else if (a.name() == "value_int") {
        expect(A::INT);
        value.is_int = true;
        value.ints = {a.i()};
    } else if (a.name() == "value_ints") {
        expect(A::INTS);
        value.is_int = true;
        value.shape = {a.ints_size()};
        value.ints.assign(a.ints().begin(), a.ints().end());
    } else if (a.name() == "sparse_value" || a.name() == "value_string" || a.name() == "value_strings") {
        throw unsupported_error(fmt::format("{}: {} attribute '{}' is not supported (only float and integer values are)",
                                            src.file, n.describe(), a.name()));
    } else {
        throw model_error(fmt::format("{}: {} has unknown attribute '{}'", src.file, n.describe(), a.name()));
    }
    return value;
}

// Element types a Constant's value attribute declares, so an unused one of another type can be skipped.
bool constant_is_decodable(const ::onnx::NodeProto& np) {
    if (np.attribute_size() != 1) return true; // let constant_value report it
    const auto& a = np.attribute(0);
    if (a.name() == "value") return is_supported_type(a.t().data_type());
    return a.name() != "sparse_value" && a.name() != "value_string" && a.name() != "value_strings";
}

value_info read_value_info(const ::onnx::ValueInfoProto& vi, bool is_input, const std::string& source) {
    const char* kind = is_input ? "graph input" : "graph output";
    value_info out;
    out.name = vi.name();
    if (!vi.has_type()) {
        if (is_input) throw model_error(fmt::format("{}: {} '{}' has no type", source, kind, vi.name()));
        return out; // an output's type is only informative: the engine computes it
    }
    if (vi.type().value_case() != ::onnx::TypeProto::kTensorType)
        throw unsupported_error(fmt::format("{}: {} '{}' is not a tensor; only tensors are supported", source, kind,
                                            vi.name()));
    const auto& tt = vi.type().tensor_type();
    const int32_t elem = tt.elem_type();
    if (is_input && elem == ::onnx::TensorProto::UNDEFINED)
        throw model_error(fmt::format("{}: {} '{}' has no element type", source, kind, vi.name()));
    if (elem != ::onnx::TensorProto::UNDEFINED && elem != ::onnx::TensorProto::FLOAT)
        throw unsupported_error(fmt::format("{}: {} '{}' has element type {}; only float {}s are supported", source, kind,
                                            vi.name(), type_name(elem), is_input ? "input" : "output"));
    if (!tt.has_shape()) {
        if (is_input)
            throw unsupported_error(fmt::format("{}: {} '{}' declares no shape; its rank must be known", source, kind,
                                                vi.name()));
        return out;
    }
    for (int i = 0; i < tt.shape().dim_size(); ++i) {
        const auto& d = tt.shape().dim(i);
        if (d.has_dim_value() && d.dim_value() < 0)
            throw model_error(fmt::format("{}: {} '{}' has negative dimension {} at axis {}", source, kind, vi.name(),
                                          d.dim_value(), i));
        out.shape.push_back(d.has_dim_value() ? d.dim_value() : -1);
    }
    return out;
}

/// Large initializers are checked before ONNX's checker runs and their values taken after it (see
/// read_model), each protobuf copy freed as its values are taken. Small ones are decoded at once.
constexpr size_t values_taken_after_checks = 1 << 16;

graph build_graph(const ::onnx::ModelProto& model, const opset_map& opsets, const tensor_source& src) {
    const auto& gp = model.graph();
    graph g;
    g.source = src.file;
    g.ir_version = model.ir_version();
    g.opset = opsets.at("");
    g.producer = model.producer_name();
    for (const auto& prop : model.metadata_props())
        if (!g.metadata.emplace(prop.key(), prop.value()).second)
            throw model_error(fmt::format("{}: metadata_props has key '{}' twice", src.file, prop.key()));

    // Only tensors something reads must be of a type we can hold; others may be skipped.
    std::unordered_set<std::string> used;
    for (const auto& n : gp.node())
        for (const auto& in : n.input()) used.insert(in);
    for (const auto& out : gp.output()) used.insert(out.name());

    std::unordered_set<std::string> initializers;
    for (const auto& t : gp.initializer()) {
        initializers.insert(t.name());
        if (!is_supported_type(t.data_type()) && t.data_type() != ::onnx::TensorProto::UNDEFINED && !used.count(t.name()))
            continue;
        g.constants[t.name()] = decode_tensor(t, fmt::format("initializer '{}'", t.name()), src, values_taken_after_checks);
    }

    for (const auto& np : gp.node()) {
        node n;
        n.name = np.name();
        n.op_type = np.op_type();
        n.domain = normalized_domain(np.domain());
        const auto opset = opsets.find(n.domain);
        if (opset == opsets.end())
            throw model_error(fmt::format("{}: {} uses domain '{}', which the model does not import", src.file,
                                          label(np), np.domain()));
        n.opset = opset->second;
        n.inputs.assign(np.input().begin(), np.input().end());
        n.outputs.assign(np.output().begin(), np.output().end());

        if (n.domain.empty() && n.op_type == "Constant") {
            if (!constant_is_decodable(np) && !(np.output_size() == 1 && used.count(np.output(0)))) continue;
            constant value = constant_value(np, n, src);
            g.constants[np.output(0)] = std::move(value);
            continue;
        }
        for (const auto& a : np.attribute()) {
            if (a.name().empty())
                throw model_error(fmt::format("{}: {} has an attribute without a name", src.file, n.describe()));
            if (!a.ref_attr_name().empty())
                throw model_error(fmt::format("{}: {} attribute '{}' refers to a function attribute outside a function",
                                              src.file, n.describe(), a.name()));
            if (n.attributes.count(a.name()))
                throw model_error(fmt::format("{}: {} has attribute '{}' twice", src.file, n.describe(), a.name()));
            n.attributes.emplace(a.name(), read_attribute(a, n, src));
        }
        g.nodes.push_back(std::move(n));
    }

    for (const auto& in : gp.input())
        if (!initializers.count(in.name())) g.inputs.push_back(read_value_info(in, true, src.file));
    if (g.inputs.empty())
        throw unsupported_error(fmt::format("{}: the graph has no input (every declared input is an initializer); "
                                            "only graphs that compute from an input are supported", src.file));
    for (const auto& out : gp.output()) g.outputs.push_back(read_value_info(out, false, src.file));
    return g;
}

/// The values build_graph only checked, taken now, each initializer's protobuf storage freed as its
/// values reach `g`: a float raw_data (what exporters write) moved without being held twice
/// (take_float_bytes), anything else decoded again.
void take_large_values(::onnx::ModelProto& model, graph& g, const tensor_source& src) {
    for (auto& t : *model.mutable_graph()->mutable_initializer()) {
        auto it = g.constants.find(t.name());
        if (it == g.constants.end() || !it->second.floats.empty() || !it->second.ints.empty() || element_count(it->second.shape) == 0)
            continue;
        if (t.data_type() == ::onnx::TensorProto::FLOAT && t.has_raw_data() && t.data_location() != ::onnx::TensorProto::EXTERNAL)
            it->second.floats = take_float_bytes(*t.mutable_raw_data(), static_cast<size_t>(element_count(it->second.shape)));
        else
            it->second = decode_tensor(t, fmt::format("initializer '{}'", t.name()), src);
        std::string().swap(*t.mutable_raw_data());
        google::protobuf::RepeatedField<float>().Swap(t.mutable_float_data());
        google::protobuf::RepeatedField<int64_t>().Swap(t.mutable_int64_data());
        google::protobuf::RepeatedField<int32_t>().Swap(t.mutable_int32_data());
        google::protobuf::RepeatedField<double>().Swap(t.mutable_double_data());
    }
}

// A copy of `model` for shape inference without the bulk of the weights: inference needs every
// initializer's type and shape, but the values only of small tensors (the shapes and axes that
// shape ops read). Declared inner and output shapes are left out: we do not trust them.
::onnx::ModelProto shape_inference_copy(::onnx::ModelProto& model) {
    constexpr int64_t max_values_kept = 4096;
    auto* initializers = model.mutable_graph()->mutable_initializer();
    google::protobuf::RepeatedPtrField<::onnx::TensorProto> held;
    held.Swap(initializers);
    ::onnx::ModelProto copy;
    try {
        copy.CopyFrom(model);
    } catch (...) {
        held.Swap(initializers);
        throw;
    }
    held.Swap(initializers);

    auto* g = copy.mutable_graph();
    for (const auto& t : model.graph().initializer()) {
        auto* dst = g->add_initializer();
        bool small = t.data_location() != ::onnx::TensorProto::EXTERNAL;
        int64_t count = 1;
        for (int64_t d : t.dims()) {
            if (!small || d < 0 || d > max_values_kept || (count *= d) > max_values_kept) small = false;
        }
        if (small) {
            *dst = t;
        } else {
            dst->set_name(t.name());
            dst->set_data_type(t.data_type());
            *dst->mutable_dims() = t.dims();
        }
    }
    g->clear_value_info();
    for (auto& out : *g->mutable_output())
        if (out.has_type() && out.type().has_tensor_type()) out.mutable_type()->mutable_tensor_type()->clear_shape();
    return copy;
}

// ONNX 1.12's shape inference for Conv, MaxPool and AveragePool divides by every stride without
// checking it: a stride of 0 killed the whole process with SIGFPE (found by fuzz/onnx_reader.cpp).
// A sweep of the supported ops' integer attributes (strides, dilations, kernel_shape, pads, group,
// axis, axes, size, transA) over 0, -1, ±2^63 and 2^40 crashed it on zero strides only. The engine
// refuses such strides as well (ops/window.cpp), but only after the reader has run.
void check_strides_for_onnx(const ::onnx::GraphProto& g, const std::string& source) {
    for (const auto& n : g.node()) {
        if (!is_default_domain(n.domain()) ||
            (n.op_type() != "Conv" && n.op_type() != "MaxPool" && n.op_type() != "AveragePool"))
            continue;
        for (const auto& a : n.attribute()) {
            if (a.name() != "strides") continue;
            for (int i = 0; i < a.ints_size(); ++i)
                if (a.ints(i) < 1)
                    throw model_error(fmt::format("{}: {} attribute 'strides' holds {} at position {}; strides must be "
                                                  "positive",
                                                  source, label(n), a.ints(i), i));
        }
    }
}

// ONNX's checker, as check_model does it but with the model's folder so external data resolves,
// then strict shape inference on a copy without the declared shapes we do not trust.
void run_onnx_checks(::onnx::ModelProto& model, const tensor_source& src) {
    check_strides_for_onnx(model.graph(), src.file);
    std::unordered_map<std::string, int> imports;
    for (const auto& import : model.opset_import()) imports[import.domain()] = static_cast<int>(import.version());
    try {
        ::onnx::checker::CheckerContext ctx;
        ctx.set_ir_version(static_cast<int>(model.ir_version()));
        ctx.set_opset_imports(imports);
        ctx.set_model_dir(src.base_dir);
        ::onnx::checker::LexicalScopeContext lex;
        ::onnx::checker::check_graph(model.graph(), ctx, lex);
        if (model.ir_version() >= 8) ::onnx::checker::check_model_local_functions(model, ctx, lex);
    } catch (const std::exception& e) {
        throw model_error(fmt::format("{}: ONNX checker: {}", src.file, one_line(e.what())));
    }

    ::onnx::ModelProto copy = shape_inference_copy(model);
    try {
        ::onnx::shape_inference::InferShapes(copy, ::onnx::OpSchemaRegistry::Instance(),
                                             ::onnx::ShapeInferenceOptions(/*check_type=*/true, /*error_mode=*/1));
    } catch (const std::exception& e) {
        throw model_error(fmt::format("{}: ONNX shape inference: {}", src.file, one_line(e.what())));
    }
}

// Names in messages come from the file: control characters would break the one-line rule (or forge
// extra lines in a log), so they are shown as \xNN.
std::string printable(const char* text) {
    std::string out;
    for (const char* p = text; *p; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if (c < 0x20 || c == 0x7f)
            out += fmt::format("\\x{:02x}", c);
        else
            out += *p;
    }
    return out;
}

bool has_control_characters(const char* text) { return printable(text) != text; }

/// Throws the error for bytes protobuf could not parse, given their first bytes.
[[noreturn]] void refuse_unparsed(const std::string& head, const std::string& source) {
    // torch.save writes a zip archive (since PyTorch 1.6) or, before that, a pickle stream:
    // people hand those over expecting them to work, so say what the file is and what to do.
    const bool zip = head.compare(0, 4, "PK\x03\x04") == 0;
    const bool pickle = head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x80 &&
                        static_cast<unsigned char>(head[1]) >= 2 && static_cast<unsigned char>(head[1]) <= 5;
    if (zip || pickle)
        throw model_error(fmt::format(
            "{}: not a valid ONNX protobuf: this looks like a PyTorch checkpoint (torch.save writes a {}); export the model "
            "to ONNX first, e.g. torch.onnx.export(model.eval(), torch.randn(1, 3, 224, 224), \"model.onnx\")",
            source, zip ? "zip archive" : "pickle stream"));
    throw model_error(fmt::format("{}: not a valid ONNX protobuf (truncated, or not an ONNX model)", source));
}

/// The graph of a parsed model: our checks, ONNX's, then the weights. Peak memory is the protobuf
/// and one tensor: large initializers are checked (decoded and dropped) before ONNX's checker, which
/// reads the protobuf's copies, and taken after it, each protobuf copy freed as it is taken.
graph read_model(::onnx::ModelProto& model, const std::string& source, const std::string& base_dir, uint64_t file_bytes,
                 const read_options& options) {
    const opset_map opsets = read_versions(model, source);
    auto* g = model.mutable_graph();
    name_nodes(*g);
    check_structure(*g, source);

    tensor_source src;
    src.file = source;
    src.file_bytes = file_bytes;
    src.base_dir = base_dir;
    src.allow_external = options.allow_external_data;
    graph result = build_graph(model, opsets, src);

    if (model.ir_version() <= checker_max_ir_version && opsets.at("") <= checker_max_opset)
        run_onnx_checks(model, src);
    take_large_values(model, result, src);
    return result;
}

graph read_model(const std::string& bytes, const std::string& source, const std::string& base_dir,
                 const read_options& options) {
    if (bytes.empty()) throw model_error(fmt::format("{}: the file is empty, not a valid ONNX protobuf", source));
    check_size(bytes.size(), source, options);
    ::onnx::ModelProto model;
    if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) refuse_unparsed(bytes.substr(0, 4), source);
    return read_model(model, source, base_dir, bytes.size(), options);
}

/// Rethrows a reader error with the control characters of names escaped.
template <typename F>
graph with_printable_errors(F&& read) {
    try {
        return read();
    } catch (const model_error& e) {
        if (has_control_characters(e.what())) throw model_error(printable(e.what()));
        throw;
    } catch (const unsupported_error& e) {
        if (has_control_characters(e.what())) throw unsupported_error(printable(e.what()));
        throw;
    } catch (const io_error& e) {
        if (has_control_characters(e.what())) throw io_error(printable(e.what()));
        throw;
    }
}

} // namespace

graph read_onnx_bytes(const std::string& bytes, const std::string& source, const std::string& base_dir,
                      const read_options& options) {
    return with_printable_errors([&] { return read_model(bytes, source, base_dir, options); });
}

graph read_onnx(const std::string& path, const read_options& options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status status = fs::status(path, ec);
    if (ec || !fs::exists(status))
        throw io_error(fmt::format("{}: cannot read the model: {}", path,
                                   ec ? ec.message() : std::string("no such file")));
    if (!fs::is_regular_file(status)) throw io_error(fmt::format("{}: not a regular file", path));
    const uint64_t size = fs::file_size(path, ec);
    if (ec) throw io_error(fmt::format("{}: cannot read the file size: {}", path, ec.message()));
    if (size == 0) throw model_error(fmt::format("{}: the file is empty, not a valid ONNX protobuf", path));
    check_size(size, path, options);

    // Parsed from the file as it is read, with no copy of its bytes held beside the protobuf.
    std::ifstream in(path, std::ios::binary);
    if (!in) throw io_error(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    fs::path folder = fs::path(path).parent_path();
    if (folder.empty()) folder = ".";
    return with_printable_errors([&] {
        ::onnx::ModelProto model;
        bool parsed = false;
        {
            google::protobuf::io::IstreamInputStream stream(&in);
            google::protobuf::io::CodedInputStream coded(&stream);
            coded.SetTotalBytesLimit(static_cast<int>(std::min<uint64_t>(size, protobuf_max_bytes)));
            parsed = model.ParseFromCodedStream(&coded) && coded.ConsumedEntireMessage() &&
                     static_cast<uint64_t>(coded.CurrentPosition()) == size;
        }
        if (in.bad()) throw io_error(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
        if (!parsed) {
            std::ifstream again(path, std::ios::binary);
            std::string head(4, '\0');
            again.read(head.data(), 4);
            head.resize(static_cast<size_t>(std::max<std::streamsize>(again.gcount(), 0)));
            refuse_unparsed(head, path);
        }
        return read_model(model, path, folder.string(), size, options);
    });
}

} // namespace deepinside
