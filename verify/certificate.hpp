#pragma once
/// The verifier: a layer-by-layer certificate, on one image of any model, that Zeiler and Fergus's
/// DeconvNet is the gradient except at ReLU (the paper's section 4), that the engine's deconvnet
/// signal is that DeconvNet, and that the engine's gradient is the derivative of the target.
///
/// Per layer between the target and the input, the same incoming signal (rounded to float, so that
/// both sides see the very same values) goes through the engine's backward operator under the
/// gradient rule (f32, oneDNN) and through the independent DeconvNet operator (deconvnet.hpp, double):
/// the real DeconvNet signal arriving there, and a seeded random one. What the paper predicts for the
/// layer comes from rules::table.
#include "deconvnet.hpp"
#include "reference.hpp"

#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>
#include <deepinside/rules.hpp>
#include <deepinside/tensor.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace deepinside::verify {

/// The bounds the certificate states; each is overridable from the command line.
struct tolerances {
    /// Convolution, fully connected, max pooling, reshapes: engine (f32) against DeconvNet (double),
    /// max |a - b| / max |b| over the layer, for every signal. The issue allows at most 1e-4.
    double layer_max_rel = 1e-5;
    /// The reconstruction composed from the independent operators against the engine's deconvnet
    /// signal at the input: relative L2.
    double end_to_end_rel_l2 = 1e-4;
    /// Directional central differences (double) against the engine's gradient:
    /// |fd - <d, g>| / max(|fd|, |<d, g>|).
    double gradient_check_rel = 1e-4;
};

/// One signal through one layer: engine (a) against DeconvNet (b).
struct signal_difference {
    std::string signal;            ///< "real" (the DeconvNet reconstruction arriving there) or "random"
    double max_abs_diff = 0;       ///< max |a - b|
    double max_rel_diff = 0;       ///< max |a - b| / max |b| (0 when b is all zero and a equals it)
    double differing_fraction = 0; ///< elements with |a - b| > layer bound * max |b| (at ReLU: a != b)
    int64_t elements = 0;
    /// ReLU only: elements where the gradient's mask 1(X > 0) and DeconvNet's 1(R > 0) differ, as a
    /// fraction, and how many elements broke the rule "equal where the masks agree, different (R != 0)
    /// where they do not".
    double mask_disagreement = 0;
    int64_t violations = 0;
};

struct layer_result {
    std::string name, op; ///< node name, ONNX op type
    std::string input, output;
    rules::deconvnet_layer layer = rules::deconvnet_layer::none;
    rules::expectation expected = rules::expectation::not_covered;
    std::string relation; ///< "identical", "differs" or "not-covered": what was observed
    bool ok = true;       ///< the relation is what the paper predicts
    std::string problem;  ///< why not, in one sentence naming the layer
    std::vector<signal_difference> signals; ///< empty when not covered
    double max_abs_diff = 0, max_rel_diff = 0; ///< maxima over the signals
    double differing_fraction = 0;             ///< of the real signal
    int64_t windows = 0, tied_windows = 0;     ///< max pooling: windows, and windows with a tied maximum
    std::string engine_deconvnet;              ///< what the engine's deconvnet rule does here (rules::table)
};

/// Two signals at the input compared the paper's way: the whole signals by relative L2 and cosine,
/// their saliency maps (max over channels of |signal|) by Spearman rank correlation and by the share
/// of the top 5 % pixels of one that are in the top 5 % of the other.
struct similarity {
    double rel_l2 = 0, cosine = 0, spearman = 0, top5_overlap = 0;
};

struct end_to_end_result {
    /// The reconstruction composed from the independent operators from the target down to the input
    /// (the reference's exact backward at layers DeconvNet does not cover) against the engine's
    /// deconvnet signal.
    double rel_l2 = 0, max_rel_diff = 0, bound = 0;
    /// The same for guided backpropagation: the independent operators composed with the forward mask
    /// 1(X > 0) after each rectification, against the engine's guided signal.
    double guided_rel_l2 = 0, guided_max_rel_diff = 0;
    bool ok = true; ///< both within `bound`
    std::vector<std::string> composed_with_reference; ///< not-covered layers passed by the reference
    similarity gradient_deconvnet, gradient_guided, deconvnet_guided;
};

