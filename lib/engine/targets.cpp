// The five target kinds of a backward request (network.hpp: target::kind) turned into the seed of a
// stacked backward pass: the signal placed at the target tensor before the pass runs.
#include "engine/network_impl.hpp"

#include <deepinside/rules.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace deepinside {

std::string describe_target(const target& t, const std::string& tensor_name) {
    const std::string idx = fmt::format("{}", fmt::join(t.index, ","));
    switch (t.what) {
    case target::kind::class_score: return fmt::format("class {} of '{}'", idx, tensor_name);
    case target::kind::neuron:
        if (t.unit.empty()) return fmt::format("unit {} of '{}'", idx, tensor_name);
        return fmt::format("unit ({}) of channel {} of '{}'", fmt::join(t.unit, ","), idx, tensor_name);
    case target::kind::channel_sum: return fmt::format("the sum of channel {} of '{}'", idx, tensor_name);
    case target::kind::channel_max: return fmt::format("the largest unit of channel {} of '{}'", idx, tensor_name);
    case target::kind::tensor_sum: return fmt::format("the sum of '{}'", tensor_name);
    case target::kind::weighted_sum: return fmt::format("a weighted sum of '{}'", tensor_name);
    }
    return "?";
}

void network::impl::fill_seed(engine::backward_plan& p, const std::vector<backward_request>& requests) {
    const engine::activation& t = act(p.from);
    const int64_t batch = t.shape.empty() ? 1 : t.shape[0];
    const int64_t per_image = element_count(t.shape) / batch;
    auto* seed = static_cast<float*>(p.seed_plain.get_data_handle());
    std::fill_n(seed, per_image * batch * p.stack, 0.0f);
    tensor values; // forward values of the target tensor, read once if a request needs them
    for (size_t k = 0; k < requests.size(); ++k) {
        const target& tg = requests[k].what;
        if (!tg.index.empty() && tg.index.size() != 1 && static_cast<int64_t>(tg.index.size()) != batch)
            throw input_error(fmt::format("target on '{}': {} indices for a batch of {}", p.from, tg.index.size(), batch));
        for (int64_t n = 0; n < batch; ++n) {
            float* s = seed + (static_cast<int64_t>(k) * batch + n) * per_image;
            const int64_t idx = tg.index.empty() ? 0 : tg.index[tg.index.size() == 1 ? 0 : static_cast<size_t>(n)];
            const int64_t channels = t.shape.size() >= 2 ? t.shape[1] : per_image;
            const int64_t plane = t.shape.size() >= 2 ? per_image / channels : 1;
            auto check_index = [&](int64_t limit, const char* what) {
                if (idx < 0 || idx >= limit)
                    throw input_error(fmt::format("{} {} is out of range for tensor '{}' of shape {} (0..{})", what, idx,
                                                  p.from, to_string(t.shape), limit - 1));
            };
            switch (tg.what) {
            case target::kind::class_score:
                if (plane != 1)
                    throw input_error(fmt::format("tensor '{}' of shape {} is not a vector of class scores", p.from, to_string(t.shape)));
                check_index(channels, "class");
                s[idx] = 1.0f;
                break;
            case target::kind::neuron: {
                check_index(channels, "channel");
                int64_t offset = idx * plane;
                if (!tg.unit.empty()) {
                    if (t.shape.size() != 4 || tg.unit.size() != 2 || tg.unit[0] < 0 || tg.unit[0] >= t.shape[2] ||
                        tg.unit[1] < 0 || tg.unit[1] >= t.shape[3])
                        throw input_error(fmt::format("unit ({}) is outside tensor '{}' of shape {}", fmt::join(tg.unit, ","),
                                                      p.from, to_string(t.shape)));
                    offset += tg.unit[0] * t.shape[3] + tg.unit[1];
                } else if (plane != 1) {
                    throw input_error(fmt::format("a neuron of tensor '{}' of shape {} needs a unit (y,x)", p.from, to_string(t.shape)));
                }
                s[offset] = 1.0f;
                break;
            }
            case target::kind::channel_sum:
                check_index(channels, "channel");
                std::fill_n(s + idx * plane, plane, 1.0f);
                break;
            case target::kind::channel_max: {
                check_index(channels, "channel");
                if (values.data.empty()) values = read(p.from);
                const float* v = values.data.data() + n * per_image + idx * plane;
                s[idx * plane + (std::max_element(v, v + plane) - v)] = 1.0f;
                break;
            }
            case target::kind::tensor_sum:
                std::fill_n(s, per_image, 1.0f);
                break;
            case target::kind::weighted_sum:
                if (static_cast<int64_t>(tg.weights.size()) != per_image * batch)
                    throw input_error(fmt::format("weighted target on '{}' of shape {}: {} weights, expected {}", p.from,
                                                  to_string(t.shape), tg.weights.size(), per_image * batch));
                std::copy_n(tg.weights.data() + n * per_image, per_image, s);
                break;
            }
        }
    }
}

} // namespace deepinside
