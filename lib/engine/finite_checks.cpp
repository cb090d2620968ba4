// The non-finite checks of engine_options::check: a cheap scan after each pass, and only on a hit
// the search for the first tensor (in the order the pass computed them) holding a NaN or infinity.
#include "engine/network_impl.hpp"

#include <deepinside/rules.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace deepinside {

namespace {

/// Splits buffers into chunks for one parallel region: the scans below are one read of every
/// activation or signal, memory-bound, so the network's threads share them (one thread alone took
/// about a tenth of a ResNet-18 saliency pass). Each piece: values, count, index of its buffer.
struct piece {
    const float* values;
    int64_t count;
    size_t buffer;
};

std::vector<piece> pieces_of(const std::vector<const dnnl::memory*>& memories) {
    constexpr int64_t chunk = 1 << 16;
    std::vector<piece> pieces;
    for (size_t b = 0; b < memories.size(); ++b) {
        const auto* values = static_cast<const float*>(memories[b]->get_data_handle());
        const auto count = static_cast<int64_t>(engine::byte_size(*memories[b]) / sizeof(float));
        for (int64_t start = 0; start < count; start += chunk) pieces.push_back({values + start, std::min(chunk, count - start), b});
    }
    return pieces;
}

/// The largest bit pattern of |v| (sign cleared) over `count` floats. Sixteen independent running
/// maxima: a single one (an `omp simd` max reduction) chained every step on the one before and ran
/// at 13 GB/s against the 23 of a plain NaN scan (first_non_finite) on 100 MB here.
uint32_t largest_magnitude_bits(const float* values, int64_t count) {
    constexpr int lanes = 16;
    uint32_t lane_max[lanes] = {};
    int64_t i = 0;
    for (; i + lanes <= count; i += lanes) {
        uint32_t bits[lanes];
        std::memcpy(bits, values + i, sizeof bits);
        for (int j = 0; j < lanes; ++j) lane_max[j] = std::max(lane_max[j], bits[j] & 0x7fffffffu);
    }
    uint32_t m = *std::max_element(lane_max, lane_max + lanes);
    for (; i < count; ++i) m = std::max(m, std::bit_cast<uint32_t>(values[i]) & 0x7fffffffu);
    return m;
}

/// The largest magnitude in each of these memories (padding included), infinity where one holds a
/// NaN or an infinity. The bit patterns of |v| (sign cleared) order as the magnitudes do, with
/// infinity and every NaN above all finite values, so one vectorised integer max answers both.
std::vector<float> largest_magnitudes(const std::vector<const dnnl::memory*>& memories) {
    const std::vector<piece> pieces = pieces_of(memories);
    std::vector<uint32_t> largest_bits(pieces.size());
#pragma omp parallel for schedule(static) if (pieces.size() > 1)
    for (size_t k = 0; k < pieces.size(); ++k) largest_bits[k] = largest_magnitude_bits(pieces[k].values, pieces[k].count);
    std::vector<uint32_t> per_buffer(memories.size(), 0);
    for (size_t k = 0; k < pieces.size(); ++k) per_buffer[pieces[k].buffer] = std::max(per_buffer[pieces[k].buffer], largest_bits[k]);
    std::vector<float> result;
    for (uint32_t bits : per_buffer)
        result.push_back(bits >= 0x7f800000u ? std::numeric_limits<float>::infinity() : std::bit_cast<float>(bits));
    return result;
}

/// Whether any of these memories holds a NaN or an infinity (padding included: a hit is confirmed on
/// the C-order values before anything is reported).
bool any_non_finite(const std::vector<float>& largest) {
    return std::any_of(largest.begin(), largest.end(), [](float m) { return std::isinf(m); });
}

} // namespace

void network::impl::check_forward(const std::vector<tensor>& outs) {
    bool suspect = false;
    if (options.check == finite_check::outputs)
        for (const tensor& t : outs) suspect = suspect || first_non_finite(t.data.data(), t.size()) >= 0;
    if (options.check == finite_check::all) {
        std::vector<const dnnl::memory*> activations;
        for (const std::string& name : tensor_names) activations.push_back(&act(name).mem);
        const std::vector<float> largest = largest_magnitudes(activations);
        suspect = any_non_finite(largest);
        // A tensor an applied activation hides is finite when its bound is: |v| <= FLT_MAX / 2
        // leaves room for every rounding of the sums behind it.
        if (!suspect && !bounds.empty()) {
            std::unordered_map<std::string, double> largest_of;
            for (size_t k = 0; k < largest.size(); ++k) largest_of.emplace(tensor_names[k], largest[k]);
            for (const engine::magnitude_bound& b : bounds) {
                double inputs = 0;
                for (const std::string& in : b.inputs) {
                    const auto it = largest_of.find(in); // (always scanned: a fused-away tensor has no other reader)
                    inputs += it == largest_of.end() ? HUGE_VAL : it->second;
                }
                if (!(b.gain * inputs + b.offset <= double(std::numeric_limits<float>::max()) / 2)) {
                    suspect = true;
                    break;
                }
            }
        }
    }
    if (!suspect) return;
    // With activations fused, a tensor before one is not stored (and its name reads the values after
    // it): the first tensor that is not finite is found by the same pass with every one stored.
    if (activations_fused) recheck_unfused();
    for (const std::string& name : tensor_names) {
        if (fused_away.count(name)) continue;
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

void network::impl::recheck_unfused() {
    engine_options unfused_options = options;
    unfused_options.check = finite_check::all;
    impl unfused(g, input_shape, unfused_options, /*fuse_activations=*/false);
    const dnnl::memory& from = act(input_name).mem;
    std::memcpy(unfused.acts.at(unfused.input_name).mem.get_data_handle(), from.get_data_handle(), engine::byte_size(from));
    engine::run_steps(unfused.forward_steps, unfused.stream);
    unfused.check_forward({});
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
        suspect = suspect || any_non_finite(largest_magnitudes(signals));
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
