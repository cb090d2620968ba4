#pragma once
// Small helpers over oneDNN memory: plain (C-order) descriptors, the batch-scaled descriptors the
// backward plan uses, and copies between host tensors and oneDNN memory.
#include <deepinside/tensor.hpp>

#include <oneapi/dnnl/dnnl.hpp>

#include <memory_resource>

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
class buffer_arena;
/// `src` converted to layout `want` right now, into `arena` (for constants: weights are converted
/// once, at build time); `src` itself when it has that layout.
dnnl::memory reorder_now(const dnnl::engine& eng, const dnnl::memory& src, const dnnl::memory::desc& want,
                         buffer_arena& arena);
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

namespace deepinside::engine {
/// The storage of one network's buffers: activations, signals, workspaces and converted weights.
/// They all live as long as the network, so they are carved in order out of large blocks
/// (std::pmr::monotonic_buffer_resource) and released together when the network goes.
///
/// The blocks are mapped on their own; those of 8 MiB and more 2 MiB-aligned and advised as
/// transparent huge pages (MADV_HUGEPAGE; nothing changes where the kernel has them off). The
/// forward plan and each backward plan have an arena of their own, so that releasing a plan
/// (network::release_backward_plans) gives its buffers back. A network's first pass writes
/// every buffer for the first time, and the kernel then takes one page fault per 2 MiB instead of
/// one per 4 KiB: ResNet-18 at batch 6 touches about 450 MB on its first saliency pass, and its
/// 116,000 faults were a third of that call's CPU time in a virtual machine (README "Speed").
class buffer_arena {
public:
    buffer_arena();
    buffer_arena(const buffer_arena&) = delete;
    buffer_arena& operator=(const buffer_arena&) = delete;

    /// A memory of `d` whose storage the arena owns (kept until the arena goes).
    dnnl::memory allocate(const dnnl::engine& eng, const dnnl::memory::desc& d);

private:
    /// The upstream of the pool: each block its own 2 MiB-aligned anonymous mapping.
    class huge_page_blocks : public std::pmr::memory_resource {
        void* do_allocate(size_t bytes, size_t alignment) override;
        void do_deallocate(void* p, size_t bytes, size_t alignment) override;
        bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override { return this == &other; }
    };
    huge_page_blocks blocks_;
    std::pmr::monotonic_buffer_resource pool_;
};
} // namespace deepinside::engine
