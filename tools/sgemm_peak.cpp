// sgemm_peak: the single-precision matrix-product rate oneDNN reaches on this machine, the yardstick
// of tools/bench.sh's "% of peak" column. oneDNN's direct convolutions use the same FMA kernels as its
// GEMM and seldom beat it at the same thread count and ISA, so this is the practical ceiling the
// engine's GFLOP/s are held to (the hardware's nominal peak is neither measured nor reachable).
//
// Usage: sgemm_peak [--threads T] [--sizes 1024,2048,3072] [--calls N]
// Prints `threads T`, `isa NAME`, one `size N gflops BEST median_gflops MEDIAN` line per size and
// finally `peak_gflops X`, the best rate of all sizes. DNNL_MAX_CPU_ISA caps the ISA as it does for
// deepinside (tools/bench.sh --isa avx2 sets it for both).
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

namespace {

const char* isa_name(dnnl_cpu_isa_t isa) {
    switch (isa) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

[[noreturn]] void usage(const char* why) {
    if (why) std::fprintf(stderr, "sgemm_peak: %s\n", why);
    std::fprintf(why ? stderr : stdout,
                 "usage: sgemm_peak [--threads T] [--sizes 1024,2048,3072] [--calls N]\n"
                 "  oneDNN's dnnl_sgemm (row-major, C = A B, square) at T threads (default 2), each size\n"
                 "  called once to warm up and then N times (default 5); prints the best and median GFLOP/s\n"
                 "  per size and peak_gflops, the best of all. DNNL_MAX_CPU_ISA caps the ISA.\n");
    std::exit(why ? 2 : 0);
}

int positive(const char* text) {
    char* end = nullptr;
    const long v = std::strtol(text, &end, 10);
    if (!*text || *end || v < 1 || v > 100000) usage("expected a positive integer");
    return int(v);
}

} // namespace

int main(int argc, char** argv) {
    int threads = 2, calls = 5;
    std::vector<int> sizes = {1024, 2048, 3072};
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") usage(nullptr);
        if (i + 1 >= argc) usage(("missing value after " + a).c_str());
        if (a == "--threads") {
            threads = positive(argv[++i]);
        } else if (a == "--calls") {
            calls = positive(argv[++i]);
        } else if (a == "--sizes") {
            sizes.clear();
            std::stringstream list(argv[++i]);
            for (std::string s; std::getline(list, s, ',');) sizes.push_back(positive(s.c_str()));
        } else {
            usage(("unknown option " + a).c_str());
        }
    }
    // oneDNN's OpenMP build sizes its thread team from omp_get_max_threads() at each call; set it
    // before the first one so that no call (nor oneDNN's own initialisation) sees another count.
    omp_set_num_threads(threads);
    std::printf("threads %d\nisa %s\n", omp_get_max_threads(), isa_name(dnnl_get_effective_cpu_isa()));

    double peak = 0;
    for (const int n : sizes) {
        const size_t count = size_t(n) * size_t(n);
        // Nonzero, non-denormal operands: some kernels take shortcuts on zeros, denormals are slow.
        std::vector<float> a(count), b(count), c(count, 0.0f);
        for (size_t i = 0; i < count; ++i) {
            a[i] = 0.5f + float(i % 7) * 0.01f;
            b[i] = 0.25f + float(i % 11) * 0.01f;
        }
        auto call = [&] {
            if (dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n) != dnnl_success) {
                std::fprintf(stderr, "sgemm_peak: dnnl_sgemm failed at size %d\n", n);
                std::exit(1);
            }
        };
        call(); // warm-up: page faults on C, the thread team's start, the kernel's JIT generation
        std::vector<double> gflops;
        for (int k = 0; k < calls; ++k) {
            const auto t0 = std::chrono::steady_clock::now();
            call();
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            gflops.push_back(2.0 * double(n) * double(n) * double(n) / s * 1e-9);
        }
        std::sort(gflops.begin(), gflops.end());
        const double median = gflops.size() % 2 ? gflops[gflops.size() / 2] : 0.5 * (gflops[gflops.size() / 2 - 1] + gflops[gflops.size() / 2]);
        // The best call is the rate the machine can reach; the median shows how much a shared machine took away.
        std::printf("size %d gflops %.1f median_gflops %.1f\n", n, gflops.back(), median);
        std::fflush(stdout);
        peak = std::max(peak, gflops.back());
    }
    std::printf("peak_gflops %.1f\n", peak);
    return 0;
}
