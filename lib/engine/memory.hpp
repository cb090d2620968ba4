#pragma once
// Small helpers over oneDNN memory: plain (C-order) descriptors, the batch-scaled descriptors the
// backward plan uses, and copies between host tensors and oneDNN memory.
#include <deepinside/tensor.hpp>

#include <oneapi/dnnl/dnnl.hpp>

namespace deepinside::engine {

using dims = dnnl::memory::dims;

dims to_dims(const shape_t& shape);
/// A C-order f32 descriptor for `shape` (rank 0 becomes [1]).
dnnl::memory::desc plain_desc(const shape_t& shape);
bool is_plain(const dnnl::memory::desc& d, const shape_t& shape);

/// The descriptor of K stacked copies of a batch-N tensor stored as `d`: the outermost dimension
/// becomes N*K with the same layout. Requires the outermost dimension to be unpadded and to be the
/// slowest-varying one (true for every layout oneDNN picks for activations: N is outermost).
dnnl::memory::desc scale_batch(const dnnl::memory::desc& d, int64_t k);

/// Bytes of one oneDNN memory.
size_t byte_size(const dnnl::memory& m);

} // namespace deepinside::engine

namespace deepinside::engine {
/// `src` converted to layout `want` right now (for constants: weights are converted once, at build time).
dnnl::memory reorder_now(const dnnl::engine& eng, const dnnl::memory& src, const dnnl::memory::desc& want);
/// A memory of `d` over caller-owned storage (kept alive by the caller).
dnnl::memory view(const dnnl::engine& eng, const dnnl::memory::desc& d, void* data);
} // namespace deepinside::engine

namespace deepinside::engine {
/// A per-channel constant (`values`, one per channel of axis 1) as memory that broadcasts against
/// activations stored as `like`: in `like`'s own layout where it is one of the common activation
/// layouts (so oneDNN's binary kernels take their fast per-channel path), else plain.
/// The memory views `values`, which the caller keeps alive.
dnnl::memory per_channel(const dnnl::engine& eng, const dnnl::memory::desc& like, std::vector<float>& values,
                         std::vector<float>& storage);
} // namespace deepinside::engine
