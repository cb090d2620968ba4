#pragma once
/// The verifier's report: a self-contained HTML page and a Markdown file that show the certificate
/// (verdict, target, tolerances, the per-layer table, the ReLU layers' differing fractions, the
/// end-to-end and gradient-check numbers) and, per image, the input beside its gradient, DeconvNet
/// and guided saliency maps and the map of |gradient - deconvnet|.
#include "certificate.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace deepinside::verify {

/// Text for HTML element content and attribute values (names come from untrusted models and files).
std::string html_text(std::string_view s);

/// Text for Markdown (table cells, headings, paragraphs): the punctuation that can start markup
/// inside a line (emphasis, code, links and images, HTML tags and entities, table cells,
/// strikethrough, math) is backslash-escaped, as CommonMark allows for any ASCII punctuation; line
/// breaks become spaces, so a name cannot start a block of its own.
std::string markdown_text(std::string_view s);

/// Writes DIR/index.html (self-contained: the pictures embedded as base64 data: URIs, CSS inline,
/// no external resource), DIR/report.md (linking the pictures) and, for image k (from 0),
/// DIR/k-input.png, k-gradient.png, k-deconvnet.png, k-guided.png and k-difference.png. The input
/// is min-max scaled to 0..255 (3 channels as RGB, any other count as grey); the three signals are
/// shown as heatmap() of their saliency_map() (max over channels of |signal|), and the difference
/// as that of |gradient - deconvnet|.
///
/// `summary` is certificate_json() of `images`: the tables come from it (with several images, its
/// aggregated "layers", "end_to_end" and "gradient_check", then one section per image), the pictures
/// from `images`. A picture whose tensor is missing or not [1, C, H, W] is left out.
///
/// Creates DIR (and its parents) when missing. Every file is written under a temporary name in DIR
/// and renamed into place once complete, so a failure leaves no half-written file. Throws io_error
/// naming the folder or file that could not be written.
void write_report(const std::string& dir, const nlohmann::json& summary, const std::vector<image_certificate>& images);

} // namespace deepinside::verify
