#include "report.hpp"

#include "certificate_json.hpp"
// The library's atomic writer (temporary file in the destination folder, fsync, rename) and its
// bounded reader: the same guarantees as write_png and write_npy, not a second implementation.
#include "../lib/io/files.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string_view>
#include <system_error>

namespace deepinside::verify {

std::string html_text(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        switch (ch) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += ch;
        }
    }
    return out;
}

std::string markdown_text(std::string_view s) {
    static constexpr std::string_view special = "\\`*_[]<>|&~$";
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        if (ch == '\n' || ch == '\r' || ch == '\t')
            out += ' ';
        else {
            if (special.find(ch) != std::string_view::npos) out += '\\';
            out += ch;
        }
    }
    return out;
}

using nlohmann::json;

namespace {

/// At most `bytes` bytes of `s`, cut at a UTF-8 character boundary, with an ellipsis when cut.
std::string shortened(const std::string& s, size_t bytes) {
    if (s.size() <= bytes) return s;
    size_t end = bytes;
    while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    return s.substr(0, end) + "…";
}

std::string base64(const std::vector<uint8_t>& bytes) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = (uint32_t(bytes[i]) << 16) | (uint32_t(bytes[i + 1]) << 8) | bytes[i + 2];
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i + 1 == bytes.size()) {
        const uint32_t v = uint32_t(bytes[i]) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        const uint32_t v = (uint32_t(bytes[i]) << 16) | (uint32_t(bytes[i + 1]) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

// ---- Reading the summary ------------------------------------------------------------------------
// The summary is certificate_json()'s; a missing field shows as "–" rather than aborting the report.

const json* field(const json& j, const char* key) {
    if (!j.is_object()) return nullptr;
    const auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
}

std::string string_field(const json& j, const char* key) {
    const json* f = field(j, key);
    return f && f->is_string() ? f->get<std::string>() : std::string();
}

bool bool_field(const json& j, const char* key) {
    const json* f = field(j, key);
    return f && f->is_boolean() && f->get<bool>();
}

std::optional<double> number_field(const json& j, const char* key) {
    const json* f = field(j, key);
    if (!f || !f->is_number()) return std::nullopt;
    return f->get<double>();
}

std::string format_number(const json* f) {
    if (!f || f->is_null()) return "–";
    if (f->is_number_unsigned()) return fmt::format("{}", f->get<uint64_t>());
    if (f->is_number_integer()) return fmt::format("{}", f->get<int64_t>());
    if (f->is_number_float()) return fmt::format("{:.3g}", f->get<double>());
    if (f->is_boolean()) return f->get<bool>() ? "yes" : "no";
    if (f->is_string()) return f->get<std::string>();
    return "–";
}

std::string number_text(const json& j, const char* key) { return format_number(field(j, key)); }

const json& array_field(const json& j, const char* key) {
    static const json empty = json::array();
    const json* f = field(j, key);
    return f && f->is_array() ? *f : empty;
}

// ---- Pictures ---------------------------------------------------------------------------------

struct picture {
    std::string kind;    ///< "input", "gradient", ...
    std::string caption; ///< plain text
    std::string file;    ///< the name in DIR
    std::vector<uint8_t> png;
};

bool is_single_image(const tensor& t) {
    return t.shape.size() == 4 && t.shape[0] == 1 && t.size() > 0 && t.size() == element_count(t.shape);
}

/// The input as a picture: min-max scaled to 0..255 over all channels; 3 channels as RGB, any other
/// count as grey (the mean of the channels, which is the channel itself for one).
image input_picture(const tensor& input) {
    const int64_t c = input.shape[1], h = input.shape[2], w = input.shape[3], hw = h * w;
    float lo = std::numeric_limits<float>::infinity(), hi = -lo;
    for (float v : input.data)
        if (std::isfinite(v)) {
            lo = std::min(lo, v);
            hi = std::max(hi, v);
        }
    const float range = hi > lo ? hi - lo : 0.0f;
    const auto scaled = [&](float v) -> uint8_t {
        if (!std::isfinite(v) || range == 0.0f) return 0;
        return static_cast<uint8_t>(std::lround(std::clamp((v - lo) / range, 0.0f, 1.0f) * 255.0f));
    };
    image img;
    img.width = static_cast<int>(w);
    img.height = static_cast<int>(h);
    img.channels = c == 3 ? 3 : 1;
    img.pixels.resize(static_cast<size_t>(hw * img.channels));
    for (int64_t i = 0; i < hw; ++i) {
        if (c == 3) {
            for (int64_t k = 0; k < 3; ++k) img.pixels[i * 3 + k] = scaled(input.data[k * hw + i]);
        } else {
            double sum = 0;
            for (int64_t k = 0; k < c; ++k) sum += input.data[k * hw + i];
            img.pixels[i] = scaled(static_cast<float>(sum / static_cast<double>(c)));
        }
    }
    return img;
}

/// heatmap() of the saliency map of a [1, C, H, W] signal (deepinside::saliency_map: max over
/// channels of |signal|), its values that are not finite shown as 0 (heatmap refuses them).
image map_picture(const tensor& signal) {
    tensor map = saliency_map(signal);
    map.shape = {signal.shape[2], signal.shape[3]}; // [1, H, W] -> [H, W]
    for (float& v : map.data)
        if (!std::isfinite(v)) v = 0;
    return heatmap(map);
}

std::string path_in(const std::string& dir, const std::string& name) {
    return (std::filesystem::path(dir) / name).string();
}

void add_picture(std::vector<picture>& out, const std::string& dir, size_t index, const std::string& kind,
                 const std::string& caption, const image& img) {
    const std::string file = fmt::format("{}-{}.png", index, kind);
    const std::string path = path_in(dir, file);
    write_png(path, img);
    out.push_back({kind, caption, file, io_detail::read_file_bytes(path, int64_t{1} << 31)});
}

/// Writes image `index`'s pictures into `dir` and returns them (with their PNG bytes).
std::vector<picture> write_pictures(const std::string& dir, size_t index, const image_certificate& c) {
    std::vector<picture> out;
    if (is_single_image(c.input)) add_picture(out, dir, index, "input", "input", input_picture(c.input));
    const struct {
        const char* kind;
        const char* caption;
        const tensor& signal;
    } maps[] = {{"gradient", "gradient", c.gradient},
                {"deconvnet", "DeconvNet", c.deconvnet},
                {"guided", "guided backpropagation", c.guided}};
    for (const auto& m : maps)
        if (is_single_image(m.signal)) add_picture(out, dir, index, m.kind, m.caption, map_picture(m.signal));
    if (is_single_image(c.gradient) && c.gradient.shape == c.deconvnet.shape) {
        tensor difference(c.gradient.shape);
        for (size_t i = 0; i < difference.data.size(); ++i) difference.data[i] = c.gradient.data[i] - c.deconvnet.data[i];
        add_picture(out, dir, index, "difference", "|gradient − DeconvNet|", map_picture(difference));
    }
    return out;
}

// ---- Sections -----------------------------------------------------------------------------------
// Each section appends to the HTML page (h) and the Markdown file (m) at once.

struct document {
    std::string h, m;
};

std::string verdict(bool ok) { return ok ? "PASS" : "FAIL"; }

void heading(document& d, int level, const std::string& text) {
    d.h += fmt::format("<h{0}>{1}</h{0}>\n", level, html_text(text));
    d.m += fmt::format("{} {}\n\n", std::string(static_cast<size_t>(level), '#'), markdown_text(text));
}

void paragraph(document& d, const std::string& text) {
    d.h += "<p>" + html_text(text) + "</p>\n";
    d.m += markdown_text(text) + "\n\n";
}

/// Appends " CELL |" to a Markdown table row.
void md_cell(std::string& m, const std::string& text) {
    m += ' ';
    m += markdown_text(text);
    m += " |";
}

/// A cell that holds a number (or "–", "2 / 16", "25.0 %"): its column is right-aligned.
bool looks_numeric(const std::string& s) {
    if (s.empty() || s == "–") return true; // an empty cell does not decide the column
    return s.find_first_not_of("0123456789+-.eE /%") == std::string::npos &&
           s.find_first_of("0123456789") != std::string::npos;
}

/// A table of plain-text cells; `bad[r]` marks a row that failed. A column whose cells are all
/// numbers is right-aligned.
void table(document& d, const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows,
           const std::vector<bool>& bad = {}) {
    std::vector<bool> numeric(header.size(), !rows.empty());
    for (const auto& row : rows)
        for (size_t c = 0; c < row.size() && c < numeric.size(); ++c) numeric[c] = numeric[c] && looks_numeric(row[c]);
    d.h += "<table>\n<thead><tr>";
    for (size_t c = 0; c < header.size(); ++c) d.h += (numeric[c] ? "<th class=\"n\">" : "<th>") + html_text(header[c]) + "</th>";
    d.h += "</tr></thead>\n<tbody>\n";
    d.m += "|";
    for (const std::string& cell : header) md_cell(d.m, cell);
    d.m += "\n|";
    for (size_t c = 0; c < header.size(); ++c) d.m += numeric[c] ? " ---: |" : " --- |";
    d.m += "\n";
    for (size_t r = 0; r < rows.size(); ++r) {
        const bool failed = r < bad.size() && bad[r];
        d.h += failed ? "<tr class=\"bad\">" : "<tr>";
        for (size_t c = 0; c < rows[r].size(); ++c)
            d.h += (c < numeric.size() && numeric[c] ? "<td class=\"n\">" : "<td>") + html_text(rows[r][c]) + "</td>";
        d.h += "</tr>\n";
        d.m += "|";
        for (const std::string& cell : rows[r]) md_cell(d.m, cell);
        d.m += "\n";
    }
    d.h += "</tbody>\n</table>\n";
    d.m += "\n";
}

void tolerances_section(document& d, const json& summary) {
    const json* tol = field(summary, "tolerances");
    const json& t = tol ? *tol : json::object();
    heading(d, 2, "Tolerances");
    table(d, {"bound", "value"},
          {{"layer: max |engine − DeconvNet| / max |DeconvNet|", number_text(t, "layer_max_rel")},
           {"end to end: relative L2", number_text(t, "end_to_end_rel_l2")},
           {"gradient check: relative error", number_text(t, "gradient_check_rel")}});
}

void layers_table(document& d, const json& layers) {
    std::vector<std::vector<std::string>> rows;
    std::vector<bool> bad;
    std::vector<std::string> problems;
    for (const json& l : layers) {
        std::string ties;
        if (field(l, "windows")) ties = number_text(l, "tied_windows") + " / " + number_text(l, "windows");
        rows.push_back({string_field(l, "name"), string_field(l, "op"), string_field(l, "expected"),
                        string_field(l, "relation"), number_text(l, "max_abs_diff"), number_text(l, "max_rel_diff"),
                        number_text(l, "differing_fraction"), ties, bool_field(l, "ok") ? "yes" : "NO"});
        bad.push_back(!bool_field(l, "ok"));
        const std::string problem = string_field(l, "problem");
        if (!problem.empty()) problems.push_back(problem);
    }
    if (rows.empty()) {
        paragraph(d, "No layer.");
        return;
    }
    table(d, {"layer", "op", "expected", "relation", "max abs diff", "max rel diff", "differing fraction", "tied windows", "ok"},
          rows, bad);
    if (!problems.empty()) {
        d.h += "<ul class=\"problems\">\n";
        for (const std::string& p : problems) {
            d.h += "<li>" + html_text(p) + "</li>\n";
            d.m += "- " + markdown_text(p) + "\n";
        }
        d.h += "</ul>\n";
        d.m += "\n";
    }
}

/// The ReLU layers' differing fractions: an inline SVG bar chart, and text bars in Markdown.
void relu_chart(document& d, const json& layers) {
    struct bar {
        std::string name;
        std::optional<double> fraction;
    };
    std::vector<bar> bars;
    for (const json& l : layers)
        if (string_field(l, "layer") == "rectification") bars.push_back({string_field(l, "name"), number_field(l, "differing_fraction")});
    heading(d, 2, "ReLU layers: where DeconvNet differs from the gradient");
    if (bars.empty()) {
        paragraph(d, "No ReLU layer between the target and the input.");
        return;
    }
    paragraph(d, "Share of the elements of the real signal where DeconvNet's relu(R) differs from the gradient's "
                 "R · 1(X > 0), per ReLU layer.");
    const auto percent = [](const std::optional<double>& f) { return f ? fmt::format("{:.1f} %", *f * 100) : std::string("–"); };
    constexpr int label_width = 260, bar_width = 360, row_height = 22, width = label_width + bar_width + 80;
    const int height = static_cast<int>(bars.size()) * row_height + 24;
    d.h += fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
                       "role=\"img\" aria-label=\"differing fraction per ReLU layer\">\n",
                       width, height);
    for (size_t i = 0; i < bars.size(); ++i) {
        const int y = static_cast<int>(i) * row_height;
        const double f = bars[i].fraction ? std::clamp(*bars[i].fraction, 0.0, 1.0) : 0.0;
        d.h += fmt::format("<g><title>{}: {}</title>", html_text(bars[i].name), html_text(percent(bars[i].fraction)));
        d.h += fmt::format("<text x=\"0\" y=\"{}\" class=\"label\">{}</text>", y + 15, html_text(shortened(bars[i].name, 36)));
        d.h += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"16\" class=\"track\"/>", label_width, y + 3, bar_width);
        d.h += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{:.1f}\" height=\"16\" class=\"bar\"/>", label_width, y + 3,
                           f * bar_width);
        d.h += fmt::format("<text x=\"{}\" y=\"{}\">{}</text></g>\n", label_width + bar_width + 6, y + 15,
                           html_text(percent(bars[i].fraction)));
    }
    const int axis = static_cast<int>(bars.size()) * row_height + 16;
    d.h += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\">0 %</text>", label_width, axis);
    d.h += fmt::format("<text x=\"{}\" y=\"{}\" class=\"axis\" text-anchor=\"end\">100 %</text>\n", label_width + bar_width, axis);
    d.h += "</svg>\n";

    constexpr int text_bar = 30;
    d.m += "| ReLU layer | differing fraction | |\n| --- | ---: | --- |\n";
    for (const bar& b : bars) {
        const int filled = b.fraction ? static_cast<int>(std::lround(std::clamp(*b.fraction, 0.0, 1.0) * text_bar)) : 0;
        std::string drawn;
        for (int k = 0; k < text_bar; ++k) drawn += k < filled ? "█" : "░";
        d.m += fmt::format("| {} | {} | `{}` |\n", markdown_text(b.name), percent(b.fraction), drawn);
    }
    d.m += "\n";
}

