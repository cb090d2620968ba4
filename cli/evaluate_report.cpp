// The evaluation's report: the same tables as Markdown (for the README and reports/) and as HTML with
// the mean deletion and insertion curves drawn as inline SVG (no scripts, no external files).
#include "evaluate.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/io.hpp>

#include "report.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <vector>

namespace deepinside::cli {

namespace {

using json = nlohmann::ordered_json;

std::string pct(const json& v) { return fmt::format("{:.1f}", 100.0 * v.get<double>()); }
std::string num(const json& v) { return fmt::format("{:.3f}", v.get<double>()); }

/// A table as rows of cells; the first row is the header.
using table = std::vector<std::vector<std::string>>;

/// The header row is the writer's own text; body cells hold names from the model and the data set.
std::string markdown(const table& t) {
    std::string out;
    for (size_t r = 0; r < t.size(); ++r) {
        out += "|";
        for (const auto& c : t[r]) out += " " + (r == 0 ? c : verify::markdown_text(c)) + " |";
        out += "\n";
        if (r == 0) {
            out += "|";
            for (size_t c = 0; c < t[r].size(); ++c) out += c == 0 ? " --- |" : " ---: |";
            out += "\n";
        }
    }
    return out;
}

std::string html(const table& t) {
    std::string out = "<table>\n";
    for (size_t r = 0; r < t.size(); ++r) {
        out += "<tr>";
        const char* cell = r == 0 ? "th" : "td";
        for (const auto& c : t[r]) out += fmt::format("<{0}>{1}</{0}>", cell, verify::html_text(c));
        out += "</tr>\n";
    }
    return out + "</table>\n";
}

/// The tables of the summary: segmentation, pointing/mass, curves, randomisation.
std::vector<std::pair<std::string, table>> tables_of(const json& s) {
    std::vector<std::pair<std::string, table>> out;
    const json& methods = s["methods"];
    const json& base = s["baselines"];

    table seg{{"segmentation (true class's map)", "mean mask IoU", "localisation % (box IoU >= 0.5)", "top-1 localisation %"}};
    for (const auto& [name, m] : methods.items())
        seg.push_back({name + " + GraphCut", num(m["segmentation"]["mean_iou"]), pct(m["segmentation"]["localisation"]),
                       pct(m["segmentation"]["top1_localisation"])});
    for (const auto& [name, m] : methods.items())
        seg.push_back({"baseline: " + name + " map thresholded, no GraphCut", num(m["threshold_box"]["mean_iou"]),
                       pct(m["threshold_box"]["localisation"]), pct(m["threshold_box"]["top1_localisation"])});
    seg.push_back({"baseline: centred box of half the area", num(base["centre_box"]["mean_iou"]), pct(base["centre_box"]["localisation"]),
                   pct(base["centre_box"]["top1_localisation"])});
    seg.push_back({"baseline: whole image", num(base["whole_image"]["mean_iou"]), pct(base["whole_image"]["localisation"]),
                   pct(base["whole_image"]["top1_localisation"])});
    out.emplace_back("Weakly supervised segmentation", seg);

    const double tol = s["options"]["pointing_tolerance_px"].get<double>();
    table point{{"method", fmt::format("pointing game % (tolerance {:.1f} px)", tol), "pointing, difficult %", "pointing, not difficult %",
                 "relevance mass in the mask"}};
    for (const auto& [name, m] : methods.items())
        point.push_back({name, pct(m["pointing_game"]["all"]), pct(m["pointing_game"]["difficult"]), pct(m["pointing_game"]["not_difficult"]),
                         num(m["relevance_mass"])});
    point.push_back({"baseline: centre point / uniform map", pct(base["centre_point"]["all"]), pct(base["centre_point"]["difficult"]),
                     pct(base["centre_point"]["not_difficult"]), num(base["uniform_mass"])});
    out.emplace_back("Pointing game and relevance mass", point);

    table curves{{"pixel order", "deletion AUC (lower is better)", "insertion AUC (higher is better)"}};
    for (const auto& [name, m] : methods.items())
        curves.push_back({name, num(m["curves"]["deletion_auc"]), num(m["curves"]["insertion_auc"])});
    curves.push_back({"baseline: random order", num(base["random_order"]["deletion_auc"]), num(base["random_order"]["insertion_auc"])});
    out.emplace_back(fmt::format("Deletion and insertion ({} steps, pixels replaced by the image's own background)",
                                 s["options"]["curve_steps"].get<int64_t>()),
                     curves);

    const json& rnd = s["randomisation"];
    if (rnd.contains("stages")) {
        table r{{"layers randomised (from the top)"}};
        for (const auto& [name, m] : methods.items()) r[0].push_back(name + " (Spearman)");
        for (const auto& st : rnd["stages"]) {
            std::vector<std::string> row{fmt::format("{} (down to {})", st["layers"].get<int64_t>(), st["randomised_from"].get<std::string>())};
            for (const auto& [name, m] : methods.items()) row.push_back(num(st[name]));
            r.push_back(std::move(row));
        }
        out.emplace_back(fmt::format("Model randomisation (Adebayo et al. 2018), {} images", rnd["images"].get<int64_t>()), r);
    }

    table time{{"time", "value"}};
    const json& t = s["time"];
    time.push_back({"saliency, all methods, ms per image", fmt::format("{:.2f}", t["saliency_ms_per_image"].get<double>())});
    for (const auto& [name, m] : methods.items())
        time.push_back({"GraphCut segmentation (" + name + "), ms per image, one thread",
                        fmt::format("{:.2f}", m["segmentation_ms_per_image"].get<double>())});
    time.push_back({"deletion + insertion curves, ms per image", fmt::format("{:.2f}", t["curves_ms_per_image"].get<double>())});
    time.push_back({"randomisation check, s", fmt::format("{:.1f}", t["randomisation_seconds"].get<double>())});
    time.push_back({fmt::format("whole evaluation, s ({} threads)", t["threads"].get<int>()), fmt::format("{:.1f}", t["total_seconds"].get<double>())});
    out.emplace_back("Time", time);
    return out;
}

/// The mean curves of every order as one SVG plot: x the fraction of pixels visited, y the probability.
std::string curve_svg(const json& s, const char* which) {
    const int w = 360, h = 220, left = 40, bottom = 30, top = 10, right = 10;
    const char* colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b"};
    std::string out = fmt::format("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
                                  "aria-label=\"{} curves\">\n",
                                  w, h, which);
    out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n", left, top, w - left - right,
                       h - top - bottom);
    out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\">fraction of pixels {}</text>\n", left + 60, h - 8,
                       std::string(which) == "deletion" ? "deleted" : "inserted");
    out += fmt::format("<text x=\"4\" y=\"{}\" font-size=\"11\">1</text><text x=\"4\" y=\"{}\" font-size=\"11\">0</text>\n", top + 10,
                       h - bottom);
    std::vector<std::pair<std::string, const json*>> series;
    for (const auto& [name, m] : s["methods"].items()) series.emplace_back(name, &m["curves"]);
    series.emplace_back("random", &s["baselines"]["random_order"]);
    const std::string key = std::string(which) + "_curve";
    for (size_t k = 0; k < series.size(); ++k) {
        const json& c = (*series[k].second)[key];
        std::string points;
        for (size_t i = 0; i < c.size(); ++i) {
            const double x = left + (w - left - right) * double(i) / double(c.size() - 1);
            const double y = top + (h - top - bottom) * (1.0 - c[i].get<double>());
            points += fmt::format("{:.1f},{:.1f} ", x, y);
        }
        const char* colour = colours[k % 5];
        out += fmt::format("<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{} points=\"{}\"/>\n", colour,
                           series[k].first == "random" ? " stroke-dasharray=\"4 3\"" : "", points);
        out += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"{}\">{}</text>\n", w - right - 80, top + 14 + 13 * int(k), colour,
                           verify::html_text(series[k].first));
    }
    return out + "</svg>\n";
}

} // namespace

