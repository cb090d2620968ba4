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

// ---- families ----
dtensor conv_fwd(const node&, const src_list&);
std::vector<dtensor> conv_bwd(const backward_args&);
void conv_check(const node&);
dtensor conv_transpose_fwd(const node&, const src_list&);
std::vector<dtensor> conv_transpose_bwd(const backward_args&);

dtensor max_pool_fwd(const node&, const src_list&);
std::vector<dtensor> max_pool_bwd(const backward_args&);
std::vector<int64_t> max_pool_decisions(const node&, const src_list&);
void max_pool_check(const node&);
dtensor avg_pool_fwd(const node&, const src_list&);
std::vector<dtensor> avg_pool_bwd(const backward_args&);
void avg_pool_check(const node&);
dtensor global_avg_pool_fwd(const node&, const src_list&);
std::vector<dtensor> global_avg_pool_bwd(const backward_args&);
dtensor global_max_pool_fwd(const node&, const src_list&);
std::vector<dtensor> global_max_pool_bwd(const backward_args&);
std::vector<int64_t> global_max_pool_decisions(const node&, const src_list&);

dtensor relu_fwd(const node&, const src_list&);
std::vector<dtensor> relu_bwd(const backward_args&);
/// 1(x > 0): ReLU's and LeakyReLU's kink.
std::vector<int64_t> positive_decisions(const node&, const src_list&);
dtensor leaky_relu_fwd(const node&, const src_list&);
std::vector<dtensor> leaky_relu_bwd(const backward_args&);
dtensor elu_fwd(const node&, const src_list&);
std::vector<dtensor> elu_bwd(const backward_args&);
dtensor selu_fwd(const node&, const src_list&);
std::vector<dtensor> selu_bwd(const backward_args&);
dtensor sigmoid_fwd(const node&, const src_list&);
std::vector<dtensor> sigmoid_bwd(const backward_args&);
dtensor tanh_fwd(const node&, const src_list&);
std::vector<dtensor> tanh_bwd(const backward_args&);
dtensor clip_fwd(const node&, const src_list&);
std::vector<dtensor> clip_bwd(const backward_args&);
std::vector<int64_t> clip_decisions(const node&, const src_list&);
dtensor hard_sigmoid_fwd(const node&, const src_list&);
std::vector<dtensor> hard_sigmoid_bwd(const backward_args&);
/// HardSigmoid's and HardSwish's ramp, encoded as Clip's: 0 below, 1 on it, 2 above.
std::vector<int64_t> hard_sigmoid_decisions(const node&, const src_list&);
dtensor hard_swish_fwd(const node&, const src_list&);
std::vector<dtensor> hard_swish_bwd(const backward_args&);
std::vector<int64_t> hard_swish_decisions(const node&, const src_list&);
dtensor erf_fwd(const node&, const src_list&);
std::vector<dtensor> erf_bwd(const backward_args&);
dtensor gelu_fwd(const node&, const src_list&);
std::vector<dtensor> gelu_bwd(const backward_args&);
void gelu_check(const node&);
dtensor prelu_fwd(const node&, const src_list&);
std::vector<dtensor> prelu_bwd(const backward_args&);
/// Pow (exponent input 1) and Sqrt: exact arithmetic under every rule.
dtensor pow_fwd(const node&, const src_list&);
std::vector<dtensor> pow_bwd(const backward_args&);
dtensor sqrt_fwd(const node&, const src_list&);
std::vector<dtensor> sqrt_bwd(const backward_args&);

dtensor gemm_fwd(const node&, const src_list&);
std::vector<dtensor> gemm_bwd(const backward_args&);
dtensor matmul_fwd(const node&, const src_list&);
std::vector<dtensor> matmul_bwd(const backward_args&);

dtensor add_fwd(const node&, const src_list&);
std::vector<dtensor> add_bwd(const backward_args&);
dtensor sub_fwd(const node&, const src_list&);
std::vector<dtensor> sub_bwd(const backward_args&);
dtensor mul_fwd(const node&, const src_list&);
std::vector<dtensor> mul_bwd(const backward_args&);
dtensor div_fwd(const node&, const src_list&);
std::vector<dtensor> div_bwd(const backward_args&);
void binary_check(const node&);

dtensor identity_fwd(const node&, const src_list&);
std::vector<dtensor> identity_bwd(const backward_args&);
void dropout_check(const node&);
dtensor dropout_fwd(const node&, const src_list&);
dtensor reshape_fwd(const node&, const src_list&);
dtensor flatten_fwd(const node&, const src_list&);
dtensor squeeze_fwd(const node&, const src_list&);
dtensor unsqueeze_fwd(const node&, const src_list&);
/// Backward of every op that only relabels its input's shape.
std::vector<dtensor> reshape_like_bwd(const backward_args&);
dtensor concat_fwd(const node&, const src_list&);
std::vector<dtensor> concat_bwd(const backward_args&);
dtensor pad_fwd(const node&, const src_list&);
std::vector<dtensor> pad_bwd(const backward_args&);
void pad_check(const node&);
dtensor reduce_mean_fwd(const node&, const src_list&);
std::vector<dtensor> reduce_mean_bwd(const backward_args&);

dtensor batch_norm_fwd(const node&, const src_list&);
std::vector<dtensor> batch_norm_bwd(const backward_args&);
void batch_norm_check(const node&);
dtensor lrn_fwd(const node&, const src_list&);
std::vector<dtensor> lrn_bwd(const backward_args&);
void lrn_check(const node&);
dtensor layer_norm_fwd(const node&, const src_list&);
std::vector<dtensor> layer_norm_bwd(const backward_args&);
void layer_norm_check(const node&);

dtensor softmax_fwd(const node&, const src_list&);
std::vector<dtensor> softmax_bwd(const backward_args&);
dtensor log_softmax_fwd(const node&, const src_list&);
std::vector<dtensor> log_softmax_bwd(const backward_args&);

dtensor transpose_fwd(const node&, const src_list&);
std::vector<dtensor> transpose_bwd(const backward_args&);
dtensor slice_fwd(const node&, const src_list&);
std::vector<dtensor> slice_bwd(const backward_args&);
/// Split has one node per output in the reference (split_into_parts); each computes its own part.
dtensor split_fwd(const node&, const src_list&);
std::vector<dtensor> split_bwd(const backward_args&);
/// Replaces every Split node of `g` by one node per (named) output, each marked with its part, so
/// that every node the reference runs has one output.
void split_into_parts(graph& g);
dtensor gather_fwd(const node&, const src_list&);
std::vector<dtensor> gather_bwd(const backward_args&);
dtensor expand_fwd(const node&, const src_list&);
std::vector<dtensor> expand_bwd(const backward_args&);
dtensor where_fwd(const node&, const src_list&);
std::vector<dtensor> where_bwd(const backward_args&);
/// Resize and Upsample (ref_resize.cpp).
dtensor resize_fwd(const node&, const src_list&);
std::vector<dtensor> resize_bwd(const backward_args&);
void resize_check(const node&);

} // namespace deepinside::verify
