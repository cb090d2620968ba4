// Pad in constant mode.
#include "ops/op.hpp"

namespace deepinside::ops {

namespace {

/// Pad (constant mode): the input is copied into the interior of an output filled once with the
/// constant; backward copies the interior of the signal back.
class pad_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const std::string mode = node_.get_string("mode", "constant");
        if (mode != "constant") refuse(fmt::format("mode '{}' is not supported (only 'constant')", mode));
        std::vector<int64_t> pads;
        float value = 0.0f;
        if (node_.opset < 11) {
            pads = node_.get_ints("pads", node_.get_ints("paddings", {}));
            value = node_.get_float("value", 0.0f);
        } else {
            const constant& p = fb.constant_input(1, "pads");
            if (!p.is_int) throw model_error(fmt::format("{}: pads must be int64", node_.describe()));
            pads = p.ints;
            if (fb.has_input(2)) {
                const constant& v = fb.constant_input(2, "constant_value");
                if (v.is_int || v.floats.size() != 1) throw model_error(fmt::format("{}: constant_value must be one float", node_.describe()));
                value = v.floats[0];
            }
        }
        std::vector<int64_t> axes(x.size());
        for (size_t i = 0; i < x.size(); ++i) axes[i] = static_cast<int64_t>(i);
        if (fb.has_input(3)) {
            const constant& a = fb.constant_input(3, "axes");
            if (!a.is_int) throw model_error(fmt::format("{}: axes must be int64", node_.describe()));
            axes = a.ints;
            for (auto& v : axes) v = v < 0 ? v + static_cast<int64_t>(x.size()) : v;
        }
        if (pads.size() != 2 * axes.size())
            throw model_error(fmt::format("{}: {} pads for {} axes", node_.describe(), pads.size(), axes.size()));
        begin_.assign(x.size(), 0);
        shape_t y = x;
        for (size_t i = 0; i < axes.size(); ++i) {
            const int64_t a = axes[i];
            if (a < 0 || a >= static_cast<int64_t>(x.size())) throw model_error(fmt::format("{}: axis out of range", node_.describe()));
            if (pads[i] < 0 || pads[i + axes.size()] < 0) refuse("negative pads (cropping) are not supported");
            begin_[static_cast<size_t>(a)] = pads[i];
            y[static_cast<size_t>(a)] += pads[i] + pads[i + axes.size()];
        }
        if (begin_[0] != 0 || y[0] != x[0]) refuse("padding the batch axis is not supported");
        dnnl::memory dst = fb.allocate(engine::plain_desc(y));
        std::fill_n(static_cast<float*>(dst.get_data_handle()), element_count(y), value);
        dnnl::memory interior(dst.get_desc().submemory_desc(engine::to_dims(x), begin_), fb.eng(), dst.get_data_handle());
        dnnl::memory src = fb.input_plain(0);
        fb.add(dnnl::reorder(src, interior), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, interior}});
        fb.define_output(0, y, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const shape_t& x = bb.forward_value(in).shape;
        const shape_t& y = bb.forward_value(node_.outputs[0]).shape;
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y), bb.stack()));
        engine::dims xd = engine::to_dims(x);
        xd[0] *= bb.stack();
        dnnl::memory interior(g.get_desc().submemory_desc(xd, begin_), bb.eng(), g.get_data_handle());
        dnnl::memory d = bb.allocate(engine::scale_batch(engine::plain_desc(x), bb.stack()));
        bb.add(dnnl::reorder(interior, d), {{DNNL_ARG_FROM, interior}, {DNNL_ARG_TO, d}});
        bb.contribute(in, d);
    }

private:
    engine::dims begin_;
};

} // namespace

std::unique_ptr<op> make_pad(const node& n) { return std::make_unique<pad_op>(n); }

} // namespace deepinside::ops
