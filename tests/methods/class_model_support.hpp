#pragma once
// Helpers of the class model tests (tests/methods/class_model_*.cpp): the bundled model, compiled
// networks for a batch, and slices of a batch of images.
#include <deepinside/class_model.hpp>
#include <deepinside/errors.hpp>
#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

// Only main.cpp may define the module (tests/CMakeLists.txt defines it for every file of the area).
#undef BOOST_TEST_MODULE
#include <boost/test/unit_test.hpp>

#include "support/environment.hpp"
#include "support/numbers.hpp"
#include "support/requirements.hpp"

#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace class_model_test {

namespace di = deepinside;

inline std::string bundled_model_path() {
    return std::string(deepinside::test_support::env("DEEPINSIDE_SOURCE_DIR")) + "/models/fashion-mnist-convnet.onnx";
}

/// The bundled Fashion-MNIST ConvNet (28x28 grey, 10 classes, normalised inputs), read once per call.
struct bundled {
    di::graph g = di::read_onnx(bundled_model_path());
    di::preprocess_options pre = di::preprocess_from_metadata(g.metadata, di::preprocess_options{});

    /// A network for a batch of `n` images; two threads at most, as the suite's other areas.
    std::unique_ptr<di::network> net(int64_t n, di::finite_check check = di::finite_check::outputs) const {
        di::engine_options o;
        o.check = check;
        return std::make_unique<di::network>(g, di::shape_t{n, 1, 28, 28}, o);
    }
};

/// Image k of a batch [K, C, H, W] as [1, C, H, W].
inline di::tensor image_of(const di::tensor& batch, int64_t k) {
    const int64_t per = batch.size() / batch.shape[0];
    di::shape_t s = batch.shape;
    s[0] = 1;
    return di::tensor(s, std::vector<float>(batch.data.begin() + k * per, batch.data.begin() + (k + 1) * per));
}

/// The largest |value| of a tensor.
inline double max_abs(const di::tensor& t) {
    double m = 0;
    for (float v : t.data) m = std::max(m, double(std::fabs(v)));
    return m;
}

/// Index of the largest value of row `k` of a [K, classes] tensor.
inline int64_t argmax_row(const di::tensor& scores, int64_t k) {
    const int64_t n = scores.size() / scores.shape[0];
    const float* row = scores.data.data() + k * n;
    return std::max_element(row, row + n) - row;
}

} // namespace class_model_test
