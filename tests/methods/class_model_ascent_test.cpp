// Class model visualisation on the bundled model: the ascent does what the paper says (each class's
// score rises and the class wins), a batch equals single runs, the L2 term acts, and one step is
// exactly lr * (dS_c/dI - 2 lambda I) of the network's own gradient, which itself matches a central
// difference of the objective.
#include "class_model_support.hpp"

#include <cmath>
#include <random>

using namespace class_model_test;
using deepinside::test_support::rel_l2;

BOOST_AUTO_TEST_SUITE(class_model_ascent)

BOOST_AUTO_TEST_CASE(every_class_wins_with_the_defaults) {
    bundled b;
    const std::vector<int64_t> classes{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    auto net = b.net(10);
    int calls = 0, last = 0;
    const di::class_model_options o; // the documented defaults
    const auto r = di::class_model(*net, classes, o, b.pre, [&](int done, int total) {
        ++calls;
        last = done;
        BOOST_CHECK_EQUAL(total, o.steps);
    });
    BOOST_TEST(calls == o.steps);
    BOOST_TEST(last == o.steps);
    BOOST_TEST_REQUIRE(r.images.shape == (di::shape_t{10, 1, 28, 28}));
    BOOST_TEST_REQUIRE(r.score_start.size() == 10u);
    // The zero start is one image for every class: the start scores are the scores of that image.
    net->forward(di::tensor({10, 1, 28, 28}));
    const di::tensor start = net->read(net->score_tensor());
    net->forward(r.images);
    const di::tensor end = net->read(net->score_tensor());
    for (int64_t k = 0; k < 10; ++k) {
        BOOST_TEST_CONTEXT("class " << k) {
            BOOST_TEST(r.score_start[size_t(k)] == start.data[size_t(k * 10 + k)], boost::test_tools::tolerance(1e-5f));
            BOOST_TEST(r.score_end[size_t(k)] == end.data[size_t(k * 10 + k)], boost::test_tools::tolerance(1e-5f));
            // "Far above its start": by more than 20 logits (the start scores lie within a few units of 0).
            BOOST_TEST(r.score_end[size_t(k)] > r.score_start[size_t(k)] + 20.0f,
                       "score " << r.score_start[size_t(k)] << " -> " << r.score_end[size_t(k)]);
            BOOST_TEST(argmax_row(end, k) == k);
            BOOST_TEST(r.probability_end[size_t(k)] > 0.9f);
        }
    }
}

// Images of a batch do not interact: each image's scores depend only on that image (no batch norm in
// training mode, no op mixing the batch), the penalty is per pixel, and the target index gives each
// image its own class. So the batch follows the same iteration as K single runs; what may differ is
// float rounding, since oneDNN may pick other kernels (blocking, reduction order) for batch 10 than
// for batch 1. A rounding difference of ~1e-7 relative per step can grow along 200 steps of
// ascent, but the iteration is stable (the penalty contracts, 1 - 2 lr lambda < 1), so the images
// must agree to 1e-4 relative (L2) and the scores to 1e-4 relative.
BOOST_AUTO_TEST_CASE(a_batch_equals_single_runs) {
    bundled b;
    const std::vector<int64_t> classes{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    di::class_model_options o;
    o.init = di::class_model_options::start::noise; // every image different from the start
    o.seed = 7;
    auto batch_net = b.net(10);
    const auto all = di::class_model(*batch_net, classes, o, b.pre);
    auto single_net = b.net(1);
    for (int64_t k = 0; k < 10; ++k) {
        BOOST_TEST_CONTEXT("class " << k) {
            const auto one = di::class_model(*single_net, {k}, o, b.pre);
            const double d = rel_l2(image_of(all.images, k), one.images);
            BOOST_TEST_MESSAGE("class " << k << ": batch vs single rel. L2 " << d);
            BOOST_TEST(d < 1e-4);
            BOOST_TEST(all.score_end[size_t(k)] == one.score_end[0], boost::test_tools::tolerance(1e-4f));
            BOOST_TEST(all.score_start[size_t(k)] == one.score_start[0], boost::test_tools::tolerance(1e-5f));
        }
    }
}

// With a huge lambda the ascent's fixed point is I = dS/dI / (2 lambda): the image stays near zero
// (here lambda = 1000, so |I| <= max |dS/dI| / 2000 once settled, below 1e-3 on this model), while
// the default lambda lets it grow by orders of magnitude more.
BOOST_AUTO_TEST_CASE(a_huge_l2_keeps_the_image_near_zero) {
    bundled b;
    auto net = b.net(2);
    di::class_model_options o;
    o.steps = 100;
    o.lr = 1e-4f; // stable: |1 - 2 lr lambda| = 0.8 < 1
    o.l2 = 1000.0f;
    const auto held = di::class_model(*net, {3, 8}, o, b.pre);
    const auto free = di::class_model(*net, {3, 8}, di::class_model_options{}, b.pre);
    BOOST_TEST_MESSAGE("max |I|: lambda 1000 " << max_abs(held.images) << ", the defaults " << max_abs(free.images));
    BOOST_TEST(max_abs(held.images) < 1e-3);
    BOOST_TEST(max_abs(held.images) < 1e-3 * max_abs(free.images));
    // (No check of the fixed point I = g(I) / 2000 itself: near the flat zero image the max-pool
    // windows are ties, so g jumps with every tiny change of I and the iteration keeps moving
    // within that bound instead of settling.)
    // And the default penalty holds the image below the norm it reaches without one.
    di::class_model_options d0;
    d0.l2 = 0.0f;
    const auto without = di::class_model(*net, {3, 8}, d0, b.pre);
    BOOST_TEST(rel_l2(free.images, di::tensor(free.images.shape)) < rel_l2(without.images, di::tensor(without.images.shape)));
}

// One step from a noise start, recomputed from net.backward directly: I1 = I0 + lr (g - 2 lambda I0).
// The same network computes g from the same input with the same kernels, so the only difference is
// the rounding of the update (the library fuses it as I0 (1 - 2 lr lambda) + lr g): 1e-6 relative.
BOOST_AUTO_TEST_CASE(one_step_is_lr_times_the_objective_gradient) {
    bundled b;
    const std::vector<int64_t> classes{2, 9};
    auto net = b.net(2);
    di::class_model_options o;
    o.init = di::class_model_options::start::noise;
    o.seed = 3;
    o.lr = 0.5f;
    o.l2 = 0.2f;
    o.steps = 0;
    const di::tensor i0 = di::class_model(*net, classes, o, b.pre).images;
    BOOST_TEST_REQUIRE(max_abs(i0) > 0.01); // noise: a non-zero I0, so the penalty's term is seen
    o.steps = 1;
    const di::tensor i1 = di::class_model(*net, classes, o, b.pre).images;

    net->forward(i0);
    const di::tensor g =
        net->backward({{di::target{di::target::kind::class_score, "", classes, {}}, di::backward_rule::gradient}}).at(0);
    di::tensor expected(i0.shape);
    for (size_t i = 0; i < i0.data.size(); ++i)
        expected.data[i] = static_cast<float>(double(i0.data[i]) + double(o.lr) * (double(g.data[i]) - 2.0 * o.l2 * double(i0.data[i])));
    BOOST_TEST(rel_l2(i1, expected) < 1e-6);
    // The step moved the image by a visible amount (not a no-op that the tolerance would hide).
    BOOST_TEST(rel_l2(i1, i0) > 1e-3);
}

// The step direction (I1 - I0) / lr is the gradient of J(I) = S_c(I) - lambda ||I||^2: compared with
// central differences of J along random directions, J evaluated by forward passes (float32 network,
// sums in double). eps = 1e-2 along a unit direction: the float32 scores (|S| ~ 10) carry ~1e-5 of
// rounding, i.e. ~5e-4 in the difference quotient, and ReLU/max-pool switches within eps are rare
// but possible, so the directional derivatives must agree to 2 % of the gradient's norm.
BOOST_AUTO_TEST_CASE(the_step_matches_a_finite_difference_of_the_objective) {
    bundled b;
    const int64_t c = 4;
    auto net = b.net(1);
    di::class_model_options o;
    o.init = di::class_model_options::start::noise;
    o.seed = 11;
    o.l2 = 0.05f;
    o.lr = 0.1f;
    o.steps = 0;
    const di::tensor i0 = di::class_model(*net, {c}, o, b.pre).images;
    o.steps = 1;
    const di::tensor i1 = di::class_model(*net, {c}, o, b.pre).images;
    std::vector<double> grad(i0.data.size());
    double grad_norm = 0;
    for (size_t i = 0; i < grad.size(); ++i) {
        grad[i] = (double(i1.data[i]) - double(i0.data[i])) / o.lr;
        grad_norm += grad[i] * grad[i];
    }
    grad_norm = std::sqrt(grad_norm);

    auto objective = [&](const std::vector<double>& x) {
        di::tensor t(i0.shape);
        double sq = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            t.data[i] = static_cast<float>(x[i]);
            sq += x[i] * x[i];
        }
        net->forward(t);
        return double(net->read(net->score_tensor()).data[size_t(c)]) - double(o.l2) * sq;
    };
    std::mt19937 rng(5);
    std::normal_distribution<double> normal;
    const double eps = 1e-2;
    for (int trial = 0; trial < 5; ++trial) {
        std::vector<double> d(grad.size()), plus(grad.size()), minus(grad.size());
        double n = 0;
        for (double& v : d) {
            v = normal(rng);
            n += v * v;
        }
        n = std::sqrt(n);
        double analytic = 0;
        for (size_t i = 0; i < d.size(); ++i) {
            d[i] /= n;
            plus[i] = double(i0.data[i]) + eps * d[i];
            minus[i] = double(i0.data[i]) - eps * d[i];
            analytic += grad[i] * d[i];
        }
        const double numeric = (objective(plus) - objective(minus)) / (2 * eps);
        BOOST_TEST_MESSAGE("trial " << trial << ": analytic " << analytic << ", central difference " << numeric);
        BOOST_TEST(std::fabs(analytic - numeric) < 0.02 * grad_norm);
    }
    // Along the gradient itself the two must agree closely (the largest directional derivative).
    std::vector<double> plus(grad.size()), minus(grad.size());
    for (size_t i = 0; i < grad.size(); ++i) {
        plus[i] = double(i0.data[i]) + eps * grad[i] / grad_norm;
        minus[i] = double(i0.data[i]) - eps * grad[i] / grad_norm;
    }
    const double numeric = (objective(plus) - objective(minus)) / (2 * eps);
    BOOST_TEST(numeric == grad_norm, boost::test_tools::tolerance(0.02));
}

BOOST_AUTO_TEST_SUITE_END()