void write_evaluation_report(const std::string& dir, const json& s) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) throw io_error(fmt::format("{}: cannot create the folder: {}", dir, ec.message()));
    const auto tables = tables_of(s);
    const std::string title = fmt::format("Evaluation of {} on {} ({} images, {} difficult; classifier accuracy {} %)",
                                          s["model"].get<std::string>(), s["dataset"].get<std::string>(), s["images"].get<int64_t>(),
                                          s["difficult_images"].get<int64_t>(), pct(s["classifier"]["top1_accuracy"]));
    std::string md = "# " + verify::markdown_text(title) + "\n\nWritten by `deepinside evaluate` (schema deepinside.evaluate/1); every map is taken for the "
                     "image's true class.\n";
    std::string page = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>deepinside evaluation</title>\n"
                       "<style>body{font-family:sans-serif;max-width:70em;margin:1em auto;padding:0 1em}"
                       "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #d0d7de;padding:3px 8px}"
                       "td:not(:first-child){text-align:right}th{background:#f6f8fa}</style></head><body>\n";
    page += "<h1>" + verify::html_text(title) + "</h1>\n";
    for (const auto& [heading, t] : tables) {
        md += "\n## " + heading + "\n\n" + markdown(t);
        page += "<h2>" + verify::html_text(heading) + "</h2>\n" + html(t);
        if (heading.rfind("Deletion", 0) == 0) page += "<p>" + curve_svg(s, "deletion") + curve_svg(s, "insertion") + "</p>\n";
    }
    page += "</body></html>\n";
    write_text((std::filesystem::path(dir) / "evaluation.md").string(), md);
    write_text((std::filesystem::path(dir) / "index.html").string(), page);
}

} // namespace deepinside::cli
