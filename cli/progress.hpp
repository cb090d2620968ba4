#pragma once
// A one-line progress bar on stderr for long commands, drawn only when stderr is a terminal (so that
// logs and pipes see nothing of it).
#include <chrono>
#include <string>

namespace deepinside::cli {

/// "class-model [#########.........]  45/200  2.1 s": redrawn in place with '\r', at most about ten
/// times a second (and always for the last step). The destructor ends the line, so the next output
/// starts on a fresh line. Does nothing at all when stderr is not a terminal (isatty), or for a
/// total below 1.
class progress_bar {
public:
    progress_bar(std::string what, int total);
    ~progress_bar();
    progress_bar(const progress_bar&) = delete;
    progress_bar& operator=(const progress_bar&) = delete;

    /// `done` of `total` steps are finished.
    void update(int done);

private:
    std::string what_;
    int total_ = 0;
    bool active_ = false, drawn_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

} // namespace deepinside::cli
