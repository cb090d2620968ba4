// libFuzzer target: the JPEG decoder behind deepinside::read_image (libjpeg-turbo with the
// project's limits and its handling of damaged-data warnings). See image_target.hpp.
#include "image_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return fuzz_support::fuzz_image(data, size, std::string_view("\xff\xd8\xff", 3), "input.jpg");
}
