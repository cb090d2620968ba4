#include "network.hpp"

#include "bindings.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>

#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace deepinside::python {

// ---- model_networks: the C++ side, no Python objects --------------------------------------------

model_networks::model_networks(const std::string& path, const engine_options& options, size_t max_compiled)
    : path_(path), graph_(read_onnx(path)), options_(options), max_compiled_(max_compiled) {
    if (const std::string missing = unsupported_nodes(graph_); !missing.empty()) throw unsupported_error(missing);
    if (graph_.inputs.empty()) throw model_error(fmt::format("{}: the graph has no input", graph_.source));
}

network& model_networks::compiled_for(const shape_t& shape, const std::vector<std::string>& keep) {
    // A network fuses layers away (engine_options::fuse) unless told to keep them: one compiled with
    // every kept name serves any request naming fewer.
    const auto serves = [&](const compiled_network& c) {
        return c.net->input_shape() == shape &&
               std::all_of(keep.begin(), keep.end(), [&](const std::string& k) { return c.keep.count(k) != 0; });
    };
    const auto hit = std::find_if(compiled_.begin(), compiled_.end(), serves);
    if (hit != compiled_.end()) {
        compiled_.splice(compiled_.begin(), compiled_, hit);
    } else {
        engine_options options = options_;
        options.keep.insert(options.keep.end(), keep.begin(), keep.end());
        compiled_.push_front({std::set<std::string>(keep.begin(), keep.end()), std::make_unique<network>(graph_, shape, options)});
        if (compiled_.size() > max_compiled_) compiled_.pop_back();
    }
    return *compiled_.front().net;
}

network& model_networks::any_compiled() {
    if (!compiled_.empty()) return *compiled_.front().net;
    shape_t shape = graph_.inputs.front().shape;
    if (!shape.empty() && shape[0] < 0) shape[0] = 1;
    if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; }))
        throw input_error(
            fmt::format("{}: input '{}' has open dimensions ({}): tensor names come from a network compiled "
                        "for one shape; call forward() once first",
                        graph_.source, graph_.inputs.front().name, to_string(graph_.inputs.front().shape)));
    return compiled_for(shape);
}

tensor model_networks::forward(const tensor& x) {
    const std::lock_guard lock(mutex_);
    return std::move(compiled_for(x.shape).forward(x).front());
}

tensor model_networks::scores(const tensor& x) {
    const std::lock_guard lock(mutex_);
    network& net = compiled_for(x.shape);
    net.forward(x);
    return net.read(net.score_tensor());
}

namespace {

/// The top-1 class of each image of a batch of scores [N, ...] (ties: the lower index), as the CLI.
std::vector<int64_t> top1_per_image(const tensor& scores) {
    const int64_t batch = scores.shape.empty() ? 1 : scores.shape[0],
                  classes = scores.size() / std::max<int64_t>(batch, 1);
    std::vector<int64_t> top;
    for (int64_t b = 0; b < batch; ++b) {
        const float* row = scores.data.data() + b * classes;
        top.push_back(std::max_element(row, row + classes) - row); // the first of equal maxima
    }
    return top;
}

/// K tensors of one shape as one [K, ...] tensor: moved when K is 1, else copied once.
tensor stack(std::vector<tensor>&& parts) {
    tensor out;
    out.shape = parts.front().shape;
    out.shape.insert(out.shape.begin(), static_cast<int64_t>(parts.size()));
    if (parts.size() == 1) {
        out.data = std::move(parts.front().data);
        return out;
    }
    const size_t count = parts.front().data.size();
    out.data.resize(count * parts.size());
    for (size_t k = 0; k < parts.size(); ++k) {
        std::memcpy(out.data.data() + k * count, parts[k].data.data(), count * sizeof(float));
        parts[k].data = {};
    }
    return out;
}

} // namespace

