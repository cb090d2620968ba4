#pragma once
/// Class model visualisation (the paper's section 2): gradient ascent on the input to maximise
/// S_c(I) - lambda * ||I||^2, the unnormalised class score with an L2 penalty, weights fixed.
///
/// Everything happens on the network's input values I (after preprocessing: I = (pixel * scale -
/// mean[c]) / std[c]), so `lr` and `l2` are in those units. One step is plain gradient ascent with a
/// fixed step size, the paper's form:
///
///     I <- I + lr * (dS_c/dI - 2 * l2 * I)      (computed as I * (1 - 2 lr l2) + lr * dS_c/dI)
///
/// where dS_c/dI is the exact gradient (backward_rule::gradient) of the score tensor
/// (network::score_tensor(): the logits before a final softmax, never the probability).
///
/// Defaults (lr 0.1, l2 0.05, 200 steps, zero start, no blur, jitter or clip: the paper's plain form)
/// were chosen on the bundled Fashion-MNIST ConvNet (28x28 grey, inputs normalised with mean 0.286
/// and std 0.353, so the valid pixel range [0, 255] is the input range [-0.81, 2.02]). With them every
/// class becomes the network's top-1 class with probability 1.000 and its score rises from about 0
/// to 85..360. l2 0.05 keeps the iteration stable (1 - 2 lr l2 = 0.99) and the image bounded; a
/// smaller l2 (1e-3) or larger lr only lets a few isolated pixels run further out of the pixel
/// range, a larger one (0.5 and up) stops the scores rising. On this small network the plain form
/// gives mostly oriented-edge texture in which only some classes read as themselves (the two legs
/// of a trouser, the arch of a pullover); the extras, off by default, do better on it: jitter 2
/// with clip (same lr, l2) shows recognisable silhouettes for most classes (pullover, dress, coat,
/// sneaker, bag, ankle boot). For ImageNet-size networks the gradients per pixel are much smaller;
/// expect to raise lr.
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/tensor.hpp>

#include <cstdint>
#include <functional>
#include <vector>

namespace deepinside {

struct class_model_options {
    /// Where the ascent starts, per channel c of the model (values are network input values):
    ///  - zero:  input 0 everywhere. With a normaliser (non-zero mean) this is the training mean
    ///           image as the paper starts from (pixel mean[c] / scale); without one, pixel 0.
    ///  - mean:  the training mean as the preprocessing knows it: input 0 when any mean[c] is
    ///           non-zero (then identical to zero); with no mean at all (every mean[c] 0, a model
    ///           fed raw pixel * scale), mid-grey, pixel 127.5, i.e. input 127.5 * scale / std[c].
    ///  - noise: the `mean` start plus Gaussian noise of 8 pixel levels' standard deviation
    ///           (input 8 * scale / std[c]), drawn from `seed` and the image's class.
    enum class start { zero, mean, noise };
    int steps = 200;             ///< gradient ascent steps (>= 0; 0 only measures the start)
    float lr = 0.1f;             ///< step size, on the network's input values (> 0)
    float l2 = 0.05f;            ///< lambda of the L2 penalty, on the network's input values (>= 0)
    start init = start::zero;    ///< see `start`
    /// Gaussian blur (separable, kernel radius ceil(3 sigma), borders replicated) of every channel
    /// after steps blur_every, 2 blur_every, ...; 0: off. Not in the paper. A positive sigma needs
    /// blur_every >= 1.
    float blur_sigma = 0.0f;
    int blur_every = 0;
    /// Random circular shift (roll) of up to this many pixels along each axis, drawn per step and
    /// image: the image is rolled before the step's forward pass, updated, and rolled back (the
    /// gradient is rolled back before the update, which is the same thing). 0: off. Not in the paper.
    int jitter = 0;
    /// Clamp the input to the valid pixel range [0, 255] (in input values: (0 * scale - mean[c]) /
    /// std[c] to (255 * scale - mean[c]) / std[c]) after every step. Off by default (the paper does
    /// not clip). Not in the paper.
    bool clip = false;
    /// Noise start and jitter. Each image's random numbers depend only on the seed and its class, so
    /// a class gives the same image alone or in any batch.
    uint64_t seed = 0;
};

struct class_model_result {
    tensor images;                                  ///< [K, C, H, W], network input values
    std::vector<float> score_start, score_end;      ///< S_c per class, before the first and after the last step
    std::vector<float> probability_start, probability_end; ///< softmax of the scores, same moments
};

/// Runs the ascent for `classes` as one batch: `net` must have been compiled for a batch of
/// classes.size() images; each step is one forward and one backward pass of the whole batch (one
/// backward request whose target index lists the K classes, one per image), plus one final forward
/// pass for the end scores. Images of a batch do not interact (each image's score depends only on
/// its own input, and the penalty is per pixel), so a batch gives, up to float rounding of the
/// kernels, the images that K single-class runs give.
/// `progress(step, steps)` is called after each step when given. Throws input_error for an empty
/// class list, a class out of range, a network whose batch differs from classes.size() or whose
/// input is not NCHW, preprocessing that does not fit the input's channels, or bad options.
class_model_result class_model(network& net, const std::vector<int64_t>& classes, const class_model_options& options,
                               const preprocess_options& preprocessing,
                               const std::function<void(int, int)>& progress = {});

/// One class image for display: the network input undone to pixels (value * std + mean) / scale
/// (BGR models are turned back to RGB), then contrast-stretched to [0, 255] per image (display only,
/// over all its channels): the 1st percentile of its pixel values (by rank, floor(0.01 (n - 1)))
/// becomes 0, the 99th (ceil(0.99 (n - 1))) 255, values beyond saturate; an image whose two
/// percentiles are equal shows its pixel values as they are, clamped to [0, 255]. [C, H, W] input
/// with C = 1 (grey) or 3 (RGB).
image class_model_image(const tensor& one_image, const preprocess_options& preprocessing);

} // namespace deepinside
