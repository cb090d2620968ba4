#include "io/support.hpp"

#include <deepinside/io.hpp>

#include <array>
#include <cstdio>
#include <random>

// The test makes its JPEGs with libjpeg itself, independent of the decoder under test.
#include <jpeglib.h>
#include <png.h>

using namespace deepinside;
using io_test::check_throws;
using io_test::scratch_dir;

namespace {

// ---- Hand-made PNG files: chunk framing, CRC and a stored (uncompressed) zlib stream ------------

uint32_t crc32_of(const uint8_t* data, size_t size) {
    std::array<uint32_t, 256> table{};
    for (uint32_t n = 0; n < 256; ++n) {
        uint32_t c = n;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(uint8_t(v >> s));
}

void add_chunk(std::vector<uint8_t>& png, const char* type, const std::vector<uint8_t>& data) {
    put_be32(png, static_cast<uint32_t>(data.size()));
    const size_t start = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    put_be32(png, crc32_of(png.data() + start, png.size() - start));
}

/// A zlib stream holding `raw` in one stored block (no compression).
std::vector<uint8_t> zlib_stored(const std::vector<uint8_t>& raw) {
    std::vector<uint8_t> z = {0x78, 0x01, 0x01};
    const auto len = static_cast<uint16_t>(raw.size());
    z.push_back(uint8_t(len & 0xff));
    z.push_back(uint8_t(len >> 8));
    z.push_back(uint8_t(~len & 0xff));
    z.push_back(uint8_t((~len >> 8) & 0xff));
    z.insert(z.end(), raw.begin(), raw.end());
    uint32_t a = 1, b = 0;
    for (uint8_t byte : raw) {
        a = (a + byte) % 65521;
        b = (b + a) % 65521;
    }
    put_be32(z, (b << 16) | a);
    return z;
}

std::vector<uint8_t> ihdr(uint32_t width, uint32_t height, uint8_t depth, uint8_t colour_type, uint8_t interlace = 0) {
    std::vector<uint8_t> d;
    put_be32(d, width);
    put_be32(d, height);
    d.insert(d.end(), {depth, colour_type, 0, 0, interlace});
    return d;
}

/// A PNG from its IHDR fields, filtered scanlines (each row starts with its filter byte) and
/// extra chunks placed before IDAT (PLTE, tRNS).
std::vector<uint8_t> make_png(const std::vector<uint8_t>& header, const std::vector<uint8_t>& scanlines,
                              const std::vector<std::pair<const char*, std::vector<uint8_t>>>& extra = {}) {
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    add_chunk(png, "IHDR", header);
    for (const auto& [type, data] : extra) add_chunk(png, type, data);
    add_chunk(png, "IDAT", zlib_stored(scanlines));
    add_chunk(png, "IEND", {});
    return png;
}

/// Offset of the first byte of the data of the first chunk of `type`.
size_t find_chunk(const std::vector<uint8_t>& png, const char* type) {
    size_t pos = 8;
    while (pos + 8 <= png.size()) {
        const uint32_t len = (uint32_t(png[pos]) << 24) | (uint32_t(png[pos + 1]) << 16) | (uint32_t(png[pos + 2]) << 8) | png[pos + 3];
        if (std::equal(type, type + 4, png.begin() + long(pos) + 4)) return pos + 8;
        pos += 12 + len;
    }
    throw std::runtime_error(std::string("no chunk ") + type);
}

// ---- Images and JPEGs made for the tests ------------------------------------------------------

image random_image(int width, int height, int channels, uint32_t seed) {
    std::mt19937 rng(seed);
    image img{width, height, channels, {}};
    img.pixels.resize(size_t(width) * size_t(height) * size_t(channels));
    for (uint8_t& p : img.pixels) p = static_cast<uint8_t>(rng() & 0xff);
    return img;
}

image smooth_image(int width, int height, int channels) {
    image img{width, height, channels, {}};
    for (int y = 0; y < height; ++y)
        for (int x = 0; x < width; ++x)
            for (int c = 0; c < channels; ++c)
                img.pixels.push_back(static_cast<uint8_t>(40 + x * 100 / (width - 1) + y * 60 / (height - 1) + c * 20));
    return img;
}

std::vector<uint8_t> encode_jpeg(const image& img, int quality, bool progressive = false) {
    jpeg_compress_struct cinfo{};
    jpeg_error_mgr err{};
    cinfo.err = jpeg_std_error(&err);
    jpeg_create_compress(&cinfo);
    unsigned char* buffer = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&cinfo, &buffer, &size);
    cinfo.image_width = static_cast<JDIMENSION>(img.width);
    cinfo.image_height = static_cast<JDIMENSION>(img.height);
    cinfo.input_components = img.channels;
    cinfo.in_color_space = img.channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    if (progressive) jpeg_simple_progression(&cinfo);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = const_cast<uint8_t*>(img.pixels.data()) + size_t(cinfo.next_scanline) * size_t(img.width * img.channels);
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    std::vector<uint8_t> out(buffer, buffer + size);
    jpeg_destroy_compress(&cinfo);
    std::free(buffer);
    return out;
}

/// An Adam7-interlaced 8-bit PNG written with libpng's classic API (our writer never interlaces).
std::vector<uint8_t> encode_interlaced_png(const image& img) {
    std::vector<uint8_t> out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) throw std::runtime_error("libpng failed in the test encoder");
    png_set_write_fn(
        png, &out,
        [](png_structp p, png_bytep data, size_t size) {
            auto* dst = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(p));
            dst->insert(dst->end(), data, data + size);
        },
        [](png_structp) {});
    png_set_IHDR(png, info, png_uint_32(img.width), png_uint_32(img.height), 8,
                 img.channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    std::vector<png_bytep> rows;
    for (int y = 0; y < img.height; ++y)
        rows.push_back(const_cast<uint8_t*>(img.pixels.data()) + size_t(y) * size_t(img.width * img.channels));
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return out;
}

