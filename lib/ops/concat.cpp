// Concat on oneDNN concat; backward copies each input's part of the signal out of a plain view.
#include "ops/op.hpp"

namespace deepinside::ops {

namespace {

class concat_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& first = fb.input_shape(0);
        const int64_t rank = static_cast<int64_t>(first.size());
        int64_t axis = node_.get_int("axis", node_.opset < 4 ? 1 : 0);
        if (!node_.has("axis") && node_.opset >= 4) throw model_error(fmt::format("{}: attribute 'axis' is required", node_.describe()));
        if (axis < -rank || axis >= rank) throw model_error(fmt::format("{}: axis {} out of range for rank {}", node_.describe(), axis, rank));
        axis_ = axis < 0 ? axis + rank : axis;
        std::vector<dnnl::memory::desc> descs;
        std::vector<dnnl::memory> srcs;
        shape_t out = first;
        out[static_cast<size_t>(axis_)] = 0;
        for (size_t i = 0; i < node_.inputs.size(); ++i) {
            const shape_t& s = fb.input_shape(i);
            for (int64_t d = 0; d < rank; ++d)
                if (s.size() != first.size() || (d != axis_ && s[static_cast<size_t>(d)] != first[static_cast<size_t>(d)]))
                    throw model_error(fmt::format("{}: input {} of shape {} does not fit {} along axis {}", node_.describe(), i,
                                                  to_string(s), to_string(first), axis_));
            offsets_.push_back(out[static_cast<size_t>(axis_)]);
            out[static_cast<size_t>(axis_)] += s[static_cast<size_t>(axis_)];
            if (s[static_cast<size_t>(axis_)] == 0) continue; // oneDNN takes no empty sources
            dnnl::memory m;
            if (fb.is_constant(node_.inputs[i])) {
                constants_.push_back(fb.constant_input(i, "input").floats);
                m = engine::view(fb.eng(), engine::plain_desc(s), constants_.back().data());
            } else {
                m = fb.input(i).mem;
            }
            descs.push_back(m.get_desc());
            srcs.push_back(m);
        }
        if (srcs.empty()) refuse("all inputs are empty");
        // Every input in one layout keeps the output in it; mixed layouts meet in plain.
        bool same = true;
        for (auto& d : descs) same = same && d.data.format_kind == descs[0].data.format_kind &&
                                         d.data.format_desc.blocking.inner_nblks == descs[0].data.format_desc.blocking.inner_nblks;
        dnnl::concat::primitive_desc pd = same ? dnnl::concat::primitive_desc(static_cast<int>(axis_), descs, fb.eng())
                                               : dnnl::concat::primitive_desc(engine::plain_desc(out), static_cast<int>(axis_), descs, fb.eng());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DST, dst}};
        for (size_t k = 0; k < srcs.size(); ++k) args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k)] = srcs[k];
        fb.add(dnnl::concat(pd), std::move(args));
        fb.define_output(0, out, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        if (axis_ == 0) {
            for (const auto& in : node_.inputs)
                if (bb.wants_diff(in)) refuse("backward through a concatenation along the batch axis is not supported");
            return;
        }
        const shape_t& y = bb.forward_value(node_.outputs[0]).shape;
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y), bb.stack()));
        for (size_t i = 0; i < node_.inputs.size(); ++i) {
            const std::string& in = node_.inputs[i];
            if (!bb.wants_diff(in)) continue;
            shape_t part = bb.forward_value(in).shape;
            engine::dims part_dims = engine::to_dims(part), offsets(part.size(), 0);
            part_dims[0] *= bb.stack();
            offsets[static_cast<size_t>(axis_)] = offsets_[i];
            dnnl::memory::desc sub = g.get_desc().submemory_desc(part_dims, offsets);
            dnnl::memory view(sub, bb.eng(), g.get_data_handle());
            dnnl::memory d = bb.allocate(engine::scale_batch(engine::plain_desc(part), bb.stack()));
            bb.add(dnnl::reorder(view, d), {{DNNL_ARG_FROM, view}, {DNNL_ARG_TO, d}});
            bb.contribute(in, d);
        }
    }

private:
    int64_t axis_ = 0;
    std::vector<int64_t> offsets_;
    std::vector<std::vector<float>> constants_;
};

} // namespace

std::unique_ptr<op> make_concat(const node& n) { return std::make_unique<concat_op>(n); }

} // namespace deepinside::ops
