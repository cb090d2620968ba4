// ONNX's own backend node tests (Debian's libonnx-testdata) run through the reader and the engine.
// Each test folder holds model.onnx and test_data_set_N/{input_K.pb, output_K.pb}; a folder is run
// when every node of its model is an op of our table (or a Constant, which the reader folds).
//
// Outcomes per folder:
//   PASSED  every output of every data set has the expected shape and |a - b| <= atol + rtol |b|
//           (b expected, rtol 1e-3, atol 1e-7: ONNX's backend runner; NaN equals NaN as there);
//   FAILED  wrong numbers or shape, a model_error on a valid ONNX test, or any other exception;
//   REFUSED read_onnx or network construction threw unsupported_error, or the network input is
//           not float32.
//   NOT-RUN a node of the model is outside the engine's table (the first such op is named);
//   DEVIATES a test listed in deviations() with why: its outputs equal the values we compute on
//           purpose instead of ONNX's (the same tolerance), e.g. where PyTorch and ONNX's reference
//           disagree and we follow the exporter users run.
// The outcome of every folder is pinned in tests/conformance/expected-outcomes.txt (name, outcome,
// and for REFUSED / NOT-RUN the reason): any folder whose outcome differs from the file fails the
// test, so an op that starts throwing unsupported_error, or a new op that makes a folder run, is
// seen. Every run writes the outcomes it found to $DEEPINSIDE_BUILD_DIR/conformance-outcomes.txt in
// the same format; updating the pinned file on purpose is copying that file over it. The README's
// counts must be those of the pinned file (checked here too).
#undef BOOST_TEST_MODULE
#include "ops/registry.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <onnx/onnx_pb.h>

#include <boost/test/unit_test.hpp>

#include "support/requirements.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace deepinside;

