// Max pooling with equal maxima in a window: the signal must land on the FIRST maximum in row-major
// order of each window (PyTorch's and Caffe's convention, and the reference's). Expected signals are
// worked out by hand below, not computed by any code under test.
#include "support.hpp"

using namespace engine_test;

namespace {

/// Windows (of `k` x `k`, stride `s`, no padding, over an h x w plane) whose maximum occurs more than once.
int count_ties(const std::vector<float>& plane, int64_t h, int64_t w, int64_t k, int64_t s) {
    int ties = 0;
    for (int64_t oy = 0; oy + k <= h; oy += s)
        for (int64_t ox = 0; ox + k <= w; ox += s) {
            float best = plane[static_cast<size_t>(oy * w + ox)];
            int count = 0;
            for (int64_t y = oy; y < oy + k; ++y)
                for (int64_t x = ox; x < ox + k; ++x) best = std::max(best, plane[static_cast<size_t>(y * w + x)]);
            for (int64_t y = oy; y < oy + k; ++y)
                for (int64_t x = ox; x < ox + k; ++x) count += plane[static_cast<size_t>(y * w + x)] == best;
            ties += count > 1;
        }
    return ties;
}

/// MaxPool (k x k, stride s) on a 4x4 plane repeated over `channels` channels; the signal for the
/// target "sum of the pool output" (a seed of ones) under each rule must equal `expected` in every
/// channel. With channels > 1 a 1x1 identity convolution runs first so that the pool sees oneDNN's
/// blocked layout rather than plain NCHW.
void check_ties(const std::vector<float>& plane, int64_t k, int64_t s, const std::vector<float>& expected, int64_t channels,
                const std::string& label) {
    graph_builder b({1, channels, 4, 4});
    std::string src = "x";
    if (channels > 1) {
        std::vector<double> eye(static_cast<size_t>(channels * channels), 0.0);
        for (int64_t c = 0; c < channels; ++c) eye[static_cast<size_t>(c * channels + c)] = 1.0;
        b.constant("eye", {channels, channels, 1, 1}, eye);
        src = b.add("Conv", {"x", "eye"}, "copy", {{"kernel_shape", attr_ints({1, 1})}});
    }
    b.add("MaxPool", {src}, "y", {{"kernel_shape", attr_ints({k, k})}, {"strides", attr_ints({s, s})}});
    const graph g = b.finish("y");
    tensor x({1, channels, 4, 4});
    for (int64_t c = 0; c < channels; ++c) std::copy(plane.begin(), plane.end(), x.data.begin() + c * 16);

    network net(g, x.shape);
    net.forward(x);
    const auto sig = net.backward({{target{target::kind::tensor_sum, "y", {}, {}}, backward_rule::gradient},
                                   {target{target::kind::tensor_sum, "y", {}, {}}, backward_rule::deconvnet},
                                   {target{target::kind::tensor_sum, "y", {}, {}}, backward_rule::guided}});
    BOOST_TEST_MESSAGE(label << ": " << count_ties(plane, 4, 4, k, s) << " windows with tied maxima");
    for (size_t r = 0; r < sig.size(); ++r)
        for (int64_t c = 0; c < channels; ++c)
            for (size_t i = 0; i < 16; ++i) {
                const float got = sig[r].data[static_cast<size_t>(c * 16) + i];
                if (got != expected[i]) {
                    BOOST_ERROR(label << ", rule " << r << ", channel " << c << ": signal at (" << i / 4 << ", " << i % 4 << ") is "
                                      << got << ", expected " << expected[i] << " (the first maximum in row-major order)");
                    return;
                }
            }
    // The reference follows the same convention (a consistency check of the two implementations).
    const verify::reference_network ref(g);
    const auto acts = ref.forward(to_d(x));
    dtensor seed(acts.at("y").shape);
    std::fill(seed.data.begin(), seed.data.end(), 1.0);
    const dtensor want = ref.backward(acts, "y", seed, backward_rule::gradient);
    for (size_t i = 0; i < 16; ++i) BOOST_CHECK_EQUAL(want.data[i], expected[i]);
}

// 2x2 windows, stride 2:
//   [5 5 | 1 2]   window (0,0): 5 three times  -> (0,0)
//   [3 5 | 2 2]   window (0,1): 2 three times  -> (0,3)
//   [0 0 | 7 1]   window (1,0): 0 four times   -> (2,0)
//   [0 0 | 1 7]   window (1,1): 7 twice        -> (2,2)
const std::vector<float> plane_2x2 = {5, 5, 1, 2, 3, 5, 2, 2, 0, 0, 7, 1, 0, 0, 1, 7};
const std::vector<float> expected_2x2 = {1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0};

// 3x3 windows, stride 1 (overlapping), four windows all holding the four 9s: each routes to (1,1).
const std::vector<float> plane_3x3 = {1, 1, 1, 1, 1, 9, 9, 1, 1, 9, 9, 1, 1, 1, 1, 1};
const std::vector<float> expected_3x3 = {0, 0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

// 3x3 windows, stride 1, a constant plane: every window is a 9-way tie and routes to its top-left.
const std::vector<float> plane_flat(16, 0.5f);
const std::vector<float> expected_flat = {1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};

} // namespace

BOOST_AUTO_TEST_SUITE(max_pool_ties)

BOOST_AUTO_TEST_CASE(windows_2x2_stride_2_plain) { check_ties(plane_2x2, 2, 2, expected_2x2, 1, "2x2/2 plain"); }
BOOST_AUTO_TEST_CASE(windows_2x2_stride_2_blocked) { check_ties(plane_2x2, 2, 2, expected_2x2, 16, "2x2/2 blocked"); }
BOOST_AUTO_TEST_CASE(windows_3x3_stride_1_plain) { check_ties(plane_3x3, 3, 1, expected_3x3, 1, "3x3/1 plain"); }
BOOST_AUTO_TEST_CASE(windows_3x3_stride_1_blocked) { check_ties(plane_3x3, 3, 1, expected_3x3, 16, "3x3/1 blocked"); }
BOOST_AUTO_TEST_CASE(flat_plane_3x3_stride_1_plain) { check_ties(plane_flat, 3, 1, expected_flat, 1, "3x3/1 flat plain"); }
BOOST_AUTO_TEST_CASE(flat_plane_3x3_stride_1_blocked) { check_ties(plane_flat, 3, 1, expected_flat, 16, "3x3/1 flat blocked"); }

BOOST_AUTO_TEST_SUITE_END()
