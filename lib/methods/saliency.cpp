#include <deepinside/errors.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace deepinside {

tensor saliency_map(const tensor& signal) {
    if (signal.shape.empty()) throw input_error("a saliency map needs a signal with a batch axis");
    if (signal.shape.size() != 4) {
        tensor map(signal.shape);
        std::transform(signal.data.begin(), signal.data.end(), map.data.begin(), [](float v) { return std::fabs(v); });
        return map;
    }
    const int64_t n = signal.shape[0], c = signal.shape[1], hw = signal.shape[2] * signal.shape[3];
    tensor map({n, signal.shape[2], signal.shape[3]});
    for (int64_t b = 0; b < n; ++b)
        for (int64_t k = 0; k < c; ++k)
            for (int64_t i = 0; i < hw; ++i)
                map.data[b * hw + i] = std::max(map.data[b * hw + i], std::fabs(signal.data[(b * c + k) * hw + i]));
    return map;
}

} // namespace deepinside