int max_abs_diff(const image& a, const image& b) {
    int worst = 0;
    for (size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
    return worst;
}

} // namespace

BOOST_AUTO_TEST_SUITE(images)

BOOST_AUTO_TEST_CASE(png_round_trip_grey_and_rgb) {
    scratch_dir dir;
    for (int channels : {1, 3}) {
        for (auto [w, h] : {std::pair{1, 1}, std::pair{7, 5}, std::pair{64, 3}}) {
            const image src = random_image(w, h, channels, uint32_t(w * 31 + h + channels));
            write_png(dir.file("rt.png"), src);
            const image back = read_image(dir.file("rt.png"));
            BOOST_TEST(back.width == w);
            BOOST_TEST(back.height == h);
            BOOST_TEST(back.channels == channels);
            BOOST_TEST(back.pixels == src.pixels);
        }
    }
    BOOST_TEST(dir.entries() == std::vector<std::string>{"rt.png"});
}

BOOST_AUTO_TEST_CASE(png_colour_types_are_normalised) {
    scratch_dir dir;
    struct sample {
        std::string name;
        std::vector<uint8_t> png;
        image expected;
    };
    const std::vector<sample> samples = {
        {"palette", make_png(ihdr(2, 1, 8, 3), {0, 1, 0}, {{"PLTE", {255, 0, 0, 0, 0, 255}}}), {2, 1, 3, {0, 0, 255, 255, 0, 0}}},
        {"palette_trns", make_png(ihdr(2, 1, 8, 3), {0, 0, 1}, {{"PLTE", {10, 20, 30, 40, 50, 60}}, {"tRNS", {0, 255}}}),
         {2, 1, 3, {255, 255, 255, 40, 50, 60}}},
        // (100 * 128 + 255 * 127) / 255 = 177.2
        {"grey_alpha", make_png(ihdr(2, 1, 8, 4), {0, 100, 128, 100, 255}), {2, 1, 1, {177, 100}}},
        {"rgba", make_png(ihdr(2, 1, 8, 6), {0, 10, 20, 30, 0, 10, 20, 30, 255}), {2, 1, 3, {255, 255, 255, 10, 20, 30}}},
        // 16-bit samples: 0x1234 / 257 = 18.1, 0xffff -> 255, 0x8000 / 257 = 127.5
        {"rgb16", make_png(ihdr(1, 1, 16, 2), {0, 0x12, 0x34, 0xff, 0xff, 0x80, 0x00}), {1, 1, 3, {18, 255, 128}}},
        {"grey1", make_png(ihdr(3, 1, 1, 0), {0, 0b10100000}), {3, 1, 1, {255, 0, 255}}},
        {"grey2", make_png(ihdr(4, 1, 2, 0), {0, 0b00011011}), {4, 1, 1, {0, 85, 170, 255}}},
        // Adam7 for 2x2: pass 1 holds (0,0), pass 6 holds (1,0), pass 7 holds row 1.
        {"interlaced", make_png(ihdr(2, 2, 8, 0, 1), {0, 11, 0, 22, 0, 33, 44}), {2, 2, 1, {11, 22, 33, 44}}},
        // Filter type 1 (Sub): each byte adds the one to its left.
        {"sub_filter", make_png(ihdr(3, 1, 8, 0), {1, 10, 5, 7}), {3, 1, 1, {10, 15, 22}}},
    };
    for (const sample& s : samples) {
        BOOST_TEST_CONTEXT(s.name) {
            io_test::write_bytes(dir.file(s.name + ".png"), s.png);
            const image img = read_image(dir.file(s.name + ".png"));
            BOOST_TEST(img.width == s.expected.width);
            BOOST_TEST(img.height == s.expected.height);
            BOOST_TEST(img.channels == s.expected.channels);
            BOOST_REQUIRE_EQUAL(img.pixels.size(), s.expected.pixels.size());
            for (size_t i = 0; i < img.pixels.size(); ++i)
                BOOST_TEST(std::abs(int(img.pixels[i]) - int(s.expected.pixels[i])) <= 1, "byte " << i << ": " << int(img.pixels[i]));
        }
    }
}