std::vector<method_signals> model_networks::saliency(const tensor& x, const saliency_request& request) {
    const std::lock_guard lock(mutex_);
    std::vector<std::string> keep;
    if (request.layer_target) keep.push_back(request.layer_target->tensor);
    if (!request.wrt.empty()) keep.push_back(request.wrt);
    network& net = compiled_for(x.shape, keep);
    net.forward(x);
    std::vector<target> targets;
    if (request.layer_target) {
        targets.push_back(*request.layer_target);
    } else {
        const std::string scores_name = request.probability ? net.probability_tensor() : net.score_tensor();
        if (request.classes.empty())
            targets.push_back(
                {target::kind::class_score, scores_name, top1_per_image(net.read(net.score_tensor())), {}});
        for (const auto& idx : request.classes) targets.push_back({target::kind::class_score, scores_name, idx, {}});
    }
    std::vector<backward_request> requests;
    for (const auto rule : request.rules)
        for (const auto& t : targets) requests.push_back({t, rule});
    std::vector<tensor> signals = net.backward(requests, request.wrt);

    std::vector<method_signals> out;
    for (size_t r = 0; r < request.rules.size(); ++r) {
        std::vector<tensor> parts;
        for (size_t k = 0; k < targets.size(); ++k) {
            tensor& signal = signals[r * targets.size() + k];
            parts.push_back(request.max_abs_map ? saliency_map(signal) : std::move(signal));
        }
        out.push_back({to_string(request.rules[r]), stack(std::move(parts))});
    }
    return out;
}

std::string model_networks::score_tensor() {
    const std::lock_guard lock(mutex_);
    return any_compiled().score_tensor();
}

std::string model_networks::output_tensor() {
    const std::lock_guard lock(mutex_);
    return any_compiled().output_tensor();
}

std::string model_networks::probability_tensor() {
    const std::lock_guard lock(mutex_);
    return any_compiled().probability_tensor();
}

std::vector<std::string> model_networks::tensor_names() {
    const std::lock_guard lock(mutex_);
    return any_compiled().tensor_names();
}

std::vector<shape_t> model_networks::compiled_shapes() {
    const std::lock_guard lock(mutex_);
    std::vector<shape_t> shapes;
    for (const auto& c : compiled_) shapes.push_back(c.net->input_shape());
    return shapes;
}

// ---- the Python class ----------------------------------------------------------------------------

