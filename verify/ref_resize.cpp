// Resize (opsets 10-19) and Upsample (7-9), modes nearest and linear, written from ONNX's Resize-19
// definition: separable interpolation on every axis (not only the two the engine resizes), each
// output coordinate mapped back by the coordinate transformation, nearest rounding per nearest_mode,
// linear interpolation between the two neighbours with the input's edge repeated beyond it. Upsample
// and Resize-10 have no transformation attribute: asymmetric with floor rounding, as ONNX's Upsample
// reference and onnxruntime do. Backward: each output element's signal goes to the input elements
// it was interpolated from, times the same weights.
#include "ref_ops.hpp"

#include <fmt/format.h>

#include <cmath>

namespace deepinside::verify {

namespace {

/// The input positions one output index of one axis reads, with their weights.
using taps = std::vector<std::pair<int64_t, double>>;

struct resize_plan {
    shape_t out;
    std::vector<std::vector<taps>> axis; ///< per axis, per output index
};

bool legacy(const node& n) { return n.op_type == "Upsample" || n.opset < 11; }

resize_plan resize_geometry(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const size_t rank = x.shape.size();
    const std::string mode = n.get_string("mode", "nearest");
    const bool nearest = mode == "nearest";
    std::vector<double> scales;
    std::vector<int64_t> sizes;
    if (n.op_type == "Upsample" && n.opset < 9) {
        for (float s : n.get_floats("scales", {})) scales.push_back(s);
    } else if (legacy(n)) {
        scales = input(n, src, 1).data;
    } else {
        if (src.size() > 2 && src[2]) scales = src[2]->data;
        if (src.size() > 3 && src[3]) sizes = to_ints(n, *src[3], "sizes");
    }
    if (scales.empty() == sizes.empty())
        throw model_error(fmt::format("{}: give scales or sizes, not {}", n.describe(), scales.empty() ? "neither" : "both"));
    std::vector<int64_t> axes;
    if (n.opset >= 18 && n.has("axes"))
        for (int64_t a : n.get_ints("axes", {})) axes.push_back(normalize_axis(n, a, static_cast<int64_t>(rank)));
    else
        for (size_t d = 0; d < rank; ++d) axes.push_back(static_cast<int64_t>(d));
    if ((scales.empty() ? sizes.size() : scales.size()) != axes.size())
        throw model_error(fmt::format("{}: {} values for {} axes", n.describe(), scales.empty() ? sizes.size() : scales.size(), axes.size()));
    if (!sizes.empty() && n.opset >= 18 && n.get_string("keep_aspect_ratio_policy", "stretch") != "stretch")
        throw unsupported_error(fmt::format("{}: keep_aspect_ratio_policy '{}' is not supported", n.describe(),
                                            n.get_string("keep_aspect_ratio_policy", "stretch")));

    // Per axis: the output length and the scale the coordinate transformation divides by (the given
    // scale, or output / input length when sizes are given).
    std::vector<double> scale(rank, 1.0);
    resize_plan p;
    p.out = x.shape;
    for (size_t i = 0; i < axes.size(); ++i) {
        const size_t a = static_cast<size_t>(axes[i]);
        if (!scales.empty()) {
            if (!(scales[i] > 0)) throw model_error(fmt::format("{}: scale {} on axis {}", n.describe(), scales[i], a));
            scale[a] = scales[i];
            p.out[a] = static_cast<int64_t>(std::floor(static_cast<double>(x.shape[a]) * scales[i]));
        } else {
            p.out[a] = sizes[i];
            scale[a] = static_cast<double>(sizes[i]) / static_cast<double>(x.shape[a]);
        }
        if (nearest && n.op_type == "Resize" && n.opset < 11 && scale[a] < 1)
            throw unsupported_error(fmt::format("{}: nearest downsampling in opset 10 (its rounding is not specified)", n.describe()));
    }

    const std::string transform = legacy(n) ? "asymmetric" : n.get_string("coordinate_transformation_mode", "half_pixel");
    const std::string rounding = legacy(n) ? "floor" : n.get_string("nearest_mode", "round_prefer_floor");
    p.axis.resize(rank);
    for (size_t d = 0; d < rank; ++d) {
        const int64_t in = x.shape[d], out = p.out[d];
        const double s = scale[d];
        // An axis that keeps its length at scale 1 is not resized (as ONNX's reference skips it):
        // tf_half_pixel_for_nn would otherwise shift it by half an element, and round up.
        if (out == in && s == 1.0) {
            for (int64_t o = 0; o < out; ++o) p.axis[d].push_back(taps{{o, 1.0}});
            continue;
        }
        for (int64_t o = 0; o < out; ++o) {
            const double xr = static_cast<double>(o);
            double xo;
            if (transform == "half_pixel") {
                xo = (xr + 0.5) / s - 0.5;
            } else if (transform == "pytorch_half_pixel") {
                xo = out > 1 ? (xr + 0.5) / s - 0.5 : 0.0;
            } else if (transform == "align_corners") {
                xo = out == 1 ? 0.0 : xr * static_cast<double>(in - 1) / static_cast<double>(out - 1);
            } else if (transform == "asymmetric") {
                xo = xr / s;
            } else if (transform == "tf_half_pixel_for_nn") {
                xo = (xr + 0.5) / s;
            } else if (transform == "half_pixel_symmetric") {
                const double output_width = s * static_cast<double>(in);
                const double offset = static_cast<double>(in) / 2.0 * (1.0 - static_cast<double>(out) / output_width);
                xo = offset + (xr + 0.5) / s - 0.5;
            } else {
                throw unsupported_error(fmt::format("{}: coordinate_transformation_mode '{}' is not supported", n.describe(), transform));
            }
            // Beyond the input the edge repeats: clamping the index is the same.
            auto edge = [in](int64_t i) { return std::min(std::max<int64_t>(i, 0), in - 1); };
            taps t;
            const double lo = std::floor(xo), frac = xo - lo;
            if (nearest) {
                int64_t pick;
                if (frac == 0) pick = static_cast<int64_t>(lo);
                else if (rounding == "round_prefer_floor") pick = static_cast<int64_t>(frac <= 0.5 ? lo : lo + 1);
                else if (rounding == "round_prefer_ceil") pick = static_cast<int64_t>(frac < 0.5 ? lo : lo + 1);
                else if (rounding == "floor") pick = static_cast<int64_t>(lo);
                else if (rounding == "ceil") pick = static_cast<int64_t>(lo + 1);
                else throw unsupported_error(fmt::format("{}: nearest_mode '{}' is not supported", n.describe(), rounding));
                t.emplace_back(edge(pick), 1.0);
            } else if (frac == 0) {
                t.emplace_back(edge(static_cast<int64_t>(lo)), 1.0);
            } else {
                t.emplace_back(edge(static_cast<int64_t>(lo)), 1.0 - frac);
                t.emplace_back(edge(static_cast<int64_t>(lo) + 1), frac);
            }
            p.axis[d].push_back(std::move(t));
        }
    }
    return p;
}

/// Calls f(output flat index, input flat index, weight) for every tap of every output element.
template <typename F>
void for_each_tap(const resize_plan& p, const shape_t& in, F&& f) {
    const auto is = strides_of(in);
    const size_t rank = in.size();
    const int64_t count = element_count(p.out);
    std::vector<int64_t> j(rank, 0);
    for (int64_t k = 0; k < count; ++k) {
        // The product of the per-axis tap lists: walk it with a second odometer.
        std::vector<size_t> c(rank, 0);
        while (true) {
            int64_t from = 0;
            double w = 1;
            for (size_t d = 0; d < rank; ++d) {
                const auto& [i, wd] = p.axis[d][static_cast<size_t>(j[d])][c[d]];
                from += i * is[d];
                w *= wd;
            }
            f(k, from, w);
            size_t d = rank;
            while (d-- > 0) {
                if (++c[d] < p.axis[d][static_cast<size_t>(j[d])].size()) break;
                c[d] = 0;
            }
            if (d == static_cast<size_t>(-1)) break;
        }
        for (size_t d = rank; d-- > 0;) {
            if (++j[d] < p.out[d]) break;
            j[d] = 0;
        }
    }
}

} // namespace

void resize_check(const node& n) {
    const std::string mode = n.get_string("mode", "nearest");
    if (mode != "nearest" && mode != "linear" && !(n.op_type == "Upsample" && mode == "bilinear"))
        throw unsupported_error(fmt::format("{}: mode '{}' is not supported (nearest and linear are)", n.describe(), mode));
    if (n.get_int("antialias", 0) != 0) throw unsupported_error(fmt::format("{}: antialias is not supported", n.describe()));
    if (n.opset >= 13 && n.get_string("coordinate_transformation_mode", "") == "tf_half_pixel_for_nn")
        throw model_error(fmt::format("{}: coordinate_transformation_mode 'tf_half_pixel_for_nn' exists in Resize-11 only", n.describe()));
    if (n.get_string("coordinate_transformation_mode", "") == "tf_crop_and_resize")
        throw unsupported_error(fmt::format("{}: coordinate_transformation_mode 'tf_crop_and_resize' is not supported", n.describe()));
}

dtensor resize_fwd(const node& n, const src_list& src) {
    const dtensor& x = input(n, src, 0);
    const resize_plan p = resize_geometry(n, src);
    dtensor y(p.out);
    for_each_tap(p, x.shape, [&](int64_t k, int64_t from, double w) { y.data[static_cast<size_t>(k)] += w * x.data[static_cast<size_t>(from)]; });
    return y;
}

std::vector<dtensor> resize_bwd(const backward_args& a) {
    const resize_plan p = resize_geometry(a.n, a.src);
    auto diffs = empty_diffs(a);
    diffs[0] = dtensor(a.src[0]->shape);
    for_each_tap(p, a.src[0]->shape, [&](int64_t k, int64_t from, double w) {
        diffs[0].data[static_cast<size_t>(from)] += w * a.diff_dst.data[static_cast<size_t>(k)];
    });
    return diffs;
}

/// This family's rows of the reference's op table (reference.cpp).
std::vector<op_entry> resize_ops() {
    return {
        {"Resize", resize_fwd, resize_bwd, resize_check, 1, nullptr},
        {"Upsample", resize_fwd, resize_bwd, resize_check, 1, nullptr},
    };
}

} // namespace deepinside::verify
