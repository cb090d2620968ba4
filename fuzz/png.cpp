// libFuzzer target: the PNG decoder behind deepinside::read_image (libpng with the project's
// transforms, limits and error handling). See image_target.hpp.
#include "image_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return fuzz_support::fuzz_image(data, size, std::string_view("\x89PNG\r\n\x1a\n", 8), "input.png");
}
