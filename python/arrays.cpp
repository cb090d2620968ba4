#include "bindings.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <cstring>
#include <memory>
#include <vector>

namespace deepinside::python {

namespace {

/// An ndarray over `values`, whose base is a capsule that deletes them with the array.
template <typename T> py::array_t<T> owning_array(std::vector<T>&& values, const std::vector<py::ssize_t>& shape) {
    auto owned = std::make_unique<std::vector<T>>(std::move(values));
    T* data = owned->data();
    py::capsule base(owned.get(), [](void* p) { delete static_cast<std::vector<T>*>(p); });
    owned.release(); // the capsule owns it now
    return py::array_t<T>(shape, data, base);
}

std::string dtype_name(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

} // namespace

py::array_t<float> to_array(tensor&& t) {
    const std::vector<py::ssize_t> shape(t.shape.begin(), t.shape.end());
    return owning_array(std::move(t.data), shape);
}

tensor to_tensor(const py::handle& x, const std::string& what) {
    const auto a = py::array::ensure(x); // array-likes (lists) too; empty when NumPy cannot convert
    if (!a)
        throw input_error(
            fmt::format("{}: expected a NumPy array, got {}", what, py::str(py::type::of(x)).cast<std::string>()));
    const char kind = a.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u')
        throw input_error(fmt::format("{}: dtype {} is not a real number type; give float32 (other float and integer "
                                      "dtypes are converted to float32)",
                                      what, dtype_name(a)));
    // float32 in C order passes through unchanged; anything else is converted here.
    const auto f = py::array_t<float, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!f) throw input_error(fmt::format("{}: cannot convert dtype {} to float32", what, dtype_name(a)));
    shape_t shape(f.shape(), f.shape() + f.ndim());
    std::vector<float> values(static_cast<size_t>(f.size()));
    if (!values.empty()) std::memcpy(values.data(), f.data(), values.size() * sizeof(float));
    return tensor(std::move(shape), std::move(values));
}

py::array_t<uint8_t> to_array(image&& img) {
    return owning_array(std::move(img.pixels), {img.height, img.width, img.channels});
}

image to_image(const py::handle& x, const std::string& what) {
    const auto a = py::array::ensure(x);
    if (!a) throw input_error(fmt::format("{}: expected a NumPy array", what));
    if (!a.dtype().is(py::dtype::of<uint8_t>()))
        throw input_error(
            fmt::format("{}: an image is a uint8 array [H, W] or [H, W, 1 or 3]; got dtype {}", what, dtype_name(a)));
    if (a.ndim() != 2 && !(a.ndim() == 3 && (a.shape(2) == 1 || a.shape(2) == 3)))
        throw input_error(fmt::format("{}: an image is a uint8 array [H, W] or [H, W, 1 or 3]; got {} dimensions{}",
                                      what, a.ndim(),
                                      a.ndim() == 3 ? fmt::format(" with {} channels", a.shape(2)) : ""));
    const auto c = py::array_t<uint8_t, py::array::c_style>::ensure(a);
    image img;
    img.height = static_cast<int>(c.shape(0));
    img.width = static_cast<int>(c.shape(1));
    img.channels = c.ndim() == 3 ? static_cast<int>(c.shape(2)) : 1;
    if (img.height != c.shape(0) || img.width != c.shape(1))
        throw input_error(fmt::format("{}: an image of {} x {} pixels is too large", what, c.shape(1), c.shape(0)));
    img.pixels.assign(c.data(), c.data() + c.size());
    return img;
}

} // namespace deepinside::python