namespace {

engine_options parse_engine_options(int threads, const std::string& nonrelu, const std::string& check) {
    engine_options o;
    if (threads < 0)
        throw input_error(
            fmt::format("threads is {}: give a positive number of threads, or 0 for the default", threads));
    o.threads = threads;
    if (nonrelu == "refuse")
        o.nonrelu = nonrelu_policy::refuse;
    else if (nonrelu == "gradient")
        o.nonrelu = nonrelu_policy::gradient;
    else
        throw input_error(fmt::format("nonrelu expects 'refuse' or 'gradient', got '{}'", nonrelu));
    if (check == "all")
        o.check = finite_check::all;
    else if (check == "outputs")
        o.check = finite_check::outputs;
    else if (check == "none")
        o.check = finite_check::none;
    else
        throw input_error(fmt::format("check expects 'all', 'outputs' or 'none', got '{}'", check));
    return o;
}

/// "gradient", "gradient,guided" or a sequence of names.
std::vector<backward_rule> parse_methods(const py::handle& methods) {
    std::vector<std::string> names;
    if (py::isinstance<py::str>(methods)) {
        const std::string text = methods.cast<std::string>();
        size_t start = 0;
        for (size_t comma; (comma = text.find(',', start)) != std::string::npos; start = comma + 1)
            names.push_back(text.substr(start, comma - start));
        names.push_back(text.substr(start));
    } else {
        try {
            names = methods.cast<std::vector<std::string>>();
        } catch (const py::cast_error&) {
            throw input_error("methods expects a method name or a sequence of names (gradient, deconvnet, guided)");
        }
    }
    if (names.empty()) throw input_error("methods is empty: give at least one of gradient, deconvnet, guided");
    std::vector<backward_rule> rules;
    for (const auto& n : names) {
        const backward_rule r = parse_backward_rule(n);
        if (std::find(rules.begin(), rules.end(), r) != rules.end())
            throw input_error(fmt::format("method '{}' is given twice", n));
        rules.push_back(r);
    }
    return rules;
}

/// None; an int; or a sequence whose items are ints (one class for every image) or sequences of N ints
/// (one class per image).
std::vector<std::vector<int64_t>> parse_classes(const py::handle& classes) {
    std::vector<std::vector<int64_t>> out;
    if (classes.is_none()) return out;
    auto one = [](const py::handle& item) -> std::vector<int64_t> {
        if (py::isinstance<py::bool_>(item)) throw input_error("classes: a class is an integer, not a bool");
        try {
            return {item.cast<int64_t>()};
        } catch (const py::cast_error&) {
        }
        try {
            auto per_image = item.cast<std::vector<int64_t>>();
            if (!per_image.empty()) return per_image;
        } catch (const py::cast_error&) {
        }
        throw input_error(fmt::format("classes: expected a class index or a list of one class per image, got {}",
                                      py::repr(item).cast<std::string>()));
    };
    if (!py::isinstance<py::sequence>(classes) || py::isinstance<py::str>(classes)) {
        out.push_back(one(classes));
    } else {
        for (const auto& item : classes.cast<py::sequence>()) out.push_back(one(item));
        if (out.empty()) throw input_error("classes is empty: give at least one class, or None for the top-1 class");
    }
    return out;
}

/// The target of layer= [channel= [unit= | reduce=]], as `deepinside saliency --layer` builds it.
target layer_target(const std::string& layer, const std::optional<int64_t>& channel,
                    const std::optional<std::vector<int64_t>>& unit, const std::string& reduce) {
    target t;
    t.tensor = layer;
    t.index = {channel.value_or(0)};
    if (!channel) {
        if (unit) throw input_error("unit needs channel");
        t.what = target::kind::tensor_sum;
    } else if (unit) {
        t.what = target::kind::neuron;
        t.unit = *unit;
    } else if (reduce == "max" || reduce == "sum") {
        t.what = reduce == "max" ? target::kind::channel_max : target::kind::channel_sum;
    } else {
        throw input_error(fmt::format("reduce expects 'max' or 'sum', got '{}'", reduce));
    }
    return t;
}

py::object shape_tuple(const shape_t& shape) {
    py::list dims;
    for (int64_t d : shape) dims.append(d < 0 ? py::object(py::none()) : py::object(py::int_(d)));
    return py::tuple(dims);
}

/// Class names: the model's deepinside.labels metadata, else MODEL's sibling <stem>.labels.txt, else [].
std::vector<std::string> labels_of(const model_networks& m) { return read_class_labels("", m.path(), m.model().metadata); }

py::dict signals_dict(std::vector<method_signals>&& signals) {
    py::dict out;
    for (auto& s : signals) out[py::str(s.method)] = to_array(std::move(s.stacked));
    return out;
}

} // namespace

