// The network's buffer arena (engine/memory.hpp): every buffer is its own, aligned for oneDNN,
// keeps what is written to it while others are carved after it, and may exceed a whole block; the
// blocks are advised as transparent huge pages (outside AddressSanitizer builds, whose buffers are
// heap blocks of their own so that overruns are caught).
#include "support.hpp"

#include "engine/memory.hpp"

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>

namespace di = deepinside;

namespace {

/// The VmFlags of the mapping holding `p` (/proc/self/smaps), or "" when none is found.
std::string mapping_flags(const void* p) {
    std::ifstream smaps("/proc/self/smaps");
    const auto at = reinterpret_cast<uintptr_t>(p);
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        uintptr_t lo = 0, hi = 0;
        char dash = 0;
        std::istringstream head(line);
        if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(' ') != std::string::npos &&
            line.find(':') > line.find(' ')) {
            inside = lo <= at && at < hi;
            continue;
        }
        if (inside && line.rfind("VmFlags:", 0) == 0) return line;
    }
    return "";
}

} // namespace

BOOST_AUTO_TEST_SUITE(buffer_arena)

BOOST_AUTO_TEST_CASE(buffers_are_distinct_aligned_and_keep_their_values) {
    const dnnl::engine eng(dnnl::engine::kind::cpu, 0);
    di::engine::buffer_arena arena;
    // Small and large (beyond the first 1 MiB block, and beyond the 8 MiB from which blocks are huge
    // pages), and one of zero bytes.
    const std::vector<int64_t> counts = {1, 1000, 3, 3 << 20, 17, 6 << 20, 0, 5};
    std::vector<dnnl::memory> buffers;
    for (size_t k = 0; k < counts.size(); ++k) {
        buffers.push_back(arena.allocate(eng, di::engine::plain_desc({counts[k]})));
        auto* v = static_cast<float*>(buffers.back().get_data_handle());
        BOOST_TEST(reinterpret_cast<uintptr_t>(v) % 64 == 0u, "buffer " << k);
        for (int64_t i = 0; i < counts[k]; ++i) v[i] = float(k) + float(i % 7) / 8;
    }
    for (size_t k = 0; k < counts.size(); ++k) {
        const auto* v = static_cast<const float*>(buffers[k].get_data_handle());
        int64_t wrong = 0;
        for (int64_t i = 0; i < counts[k]; ++i) wrong += v[i] != float(k) + float(i % 7) / 8;
        BOOST_TEST(wrong == 0, "buffer " << k);
        // No two buffers overlap.
        const auto lo = reinterpret_cast<uintptr_t>(v), hi = lo + size_t(counts[k]) * sizeof(float);
        for (size_t j = 0; j < k; ++j) {
            const auto jlo = reinterpret_cast<uintptr_t>(buffers[j].get_data_handle());
            const auto jhi = jlo + size_t(counts[j]) * sizeof(float);
            BOOST_TEST((hi <= jlo || jhi <= lo || counts[k] == 0 || counts[j] == 0), "buffers " << j << " and " << k);
        }
    }
    const void* large = buffers[5].get_data_handle();
    const std::string flags = mapping_flags(large);
    BOOST_TEST_MESSAGE("the 24 MiB buffer's mapping: " << flags);
#if defined(__SANITIZE_ADDRESS__)
    BOOST_TEST(flags.find(" hg") == std::string::npos, flags);
#else
    // "hg": advised MADV_HUGEPAGE. A kernel built without transparent huge pages refuses the advice.
    if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled")) BOOST_TEST(flags.find(" hg") != std::string::npos, flags);
#endif
}

BOOST_AUTO_TEST_SUITE_END()
