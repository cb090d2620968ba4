#pragma once
/// The compiled network: a graph compiled on oneDNN for one input shape. Forward runs once; backward
/// runs as often as asked, under a rule, for one or many targets, batching them in one pass.
#include <deepinside/graph.hpp>
#include <deepinside/tensor.hpp>

#include <memory>
#include <string>
#include <vector>

namespace deepinside {

/// How a backward pass treats nonlinearities (the paper's section 4). Every other op runs its exact
/// backward under all three.
enum class backward_rule {
    gradient,  ///< exact derivative: ReLU passes R where its input X > 0
    deconvnet, ///< Zeiler & Fergus: ReLU passes relu(R), ignoring the forward input
    guided,    ///< Springenberg et al.: ReLU passes R where R > 0 and X > 0
};

/// What deconvnet and guided do at a nonlinearity other than ReLU, where they have no agreed
/// definition (ReLU6, LeakyReLU, ELU, SELU, sigmoid, tanh).
enum class nonrelu_policy {
    refuse,   ///< throw unsupported_error naming the layer (the default)
    gradient, ///< the user's explicit choice: apply the exact derivative there
};

const char* to_string(backward_rule r);
backward_rule parse_backward_rule(const std::string& name); ///< throws input_error

/// Which computed values forward() and backward() check for NaN and infinity. A value found throws
/// numerical_error naming the first tensor holding one (see errors.hpp); the search for that tensor
/// runs only then. Non-finite input is always refused (input_error) before anything runs.
enum class finite_check {
    none,    ///< no check of computed values (the caller checks what it needs)
    outputs, ///< the graph's outputs after forward() and the returned signals after backward(): one
             ///< pass over what the call returns. A NaN that a ReLU or a max-pool maps back to a
             ///< number (oneDNN's ReLU gives 0 for NaN, as for -inf) is not seen.
    all,     ///< every activation after forward() and every intermediate signal after backward(): one
             ///< more read of each. A tensor fusion does not store (before a ReLU or Clip its
             ///< producer applies) is proved finite by a bound from the stored ones (a filter's L1
             ///< norm times its input's largest magnitude, plus the bias; for a sum, the operands'
             ///< largest magnitudes), and where the bound cannot, the pass runs again with every
             ///< activation stored: the same error as an unfused network's, or none. Also refuses a
             ///< tensor that holds an infinity by design (a Pad with value -inf before a MaxPool).
};

/// Every node of `g` the engine cannot run (an op type or opset outside its table, another domain),
/// as one message naming each such node and listing the supported ops once; "" when there is none.
/// Building a network stops at the first; this lists them all (the verifier reports them).
std::string unsupported_nodes(const graph& g);

/// The thread count engine_options::threads = 0 stands for: OMP_NUM_THREADS when it holds a
/// positive number (the first of a list), else the number of CPUs this process may run on (its CPU
/// affinity, sched_getaffinity: 1 under `taskset -c 0`, the cgroup's cpuset in a container), not
/// the machine's core count. CPU quotas (cgroup cpu.max, `docker --cpus`) are not seen.
///
/// How idle threads wait is GNU OpenMP's, read from OMP_WAIT_POLICY / GOMP_SPINCOUNT once when the
/// program starts; no call can change it later. libgomp's default spins for a long while before
/// sleeping, which collapses when another process keeps a core busy (each parallel region then
/// waits for a thread the kernel has descheduled); sleeping at once (OMP_WAIT_POLICY=passive) makes
/// every parallel region pay a wake-up, four times the time of a small model's call. Start programs
/// that use this library with GOMP_SPINCOUNT=1000, a brief spin, as the deepinside command does by
/// itself (measurements in cli/main.cpp and the README's "Threads and waiting").
int default_threads();

struct engine_options {
    /// oneDNN and host-loop threads; 0: default_threads(). Negative values throw input_error. The
    /// count belongs to the network, not to the process: the constructor and each call that runs
    /// or compiles primitives (forward, read, prepare_backward, backward) set it for the calling
    /// thread (omp_set_num_threads) and put the caller's own setting (omp_get_max_threads() on
    /// entry) back when they return or throw. So networks with different counts can be used in turn
    /// from any thread, and the caller's OpenMP code keeps the count it chose.
    int threads = 0;
    nonrelu_policy nonrelu = nonrelu_policy::refuse;
    finite_check check = finite_check::outputs;
    /// Fusion, on by default: a BatchNormalization right after a Conv is folded into the
    /// convolution's weights and bias, and a Relu or Clip right after a Conv (or after that folded
    /// batch norm) is applied by the convolution itself (a oneDNN post-op), so neither the tensor
    /// between them is stored nor a pass over it is made. Only where that tensor has no other reader,
    /// is not a graph output, the class-score tensor, or named in `keep`. A fused-away tensor cannot
    /// be read nor differentiated at: read() and backward() throw input_error naming it and `keep`.
    /// Gradients are unchanged: the ReLU mask 1(x > 0) equals 1(relu(x) > 0), and batch norm in
    /// inference is the affine map the folded weights apply (rounded once, as an EVAL-mode export's
    /// own folding is). Under finite_check::all too (see there how what a fused ReLU would hide is
    /// still found), except with Winograd (its transforms would loosen the bound) and for a Mul or
    /// Div (no useful bound): their activations stay unfused. The verifier compiles with fusion off:
    /// it reads every layer.
    bool fuse = true;
    /// Tensor (or node) names that must stay readable under fusion: a --layer target, a --wrt tensor.
    std::vector<std::string> keep;
    /// Winograd's F(4x4, 3x3) for the 3x3, stride-1 convolutions on at least 28x28 outputs, forward
    /// and backward, where oneDNN has it (AVX-512; elsewhere the direct algorithm runs): 2.2 to 2.5
    /// times faster on those layers, but not exact arithmetic: its transforms lose about two decimal
    /// digits (README "Speed"). Off by default; the verifier always runs the direct algorithm.
    bool winograd = false;
};

/// The "visualised neuron activity f" a backward pass starts from.
struct target {
    enum class kind {
        class_score, ///< one element of the class-score tensor (the logits before a final softmax)
        neuron,      ///< one element of `tensor`: channel `index`, at `unit` (y, x) or the single unit
        channel_sum, ///< the sum of channel `index` of `tensor`
        channel_max, ///< the largest unit of channel `index` of `tensor` (chosen per image)
        tensor_sum,  ///< the sum of the whole `tensor`
        weighted_sum, ///< <weights, tensor>: any signal at `tensor`, given in `weights` (the verifier
                      ///< sends chosen signals through single layers this way)
    };
    kind what = kind::class_score;
    /// Tensor name; "" means the class-score tensor (see network::score_tensor()).
    std::string tensor;
    /// Class or channel per image: one value for every image, or one per image of the batch.
    std::vector<int64_t> index;
    /// For `neuron` on a 4-D tensor: (y, x).
    std::vector<int64_t> unit;
    /// For `weighted_sum`: one value per element of `tensor` (its whole shape, batch included), C order.
    std::vector<float> weights{};
};

/// The target in words, for messages and reports: "class 3 of 'logits'", "the largest unit of
/// channel 5 of 'conv2'"; `tensor_name` is the tensor it resolves to.
std::string describe_target(const target& t, const std::string& tensor_name);

struct backward_request {
    target what;
    backward_rule rule = backward_rule::gradient;
};

class network {
public:
    /// Compiles `g` for `input_shape` (NCHW with its batch). Every forward primitive is created
    /// here; backward plans are created by prepare_backward() or on the first backward() of a kind.
    /// To differentiate probabilities rather than scores, target probability_tensor().
    network(const graph& g, const shape_t& input_shape, const engine_options& options = {});
    /// The same, taking the graph over instead of copying it: its weights are then held once (the
    /// network reads them in place where its primitives take the plain layout, see model()).
    network(graph&& g, const shape_t& input_shape, const engine_options& options = {});
    ~network();
    network(const network&) = delete;
    network& operator=(const network&) = delete;

