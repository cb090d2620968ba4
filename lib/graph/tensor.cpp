#include <deepinside/errors.hpp>
#include <deepinside/tensor.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

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

tensor::tensor(shape_t s) : shape(std::move(s)), data(static_cast<size_t>(element_count(shape)), 0.0f) {}

tensor::tensor(shape_t s, std::vector<float> d) : shape(std::move(s)), data(std::move(d)) {
    if (element_count(shape) != static_cast<int64_t>(data.size()))
        throw input_error(fmt::format("tensor of shape {} given {} values", to_string(shape), data.size()));
}

} // namespace deepinside
