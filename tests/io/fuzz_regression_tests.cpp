// Inputs found by the fuzz targets (fuzz/, tools/fuzz.sh, reports/fuzzing.md), kept byte for byte so
// that each fixed finding stays fixed.
#include "io/support.hpp"

#include <deepinside/io.hpp>

#include <algorithm>
#include <cstdint>
#include <vector>

using namespace deepinside;
using io_test::check_throws;
using io_test::scratch_dir;
using io_test::write_bytes;

namespace {

/// Appends bits MSB first with JPEG's byte stuffing (0xFF is followed by 0x00).
struct bit_writer {
    std::vector<uint8_t> out;
    unsigned acc = 0;
    int count = 0;
    void put(unsigned value, int bits) {
        for (int i = bits - 1; i >= 0; --i) {
            acc = (acc << 1) | ((value >> i) & 1u);
            if (++count == 8) {
                out.push_back(static_cast<uint8_t>(acc));
                if (acc == 0xff) out.push_back(0);
                acc = 0;
                count = 0;
            }
        }
    }
    std::vector<uint8_t> finish() { // pad with 1 bits
        if (count) put((1u << (8 - count)) - 1, 8 - count);
        return out;
    }
};

void append_segment(std::vector<uint8_t>& jpeg, uint8_t marker, const std::vector<uint8_t>& payload) {
    const size_t length = payload.size() + 2;
    jpeg.insert(jpeg.end(), {0xff, marker, uint8_t(length >> 8), uint8_t(length & 0xff)});
    jpeg.insert(jpeg.end(), payload.begin(), payload.end());
}

/// A progressive grey JPEG, all blocks 0 (pixels 128): one DC scan, then `ac_scans` identical AC
/// scans (Ss 1, Se 63, Ah 0, Al 0) holding nothing but end-of-band runs. libjpeg accepts the
/// repetition without a warning; each scan is 14 bytes here and a pass over every block.
std::vector<uint8_t> jpeg_with_repeated_scans(uint16_t width, uint16_t height, int ac_scans) {
    const size_t blocks = size_t((width + 7) / 8) * size_t((height + 7) / 8);
    std::vector<uint8_t> jpeg = {0xff, 0xd8};
    std::vector<uint8_t> dqt(65, 1);
    dqt[0] = 0; // 8-bit table 0
    append_segment(jpeg, 0xdb, dqt);
    append_segment(
        jpeg, 0xc2,
        {8, uint8_t(height >> 8), uint8_t(height & 0xff), uint8_t(width >> 8), uint8_t(width & 0xff), 1, 1, 0x11, 0});
    // Huffman tables of a single 1-bit code: class and id, 16 counts of codes by length, symbols.
    const auto one_code_table = [](uint8_t class_and_id, uint8_t symbol) {
        std::vector<uint8_t> table = {class_and_id, 1};
        table.resize(17, 0);
        table.push_back(symbol);
        return table;
    };
    append_segment(jpeg, 0xc4, one_code_table(0x00, 0x00)); // DC table 0: difference category 0
    append_segment(jpeg, 0xc4, one_code_table(0x10, 0xe0)); // AC table 0: EOB14, a run of 16384 + 14 bits

    bit_writer dc;
    for (size_t b = 0; b < blocks; ++b) dc.put(0, 1);
    append_segment(jpeg, 0xda, {1, 1, 0x00, 0, 0, 0x00});
    const auto dc_data = dc.finish();
    jpeg.insert(jpeg.end(), dc_data.begin(), dc_data.end());

    bit_writer ac;
    for (size_t left = blocks; left > 0;) {
        const size_t run = std::min<size_t>(left, 32767);
        left -= run;
        ac.put(0, 1);
        ac.put(static_cast<unsigned>(std::max<size_t>(run, 16384) - 16384), 14);
    }
    const auto ac_data = ac.finish();
    for (int s = 0; s < ac_scans; ++s) {
        append_segment(jpeg, 0xda, {1, 1, 0x00, 1, 63, 0x00});
        jpeg.insert(jpeg.end(), ac_data.begin(), ac_data.end());
    }
    jpeg.insert(jpeg.end(), {0xff, 0xd9});
    return jpeg;
}

} // namespace

BOOST_AUTO_TEST_SUITE(fuzz_regressions)