/// The engine's gradient certified on the user's model. Directional central differences of the
/// target in double (`finite_difference`) are compared with the engine's gradient (`engine`, the dot
/// product with the direction). Where the engine's f32 forward and the exact one take a different
/// discrete decision (a ReLU input or a max-pooling gap within f32 rounding of zero), the two are
/// derivatives of functions that differ there, and the direct comparison can miss by far more than
/// the arithmetic error: the check then goes through the reference, which is exact on both sides:
/// the finite differences against the reference's gradient on its own double forward pass
/// (`reference`), and the engine's gradient against the reference's backward run on the engine's
/// own activations (same decisions; `engine_vs_reference`, relative L2).
struct gradient_check_result {
    struct direction {
        double finite_difference = 0, engine = 0, rel_error = 0, reference = 0, reference_rel_error = 0;
        double step = 0;              ///< the step taken (the first of step, step/4, ... without a crossing)
        int64_t decisions_crossed = 0; ///< decisions changed between x - h d and x + h d: 0, or the direction is left out
    };
    std::vector<direction> directions;
    /// The check runs at the image plus `jitter` times seeded standard-normal noise (ties of max
    /// pooling and exact ReLU kinks make the score non-differentiable at many real images), with
    /// central differences of step `step` along each direction.
    double jitter = 0, step = 0, bound = 0;
    double max_rel_error = 0;           ///< finite differences against the engine's gradient (directions without a crossing)
    double max_reference_rel_error = 0; ///< finite differences against the reference's gradient
    double engine_vs_reference = 0;     ///< relative L2, the reference's backward on the engine's activations
    int64_t decisions = 0, decisions_differing = 0; ///< ReLU/max-pool/Clip decisions, and how many f32 and double take differently
    std::string basis; ///< "direct", "through the reference", or "failed"
    bool ok = true;
};

struct image_certificate {
    std::string image;          ///< the file, or "X.npy[k]"
    target what;                ///< the resolved target (top-1 class filled in)
    std::string target_text;    ///< the target in words
    std::vector<float> scores;  ///< the class-score tensor for this image
    tensor input;               ///< [1, C, H, W] as given to the network
    tensor gradient, deconvnet, guided; ///< the engine's three signals at the input
    std::vector<layer_result> layers;   ///< from the target down to the input
    end_to_end_result end_to_end;
    gradient_check_result gradient_check;
    bool ok = true;
    double seconds = 0;
    /// Where the time went: engine (forward and the three signals), layers.engine / layers.deconvnet
    /// / layers.other (the per-layer comparisons), end_to_end, gradient_check.
    std::map<std::string, double> phase_seconds;
};

struct verify_options {
    tolerances tol;
    int directions = 3;  ///< random directions of the gradient check
    uint64_t seed = 1;   ///< of the random signals and directions
    double jitter = 1e-3; ///< gradient check: the jitter added to the image, relative to its RMS
    double step = 1e-8;   ///< gradient check: the central-difference step, relative to the image's RMS
    zf::operators operators; ///< the independent DeconvNet (tests plant faults here)
    engine_options engine;   ///< nonrelu defaults to gradient here: reported per layer, not refused
    verify_options() { engine.nonrelu = nonrelu_policy::gradient; }
};

/// Certifies images of one input shape on one model: the engine and the reference are built once.
class verifier {
public:
    verifier(const graph& g, const shape_t& input_shape, verify_options options = {});
    ~verifier();
    verifier(const verifier&) = delete;
    verifier& operator=(const verifier&) = delete;

    /// `image` [1, C, H, W]; `t` with an empty index on a class score means the top-1 class.
    image_certificate certify(const tensor& image, const target& t, const std::string& image_name);

    /// The compiled engine (read-only use: its last forward pass is the last certified image's).
    network& engine();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

} // namespace deepinside::verify
