#include "progress.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace deepinside::cli {

progress_bar::progress_bar(std::string what, int total)
    : what_(std::move(what)), total_(total), active_(total > 0 && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

progress_bar::~progress_bar() {
    if (drawn_) {
        std::fputc('\n', stderr);
        std::fflush(stderr);
    }
}

void progress_bar::update(int done) {
    if (!active_) return;
    const auto now = std::chrono::steady_clock::now();
    if (drawn_ && done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    drawn_ = true;
    constexpr int width = 30;
    done = std::clamp(done, 0, total_);
    const int filled = static_cast<int>(int64_t(done) * width / total_);
    const double seconds = std::chrono::duration<double>(now - start_).count();
    fmt::print(stderr, "\r{} [{}{}] {:>{}}/{} {:.1f} s", what_, std::string(size_t(filled), '#'), std::string(size_t(width - filled), '.'),
               done, fmt::formatted_size("{}", total_), total_, seconds);
    std::fflush(stderr);
}

} // namespace deepinside::cli
