// The `deepinside` Python module: the library's networks, saliency signals, verifier and image I/O
// on NumPy arrays. Every error the library throws reaches Python as the matching deepinside.Error
// subclass with the library's message unchanged.
#include "bindings.hpp"

#include <deepinside/errors.hpp>

namespace deepinside::python {

namespace {

/// The exception types, created once when the module is imported: the translator pybind11 calls is a
/// plain function (no captures), so it finds them here. They live as long as the interpreter.
struct {
    PyObject *base, *input, *model, *unsupported, *numerical, *io;
} error_types{};

/// A new exception type deepinside.NAME deriving from `bases` (a tuple), added to `m`. The type lives
/// as long as the interpreter: the translator below may raise it at any time.
PyObject* new_error_type(py::module_& m, const char* name, const char* doc, py::tuple bases) {
    const std::string qualified = std::string("deepinside.") + name;
    PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases.ptr(), nullptr);
    if (!type) throw py::error_already_set();
    m.add_object(name, py::handle(type));
    return type;
}

} // namespace

void register_errors(py::module_& m) {
    auto& t = error_types;
    t.base =
        new_error_type(m, "Error",
                       "Base of every error the deepinside library raises on purpose (C++ deepinside::error); "
                       "a RuntimeError. The message names the file, node or tensor at fault and the rule it breaks.",
                       py::make_tuple(py::handle(PyExc_RuntimeError)));
    const py::handle b(t.base);
    t.input = new_error_type(m, "InputError",
                             "Bad user input: an image, an array of the wrong shape or dtype, a bad option value "
                             "(C++ input_error). Also a ValueError.",
                             py::make_tuple(b, py::handle(PyExc_ValueError)));
    t.model = new_error_type(
        m, "ModelError", "A model file that is malformed or breaks an ONNX rule (C++ model_error).", py::make_tuple(b));
    t.unsupported = new_error_type(m, "UnsupportedError",
                                   "A valid model or request using something deepinside does not implement: an op, "
                                   "an attribute value, a backward rule at a layer (C++ unsupported_error).",
                                   py::make_tuple(b));
    t.numerical = new_error_type(m, "NumericalError",
                                 "A NaN or an infinity computed from finite input; the message names the first tensor "
                                 "holding one (C++ numerical_error).",
                                 py::make_tuple(b));
    t.io = new_error_type(m, "IoError",
                          "An operating-system failure reading or writing a file, naming the path (C++ io_error). "
                          "Also an OSError (its errno is None).",
                          py::make_tuple(b, py::handle(PyExc_OSError)));
    py::register_exception_translator([](std::exception_ptr p) {
        const auto& t = error_types;
        try {
            if (p) std::rethrow_exception(p);
        } catch (const input_error& e) {
            PyErr_SetString(t.input, e.what());
        } catch (const model_error& e) {
            PyErr_SetString(t.model, e.what());
        } catch (const unsupported_error& e) {
            PyErr_SetString(t.unsupported, e.what());
        } catch (const numerical_error& e) {
            PyErr_SetString(t.numerical, e.what());
        } catch (const io_error& e) {
            PyErr_SetString(t.io, e.what());
        } catch (const error& e) {
            PyErr_SetString(t.base, e.what());
        }
    });
}

} // namespace deepinside::python

PYBIND11_MODULE(deepinside, m) {
    using namespace deepinside::python;
    m.doc() = R"doc(deepinside: looks inside image classifiers.

Reads an ONNX model, runs it on oneDNN on the CPU, and computes from one forward pass the gradient of a
class score, Zeiler and Fergus's DeconvNet reconstruction and guided backpropagation (Simonyan, Vedaldi
and Zisserman, "Deep Inside Convolutional Networks", 2014), and certifies layer by layer that DeconvNet
is the gradient except at ReLU (verify).

    net = deepinside.Network("model.onnx", threads=2)
    logits = net.forward(x)                                   # x: float32 [N, C, H, W]
    maps = net.saliency(x, classes=[3, 5], methods=["gradient", "deconvnet", "guided"])
    report = deepinside.verify("model.onnx", x)               # the JSON of `deepinside verify --json`

Arrays: inputs are NumPy arrays (float32 C-contiguous is copied once into the engine; other real dtypes
and orders are converted to float32 C order first); every returned array owns its buffer through a
capsule (its .base), handed over by the library without a copy. Errors are deepinside.Error subclasses
carrying the library's messages. The GIL is released while a network or the verifier runs.

Threads: each network runs on its own thread count (threads=0: OMP_NUM_THREADS, else the CPUs this
process may run on). GNU OpenMP reads OMP_WAIT_POLICY and GOMP_SPINCOUNT only at start-up, and its default
spins long: start Python with GOMP_SPINCOUNT=1000, as the deepinside command runs (OMP_WAIT_POLICY=passive
on a machine whose cores other processes keep busy).)doc";
    register_errors(m);
    register_network(m);
    register_verify(m);
    register_io(m);
}
