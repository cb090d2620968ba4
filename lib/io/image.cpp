// PNG and JPEG decoding and PNG encoding with libpng and libjpeg(-turbo).
//
// Both libraries report errors by longjmp. Jumping over C++ frames with live destructors is
// undefined behaviour, so every libpng/libjpeg call that may fail runs inside a small "phase"
// function that holds the setjmp and only trivially destructible locals; the C++ objects (buffers,
// the RAII guards that destroy the library state) live in the caller and are reached by pointer.
// The callbacks that jump (error handlers, the read/write functions) hold no C++ objects either.
#include "io/files.hpp"
#include "io/raster.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

namespace deepinside {

namespace {

constexpr unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
constexpr unsigned char jpeg_signature[3] = {0xff, 0xd8, 0xff};

void check_pixel_limit(const std::string& path, uint64_t width, uint64_t height, const image_limits& limits) {
    // Both dimensions fit in 32 bits here, so the product cannot overflow 64 bits.
    if (width * height > static_cast<uint64_t>(limits.max_pixels))
        throw input_error(fmt::format("{}: image claims {}x{} pixels, above the limit of {}", path, width, height,
                                      limits.max_pixels));
}

/// Removes the alpha channel (the last of `src_channels`) by compositing over white, in place.
void composite_on_white(std::vector<uint8_t>& pixels, int src_channels) {
    const int colour = src_channels - 1;
    const size_t count = pixels.size() / static_cast<size_t>(src_channels);
    uint8_t* dst = pixels.data();
    const uint8_t* src = pixels.data();
    for (size_t i = 0; i < count; ++i, src += src_channels, dst += colour) {
        const unsigned a = src[colour];
        for (int c = 0; c < colour; ++c) dst[c] = static_cast<uint8_t>((src[c] * a + 255u * (255u - a) + 127u) / 255u);
    }
    pixels.resize(count * static_cast<size_t>(colour));
}

// ---- PNG --------------------------------------------------------------------------------------

/// Shared by the libpng callbacks; plain data so that longjmp may cross it.
struct png_context {
    const uint8_t* src = nullptr; ///< the whole file (reading)
    size_t src_size = 0;
    size_t src_pos = 0;
    io_detail::atomic_file* dst = nullptr; ///< writing
    char message[256] = {};
    bool io_failed = false; ///< the message is an io_error from the destination file
};

void png_error_handler(png_structp png, png_const_charp message) {
    auto* ctx = static_cast<png_context*>(png_get_error_ptr(png));
    std::snprintf(ctx->message, sizeof ctx->message, "%s", message ? message : "unknown libpng error");
    png_longjmp(png, 1);
}

// libpng warnings are about benign oddities (an unusual iCCP profile, a bad ancillary chunk that
// it skips); the data errors that matter are raised as errors.
void png_warning_handler(png_structp, png_const_charp) {}

void png_read_from_memory(png_structp png, png_bytep dst, size_t size) {
    auto* ctx = static_cast<png_context*>(png_get_io_ptr(png));
    if (ctx->src_size - ctx->src_pos < size) png_error(png, "the file is truncated");
    std::memcpy(dst, ctx->src + ctx->src_pos, size);
    ctx->src_pos += size;
}

void png_write_to_file(png_structp png, png_bytep src, size_t size) {
    auto* ctx = static_cast<png_context*>(png_get_io_ptr(png));
    bool ok = true;
    try {
        ctx->dst->write(src, size);
    } catch (const std::exception& e) {
        std::snprintf(ctx->message, sizeof ctx->message, "%s", e.what());
        ctx->io_failed = true;
        ok = false;
    }
    // Jump only after the exception object is gone.
    if (!ok) png_longjmp(png, 1);
}

void png_flush_nothing(png_structp) {}

struct png_read_guard {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~png_read_guard() {
        if (png) png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    }
};

struct png_write_guard {
    png_structp png = nullptr;
    png_infop info = nullptr;
    ~png_write_guard() {
        if (png) png_destroy_write_struct(&png, info ? &info : nullptr);
    }
};

struct png_header {
    png_uint_32 width = 0, height = 0;
    int channels = 0; ///< after the transforms: 1..4
    size_t row_bytes = 0;
    int passes = 1; ///< 7 for Adam7-interlaced images
};

bool png_phase_read_info(png_structp png, png_infop info, png_header* header) {
    if (setjmp(png_jmpbuf(png))) return false;
    // libpng's default limit of 1e6 per dimension would refuse a 2e6 x 1 image that our pixel
    // limit allows; our check, made right after, gives the clearer message.
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);
    header->width = png_get_image_width(png, info);
    header->height = png_get_image_height(png, info);
    return true;
}

bool png_phase_set_transforms(png_structp png, png_infop info, png_header* header) {
    if (setjmp(png_jmpbuf(png))) return false;
    const int colour_type = png_get_color_type(png, info);
    const int bit_depth = png_get_bit_depth(png, info);
    if (colour_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (colour_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (bit_depth == 16) png_set_scale_16(png);
    header->passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    header->channels = png_get_channels(png, info);
    header->row_bytes = png_get_rowbytes(png, info);
    return true;
}

bool png_phase_read_pixels(png_structp png, const png_header* header, uint8_t* dst) {
    if (setjmp(png_jmpbuf(png))) return false;
    // Row by row rather than png_read_image: no array of row pointers (8 bytes per row) for tall
    // images. Interlaced images take every pass over the same rows, which libpng fills in.
    for (int pass = 0; pass < header->passes; ++pass)
        for (png_uint_32 y = 0; y < header->height; ++y) png_read_row(png, dst + size_t{y} * header->row_bytes, nullptr);
    png_read_end(png, nullptr);
    return true;
}

/// Refuses a file whose chunks, up to IEND, claim more bytes than the file holds. libpng allocates
/// a buffer of a chunk's declared length before reading text, eXIf, sPLT, pCAL and sCAL chunks,
/// and since 1.6.39 a length above its 8 MB chunk limit is only a (benign) warning: a 134-byte
/// file whose tEXt chunk claims 1.2 GB made it allocate 1.2 GB before finding the file truncated
/// (found by fuzz/png.cpp). Checking the framing first bounds every such buffer by the file size;
/// libpng would refuse a file truncated before IEND anyway, so no valid file is affected.
void check_png_chunk_lengths(const std::string& path, const std::vector<uint8_t>& file) {
    size_t pos = sizeof png_signature;
    while (file.size() - pos >= 8) {
        const uint64_t length = uint64_t{file[pos]} << 24 | uint64_t{file[pos + 1]} << 16 |
                                uint64_t{file[pos + 2]} << 8 | uint64_t{file[pos + 3]};
        const bool iend = std::memcmp(file.data() + pos + 4, "IEND", 4) == 0;
        const uint64_t remaining = file.size() - pos - 8; // bytes after the length and type fields
        if (length + 4 > remaining) // the data and the CRC
            throw input_error(fmt::format("{}: corrupt or truncated PNG: the chunk at byte {} claims {} bytes of data, "
                                          "but only {} bytes follow its header",
                                          path, pos, length, remaining));
        if (iend) return;
        pos += 8 + length + 4;
    }
    // Fewer than 8 bytes left before any IEND: libpng reports the truncation itself.
}

image decode_png(const std::string& path, const std::vector<uint8_t>& file, const image_limits& limits) {
    check_png_chunk_lengths(path, file);
    png_context ctx;
    ctx.src = file.data();
    ctx.src_size = file.size();
    png_read_guard guard;
    guard.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_handler, png_warning_handler);
    if (!guard.png) throw io_error(fmt::format("{}: cannot initialise libpng", path));
    guard.info = png_create_info_struct(guard.png);
    if (!guard.info) throw io_error(fmt::format("{}: cannot initialise libpng", path));
    png_set_read_fn(guard.png, &ctx, png_read_from_memory);

    const auto fail = [&] { return input_error(fmt::format("{}: corrupt or truncated PNG: {}", path, ctx.message)); };
    png_header header;
    if (!png_phase_read_info(guard.png, guard.info, &header)) throw fail();
    check_pixel_limit(path, header.width, header.height, limits);
    if (!png_phase_set_transforms(guard.png, guard.info, &header)) throw fail();
    if (header.channels < 1 || header.channels > 4 || header.row_bytes != size_t{header.width} * header.channels)
        throw input_error(fmt::format("{}: unsupported PNG layout ({} channels, {} bytes per row)", path, header.channels,
                                      header.row_bytes));

    image dst;
    dst.width = static_cast<int>(header.width);
    dst.height = static_cast<int>(header.height);
    dst.pixels.resize(header.row_bytes * header.height);
    if (!png_phase_read_pixels(guard.png, &header, dst.pixels.data())) throw fail();

    if (header.channels == 2 || header.channels == 4) composite_on_white(dst.pixels, header.channels);
    dst.channels = header.channels >= 3 ? 3 : 1;
    return dst;
}

bool png_phase_write(png_structp png, png_infop info, const image* src, png_bytepp rows) {
    if (setjmp(png_jmpbuf(png))) return false;
    png_set_IHDR(png, info, static_cast<png_uint_32>(src->width), static_cast<png_uint_32>(src->height), 8,
                 src->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rows);
    png_write_end(png, nullptr);
    return true;
}

// ---- JPEG -------------------------------------------------------------------------------------

/// libjpeg's error manager extended with where to jump; `manager` must stay the first member so
/// that the callbacks can recover the whole struct from cinfo->err.
struct jpeg_context {
    jpeg_error_mgr manager;
    jpeg_progress_mgr progress;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool too_many_scans;
};
static_assert(std::is_standard_layout_v<jpeg_context>);

/// A progressive JPEG may repeat a scan any number of times, and every scan costs a pass over all
/// the blocks of the image however few bytes it holds (the exploit of libjpeg-turbo's report "Two
/// Issues with the JPEG Standard"): a crafted 64 kB file of 4,113 empty scans took 4 s to decode at
/// 2000x2000 in fuzz_jpeg, a 256 kB one 13 s at 8000x8000 with the CLI. Encoders write about 10
/// scans; libjpeg-turbo's own guard (TJFLAG_LIMITSCANS of its TurboJPEG API) is this same
/// progress-monitor check with a limit of 500.
constexpr int max_jpeg_scans = 500;

[[noreturn]] void jpeg_error_handler(j_common_ptr cinfo) {
    auto* ctx = reinterpret_cast<jpeg_context*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, ctx->message);
    std::longjmp(ctx->jump, 1);
}

// libjpeg reports damaged data as warnings and carries on with grey or repeated blocks; for
// untrusted input a damaged image is an error. Other warnings (unknown JFIF revision, unknown
// Adobe transform) are harmless.
void jpeg_message_handler(j_common_ptr cinfo, int level) {
    if (level >= 0) return; // trace messages
    switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_MUST_RESYNC:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
    case JWRN_EXTRANEOUS_DATA: jpeg_error_handler(cinfo);
    default: ++cinfo->err->num_warnings;
    }
}

