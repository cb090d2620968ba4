// deepinside.verify: the verifier of `deepinside verify` (verify/certificate.hpp) on arrays or images,
// returning the certificate as the dict of its JSON (schema deepinside.verify/1).
#include "bindings.hpp"

#include "certificate.hpp"
#include "certificate_json.hpp"
#include "report.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>

#include <pybind11/stl.h>

#include <cmath>
#include <map>
#include <optional>
#include <utility>

namespace deepinside::python {

namespace {

struct verify_call {
    std::string model, json_path, report_dir;
    std::optional<tensor> batch;     ///< x as an array, [N, C, H, W]
    std::vector<std::string> images; ///< or image files
    std::string name;                ///< of the array's images in the report
    target requested;
    verify::verify_options options;
};

/// Runs the verifier as `deepinside verify` does and returns its JSON; no Python object is touched.
std::string run(verify_call& call) {
    graph g = read_onnx(call.model);
    if (const std::string missing = unsupported_nodes(g); !missing.empty()) throw unsupported_error(missing);

    std::vector<std::pair<std::string, tensor>> inputs;
    if (call.batch) {
        const tensor& x = *call.batch;
        if (x.shape.size() < 2)
            throw input_error(fmt::format("{}: shape {} has no batch axis", call.name, to_string(x.shape)));
        require_finite(x, call.name);
        shape_t one = x.shape;
        one[0] = 1;
        const int64_t count = element_count(one);
        for (int64_t b = 0; b < x.shape[0]; ++b)
            inputs.emplace_back(
                x.shape[0] == 1 ? call.name : fmt::format("{}[{}]", call.name, b),
                tensor(one, std::vector<float>(x.data.begin() + b * count, x.data.begin() + (b + 1) * count)));
    } else {
        const preprocess_options pre = preprocess_from_metadata(g.metadata, preprocess_options{});
        for (const auto& path : call.images) inputs.emplace_back(path, image_input(g, read_image(path), pre));
    }
    if (inputs.empty()) throw input_error("verify needs at least one image");

    // Images of one shape share a verifier (the model compiled once), as the command line does.
    std::map<shape_t, std::vector<size_t>> by_shape;
    for (size_t i = 0; i < inputs.size(); ++i) by_shape[inputs[i].second.shape].push_back(i);
    std::vector<verify::image_certificate> certificates(inputs.size());
    for (const auto& [shape, members] : by_shape) {
        verify::verifier v(g, shape, call.options);
        for (size_t i : members) certificates[i] = v.certify(inputs[i].second, call.requested, inputs[i].first);
    }
    const nlohmann::json summary = verify::certificate_json(call.model, certificates, call.options.tol);
    if (!call.report_dir.empty()) verify::write_report(call.report_dir, summary, certificates);
    std::string text = summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    if (!call.json_path.empty()) write_text(call.json_path, text + "\n");
    return text;
}

} // namespace

void register_verify(py::module_& m) {
    m.def(
        "verify",
        [](const std::string& path, const py::handle& x, const std::optional<int64_t>& class_index,
           const std::optional<std::string>& layer, const std::optional<int64_t>& channel,
           const std::optional<std::vector<int64_t>>& unit, const std::string& reduce, double tol_layer,
           double tol_end_to_end, double tol_gradient, int directions, uint64_t seed, double fd_step, double jitter,
           int threads, const std::string& name, const std::optional<std::string>& json_path,
           const std::optional<std::string>& report_dir) {
            verify_call call;
            call.model = path;
            call.name = name;
            call.json_path = json_path.value_or("");
            call.report_dir = report_dir.value_or("");
            // The command line's checks, with the keyword names.
            if (directions < 1 || directions > 1000) throw input_error("directions expects 1 to 1000");
            for (double t : {tol_layer, tol_end_to_end, tol_gradient})
                if (!(t >= 0) || !std::isfinite(t)) throw input_error("tolerances must be finite and non-negative");
            if (tol_layer > 1e-4)
                throw input_error("tol_layer above 1e-4 would not certify the paper's 'identical'; give at most 1e-4");
            if (!(fd_step > 0 && fd_step < 1) || !(jitter >= 0 && jitter < 1))
                throw input_error("fd_step expects a number in (0, 1) and jitter one in [0, 1)");
            if (threads < 0)
                throw input_error(
                    fmt::format("threads is {}: give a positive number of threads, or 0 for the default", threads));
            if (layer) {
                if (class_index) throw input_error("class_index and layer exclude each other");
                if (!channel) throw input_error("layer needs channel");
                call.requested.tensor = *layer;
                call.requested.index = {*channel};
                if (unit) {
                    call.requested.what = target::kind::neuron;
                    call.requested.unit = *unit;
                } else if (reduce == "max" || reduce == "sum") {
                    call.requested.what = reduce == "max" ? target::kind::channel_max : target::kind::channel_sum;
                } else {
                    throw input_error(fmt::format("reduce expects 'max' or 'sum', got '{}'", reduce));
                }
            } else {
                if (channel || unit) throw input_error("channel and unit need layer");
                if (class_index) call.requested.index = {*class_index};
            }
            call.options.tol = {tol_layer, tol_end_to_end, tol_gradient};
            call.options.directions = directions;
            call.options.seed = seed;
            call.options.step = fd_step;
            call.options.jitter = jitter;
            call.options.engine.threads = threads;
            call.options.engine.nonrelu = nonrelu_policy::gradient; // reported per layer, not refused
            call.options.engine.check = finite_check::all;
            if (py::isinstance<py::str>(x))
                call.images = {x.cast<std::string>()};
            else if (py::isinstance<py::list>(x) || py::isinstance<py::tuple>(x))
                call.images = x.cast<std::vector<std::string>>();
            else
                call.batch = to_tensor(x, name);
            std::string text;
            {
                const py::gil_scoped_release release;
                text = run(call);
            }
            return py::module_::import("json").attr("loads")(text);
        },
        py::arg("path"), py::arg("x"), py::arg("class_index") = py::none(), py::arg("layer") = py::none(),
        py::arg("channel") = py::none(), py::arg("unit") = py::none(), py::arg("reduce") = "max",
        py::arg("tol_layer") = 1e-5, py::arg("tol_end_to_end") = 1e-4, py::arg("tol_gradient") = 1e-4,
        py::arg("directions") = 3, py::arg("seed") = 1, py::arg("fd_step") = verify::verify_options().step,
        py::arg("jitter") = verify::verify_options().jitter, py::arg("threads") = 0, py::arg("name") = "x",
        py::arg("json_path") = py::none(), py::arg("report_dir") = py::none(),
        R"doc(The verifier's certificate (`deepinside verify`) as a dict: the JSON of `verify --json`
(schema "deepinside.verify/1"; see the README), report["ok"] its verdict.

Per image, from the target down to the input, each layer's backward in the engine is compared with an
independent double-precision DeconvNet: convolution, fully connected, max pooling and reshapes must be
identical (within tol_layer), ReLU must differ exactly where 1(X > 0) and 1(R > 0) do; end to end the
composed operators must equal the engine's deconvnet and guided signals (tol_end_to_end, relative L2),
and the gradient must match central differences (tol_gradient). A failed certificate is a dict with
"ok": False, not an exception; exceptions are for refused input (InputError, UnsupportedError listing
every node the engine cannot run, ...).

path: the ONNX model.
x: a float32 array [N, C, H, W] (each image certified, named "NAME[k]", or NAME when N = 1; no
    preprocessing), or an image file or a list of them (preprocessed with the model's metadata, as
    `deepinside verify IMAGE...`).
class_index: the class whose score is the target (default: each image's top-1 class); or layer=,
    channel=, unit= / reduce= ("max" or "sum") for a unit or channel of a layer (--layer, --channel,
    --unit, --reduce).
tol_layer, tol_end_to_end, tol_gradient, directions, seed, fd_step, jitter, threads: as --tol-layer,
    --tol-end-to-end, --tol-gradient, --directions, --seed, --fd-step, --jitter, --threads.
json_path, report_dir: also write the JSON (--json) and the HTML and Markdown report (--report).
The GIL is released while the verifier runs.)doc");
}

} // namespace deepinside::python