void end_to_end_section(document& d, const json& e, int level) {
    heading(d, level, "End to end");
    if (!e.is_object()) {
        paragraph(d, "Not computed.");
        return;
    }
    paragraph(d, "The DeconvNet reconstruction composed from the independent operators, from the target down to the "
                 "input, against the engine's deconvnet signal there; and guided backpropagation composed from the same "
                 "operators (with the forward mask after each rectification) against the engine's guided signal.");
    std::string composed;
    for (const json& name : array_field(e, "composed_with_reference"))
        if (name.is_string()) composed += (composed.empty() ? "" : ", ") + name.get<std::string>();
    table(d, {"", "value"},
          {{"DeconvNet: relative L2", number_text(e, "rel_l2")},
           {"DeconvNet: max rel diff", number_text(e, "max_rel_diff")},
           {"guided: relative L2", number_text(e, "guided_rel_l2")},
           {"guided: max rel diff", number_text(e, "guided_max_rel_diff")},
           {"bound", number_text(e, "bound")},
           {"ok", bool_field(e, "ok") ? "yes" : "NO"},
           {"not covered, passed by the reference's exact backward", composed.empty() ? "none" : composed}},
          {false, false, false, false, false, !bool_field(e, "ok"), false});
    const json* images = field(e, "images");
    if (images && images->is_number())
        paragraph(d, fmt::format("Saliency similarities: means over {} images.", format_number(images)));
    std::vector<std::vector<std::string>> rows;
    for (const auto& [key, label] : {std::pair{"gradient_vs_deconvnet", "gradient vs DeconvNet"},
                                     std::pair{"gradient_vs_guided", "gradient vs guided"},
                                     std::pair{"deconvnet_vs_guided", "DeconvNet vs guided"}}) {
        const json* s = field(e, key);
        const json& sj = s ? *s : json::object();
        rows.push_back({label, number_text(sj, "rel_l2"), number_text(sj, "cosine"), number_text(sj, "spearman"),
                        number_text(sj, "top5_overlap")});
    }
    table(d, {"signals", "relative L2", "cosine", "Spearman (maps)", "top 5 % overlap (maps)"}, rows);
}

