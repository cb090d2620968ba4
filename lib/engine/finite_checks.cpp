// The non-finite checks of engine_options::check: a cheap scan after each pass, and only on a hit
// the search for the first tensor (in the order the pass computed them) holding a NaN or infinity.
#include "engine/network_impl.hpp"

#include <deepinside/rules.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

namespace deepinside {

namespace {

/// Whether any of these oneDNN memories holds a NaN or an infinity anywhere in its buffer (padding
/// included: a hit is confirmed on the C-order values before anything is reported). One read of every
/// activation or signal, memory-bound: the buffers are cut into chunks shared among the network's
/// threads in one parallel region (one thread alone takes about a tenth of a ResNet-18 saliency pass).
bool any_non_finite(const std::vector<const dnnl::memory*>& memories) {
    constexpr int64_t chunk = 1 << 16;
    std::vector<std::pair<const float*, int64_t>> pieces;
    for (const dnnl::memory* m : memories) {
        const auto* values = static_cast<const float*>(m->get_data_handle());
        const auto count = static_cast<int64_t>(engine::byte_size(*m) / sizeof(float));
        for (int64_t start = 0; start < count; start += chunk)
            pieces.emplace_back(values + start, std::min(chunk, count - start));
    }
    bool found = false;
#pragma omp parallel for schedule(static) reduction(|| : found) if (pieces.size() > 1)
    for (size_t k = 0; k < pieces.size(); ++k) found = found || first_non_finite(pieces[k].first, pieces[k].second) >= 0;
    return found;
}

} // namespace

void network::impl::check_forward(const std::vector<tensor>& outs) {
    bool suspect = false;
    if (options.check == finite_check::outputs)
        for (const tensor& t : outs) suspect = suspect || first_non_finite(t.data.data(), t.size()) >= 0;
    if (options.check == finite_check::all) {
        std::vector<const dnnl::memory*> activations;
        for (const std::string& name : tensor_names) activations.push_back(&act(name).mem);
        suspect = any_non_finite(activations);
    }
    if (!suspect) return;
    for (const std::string& name : tensor_names) {
        const tensor t = read(name);
        const int64_t i = first_non_finite(t.data.data(), t.size());
        if (i < 0) continue;
        const auto producer = g.producer_of(name);
        throw numerical_error(fmt::format(
            "{}: tensor '{}' ({}) holds {} at {}, the first tensor in topological order with a value that is not finite "
            "(from finite input: an overflow, or weights that are not finite)",
            g.source, name, producer ? "output of " + g.nodes[*producer].describe() : std::string("the input"), t.data[size_t(i)],
            index_to_string(t.shape, i)));
    }
    // Only a layout's padding held one: no value of any tensor is affected.
}

std::vector<float> network::impl::signal_slice(const engine::backward_plan& p, const std::string& name, const dnnl::memory& m, int64_t slice) {
    const shape_t& shape = act(name).shape;
    shape_t stacked = shape.empty() ? shape_t{p.stack} : shape;
    if (!shape.empty()) stacked[0] *= p.stack;
    const dnnl::memory::desc plain = engine::plain_desc(stacked);
    std::vector<float> values(static_cast<size_t>(element_count(stacked)));
    if (m.get_desc() == plain) {
        std::memcpy(values.data(), m.get_data_handle(), values.size() * sizeof(float));
    } else {
        dnnl::memory dst(plain, eng, values.data());
        dnnl::memory src = m;
        dnnl::reorder(src, dst).execute(stream, src, dst);
        stream.wait();
    }
    const auto count = static_cast<size_t>(element_count(shape));
    return std::vector<float>(values.begin() + static_cast<long>(count * size_t(slice)),
                              values.begin() + static_cast<long>(count * size_t(slice + 1)));
}

void network::impl::check_backward(const std::vector<backward_request>& requests, const std::vector<tensor>& results,
                    const std::vector<std::pair<engine::backward_plan*, int64_t>>& where) {
    bool suspect = false;
    if (options.check == finite_check::outputs)
        for (const tensor& t : results) suspect = suspect || first_non_finite(t.data.data(), t.size()) >= 0;
    if (options.check == finite_check::all) {
        std::vector<const dnnl::memory*> signals;
        for (const auto& [p, slice] : where)
            if (slice == 0)
                for (const auto& sig : p->signals) signals.push_back(&sig.second);
        suspect = suspect || any_non_finite(signals);
    }
    if (!suspect) return;
    for (size_t k = 0; k < requests.size(); ++k) {
        // Under `outputs`, a request is reported only for what it returns.
        if (options.check == finite_check::outputs && first_non_finite(results[k].data.data(), results[k].size()) < 0) continue;
        const auto& [p, slice] = where[k];
        for (const auto& [name, mem] : p->signals) {
            const std::vector<float> values = signal_slice(*p, name, mem, slice);
            const int64_t i = first_non_finite(values.data(), static_cast<int64_t>(values.size()));
            if (i < 0) continue;
            throw numerical_error(fmt::format(
                "{}: the {} signal for {} holds {} at {} of the signal at tensor '{}', the first tensor of the backward "
                "pass (from the target back) whose signal is not finite",
                g.source, to_string(requests[k].rule), describe_target(requests[k].what, p->from), values[size_t(i)],
                index_to_string(act(name).shape, i), name));
        }
    }
}

} // namespace deepinside
