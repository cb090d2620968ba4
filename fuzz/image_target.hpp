#pragma once
// The body of the PNG and JPEG targets (png.cpp, jpeg.cpp): deepinside::read_image recognises the
// format by its first bytes and takes a path, so each target writes its input to a scratch file.
// An input that does not start with the target's signature gets the signature prepended, so that
// every execution reaches the decoder the target is named after instead of "unknown format".
#include "fuzz_support.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <cstring>
#include <exception>
#include <string>

namespace fuzz_support {

inline int fuzz_image(const uint8_t* data, size_t size, std::string_view signature, const char* file_name) {
    static const std::string path = (scratch_folder().root() / file_name).string();
    static std::string buffer;
    buffer.clear();
    if (size < signature.size() || std::memcmp(data, signature.data(), signature.size()) != 0) buffer += signature;
    buffer.append(as_view(data, size));
    overwrite(path, buffer);

    // 4 Mpixel instead of the default 64: a header claiming the largest allowed size makes every
    // execution allocate and clear the whole image (256 MB at 64 Mpixel in RGBA), which would cut
    // the execution rate by orders of magnitude without reaching other code; the limit check itself
    // is the same code either way (and tests/io checks the default limit).
    deepinside::image_limits limits;
    limits.max_pixels = 4'000'000;
    try {
        const deepinside::image img = deepinside::read_image(path, limits);
        // An accepted image must be self-consistent.
        if (img.width <= 0 || img.height <= 0 || (img.channels != 1 && img.channels != 3) ||
            img.pixels.size() != size_t(img.width) * size_t(img.height) * size_t(img.channels))
            die("read_image returned an inconsistent image");
    } catch (const deepinside::error&) {
        // refused: expected for malformed input
    } catch (const std::exception& e) {
        std::fprintf(stderr, "read_image threw %s\n", e.what());
        die("exception outside deepinside::error");
    }
    return 0;
}

} // namespace fuzz_support
