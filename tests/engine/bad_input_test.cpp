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
    expect_error<input_error>([&] { net.backward({{target{target::kind::channel_sum, "r", {4}, {}}, backward_rule::gradient}}); },
                              {"4", "r"}, "channel 4 of 4");
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

// ---- Numbers that are not finite ----------------------------------------------------------------

namespace {

engine_options checking(finite_check check) {
    engine_options o;
    o.check = check;
    return o;
}

/// x [1, 2, 3, 3] -> Mul 1e30 "a" -> Relu "r" -> Mul 1e5 "b" -> Flatten "scores" [1, 18]. An input
/// of 1e10 overflows in "a" (1e40) and only there; inputs up to ~1e-3 stay finite everywhere.
graph overflowing_graph() {
    graph_builder b({1, 2, 3, 3}, 13, "x");
    b.constant("big", {1}, {1e30});
    b.constant("more", {1}, {1e5});
    b.add("Mul", {"x", "big"}, "a");
    b.add("Relu", {"a"}, "r");
    b.add("Mul", {"r", "more"}, "b");
    b.add("Flatten", {"b"}, "scores");
    return b.finish("scores");
}

/// x [1, 4] -> Mul 1e20 "a" -> Relu "r" -> Mul 1e20 "b" -> Mul 1e20 "scores" [1, 4]. From an input
/// of magnitude 1e-35 every activation is finite (1e25 at most), but the backward signal reaches
/// 1e20 at "b" and 1e40 (inf) at "r", before the ReLU.
graph backward_overflow_graph() {
    graph_builder b({1, 4}, 13, "x");
    b.constant("k", {1}, {1e20});
    b.add("Mul", {"x", "k"}, "a");
    b.add("Relu", {"a"}, "r");
    b.add("Mul", {"r", "k"}, "b");
    b.add("Mul", {"b", "k"}, "scores");
    return b.finish("scores");
}

backward_request class_request(int64_t c, backward_rule rule = backward_rule::gradient) {
    return {target{target::kind::class_score, "", {c}, {}}, rule};
}

bool all_finite(const tensor& t) { return first_non_finite(t.data.data(), t.size()) < 0; }

} // namespace

BOOST_AUTO_TEST_CASE(non_finite_input_names_the_first_index) {
    std::mt19937 rng(6);
    const graph g = small_classifier(rng);
    for (const finite_check check : {finite_check::none, finite_check::outputs, finite_check::all}) {
        network net(g, {1, 3, 8, 8}, checking(check));
        tensor x = random_tensor(rng, {1, 3, 8, 8});
        tensor nan = x, inf = x, ninf = x;
        nan.data[1 * 64 + 3 * 8 + 7] = std::numeric_limits<float>::quiet_NaN();
        nan.data[2 * 64] = std::numeric_limits<float>::infinity(); // later in C order: not the one named
        inf.data[2 * 64 + 5 * 8 + 1] = std::numeric_limits<float>::infinity();
        ninf.data[0] = -std::numeric_limits<float>::infinity();
        expect_error<input_error>([&] { net.forward(nan); }, {"image", "nan", "[0, 1, 3, 7]", "2 of 192"}, "a NaN input");
        expect_error<input_error>([&] { net.forward(inf); }, {"image", "inf", "[0, 2, 5, 1]"}, "an infinite input");
        expect_error<input_error>([&] { net.forward(ninf); }, {"image", "-inf", "[0, 0, 0, 0]"}, "a -inf input");
        // Refused before anything ran: a finite input still works on the same network.
        BOOST_TEST(all_finite(net.forward(x).at(0)));
    }
    // The helper the CLI uses on .npy files says the same.
    tensor t({2, 3});
    t.data[4] = std::numeric_limits<float>::quiet_NaN();
    BOOST_TEST(first_non_finite(t.data.data(), t.size()) == 4);
    BOOST_TEST(index_to_string(t.shape, 4) == "[1, 1]");
    expect_error<input_error>([&] { require_finite(t, "x.npy"); }, {"x.npy", "nan", "[1, 1]", "1 of 6"}, "require_finite");
    // Past the first vector block of the scan, and at the very end.
    std::vector<float> long_values(10007, 1.0f);
    long_values.back() = -std::numeric_limits<float>::infinity();
    BOOST_TEST(first_non_finite(long_values.data(), static_cast<int64_t>(long_values.size())) == 10006);
    long_values[4099] = std::numeric_limits<float>::quiet_NaN();
    BOOST_TEST(first_non_finite(long_values.data(), static_cast<int64_t>(long_values.size())) == 4099);
    long_values.assign(10007, std::numeric_limits<float>::max());
    BOOST_TEST(first_non_finite(long_values.data(), static_cast<int64_t>(long_values.size())) == -1);
}

