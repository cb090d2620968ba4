#pragma once
// What the files of the Python module share: NumPy conversions and the registration of each part.
#include <deepinside/graph.hpp>
#include <deepinside/io.hpp>
#include <deepinside/tensor.hpp>

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>

namespace deepinside::python {

namespace py = pybind11;

/// A float32 ndarray that owns `t`'s buffer: the vector is moved into a capsule (the array's base),
/// so nothing is copied. Call with the GIL held.
py::array_t<float> to_array(tensor&& t);

/// An array of any real dtype and memory order as a tensor: float32 C-contiguous input is copied once
/// (the engine's tensors own their values); other real dtypes (float64, integers) and orders are
/// converted as numpy.asarray(x, dtype=float32, order="C") first. Complex, bool, object and other
/// dtypes are refused with input_error naming `what`. Call with the GIL held.
tensor to_tensor(const py::handle& x, const std::string& what);

/// An 8-bit image as a uint8 ndarray [H, W, C] owning the pixels (moved, not copied).
py::array_t<uint8_t> to_array(image&& img);

/// A uint8 ndarray [H, W], [H, W, 1] or [H, W, 3] as an image (copied). Other dtypes and shapes are
/// refused with input_error naming `what`.
image to_image(const py::handle& img, const std::string& what);

/// `img` as the input of `g`'s first input, [1, C, H, W]: the declared shape with open dimensions taken
/// from the image (batch 1), resized and normalised by image_to_tensor, as the command line does.
tensor image_input(const graph& g, const image& img, const preprocess_options& pre);

void register_errors(py::module_& m);
void register_network(py::module_& m);
void register_verify(py::module_& m);
void register_io(py::module_& m);

} // namespace deepinside::python
