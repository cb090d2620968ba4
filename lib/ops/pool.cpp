// Pooling: MaxPool, AveragePool, GlobalMaxPool, GlobalAveragePool and ReduceMean (over the spatial
// axes as pooling, over other axes as a reduction). Max pooling runs in training mode so that its
// workspace records the switches; backward routes each signal to its window's switch (the paper:
// DeconvNet unpooling = the gradient).
#include "ops/op.hpp"
#include "ops/window.hpp"

namespace deepinside::ops {

namespace {

using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

class pool_op : public op {
public:
    pool_op(const node& n, dnnl::algorithm alg) : op(n), alg_(alg) {}

    void build_forward(engine::forward_builder& fb) override {
        const shape_t& x = fb.input(0).shape;
        if (x.size() != 4) refuse(fmt::format("only 2-D pooling on 4-D inputs is supported (input is {})", to_string(x)));
        configure(x);
        src_dims_ = {x[0], x[1], x[2], x[3]};
        dst_dims_ = {x[0], x[1], win_.out[0], win_.out[1]};
        // Pooling works in whatever layout its input has; keep it.
        dnnl::memory src = fb.input(0).mem;
        auto pd = forward_pd(fb.eng(), src.get_desc(), x[0]);
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}};
        if (alg_ == dnnl::algorithm::pooling_max) {
            workspace_ = fb.allocate(pd.workspace_desc());
            args[DNNL_ARG_WORKSPACE] = workspace_;
        }
        fb.add(dnnl::pooling_v2_forward(pd), std::move(args));
        define(fb, dst);
    }

    void build_backward(engine::backward_builder& bb) override {
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        const int64_t n = src_dims_[0] * bb.stack();
        dnnl::memory::desc diff_src_md = bb.diff_desc(in);
        auto hint = forward_pd(bb.eng(), diff_src_md, n);
        auto d = dst_dims_;
        d[0] = n;
        dnnl::pooling_v2_backward::desc desc(alg_, diff_src_md, {d, dt::f32, tag::any}, {win_.stride[0], win_.stride[1]},
                                             {win_.kernel[0], win_.kernel[1]}, win_.dnnl_dilation(),
                                             {win_.pad_begin[0], win_.pad_begin[1]},
                                             {win_.pad_end_eff[0], win_.pad_end_eff[1]});
        dnnl::pooling_v2_backward::primitive_desc pd(desc, bb.eng(), hint);
        dnnl::memory diff_dst = diff_dst_as(bb, pd.diff_dst_desc());
        dnnl::memory diff_src = bb.allocate(pd.diff_src_desc());
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DIFF_DST, diff_dst}, {DNNL_ARG_DIFF_SRC, diff_src}};
        if (alg_ == dnnl::algorithm::pooling_max) {
            dnnl::memory ws = bb.stacked(workspace_);
            if (ws.get_desc().get_size() != hint.workspace_desc().get_size())
                throw error(fmt::format("internal: {}: stacked workspace layout differs from oneDNN's", node_.describe()));
            args[DNNL_ARG_WORKSPACE] = ws;
        }
        bb.add(dnnl::pooling_v2_backward(pd), std::move(args));
        bb.contribute(in, diff_src);
    }

protected:
    /// Sets win_ from the node and the input shape.
    virtual void configure(const shape_t& x) = 0;
    /// Defines the output (4-D by default; ReduceMean without keepdims drops the spatial axes).
    virtual void define(engine::forward_builder& fb, const dnnl::memory& dst) {
        fb.define_output(0, {dst_dims_.begin(), dst_dims_.end()}, dst);
    }
    virtual dnnl::memory diff_dst_as(engine::backward_builder& bb, const dnnl::memory::desc& want) {
        return bb.diff_as(node_.outputs[0], want);
    }

    dnnl::pooling_v2_forward::primitive_desc forward_pd(const dnnl::engine& eng, const dnnl::memory::desc& src_md,
                                                        int64_t batch) const {
        auto d = dst_dims_;
        d[0] = batch;
        dnnl::pooling_v2_forward::desc desc(dnnl::prop_kind::forward_training, alg_, src_md,
                                            {d, dt::f32, tag::any},
                                            {win_.stride[0], win_.stride[1]}, {win_.kernel[0], win_.kernel[1]},
                                            win_.dnnl_dilation(), {win_.pad_begin[0], win_.pad_begin[1]},
                                            {win_.pad_end_eff[0], win_.pad_end_eff[1]});
        return {desc, eng};
    }

    dnnl::algorithm alg_;
    window win_;
    engine::dims src_dims_, dst_dims_;
    dnnl::memory workspace_;
};

