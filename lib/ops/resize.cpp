// Resize (opsets 10-21) and Upsample (7-9) in modes nearest and linear, on the last two axes (H and
// W of NCHW; the leading axes keep their size). Interpolation is separable: each resized axis gets
// a table, per output index, of the input index or indices it reads and their weights, computed once
// at compile time in double from ONNX's coordinate transformations; forward and backward are host
// loops over the planes of the leading axes. Backward is the adjoint: every output element's signal
// goes to the input elements it was read from, times the same weights.
//
// Coordinate transformations (ONNX Resize-19): half_pixel, pytorch_half_pixel, align_corners,
// asymmetric, tf_half_pixel_for_nn, half_pixel_symmetric. Upsample and Resize-10 predate the
// attribute and are asymmetric with floor rounding (what ONNX's Upsample reference and
// onnxruntime do). Refused, naming the node and the value: cubic mode, antialias,
// tf_crop_and_resize, keep_aspect_ratio_policy other than stretch, a resize of a leading axis.
#include "ops/op.hpp"

#include <cmath>
#include <cstring>

namespace deepinside::ops {

namespace {

constexpr int64_t parallel_threshold = 1 << 15;

/// What one output index of a resized axis reads: index i0 with weight w0 and i1 with weight w1
/// (nearest: w0 = 1, i1 = i0, w1 = 0).
struct tap {
    int64_t i0 = 0, i1 = 0;
    float w0 = 1, w1 = 0;
};

class resize_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const size_t rank = x.size();
        if (rank < 2) refuse(fmt::format("an input of rank {} is not supported (it resizes the last two axes of rank >= 2)", rank));
        read_attributes();
        std::vector<double> scales(rank, 1.0);
        shape_t y = x;
        resolve_sizes(fb, x, scales, y);
        for (size_t d = 0; d + 2 < rank; ++d)
            if (y[d] != x[d] || scales[d] != 1.0)
                refuse(fmt::format("resizing axis {} (scale {}, size {} to {}) is not supported: only the last two axes", d, scales[d],
                                   x[d], y[d]));
        if (element_count(y) == 0) refuse(fmt::format("the output {} would be empty; empty tensors are not supported", to_string(y)));
        x_ = x;
        y_ = y;
        taps_h_ = axis_taps(x[rank - 2], y[rank - 2], scales[rank - 2]);
        taps_w_ = axis_taps(x[rank - 1], y[rank - 1], scales[rank - 1]);
        dnnl::memory src = fb.input_plain(0);
        dnnl::memory dst = fb.allocate(engine::plain_desc(y));
        const int64_t planes = element_count(x) / (x[rank - 2] * x[rank - 1]);
        const int64_t ih = x[rank - 2], iw = x[rank - 1], oh = y[rank - 2], ow = y[rank - 1];
        const auto th = taps_h_, tw = taps_w_;
        const bool nearest = nearest_;
        fb.add_host([=]() {
            const auto* s = static_cast<const float*>(src.get_data_handle());
            auto* d = static_cast<float*>(dst.get_data_handle());
#pragma omp parallel for collapse(2) if (planes * oh * ow > parallel_threshold)
            for (int64_t p = 0; p < planes; ++p)
                for (int64_t oy = 0; oy < oh; ++oy) {
                    const float* in = s + p * ih * iw;
                    float* out = d + (p * oh + oy) * ow;
                    const tap& ty = th[static_cast<size_t>(oy)];
                    if (nearest) {
                        const float* row = in + ty.i0 * iw;
                        for (int64_t ox = 0; ox < ow; ++ox) out[ox] = row[tw[static_cast<size_t>(ox)].i0];
                        continue;
                    }
                    const float* r0 = in + ty.i0 * iw;
                    const float* r1 = in + ty.i1 * iw;
                    for (int64_t ox = 0; ox < ow; ++ox) {
                        const tap& tx = tw[static_cast<size_t>(ox)];
                        out[ox] = ty.w0 * (tx.w0 * r0[tx.i0] + tx.w1 * r0[tx.i1]) + ty.w1 * (tx.w0 * r1[tx.i0] + tx.w1 * r1[tx.i1]);
                    }
                }
        });
        fb.define_output(0, y, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const int64_t stack = bb.stack();
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y_), stack));
        dnnl::memory dx = bb.allocate(engine::scale_batch(engine::plain_desc(x_), stack));
        const size_t rank = x_.size();
        const int64_t ih = x_[rank - 2], iw = x_[rank - 1], oh = y_[rank - 2], ow = y_[rank - 1];
        // The stacked slices lie back to back: stack times as many planes.
        const int64_t planes = stack * element_count(x_) / (ih * iw);
        const auto th = taps_h_, tw = taps_w_;
        const bool nearest = nearest_;
        bb.add_host([=]() {
            const auto* s = static_cast<const float*>(g.get_data_handle());
            auto* d = static_cast<float*>(dx.get_data_handle());
            // One plane per thread at a time: the taps of different output elements meet only
            // within a plane.
#pragma omp parallel for if (planes * oh * ow > parallel_threshold)
            for (int64_t p = 0; p < planes; ++p) {
                float* in = d + p * ih * iw;
                std::memset(in, 0, static_cast<size_t>(ih * iw) * sizeof(float));
                for (int64_t oy = 0; oy < oh; ++oy) {
                    const float* out = s + (p * oh + oy) * ow;
                    const tap& ty = th[static_cast<size_t>(oy)];
                    float* r0 = in + ty.i0 * iw;
                    float* r1 = in + ty.i1 * iw;
                    for (int64_t ox = 0; ox < ow; ++ox) {
                        const tap& tx = tw[static_cast<size_t>(ox)];
                        if (nearest) {
                            r0[tx.i0] += out[ox];
                            continue;
                        }
                        const float a = ty.w0 * out[ox], b = ty.w1 * out[ox];
                        r0[tx.i0] += tx.w0 * a;
                        r0[tx.i1] += tx.w1 * a;
                        r1[tx.i0] += tx.w0 * b;
                        r1[tx.i1] += tx.w1 * b;
                    }
                }
            }
        });
        bb.contribute(in, dx);
    }

