#include "engine/memory.hpp"
#include "platform/pages.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <new>

namespace deepinside::engine {

dims to_dims(const shape_t& shape) {
    if (shape.empty()) return {1};
    return dims(shape.begin(), shape.end());
}

dnnl::memory::desc plain_desc(const shape_t& shape) {
    dims d = to_dims(shape);
    dims strides(d.size(), 1);
    for (int i = static_cast<int>(d.size()) - 2; i >= 0; --i) strides[i] = strides[i + 1] * std::max<int64_t>(d[i + 1], 1);
    return dnnl::memory::desc(d, dnnl::memory::data_type::f32, strides);
}

bool is_plain(const dnnl::memory::desc& d, const shape_t& shape) { return d == plain_desc(shape); }

dnnl::memory::desc scale_batch(const dnnl::memory::desc& d, int64_t k) {
    if (k == 1) return d;
    dnnl_memory_desc_t c = d.data;
    if (c.ndims < 1 || c.format_kind != dnnl_blocked || c.dims[0] != c.padded_dims[0] || c.offset0 != 0)
        throw error("internal: cannot stack a tensor whose outermost dimension is padded or not blocked");
    // The outermost dimension must be the slowest: its stride times its size spans the whole buffer.
    auto& blk = c.format_desc.blocking;
    const int64_t elems = static_cast<int64_t>(d.get_size() / dnnl::memory::data_type_size(d.data_type()));
    // A dimension of size 1 has an arbitrary stride: make it the slowest.
    if (c.dims[0] == 1) blk.strides[0] = elems;
    if (blk.strides[0] * c.dims[0] != elems)
        throw error(fmt::format("internal: cannot stack a tensor whose outermost dimension is not the slowest (dims {}, strides {}, {} elements)",
                                fmt::join(d.dims(), "x"), fmt::join(blk.strides, blk.strides + c.ndims, ","), elems));
    c.dims[0] *= k;
    c.padded_dims[0] *= k;
    return dnnl::memory::desc(c);
}

size_t byte_size(const dnnl::memory& m) { return m.get_desc().get_size(); }

} // namespace deepinside::engine

namespace deepinside::engine {
dnnl::memory reorder_now(const dnnl::engine& eng, const dnnl::memory& src, const dnnl::memory::desc& want,
                         buffer_arena& arena) {
    if (src.get_desc() == want) return src;
    dnnl::memory dst = arena.allocate(eng, want);
    dnnl::stream s(eng);
    dnnl::memory from = src;
    dnnl::reorder(from, dst).execute(s, from, dst);
    s.wait();
    return dst;
}
dnnl::memory view(const dnnl::engine& eng, const dnnl::memory::desc& d, void* data) { return dnnl::memory(d, eng, data); }
} // namespace deepinside::engine

namespace deepinside::engine {
dnnl::memory per_channel(const dnnl::engine& eng, const dnnl::memory::desc& like, std::vector<float>& values,
                         std::vector<float>& storage) {
    using tag = dnnl::memory::format_tag;
    const dims full = like.dims();
    dims one(full.size(), 1);
    one[1] = static_cast<int64_t>(values.size());
    const dnnl::memory::desc plain = plain_desc(shape_t(one.begin(), one.end()));
    dnnl::memory src(plain, eng, values.data());
    if (full.size() != 4) return src;
    for (tag t : {tag::aBcd16b, tag::aBcd8b, tag::aBcd4b, tag::acdb}) {
        if (!(dnnl::memory::desc(full, dnnl::memory::data_type::f32, t) == like)) continue;
        const dnnl::memory::desc blocked(one, dnnl::memory::data_type::f32, t);
        storage.assign(blocked.get_size() / sizeof(float), 0.0f);
        dnnl::memory dst(blocked, eng, storage.data());
        dnnl::stream s(eng);
        dnnl::reorder(src, dst).execute(s, src, dst);
        s.wait();
        return dst;
    }
    return src;
}
} // namespace deepinside::engine

namespace deepinside::engine {
namespace {
using platform::huge_page_bytes;
using platform::whole_huge_pages;
/// Blocks from this size on are advised as huge pages: the last huge page a block's buffers reach
/// into is then backed whole, at most a quarter more than the block's buffers need.
constexpr size_t huge_block = 4 * huge_page_bytes;
} // namespace

// A small network's buffers fit in the first 1 MiB block (plain pages); the pool doubles each next
// block, and a block's untouched pages cost no memory.
buffer_arena::buffer_arena() : pool_(size_t{1} << 20, &blocks_) {}

dnnl::memory buffer_arena::allocate(const dnnl::engine& eng, const dnnl::memory::desc& d) {
    const size_t bytes = d.get_size();
#if defined(__SANITIZE_ADDRESS__)
    // Under AddressSanitizer each buffer is its own heap block, so that a kernel or a host loop
    // running past its end is caught there rather than landing in the next buffer of a block.
    return dnnl::memory(d, eng);
#endif
    if (bytes == 0) return dnnl::memory(d, eng);
    return dnnl::memory(d, eng, pool_.allocate(bytes, 64)); // oneDNN's own alignment for CPU buffers
}

void* buffer_arena::huge_page_blocks::do_allocate(size_t bytes, size_t alignment) {
    if (alignment > size_t(sysconf(_SC_PAGESIZE))) throw std::bad_alloc();
    if (bytes < huge_block) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        return p;
    }
    const size_t size = whole_huge_pages(bytes);
    // Mapped one huge page larger, then trimmed to a 2 MiB-aligned start: the kernel backs only
    // aligned 2 MiB ranges with huge pages.
    void* raw = mmap(nullptr, size + huge_page_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<uintptr_t>(raw);
    const uintptr_t aligned = (start + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes;
    if (aligned > start) munmap(raw, aligned - start);
    if (const size_t tail = start + huge_page_bytes - aligned; tail > 0) munmap(reinterpret_cast<void*>(aligned + size), tail);
    platform::advise_huge_pages(reinterpret_cast<void*>(aligned), size);
    return reinterpret_cast<void*>(aligned);
}

void buffer_arena::huge_page_blocks::do_deallocate(void* p, size_t bytes, size_t) {
    munmap(p, bytes < huge_block ? bytes : whole_huge_pages(bytes));
}

} // namespace deepinside::engine