class max_pool_op final : public pool_op {
public:
    explicit max_pool_op(const node& n) : pool_op(n, dnnl::algorithm::pooling_max) {}

private:
    void configure(const shape_t& x) override {
        if (node_.outputs.size() > 1 && !node_.outputs[1].empty()) refuse("the Indices output is not supported");
        const int64_t in_hw[2] = {x[2], x[3]};
        win_ = window::from_node(node_, in_hw, nullptr, true);
    }
};

class average_pool_op final : public pool_op {
public:
    explicit average_pool_op(const node& n) : pool_op(n, dnnl::algorithm::pooling_avg_exclude_padding) {}

private:
    void configure(const shape_t& x) override {
        const int64_t in_hw[2] = {x[2], x[3]};
        win_ = window::from_node(node_, in_hw, nullptr, true);
        if (win_.dilation[0] != 1 || win_.dilation[1] != 1) refuse("dilated average pooling is not supported");
        if (node_.get_int("count_include_pad", 0) != 0) {
            // ONNX counts declared padding but not the extra cells ceil_mode adds; oneDNN would count both.
            if (win_.ceil_padding_added()) refuse("count_include_pad=1 together with ceil_mode windows that pass the padding is not supported");
            alg_ = dnnl::algorithm::pooling_avg_include_padding;
        }
    }
};

class global_pool_op final : public pool_op {
public:
    explicit global_pool_op(const node& n)
        : pool_op(n, n.op_type == "GlobalMaxPool" ? dnnl::algorithm::pooling_max : dnnl::algorithm::pooling_avg_exclude_padding) {}

private:
    void configure(const shape_t& x) override { win_ = whole(x); }

public:
    static window whole(const shape_t& x) {
        window w;
        w.kernel[0] = w.stride[0] = x[2];
        w.kernel[1] = w.stride[1] = x[3];
        return w;
    }
};

/// ReduceMean: over the two spatial axes of a 4-D tensor it is global average pooling; over any other
/// axes but the batch one (the [N, H, W, 1] mean of a decomposed layer norm), a oneDNN reduction
/// forward and a host loop backward that spreads each signal evenly over its reduced elements. The
/// batch axis stays: a stacked backward pass stacks requests along it.
class reduce_mean_op final : public pool_op {
public:
    explicit reduce_mean_op(const node& n) : pool_op(n, dnnl::algorithm::pooling_avg_exclude_padding) {}

private:
    void configure(const shape_t& x) override { win_ = global_pool_op::whole(x); }

