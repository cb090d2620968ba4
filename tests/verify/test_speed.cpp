// Timing of a VGG-11 forward and backward at 224x224 in double (random weights). Disabled by default
// (about 3 GB and tens of seconds); run with --run_test=speed.
#include "support.hpp"

#include <boost/test/unit_test.hpp>

#include <chrono>

using namespace deepinside;
using namespace deepinside::verify;
using namespace deepinside::verify::testing;

BOOST_AUTO_TEST_SUITE(speed, *boost::unit_test::disabled())

BOOST_AUTO_TEST_CASE(vgg11_forward_backward_224) {
    std::mt19937 rng(41);
    graph_builder b({1, 3, 224, 224});
    std::string t = "x";
    int64_t c = 3, layer = 0;
    const std::vector<int64_t> widths = {64, -1, 128, -1, 256, 256, -1, 512, 512, -1, 512, 512, -1};
    for (int64_t w : widths) {
        const std::string id = std::to_string(layer++);
        if (w < 0) {
            t = b.add("MaxPool", {t}, "p" + id, {{"kernel_shape", attr_ints({2, 2})}, {"strides", attr_ints({2, 2})}});
            continue;
        }
        // He-like scale keeps activations of order one through the stack.
        dtensor weights = random_tensor(rng, {w, c, 3, 3}, -1, 1);
        for (double& v : weights.data) v *= std::sqrt(6.0 / (9.0 * double(c)));
        b.constant("w" + id, {w, c, 3, 3}, weights.data);
        b.constant("b" + id, {w}, random_tensor(rng, {w}, -0.1, 0.1).data);
        t = b.add("Conv", {t, "w" + id, "b" + id}, "c" + id, {{"pads", attr_ints({1, 1, 1, 1})}});
        t = b.add("Relu", {t}, "r" + id);
        c = w;
    }
    t = b.add("Flatten", {t}, "flat");
    int64_t in = 512 * 7 * 7;
    for (int64_t out : {4096, 4096, 1000}) {
        const std::string id = std::to_string(layer++);
        dtensor weights = random_tensor(rng, {out, in}, -1, 1);
        for (double& v : weights.data) v *= std::sqrt(6.0 / double(in));
        b.constant("fc" + id, {out, in}, weights.data);
        t = b.add("Gemm", {t, "fc" + id}, "g" + id, {{"transB", attr_int(1)}});
        if (out != 1000) t = b.add("Relu", {t}, "fr" + id);
        in = out;
    }
    const graph g = b.finish(t);
    const reference_network net(g);
    const dtensor x = random_tensor(rng, {1, 3, 224, 224});
    const auto t0 = std::chrono::steady_clock::now();
    const auto acts = net.forward(x);
    const auto t1 = std::chrono::steady_clock::now();
    dtensor seed({1, 1000});
    seed.data[7] = 1;
    const dtensor dx = net.backward(acts, t, seed, backward_rule::guided);
    const auto t2 = std::chrono::steady_clock::now();
    const double fwd = std::chrono::duration<double>(t1 - t0).count();
    const double bwd = std::chrono::duration<double>(t2 - t1).count();
    BOOST_TEST_MESSAGE("VGG-11 224x224 double: forward " << fwd << " s, guided backward " << bwd << " s");
    BOOST_TEST(fwd < 30.0);
    BOOST_TEST(dx.shape == x.shape);
}

BOOST_AUTO_TEST_SUITE_END()