// Called by libjpeg between steps of the decoding, after each new scan has started.
void jpeg_progress_handler(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor || reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number <= max_jpeg_scans)
        return;
    auto* ctx = reinterpret_cast<jpeg_context*>(cinfo->err);
    ctx->too_many_scans = true;
    std::longjmp(ctx->jump, 1);
}

struct jpeg_guard {
    jpeg_decompress_struct* cinfo;
    ~jpeg_guard() { jpeg_destroy_decompress(cinfo); } // safe on a partly created struct
};

bool jpeg_phase_read_header(jpeg_decompress_struct* cinfo, jpeg_context* ctx, const uint8_t* src, size_t size) {
    if (setjmp(ctx->jump)) return false;
    jpeg_create_decompress(cinfo);
    jpeg_mem_src(cinfo, src, static_cast<unsigned long>(size));
    jpeg_read_header(cinfo, TRUE);
    return true;
}

bool jpeg_phase_start(jpeg_decompress_struct* cinfo, jpeg_context* ctx) {
    if (setjmp(ctx->jump)) return false;
    jpeg_start_decompress(cinfo);
    return true;
}

bool jpeg_phase_read_pixels(jpeg_decompress_struct* cinfo, jpeg_context* ctx, uint8_t* dst, size_t row_bytes) {
    if (setjmp(ctx->jump)) return false;
    while (cinfo->output_scanline < cinfo->output_height) {
        JSAMPROW row = dst + size_t{cinfo->output_scanline} * row_bytes;
        jpeg_read_scanlines(cinfo, &row, 1);
    }
    jpeg_finish_decompress(cinfo);
    return true;
}

