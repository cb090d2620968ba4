// Softmax and LogSoftmax on oneDNN softmax_v2. Before opset 13 the input is coerced to 2-D at
// `axis` (ONNX's old semantics); from 13 on the op runs along the one axis.
#include "ops/op.hpp"

namespace deepinside::ops {

namespace {

class softmax_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const int64_t rank = static_cast<int64_t>(x.size());
        int64_t axis = node_.get_int("axis", node_.opset < 13 ? 1 : -1);
        if (axis < -rank || axis >= rank) throw model_error(fmt::format("{}: axis {} out of range for rank {}", node_.describe(), axis, rank));
        if (axis < 0) axis += rank;
        if (node_.opset < 13) {
            int64_t outer = 1, inner = 1;
            for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= x[static_cast<size_t>(i)];
            work_shape_ = {outer, inner};
            axis_ = 1;
        } else {
            work_shape_ = x;
            axis_ = static_cast<int>(axis);
        }
        alg_ = node_.op_type == "LogSoftmax" ? dnnl::algorithm::softmax_log : dnnl::algorithm::softmax_accurate;
        dnnl::memory src = engine::view(fb.eng(), engine::plain_desc(work_shape_), fb.input_plain(0).get_data_handle());
        auto pd = forward_pd(fb.eng(), src.get_desc());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        fb.add(dnnl::softmax_v2_forward(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
        fb.define_output(0, x, engine::view(fb.eng(), engine::plain_desc(x), dst.get_data_handle()));
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const std::string& out = node_.outputs[0];
        // Stacking is along the outermost axis, so the coerced 2-D view stacks the same way.
        dnnl::memory::desc md = engine::scale_batch(engine::plain_desc(work_shape_), bb.stack());
        dnnl::memory dst = bb.stacked_forward(out);
        dnnl::memory dst_view = engine::view(bb.eng(), md, dst.get_data_handle());
        dnnl::memory g = bb.diff_as(out, engine::scale_batch(engine::plain_desc(bb.forward_value(out).shape), bb.stack()));
        dnnl::memory g_view = engine::view(bb.eng(), md, g.get_data_handle());
        auto hint = forward_pd(bb.eng(), md);
        dnnl::softmax_v2_backward::desc desc(alg_, md, md, md, axis_);
        dnnl::softmax_v2_backward::primitive_desc pd(desc, bb.eng(), hint);
        dnnl::memory d = bb.allocate(md);
        bb.add(dnnl::softmax_v2_backward(pd), {{DNNL_ARG_DST, dst_view}, {DNNL_ARG_DIFF_DST, g_view}, {DNNL_ARG_DIFF_SRC, d}});
        bb.contribute(in, engine::view(bb.eng(), engine::scale_batch(engine::plain_desc(bb.forward_value(in).shape), bb.stack()),
                                       d.get_data_handle()));
    }

private:
    dnnl::softmax_v2_forward::primitive_desc forward_pd(const dnnl::engine& eng, const dnnl::memory::desc& md) const {
        dnnl::softmax_v2_forward::desc desc(dnnl::prop_kind::forward_training, alg_, md, md, axis_);
        return {desc, eng};
    }

    shape_t work_shape_;
    int axis_ = 1;
    dnnl::algorithm alg_ = dnnl::algorithm::softmax_accurate;
};

} // namespace

std::unique_ptr<op> make_softmax(const node& n) { return std::make_unique<softmax_op>(n); }

} // namespace deepinside::ops