void gradient_check_section(document& d, const json& g, int level) {
    heading(d, level, "Gradient check");
    if (!g.is_object()) {
        paragraph(d, "Not computed.");
        return;
    }
    paragraph(d, "Directional central differences (double) against the engine's gradient: "
                 "|fd − ⟨d, g⟩| / max(|fd|, |⟨d, g⟩|). Where the engine's f32 forward and the exact one take a "
                 "different ReLU or max-pool decision, the certificate rests on the reference instead: the differences "
                 "against the reference's double gradient, and the engine's gradient against the reference's backward "
                 "on the engine's own activations.");
    const json* directions = field(g, "directions");
    if (directions && directions->is_array()) {
        std::vector<std::vector<std::string>> rows;
        std::vector<bool> bad;
        const std::optional<double> bound = number_field(g, "bound");
        size_t k = 0;
        for (const json& dir : *directions) {
            rows.push_back({std::to_string(k++), number_text(dir, "finite_difference"), number_text(dir, "engine"),
                            number_text(dir, "rel_error")});
            const std::optional<double> err = number_field(dir, "rel_error");
            bad.push_back(!err || (bound && *err > *bound));
        }
        if (!rows.empty()) table(d, {"direction", "finite difference", "engine", "relative error"}, rows, bad);
    }
    table(d, {"", "value"},
          {{"directions", directions && directions->is_array() ? std::to_string(directions->size()) : format_number(directions)},
           {"jitter", number_text(g, "jitter")},
           {"step", number_text(g, "step")},
           {"max relative error (engine)", number_text(g, "max_rel_error")},
           {"max relative error (reference)", number_text(g, "max_reference_rel_error")},
           {"engine vs reference on its activations (relative L2)", number_text(g, "engine_vs_reference")},
           {"decisions differing f32 / double", number_text(g, "decisions_differing")},
           {"basis", g.contains("basis") && g["basis"].is_string() ? g["basis"].get<std::string>() : "–"},
           {"bound", number_text(g, "bound")},
           {"ok", bool_field(g, "ok") ? "yes" : "NO"}},
          {false, false, false, false, false, false, false, false, !bool_field(g, "ok")});
}