// fuzz_png, oom-97b39b74bba19c677771f8c8aeccfa500db0acd7: 134 bytes whose tEXt chunk (at byte 83)
// claims 1,195,507,730 bytes. libpng 1.6.39 only warns about a chunk above its 8 MB limit and
// allocated the claimed length before finding the file truncated. The chunk framing is now checked
// against the file size before libpng runs.
BOOST_AUTO_TEST_CASE(png_chunk_longer_than_the_file_is_refused_before_libpng_allocates) {
    const std::vector<uint8_t> file = {
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00,
        0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x04, 0x08, 0x02, 0x00, 0x00, 0x00, 0x26, 0x93, 0x09, 0x29, 0x00,
        0x00, 0x00, 0x04, 0x67, 0x41, 0x61, 0x63, 0x54, 0x4c, 0xb1, 0x8f, 0x0b, 0xfc, 0x61, 0x05, 0x00, 0x00,
        0x00, 0x01, 0x73, 0x52, 0x47, 0x42, 0x00, 0xae, 0xce, 0x1c, 0xe9, 0x00, 0x00, 0x00, 0x09, 0x70, 0x48,
        0x59, 0x73, 0x00, 0x00, 0x0b, 0x33, 0x00, 0x00, 0x9a, 0x9c, 0x18, 0x00, 0x00, 0x73, 0x52, 0x47, 0x42,
        0x00, 0x12, 0x74, 0x45, 0x58, 0x74, 0x43, 0x6f, 0x6d, 0x6d, 0x65, 0x6e, 0x74, 0x00, 0x64, 0x65, 0x65,
        0x70, 0x69, 0x6e, 0x73, 0x69, 0x64, 0x65, 0xbe, 0x41, 0x0c, 0x03, 0xc0, 0xe0, 0x61, 0xb1, 0x18, 0x2c,
        0x06, 0x8b, 0xc1, 0x62, 0xf1, 0x70, 0xf1, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
    };
    scratch_dir dir;
    write_bytes(dir.file("long-text.png"), file);
    check_throws<input_error>([&] { read_image(dir.file("long-text.png")); },
                              {dir.file("long-text.png"), "PNG", "chunk at byte 83 claims 1195507730 bytes"});
}

// The framing check stops at IEND: a valid file with a text chunk and bytes after IEND still reads.
BOOST_AUTO_TEST_CASE(png_framing_check_accepts_text_chunks_and_bytes_after_iend) {
    const std::vector<uint8_t> file = {
        // 2x2 grey, 8 bits: IHDR, tEXt "Comment" = "ok", IDAT, IEND, then "after IEND".
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x00, 0x00, 0x00, 0x57, 0xdd, 0x52, 0xf8, 0x00, 0x00, 0x00,
        0x0a, 0x74, 0x45, 0x58, 0x74, 0x43, 0x6f, 0x6d, 0x6d, 0x65, 0x6e, 0x74, 0x00, 0x6f, 0x6b, 0x03, 0xed, 0xaf,
        0x8d, 0x00, 0x00, 0x00, 0x0e, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x10, 0x50, 0x60, 0x30, 0x70, 0x00,
        0x00, 0x01, 0x76, 0x00, 0xa1, 0xec, 0x30, 0x8a, 0xf4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
        0x42, 0x60, 0x82, 0x61, 0x66, 0x74, 0x65, 0x72, 0x20, 0x49, 0x45, 0x4e, 0x44,
    };
    scratch_dir dir;
    write_bytes(dir.file("text.png"), file);
    const image img = read_image(dir.file("text.png"));
    BOOST_TEST(img.width == 2);
    BOOST_TEST(img.height == 2);
    BOOST_TEST(img.channels == 1);
    BOOST_TEST(img.pixels == (std::vector<uint8_t>{0x10, 0x20, 0x30, 0x40}), boost::test_tools::per_element());
}

// A seed written for fuzz_jpeg (fuzz/make_seeds.py, progressive-many-scans.jpg) rather than a
// mutation: 64 kB of 4,113 repeated scans of a 2000x2000 image took 4 s to decode, 256 kB at
// 8000x8000 13 s. Files with more than 500 scans are now refused as they start decoding.
BOOST_AUTO_TEST_CASE(jpeg_with_more_than_500_scans_is_refused) {
    scratch_dir dir;
    // DC scan + 499 AC scans = 500 scans: decodes (every block 0, so every pixel 128).
    write_bytes(dir.file("500.jpg"), jpeg_with_repeated_scans(24, 16, 499));
    const image img = read_image(dir.file("500.jpg"));
    BOOST_TEST(img.width == 24);
    BOOST_TEST(img.height == 16);
    BOOST_TEST(img.channels == 1);
    BOOST_TEST(std::all_of(img.pixels.begin(), img.pixels.end(), [](uint8_t p) { return p == 128; }));

    write_bytes(dir.file("501.jpg"), jpeg_with_repeated_scans(24, 16, 500));
    check_throws<input_error>([&] { read_image(dir.file("501.jpg")); },
                              {dir.file("501.jpg"), "JPEG has more than 500 scans"});
}

BOOST_AUTO_TEST_SUITE_END()
