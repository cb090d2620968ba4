#pragma once
/// Host tensors: dense, row-major (C order), owned by value. This is how tensors cross the public
/// API; inside the engine activations live in oneDNN memory with layouts oneDNN chooses.
#include <cstdint>
#include <string>
#include <vector>

namespace deepinside {

using shape_t = std::vector<int64_t>;

/// Number of elements of a shape; throws input_error when a dimension is negative or the
/// product overflows int64.
int64_t element_count(const shape_t& shape);

/// "[1, 3, 224, 224]"
std::string to_string(const shape_t& shape);

/// A float32 tensor in C order.
struct tensor {
    shape_t shape;
    std::vector<float> data; ///< element_count(shape) values

    tensor() = default;
    explicit tensor(shape_t s);
    tensor(shape_t s, std::vector<float> d);
    int64_t size() const { return static_cast<int64_t>(data.size()); }
};

} // namespace deepinside