namespace {

constexpr double rtol = 1e-3;
constexpr double atol = 1e-7;

enum class outcome { passed, failed, refused, deviates };

/// ONNX tests whose stored output we deliberately do not reproduce: why, and the values we compute
/// instead (checked exactly as ONNX's are, so the deviation itself is pinned and tested).
struct deviation {
    const char* test;
    const char* why;
    std::vector<float> ours;
};

const std::vector<deviation>& deviations() {
    static const std::vector<deviation> list = {
        {"test_resize_downsample_scales_linear_align_corners",
         "align_corners with a scale: ONNX's reference divides by the fractional output length 4 x 0.6 = 2.4, PyTorch's "
         "F.interpolate(scale_factor=0.6, align_corners=True) by the integer length 2, as we do: [1, 4], not [1, 3.142857]",
         {1.0f, 4.0f}},
    };
    return list;
}

const deviation* deviation_of(const std::string& test) {
    for (const deviation& d : deviations())
        if (test == d.test) return &d;
    return nullptr;
}

struct case_result {
    std::string name;
    outcome result = outcome::passed;
    std::string detail; ///< one line: the reason, or the largest error
};

std::string read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error("cannot open " + p.string());
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

onnx::TensorProto read_tensor_proto(const fs::path& p) {
    onnx::TensorProto t;
    if (!t.ParseFromString(read_bytes(p))) throw std::runtime_error("cannot parse TensorProto " + p.string());
    return t;
}

int64_t proto_count(const onnx::TensorProto& t) {
    int64_t n = 1;
    for (int64_t d : t.dims()) n *= d;
    return n;
}

/// The values of a float32 TensorProto (raw_data or float_data).
tensor float_tensor(const onnx::TensorProto& t, const fs::path& where) {
    tensor out;
    out.shape.assign(t.dims().begin(), t.dims().end());
    const int64_t n = proto_count(t);
    if (t.has_raw_data()) {
        if (static_cast<int64_t>(t.raw_data().size()) != n * 4) throw std::runtime_error("raw_data size mismatch in " + where.string());
        out.data.resize(static_cast<size_t>(n));
        if (n) std::memcpy(out.data.data(), t.raw_data().data(), static_cast<size_t>(n) * 4);
    } else {
        if (t.float_data_size() != n) throw std::runtime_error("float_data size mismatch in " + where.string());
        out.data.assign(t.float_data().begin(), t.float_data().end());
    }
    return out;
}

/// data_set folders in numeric order, and input_K / output_K files of one in K order.
std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix, const std::string& suffix) {
    std::vector<std::pair<int, fs::path>> found;
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        if (f.rfind(prefix, 0) != 0 || f.size() < prefix.size() + suffix.size()) continue;
        if (f.compare(f.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        const std::string num = f.substr(prefix.size(), f.size() - prefix.size() - suffix.size());
        if (num.empty() || !std::all_of(num.begin(), num.end(), ::isdigit)) continue;
        found.emplace_back(std::stoi(num), e.path());
    }
    std::sort(found.begin(), found.end());
    std::vector<fs::path> out;
    for (auto& [k, p] : found) out.push_back(p);
    return out;
}

/// Default-domain opset the model imports.
int64_t default_opset(const onnx::ModelProto& m) {
    for (const auto& imp : m.opset_import())
        if (imp.domain().empty() || imp.domain() == "ai.onnx") return imp.version();
    return 0;
}

/// True when every node is an op of the engine's table at the model's opset (Constant is folded by
/// the reader and never reaches the table).
/// Why a model is not run: "" when every node is an op of our table (or a Constant, which the reader
/// folds), else the first op type outside it, or that the model computes nothing from an input.
std::string outside_the_table(const onnx::ModelProto& m) {
    const int64_t opset = default_opset(m);
    if (std::all_of(m.graph().node().begin(), m.graph().node().end(), [](const auto& n) { return n.op_type() == "Constant"; }))
        return "only Constant nodes";
    for (const auto& n : m.graph().node()) {
        if (!n.domain().empty() && n.domain() != "ai.onnx") return "domain " + n.domain();
        if (n.op_type() == "Constant") continue;
        const auto& table = ops::supported_ops();
        if (std::none_of(table.begin(), table.end(), [&](const ops::op_support& s) {
                return n.op_type() == s.op_type && opset >= s.min_opset && opset <= s.max_opset;
            }))
            return n.op_type() + " (opset " + std::to_string(opset) + ")";
    }
    return "";
}

std::string one_line(std::string s) {
    std::replace(s.begin(), s.end(), '\n', ' ');
    if (s.size() > 300) s = s.substr(0, 297) + "...";
    return s;
}

/// Compares one output as ONNX's backend runner does (numpy.testing.assert_allclose).
/// Returns "" when it matches, else a one-line description.
std::string compare(const tensor& got, const tensor& want, double& worst) {
    if (got.shape != want.shape) return "shape " + to_string(got.shape) + ", expected " + to_string(want.shape);
    size_t bad = 0, first_bad = 0;
    for (size_t i = 0; i < want.data.size(); ++i) {
        const double a = got.data[i], b = want.data[i];
        if (std::isnan(a) && std::isnan(b)) continue;
        if (std::isinf(b) && a == b) continue;
        const double err = std::fabs(a - b);
        const double allowed = atol + rtol * std::fabs(b);
        if (!(err <= allowed)) {
            if (bad++ == 0) first_bad = i;
        }
        if (std::isfinite(err)) worst = std::max(worst, err / allowed);
        else worst = INFINITY;
    }
    if (bad == 0) return "";
    std::ostringstream ss;
    ss << bad << " of " << want.data.size() << " values differ; first at " << first_bad << ": " << got.data[first_bad]
       << " vs expected " << want.data[first_bad];
    return ss.str();
}

/// Runs one data set of a test folder. Throws what the reader/engine throw; returns "" or a failure.
/// `worst` gets the largest |a - b| / (atol + rtol |b|) seen.
std::string run_data_set(const onnx::ModelProto& model, const fs::path& set_dir, const std::string& source,
                         double& worst, std::string& refusal, bool& deviated) {
    const auto input_files = numbered(set_dir, "input_", ".pb");
    const auto output_files = numbered(set_dir, "output_", ".pb");
    std::set<std::string> initializers;
    for (const auto& t : model.graph().initializer()) initializers.insert(t.name());
    std::vector<int> real_inputs; // indices into graph.input of the inputs that are not initializers
    for (int i = 0; i < model.graph().input_size(); ++i)
        if (!initializers.count(model.graph().input(i).name())) real_inputs.push_back(i);
    if (real_inputs.empty()) return "the model has no input";
    if (input_files.size() != real_inputs.size())
        return std::to_string(input_files.size()) + " input files for " + std::to_string(real_inputs.size()) + " graph inputs";

    // The network input's declared type decides: a sequence or optional input's .pb is not a TensorProto.
    const onnx::ValueInfoProto& declared = model.graph().input(real_inputs[0]);
    if (!declared.type().has_tensor_type()) {
        refusal = "input '" + declared.name() + "' is not a tensor (a sequence, map or optional)";
        return "";
    }
    if (declared.type().tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
        refusal = "input '" + declared.name() + "' is " +
                  onnx::TensorProto_DataType_Name(static_cast<onnx::TensorProto_DataType>(declared.type().tensor_type().elem_type())) +
                  ", not float32";
        return "";
    }
    const onnx::TensorProto first = read_tensor_proto(input_files[0]);
    if (first.data_type() != onnx::TensorProto::FLOAT) return "input_0.pb is not float32 although the model declares float";
    const tensor x = float_tensor(first, input_files[0]);

    // Our network takes one input, the first graph input. Every other graph input (a second Add
    // operand, Conv weights, a Reshape shape, Clip bounds...) is bound to the test's value as a
    // constant: it becomes an initializer and leaves graph.input. This is done on the ModelProto,
    // before read_onnx, rather than on graph.constants after it, because the reader refuses
    // non-float graph inputs (an int64 shape or axes input) but reads int64 initializers; the
    // result is the same graph with graph.constants holding the bound values.
    onnx::ModelProto bound = model;
    auto* g = bound.mutable_graph();
    google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept;
    for (int i = 0; i < g->input_size(); ++i) {
        auto it = std::find(real_inputs.begin(), real_inputs.end(), i);
        if (it == real_inputs.end() || it == real_inputs.begin()) {
            *kept.Add() = g->input(i);
            continue;
        }
        onnx::TensorProto value = read_tensor_proto(input_files[static_cast<size_t>(it - real_inputs.begin())]);
        value.set_name(g->input(i).name());
        *g->add_initializer() = value;
        // Before IR 4 every initializer must also be listed as a graph input (ONNX's checker).
        if (bound.ir_version() < 4) *kept.Add() = g->input(i);
    }
    g->mutable_input()->Swap(&kept);

    std::string bytes;
    bound.SerializeToString(&bytes);
    graph gr;
    try {
        gr = read_onnx_bytes(bytes, source, "");
    } catch (const unsupported_error& e) {
        refusal = one_line(e.what());
        return "";
    }
    std::optional<network> net;
    try {
        net.emplace(gr, x.shape);
    } catch (const unsupported_error& e) {
        refusal = one_line(e.what());
        return "";
    }
    const std::vector<tensor> outs = net->forward(x);
    if (outs.size() != output_files.size())
        return std::to_string(outs.size()) + " outputs, expected " + std::to_string(output_files.size());
    for (size_t k = 0; k < outs.size(); ++k) {
        const onnx::TensorProto want_proto = read_tensor_proto(output_files[k]);
        if (want_proto.data_type() != onnx::TensorProto::FLOAT) {
            refusal = "output " + std::to_string(k) + " is not float32";
            return "";
        }
        tensor want = float_tensor(want_proto, output_files[k]);
        if (const deviation* d = deviation_of(set_dir.parent_path().filename().string())) {
            want.data = d->ours;
            deviated = true;
        }
        const std::string diff = compare(outs[k], want, worst);
        if (!diff.empty()) return "output '" + gr.outputs[k].name + "': " + diff;
    }
    return "";
}

case_result run_case(const fs::path& dir) {
    case_result r;
    r.name = dir.filename().string();
    const fs::path model_path = dir / "model.onnx";
    onnx::ModelProto model;
    if (!model.ParseFromString(read_bytes(model_path))) {
        r.result = outcome::failed;
        r.detail = "cannot parse model.onnx";
        return r;
    }
    double worst = 0;
    const auto sets = numbered(dir, "test_data_set_", "");
    if (sets.empty()) {
        r.result = outcome::failed;
        r.detail = "no test_data_set_N folder";
        return r;
    }
    bool deviated = false;
    for (const auto& set : sets) {
        std::string refusal, failure;
        try {
            failure = run_data_set(model, set, model_path.string(), worst, refusal, deviated);
        } catch (const deepinside::error& e) {
            const char* kind = dynamic_cast<const model_error*>(&e)   ? "model_error"
                             : dynamic_cast<const input_error*>(&e) ? "input_error"
                             : dynamic_cast<const io_error*>(&e)    ? "io_error"
                                                                     : "error";
            failure = std::string("threw ") + kind + ": " + one_line(e.what());
        } catch (const std::exception& e) {
            failure = "threw: " + one_line(e.what());
        } catch (...) {
            failure = "threw a non-standard exception";
        }
        if (!refusal.empty()) {
            r.result = outcome::refused;
            r.detail = refusal;
            return r;
        }
        if (!failure.empty()) {
            r.result = outcome::failed;
            r.detail = set.filename().string() + ": " + failure;
            return r;
        }
    }
    if (deviated) {
        r.result = outcome::deviates;
        r.detail = deviation_of(r.name)->why;
        return r;
    }
    std::ostringstream ss;
    ss << sets.size() << " data set(s), max |a-b|/(atol+rtol|b|) = " << std::setprecision(3) << worst;
    r.detail = ss.str();
    return r;
}

/// Writes `text` to `path` via a temporary file in the same folder and a rename.
void write_atomically(const fs::path& path, const std::string& text) {
    const fs::path tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.close();
        if (!out) throw std::runtime_error("cannot write " + tmp.string());
    }
    fs::rename(tmp, path);
}