BOOST_AUTO_TEST_CASE(png_interlaced) {
    scratch_dir dir;
    for (int channels : {1, 3}) {
        const image src = random_image(13, 11, channels, 99);
        io_test::write_bytes(dir.file("adam7.png"), encode_interlaced_png(src));
        const image back = read_image(dir.file("adam7.png"));
        BOOST_TEST(back.channels == channels);
        BOOST_TEST(back.pixels == src.pixels);
    }
}

BOOST_AUTO_TEST_CASE(png_oversized_header_is_refused_before_decoding) {
    scratch_dir dir;
    // IHDR claims 100000 x 100000 RGB; the IDAT is garbage, so any attempt to decode it would
    // fail with a different (zlib) message.
    std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    add_chunk(png, "IHDR", ihdr(100000, 100000, 8, 2));
    add_chunk(png, "IDAT", {0xde, 0xad, 0xbe, 0xef, 0x00, 0x11});
    add_chunk(png, "IEND", {});
    io_test::write_bytes(dir.file("big.png"), png);
    check_throws<input_error>([&] { read_image(dir.file("big.png")); },
                              {dir.file("big.png"), "image claims 100000x100000 pixels, above the limit of 64000000"});

    // A normal image above a lowered limit, and a file above the byte limit.
    write_png(dir.file("small.png"), random_image(20, 10, 3, 7));
    check_throws<input_error>([&] { read_image(dir.file("small.png"), {199, 1 << 20}); }, {"20x10", "limit of 199"});
    BOOST_TEST(read_image(dir.file("small.png"), {200, 1 << 20}).width == 20);
    check_throws<input_error>([&] { read_image(dir.file("small.png"), {1000, 100}); }, {dir.file("small.png"), "limit of 100"});
}

