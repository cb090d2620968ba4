// Images, preprocessing, heatmaps and the paper's saliency map on NumPy arrays (include/deepinside/io.hpp).
#include "bindings.hpp"
#include "network.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>

#include <pybind11/stl.h>

#include <optional>

namespace deepinside::python {

tensor image_input(const graph& g, const image& img, const preprocess_options& pre) {
    const shape_t s = input_shape_for_image(g, img);
    return image_to_tensor(img, s[1], s[2], s[3], pre);
}

namespace {

/// A float or a sequence of floats.
std::vector<float> float_list(const py::handle& v, const char* what) {
    try {
        if (py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v)) return {v.cast<float>()};
        return v.cast<std::vector<float>>();
    } catch (const py::cast_error&) {
        throw input_error(fmt::format("{} expects a number or a sequence of numbers", what));
    }
}

} // namespace

void register_io(py::module_& m) {
    m.def(
        "read_image",
        [](const std::string& path) {
            image img;
            {
                const py::gil_scoped_release release;
                img = read_image(path);
            }
            return to_array(std::move(img));
        },
        py::arg("path"), R"doc(A PNG or JPEG file as a uint8 array [H, W, C], C = 1 (grey) or 3 (RGB).

Palettes are expanded, 16-bit samples scaled to 8 bits, alpha composited over white. A corrupt,
truncated or oversized file raises InputError, an unreadable one IoError, naming the file.)doc");

    m.def(
        "write_png",
        [](const std::string& path, const py::handle& img) {
            const image picture = to_image(img, "write_png");
            const py::gil_scoped_release release;
            write_png(path, picture);
        },
        py::arg("path"), py::arg("img"), R"doc(Writes a uint8 image [H, W], [H, W, 1] or [H, W, 3] as an 8-bit
PNG, atomically (a temporary file renamed into place). IoError when it cannot be written.)doc");

    m.def(
        "image_to_tensor",
        [](const py::handle& img, const py::handle& model, const py::object& mean, const py::object& std,
           const std::optional<float>& scale, const std::optional<std::string>& channel_order) {
            image picture =
                py::isinstance<py::str>(img) ? read_image(img.cast<std::string>()) : to_image(img, "image_to_tensor");
            std::optional<graph> read;
            const graph* g = nullptr;
            if (py::isinstance<model_networks>(model)) {
                g = &model.cast<const model_networks&>().model();
            } else if (py::isinstance<py::str>(model)) {
                const std::string path = model.cast<std::string>();
                const py::gil_scoped_release release;
                read = read_onnx(path);
                g = &*read;
            } else {
                throw input_error("image_to_tensor: model expects a model file or a deepinside.Network");
            }
            preprocess_options pre = preprocess_from_metadata(g->metadata, preprocess_options{});
            if (!mean.is_none()) pre.mean = float_list(mean, "mean");
            if (!std.is_none()) pre.std = float_list(std, "std");
            if (scale) pre.scale = *scale;
            if (channel_order) {
                if (*channel_order != "RGB" && *channel_order != "BGR")
                    throw input_error(fmt::format("channel_order expects 'RGB' or 'BGR', got '{}'", *channel_order));
                pre.bgr = *channel_order == "BGR";
            }
            tensor x;
            {
                const py::gil_scoped_release release;
                x = image_input(*g, picture, pre);
            }
            return to_array(std::move(x));
        },
        py::arg("img"), py::arg("model"), py::arg("mean") = py::none(), py::arg("std") = py::none(),
        py::arg("scale") = py::none(), py::arg("channel_order") = py::none(),
        R"doc(An image as the model's input, float32 [1, C, H, W], as `deepinside classify` prepares it.

img: a uint8 array [H, W] / [H, W, 1 or 3], or an image file.
model: a model file or a Network: its declared input shape (open dimensions from the image) and its
    metadata_props preprocessing. value = (pixel * scale - mean[c]) / std[c], RGB order; defaults scale
    1/255, mean 0, std 1, overridden by deepinside.mean/.std/.scale/.channel_order and then by the
    keyword arguments. Resized bilinearly (half-pixel centres, no antialiasing: PyTorch's
    interpolate(mode="bilinear")); grey replicated to 3 channels, colour to 1 channel by BT.601 luma.)doc");

    m.def(
        "heatmap",
        [](const py::handle& map) {
            const tensor t = to_tensor(map, "heatmap");
            return to_array(heatmap(t));
        },
        py::arg("map"), R"doc(A saliency map [H, W] coloured with matplotlib's "inferno": uint8 [H, W, 3].

Values are clamped below at 0 and divided by the map's maximum (an all-zero map stays dark). InputError
for another rank, an empty map, or a NaN or infinity.)doc");

    m.def(
        "overlay",
        [](const py::handle& base, const py::handle& map, float alpha) {
            const image picture = to_image(base, "overlay");
            const tensor t = to_tensor(map, "overlay");
            return to_array(overlay(picture, t, alpha));
        },
        py::arg("base"), py::arg("map"), py::arg("alpha") = 0.5f,
        R"doc(heatmap(map), resized bilinearly to the image's size, blended over a uint8 image:
(1 - alpha) * base + alpha * heat, RGB uint8 [H, W, 3].)doc");

    m.def(
        "saliency_map",
        [](const py::handle& signal) {
            tensor t = to_tensor(signal, "saliency_map");
            {
                const py::gil_scoped_release release;
                t = saliency_map(t);
            }
            return to_array(std::move(t));
        },
        py::arg("signal"), R"doc(The paper's map of a signal [N, C, H, W]: per image and pixel the maximum
over channels of |signal|, float32 [N, H, W]. Another rank maps to |signal| with its shape kept; a signal
without a batch axis raises InputError. (Network.saliency(..., map="max-abs") applies it to every
signal.))doc");
}

} // namespace deepinside::python
