// Flatten, Reshape, Squeeze, Unsqueeze: views of plain (C-order) memory. Forward converts the input
// to plain layout when it is blocked; backward views the signal with the input's shape.
#include "ops/op.hpp"

namespace deepinside::ops {

namespace {

class reshape_like_op final : public op {
public:
    using op::op;

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        const shape_t y = output_shape(fb, x);
        if (element_count(y) != element_count(x))
            throw model_error(fmt::format("{}: cannot reshape {} into {}", node_.describe(), to_string(x), to_string(y)));
        dnnl::memory src = fb.input_plain(0);
        fb.define_output(0, y, engine::view(fb.eng(), engine::plain_desc(y), src.get_data_handle()));
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const shape_t& y = bb.forward_value(node_.outputs[0]).shape;
        const shape_t& x = bb.forward_value(in).shape;
        dnnl::memory g = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc(y), bb.stack()));
        bb.contribute(in, engine::view(bb.eng(), engine::scale_batch(engine::plain_desc(x), bb.stack()), g.get_data_handle()));
    }

private:
    std::vector<int64_t> axes(engine::forward_builder& fb) const {
        if (node_.opset >= 13) {
            if (!fb.has_input(1)) return {};
            const constant& c = fb.constant_input(1, "axes");
            if (!c.is_int) throw model_error(fmt::format("{}: axes must be integers", node_.describe()));
            return c.ints;
        }
        return node_.get_ints("axes", {});
    }

    int64_t normalise(int64_t axis, size_t rank) const {
        const int64_t r = static_cast<int64_t>(rank);
        if (axis < -r || axis >= r) throw model_error(fmt::format("{}: axis {} out of range for rank {}", node_.describe(), axis, rank));
        return axis < 0 ? axis + r : axis;
    }

    shape_t output_shape(engine::forward_builder& fb, const shape_t& x) const {
        const std::string& t = node_.op_type;
        if (t == "Flatten") {
            const int64_t axis = node_.get_int("axis", 1);
            const int64_t a = axis == static_cast<int64_t>(x.size()) ? axis : normalise(axis, x.size());
            int64_t outer = 1, inner = 1;
            for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) (i < a ? outer : inner) *= x[static_cast<size_t>(i)];
            return {outer, inner};
        }
        if (t == "Reshape") {
            const constant& c = fb.constant_input(1, "shape");
            if (!c.is_int) throw model_error(fmt::format("{}: shape must be int64", node_.describe()));
            const bool allow_zero = node_.get_int("allowzero", 0) != 0;
            shape_t y = c.ints;
            int64_t known = 1, infer = -1;
            for (size_t i = 0; i < y.size(); ++i) {
                if (y[i] == 0 && !allow_zero) {
                    if (i >= x.size()) throw model_error(fmt::format("{}: shape copies axis {} of a rank-{} input", node_.describe(), i, x.size()));
                    y[i] = x[i];
                }
                if (y[i] == -1) {
                    if (infer >= 0) throw model_error(fmt::format("{}: more than one -1 in the shape", node_.describe()));
                    infer = static_cast<int64_t>(i);
                } else if (y[i] < 0) {
                    throw model_error(fmt::format("{}: negative size {} in the shape", node_.describe(), y[i]));
                } else {
                    known *= y[i];
                }
            }
            if (infer >= 0) {
                if (known == 0 || element_count(x) % known != 0)
                    throw model_error(fmt::format("{}: cannot infer -1 reshaping {} into {}", node_.describe(), to_string(x), to_string(c.ints)));
                y[static_cast<size_t>(infer)] = element_count(x) / known;
            }
            return y;
        }
        if (t == "Squeeze") {
            std::vector<int64_t> ax = axes(fb);
            for (auto& a : ax) a = normalise(a, x.size());
            shape_t y;
            for (size_t i = 0; i < x.size(); ++i) {
                const bool listed = std::find(ax.begin(), ax.end(), static_cast<int64_t>(i)) != ax.end();
                if (listed && x[i] != 1) throw model_error(fmt::format("{}: cannot squeeze axis {} of size {}", node_.describe(), i, x[i]));
                if (ax.empty() ? x[i] != 1 : !listed) y.push_back(x[i]);
            }
            return y;
        }
        // Unsqueeze: axes index the output.
        std::vector<int64_t> ax = axes(fb);
        const size_t rank = x.size() + ax.size();
        for (auto& a : ax) a = normalise(a, rank);
        std::sort(ax.begin(), ax.end());
        if (std::adjacent_find(ax.begin(), ax.end()) != ax.end()) throw model_error(fmt::format("{}: repeated axes", node_.describe()));
        shape_t y;
        size_t next = 0;
        for (size_t i = 0; i < rank; ++i)
            y.push_back(std::binary_search(ax.begin(), ax.end(), static_cast<int64_t>(i)) ? 1 : x.at(next++));
        return y;
    }
};

} // namespace

std::unique_ptr<op> make_reshape_like(const node& n) { return std::make_unique<reshape_like_op>(n); }

} // namespace deepinside::ops
