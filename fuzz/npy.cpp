// libFuzzer target: deepinside::read_npy on arbitrary bytes.
// The input is written to a file in a private scratch folder (read_npy takes a path) and read back.
// A refusal (deepinside::error: input_error for a malformed file) is the expected outcome; a crash,
// a sanitizer report, a leak, any other exception or a huge allocation is a finding.
#include "fuzz_support.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <exception>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const std::string path = (fuzz_support::scratch_folder().root() / "input.npy").string();
    fuzz_support::overwrite(path, fuzz_support::as_view(data, size));
    try {
        const deepinside::tensor t = deepinside::read_npy(path);
        // A tensor that was accepted must be self-consistent.
        if (deepinside::element_count(t.shape) != t.size()) fuzz_support::die("read_npy: shape and data disagree");
    } catch (const deepinside::error&) {
        // refused: expected for malformed input
    } catch (const std::exception& e) {
        std::fprintf(stderr, "read_npy threw %s\n", e.what());
        fuzz_support::die("exception outside deepinside::error");
    }
    return 0;
}
