#pragma once
// What the commands that take pictures share: IMAGE arguments (files, folders, globs) expanded into
// one stable list, the preprocessing flags (values and geometry), the picture as it was fed, the
// batches a list of pictures runs in, and where a run's files go.
#include "common.hpp"
#include "parallel.hpp"

#include <deepinside/io.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace deepinside::cli {

/// IMAGE arguments → image files, in a stable order: each argument in the order given; a folder
/// stands for its PNG and JPEG files (by extension, not recursing), sorted by name; an argument
/// holding * ? or [ that names no file is a pattern the shell left unexpanded (quoted, or too many
/// files for a command line), expanded with glob(3), sorted. A file named explicitly is read
/// whatever its extension (formats are told by their first bytes). Throws input_error naming the
/// argument for a path that does not exist, a folder without images, or a pattern matching nothing.
std::vector<std::string> expand_image_arguments(const std::vector<std::string>& arguments);

/// How pictures become inputs: the values (--mean, --std, --scale, --channel-order over the model's
/// metadata) and the geometry (--resize, --crop, --antialias), or --preset imagenet for both.
struct image_flags {
    preprocess_flags values;
    std::string resize, crop, preset;
    bool antialias = false;
    void add_to(CLI::App& app);

    struct resolved {
        preprocess_options values;
        geometry_options geometry;
    };
    /// Throws input_error naming the option for a malformed value.
    resolved resolve(const graph& g) const;
};

/// One picture as the network sees it.
struct fed_picture {
    std::string path;
    image original;
    prepared_image prepared; ///< prepared.fed: the picture at the network's size, 8-bit (overlays are drawn on it)
    tensor x;                ///< [1, C, H, W]
};

/// Reads `path` and prepares it for `g`'s first input (which must be NCHW with a batch of 1 or open).
fed_picture feed_picture(const graph& g, const std::string& path, const image_flags::resolved& how);

/// The batch a run uses: `requested` when given (> 0), else a batch of about 4 MB of input per pass
/// (at most 64 images; 64 at 28x28, 6 at 224x224x3), counting each image `stacked_per_image` times:
/// a saliency run's backward pass stacks one copy of the batch per (method, target) pair, so three
/// methods on ResNet-18 get batches of 2, stacked to 6. Larger batches gain little speed and cost
/// memory in every activation and signal (ResNet-18, three methods: batch 6 took 828 MB and no less
/// time than batch 2's 416 MB). A model whose batch axis is fixed allows only that batch: asking for
/// another throws input_error saying how to export a dynamic one.
int64_t choose_batch(const graph& g, int64_t requested, int64_t elements_per_image, int64_t stacked_per_image = 1);

/// Feeds this process's share of `paths` to `run(pictures, index of the first)` in batches, decoding a
/// batch at a time (a folder of 50,000 photos is never held at once), its pictures on up to `threads`
/// threads (for_each_index), handed on in order: a picture that cannot be read stops the run where a
/// one-at-a-time run would, after the batches before it. The batch size is chosen from
/// the first picture's input size and `stacked_per_image` (choose_batch, the same on every rank), the share is whole batches
/// (process_group::share), and a picture of another input size (a model with open height and width)
/// starts a new batch. Returns the batch size.
int64_t for_each_batch(const graph& g, const std::vector<std::string>& paths, const image_flags::resolved& how,
                       int64_t requested_batch, int64_t stacked_per_image, const process_group& group, int threads,
                       const std::function<void(const std::vector<fed_picture>&, size_t)>& run);

/// The pictures' inputs (each [1, C, H, W], all of one shape) stacked into one [B, C, H, W] tensor.
tensor stack_inputs(const std::vector<fed_picture>& pictures);

/// `x` ([n, ...]) followed by zero images up to `batch` images (n <= batch).
tensor pad_batch(const tensor& x, int64_t batch);

/// The network a run's batches of pictures go through. Where every picture has the same input size
/// (the model fixes its height and width), one network is compiled, for the first batch (the
/// largest); a smaller last batch is padded with zero images (each image's results are its own,
/// whatever fills the rest of the batch), and the graph moves into the network instead of being
/// copied: ResNet-18's 47 MB of weights took a tenth of a second of page faults to copy. A model
/// with an open height or width gets a network per input size, each compiled from the kept graph.
class batch_network {
public:
    /// `g`: the run's graph; it is moved from when one network serves the run.
    batch_network(graph& g, engine_options options);
    /// The graph's inputs, outputs and metadata without its weights: what reading pictures and
    /// labels needs (for_each_batch, load_labels), valid for the whole run.
    const graph& header() const { return header_; }
    /// Runs the forward pass of `x` ([n, C, H, W]), compiling a network first when none fits it.
    /// Returns whether it compiled one. The network's batch may be larger than n (padding).
    bool forward(const tensor& x);
    network& net() { return *net_; }

private:
    graph& g_;
    graph header_;
    engine_options options_;
    bool one_network_;
    std::unique_ptr<network> net_;
};

/// Batches [B_i, C, H, W] of one image shape joined along the batch axis (--save-input); throws
/// input_error naming `what` when their image shapes differ.
tensor concatenate_batches(const std::vector<tensor>& batches, const std::string& what);

/// Where a run writes its files. `--out` given as an existing folder or ending in '/', or any run of
/// more than one image, names a folder (created when missing): each image's files are
/// FOLDER/<image stem>...; a single image with any other --out (default: `default_folder`) names the
/// files' common prefix.
struct output_names {
    output_names(const std::string& out, const std::vector<std::string>& image_paths,
                 const std::string& default_folder);
    /// The prefix of image `i`'s files (no suffix).
    const std::string& prefix(size_t i) const { return prefixes_.at(i); }
    /// Throws input_error when a file PREFIX + ending (an ending that stops at a dot: any name going on
    /// from there) of some image would be one of `image_paths`: outputs never overwrite a picture.
    void refuse_overwriting(const std::vector<std::string>& image_paths, const std::vector<std::string>& endings) const;
    /// Creates the folder (when the names are in one): called just before the first file is written,
    /// so that a run refused on the way leaves nothing behind.
    void create_folder() const;

private:
    std::vector<std::string> prefixes_;
    std::string folder_;
};

/// --json FILE or '-': where machine-readable output goes. With '-', stdout carries only the JSON
/// document, so the human-readable lines go to stderr.
struct json_output {
    std::string path;
    bool to_stdout() const { return path == "-"; }
    bool wanted() const { return !path.empty(); }
    std::FILE* text_stream() const { return to_stdout() ? stderr : stdout; }
    /// Writes `document` (atomically to a file; to stdout for '-').
    void write(const std::string& document) const;
};

/// --labels FILE or the model's own: throws input_error when there are labels but not one per class
/// (`classes` scores per image), naming where they came from.
void require_label_count(const std::vector<std::string>& labels, int64_t classes, const std::string& labels_file,
                         const std::string& model_path, const graph& g);

/// The class scores per image: element count of one image's score tensor.
int64_t classes_per_image(const shape_t& score_shape);

} // namespace deepinside::cli
