// External tensor data: a model names a file and a byte range for a tensor. The file name comes from
// an untrusted model, so it is held to the rules ONNX's own loader applies (relative, no "..", no
// symbolic link, a regular file inside the model's folder) and the range is parsed and checked
// without overflow before the file is opened.
#include "onnx/detail.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace deepinside::onnx_detail {

namespace {

namespace fs = std::filesystem;

// Owns a POSIX file descriptor: we need O_NOFOLLOW and pread, which iostreams do not offer.
class file_descriptor {
public:
    explicit file_descriptor(int fd) : fd_(fd) {}
    ~file_descriptor() {
        if (fd_ >= 0) ::close(fd_);
    }
    file_descriptor(const file_descriptor&) = delete;
    file_descriptor& operator=(const file_descriptor&) = delete;
    int get() const { return fd_; }

private:
    int fd_;
};

struct external_entries {
    std::string location;
    std::optional<uint64_t> offset;
    std::optional<uint64_t> length;
};

// Digits only: no sign, no spaces, no hex, no suffix (std::stoull would accept all of those).
uint64_t parse_byte_count(const std::string& key, const std::string& value, const std::string& what,
                          const tensor_source& src) {
    const bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
    if (!digits)
        throw model_error(fmt::format("{}: {}: external data {} '{}' is not a non-negative decimal integer", src.file,
                                      what, key, value));
    uint64_t parsed = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), parsed);
    if (ec != std::errc() || end != value.data() + value.size())
        throw model_error(fmt::format("{}: {}: external data {} '{}' does not fit in 64 bits", src.file, what, key, value));
    return parsed;
}

external_entries parse_entries(const ::onnx::TensorProto& t, const std::string& what, const tensor_source& src) {
    external_entries out;
    bool seen_location = false;
    for (const auto& entry : t.external_data()) {
        const std::string& key = entry.key();
        const bool duplicate = (key == "location" && seen_location) || (key == "offset" && out.offset) ||
                               (key == "length" && out.length);
        if (duplicate)
            throw model_error(fmt::format("{}: {}: external data key '{}' is given twice", src.file, what, key));
        if (key == "location") {
            out.location = entry.value();
            seen_location = true;
        } else if (key == "offset") {
            out.offset = parse_byte_count(key, entry.value(), what, src);
        } else if (key == "length") {
            out.length = parse_byte_count(key, entry.value(), what, src);
        }
        // Other keys ("checksum", exporters' own) carry nothing we need.
    }
    if (out.location.empty())
        throw model_error(fmt::format("{}: {}: external data has no location", src.file, what));
    if (out.location.find('\0') != std::string::npos)
        throw model_error(fmt::format("{}: {}: external data location contains a NUL character", src.file, what));
    return out;
}

// True when `inner` equals `outer` or lies below it (both canonical).
bool is_within(const fs::path& inner, const fs::path& outer) {
    auto [outer_end, inner_pos] = std::mismatch(outer.begin(), outer.end(), inner.begin(), inner.end());
    return outer_end == outer.end();
}

} // namespace

std::string read_external_data(const ::onnx::TensorProto& t, const std::string& what, uint64_t expected_bytes,
                               const tensor_source& src) {
    if (!src.allow_external)
        throw model_error(fmt::format("{}: {} stores its data in an external file, which the read options forbid",
                                      src.file, what));
    if (src.base_dir.empty())
        throw model_error(fmt::format("{}: {} stores its data in an external file, but the model was given as bytes "
                                      "without a folder to read it from", src.file, what));

    const external_entries entries = parse_entries(t, what, src);
    const fs::path location(entries.location);
    if (location.has_root_path())
        throw model_error(fmt::format("{}: {}: external data location '{}' is an absolute path; it must be relative "
                                      "to the model's folder", src.file, what, entries.location));
    for (const auto& part : location)
        if (part == "..")
            throw model_error(fmt::format("{}: {}: external data location '{}' has a '..' component; it must stay "
                                          "inside the model's folder", src.file, what, entries.location));

    std::error_code ec;
    const fs::path base = fs::canonical(src.base_dir, ec);
    if (ec)
        throw io_error(fmt::format("{}: {}: cannot resolve the model's folder '{}': {}", src.file, what, src.base_dir,
                                   ec.message()));
    // Refuse a link at any level, not only the last one: a linked folder leads out just as well.
    fs::path path = base;
    for (const auto& part : location) {
        if (part.empty() || part == ".") continue;
        path /= part;
        const fs::file_status status = fs::symlink_status(path, ec);
        if (ec || !fs::exists(status))
            throw model_error(fmt::format("{}: {}: external data file '{}' does not exist in '{}'", src.file, what,
                                          entries.location, base.string()));
        if (fs::is_symlink(status))
            throw model_error(fmt::format("{}: {}: external data location '{}' goes through a symbolic link; it must "
                                          "name a regular file inside the model's folder", src.file, what,
                                          entries.location));
    }
    if (!fs::is_regular_file(fs::symlink_status(path, ec)))
        throw model_error(fmt::format("{}: {}: external data location '{}' is not a regular file", src.file, what,
                                      entries.location));
    const fs::path resolved = fs::weakly_canonical(path, ec);
    if (ec || !is_within(resolved, base) || resolved == base)
        throw model_error(fmt::format("{}: {}: external data location '{}' resolves outside the model's folder",
                                      src.file, what, entries.location));

    const uint64_t file_size = fs::file_size(resolved, ec);
    if (ec)
        throw io_error(fmt::format("{}: {}: cannot read the size of external data file '{}': {}", src.file, what,
                                   entries.location, ec.message()));
    const uint64_t offset = entries.offset.value_or(0);
    if (offset > file_size)
        throw model_error(fmt::format("{}: {}: external data offset {} is beyond the end of '{}' ({} bytes)", src.file,
                                      what, offset, entries.location, file_size));
    // Subtracting keeps offset + length from overflowing.
    const uint64_t length = entries.length.value_or(file_size - offset);
    if (length > file_size - offset)
        throw model_error(fmt::format("{}: {}: external data offset {} + length {} runs past the end of '{}' ({} bytes)",
                                      src.file, what, offset, length, entries.location, file_size));
    if (length != expected_bytes)
        throw model_error(fmt::format("{}: {}: external data length is {} bytes, shape {} of {} needs {}", src.file,
                                      what, length, to_string(shape_t(t.dims().begin(), t.dims().end())),
                                      type_name(t.data_type()), expected_bytes));

    // Every check passed: open without following a link swapped in since, and re-check what we opened.
    const file_descriptor fd(::open(resolved.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0)
        throw io_error(fmt::format("{}: {}: cannot open external data file '{}': {}", src.file, what, entries.location,
                                   std::strerror(errno)));
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode) || static_cast<uint64_t>(info.st_size) != file_size)
        throw io_error(fmt::format("{}: {}: external data file '{}' changed while being read", src.file, what,
                                   entries.location));

    std::string bytes(static_cast<size_t>(length), '\0');
    uint64_t done = 0;
    while (done < length) {
        const ssize_t got = ::pread(fd.get(), bytes.data() + done, static_cast<size_t>(length - done),
                                    static_cast<off_t>(offset + done));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0)
            throw io_error(fmt::format("{}: {}: reading external data file '{}' failed after {} of {} bytes{}", src.file,
                                       what, entries.location, done, length,
                                       got < 0 ? std::string(": ") + std::strerror(errno) : std::string()));
        done += static_cast<uint64_t>(got);
    }
    return bytes;
}

} // namespace deepinside::onnx_detail
