#pragma once
// Shared by the fuzz targets: a private scratch folder created once per process, and a fast way to
// put a fuzz input into a file there (the readers of .npy and images take paths, not bytes).
//
// The folder is made with mkdtemp under $DEEPINSIDE_FUZZ_TMP (tools/fuzz.sh sets it), else /dev/shm
// (memory, no disk writes), else $TMPDIR or /tmp, and removed with everything in it at exit. A crash
// leaves it behind: tools/fuzz.sh removes its whole $DEEPINSIDE_FUZZ_TMP after each run.
#include <deepinside/errors.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <unistd.h>

namespace fuzz_support {

namespace fs = std::filesystem;

/// Anything but the library's own exceptions is a finding: report it and abort, so that libFuzzer
/// saves the input (an exception escaping LLVMFuzzerTestOneInput would do the same, less clearly).
[[noreturn]] inline void die(const char* what) {
    std::fprintf(stderr, "fuzz target: %s\n", what);
    std::fflush(stderr);
    std::abort();
}

class scratch {
public:
    scratch() {
        std::string base;
        if (const char* env = std::getenv("DEEPINSIDE_FUZZ_TMP"); env && *env)
            base = env;
        else if (::access("/dev/shm", W_OK) == 0)
            base = "/dev/shm";
        else if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp)
            base = tmp;
        else
            base = "/tmp";
        std::string pattern = base + "/deepinside-fuzz-XXXXXX";
        if (!::mkdtemp(pattern.data())) die("cannot create the scratch folder (mkdtemp)");
        root_ = pattern;
    }
    ~scratch() {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    scratch(const scratch&) = delete;
    scratch& operator=(const scratch&) = delete;

    const fs::path& root() const { return root_; }

private:
    fs::path root_;
};

/// The process's scratch folder; a function-local static, so it is destroyed at exit (libFuzzer
/// ends with exit() after -runs, and on -max_total_time).
inline const scratch& scratch_folder() {
    static const scratch folder;
    return folder;
}

/// Replaces the contents of `path` with `bytes`, keeping the file's inode (hard links to it see the
/// new contents too). Aborts on failure: the harness, not the library, would be at fault.
inline void overwrite(const fs::path& path, std::string_view bytes) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) die("cannot open a scratch file for writing");
    const char* p = bytes.data();
    size_t left = bytes.size();
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) die("cannot write a scratch file");
        p += n;
        left -= static_cast<size_t>(n);
    }
    if (::close(fd) != 0) die("cannot close a scratch file");
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
    return {reinterpret_cast<const char*>(data), size};
}

} // namespace fuzz_support
