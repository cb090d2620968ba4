#include "io/files.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace deepinside::io_detail {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

} // namespace

atomic_file::atomic_file(std::string path, bool sync) : path_(std::move(path)), sync_(sync) {
    if (path_.empty()) throw io_error("cannot write a file with an empty path");
    // open() with mode 0666 lets the umask decide the final permissions, as for a plain fopen();
    // O_EXCL and a random suffix keep concurrent writers of the same destination apart.
    std::random_device entropy;
    for (int attempt = 0; attempt < 16; ++attempt) {
        temp_path_ = fmt::format("{}.tmp-{:08x}{:08x}", path_, entropy(), entropy());
        fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd_ >= 0) return;
        if (errno != EEXIST) break;
    }
    const int err = errno;
    throw io_error(fmt::format("{}: cannot create file: {}", path_, errno_text(err)));
}

atomic_file::~atomic_file() {
    if (!committed_) discard();
}

void atomic_file::discard() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void atomic_file::write(const void* data, size_t size) {
    if (fd_ < 0) throw io_error(fmt::format("{}: write after the file was closed", path_));
    const auto* src = static_cast<const unsigned char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd_, src, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            throw io_error(fmt::format("{}: cannot write: {}", path_, errno_text(err)));
        }
        src += n;
        size -= static_cast<size_t>(n);
    }
}

void atomic_file::commit() {
    if (fd_ < 0) throw io_error(fmt::format("{}: commit after the file was closed", path_));
    // fsync before rename: otherwise a crash can leave the new name pointing at an empty file.
    if (sync_ && ::fsync(fd_) != 0) {
        const int err = errno;
        throw io_error(fmt::format("{}: cannot flush to disk: {}", path_, errno_text(err)));
    }
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) {
        const int err = errno;
        throw io_error(fmt::format("{}: cannot close: {}", path_, errno_text(err)));
    }
    if (std::rename(temp_path_.c_str(), path_.c_str()) != 0) {
        const int err = errno;
        throw io_error(fmt::format("{}: cannot rename the temporary file into place: {}", path_, errno_text(err)));
    }
    committed_ = true;
}

read_only_file::read_only_file(std::string path) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        const int err = errno;
        throw io_error(fmt::format("{}: cannot open: {}", path_, errno_text(err)));
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
        const int err = errno;
        ::close(fd_);
        throw io_error(fmt::format("{}: cannot stat: {}", path_, errno_text(err)));
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd_);
        throw io_error(fmt::format("{}: not a regular file", path_));
    }
    size_ = st.st_size;
}

read_only_file::~read_only_file() { ::close(fd_); }

size_t read_only_file::read(void* dst, size_t size) {
    auto* p = static_cast<unsigned char*>(dst);
    size_t done = 0;
    while (done < size) {
        const ssize_t n = ::read(fd_, p + done, size - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            const int err = errno;
            throw io_error(fmt::format("{}: cannot read: {}", path_, errno_text(err)));
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes) {
    read_only_file file(path);
    if (file.size() > max_bytes)
        throw input_error(fmt::format("{}: file is {} bytes, above the limit of {}", path, file.size(), max_bytes));
    std::vector<uint8_t> bytes(static_cast<size_t>(file.size()));
    // Fewer bytes than stat promised means the file shrank while we read it: decoders will see it
    // as truncated.
    bytes.resize(file.read(bytes.data(), bytes.size()));
    return bytes;
}

} // namespace deepinside::io_detail

namespace deepinside {

void sync_files(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        throw io_error(fmt::format("{}: cannot open to flush the written files: {}", path, std::strerror(err)));
    }
    const int status = ::syncfs(fd);
    const int err = errno;
    ::close(fd);
    if (status != 0) throw io_error(fmt::format("{}: cannot flush the written files to disk: {}", path, std::strerror(err)));
}

std::vector<std::string> read_class_labels(const std::string& labels_file, const std::string& model_path,
                                           const std::map<std::string, std::string>& metadata) {
    std::vector<std::string> labels;
    std::string path = labels_file;
    if (path.empty()) {
        if (auto it = metadata.find("deepinside.labels"); it != metadata.end()) {
            size_t start = 0;
            for (size_t comma; (comma = it->second.find(',', start)) != std::string::npos; start = comma + 1)
                labels.push_back(it->second.substr(start, comma - start));
            labels.push_back(it->second.substr(start));
            return labels;
        }
        std::filesystem::path beside(model_path);
        beside.replace_extension(".labels.txt");
        if (!std::filesystem::exists(beside)) return labels;
        path = beside.string();
    }
    std::ifstream in(path);
    if (!in) throw io_error(fmt::format("{}: cannot open the labels file", path));
    for (std::string line; std::getline(in, line);) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        labels.push_back(line);
    }
    while (!labels.empty() && labels.back().empty()) labels.pop_back(); // blank lines at the end are not classes
    return labels;
}

void write_text(const std::string& path, const std::string& text, write_durability durability) {
    io_detail::atomic_file file(path, durability == write_durability::synced);
    file.write(text.data(), text.size());
    file.commit();
}

} // namespace deepinside