image decode_jpeg(const std::string& path, const std::vector<uint8_t>& file, const image_limits& limits) {
    if (file.size() > std::numeric_limits<unsigned long>::max())
        throw input_error(fmt::format("{}: JPEG file too large", path));
    jpeg_decompress_struct cinfo{};
    jpeg_context ctx{};
    cinfo.err = jpeg_std_error(&ctx.manager);
    ctx.manager.error_exit = jpeg_error_handler;
    ctx.manager.emit_message = jpeg_message_handler;
    jpeg_guard guard{&cinfo};

    const auto fail = [&] {
        if (ctx.too_many_scans)
            return input_error(fmt::format("{}: JPEG has more than {} scans (encoders write about 10); refused, since "
                                           "each scan costs a pass over the whole image",
                                           path, max_jpeg_scans));
        return input_error(fmt::format("{}: corrupt or truncated JPEG: {}", path, ctx.message));
    };
    if (!jpeg_phase_read_header(&cinfo, &ctx, file.data(), file.size())) throw fail();
    // After jpeg_create_decompress, which clears every field but err: scans are counted from here on.
    ctx.progress.progress_monitor = jpeg_progress_handler;
    cinfo.progress = &ctx.progress;
    check_pixel_limit(path, cinfo.image_width, cinfo.image_height, limits);
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE: cinfo.out_color_space = JCS_GRAYSCALE; break;
    case JCS_CMYK:
    case JCS_YCCK: throw input_error(fmt::format("{}: CMYK JPEG images are not supported; convert to RGB", path));
    default: cinfo.out_color_space = JCS_RGB; break;
    }
    if (!jpeg_phase_start(&cinfo, &ctx)) throw fail();
    const int channels = cinfo.output_components;
    if (channels != 1 && channels != 3)
        throw input_error(fmt::format("{}: JPEG decodes to {} components, expected 1 or 3", path, channels));

    image dst;
    dst.width = static_cast<int>(cinfo.output_width);
    dst.height = static_cast<int>(cinfo.output_height);
    dst.channels = channels;
    const size_t row_bytes = size_t{cinfo.output_width} * static_cast<size_t>(channels);
    dst.pixels.resize(row_bytes * cinfo.output_height);
    if (!jpeg_phase_read_pixels(&cinfo, &ctx, dst.pixels.data(), row_bytes)) throw fail();
    return dst;
}

} // namespace