BOOST_AUTO_TEST_CASE(overflow_inside_the_network_names_the_first_tensor) {
    const graph g = overflowing_graph();
    tensor x({1, 2, 3, 3});
    std::fill(x.data.begin(), x.data.end(), 1e-3f);
    x.data[1 * 9 + 2 * 3 + 0] = 1e10f; // "a" = 1e40 at [0, 1, 2, 0]
    for (const finite_check check : {finite_check::outputs, finite_check::all}) {
        // 'a' kept: read below (under `outputs`, fusion would otherwise apply the ReLU in the Mul).
        engine_options options = checking(check);
        options.keep = {"a"};
        network net(g, x.shape, options);
        expect_error<numerical_error>([&] { net.forward(x); }, {"'a'", "Mul", "inf", "[0, 1, 2, 0]"}, "overflow in 'a'");
        // The activations stay readable; backward needs a forward pass that succeeded.
        BOOST_TEST(!all_finite(net.read("a")));
        expect_error<error>([&] { net.backward({class_request(0)}); }, {"forward"}, "backward after a refused forward");
        tensor fine = x;
        fine.data[1 * 9 + 2 * 3 + 0] = 1e-3f;
        BOOST_TEST(all_finite(net.forward(fine).at(0)));
        BOOST_TEST(all_finite(net.backward({class_request(0)}).at(0)));
    }
    network unchecked(g, x.shape, checking(finite_check::none));
    BOOST_TEST(!all_finite(unchecked.forward(x).at(0)));
}

// A NaN that a ReLU maps back to a number: the output scan cannot see it, the full check can.
BOOST_AUTO_TEST_CASE(full_check_finds_what_a_relu_hides) {
    // Weights that are not finite: one NaN in the first filter makes channel 0 of "c" NaN.
    std::mt19937 rng(7);
    graph g = small_classifier(rng);
    g.constants.at("w").floats[0] = std::numeric_limits<float>::quiet_NaN();
    const tensor x = random_tensor(rng, {1, 3, 8, 8});
    network all(g, x.shape, checking(finite_check::all));
    expect_error<numerical_error>([&] { all.forward(x); }, {"'c'", "Conv", "nan", "[0, 0, 0, 0]"}, "a NaN weight");

    // An overflow to -inf in "a": the ReLU makes it 0 (oneDNN's jit kernels) or NaN (its reference
    // kernel, -inf * 0), and the max-pool may or may not keep a NaN, so only the full check is
    // asserted here; what the output scan saw is logged.
    graph_builder b({1, 1, 2, 2}, 13, "x");
    b.constant("big", {1}, {1e30});
    b.add("Mul", {"x", "big"}, "a");
    b.add("Relu", {"a"}, "r");
    b.add("MaxPool", {"r"}, "p", {{"kernel_shape", attr_ints({2, 2})}});
    b.add("Flatten", {"p"}, "scores");
    const graph h = b.finish("scores");
    tensor y({1, 1, 2, 2}, {1.0f, -1e10f, 2.0f, 3.0f}); // "a" = -inf at [0, 0, 0, 1]; the max-pool keeps 3e30
    network full(h, y.shape, checking(finite_check::all));
    expect_error<numerical_error>([&] { full.forward(y); }, {"'a'", "-inf", "[0, 0, 0, 1]"}, "-inf hidden by ReLU and max-pool");
    network outputs_only(h, y.shape, checking(finite_check::outputs));
    try {
        BOOST_TEST_MESSAGE("outputs only: scores " << outputs_only.forward(y).at(0).data[0] << " (the -inf was not seen)");
    } catch (const numerical_error& e) {
        BOOST_TEST_MESSAGE("outputs only: " << e.what());
    }
}

BOOST_AUTO_TEST_CASE(non_finite_signal_names_method_target_and_tensor) {
    const graph g = backward_overflow_graph();
    const tensor x({1, 4}, {-1e-35f, 1e-35f, 2e-35f, 3e-35f});
    for (const finite_check check : {finite_check::outputs, finite_check::all}) {
        network net(g, x.shape, checking(check));
        BOOST_TEST_REQUIRE(all_finite(net.forward(x).at(0)), "the forward pass is finite");
        expect_error<numerical_error>([&] { net.backward({class_request(2)}); }, {"gradient", "class 2", "'r'", "inf", "[0, 2]"},
                                      "gradient of class 2");
        expect_error<numerical_error>([&] { net.backward({class_request(1), class_request(3, backward_rule::guided)}); },
                                      {"gradient", "class 1", "'r'", "[0, 1]"}, "the first of two bad requests");
        expect_error<numerical_error>([&] { net.backward({{target{target::kind::tensor_sum, "b", {0}, {}}, backward_rule::deconvnet}}); },
                                      {"deconvnet", "the sum of 'b'", "tensor 'x'", "inf"}, "a layer target (1e20 at 'r', 1e40 at 'x')");
        // Class 0's input is negative: its signal is inf at "r" and the ReLU's backward turns it into 0.
        if (check == finite_check::all) {
            expect_error<numerical_error>([&] { net.backward({class_request(0)}); }, {"class 0", "'r'", "[0, 0]"},
                                          "inf hidden by the ReLU's backward");
            // ... and it is named first only when it is first in the caller's order.
            expect_error<numerical_error>([&] { net.backward({class_request(3), class_request(0)}); }, {"class 3"}, "order");
        } else {
            const tensor sig = net.backward({class_request(0)}).at(0);
            BOOST_TEST(all_finite(sig), "the returned signal is finite (all zero)");
            expect_error<numerical_error>([&] { net.backward({class_request(0), class_request(3)}); }, {"class 3", "'r'"},
                                          "a request whose returned signal is finite is not the one named");
        }
    }
    network unchecked(g, x.shape, checking(finite_check::none));
    unchecked.forward(x);
    BOOST_TEST(!all_finite(unchecked.backward({class_request(2)}).at(0)));
}

BOOST_AUTO_TEST_SUITE_END()
