// ConvTranspose (2-D): the transpose of a convolution, run as oneDNN's convolution backward-data
// with ConvTranspose's input in the role of the convolution's output. Its backward is then the
// convolution forward with the same filters. Being linear, it is exact under every rule (DeconvNet's
// own "deconvolution" layer is this operator).
//
// Output size (ONNX): out = stride·(in − 1) + output_padding + (k − 1)·dilation + 1 − pad_begin −
// pad_end; with output_shape given (or auto_pad SAME_*), the pads are derived from it.
#include "ops/op.hpp"

namespace deepinside::ops {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

class conv_transpose_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        if (x.size() != 4) refuse(fmt::format("only 2-D ConvTranspose on 4-D inputs is supported (input is {})", to_string(x)));
        const constant& w = fb.constant_input(1, "weights");
        if (w.is_int || w.shape.size() != 4)
            throw model_error(fmt::format("{}: weights of shape {} are not 4-D floats", node_.describe(), to_string(w.shape)));
        const int64_t groups = node_.get_int("group", 1);
        if (groups < 1 || x[1] != w.shape[0] || x[1] % groups != 0)
            throw model_error(fmt::format("{}: {} input channels, weights {} and group {} do not fit", node_.describe(), x[1],
                                          to_string(w.shape), groups));
        const int64_t out_channels = w.shape[1] * groups;
        resolve_window(x, w.shape);
        src_dims_ = {x[0], x[1], x[2], x[3]};
        dst_dims_ = {x[0], out_channels, out_hw_[0], out_hw_[1]};
        // As a convolution from the output back to the input: o = input channels, i = output channels.
        weight_dims_ = groups == 1 ? engine::dims{w.shape[0], w.shape[1], w.shape[2], w.shape[3]}
                                   : engine::dims{groups, w.shape[0] / groups, w.shape[1], w.shape[2], w.shape[3]};
        weights_ = w.floats;
        weights_plain_ = engine::view(fb.eng(), {weight_dims_, dt::f32, groups == 1 ? tag::oihw : tag::goihw}, weights_.data());

        const auto hint = conv_pd(fb.eng(), x[0]);
        dnnl::convolution_backward_data::primitive_desc pd(data_desc(x[0]), fb.eng(), hint);
        dnnl::memory src = fb.input_as(0, pd.diff_dst_desc());
        dnnl::memory weights = fb.convert_now(weights_plain_, pd.weights_desc());
        dnnl::memory dst = fb.allocate(pd.diff_src_desc());
        fb.add(dnnl::convolution_backward_data(pd), {{DNNL_ARG_DIFF_DST, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DIFF_SRC, dst}});
        if (fb.has_input(2)) {
            const constant& b = fb.constant_input(2, "bias");
            if (b.is_int || element_count(b.shape) != out_channels)
                throw model_error(fmt::format("{}: bias has {} values for {} output channels", node_.describe(), element_count(b.shape),
                                              out_channels));
            bias_ = b.floats;
            const dnnl::memory bias = engine::per_channel(fb.eng(), dst.get_desc(), bias_, bias_in_layout_);
            dnnl::binary::primitive_desc add(dnnl::binary::desc(dnnl::algorithm::binary_add, dst.get_desc(), bias.get_desc(), dst.get_desc()),
                                             fb.eng());
            fb.add(dnnl::binary(add), {{DNNL_ARG_SRC_0, dst}, {DNNL_ARG_SRC_1, bias}, {DNNL_ARG_DST, dst}});
        }
        fb.define_output(0, {dst_dims_.begin(), dst_dims_.end()}, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const auto pd = conv_pd(bb.eng(), src_dims_[0] * bb.stack());
        dnnl::memory weights = bb.convert_now(weights_plain_, pd.weights_desc());
        dnnl::memory diff_dst = bb.diff_as(node_.outputs[0], pd.src_desc());
        dnnl::memory diff_src = bb.allocate(pd.dst_desc());
        bb.add(dnnl::convolution_forward(pd), {{DNNL_ARG_SRC, diff_dst}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, diff_src}});
        bb.contribute(in, diff_src);
    }

