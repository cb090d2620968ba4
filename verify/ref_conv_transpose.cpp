// ConvTranspose (2-D) in plain double loops, written from the ONNX definition: every input pixel
// (n, c, i, j) adds x · W[c, m, ki, kj] to output (n, g·M/G + m, i·stride − pad_begin + ki·dilation,
// ...) where it lands inside the output. Backward to x gathers the same terms; backward to the
// weights and bias is not needed (they are constants of the models we run).
#include "ref_ops.hpp"

#include <fmt/format.h>

namespace deepinside::verify {

namespace {

struct transposed_geometry {
    int64_t batch = 0, in_c = 0, in_h = 0, in_w = 0, out_c = 0, out_cg = 0, group = 1, k_h = 0, k_w = 0;
    int64_t out[2]{0, 0}, stride[2]{1, 1}, dilation[2]{1, 1}, pad_begin[2]{0, 0};
};

transposed_geometry geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const dtensor& w = input(n, src, 1);
    require_rank(n, x, 4, "input");
    require_rank(n, w, 4, "weights");
    transposed_geometry s;
    s.batch = x.shape[0];
    s.in_c = x.shape[1];
    s.in_h = x.shape[2];
    s.in_w = x.shape[3];
    s.group = n.get_int("group", 1);
    if (s.group < 1 || s.in_c % s.group != 0 || w.shape[0] != s.in_c)
        throw model_error(fmt::format("{}: input channels {}, weights {} and group {} do not fit", n.describe(), s.in_c,
                                      to_string(w.shape), s.group));
    s.out_cg = w.shape[1];
    s.out_c = s.out_cg * s.group;
    s.k_h = w.shape[2];
    s.k_w = w.shape[3];
    const auto strides = n.get_ints("strides", {1, 1}), dilations = n.get_ints("dilations", {1, 1});
    const auto out_pad = n.get_ints("output_padding", {0, 0}), pads = n.get_ints("pads", {0, 0, 0, 0});
    const auto output_shape = n.get_ints("output_shape", {});
    const std::string auto_pad = n.get_string("auto_pad", "NOTSET");
    if (strides.size() != 2 || dilations.size() != 2 || out_pad.size() != 2 || pads.size() != 4)
        throw model_error(fmt::format("{}: strides, dilations, output_padding need 2 values and pads 4", n.describe()));
    const int64_t in[2] = {s.in_h, s.in_w}, kernel[2] = {s.k_h, s.k_w};
    for (int i = 0; i < 2; ++i) {
        s.stride[i] = strides[i];
        s.dilation[i] = dilations[i];
        // ONNX: total_padding = stride (in − 1) + output_padding + (k − 1) dilation + 1 − output_shape.
        const int64_t full = strides[i] * (in[i] - 1) + out_pad[i] + (kernel[i] - 1) * dilations[i] + 1;
        if (!output_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            const int64_t target = output_shape.empty() ? in[i] * strides[i] : output_shape.at(static_cast<size_t>(i));
            const int64_t total = full - target;
            if (total < 0) throw unsupported_error(fmt::format("{}: output_shape beyond the full transposed convolution", n.describe()));
            s.pad_begin[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
            s.out[i] = target;
        } else if (auto_pad == "VALID") {
            s.out[i] = full;
        } else {
            s.pad_begin[i] = pads[static_cast<size_t>(i)];
            s.out[i] = full - pads[static_cast<size_t>(i)] - pads[static_cast<size_t>(i) + 2];
        }
        if (s.out[i] < 1) throw model_error(fmt::format("{}: empty output", n.describe()));
    }
    return s;
}

/// Calls f(x index, y index, w index) for every term of the sum.
template <typename F>
void for_each_term(const transposed_geometry& s, F&& f) {
    const int64_t in_cg = s.in_c / s.group;
    for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t c = 0; c < s.in_c; ++c) {
            const int64_t g = c / in_cg;
            for (int64_t i = 0; i < s.in_h; ++i)
                for (int64_t j = 0; j < s.in_w; ++j)
                    for (int64_t m = 0; m < s.out_cg; ++m)
                        for (int64_t ki = 0; ki < s.k_h; ++ki) {
                            const int64_t oy = i * s.stride[0] - s.pad_begin[0] + ki * s.dilation[0];
                            if (oy < 0 || oy >= s.out[0]) continue;
                            for (int64_t kj = 0; kj < s.k_w; ++kj) {
                                const int64_t ox = j * s.stride[1] - s.pad_begin[1] + kj * s.dilation[1];
                                if (ox < 0 || ox >= s.out[1]) continue;
                                const int64_t oc = g * s.out_cg + m;
                                f(((b * s.in_c + c) * s.in_h + i) * s.in_w + j, ((b * s.out_c + oc) * s.out[0] + oy) * s.out[1] + ox,
                                  ((c * s.out_cg + m) * s.k_h + ki) * s.k_w + kj);
                            }
                        }
        }
}

} // namespace

dtensor conv_transpose_fwd(const node& n, const src_list& src) {
    const transposed_geometry s = geometry(n, src);
    const dtensor& x = *src[0];
    const dtensor& w = *src[1];
    dtensor y({s.batch, s.out_c, s.out[0], s.out[1]});
    for_each_term(s, [&](int64_t xi, int64_t yi, int64_t wi) {
        y.data[static_cast<size_t>(yi)] += x.data[static_cast<size_t>(xi)] * w.data[static_cast<size_t>(wi)];
    });
    if (src.size() > 2 && src[2]) {
        const int64_t plane = s.out[0] * s.out[1];
        for (int64_t k = 0; k < y.size(); ++k) y.data[static_cast<size_t>(k)] += src[2]->data.at(static_cast<size_t>((k / plane) % s.out_c));
    }
    return y;
}

std::vector<dtensor> conv_transpose_bwd(const backward_args& a) {
    const transposed_geometry s = geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    if (!a.need[0]) return diffs;
    diffs[0] = dtensor(a.src[0]->shape);
    const dtensor& w = *a.src[1];
    for_each_term(s, [&](int64_t xi, int64_t yi, int64_t wi) {
        diffs[0].data[static_cast<size_t>(xi)] += a.diff_dst.data[static_cast<size_t>(yi)] * w.data[static_cast<size_t>(wi)];
    });
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> conv_transpose_ops() {
    return {
        {"ConvTranspose", conv_transpose_fwd, conv_transpose_bwd, nullptr, 1, nullptr},
    };
}

} // namespace deepinside::verify