void pictures_section(document& d, const std::vector<picture>& pictures) {
    if (pictures.empty()) return;
    d.h += "<div class=\"pictures\">\n";
    for (const picture& p : pictures)
        d.h += fmt::format("<figure><img alt=\"{0}\" src=\"data:image/png;base64,{1}\"><figcaption>{0}</figcaption></figure>\n",
                           html_text(p.caption), base64(p.png));
    d.h += "</div>\n";
    d.m += "|";
    for (const picture& p : pictures) md_cell(d.m, p.caption);
    d.m += "\n|";
    for (size_t i = 0; i < pictures.size(); ++i) d.m += " --- |";
    d.m += "\n|";
    for (const picture& p : pictures) d.m += fmt::format(" ![{}]({}) |", p.kind, p.file);
    d.m += "\n\n";
}

/// Image k's object of the summary, or one made from `images[k]` when the summary lacks it.
json image_summary(const json& summary, const std::vector<image_certificate>& images, size_t k) {
    const json& listed = array_field(summary, "images");
    if (k < listed.size() && listed[k].is_object()) return listed[k];
    if (k >= images.size()) return json::object();
    const image_certificate& c = images[k];
    json layers = json::array();
    for (const layer_result& l : c.layers) layers.push_back(to_json(l));
    return {{"image", c.image},  {"target", c.target_text}, {"ok", c.ok}, {"seconds", c.seconds}, {"layers", layers},
            {"end_to_end", to_json(c.end_to_end)}, {"gradient_check", to_json(c.gradient_check)}};
}