const char* name_of(outcome o) {
    switch (o) {
    case outcome::passed: return "PASSED";
    case outcome::failed: return "FAILED";
    case outcome::refused: return "REFUSED";
    case outcome::deviates: return "DEVIATES";
    }
    return "?";
}

/// One line of the pinned file: outcome and, for REFUSED / NOT-RUN, the reason.
struct pinned_outcome {
    std::string outcome;
    std::string reason;
};

const char* const pinned_file = "tests/conformance/expected-outcomes.txt";
const char* const pinned_header =
    "# The outcome of every ONNX backend node test (Debian's libonnx-testdata), pinned: name<TAB>outcome[<TAB>reason].\n"
    "# PASSED: matches ONNX's outputs (rtol 1e-3, atol 1e-7); REFUSED: unsupported_error or a non-float32 input, with\n"
    "# the one-line reason; NOT-RUN: an op outside the engine's table (the first one named). Generated by ctest -R\n"
    "# conformance into build/conformance-outcomes.txt; copy it here on purpose when an outcome changes.\n";

std::map<std::string, pinned_outcome> read_pinned(const fs::path& file) {
    std::map<std::string, pinned_outcome> pinned;
    std::istringstream in(read_bytes(file));
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || line[0] == '#') continue;
        const size_t a = line.find('\t');
        BOOST_REQUIRE_MESSAGE(a != std::string::npos, file.string() << ": malformed line '" << line << "'");
        const size_t b = line.find('\t', a + 1);
        pinned_outcome o{line.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1),
                         b == std::string::npos ? "" : line.substr(b + 1)};
        BOOST_REQUIRE_MESSAGE(o.outcome == "PASSED" || o.outcome == "REFUSED" || o.outcome == "NOT-RUN" || o.outcome == "DEVIATES",
                              file.string() << ": unknown outcome in '" << line << "'");
        BOOST_REQUIRE_MESSAGE(pinned.emplace(line.substr(0, a), o).second, file.string() << ": " << line.substr(0, a) << " twice");
    }
    return pinned;
}

} // namespace

