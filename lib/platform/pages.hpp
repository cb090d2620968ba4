#pragma once
// Advice to the kernel about pages of memory, shared by the reader (weights) and the engine (network
// buffers). On a virtual machine every first touch of a page traps to the host, so a large buffer
// written once costs one trap per 4 KiB unless it is backed by transparent huge pages (one per 2 MiB).
// All of it is advice: where the kernel refuses or has huge pages off, nothing but speed changes.
#include <cstddef>

namespace deepinside::platform {

/// The size of a transparent huge page on x86-64 and of the alignment the kernel needs to use one.
inline constexpr size_t huge_page_bytes = size_t{2} << 20;

/// `bytes` rounded up to whole huge pages.
constexpr size_t whole_huge_pages(size_t bytes) { return (bytes + huge_page_bytes - 1) / huge_page_bytes * huge_page_bytes; }

/// Advises the aligned 2 MiB ranges lying wholly inside [begin, begin + bytes) as huge pages
/// (MADV_HUGEPAGE). The range need not be aligned; partial huge pages at its ends are left alone.
void advise_huge_pages(const void* begin, size_t bytes) noexcept;

/// Returns the whole pages lying inside [begin, begin + bytes) to the kernel (MADV_DONTNEED): their
/// contents are lost, and the caller must never read them again. Partial pages at the ends are kept,
/// so that a heap allocator's bookkeeping next to the range survives.
void release_pages(const void* begin, size_t bytes) noexcept;

} // namespace deepinside::platform
