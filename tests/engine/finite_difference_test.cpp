// The engine's gradient against central differences of the class score, computed by the double
// reference (verify::finite_difference), at random input coordinates.
//
// Criterion: |fd - g| / max(|fd|, |g|, 1e-3 max|g|) <= 1e-3, g the engine's f32 gradient. These
// nets are piecewise linear (ReLU, max pooling, conv, gemm), so the central difference in double is
// exact up to roundoff (~eps |S| / h ~ 1e-11) unless the step h crosses a kink of a ReLU or a
// max-pool switch; the f32 engine carries ~1e-6 relative error per value, so 1e-3 leaves a wide
// margin yet catches any wrong term. The floor 1e-3 max|g| keeps coordinates with a near-zero
// gradient from dividing by ~0.
//
// Kinks: a coordinate whose step crosses one is recognised by the differences with h and h/2
// disagreeing, or by the one-sided slopes (f(x+h)-f(x))/h and (f(x)-f(x-h))/h disagreeing (exactly
// linear pieces give the same slope either way); it is skipped and counted, and at most 3 of 20 may
// be. A point sitting exactly ON a kink is invisible to central differences alone (they return the
// mean of the two one-sided slopes whatever h is): that is the case of the shared images, whose
// 8-bit pixels leave flat regions where conv outputs tie exactly inside a max-pool window. So the
// image gets uniform noise of +-1e-2 first (2.5 grey levels), which moves it to a generic point without changing what
// it shows.
#include "support.hpp"

using namespace engine_test;

namespace {

void check_fd(const std::string& name, const graph& g, const tensor& x_in) {
    // One image: the class score of image 0, the FD perturbs that image only.
    tensor x = x_in;
    if (x.shape[0] > 1) {
        const int64_t per = x.size() / x.shape[0];
        x.shape[0] = 1;
        x.data.resize(static_cast<size_t>(per));
    }
    BOOST_REQUIRE_MESSAGE(g.inputs[0].shape[0] <= 1, name << ": the model's batch is fixed at " << g.inputs[0].shape[0]
                                                            << "; these checks perturb one image");
    std::mt19937 noise_rng(77);
    std::uniform_real_distribution<float> noise(-1e-2f, 1e-2f);
    for (float& v : x.data) v += noise(noise_rng);
    network net(g, x.shape);
    const auto outs = net.forward(x);
    const tensor scores = net.read(net.score_tensor());
    const int64_t cls = argmax(scores.data, 0, scores.data.size());
    const tensor grad = net.backward({{target{target::kind::class_score, "", {cls}, {}}, backward_rule::gradient}})[0];

    const verify::reference_network ref(g);
    const dtensor xd = to_d(x);
    dtensor seed(scores.shape);
    seed.data[static_cast<size_t>(cls)] = 1.0;
    const double gmax = max_abs(grad);
    BOOST_REQUIRE(gmax > 0);

    std::mt19937 rng(20240);
    std::uniform_int_distribution<size_t> pick(0, x.data.size() - 1);
    constexpr double h = 1e-4;
    int checked = 0, skipped = 0, failed = 0;
    double worst = 0;
    for (int i = 0; i < 20; ++i) {
        const size_t c = pick(rng);
        const double fd = verify::finite_difference(ref, xd, ref.score_tensor(), seed, c, h);
        const double fd_half = verify::finite_difference(ref, xd, ref.score_tensor(), seed, c, h / 2);
        // One-sided slopes as central differences of step h/2 around x + h/2 and x - h/2.
        dtensor right_x = xd, left_x = xd;
        right_x.data[c] += h / 2;
        left_x.data[c] -= h / 2;
        const double right = verify::finite_difference(ref, right_x, ref.score_tensor(), seed, c, h / 2);
        const double left = verify::finite_difference(ref, left_x, ref.score_tensor(), seed, c, h / 2);
        const double g_c = grad.data[c];
        const double scale = std::max({std::fabs(fd), std::fabs(g_c), 1e-3 * gmax});
        if (std::fabs(fd - fd_half) > 1e-6 * scale || std::fabs(right - left) > 1e-6 * scale) {
            ++skipped; // the step crossed a kink
            continue;
        }
        ++checked;
        const double err = std::fabs(fd - g_c) / scale;
        worst = std::max(worst, err);
        if (err > 1e-3) {
            ++failed;
            BOOST_ERROR(name << ": coordinate " << c << ": engine gradient " << g_c << " vs finite difference " << fd
                             << " (relative " << err << ")");
        }
    }
    BOOST_TEST_MESSAGE(name << ": class " << cls << ", " << checked << " coordinates checked, " << skipped
                            << " skipped (kink crossed), max relative error " << worst);
    BOOST_CHECK_MESSAGE(skipped <= 3, name << ": " << skipped << " of 20 coordinates crossed a kink");
    BOOST_CHECK_EQUAL(failed, 0);
}

} // namespace

BOOST_AUTO_TEST_SUITE(finite_differences)

BOOST_AUTO_TEST_CASE(bundled_fashion_mnist_convnet) {
    const graph g = read_onnx(bundled_model().string());
    std::mt19937 rng(11);
    check_fd("bundled fashion-mnist-convnet", g, random_tensor(rng, concrete_input_shape(g), 0.0, 1.0));
}

BOOST_AUTO_TEST_CASE(mnist_cnn, *needs_shared_models("mnist-cnn")) {
    const fs::path dir = shared_model("mnist-cnn");
    check_fd("mnist-cnn", read_onnx((dir / "model.onnx").string()), read_npy((dir / "input.npy").string()));
}

BOOST_AUTO_TEST_CASE(gtsrb_cnn, *needs_shared_models("gtsrb-cnn")) {
    const fs::path dir = shared_model("gtsrb-cnn");
    check_fd("gtsrb-cnn", read_onnx((dir / "model.onnx").string()), read_npy((dir / "input.npy").string()));
}

BOOST_AUTO_TEST_SUITE_END()