void io_detail::check_image_layout(const image& img, const std::string& what) {
    if (img.width <= 0 || img.height <= 0)
        throw input_error(fmt::format("{}: image has size {}x{}, expected positive", what, img.width, img.height));
    if (img.channels != 1 && img.channels != 3)
        throw input_error(fmt::format("{}: image has {} channels, expected 1 (grey) or 3 (RGB)", what, img.channels));
    const uint64_t expected = uint64_t(img.width) * uint64_t(img.height) * uint64_t(img.channels);
    if (img.pixels.size() != expected)
        throw input_error(fmt::format("{}: {}x{}x{} image holds {} bytes, expected {}", what, img.width, img.height,
                                      img.channels, img.pixels.size(), expected));
}

image read_image(const std::string& path, const image_limits& limits) {
    const std::vector<uint8_t> file = io_detail::read_file_bytes(path, limits.max_file_bytes);
    if (file.size() >= sizeof png_signature && std::memcmp(file.data(), png_signature, sizeof png_signature) == 0)
        return decode_png(path, file, limits);
    if (file.size() >= sizeof jpeg_signature && std::memcmp(file.data(), jpeg_signature, sizeof jpeg_signature) == 0)
        return decode_jpeg(path, file, limits);
    throw input_error(fmt::format("{}: unknown image format (the first bytes are neither PNG nor JPEG); "
                                  "supported formats are PNG and JPEG", path));
}

void write_png(const std::string& path, const image& img, write_durability durability) {
    io_detail::check_image_layout(img, path);
    io_detail::atomic_file file(path, durability == write_durability::synced);
    png_context ctx;
    ctx.dst = &file;
    png_write_guard guard;
    guard.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_error_handler, png_warning_handler);
    if (!guard.png) throw io_error(fmt::format("{}: cannot initialise libpng", path));
    guard.info = png_create_info_struct(guard.png);
    if (!guard.info) throw io_error(fmt::format("{}: cannot initialise libpng", path));
    png_set_write_fn(guard.png, &ctx, png_write_to_file, png_flush_nothing);
    // What is written here is colour-mapped (heatmaps: at most 256 colours, repeated in runs), or such
    // a map blended over the fed picture, or panels of both. Row filters turn the repeats into noise:
    // unfiltered rows at zlib's fastest level came out 40 % smaller than libpng's defaults (adaptive
    // filters, level 6) on a 224x224 heatmap, 3 % on an overlay and 11 % on a panel, and encoded 2.7,
    // 1.6 and 4.3 times faster (measured 2026-12-01 on ResNet-18 saliency maps).
    png_set_filter(guard.png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(guard.png, 1);

    const size_t row_bytes = size_t(img.width) * size_t(img.channels);
    std::vector<png_bytep> rows(static_cast<size_t>(img.height));
    // libpng's row type is non-const but png_write_image only reads the rows.
    auto* pixels = const_cast<uint8_t*>(img.pixels.data());
    for (size_t y = 0; y < rows.size(); ++y) rows[y] = pixels + y * row_bytes;
    if (!png_phase_write(guard.png, guard.info, &img, rows.data())) {
        if (ctx.io_failed) throw io_error(ctx.message);
        throw io_error(fmt::format("{}: cannot encode PNG: {}", path, ctx.message));
    }
    file.commit();
}

} // namespace deepinside
