#pragma once
/// Golden files: the regression mode `deepinside verify MODEL IMAGES... --golden FILE [--update]`.
///
/// A golden file records, for each certified image, what the model computed (its logits and the
/// engine's three signals at the input) and what the certificate said per layer. After a model is
/// retrained, converted or quantised, or the engine changes, compare_golden() lists every recorded
/// item that moved beyond its tolerance.
///
/// File format, schema "deepinside.golden/1" (a stable contract: a change of any rule below is a
/// new schema version, which this version refuses with a model_error)
/// ----------------------------------------------------------------------------------------------
/// One JSON object (UTF-8):
///
///   {
///     "schema":  "deepinside.golden/1",
///     "model":   "models/net.onnx",          // the model path as given; informational only
///     "created": "2025-01-31T12:34:56Z",     // ISO 8601 UTC time of writing; informational only
///     "images": [                            // in the order the images were given
///       {
///         "image":       "cat.png",          // the name the certificate gives ("X.npy[k]" for a batch)
///         "input_shape": [1, 3, 224, 224],   // as given to the network
///         "target":      "...",              // the target in words (image_certificate::target_text)
///         "class":       281,                // the class of a class-score target, else null
///         "scores":      {"shape": [1000], "dtype": "float32", "data": "BASE64"},
///         "gradient":    {"shape": [1, 3, 224, 224], "dtype": "float32", "data": "BASE64"},
///         "deconvnet":   {...same encoding...},
///         "guided":      {...same encoding...},
///         "layers": [                        // from the target down to the input, as certified
///           {"name": "relu5", "op": "Relu", "relation": "differs", "ok": true,
///            "max_rel_diff": 0.93, "differing_fraction": 0.31, "tied_windows": 0},
///           ...
///         ]
///       },
///       ...
///     ]
///   }
///
/// Tensors: "data" is standard base64 (RFC 4648 alphabet A-Z a-z 0-9 + /, '=' padding, no line
/// breaks or white space) of the values as little-endian IEEE 754 float32 in C order; it decodes to
/// exactly 4 * product(shape) bytes. Every bit pattern is kept (negative zero, denormals, NaN).
/// "dtype" is always "float32". "scores" has shape [N], N the number of class scores.
/// Numbers in "layers" are JSON numbers written with round-trip precision; a value that is not
/// finite is written as null and read back as NaN (which then always counts as moved).
/// Readers must ignore members they do not know (writers of this version add none).
///
/// Comparison (compare_golden)
/// ---------------------------
/// Images are matched by position and must have the same names and input shapes (else that image
/// is reported once and not compared further); images only in the file or only now are reported.
/// Layers are matched by name (the k-th layer of a name with the k-th of that name); a layer only
/// in the file or only now is reported. Moved, for each image:
///  - scores: max |now - golden| / max |golden| > tolerances.logits (or a different shape);
///  - gradient, deconvnet, guided: ||now - golden||_2 / ||golden||_2 > tolerances.signals (or a
///    different shape); reported with the element of the largest absolute change, as (c,y,x);
///  - the class (of a class-score target) or, when the class is the same, the target text;
///  - a layer whose op, relation or ok changed;
///  - a ReLU layer (rules::table: rectification) whose differing_fraction moved by more than
///    tolerances.fraction;
///  - a layer expected identical (convolution, fully connected, max pooling, reshape) whose
///    max_rel_diff now exceeds max(golden max_rel_diff, tolerances.layer_rel);
///  - a layer whose tied_windows (max pooling ties) changed.
/// Bitwise-equal values never move (so equal NaNs do not); a NaN against anything else does.
#include "certificate.hpp"

