// NumPy .npy files: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
#include "io/files.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <bit>
#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

#include <unistd.h>

namespace deepinside {

namespace {

constexpr std::string_view npy_magic = "\x93NUMPY";
constexpr size_t max_header_bytes = 64 * 1024;
constexpr size_t max_npy_rank = 8;

/// The three keys of a .npy header, as written in the file.
struct npy_header {
    std::string descr;
    bool fortran_order = false;
    shape_t shape;
};

/// A strict parser for the header, which is a Python dict literal such as
/// "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }". It accepts exactly the three
/// keys, each once, with string / bool / tuple-of-int values; anything else is an error, because
/// evaluating the literal is not an option for untrusted files.
class header_parser {
public:
    header_parser(std::string_view text, const std::string& path) : text_(text), path_(path) {}

    npy_header parse() {
        npy_header h;
        bool seen_descr = false, seen_fortran = false, seen_shape = false;
        skip_space();
        expect('{');
        skip_space();
        while (peek() != '}') {
            const std::string key = parse_string();
            skip_space();
            expect(':');
            skip_space();
            if (key == "descr") {
                if (seen_descr) fail("key 'descr' appears twice");
                seen_descr = true;
                h.descr = parse_string();
            } else if (key == "fortran_order") {
                if (seen_fortran) fail("key 'fortran_order' appears twice");
                seen_fortran = true;
                h.fortran_order = parse_bool();
            } else if (key == "shape") {
                if (seen_shape) fail("key 'shape' appears twice");
                seen_shape = true;
                h.shape = parse_shape();
            } else {
                fail(fmt::format("unexpected key '{}' (expected descr, fortran_order, shape)", key));
            }
            skip_space();
            if (peek() == ',') {
                ++pos_;
                skip_space();
            } else if (peek() != '}') {
                fail("expected ',' or '}' after a value");
            }
        }
        ++pos_;
        skip_space();
        if (pos_ != text_.size()) fail("unexpected characters after the closing '}'");
        if (!seen_descr) fail("key 'descr' is missing");
        if (!seen_fortran) fail("key 'fortran_order' is missing");
        if (!seen_shape) fail("key 'shape' is missing");
        return h;
    }

private:
    [[noreturn]] void fail(const std::string& what) const {
        throw input_error(fmt::format("{}: malformed .npy header at byte {}: {}", path_, pos_, what));
    }
    char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
    void expect(char c) {
        if (peek() != c) fail(fmt::format("expected '{}'", c));
        ++pos_;
    }
    void skip_space() {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }
    std::string parse_string() {
        const char quote = peek();
        if (quote != '\'' && quote != '"') fail("expected a quoted string");
        ++pos_;
        const size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] != quote) {
            // Escapes never occur in the keys or the dtypes we accept; refusing them keeps this simple.
            if (text_[pos_] == '\\' || text_[pos_] == '\n') fail("unsupported character in a string");
            ++pos_;
        }
        if (pos_ >= text_.size()) fail("unterminated string");
        std::string s(text_.substr(start, pos_ - start));
        ++pos_;
        return s;
    }
    bool parse_bool() {
        if (text_.substr(pos_, 4) == "True") {
            pos_ += 4;
            return true;
        }
        if (text_.substr(pos_, 5) == "False") {
            pos_ += 5;
            return false;
        }
        fail("expected True or False");
    }
    int64_t parse_dim() {
        const size_t start = pos_;
        while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_;
        if (pos_ == start) fail("expected a non-negative integer dimension");
        if (text_[start] == '0' && pos_ - start > 1) fail("dimension with a leading zero");
        int64_t value = 0;
        const auto [end, ec] = std::from_chars(text_.data() + start, text_.data() + pos_, value);
        if (ec != std::errc() || end != text_.data() + pos_)
            fail(fmt::format("dimension {} does not fit in int64", text_.substr(start, pos_ - start)));
        return value;
    }
    shape_t parse_shape() {
        expect('(');
        skip_space();
        shape_t shape;
        bool trailing_comma = false;
        while (peek() != ')') {
            if (shape.size() == max_npy_rank) fail(fmt::format("shape has more than {} dimensions", max_npy_rank));
            shape.push_back(parse_dim());
            skip_space();
            trailing_comma = false;
            if (peek() == ',') {
                ++pos_;
                trailing_comma = true;
                skip_space();
            } else if (peek() != ')') {
                fail("expected ',' or ')' in the shape");
            }
        }
        // "(5)" is the integer 5 in Python, not a tuple.
        if (shape.size() == 1 && !trailing_comma) fail("shape (n) must be written (n,)");
        ++pos_;
        return shape;
    }

    std::string_view text_;
    const std::string& path_;
    size_t pos_ = 0;
};

uint32_t load_le(const unsigned char* p, int bytes) {
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

void check_descr(const std::string& descr, const std::string& path) {
    if (descr == "<f4") return;
    if (descr == ">f4")
        throw input_error(fmt::format("{}: dtype '>f4' is big-endian float32, only little-endian '<f4' is supported; "
                                      "convert with x.astype('<f4')", path));
    throw input_error(fmt::format("{}: dtype '{}' is not float32 ('<f4'); convert with x.astype(np.float32)", path, descr));
}

std::string python_shape(const shape_t& shape) {
    if (shape.size() == 1) return fmt::format("({},)", shape[0]);
    return fmt::format("({})", fmt::join(shape, ", "));
}

} // namespace

