#pragma once
// What several subcommands share: loading a model, turning images into its input, labels, softmax.
#include <deepinside/graph.hpp>
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>

#include <CLI/CLI.hpp>

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace deepinside::cli {

/// Preprocessing options as given on the command line (empty: the model's metadata or the defaults).
struct preprocess_flags {
    std::string mean, std, scale, channel_order;
    void add_to(CLI::App& app);
    preprocess_options resolve(const graph& g) const;
};

/// Class names: --labels FILE (one per line), else the model's `deepinside.labels` metadata, else
/// MODEL's sibling file <stem>.labels.txt; empty when none exists.
std::vector<std::string> load_labels(const std::string& labels_file, const std::string& model_path, const graph& g);
std::string label_of(const std::vector<std::string>& labels, int64_t c);

/// Softmax of one row of scores (in double, then rounded), for display.
std::vector<float> softmax(const float* scores, int64_t n);

/// Indices of the k largest values of a row, largest first (ties: lower index first).
std::vector<int64_t> top_k(const float* values, int64_t n, int64_t k);

/// Image `b` of a batch [N, ...]: a copy of shape [...].
tensor image_of(const tensor& batch, int64_t b);

/// The top-1 class of each image of a batch of scores ([N, classes...]).
std::vector<int64_t> top1_per_image(const tensor& scores);

/// The target of `--layer T [--channel K [--unit Y,X | --reduce max|sum]]` (saliency, verify): one
/// unit, the channel's largest unit or its sum; without a channel, the sum of the whole tensor.
/// Throws input_error for --unit without --channel or an unknown --reduce.
target layer_target(const std::string& layer, const std::optional<int64_t>& channel, const std::string& unit,
                    const std::string& reduce);

/// "3,5,7" → {3,5,7}; throws input_error naming the option.
std::vector<int64_t> parse_int_list(const std::string& text, const char* option);
std::vector<std::string> split(const std::string& text, char sep);

/// Engine options of a command. The commands that write or print results check every activation and
/// every intermediate signal for NaN and infinity (finite_check::all: one more read of each, so that a
/// NaN that a ReLU turns into 0 is refused too); bench times the library's default (outputs).
engine_options engine_flags(int threads, const std::string& nonrelu, finite_check check = finite_check::all);

/// A validator for counts typed on the command line (--top, --batch, --iters): a whole number from 1 to
/// `largest`, else one line "expects a positive number of <what> (1 to <largest>), got '0'<hint>"
/// (CLI11's PositiveNumber prints the range of a double instead, a 309-digit number).
CLI::Validator positive_integer(const std::string& what, long long largest, const std::string& hint = "");

/// --threads N of every command that runs a network: a positive number; 0, negative or non-numeric
/// values are refused with one line. Left out (0 in `threads`): the library's default_threads().
void add_threads_option(CLI::App& app, int& threads);
/// --winograd: engine_options::winograd.
void add_winograd_flag(CLI::App& app, bool& winograd);

/// Runs work(i) for every i in [0, count) on up to `threads` threads: the host-side work of a batch
/// (decoding and resizing pictures; drawing, encoding and writing each image's files), which would
/// otherwise leave all but one of the run's threads idle between the network's passes. Every item
/// runs; then the exception of the lowest-numbered item that threw is rethrown, so that the error a
/// run reports does not depend on which thread got there first. `work` must not touch state that
/// another item writes (results go into per-item slots, printed in order afterwards).
void for_each_index(size_t count, int threads, const std::function<void(size_t)>& work);

/// A float32 .npy input: read_npy, then refused (input_error naming the file, the first bad index
/// and its value) when it holds a NaN or an infinity.
tensor read_input_npy(const std::string& path);

} // namespace deepinside::cli