private:
    /// Reads strides, dilations, pads, output_padding, output_shape and auto_pad; sets out_hw_ and the
    /// convolution's padding (pad_end_conv_ absorbs output_padding: see conv_pd).
    void resolve_window(const shape_t& x, const shape_t& w) {
        auto two = [&](const char* attr, int64_t fallback) {
            auto v = node_.get_ints(attr, {fallback, fallback});
            if (v.size() != 2) throw model_error(fmt::format("{}: attribute '{}' needs 2 values, has {}", node_.describe(), attr, v.size()));
            return v;
        };
        const auto strides = two("strides", 1), dilations = two("dilations", 1), out_pad = two("output_padding", 0);
        const auto kernel = node_.get_ints("kernel_shape", {w[2], w[3]});
        if (kernel.size() != 2 || kernel[0] != w[2] || kernel[1] != w[3])
            throw model_error(fmt::format("{}: kernel_shape contradicts the weights' shape", node_.describe()));
        auto pads = node_.get_ints("pads", {0, 0, 0, 0});
        if (pads.size() != 4) throw model_error(fmt::format("{}: attribute 'pads' needs 4 values, has {}", node_.describe(), pads.size()));
        const std::string auto_pad = node_.get_string("auto_pad", "NOTSET");
        if (auto_pad != "NOTSET" && auto_pad != "VALID" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER")
            throw model_error(fmt::format("{}: unknown auto_pad '{}'", node_.describe(), auto_pad));
        const auto output_shape = node_.get_ints("output_shape", {});
        if (!output_shape.empty() && output_shape.size() != 2)
            refuse(fmt::format("output_shape with {} values (only the 2 spatial sizes are supported)", output_shape.size()));
        for (int i = 0; i < 2; ++i) {
            stride_[i] = strides[i];
            dilation_[i] = dilations[i];
            if (strides[i] < 1 || dilations[i] < 1 || w[2 + i] < 1)
                throw model_error(fmt::format("{}: kernel, strides and dilations must be positive", node_.describe()));
            if (out_pad[i] < 0 || (out_pad[i] >= strides[i] && out_pad[i] >= dilations[i]))
                throw model_error(fmt::format("{}: output_padding {} must be smaller than the stride or the dilation", node_.describe(), out_pad[i]));
            extent_[i] = (w[2 + i] - 1) * dilations[i] + 1;
            const int64_t natural = strides[i] * (x[2 + i] - 1) + out_pad[i] + extent_[i];
            if (!output_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
                const int64_t wanted = output_shape.empty() ? x[2 + i] * strides[i] : output_shape[i];
                const int64_t total = natural - wanted;
                if (total < 0)
                    refuse(fmt::format("an output_shape larger than the transposed convolution covers ({} > {})", wanted, natural));
                const bool upper = auto_pad == "SAME_UPPER";
                pad_begin_[i] = upper ? total / 2 : total - total / 2;
                pad_end_[i] = total - pad_begin_[i];
            } else if (auto_pad == "VALID") {
                pad_begin_[i] = pad_end_[i] = 0;
            } else {
                pad_begin_[i] = pads[i];
                pad_end_[i] = pads[i + 2];
                if (pads[i] < 0 || pads[i + 2] < 0) throw model_error(fmt::format("{}: negative pads", node_.describe()));
            }
            out_hw_[i] = natural - pad_begin_[i] - pad_end_[i];
            if (out_hw_[i] < 1) throw model_error(fmt::format("{}: empty output", node_.describe()));
            // The convolution from the output (size out) back to the input (size in) must satisfy oneDNN's
            // in = (out + pad_begin + pad_end_conv − extent) / stride + 1, floored. output_padding
            // rows are output rows no window starts in; any pad_end_conv in the flooring range works,
            // and out + pad_begin + pad_end_conv − extent = stride·(in − 1) + (stride − 1) keeps it ≥ 0.
            pad_end_conv_[i] = strides[i] * (x[2 + i] - 1) + strides[i] - 1 + extent_[i] - out_hw_[i] - pad_begin_[i];
        }
    }

    /// The convolution whose backward-data is this op's forward (and whose forward is its backward).
    dnnl::convolution_forward::primitive_desc conv_pd(const dnnl::engine& eng, int64_t batch) const {
        auto s = src_dims_, d = dst_dims_;
        s[0] = d[0] = batch;
        dnnl::convolution_forward::desc desc(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                             {d, dt::f32, tag::any}, {weight_dims_, dt::f32, tag::any}, {s, dt::f32, tag::any},
                                             {stride_[0], stride_[1]}, {dilation_[0] - 1, dilation_[1] - 1},
                                             {pad_begin_[0], pad_begin_[1]}, {pad_end_conv_[0], pad_end_conv_[1]});
        return {desc, eng};
    }

    dnnl::convolution_backward_data::desc data_desc(int64_t batch) const {
        auto s = src_dims_, d = dst_dims_;
        s[0] = d[0] = batch;
        return {dnnl::algorithm::convolution_direct, {d, dt::f32, tag::any}, {weight_dims_, dt::f32, tag::any},
                {s, dt::f32, tag::any}, {stride_[0], stride_[1]}, {dilation_[0] - 1, dilation_[1] - 1},
                {pad_begin_[0], pad_begin_[1]}, {pad_end_conv_[0], pad_end_conv_[1]}};
    }

    int64_t stride_[2]{1, 1}, dilation_[2]{1, 1}, extent_[2]{1, 1}, pad_begin_[2]{0, 0}, pad_end_[2]{0, 0}, pad_end_conv_[2]{0, 0};
    int64_t out_hw_[2]{1, 1};
    engine::dims src_dims_, dst_dims_, weight_dims_;
    std::vector<float> weights_, bias_, bias_in_layout_;
    dnnl::memory weights_plain_;
};

} // namespace

std::unique_ptr<op> make_conv_transpose(const node& n) { return std::make_unique<conv_transpose_op>(n); }

} // namespace deepinside::ops
