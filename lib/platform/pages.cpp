#include "platform/pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

namespace deepinside::platform {
namespace {
/// madvise() over the `unit`-aligned range lying wholly inside [begin, begin + bytes); failures ignored
/// (advice only).
void advise_inner(const void* begin, size_t bytes, uintptr_t unit, int advice) noexcept {
    const auto first = reinterpret_cast<uintptr_t>(begin), last = first + bytes;
    const uintptr_t lo = (first + unit - 1) / unit * unit, hi = last / unit * unit;
    if (lo < hi) madvise(reinterpret_cast<void*>(lo), hi - lo, advice);
}
} // namespace

void advise_huge_pages(const void* begin, size_t bytes) noexcept {
    advise_inner(begin, bytes, huge_page_bytes, MADV_HUGEPAGE);
}

void release_pages(const void* begin, size_t bytes) noexcept {
    advise_inner(begin, bytes, static_cast<uintptr_t>(sysconf(_SC_PAGESIZE)), MADV_DONTNEED);
}

} // namespace deepinside::platform