#include <deepinside/tensor.hpp>

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deepinside::verify {

inline constexpr const char* golden_schema = "deepinside.golden/1";

struct golden_tolerances {
    double logits = 1e-4;    ///< max |a-b| / max |b| over each image's scores
    double signals = 1e-3;   ///< relative L2 of each of the three signals per image
    double fraction = 0.02;  ///< absolute change allowed in a ReLU layer's differing_fraction
    double layer_rel = 1e-4; ///< max_rel_diff of identical-expected layers may not exceed max(golden, this)
};

/// Parses "logits=1e-5,signals=2e-3" (the CLI's --golden-tolerance) over the defaults. Keys:
/// logits, signals, fraction, layer_rel (also layer-rel); values are finite numbers >= 0; white
/// space around keys and values is ignored; "" gives the defaults. Throws input_error on an unknown
/// or repeated key, a missing '=', or a bad number.
golden_tolerances parse_golden_tolerances(const std::string& text);

/// Writes the golden file of `images` atomically: a temporary file in the same folder, flushed and
/// renamed over `path`, so that `path` is either the old file or the whole new one. Throws io_error
/// naming `path` when it cannot be written (e.g. a missing folder: then no file is left behind), and
/// input_error when a certificate's signal holds a different number of values than its shape says.
void write_golden(const std::string& path, const std::string& model, const std::vector<image_certificate>& images);

/// One moved item.
struct golden_difference {
    std::string image; ///< the image's name (the golden file's, or the current one when only now)
    /// What moved, one of: "image-missing", "image-added", "image-name", "input-shape", "class",
    /// "target", "scores", "gradient", "deconvnet", "guided", "layer-missing", "layer-added", "op",
    /// "relation", "ok", "differing-fraction", "max-rel-diff", "tied-windows".
    std::string what;
    /// Where: "class K" (scores), "(c,y,x)" (a signal: the element of the largest absolute change),
    /// "NAME (OP)" (a layer), "" (the whole image).
    std::string where;
    /// The values at `where` in the file and now (0 and 1 for ok; 0 when the item is not numeric).
    double golden = 0, now = 0;
    /// The measure compared with `tolerance`: max relative difference (scores), relative L2
    /// (signals), |now - golden| (differing_fraction), now (max_rel_diff); 0 for other items.
    double change = 0, tolerance = 0;
    std::string detail; ///< one line of text, without the image name
};

struct golden_comparison {
    bool ok = true;                          ///< nothing moved
    std::string file;                        ///< the golden file
    golden_tolerances tolerances;            ///< as used
    std::vector<golden_difference> moved;    ///< in file order: per image, file-level items first
    /// "golden FILE: N items moved" (or "1 item moved", or "nothing moved"), then one line per
    /// moved item: "  IMAGE: DETAIL".
    std::string summary() const;
    /// {"ok", "file", "tolerances": {"logits", "signals", "fraction", "layer_rel"}, "moved": [{"image",
    /// "what", "where", "golden", "now", "change", "tolerance", "detail"}]}; non-finite numbers are null.
    nlohmann::json to_json() const;
};

/// Compares `images` with the golden file at `path`. Throws io_error when it cannot be read, and
/// model_error (naming the file and what is wrong) when it is malformed or of another schema.
/// Differences, including a different image list, are never errors: they are moved items.
golden_comparison compare_golden(const std::string& path, const std::vector<image_certificate>& images,
                                 const golden_tolerances& tol);

/// The contents of a golden file, as read back (for tests and tools).
struct golden_layer {
    std::string name, op, relation;
    bool ok = true;
    double max_rel_diff = 0, differing_fraction = 0;
    int64_t tied_windows = 0;
};

struct golden_image {
    std::string image;
    shape_t input_shape;
    std::string target;
    std::optional<int64_t> class_index;
    tensor scores, gradient, deconvnet, guided;
    std::vector<golden_layer> layers;
};

struct golden_file {
    std::string schema, model, created;
    std::vector<golden_image> images;
};

/// Reads and validates a golden file. io_error / model_error as compare_golden.
golden_file read_golden(const std::string& path);

namespace golden_detail {
/// Standard base64 with padding.
std::string base64_encode(const uint8_t* data, size_t size);
/// Strict: only the standard alphabet, length a multiple of 4, '=' only as the last one or two
/// characters, unused bits zero. Throws model_error with a message naming the problem (not the file).
std::vector<uint8_t> base64_decode(const std::string& text);
} // namespace golden_detail

} // namespace deepinside::verify
