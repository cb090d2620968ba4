#pragma once
// Internal to the verifier: the signature every reference op family implements, and the small index
// and attribute helpers they share. Forward and backward of a family live side by side in its file;
// reference.cpp holds the one table keyed by op type.
#include "reference.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace deepinside::verify {

/// Inputs of a node: one pointer per node input, nullptr where an optional input is omitted.
using src_list = std::vector<const dtensor*>;

struct backward_args {
    const node& n;
    const src_list& src;      ///< forward inputs (activations and constants)
    const dtensor& dst;       ///< forward output
    const dtensor& diff_dst;  ///< d f / d dst
    const std::vector<bool>& need; ///< per input: compute its diff_src
    backward_rule rule;
    nonrelu_policy policy;
};

/// Forward of one node with a single output.
using forward_fn = dtensor (*)(const node& n, const src_list& src);
/// d f / d src for every input with need[i]; other entries may stay empty.
using backward_fn = std::vector<dtensor> (*)(const backward_args& a);
/// Static checks at construction (attribute values the reference refuses); may be null.
using check_fn = void (*)(const node& n);
/// The discrete choices backward takes from the forward state, one per output element, in the
/// encoding its backward uses: ReLU / LeakyReLU 1(x > 0); Clip 0 below, 1 inside, 2 above; max
/// pooling the flat index (within the plane) of the window's first maximum. Null for ops whose
/// backward takes no such choice.
using decision_fn = std::vector<int64_t> (*)(const node& n, const src_list& src);

// ---- helpers (ref_util.cpp) ----
std::vector<int64_t> strides_of(const shape_t& shape);
/// numpy multidirectional broadcast of two shapes; throws model_error naming the node.
shape_t broadcast_shapes(const node& n, const shape_t& a, const shape_t& b);
/// For each element of `dst_shape` (C order), the flat index into a tensor of `src_shape` broadcast to it.
std::vector<int64_t> broadcast_index(const shape_t& src_shape, const shape_t& dst_shape);
/// Sum of `src` (of `dst_shape`) over the axes along which `target` was broadcast.
dtensor reduce_to_shape(const dtensor& src, const shape_t& target);
/// The values of an integer-valued input (shape, axes, pads), checked to be whole numbers.
std::vector<int64_t> to_ints(const node& n, const dtensor& t, const char* what);
/// Normalises axis `a` into [0, rank) (or [0, rank] with `inclusive`); throws model_error.
int64_t normalize_axis(const node& n, int64_t a, int64_t rank, bool inclusive = false);
/// Requires input `i` to be present; throws model_error.
const dtensor& input(const node& n, const src_list& src, size_t i);
/// Requires the tensor to have `rank` dimensions; throws unsupported_error/model_error.
void require_rank(const node& n, const dtensor& t, size_t rank, const char* what);
/// The diff list every backward returns: one empty entry per input.
std::vector<dtensor> empty_diffs(const backward_args& a);
/// Throws unsupported_error when a non-ReLU nonlinearity meets deconvnet/guided under policy refuse.
void check_nonrelu_rule(const backward_args& a);

/// One spatial axis of a sliding window (Conv, MaxPool, AveragePool) after auto_pad and ceil_mode.
struct window_axis {
    int64_t in = 0, kernel = 1, stride = 1, dilation = 1, pad_begin = 0, pad_end = 0, out = 0;
};
/// Resolves auto_pad, pads, strides, dilations (and ceil_mode when `ceil_mode_allowed`) of `n` for the
/// spatial sizes `in` and the kernel `kernel` (ref_conv.cpp). Throws model_error on bad values.
std::vector<window_axis> resolve_windows(const node& n, const std::vector<int64_t>& in,
                                         const std::vector<int64_t>& kernel, bool ceil_mode_allowed);
/// Output indices o in [lo, hi) with 0 <= o * stride + offset < in (and o < out).
std::pair<int64_t, int64_t> valid_outputs(int64_t offset, int64_t stride, int64_t in, int64_t out);

/// All inputs differentiable (bit i = input i), for op_entry::differentiable.
constexpr uint32_t all_inputs = ~uint32_t(0);

/// One row per ONNX op type: forward and backward side by side, an optional static check, the
/// inputs (bit i = input i) whose diff the backward can produce (any other input must not depend on
/// the network input), and the discrete decisions its backward takes from the forward state, if any.
struct op_entry {
    const char* op_type;
    forward_fn forward;
    backward_fn backward;
    check_fn check;
    uint32_t differentiable;
    decision_fn decisions;
};

// ---- families: each file's rows of the op table, next to the functions they name ----
// Adding an op to a family is its functions and one row in that family's list; a new family is
// a file, its declaration here, and its name in reference.cpp's op_table().
std::vector<op_entry> conv_ops();   // ref_conv.cpp
std::vector<op_entry> conv_transpose_ops();   // ref_conv_transpose.cpp
std::vector<op_entry> pool_ops();   // ref_pool.cpp
std::vector<op_entry> eltwise_ops();   // ref_eltwise.cpp
std::vector<op_entry> linear_ops();   // ref_linear.cpp
std::vector<op_entry> binary_ops();   // ref_elementwise_binary.cpp
std::vector<op_entry> shape_ops();   // ref_shape.cpp
std::vector<op_entry> norm_ops();   // ref_norm.cpp
std::vector<op_entry> softmax_ops();   // ref_softmax.cpp
std::vector<op_entry> layout_ops();   // ref_layout.cpp
std::vector<op_entry> resize_ops();   // ref_resize.cpp

// Used beyond their family (the DeconvNet reconstruction tests, the reference's constructor).
dtensor conv_fwd(const node&, const src_list&);
dtensor max_pool_fwd(const node&, const src_list&);
dtensor gemm_fwd(const node&, const src_list&);
dtensor matmul_fwd(const node&, const src_list&);
/// Replaces every Split node of `g` by one node per (named) output, each marked with its part, so
/// that every node the reference runs has one output.
void split_into_parts(graph& g);

} // namespace deepinside::verify
