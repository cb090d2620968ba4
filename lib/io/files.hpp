#pragma once
// File helpers shared by the readers and writers of lib/io: atomic writes and bounded reads.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace deepinside::io_detail {

/// A file written under a temporary name in its destination folder and renamed into place by
/// commit(); if commit() is never reached the temporary file is removed, so readers never see a
/// half-written output.
class atomic_file {
public:
    /// Creates the temporary file next to `path`. Throws io_error naming `path` on failure.
    /// `sync`: flush to disk before the rename (write_durability::synced).
    explicit atomic_file(std::string path, bool sync = true);
    ~atomic_file();
    atomic_file(const atomic_file&) = delete;
    atomic_file& operator=(const atomic_file&) = delete;

    /// Appends `size` bytes. Throws io_error naming the destination path.
    void write(const void* data, size_t size);
    /// Flushes to disk (when syncing) and renames over the destination. Throws io_error.
    void commit();

private:
    void discard() noexcept;

    std::string path_;
    std::string temp_path_;
    int fd_ = -1;
    bool sync_ = true;
    bool committed_ = false;
};

/// A regular file opened for reading; owns its descriptor and closes it on destruction.
class read_only_file {
public:
    /// Opens `path` (O_CLOEXEC) and stats it. Throws io_error naming `path` when it cannot be
    /// opened or stat'ed, or is not a regular file.
    explicit read_only_file(std::string path);
    ~read_only_file();
    read_only_file(const read_only_file&) = delete;
    read_only_file& operator=(const read_only_file&) = delete;

    /// The descriptor, valid for the lifetime of this object (for lseek and the like).
    int fd() const { return fd_; }
    /// The size in bytes when the file was opened.
    int64_t size() const { return size_; }
    /// Reads `size` bytes into `dst` from the current offset, retrying short reads; returns fewer
    /// only at end of file. Throws io_error naming the path on a read error.
    size_t read(void* dst, size_t size);

private:
    std::string path_;
    int fd_ = -1;
    int64_t size_ = 0;
};

/// Reads a whole file. Throws input_error when it is larger than `max_bytes` (checked before
/// reading) and io_error when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes);

} // namespace deepinside::io_detail