    void build_forward(engine::forward_builder& fb) override {
        std::vector<int64_t> axes = node_.get_ints("axes", {});
        if (fb.has_input(1)) {
            const constant& a = fb.constant_input(1, "axes");
            if (!a.is_int) throw model_error(fmt::format("{}: axes must be int64", node_.describe()));
            axes = a.ints;
        }
        const shape_t& x = fb.input(0).shape;
        for (auto& a : axes) a = a < 0 ? a + static_cast<int64_t>(x.size()) : a;
        std::sort(axes.begin(), axes.end());
        keepdims_ = node_.get_int("keepdims", 1) != 0;
        if (x.size() == 4 && axes == std::vector<int64_t>{2, 3}) return pool_op::build_forward(fb);
        if (axes.empty() && node_.opset >= 18 && node_.get_int("noop_with_empty_axes", 0) != 0)
            refuse("noop_with_empty_axes=1 with no axes (an identity) is not supported");
        if (axes.empty()) // every axis
            for (int64_t a = 0; a < static_cast<int64_t>(x.size()); ++a) axes.push_back(a);
        axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
        for (int64_t a : axes)
            if (a < 0 || a >= static_cast<int64_t>(x.size()))
                throw model_error(fmt::format("{}: axis {} is outside the input's rank {}", node_.describe(), a, x.size()));
        if (axes.front() == 0) refuse(fmt::format("the mean over the batch axis is not supported (axes [{}] of {})", fmt::join(axes, ", "), to_string(x)));
        general_ = true;
        in_shape_ = x;
        kept_ = x;
        count_ = 1;
        for (int64_t a : axes) {
            count_ *= x[static_cast<size_t>(a)];
            kept_[static_cast<size_t>(a)] = 1;
        }
        shape_t out;
        for (size_t d = 0; d < x.size(); ++d)
            if (keepdims_ || !std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(d))) out.push_back(kept_[d]);
        const dnnl::memory src = fb.input(0).mem;
        dnnl::reduction::desc desc(dnnl::algorithm::reduction_mean, src.get_desc(), engine::plain_desc(kept_), 0.0f, 0.0f);
        dnnl::reduction::primitive_desc pd(desc, fb.eng());
        dnnl::memory dst = fb.allocate(pd.dst_desc());
        fb.add(dnnl::reduction(pd), {{DNNL_ARG_SRC, src}, {DNNL_ARG_DST, dst}});
        fb.define_output(0, out, engine::view(fb.eng(), engine::plain_desc(out), dst.get_data_handle()));
    }

    void build_backward(engine::backward_builder& bb) override {
        if (!general_) return pool_op::build_backward(bb);
        const std::string& in = node_.inputs[0];
        if (!bb.wants_diff(in)) return;
        shape_t full = in_shape_, kept = kept_;
        full[0] *= bb.stack();
        kept[0] *= bb.stack();
        // The signal is plain over the output's shape: the same bytes as plain over `kept`.
        const shape_t& out_shape = bb.forward_value(node_.outputs[0]).shape;
        shape_t out_stacked = out_shape.empty() ? shape_t{bb.stack()} : out_shape;
        if (!out_shape.empty()) out_stacked[0] *= bb.stack();
        const dnnl::memory g = bb.diff_as(node_.outputs[0], engine::plain_desc(out_stacked));
        const dnnl::memory d = bb.allocate(engine::plain_desc(full));
        const float inv = 1.0f / static_cast<float>(count_);
        bb.add_host([g, d, full, kept, inv] {
            const auto* gs = static_cast<const float*>(g.get_data_handle());
            auto* out = static_cast<float*>(d.get_data_handle());
            const int64_t n = element_count(full);
            std::vector<int64_t> idx(full.size(), 0);
            for (int64_t i = 0; i < n; ++i) {
                int64_t from = 0;
                for (size_t a = 0; a < full.size(); ++a) from = from * kept[a] + (kept[a] == 1 ? 0 : idx[a]);
                out[i] = gs[from] * inv;
                for (int a = static_cast<int>(full.size()) - 1; a >= 0; --a) {
                    if (++idx[static_cast<size_t>(a)] < full[static_cast<size_t>(a)]) break;
                    idx[static_cast<size_t>(a)] = 0;
                }
            }
        });
        bb.contribute(in, d);
    }

    void define(engine::forward_builder& fb, const dnnl::memory& dst) override {
        if (keepdims_) return pool_op::define(fb, dst);
        shape_t out{dst_dims_[0], dst_dims_[1]};
        fb.define_output(0, out, engine::view(fb.eng(), engine::plain_desc(out), dst.get_data_handle()));
    }

    dnnl::memory diff_dst_as(engine::backward_builder& bb, const dnnl::memory::desc& want) override {
        if (keepdims_) return pool_op::diff_dst_as(bb, want);
        // The signal arrives as [N, C]; view it as [N, C, 1, 1] (the same bytes in plain layout).
        dnnl::memory d = bb.diff_as(node_.outputs[0], engine::scale_batch(engine::plain_desc({dst_dims_[0], dst_dims_[1]}), bb.stack()));
        auto dims4 = dst_dims_;
        dims4[0] *= bb.stack();
        dnnl::memory v = engine::view(bb.eng(), {dims4, dt::f32, tag::nchw}, d.get_data_handle());
        if (v.get_desc() == want) return v;
        dnnl::memory out = bb.allocate(want);
        bb.add(dnnl::reorder(v, out), {{DNNL_ARG_FROM, v}, {DNNL_ARG_TO, out}});
        return out;
    }

    bool keepdims_ = true;
    bool general_ = false;         ///< not the spatial mean: the reduction path
    shape_t in_shape_, kept_;      ///< the input's shape, and with 1 on the reduced axes
    int64_t count_ = 1;            ///< elements per mean
};

} // namespace

std::unique_ptr<op> make_max_pool(const node& n) { return std::make_unique<max_pool_op>(n); }
std::unique_ptr<op> make_average_pool(const node& n) { return std::make_unique<average_pool_op>(n); }
std::unique_ptr<op> make_global_pool(const node& n) { return std::make_unique<global_pool_op>(n); }
std::unique_ptr<op> make_reduce_mean(const node& n) { return std::make_unique<reduce_mean_op>(n); }

} // namespace deepinside::ops