BOOST_AUTO_TEST_CASE(onnx_backend_node_tests, *test_support::needs_onnx_testdata()) {
    const fs::path data = fs::path(test_support::env("DEEPINSIDE_ONNX_TESTDATA")) / "node";
    const fs::path source = test_support::env("DEEPINSIDE_SOURCE_DIR");
    const std::map<std::string, pinned_outcome> expected = read_pinned(test_support::require_file(source / pinned_file));
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(data))
        if (e.is_directory() && e.path().filename().string().rfind("test_", 0) == 0 && fs::exists(e.path() / "model.onnx"))
            dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());

    std::map<std::string, pinned_outcome> found;
    size_t passed = 0, failed = 0, refused = 0, not_run = 0;
    for (const auto& dir : dirs) {
        const std::string name = dir.filename().string();
        onnx::ModelProto m;
        if (!m.ParseFromString(read_bytes(dir / "model.onnx"))) {
            BOOST_ERROR(name << ": ONNX's own model.onnx does not parse");
            continue;
        }
        if (const std::string outside = outside_the_table(m); !outside.empty()) {
            found[name] = {"NOT-RUN", outside};
            ++not_run;
            continue;
        }
        const case_result r = run_case(dir);
        std::printf("  %-58s %-8s %s\n", r.name.c_str(), name_of(r.result), r.detail.c_str());
        if (r.result == outcome::passed) ++passed;
        if (r.result == outcome::failed) {
            ++failed;
            BOOST_ERROR(r.name << ": " << r.detail);
        }
        if (r.result == outcome::refused) ++refused;
        // A pass's detail is its largest error, which depends on the CPU: only the outcome is pinned.
        found[name] = {name_of(r.result), r.result == outcome::refused || r.result == outcome::deviates ? r.detail : ""};
    }
    std::printf("conformance: %zu passed, %zu failed, %zu refused, %zu not run (ops outside the table)\n", passed, failed,
                refused, not_run);
    std::fflush(stdout);

    std::string outcomes = pinned_header;
    for (const auto& [name, o] : found) outcomes += name + "\t" + o.outcome + (o.reason.empty() ? "" : "\t" + o.reason) + "\n";
    if (const char* build = std::getenv("DEEPINSIDE_BUILD_DIR"); build && fs::is_directory(build))
        write_atomically(fs::path(build) / "conformance-outcomes.txt", outcomes);

    for (const auto& [name, o] : found) {
        const auto it = expected.find(name);
        if (it == expected.end()) {
            BOOST_ERROR(name << ": " << o.outcome << " " << o.reason << ", but the test is not in " << pinned_file);
            continue;
        }
        BOOST_CHECK_MESSAGE(it->second.outcome == o.outcome && it->second.reason == o.reason,
                            name << ": pinned " << it->second.outcome << " '" << it->second.reason << "', found " << o.outcome
                                 << " '" << o.reason << "' (see build/conformance-outcomes.txt)");
    }
    for (const auto& [name, o] : expected)
        BOOST_CHECK_MESSAGE(found.count(name), name << " is pinned in " << pinned_file << " but ONNX's test data has no such test");
    BOOST_CHECK(passed > 0);
    BOOST_CHECK_EQUAL(failed, 0u);

    // The README quotes the pinned counts.
    size_t pinned_passed = 0, pinned_refused = 0, pinned_not_run = 0;
    for (const auto& [name, o] : expected) {
        pinned_passed += o.outcome == "PASSED";
        pinned_refused += o.outcome == "REFUSED";
        pinned_not_run += o.outcome == "NOT-RUN";
    }
    const std::string readme = read_bytes(test_support::require_file(source / "README.md"));
    const std::string quoted = std::to_string(pinned_passed) + " passed, 0 failed, " + std::to_string(pinned_refused) + " refused";
    BOOST_CHECK_MESSAGE(readme.find(quoted) != std::string::npos, "README.md does not say '" << quoted << "'");
    const std::string not_run_quoted = std::to_string(pinned_not_run) + " not run";
    BOOST_CHECK_MESSAGE(readme.find(not_run_quoted) != std::string::npos, "README.md does not say '" << not_run_quoted << "'");
}