private:
    /// Mode, coordinate transformation and rounding, with their defaults per op and opset.
    void read_attributes() {
        const bool legacy = node_.op_type == "Upsample" || node_.opset < 11;
        const std::string mode = node_.get_string("mode", "nearest");
        // Upsample-7 also spells linear "bilinear" in files of its era.
        if (mode == "nearest") nearest_ = true;
        else if (mode == "linear" || (node_.op_type == "Upsample" && mode == "bilinear")) nearest_ = false;
        else refuse(fmt::format("mode '{}' is not supported (only nearest and linear)", mode));
        if (legacy) {
            transform_ = "asymmetric";
            rounding_ = "floor";
            return;
        }
        transform_ = node_.get_string("coordinate_transformation_mode", "half_pixel");
        static const char* const transforms[] = {"half_pixel", "pytorch_half_pixel", "align_corners", "asymmetric", "tf_half_pixel_for_nn",
                                                 "half_pixel_symmetric"};
        if (std::find(std::begin(transforms), std::end(transforms), transform_) == std::end(transforms))
            refuse(fmt::format("coordinate_transformation_mode '{}' is not supported", transform_));
        // Resize-13 dropped tf_half_pixel_for_nn (for half_pixel with round_prefer_ceil).
        if (transform_ == "tf_half_pixel_for_nn" && node_.opset >= 13)
            throw model_error(fmt::format("{}: coordinate_transformation_mode 'tf_half_pixel_for_nn' exists in Resize-11 only", node_.describe()));
        if (transform_ == "half_pixel_symmetric" && node_.opset < 19)
            throw model_error(fmt::format("{}: coordinate_transformation_mode 'half_pixel_symmetric' exists from opset 19", node_.describe()));
        rounding_ = node_.get_string("nearest_mode", "round_prefer_floor");
        static const char* const roundings[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
        if (std::find(std::begin(roundings), std::end(roundings), rounding_) == std::end(roundings))
            refuse(fmt::format("nearest_mode '{}' is not supported", rounding_));
        if (node_.get_int("antialias", 0) != 0) refuse(fmt::format("antialias {} is not supported", node_.get_int("antialias", 0)));
    }

    /// The output shape and the per-axis scales from the scales or sizes input (or attribute).
    void resolve_sizes(engine::forward_builder& fb, const shape_t& x, std::vector<double>& scales, shape_t& y) const {
        const size_t rank = x.size();
        std::vector<float> given_scales;
        std::vector<int64_t> given_sizes;
        if (node_.op_type == "Upsample" && node_.opset < 9) {
            given_scales = node_.get_floats("scales", {});
        } else if (node_.op_type == "Upsample" || node_.opset < 11) {
            const constant& c = fb.constant_input(1, "scales");
            if (c.is_int) throw model_error(fmt::format("{}: scales must be floats", node_.describe()));
            given_scales = c.floats;
        } else {
            if (fb.has_input(2)) {
                const constant& c = fb.constant_input(2, "scales");
                if (c.is_int) throw model_error(fmt::format("{}: scales must be floats", node_.describe()));
                given_scales = c.floats;
            }
            if (fb.has_input(3)) {
                const constant& c = fb.constant_input(3, "sizes");
                if (!c.is_int) throw model_error(fmt::format("{}: sizes must be integers", node_.describe()));
                given_sizes = c.ints;
            }
        }
        // An empty tensor stands for an omitted input (Resize-11's way of skipping scales).
        if (given_scales.empty() == given_sizes.empty())
            throw model_error(fmt::format("{}: exactly one of scales and sizes must be given ({} scales, {} sizes)", node_.describe(),
                                          given_scales.size(), given_sizes.size()));
        std::vector<int64_t> axes;
        if (node_.opset >= 18 && node_.has("axes")) {
            for (int64_t a : node_.get_ints("axes", {})) {
                const int64_t r = static_cast<int64_t>(rank);
                if (a < -r || a >= r) throw model_error(fmt::format("{}: axis {} is out of range for rank {}", node_.describe(), a, rank));
                axes.push_back(a < 0 ? a + r : a);
            }
        } else {
            for (size_t d = 0; d < rank; ++d) axes.push_back(static_cast<int64_t>(d));
        }
        const size_t listed = given_scales.empty() ? given_sizes.size() : given_scales.size();
        if (listed != axes.size())
            throw model_error(fmt::format("{}: {} {} for {} axes", node_.describe(), listed, given_scales.empty() ? "sizes" : "scales", axes.size()));
        if (!given_sizes.empty()) {
            const std::string policy = node_.get_string("keep_aspect_ratio_policy", "stretch");
            if (node_.opset >= 18 && policy != "stretch") refuse(fmt::format("keep_aspect_ratio_policy '{}' is not supported (only stretch)", policy));
        }
        for (size_t i = 0; i < axes.size(); ++i) {
            const size_t a = static_cast<size_t>(axes[i]);
            if (!given_scales.empty()) {
                const double s = given_scales[i];
                if (!(s > 0) || !std::isfinite(s)) throw model_error(fmt::format("{}: scale {} on axis {}", node_.describe(), s, a));
                if (node_.op_type == "Upsample" && s < 1)
                    throw model_error(fmt::format("{}: Upsample's scales must be at least 1; axis {} has {}", node_.describe(), a, s));
                scales[a] = s;
                y[a] = static_cast<int64_t>(std::floor(static_cast<double>(x[a]) * s));
            } else {
                if (given_sizes[i] < 0) throw model_error(fmt::format("{}: size {} on axis {}", node_.describe(), given_sizes[i], a));
                y[a] = given_sizes[i];
                scales[a] = static_cast<double>(y[a]) / static_cast<double>(x[a]);
            }
        }
        // ONNX leaves Resize-10's nearest rounding when shrinking open; runtimes differ (floor or ceil).
        if (nearest_ && node_.opset < 11 && node_.op_type == "Resize")
            for (size_t d = rank - 2; d < rank; ++d)
                if (scales[d] < 1) refuse(fmt::format("nearest downsampling (scale {} on axis {}) in opset 10, whose rounding ONNX leaves open", scales[d], d));
    }

    /// The taps of one axis resized from `in` to `out` at `scale`.
    std::vector<tap> axis_taps(int64_t in, int64_t out, double scale) const {
        std::vector<tap> taps(static_cast<size_t>(out));
        for (int64_t o = 0; o < out; ++o) {
            const double c = static_cast<double>(o);
            double xo;
            if (transform_ == "half_pixel") xo = (c + 0.5) / scale - 0.5;
            else if (transform_ == "pytorch_half_pixel") xo = out > 1 ? (c + 0.5) / scale - 0.5 : 0.0;
            else if (transform_ == "align_corners") xo = out > 1 ? c * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
            else if (transform_ == "asymmetric") xo = c / scale;
            else if (transform_ == "tf_half_pixel_for_nn") xo = (c + 0.5) / scale;
            else { // half_pixel_symmetric: the input's centre maps to the output's
                const double adjustment = static_cast<double>(out) / (scale * static_cast<double>(in));
                xo = static_cast<double>(in) / 2 * (1 - adjustment) + (c + 0.5) / scale - 0.5;
            }
            auto clamp = [in](double v) { return std::clamp<int64_t>(static_cast<int64_t>(v), 0, in - 1); };
            tap& t = taps[static_cast<size_t>(o)];
            if (nearest_) {
                double r;
                if (rounding_ == "round_prefer_floor") r = std::ceil(xo - 0.5);
                else if (rounding_ == "round_prefer_ceil") r = std::floor(xo + 0.5);
                else if (rounding_ == "floor") r = std::floor(xo);
                else r = std::ceil(xo);
                t.i0 = t.i1 = clamp(r);
                continue;
            }
            // Linear: the two neighbours, clamped at the edges (ONNX pads the input by repeating its edge).
            const double f = std::floor(xo);
            t.i0 = clamp(f);
            t.i1 = clamp(f + 1);
            t.w1 = static_cast<float>(xo - f);
            t.w0 = static_cast<float>(1.0 - (xo - f));
        }
        return taps;
    }

    bool nearest_ = true;
    std::string transform_, rounding_;
    shape_t x_, y_;
    std::vector<tap> taps_h_, taps_w_;
};

} // namespace

std::unique_ptr<op> make_resize(const node& n) { return std::make_unique<resize_op>(n); }

} // namespace deepinside::ops
