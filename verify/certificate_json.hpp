#pragma once
/// The certificate as JSON, schema "deepinside.verify/1": a contract other tools read, so names and
/// types here do not change without a new schema string.
///
/// Top level: {"schema", "ok", "model", "class", "target", "tolerances", "layers", "end_to_end",
/// "gradient_check", "images"}. "layers", "end_to_end" and "gradient_check" aggregate the images
/// (the worst of each number; the similarities are means); "images" holds one object per image with
/// the same objects unaggregated. A number that is not finite is written as null, so the output is
/// always valid JSON.
#include "certificate.hpp"

#include <deepinside/network.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace deepinside::verify {

inline constexpr const char* certificate_schema = "deepinside.verify/1";

/// The whole certificate. "class" is the class (int) when the target is a class score and every
/// image has the same class, an array of per-image ints when they differ, null for a layer target
/// (or no image). "target", "end_to_end" and "gradient_check" are null when there is no image.
/// Throws input_error when the images do not list the same layers (they come from one model and
/// one target, so they always do).
nlohmann::json certificate_json(const std::string& model, const std::vector<image_certificate>& images,
                                const tolerances& tol);

/// One image's part of the certificate, all that the aggregation reads: {"image": the object
/// "images" holds for it, "target": the target object}. The processes of an mpirun each send their
/// images' entries, and one aggregates them, as certificate_json() does in one process.
nlohmann::json image_entry(const image_certificate& c);
/// The whole certificate from its images' entries (image_entry()), in order: what
/// certificate_json() returns for those images, to the byte.
nlohmann::json aggregate_certificate(const std::string& model, const std::vector<nlohmann::json>& entries,
                                     const tolerances& tol);

/// {"name", "op", "input", "output", "layer", "expected", "relation", "ok", "problem" (only when
/// not empty), "max_abs_diff", "max_rel_diff", "differing_fraction" (null when not covered),
/// "signals", "mask_disagreement" (rectification only: of the real signal), "windows" and
/// "tied_windows" (max pooling only), "engine_deconvnet"}.
nlohmann::json to_json(const layer_result& layer);
/// {"signal", "max_abs_diff", "max_rel_diff", "differing_fraction", "elements"}, plus
/// "mask_disagreement" and "violations" when `rectification` (the signal went through a ReLU).
nlohmann::json to_json(const signal_difference& signal, bool rectification = false);
/// {"rel_l2", "max_rel_diff", "bound", "ok", "composed_with_reference", "gradient_vs_deconvnet",
/// "gradient_vs_guided", "deconvnet_vs_guided"}.
nlohmann::json to_json(const end_to_end_result& result);
/// {"rel_l2", "cosine", "spearman", "top5_overlap"}.
nlohmann::json to_json(const similarity& s);
/// {"directions": [{"finite_difference", "engine", "rel_error"}], "step", "bound", "max_rel_error",
/// "ok"}.
nlohmann::json to_json(const gradient_check_result& result);

/// "class_score", "neuron", "channel_sum", "channel_max", "tensor_sum".
std::string target_kind_name(target::kind k);

} // namespace deepinside::verify
