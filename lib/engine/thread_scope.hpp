#pragma once
// A network's OpenMP thread count for the length of one call. omp_set_num_threads changes the
// calling thread's setting, which belongs to the caller (its own parallel regions, Eigen, another
// library's OpenMP code), so every call that sets it puts the caller's value back on the way out,
// also when the call throws.
#include <omp.h>

namespace deepinside::engine {

class thread_scope {
public:
    explicit thread_scope(int threads) : callers_(omp_get_max_threads()) {
        if (threads != callers_) omp_set_num_threads(threads);
    }
    ~thread_scope() {
        if (omp_get_max_threads() != callers_) omp_set_num_threads(callers_);
    }
    thread_scope(const thread_scope&) = delete;
    thread_scope& operator=(const thread_scope&) = delete;

private:
    int callers_;
};

} // namespace deepinside::engine