BOOST_AUTO_TEST_CASE(png_corrupt_and_truncated) {
    scratch_dir dir;
    write_png(dir.file("good.png"), smooth_image(40, 30, 3));
    const std::vector<uint8_t> good = io_test::read_bytes(dir.file("good.png"));
    const size_t idat = find_chunk(good, "IDAT");
    const uint32_t idat_len = (uint32_t(good[idat - 8]) << 24) | (uint32_t(good[idat - 7]) << 16) |
                              (uint32_t(good[idat - 6]) << 8) | good[idat - 5];
    BOOST_REQUIRE_GT(idat_len, 40u);

    // Flipped bytes in IDAT: libpng inflates as it reads, so zlib or the chunk CRC catches them.
    std::vector<uint8_t> flipped = good;
    for (size_t i = 10; i < 20; ++i) flipped[idat + i] ^= 0x5a;
    io_test::write_bytes(dir.file("flipped.png"), flipped);
    check_throws<input_error>([&] { read_image(dir.file("flipped.png")); }, {dir.file("flipped.png"), "PNG"});

    // The same with the CRC repaired: now zlib itself must notice.
    std::vector<uint8_t> recrc = flipped;
    const uint32_t crc = crc32_of(recrc.data() + idat - 4, idat_len + 4);
    for (int k = 0; k < 4; ++k) recrc[idat + idat_len + size_t(k)] = uint8_t(crc >> (24 - 8 * k));
    io_test::write_bytes(dir.file("recrc.png"), recrc);
    check_throws<input_error>([&] { read_image(dir.file("recrc.png")); }, {dir.file("recrc.png"), "PNG"});

    // A damaged IHDR: only the CRC can tell.
    std::vector<uint8_t> bad_ihdr = good;
    bad_ihdr[find_chunk(good, "IHDR") + 3] ^= 0x01; // width 40 -> 41
    io_test::write_bytes(dir.file("ihdr.png"), bad_ihdr);
    check_throws<input_error>([&] { read_image(dir.file("ihdr.png")); }, {dir.file("ihdr.png"), "CRC"});

    // A damaged Adler-32 at the end of the zlib stream, chunk CRC repaired: the pixels decode,
    // only the stream checksum is wrong.
    std::vector<uint8_t> bad_adler = good;
    bad_adler[idat + idat_len - 1] ^= 0x01;
    const uint32_t crc2 = crc32_of(bad_adler.data() + idat - 4, idat_len + 4);
    for (int k = 0; k < 4; ++k) bad_adler[idat + idat_len + size_t(k)] = uint8_t(crc2 >> (24 - 8 * k));
    io_test::write_bytes(dir.file("adler.png"), bad_adler);
    check_throws<input_error>([&] { read_image(dir.file("adler.png")); }, {dir.file("adler.png"), "PNG"});

    for (size_t cut : {size_t{8}, size_t{20}, size_t{40}, idat + idat_len / 2, good.size() - 6}) {
        std::vector<uint8_t> truncated(good.begin(), good.begin() + long(cut));
        io_test::write_bytes(dir.file("cut.png"), truncated);
        BOOST_TEST_CONTEXT("cut at " << cut) {
            check_throws<input_error>([&] { read_image(dir.file("cut.png")); }, {dir.file("cut.png")});
        }
    }

    // Random bytes behind a PNG signature.
    std::vector<uint8_t> noise(good.begin(), good.begin() + 8);
    std::mt19937 rng(3);
    for (int i = 0; i < 500; ++i) noise.push_back(uint8_t(rng()));
    io_test::write_bytes(dir.file("noise.png"), noise);
    check_throws<input_error>([&] { read_image(dir.file("noise.png")); }, {dir.file("noise.png"), "PNG"});
}

BOOST_AUTO_TEST_CASE(jpeg_decodes) {
    scratch_dir dir;
    for (int channels : {1, 3}) {
        for (bool progressive : {false, true}) {
            const image src = smooth_image(33, 17, channels);
            io_test::write_bytes(dir.file("s.jpg"), encode_jpeg(src, 95, progressive));
            const image img = read_image(dir.file("s.jpg"));
            BOOST_TEST_CONTEXT("channels " << channels << " progressive " << progressive) {
                BOOST_TEST(img.width == 33);
                BOOST_TEST(img.height == 17);
                BOOST_TEST(img.channels == channels);
                BOOST_REQUIRE_EQUAL(img.pixels.size(), src.pixels.size());
                // Quality 95 on a smooth image: small, bounded loss.
                BOOST_TEST(max_abs_diff(img, src) <= 12);
            }
        }
    }
    // The name does not matter, the bytes do.
    io_test::write_bytes(dir.file("photo.png"), encode_jpeg(smooth_image(8, 8, 3), 90));
    BOOST_TEST(read_image(dir.file("photo.png")).channels == 3);
}

