// The bundled model, run by our engine on all 10,000 Fashion-MNIST test images from Debian's
// dataset-fashion-mnist package, reaches the accuracy the README states (>= 91%, recorded 93.00%
// by tools/train_fashion_mnist.py with PyTorch): the exported file, not the training run, is what
// ships. The images are decoded to .npy by NumPy (gzip IDX), then preprocessed with the model's own
// metadata (deepinside.mean / .std / .scale) exactly as `classify` does.
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

#include "support/environment.hpp"
#include "support/requirements.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <filesystem>
#include <string>

namespace fs = std::filesystem;
using namespace deepinside;

namespace {
using deepinside::test_support::env;
} // namespace

BOOST_AUTO_TEST_CASE(bundled_model_accuracy_on_the_fashion_mnist_test_set,
                     *deepinside::test_support::needs_file("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
                                                           "dataset-fashion-mnist") *
                         deepinside::test_support::needs_python("numpy")) {
    const std::string data = "/usr/share/datasets/fashion-mnist";
    const fs::path model =
        deepinside::test_support::require_file(fs::path(env("DEEPINSIDE_SOURCE_DIR")) / "models" / "fashion-mnist-convnet.onnx");
    const fs::path dir = fs::path(env("DEEPINSIDE_BUILD_DIR")) / "fashion-mnist-test";
    fs::create_directories(dir);
    // Raw 0..255 pixels as float32 [10000, 1, 28, 28] and labels as float32 [10000].
    const std::string script =
        "import gzip, numpy as np, sys\n"
        "d, o = sys.argv[1], sys.argv[2]\n"
        "x = np.frombuffer(gzip.open(d + '/t10k-images-idx3-ubyte.gz').read(), np.uint8, offset=16)\n"
        "y = np.frombuffer(gzip.open(d + '/t10k-labels-idx1-ubyte.gz').read(), np.uint8, offset=8)\n"
        "np.save(o + '/images.npy', x.reshape(-1, 1, 28, 28).astype(np.float32))\n"
        "np.save(o + '/labels.npy', y.astype(np.float32))\n";
    const fs::path py = dir / "decode.py";
    {
        std::ofstream(py) << script;
    }
    const std::string cmd = std::string(env("DEEPINSIDE_PYTHON")) + " " + py.string() + " " + data + " " + dir.string();
    BOOST_REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, "decoding the test set failed: " << cmd);
    const tensor images = read_npy((dir / "images.npy").string());
    const tensor labels = read_npy((dir / "labels.npy").string());
    BOOST_REQUIRE((images.shape == shape_t{10000, 1, 28, 28}));

    graph g = read_onnx(model.string());
    const preprocess_options pre = preprocess_from_metadata(g.metadata, preprocess_options{});
    BOOST_REQUIRE(pre.mean.size() == 1 && pre.std.size() == 1);
    const int64_t batch = 500, per = 28 * 28;
    network net(g, {batch, 1, 28, 28});
    int64_t correct = 0;
    for (int64_t start = 0; start < 10000; start += batch) {
        tensor x({batch, 1, 28, 28});
        for (int64_t i = 0; i < batch * per; ++i)
            x.data[i] = (images.data[start * per + i] * pre.scale - pre.mean[0]) / pre.std[0];
        const tensor scores = net.forward(x).front();
        for (int64_t b = 0; b < batch; ++b) {
            const float* s = scores.data.data() + b * 10;
            const int64_t top = std::max_element(s, s + 10) - s;
            correct += top == static_cast<int64_t>(labels.data[start + b]);
        }
    }
    const double accuracy = double(correct) / 10000.0;
    BOOST_TEST_MESSAGE("bundled model: " << correct << " / 10000 correct (" << 100.0 * accuracy << " %)");
    BOOST_TEST(accuracy >= 0.91);
}