    const shape_t& input_shape() const;
    /// The number of threads this network runs on (engine_options::threads resolved).
    int threads() const;
    const std::string& input_name() const;
    /// The graph as compiled for input_shape(): every node that computes on constants only (shape
    /// arithmetic, masks, an Identity of an initializer) evaluated into a constant and removed, so
    /// its nodes are exactly the layers that run. The double-precision reference is built on it.
    const graph& model() const;
    /// How many nodes of the original graph were evaluated at compile time.
    size_t folded_nodes() const;
    /// Activation tensors in topological order (the input first), and their shapes.
    const std::vector<std::string>& tensor_names() const;
    shape_t shape_of(const std::string& tensor_name) const;
    /// The graph's first output.
    const std::string& output_tensor() const;
    /// The class-score tensor: the input of a final Softmax/LogSoftmax, else the first output.
    const std::string& score_tensor() const;
    /// The graph's output (the probabilities) when the graph ends in a softmax, else score_tensor().
    const std::string& probability_tensor() const;

    /// Runs the forward pass; returns the graph's outputs in order. Throws input_error, naming the
    /// first bad index and its value, when `input` holds a NaN or an infinity (one pass over the
    /// input), and numerical_error when a computed value is not finite (engine_options::check).
    /// After numerical_error, read() shows the activations but backward() needs a new forward pass.
    std::vector<tensor> forward(const tensor& input);
    /// An activation of the last forward pass, in C order. The reorder that converts it from the
    /// engine's layout is created on the first read of that tensor (or with a backward plan that
    /// starts there) and reused by every later read.
    tensor read(const std::string& tensor_name) const;

    /// Compiles the backward plan for `requests` targets at once (done lazily otherwise).
    void prepare_backward(size_t requests, const std::string& wrt = "");
    /// For each request, the signal at `wrt` ("" is the input): shape [N, ...] as that tensor.
    /// All requests run as one batched backward pass over the saved forward state. Throws
    /// numerical_error naming the first request (in the order given) whose signal is not finite,
    /// with its method, target and the first tensor of its pass holding one (engine_options::check).
    std::vector<tensor> backward(const std::vector<backward_request>& requests, const std::string& wrt = "");

    /// Frees every compiled backward plan and its buffers (a plan of VGG-16's first layer holds some
    /// 100 MB); the next backward() compiles what it needs again. For callers that visit many
    /// (target, wrt) pairs once each, as the verifier does.
    void release_backward_plans();

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

} // namespace deepinside
