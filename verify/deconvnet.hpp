#pragma once
/// Zeiler and Fergus's deconvolutional network, written from their description ("Visualizing and
/// Understanding Convolutional Networks", 2013, section 2.1), in double precision. It shares no code
/// with the engine's backward nor with the reference's (reference.hpp): the verifier runs it beside
/// the engine's gradient rule, layer by layer, to test the paper's section-4 claim rather than assume
/// it. Each operator maps the reconstruction R at a layer's output to the reconstruction at its input:
///
///   convolution      "filtering": a forward convolution of R (zeros inserted between its samples for
///                    a stride) with the layer's filters flipped in both spatial axes and input and
///                    output channels swapped; then the forward padding is cut away.
///   fully connected  multiplication by the transposed weight matrix.
///   max pooling      unpooling: each value of R goes back to the position its window's maximum held
///                    in the forward input, as recorded in the switches.
///   ReLU             rectification of R: relu(R). The forward input is not consulted.
///
/// Flattening and reshapes are reshapes, done by the verifier. Every other layer has no DeconvNet
/// operator here.
#include "reference.hpp"

#include <deepinside/graph.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <vector>

namespace deepinside::verify::zf {

/// A 2-D convolution layer as DeconvNet sees it.
struct conv_layer {
    dtensor filters; ///< [M, C/group, kH, kW], as the ONNX file holds them
    int64_t group = 1;
    std::array<int64_t, 2> stride{1, 1}, dilation{1, 1}, pad_begin{0, 0}, pad_end{0, 0};
    shape_t input_shape; ///< [N, C, H, W] of the forward input
    shape_t output_shape; ///< [N, M, Ho, Wo]
};

/// Reads a Conv node's attributes (auto_pad resolved for `input_shape`). Throws unsupported_error
/// for other than 2-D convolutions and model_error for inconsistent attributes, naming the node.
conv_layer conv_layer_of(const node& n, const dtensor& filters, const shape_t& input_shape);

/// R [N, M, Ho, Wo] at the output to R [N, C, H, W] at the input, by filtering (see above). Input
/// positions no window covered (the rows a floor-mode stride drops) get zero.
dtensor filter(const conv_layer& layer, const dtensor& r);

/// A fully connected layer y = W x (+ bias), x the last axis of the input.
struct fc_layer {
    dtensor weights; ///< [out, in]: W, with Gemm's alpha and transB already applied
    shape_t input_shape;
};

/// From a Gemm (transA = 0; alpha and transB applied) or a MatMul whose second operand is the
/// constant `weight`. Throws unsupported_error naming the node otherwise.
fc_layer fc_layer_of(const node& n, const dtensor& weight, const shape_t& input_shape);

/// R [..., out] to R [..., in] = R W.
dtensor transpose_multiply(const fc_layer& layer, const dtensor& r);

/// The switches of a max-pooling layer, recorded from its forward input.
struct switches {
    shape_t input_shape, output_shape;
    /// Per output element (C order): the flat C-order index into the input of its window's maximum;
    /// the first in row-major window order when several positions hold it (as ONNX, PyTorch and
    /// oneDNN choose); -1 for a window that covers only padding.
    std::vector<int64_t> position;
    /// Per output element: how many positions of its window hold the maximum (1 when no tie).
    std::vector<int32_t> holders;
    int64_t windows = 0;      ///< output elements
    int64_t tied_windows = 0; ///< windows whose maximum is held by more than one position
};

/// Records the switches of a MaxPool (2-D; kernel_shape, strides, pads, dilations, auto_pad,
/// ceil_mode; padding never wins) or GlobalMaxPool node from its forward input `x` [N, C, H, W].
switches record_switches(const node& n, const dtensor& x);

/// R at the output to R at the input: each value goes to its window's switch; values of windows
/// that share a maximum position add up there.
dtensor unpool(const switches& s, const dtensor& r);

/// relu(R). `x`, the layer's forward input, is not used by DeconvNet (it is given so that a test can
/// plant the gradient's mask here and show that the verifier catches it).
dtensor rectify(const dtensor& r, const dtensor& x);

/// The operators the verifier applies, as values: tests replace one to plant a fault.
struct operators {
    std::function<dtensor(const conv_layer&, const dtensor&)> filter = zf::filter;
    std::function<dtensor(const fc_layer&, const dtensor&)> transpose_multiply = zf::transpose_multiply;
    std::function<switches(const node&, const dtensor&)> record_switches = zf::record_switches;
    std::function<dtensor(const switches&, const dtensor&)> unpool = zf::unpool;
    std::function<dtensor(const dtensor&, const dtensor&)> rectify = zf::rectify;
};

} // namespace deepinside::verify::zf
