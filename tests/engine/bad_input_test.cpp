// Bad requests to the engine: wrong input rank or shape, targets out of range, backward before
// forward, unknown tensors. Each must throw the documented error with a message naming the culprit.
#include "support.hpp"

using namespace engine_test;

namespace {

/// conv(3->4, 3x3) -> relu -> maxpool 2 -> flatten -> gemm(-> 5): scores [1, 5].
graph small_classifier(std::mt19937& rng, const shape_t& input_shape = {1, 3, 8, 8}) {
    graph_builder b(input_shape, 13, "image");
    b.random_constant("w", {4, 3, 3, 3}, rng);
    b.random_constant("b", {4}, rng);
    b.random_constant("fc", {5, 36}, rng);
    b.add("Conv", {"image", "w", "b"}, "c", {{"kernel_shape", attr_ints({3, 3})}});
    b.add("Relu", {"c"}, "r");
    b.add("MaxPool", {"r"}, "p", {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
    b.add("Flatten", {"p"}, "f");
    b.add("Gemm", {"f", "fc"}, "scores", {{"transB", attr_int(1)}});
    return b.finish("scores");
}

/// Runs `f`, expecting an exception of type E whose message contains every string of `needles`.
template <typename E, typename F>
void expect_error(F&& f, const std::vector<std::string>& needles, const std::string& what) {
    try {
        f();
    } catch (const E& e) {
        const std::string msg = e.what();
        BOOST_TEST_MESSAGE(what << ": " << msg);
        for (const auto& n : needles)
            BOOST_CHECK_MESSAGE(msg.find(n) != std::string::npos, what << ": message lacks '" << n << "': " << msg);
        BOOST_CHECK_MESSAGE(msg.find('\n') == std::string::npos, what << ": message is not one line");
        return;
    } catch (const std::exception& e) {
        BOOST_ERROR(what << ": threw the wrong type: " << e.what());
        return;
    }
    BOOST_ERROR(what << ": did not throw");
}

} // namespace

BOOST_AUTO_TEST_SUITE(bad_inputs)

BOOST_AUTO_TEST_CASE(wrong_rank_names_the_input) {
    std::mt19937 rng(1);
    const graph g = small_classifier(rng);
    expect_error<input_error>([&] { network net(g, {3, 8, 8}); }, {"image"}, "rank 3 for a rank-4 input");
    expect_error<input_error>([&] { network net(g, {1, 1, 3, 8, 8}); }, {"image"}, "rank 5 for a rank-4 input");
}

BOOST_AUTO_TEST_CASE(wrong_shape_names_the_input) {
    std::mt19937 rng(2);
    const graph g = small_classifier(rng);
    expect_error<input_error>([&] { network net(g, {1, 3, 9, 8}); }, {"image"}, "a fixed spatial size differs");
    expect_error<input_error>([&] { network net(g, {1, 1, 8, 8}); }, {"image"}, "channels differ");
}

BOOST_AUTO_TEST_CASE(forward_with_another_shape) {
    std::mt19937 rng(3);
    const graph g = small_classifier(rng);
    network net(g, {1, 3, 8, 8});
    tensor x = random_tensor(rng, {1, 3, 8, 7});
    expect_error<input_error>([&] { net.forward(x); }, {"[1, 3, 8, 7]"}, "forward of a tensor of another shape");
}

BOOST_AUTO_TEST_CASE(class_index_out_of_range) {
    std::mt19937 rng(4);
    const graph g = small_classifier(rng);
    network net(g, {1, 3, 8, 8});
    net.forward(random_tensor(rng, {1, 3, 8, 8}));
    expect_error<input_error>([&] { net.backward({{target{target::kind::class_score, "", {5}, {}}, backward_rule::gradient}}); },
                              {"5"}, "class 5 of 5");
    expect_error<input_error>([&] { net.backward({{target{target::kind::class_score, "", {-1}, {}}, backward_rule::guided}}); },
                              {"-1"}, "class -1");
    expect_error<input_error>([&] { net.backward({{target{target::kind::channel_sum, "c", {4}, {}}, backward_rule::gradient}}); },
                              {"4", "c"}, "channel 4 of 4");
    expect_error<input_error>([&] { net.backward({{target{target::kind::neuron, "c", {0}, {6, 0}}, backward_rule::gradient}}); },
                              {"c"}, "unit outside the tensor");
    expect_error<input_error>([&] { net.backward({{target{target::kind::class_score, "nonexistent", {0}, {}}, backward_rule::gradient}}); },
                              {"nonexistent"}, "unknown target tensor");
    // A valid request still works afterwards.
    const auto sig = net.backward({{target{target::kind::class_score, "", {4}, {}}, backward_rule::gradient}});
    BOOST_CHECK(sig[0].shape == (shape_t{1, 3, 8, 8}));
}

BOOST_AUTO_TEST_CASE(backward_before_forward) {
    std::mt19937 rng(5);
    const graph g = small_classifier(rng);
    network net(g, {1, 3, 8, 8});
    expect_error<error>([&] { net.backward({{target{target::kind::class_score, "", {0}, {}}, backward_rule::gradient}}); },
                        {"forward"}, "backward before forward");
}

BOOST_AUTO_TEST_SUITE_END()