constexpr const char* style = R"(body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;color:#222}
h1 .pass,h2 .pass{color:#1a7f37}h1 .fail,h2 .fail{color:#cf222e}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:90%}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:left}
th.n,td.n{text-align:right;font-variant-numeric:tabular-nums}
td:first-child{word-break:break-all;max-width:28em}
thead th{background:#f6f8fa}
tr.bad td{background:#ffebe9}
ul.problems{color:#cf222e}
svg text{font:12px ui-monospace,monospace;fill:#222}
svg .track{fill:#eaeef2}svg .bar{fill:#cf6a2e}svg .axis{fill:#57606a}
.pictures{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;text-align:center}
figure img{width:224px;height:auto;image-rendering:pixelated;border:1px solid #d0d7de}
figcaption{font-size:90%;color:#57606a})";

} // namespace

void write_report(const std::string& dir, const json& summary, const std::vector<image_certificate>& images) {
    if (dir.empty()) throw io_error("cannot write a report into a folder with an empty name");
    {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) throw io_error(fmt::format("{}: cannot create the report folder: {}", dir, ec.message()));
        if (!std::filesystem::is_directory(dir, ec))
            throw io_error(fmt::format("{}: the report folder exists and is not a folder", dir));
    }

    const size_t count = std::max(images.size(), array_field(summary, "images").size());
    std::vector<std::vector<picture>> pictures(count);
    for (size_t k = 0; k < images.size(); ++k) pictures[k] = write_pictures(dir, k, images[k]);

    const bool ok = bool_field(summary, "ok");
    const std::string model = string_field(summary, "model");
    const json* target = field(summary, "target");
    const std::string target_text = target ? string_field(*target, "text") : std::string();

    document d;
    const std::string title = fmt::format("DeconvNet vs gradient certificate: {}", model);
    d.h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    d.h += fmt::format("<title>{} — {}</title>\n<style>\n{}\n</style>\n</head>\n<body>\n", html_text(title), verdict(ok), style);
    d.h += fmt::format("<h1>{} — <span class=\"{}\">{}</span></h1>\n", html_text(title), ok ? "pass" : "fail", verdict(ok));
    d.m += fmt::format("# {} — **{}**\n\n", markdown_text(title), verdict(ok));

    std::string about = fmt::format("Schema {}. ", string_field(summary, "schema"));
    if (!target_text.empty()) about += "Target: " + target_text + ". ";
    if (const json* cls = field(summary, "class"); cls && !cls->is_null()) {
        if (cls->is_array()) {
            std::string list;
            for (const json& c : *cls) list += (list.empty() ? "" : ", ") + format_number(&c);
            about += "Classes per image: " + list + ". ";
        } else
            about += "Class " + format_number(cls) + ". ";
    }
    about += fmt::format("{} image{}. The paper's section 4: DeconvNet equals the gradient at every layer but ReLU.",
                         count, count == 1 ? "" : "s");
    paragraph(d, about);

    tolerances_section(d, summary);

    // One image: its own objects (with the gradient check's directions); several: the aggregates.
    const bool single = count == 1;
    const json first = single ? image_summary(summary, images, 0) : json::object();
    const json& layers = single ? array_field(first, "layers") : array_field(summary, "layers");
    heading(d, 2, single ? "Layers, from the target down to the input" : fmt::format("Layers: the worst over {} images", count));
    layers_table(d, layers);
    relu_chart(d, layers);
    const json* e = single ? field(first, "end_to_end") : field(summary, "end_to_end");
    end_to_end_section(d, e ? *e : json(nullptr), 2);
    const json* g = single ? field(first, "gradient_check") : field(summary, "gradient_check");
    gradient_check_section(d, g ? *g : json(nullptr), 2);

    for (size_t k = 0; k < count; ++k) {
        const json im = single ? first : image_summary(summary, images, k);
        const bool image_ok = bool_field(im, "ok");
        const std::string name = string_field(im, "image");
        d.h += fmt::format("<h2>Image {}: {} — <span class=\"{}\">{}</span></h2>\n", k, html_text(name), image_ok ? "pass" : "fail",
                           verdict(image_ok));
        d.m += fmt::format("## Image {}: {} — **{}**\n\n", k, markdown_text(name), verdict(image_ok));
        std::string line;
        if (const std::string t = string_field(im, "target"); !t.empty()) line += "Target: " + t + ". ";
        if (const json* s = field(im, "seconds"); s && s->is_number()) line += fmt::format("{:.2f} s.", s->get<double>());
        if (!line.empty()) paragraph(d, line);
        pictures_section(d, pictures[k]);
        if (!single) {
            heading(d, 3, "Layers");
            layers_table(d, array_field(im, "layers"));
            const json* ie = field(im, "end_to_end");
            end_to_end_section(d, ie ? *ie : json(nullptr), 3);
            const json* ig = field(im, "gradient_check");
            gradient_check_section(d, ig ? *ig : json(nullptr), 3);
        }
    }
    d.h += "</body>\n</html>\n";

    write_text(path_in(dir, "index.html"), d.h);
    write_text(path_in(dir, "report.md"), d.m);
}

} // namespace deepinside::verify
