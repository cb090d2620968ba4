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

/// The C-order position of the first NaN or infinity among `count` values, or -1 when every one is
/// finite. One vectorised pass over the values when they are all finite.
int64_t first_non_finite(const float* values, int64_t count);

/// "[0, 0, 3, 7]": the index in `shape` of C-order position `flat`.
std::string index_to_string(const shape_t& shape, int64_t flat);

/// Throws input_error when `values` (of `shape`) holds a NaN or an infinity, as one line:
/// "WHAT: nan at [0, 0, 3, 7] is not a finite number (1 of 784 values are not); ...", naming the
/// first in C order. One pass over the values when they are all finite.
void require_finite(const shape_t& shape, const float* values, const std::string& what);

/// A float32 tensor in C order.
struct tensor {
    shape_t shape;
    std::vector<float> data; ///< element_count(shape) values

    tensor() = default;
    explicit tensor(shape_t s);
    tensor(shape_t s, std::vector<float> d);
    int64_t size() const { return static_cast<int64_t>(data.size()); }
};

/// require_finite over a tensor's values.
void require_finite(const tensor& t, const std::string& what);

} // namespace deepinside
