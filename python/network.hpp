#pragma once
// deepinside.Network: a model read once, compiled lazily for each input shape it is given.
#include <deepinside/graph.hpp>
#include <deepinside/network.hpp>

#include <cstddef>
#include <list>
#include <set>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace deepinside::python {

/// One signal array per method, stacked over the targets: [K, N, ...].
struct method_signals {
    std::string method;
    tensor stacked;
};

/// What saliency() asks for, parsed from Python's arguments (with the GIL held).
struct saliency_request {
    std::vector<backward_rule> rules;
    std::vector<std::vector<int64_t>> classes; ///< one entry per class target; empty: top-1 per image
    std::optional<target> layer_target;        ///< instead of class scores
    std::string wrt;
    bool probability = false;
    bool max_abs_map = false;
};

class model_networks {
public:
    /// Reads `path` and refuses it when it holds ops the engine cannot run (every such node listed).
    model_networks(const std::string& path, const engine_options& options, size_t max_compiled);
    model_networks(const model_networks&) = delete;
    model_networks& operator=(const model_networks&) = delete;

    const graph& model() const { return graph_; }
    const std::string& path() const { return path_; }
    const engine_options& options() const { return options_; }
    size_t max_compiled() const { return max_compiled_; }

    /// The graph's first output for `x`.
    tensor forward(const tensor& x);
    /// The class-score tensor for `x`.
    tensor scores(const tensor& x);
    /// Every (method, target) pair from one forward and one stacked backward pass.
    std::vector<method_signals> saliency(const tensor& x, const saliency_request& request);

    /// Names from a compiled network: the most recently used one, else one compiled for the declared
    /// input shape (an open batch taken as 1). Throws input_error when other dimensions are open.
    std::string score_tensor();
    std::string output_tensor();
    std::string probability_tensor();
    std::vector<std::string> tensor_names();
    /// The compiled input shapes, most recently used first.
    std::vector<shape_t> compiled_shapes();

private:
    /// The network compiled for `shape`, compiled now when it is not cached (the least recently used
    /// one is dropped beyond max_compiled). Called with mutex_ held.
    network& compiled_for(const shape_t& shape, const std::vector<std::string>& keep = {});
    network& any_compiled();

    std::string path_;
    graph graph_;
    engine_options options_;
    size_t max_compiled_;
    struct compiled_network {
        std::set<std::string> keep; ///< the names kept readable under fusion (engine_options::keep)
        std::unique_ptr<network> net;
    };
    std::list<compiled_network> compiled_; ///< most recently used first
    std::mutex mutex_; ///< one call at a time per model: a network holds the state of its last pass
};

} // namespace deepinside::python