tensor read_npy(const std::string& path) {
    io_detail::read_only_file file(path);
    const auto file_size = static_cast<uint64_t>(file.size());

    unsigned char prefix[12];
    const size_t got = file.read(prefix, std::min<uint64_t>(sizeof prefix, file_size));
    if (got < 10 || std::memcmp(prefix, npy_magic.data(), npy_magic.size()) != 0)
        throw input_error(fmt::format("{}: not a .npy file (it does not start with \\x93NUMPY)", path));
    const int major = prefix[6], minor = prefix[7];
    if (!((major == 1 || major == 2 || major == 3) && minor == 0))
        throw input_error(fmt::format("{}: .npy format version {}.{} is not supported (1.0, 2.0 and 3.0 are)", path, major, minor));
    const size_t prefix_size = major == 1 ? 10 : 12;
    if (got < prefix_size) throw input_error(fmt::format("{}: truncated .npy preamble", path));
    const size_t header_size = load_le(prefix + 8, major == 1 ? 2 : 4);
    if (header_size > max_header_bytes)
        throw input_error(fmt::format("{}: .npy header claims {} bytes, above the limit of {}", path, header_size, max_header_bytes));
    if (prefix_size + header_size > file_size)
        throw input_error(fmt::format("{}: .npy header claims {} bytes but the file ends after {}", path, header_size,
                                      file_size - prefix_size));

    std::string header_text(header_size, '\0');
    if (::lseek(file.fd(), static_cast<off_t>(prefix_size), SEEK_SET) < 0 ||
        file.read(header_text.data(), header_size) != header_size)
        throw io_error(fmt::format("{}: cannot read the .npy header", path));
    const npy_header header = header_parser(header_text, path).parse();

    check_descr(header.descr, path);
    if (header.fortran_order)
        throw input_error(fmt::format("{}: fortran_order is True, only C order is supported; "
                                      "save np.ascontiguousarray(x) instead", path));
    int64_t count = 0;
    try {
        count = element_count(header.shape);
    } catch (const input_error& e) {
        throw input_error(fmt::format("{}: {}", path, e.what()));
    }
    const uint64_t body_size = file_size - prefix_size - header_size;
    if (static_cast<uint64_t>(count) > std::numeric_limits<uint64_t>::max() / 4 / 2)
        throw input_error(fmt::format("{}: shape {} needs more bytes than a file can hold", path, python_shape(header.shape)));
    const uint64_t expected = static_cast<uint64_t>(count) * 4;
    if (body_size < expected)
        throw input_error(fmt::format("{}: truncated: shape {} needs {} data bytes, the file holds {}", path,
                                      python_shape(header.shape), expected, body_size));
    if (body_size > expected)
        throw input_error(fmt::format("{}: {} trailing bytes: shape {} needs {} data bytes, the file holds {}", path,
                                      body_size - expected, python_shape(header.shape), expected, body_size));

    tensor dst(header.shape);
    if (file.read(dst.data.data(), expected) != expected)
        throw io_error(fmt::format("{}: the file shrank while being read", path));
    if constexpr (std::endian::native == std::endian::big) {
        for (float& v : dst.data) v = std::bit_cast<float>(__builtin_bswap32(std::bit_cast<uint32_t>(v)));
    }
    return dst;
}

void write_npy(const std::string& path, const tensor& t, write_durability durability) {
    const int64_t count = element_count(t.shape);
    if (count != t.size())
        throw input_error(fmt::format("{}: cannot write a tensor of shape {} holding {} values", path, to_string(t.shape), t.size()));

    std::string header = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': {}, }}", python_shape(t.shape));
    // NumPy pads with spaces and ends with '\n' so that the data starts on a 64-byte boundary.
    const size_t unpadded = 10 + header.size() + 1;
    header.append((64 - unpadded % 64) % 64, ' ');
    header.push_back('\n');
    if (header.size() > 0xffff)
        throw input_error(fmt::format("{}: shape {} makes a .npy header too long for format 1.0", path, to_string(t.shape)));

    std::string preamble(npy_magic);
    preamble.push_back('\x01');
    preamble.push_back('\x00');
    preamble.push_back(static_cast<char>(header.size() & 0xff));
    preamble.push_back(static_cast<char>(header.size() >> 8));

    io_detail::atomic_file dst(path, durability == write_durability::synced);
    dst.write(preamble.data(), preamble.size());
    dst.write(header.data(), header.size());
    if constexpr (std::endian::native == std::endian::little) {
        dst.write(t.data.data(), t.data.size() * sizeof(float));
    } else {
        std::vector<uint32_t> swapped(t.data.size());
        for (size_t i = 0; i < swapped.size(); ++i) swapped[i] = __builtin_bswap32(std::bit_cast<uint32_t>(t.data[i]));
        dst.write(swapped.data(), swapped.size() * sizeof(uint32_t));
    }
    dst.commit();
}

} // namespace deepinside
