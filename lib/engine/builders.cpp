#include "engine/builders.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <cstring>

namespace deepinside::engine {

namespace {
std::string layout_key(const dnnl::memory::desc& d) {
    return std::string(reinterpret_cast<const char*>(&d.data), sizeof(d.data));
}
} // namespace

void add_reorder(step_list& steps, const dnnl::memory& src, const dnnl::memory& dst, const std::string& origin) {
    steps.push_back({dnnl::reorder(src, dst), {{DNNL_ARG_FROM, src}, {DNNL_ARG_TO, dst}}, {}, origin});
}

// ---------------------------------------------------------------- forward

bool forward_builder::has_input(size_t i) const { return i < node_->inputs.size() && !node_->inputs[i].empty(); }

const constant& forward_builder::constant_input(size_t i, const char* role) const {
    if (!has_input(i)) throw model_error(fmt::format("{}: missing input {} ({})", node_->describe(), i, role));
    const constant* c = g_.find_constant(node_->inputs[i]);
    if (!c)
        throw unsupported_error(fmt::format("{}: input '{}' ({}) must be a constant (an initializer or Constant node)",
                                            node_->describe(), node_->inputs[i], role));
    return *c;
}

const activation& forward_builder::input(size_t i) const {
    if (!has_input(i)) throw model_error(fmt::format("{}: missing input {}", node_->describe(), i));
    auto it = acts_.find(node_->inputs[i]);
    if (it == acts_.end()) {
        if (is_constant(node_->inputs[i]))
            throw unsupported_error(fmt::format("{}: input '{}' is a constant where this op needs an activation",
                                                node_->describe(), node_->inputs[i]));
        throw model_error(fmt::format("{}: input '{}' is not produced by any earlier node", node_->describe(),
                                      node_->inputs[i]));
    }
    return it->second;
}

const shape_t& forward_builder::input_shape(size_t i) const {
    if (has_input(i))
        if (const constant* c = g_.find_constant(node_->inputs[i])) return c->shape;
    return input(i).shape;
}

dnnl::memory forward_builder::input_as(size_t i, const dnnl::memory::desc& want) {
    const activation& a = input(i);
    if (a.mem.get_desc() == want) return a.mem;
    auto key = std::make_pair(node_->inputs[i], layout_key(want));
    auto it = reordered_.find(key);
    if (it != reordered_.end()) return it->second;
    dnnl::memory dst = allocate(want);
    add_reorder(steps_, a.mem, dst, node_->name);
    reordered_.emplace(key, dst);
    return dst;
}

dnnl::memory forward_builder::input_plain(size_t i) { return input_as(i, plain_desc(input(i).shape)); }

dnnl::memory forward_builder::constant_memory(const std::vector<float>& values, const shape_t& shape) const {
    if (element_count(shape) != static_cast<int64_t>(values.size()))
        throw model_error(fmt::format("{}: constant of {} values used as shape {}", node_->describe(), values.size(),
                                      to_string(shape)));
    dnnl::memory m = allocate(plain_desc(shape));
    if (!values.empty()) std::memcpy(m.get_data_handle(), values.data(), values.size() * sizeof(float));
    return m;
}

dnnl::memory forward_builder::constant_memory(const constant& c, const shape_t& shape) const {
    if (c.is_int) throw model_error(fmt::format("{}: an integer constant is used where floats are needed", node_->describe()));
    return constant_memory(c.floats, shape);
}

void forward_builder::define_output(size_t i, shape_t shape, dnnl::memory mem) {
    if (i >= node_->outputs.size()) throw model_error(fmt::format("{}: has no output {}", node_->describe(), i));
    const std::string& name = node_->outputs[i];
    if (name.empty()) return;
    if (acts_.count(name)) throw model_error(fmt::format("{}: output '{}' is produced twice", node_->describe(), name));
    acts_[name] = activation{std::move(shape), std::move(mem)};
}

void forward_builder::add(dnnl::primitive p, std::unordered_map<int, dnnl::memory> args) {
    steps_.push_back({std::move(p), std::move(args), {}, node_->name});
}

void forward_builder::add_host(std::function<void()> fn) { steps_.push_back({{}, {}, std::move(fn), node_->name}); }

void forward_builder::enable_fusion(std::set<std::string> kept, bool activations, bool bounds_needed) {
    fuse_ = true;
    fuse_activations_ = activations;
    bounds_needed_ = bounds_needed;
    kept_ = std::move(kept);
    for (const value_info& out : g_.outputs) kept_.insert(out.name);
    readers_.clear();
    for (const node& n : g_.nodes)
        for (size_t i = 0; i < n.inputs.size(); ++i)
            if (!n.inputs[i].empty()) readers_[n.inputs[i]].emplace_back(&n, i);
}

const node* forward_builder::sole_consumer(const std::string& tensor) const {
    if (!fuse_ || kept_.count(tensor)) return nullptr;
    auto it = readers_.find(tensor);
    if (it == readers_.end() || it->second.size() != 1 || it->second.front().second != 0) return nullptr;
    return it->second.front().first;
}

// ---------------------------------------------------------------- backward

const activation& backward_builder::forward_value(const std::string& name) const {
    auto it = acts_.find(name);
    if (it == acts_.end()) throw error(fmt::format("internal: no forward value for tensor '{}'", name));
    return it->second;
}

dnnl::memory backward_builder::stacked(const dnnl::memory& m) {
    if (stack_ == 1) return m;
    auto it = stacked_.find(m.get_data_handle());
    if (it != stacked_.end()) return it->second;
    dnnl::memory dst = allocate(scale_batch(m.get_desc(), stack_));
    const size_t bytes = byte_size(m);
    const int64_t copies = stack_;
    dnnl::memory src = m;
    // Copied at the start of every pass: the forward state changes with every forward call.
    prologue_.push_back({{}, {}, [src, dst, bytes, copies]() {
        auto* out = static_cast<char*>(dst.get_data_handle());
        const auto* in = static_cast<const char*>(src.get_data_handle());
        for (int64_t k = 0; k < copies; ++k) std::memcpy(out + k * bytes, in, bytes);
    }, "stack"});
    stacked_.emplace(m.get_data_handle(), dst);
    return dst;
}

dnnl::memory backward_builder::stacked_forward(const std::string& name) { return stacked(forward_value(name).mem); }

dnnl::memory::desc backward_builder::diff_desc(const std::string& name) const {
    return scale_batch(forward_value(name).mem.get_desc(), stack_);
}

dnnl::memory backward_builder::diff(const std::string& name) {
    auto done = finished_.find(name);
    if (done != finished_.end()) return done->second;
    auto it = contributions_.find(name);
    if (it == contributions_.end() || it->second.empty())
        throw error(fmt::format("internal: no signal reaches tensor '{}'", name));
    dnnl::memory result;
    if (it->second.size() == 1) {
        result = it->second.front();
    } else {
        std::vector<dnnl::memory::desc> descs;
        for (auto& m : it->second) descs.push_back(m.get_desc());
        std::vector<float> scales(descs.size(), 1.0f);
        dnnl::sum::primitive_desc pd(diff_desc(name), scales, descs, eng_);
        result = allocate(pd.dst_desc());
        std::unordered_map<int, dnnl::memory> args{{DNNL_ARG_DST, result}};
        for (size_t k = 0; k < it->second.size(); ++k) args[DNNL_ARG_MULTIPLE_SRC + static_cast<int>(k)] = it->second[k];
        steps_.push_back({dnnl::sum(pd), std::move(args), {}, "sum of signals at " + name});
    }
    finished_[name] = result;
    order_.emplace_back(name, result);
    return result;
}

dnnl::memory backward_builder::diff_as(const std::string& name, const dnnl::memory::desc& want) {
    dnnl::memory d = diff(name);
    if (d.get_desc() == want) return d;
    dnnl::memory dst = allocate(want);
    add_reorder(steps_, d, dst, node_ ? node_->name : name);
    return dst;
}

void backward_builder::contribute(const std::string& name, const dnnl::memory& m) {
    if (!wants_diff(name)) return;
    if (finished_.count(name)) throw error(fmt::format("internal: signal at '{}' used before all consumers ran", name));
    dnnl::memory::desc canonical = diff_desc(name);
    if (m.get_desc() == canonical) {
        contributions_[name].push_back(m);
        return;
    }
    const shape_t& shape = forward_value(name).shape;
    shape_t stacked_shape = shape.empty() ? shape_t{stack_} : shape;
    if (!shape.empty()) stacked_shape[0] *= stack_;
    if (m.get_desc().data.ndims != canonical.data.ndims && m.get_desc().get_size() == canonical.get_size() &&
        m.get_desc() == plain_desc(shape_t(m.get_desc().dims().begin(), m.get_desc().dims().end()))) {
        // The same bytes at another rank (a plain view): re-view it, then convert the layout if needed.
        dnnl::memory v(plain_desc(stacked_shape), eng_, m.get_data_handle());
        return contribute(name, v);
    }
    dnnl::memory dst = allocate(canonical);
    add_reorder(steps_, m, dst, node_ ? node_->name : name);
    contributions_[name].push_back(dst);
}

void backward_builder::add(dnnl::primitive p, std::unordered_map<int, dnnl::memory> args) {
    steps_.push_back({std::move(p), std::move(args), {}, node_ ? node_->name : ""});
}

void backward_builder::add_host(std::function<void()> fn) {
    steps_.push_back({{}, {}, std::move(fn), node_ ? node_->name : ""});
}

} // namespace deepinside::engine
