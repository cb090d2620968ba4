#include <deepinside/errors.hpp>
#include <deepinside/tensor.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace deepinside {

int64_t element_count(const shape_t& shape) {
    int64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0) throw input_error(fmt::format("shape {} has a negative dimension", to_string(shape)));
        if (d != 0 && n > std::numeric_limits<int64_t>::max() / d)
            throw input_error(fmt::format("shape {} has more elements than int64 can count", to_string(shape)));
        n *= d;
    }
    return n;
}

std::string to_string(const shape_t& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

int64_t first_non_finite(const float* values, int64_t count) {
    // A float is NaN or infinite exactly when its exponent bits are all set. Blocks are scanned with
    // an integer OR that the compiler vectorises; only a block that holds one is searched again.
    constexpr int64_t block = 4096;
    constexpr uint32_t exponent = 0x7f800000u;
    for (int64_t start = 0; start < count; start += block) {
        const int64_t end = std::min(count, start + block);
        uint32_t bad = 0;
#pragma omp simd reduction(| : bad)
        for (int64_t i = start; i < end; ++i) bad |= (std::bit_cast<uint32_t>(values[i]) & exponent) == exponent;
        if (bad)
            for (int64_t i = start; i < end; ++i)
                if (!std::isfinite(values[i])) return i;
    }
    return -1;
}

std::string index_to_string(const shape_t& shape, int64_t flat) {
    shape_t index(shape.size(), 0);
    for (size_t d = shape.size(); d-- > 0;) {
        if (shape[d] <= 0) continue;
        index[d] = flat % shape[d];
        flat /= shape[d];
    }
    return to_string(index);
}

void require_finite(const shape_t& shape, const float* values, const std::string& what) {
    const int64_t count = element_count(shape);
    const int64_t first = first_non_finite(values, count);
    if (first < 0) return;
    const int64_t bad = std::count_if(values + first, values + count, [](float v) { return !std::isfinite(v); });
    throw input_error(fmt::format("{}: {} at {} is not a finite number ({} of {} values are not); the input must be finite",
                                  what, values[first], index_to_string(shape, first), bad, count));
}

void require_finite(const tensor& t, const std::string& what) {
    if (static_cast<int64_t>(t.data.size()) != element_count(t.shape))
        throw input_error(fmt::format("{}: tensor of shape {} holds {} values", what, to_string(t.shape), t.data.size()));
    require_finite(t.shape, t.data.data(), what);
}

tensor::tensor(shape_t s) : shape(std::move(s)), data(static_cast<size_t>(element_count(shape)), 0.0f) {}

tensor::tensor(shape_t s, std::vector<float> d) : shape(std::move(s)), data(std::move(d)) {
    if (element_count(shape) != static_cast<int64_t>(data.size()))
        throw input_error(fmt::format("tensor of shape {} given {} values", to_string(shape), data.size()));
}

} // namespace deepinside
