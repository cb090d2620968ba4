// The engine's thread count: engine_options::threads = 0 follows OMP_NUM_THREADS, else the CPUs this
// process may run on (its affinity mask), never the machine's core count; negative counts are refused;
// the count is the network's, and the caller's OpenMP setting is back after every call.
#include "support.hpp"

#include <omp.h>
#include <sched.h>

#include <cstdlib>
#include <optional>

using namespace engine_test;

namespace {

/// Restores the calling thread's CPU affinity and OMP_NUM_THREADS when the test case ends.
class environment_guard {
public:
    environment_guard() {
        CPU_ZERO(&mask_);
        BOOST_REQUIRE(sched_getaffinity(0, sizeof mask_, &mask_) == 0);
        if (const char* v = std::getenv("OMP_NUM_THREADS")) threads_ = v;
    }
    ~environment_guard() {
        sched_setaffinity(0, sizeof mask_, &mask_);
        if (threads_) setenv("OMP_NUM_THREADS", threads_->c_str(), 1);
        else unsetenv("OMP_NUM_THREADS");
    }
    const cpu_set_t& mask() const { return mask_; }

private:
    cpu_set_t mask_;
    std::optional<std::string> threads_;
};

graph tiny_graph() {
    graph_builder b({1, 1, 4, 4}, 13, "x");
    b.add("Relu", {"x"}, "y");
    return b.finish("y");
}

} // namespace

BOOST_AUTO_TEST_SUITE(threads)

BOOST_AUTO_TEST_CASE(default_follows_the_affinity_mask) {
    environment_guard guard;
    const graph g = tiny_graph();
    unsetenv("OMP_NUM_THREADS");
    const int allowed = CPU_COUNT(&guard.mask());
    BOOST_TEST(default_threads() == allowed, "the process may run on " << allowed << " CPUs");
    BOOST_TEST(network(g, {1, 1, 4, 4}).threads() == allowed);

    // Restricted to its first allowed CPU (as under `taskset -c N`): one thread.
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c)
        if (CPU_ISSET(c, &guard.mask())) {
            CPU_SET(c, &one);
            break;
        }
    BOOST_REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
    BOOST_TEST(default_threads() == 1);
    network restricted(g, {1, 1, 4, 4});
    BOOST_TEST(restricted.threads() == 1);
    tensor x({1, 1, 4, 4});
    BOOST_TEST(restricted.forward(x).at(0).size() == 16);

    // The user's OMP_NUM_THREADS wins over the mask, and an explicit count over both.
    setenv("OMP_NUM_THREADS", "3", 1);
    BOOST_TEST(default_threads() == 3);
    BOOST_TEST(network(g, {1, 1, 4, 4}).threads() == 3);
    setenv("OMP_NUM_THREADS", "2,1", 1); // nested list: the first level
    BOOST_TEST(default_threads() == 2);
    setenv("OMP_NUM_THREADS", "many", 1); // not a number: the mask again
    BOOST_TEST(default_threads() == 1);
    engine_options five;
    five.threads = 5;
    BOOST_TEST(network(g, {1, 1, 4, 4}, five).threads() == 5);
}

BOOST_AUTO_TEST_CASE(negative_counts_are_refused) {
    engine_options o;
    o.threads = -1;
    try {
        network net(tiny_graph(), {1, 1, 4, 4}, o);
        BOOST_ERROR("threads = -1 was accepted");
    } catch (const input_error& e) {
        BOOST_TEST(std::string(e.what()).find("-1") != std::string::npos, e.what());
    }
}

BOOST_AUTO_TEST_CASE(the_callers_openmp_count_is_restored) {
    const int callers = omp_get_max_threads();
    omp_set_num_threads(3);
    engine_options two;
    two.threads = 2;
    network net(tiny_graph(), {1, 1, 4, 4}, two);
    BOOST_TEST(net.threads() == 2);
    BOOST_TEST(omp_get_max_threads() == 3, "after construction");
    tensor x({1, 1, 4, 4});
    for (int64_t i = 0; i < x.size(); ++i) x.data[size_t(i)] = float(i) - 7.5f;
    net.forward(x);
    BOOST_TEST(omp_get_max_threads() == 3, "after forward");
    BOOST_TEST(net.read("y").data.back() == 7.5f);
    BOOST_TEST(omp_get_max_threads() == 3, "after read");
    target sum;
    sum.what = target::kind::tensor_sum;
    sum.tensor = "y";
    net.prepare_backward(1);
    BOOST_TEST(omp_get_max_threads() == 3, "after prepare_backward");
    BOOST_TEST(net.backward({{sum, backward_rule::gradient}}).at(0).data.back() == 1.0f);
    BOOST_TEST(omp_get_max_threads() == 3, "after backward");
    sum.tensor = "no such tensor";
    BOOST_CHECK_THROW(net.backward({{sum, backward_rule::gradient}}), input_error);
    BOOST_TEST(omp_get_max_threads() == 3, "after a backward that threw");
    omp_set_num_threads(callers);
}

BOOST_AUTO_TEST_SUITE_END()