void register_network(py::module_& m) {
    py::class_<model_networks>(m, "Network", R"doc(An ONNX model read once, run on oneDNN.

Network(path, threads=0, nonrelu="refuse", check="all", max_compiled=4, winograd=False)

path: the ONNX file. The model is read and checked here: a model holding ops the engine cannot run
    raises UnsupportedError listing every such node; an unreadable file IoError, a malformed one
    ModelError or InputError, with the library's message naming the file.
threads: oneDNN and host-loop threads of this network; 0 is the library's default (OMP_NUM_THREADS when
    set, else the CPUs this process may run on). Set around each call, so networks with different
    counts can be used in turn.
nonrelu: what deconvnet and guided do at a nonlinearity other than ReLU: "refuse" (UnsupportedError
    naming the layer) or "gradient" (its exact derivative).
check: which computed values are checked for NaN and infinity (NumericalError): "all" (every activation
    and intermediate signal, as the command line does), "outputs" or "none".
winograd: Winograd's algorithm for 3x3 stride-1 convolutions on AVX-512 (as deepinside --winograd): about
    twice as fast there, not exact arithmetic.
max_compiled: the engine compiles a network for one input shape; one is compiled on the first call
    with each new shape and the max_compiled most recently used ones are kept.

Inputs x are NCHW arrays of the model's declared shape (open dimensions free). float32 C-contiguous
arrays are copied once into the engine; other real dtypes (float64, integers) and memory orders are
converted as numpy.asarray(x, dtype=numpy.float32, order="C") first; complex, bool and object arrays
raise InputError. Returned arrays own their buffer (a capsule as .base): nothing is copied out.
Calls on one Network run one at a time (a lock); the GIL is released while the engine runs.)doc")
        .def(py::init([](const std::string& path, int threads, const std::string& nonrelu, const std::string& check,
                         size_t max_compiled, bool winograd) {
                 engine_options options = parse_engine_options(threads, nonrelu, check);
                 options.winograd = winograd;
                 if (max_compiled < 1) throw input_error("max_compiled must be at least 1");
                 const py::gil_scoped_release release;
                 return std::make_unique<model_networks>(path, options, max_compiled);
             }),
             py::arg("path"), py::arg("threads") = 0, py::arg("nonrelu") = "refuse", py::arg("check") = "all",
             py::arg("max_compiled") = 4, py::arg("winograd") = false)
        .def(
            "forward",
            [](model_networks& self, const py::handle& x) {
                tensor input = to_tensor(x, "x");
                tensor out;
                {
                    const py::gil_scoped_release release;
                    out = self.forward(input);
                }
                return to_array(std::move(out));
            },
            py::arg("x"), R"doc(The graph's first output for x, float32.

x: [N, C, H, W] (the model's input rank and declared dimensions). Exactly `deepinside forward`: the
values are fed as they are, no preprocessing (see image_to_tensor).)doc")
        .def(
            "scores",
            [](model_networks& self, const py::handle& x) {
                tensor input = to_tensor(x, "x");
                tensor out;
                {
                    const py::gil_scoped_release release;
                    out = self.scores(input);
                }
                return to_array(std::move(out));
            },
            py::arg("x"), R"doc(The class-score tensor for x, float32 [N, classes]: the input of a final
Softmax/LogSoftmax (the unnormalised scores the saliency methods differentiate), else the first output.)doc")
        .def(
            "saliency",
            [](model_networks& self, const py::handle& x, const py::handle& classes, const py::handle& methods,
               const std::optional<std::string>& layer, const std::optional<int64_t>& channel,
               const std::optional<std::vector<int64_t>>& unit, const std::string& reduce,
               const std::optional<std::string>& wrt, bool probability, const std::optional<std::string>& map) {
                saliency_request request;
                // Options first: a typo should not wait for a forward pass.
                request.rules = parse_methods(methods);
                if (map && *map != "max-abs")
                    throw input_error(fmt::format("map expects None or 'max-abs', got '{}'", *map));
                request.max_abs_map = map.has_value();
                request.classes = parse_classes(classes);
                if (layer) {
                    if (!request.classes.empty()) throw input_error("classes and layer exclude each other");
                    if (probability) throw input_error("probability applies to class scores, not to layer");
                    request.layer_target = layer_target(*layer, channel, unit, reduce);
                } else if (channel || unit) {
                    throw input_error("channel and unit need layer");
                }
                request.wrt = wrt.value_or("");
                request.probability = probability;
                tensor input = to_tensor(x, "x");
                std::vector<method_signals> signals;
                {
                    const py::gil_scoped_release release;
                    signals = self.saliency(input, request);
                }
                return signals_dict(std::move(signals));
            },
            py::arg("x"), py::arg("classes") = py::none(), py::arg("methods") = py::make_tuple("gradient"),
            py::arg("layer") = py::none(), py::arg("channel") = py::none(), py::arg("unit") = py::none(),
            py::arg("reduce") = "max", py::arg("wrt") = py::none(), py::arg("probability") = false,
            py::arg("map") = py::none(),
            R"doc(Gradient, DeconvNet and guided-backpropagation signals: {method: float32 array}.

Every (method, target) pair comes from one forward pass and one stacked backward pass, as
`deepinside saliency --method ... --class ...`.

x: [N, C, H, W] as for forward().
classes: None (the top-1 class of each image: the first maximum of scores(x)); a class index; or a
    list of K targets, each a class index for every image or a list of N indices (one per image).
methods: "gradient", "deconvnet", "guided", a comma list, or a sequence of them. Rules: gradient is
    exact (ReLU passes R where its input X > 0); deconvnet passes relu(R); guided R*1(R>0)*1(X>0).
layer, channel, unit, reduce: instead of a class score, the activity of tensor `layer`: channel's unit
    (y, x) with unit=, else its largest unit ("max", per image) or its sum ("sum"); layer alone: the
    sum of the whole tensor. Names are those of tensor_names.
wrt: the tensor the signal is read at (default: the input).
probability: differentiate the softmax output instead of the unnormalised score.
map: None for the signals, shaped [K, N, C, H, W] (K targets; the shape of `wrt` after K); "max-abs"
    for the paper's maps, max over channels of |signal|, [K, N, H, W].

The engine returns one array per (method, target); with K = 1 it is handed over without a copy, with
K > 1 the K arrays of a method are copied once into one [K, ...] array.)doc")
        .def_property_readonly("path", &model_networks::path, "The model file.")
        .def_property_readonly(
            "input_name", [](const model_networks& self) { return self.model().inputs.front().name; },
            "The graph's input.")
        .def_property_readonly(
            "input_shape", [](const model_networks& self) { return shape_tuple(self.model().inputs.front().shape); },
            "The input shape as the model declares it, None for an open (symbolic or unknown) dimension.")
        .def_property_readonly(
            "score_tensor",
            [](model_networks& self) {
                const py::gil_scoped_release release;
                return self.score_tensor();
            },
            "The class-score tensor: the input of a final Softmax/LogSoftmax, else the first output. Like "
            "tensor_names, it comes from a compiled network (see there).")
        .def_property_readonly(
            "output_tensor",
            [](model_networks& self) {
                const py::gil_scoped_release release;
                return self.output_tensor();
            },
            "The graph's first output (what forward() returns).")
        .def_property_readonly(
            "probability_tensor",
            [](model_networks& self) {
                const py::gil_scoped_release release;
                return self.probability_tensor();
            },
            "The softmax output when the graph ends in one, else score_tensor.")
        .def_property_readonly(
            "tensor_names",
            [](model_networks& self) {
                const py::gil_scoped_release release;
                return self.tensor_names();
            },
            "Activation tensors in topological order, the input first (names for layer= and wrt=). From the most "
            "recently used compiled network, else from one compiled now for the declared shape (an open batch as 1); "
            "InputError when other dimensions are open and nothing was run yet.")
        .def_property_readonly(
            "threads",
            [](const model_networks& self) {
                return self.options().threads > 0 ? self.options().threads : default_threads();
            },
            "The number of threads the networks run on (threads=0 resolved).")
        .def_property_readonly(
            "compiled_shapes",
            [](model_networks& self) {
                py::list out;
                for (const auto& s : self.compiled_shapes()) out.append(shape_tuple(s));
                return out;
            },
            "Input shapes compiled so far and kept, most recently used first.")
        .def_property_readonly(
            "metadata", [](const model_networks& self) { return self.model().metadata; },
            "The model's metadata_props (deepinside.mean, .std, .scale, .channel_order, .labels, ...).")
        .def_property_readonly("labels", &labels_of,
                               "Class names: the model's deepinside.labels metadata, else MODEL.labels.txt beside the "
                               "model, else an empty list.")
        .def("__repr__", [](const model_networks& self) {
            return fmt::format("deepinside.Network('{}', threads={})", self.path(), self.options().threads);
        });
}

} // namespace deepinside::python