BOOST_AUTO_TEST_CASE(jpeg_matches_pil, *deepinside::test_support::needs_python("numpy PIL")) {
    scratch_dir dir;
    io_test::write_bytes(dir.file("p.jpg"), encode_jpeg(random_image(23, 19, 3, 11), 80));
    BOOST_REQUIRE(io_test::run_python(dir, R"(
import numpy as np
from PIL import Image
a = np.asarray(Image.open('p.jpg').convert('RGB'), dtype=np.float32)
np.save('p.npy', a)
)"));
    const tensor ref = read_npy(dir.file("p.npy"));
    const image img = read_image(dir.file("p.jpg"));
    BOOST_TEST(ref.shape == (shape_t{19, 23, 3}));
    BOOST_REQUIRE_EQUAL(size_t(ref.size()), img.pixels.size());
    float worst = 0;
    for (size_t i = 0; i < img.pixels.size(); ++i) worst = std::max(worst, std::abs(ref.data[i] - float(img.pixels[i])));
    BOOST_TEST(worst <= 1.0f, "largest difference from PIL: " << worst);
}

BOOST_AUTO_TEST_CASE(jpeg_truncated_corrupt_and_oversized) {
    scratch_dir dir;
    const std::vector<uint8_t> good = encode_jpeg(smooth_image(64, 48, 3), 90);
    for (size_t cut : {size_t{3}, size_t{100}, good.size() / 2, good.size() - 2}) {
        io_test::write_bytes(dir.file("cut.jpg"), std::vector<uint8_t>(good.begin(), good.begin() + long(cut)));
        BOOST_TEST_CONTEXT("cut at " << cut) {
            check_throws<input_error>([&] { read_image(dir.file("cut.jpg")); }, {dir.file("cut.jpg"), "JPEG"});
        }
    }
    // Half of the file: libjpeg only warns about it; we refuse.
    io_test::write_bytes(dir.file("half.jpg"), std::vector<uint8_t>(good.begin(), good.begin() + long(good.size() / 2)));
    check_throws<input_error>([&] { read_image(dir.file("half.jpg")); }, {"Premature end of JPEG file"});

    std::vector<uint8_t> noise = {0xff, 0xd8, 0xff};
    std::mt19937 rng(5);
    for (int i = 0; i < 500; ++i) noise.push_back(uint8_t(rng()));
    io_test::write_bytes(dir.file("noise.jpg"), noise);
    check_throws<input_error>([&] { read_image(dir.file("noise.jpg")); }, {dir.file("noise.jpg"), "JPEG"});

    // SOF0 patched to claim 60000 x 60000: refused from the header.
    std::vector<uint8_t> big = good;
    size_t sof = 0;
    for (size_t i = 2; i + 9 < big.size(); ++i)
        if (big[i] == 0xff && big[i + 1] == 0xc0) {
            sof = i;
            break;
        }
    BOOST_REQUIRE_GT(sof, 0u);
    big[sof + 5] = 0xea; // height 0xea60 = 60000
    big[sof + 6] = 0x60;
    big[sof + 7] = 0xea; // width
    big[sof + 8] = 0x60;
    io_test::write_bytes(dir.file("big.jpg"), big);
    check_throws<input_error>([&] { read_image(dir.file("big.jpg")); },
                              {dir.file("big.jpg"), "60000x60000 pixels, above the limit of 64000000"});
}

BOOST_AUTO_TEST_CASE(unknown_formats_and_missing_files) {
    scratch_dir dir;
    const std::vector<std::pair<std::string, std::vector<uint8_t>>> files = {
        {"empty.png", {}},
        {"gif.png", {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0}},
        {"text.jpg", {'h', 'e', 'l', 'l', 'o'}},
        {"half_signature.png", {0x89, 'P', 'N'}},
    };
    for (const auto& [name, bytes] : files) {
        io_test::write_bytes(dir.file(name), bytes);
        check_throws<input_error>([&] { read_image(dir.file(name)); }, {dir.file(name), "PNG and JPEG"});
    }
    check_throws<io_error>([&] { read_image(dir.file("absent.png")); }, {dir.file("absent.png")});
    check_throws<io_error>([&] { read_image(dir.path().string()); }, {dir.path().string()});
}

BOOST_AUTO_TEST_CASE(png_write_failures_leave_nothing) {
    scratch_dir dir;
    const image img = random_image(4, 3, 3, 1);
    const std::string nowhere = dir.file("missing/out.png");
    check_throws<io_error>([&] { write_png(nowhere, img); }, {nowhere});
    std::filesystem::create_directory(dir.file("taken.png"));
    check_throws<io_error>([&] { write_png(dir.file("taken.png"), img); }, {dir.file("taken.png")});
    BOOST_TEST(dir.entries() == std::vector<std::string>{"taken.png"});

    image bad = img;
    bad.channels = 2;
    check_throws<input_error>([&] { write_png(dir.file("bad.png"), bad); }, {dir.file("bad.png"), "channels"});
    bad = img;
    bad.pixels.pop_back();
    check_throws<input_error>([&] { write_png(dir.file("bad.png"), bad); }, {dir.file("bad.png"), "bytes"});
    BOOST_TEST(dir.entries() == std::vector<std::string>{"taken.png"});
}

BOOST_AUTO_TEST_SUITE_END()
