#include "certificate_json.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/rules.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>

namespace deepinside::verify {

using nlohmann::json;

namespace {

/// A number, or null when it is not finite (JSON has no NaN or infinity).
json number(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

/// The worse of two numbers where larger is worse; a NaN anywhere stays NaN, so it reaches the
/// output as null rather than being hidden by a finite value.
double worst(double a, double b) {
    if (std::isnan(a) || std::isnan(b)) return std::nan("");
    return a > b ? a : b;
}

json string_array(const std::vector<std::string>& values) {
    json a = json::array();
    for (const std::string& v : values) a.push_back(v);
    return a;
}

json int_array(const std::vector<int64_t>& values) {
    json a = json::array();
    for (int64_t v : values) a.push_back(v);
    return a;
}

/// The class of one image: the index of a class-score target, else none.
std::optional<int64_t> class_of(const image_certificate& c) {
    if (c.what.what != target::kind::class_score || c.what.index.empty()) return std::nullopt;
    return c.what.index.front();
}

json class_json(const image_certificate& c) {
    const auto k = class_of(c);
    return k ? json(*k) : json(nullptr);
}

json target_json(const image_certificate& c) {
    return {{"kind", target_kind_name(c.what.what)},
            {"tensor", c.what.tensor},
            {"index", int_array(c.what.index)},
            {"unit", int_array(c.what.unit)},
            {"text", c.target_text}};
}

/// A number of the JSON, null read as NaN (what number() wrote for a value that is not finite).
double value(const json& v) { return v.is_number() ? v.get<double>() : std::nan(""); }

/// A measured number of a layer's JSON: a layer not covered measured nothing, and holds 0 (what its
/// result holds before to_json() hides it as null).
double measured(const json& layer, const char* key) {
    return layer.at("relation") == "not-covered" ? 0.0 : value(layer.at(key));
}

/// Sets `into[key]` to the worse of it and `from[key]`.
void worst_into(json& into, const json& from, const char* key) {
    into[key] = number(worst(value(into.at(key)), value(from.at(key))));
}

/// "class" of the top level from the entries: one int, an array of per-image ints, or null.
json summary_class(const std::vector<json>& entries) {
    if (entries.empty()) return nullptr;
    for (const json& e : entries)
        if (e.at("target").at("kind") != "class_score") return nullptr;
    const json& first = entries.front().at("image").at("class");
    bool same = true;
    for (const json& e : entries) same = same && e.at("image").at("class") == first;
    if (same) return first;
    json a = json::array();
    for (const json& e : entries) a.push_back(e.at("image").at("class"));
    return a;
}

/// One signal's JSON into the aggregate's: the worst of each number.
void accumulate(json& into, const json& s) {
    for (const char* key : {"max_abs_diff", "max_rel_diff", "differing_fraction"}) worst_into(into, s, key);
    if (into.contains("mask_disagreement")) worst_into(into, s, "mask_disagreement");
    if (into.contains("violations")) into["violations"] = std::max(into["violations"].get<int64_t>(), s.at("violations").get<int64_t>());
    into["elements"] = std::max(into["elements"].get<int64_t>(), s.at("elements").get<int64_t>());
}

/// Layer `i` over every image: the worst of each number, ok when every image is.
json aggregate_layer(const std::vector<json>& entries, size_t i) {
    json agg = entries.front().at("image").at("layers").at(i);
    const bool covered_first = agg.at("relation") != "not-covered";
    double abs_diff = measured(agg, "max_abs_diff"), rel_diff = measured(agg, "max_rel_diff"),
           fraction = measured(agg, "differing_fraction");
    for (size_t k = 1; k < entries.size(); ++k) {
        const json& l = entries[k].at("image").at("layers").at(i);
        agg["ok"] = agg["ok"].get<bool>() && l.at("ok").get<bool>();
        if (l.at("relation") == "differs") agg["relation"] = "differs";
        if (!agg.contains("problem") && l.contains("problem")) agg["problem"] = l["problem"];
        abs_diff = worst(abs_diff, measured(l, "max_abs_diff"));
        rel_diff = worst(rel_diff, measured(l, "max_rel_diff"));
        fraction = worst(fraction, measured(l, "differing_fraction"));
        for (const char* key : {"windows", "tied_windows"})
            if (agg.contains(key)) agg[key] = std::max(agg[key].get<int64_t>(), l.at(key).get<int64_t>());
        // Signals are matched by name ("real", "random"); one only some images have is appended.
        json& signals = agg["signals"];
        for (const json& s : l.at("signals")) {
            auto it = std::find_if(signals.begin(), signals.end(), [&](const json& a) { return a.at("signal") == s.at("signal"); });
            if (it == signals.end())
                signals.push_back(s);
            else
                accumulate(*it, s);
        }
    }
    const bool covered = agg["relation"] != "not-covered";
    if (entries.size() > 1 || !covered_first) {
        agg["max_abs_diff"] = covered ? number(abs_diff) : json(nullptr);
        agg["max_rel_diff"] = covered ? number(rel_diff) : json(nullptr);
        agg["differing_fraction"] = covered ? number(fraction) : json(nullptr);
    }
    if (agg.contains("mask_disagreement")) {
        // Of the real signal, else the first.
        const json& signals = agg["signals"];
        auto real = std::find_if(signals.begin(), signals.end(), [](const json& s) { return s.at("signal") == "real"; });
        if (real == signals.end() && !signals.empty()) real = signals.begin();
        agg["mask_disagreement"] = real == signals.end() ? json(nullptr) : real->at("mask_disagreement");
    }
    return agg;
}

json aggregate_end_to_end(const std::vector<json>& entries) {
    json agg = entries.front().at("image").at("end_to_end");
    for (size_t k = 1; k < entries.size(); ++k) {
        const json& e = entries[k].at("image").at("end_to_end");
        for (const char* key : {"rel_l2", "max_rel_diff", "guided_rel_l2", "guided_max_rel_diff"}) worst_into(agg, e, key);
        agg["ok"] = agg["ok"].get<bool>() && e.at("ok").get<bool>();
        json& names = agg["composed_with_reference"];
        for (const json& name : e.at("composed_with_reference"))
            if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
    }
    // The similarities: means over the images.
    for (const char* which : {"gradient_vs_deconvnet", "gradient_vs_guided", "deconvnet_vs_guided"}) {
        json& mean = agg[which];
        for (const char* key : {"rel_l2", "cosine", "spearman", "top5_overlap"}) {
            double sum = 0;
            for (const json& e : entries) sum += value(e.at("image").at("end_to_end").at(which).at(key));
            mean[key] = number(sum / static_cast<double>(entries.size()));
        }
    }
    agg["images"] = entries.size();
    return agg;
}

json aggregate_gradient_check(const std::vector<json>& entries) {
    const json& first = entries.front().at("image").at("gradient_check");
    double max_rel_error = value(first.at("max_rel_error")), max_reference_rel_error = value(first.at("max_reference_rel_error")),
           engine_vs_reference = value(first.at("engine_vs_reference"));
    int64_t differing = 0, through_reference = 0;
    bool ok = true;
    size_t directions = 0;
    for (const json& e : entries) {
        const json& g = e.at("image").at("gradient_check");
        max_rel_error = worst(max_rel_error, value(g.at("max_rel_error")));
        max_reference_rel_error = worst(max_reference_rel_error, value(g.at("max_reference_rel_error")));
        engine_vs_reference = worst(engine_vs_reference, value(g.at("engine_vs_reference")));
        differing += g.at("decisions_differing").get<int64_t>();
        through_reference += g.at("basis") == "through the reference";
        ok = ok && g.at("ok").get<bool>();
        directions += g.at("directions").size();
    }
    return {{"directions", directions},
            {"jitter", first.at("jitter")},
            {"step", first.at("step")},
            {"bound", first.at("bound")},
            {"max_rel_error", number(max_rel_error)},
            {"max_reference_rel_error", number(max_reference_rel_error)},
            {"engine_vs_reference", number(engine_vs_reference)},
            {"decisions_differing", differing},
            {"images_through_reference", through_reference},
            {"ok", ok}};
}

/// The real signal of a layer (whose mask disagreement the layer reports), else the first.
const signal_difference* real_signal(const layer_result& l) {
    for (const signal_difference& s : l.signals)
        if (s.signal == "real") return &s;
    return l.signals.empty() ? nullptr : &l.signals.front();
}

json image_json(const image_certificate& c) {
    json layers = json::array();
    for (const layer_result& l : c.layers) layers.push_back(to_json(l));
    return {{"image", c.image},
            {"class", class_json(c)},
            {"target", c.target_text},
            {"ok", c.ok},
            {"seconds", number(c.seconds)},
            {"layers", std::move(layers)},
            {"end_to_end", to_json(c.end_to_end)},
            {"gradient_check", to_json(c.gradient_check)}};
}

} // namespace

std::string target_kind_name(target::kind k) {
    switch (k) {
    case target::kind::class_score: return "class_score";
    case target::kind::neuron: return "neuron";
    case target::kind::channel_sum: return "channel_sum";
    case target::kind::channel_max: return "channel_max";
    case target::kind::tensor_sum: return "tensor_sum";
    case target::kind::weighted_sum: return "weighted_sum";
    }
    return "unknown";
}

json to_json(const signal_difference& s, bool rectification) {
    json j = {{"signal", s.signal},
              {"max_abs_diff", number(s.max_abs_diff)},
              {"max_rel_diff", number(s.max_rel_diff)},
              {"differing_fraction", number(s.differing_fraction)},
              {"elements", s.elements}};
    if (rectification) {
        j["mask_disagreement"] = number(s.mask_disagreement);
        j["violations"] = s.violations;
    }
    return j;
}

json to_json(const layer_result& l) {
    const bool relu = l.layer == rules::deconvnet_layer::rectification;
    const bool covered = l.relation != "not-covered";
    json signals = json::array();
    for (const signal_difference& s : l.signals) signals.push_back(to_json(s, relu));
    json j = {{"name", l.name},
              {"op", l.op},
              {"input", l.input},
              {"output", l.output},
              {"layer", std::string(rules::to_string(l.layer))},
              {"expected", std::string(rules::to_string(l.expected))},
              {"relation", l.relation},
              {"ok", l.ok},
              {"max_abs_diff", covered ? number(l.max_abs_diff) : json(nullptr)},
              {"max_rel_diff", covered ? number(l.max_rel_diff) : json(nullptr)},
              {"differing_fraction", covered ? number(l.differing_fraction) : json(nullptr)},
              {"signals", std::move(signals)},
              {"engine_deconvnet", l.engine_deconvnet}};
    if (!l.problem.empty()) j["problem"] = l.problem;
    if (relu) {
        const signal_difference* real = real_signal(l);
        j["mask_disagreement"] = real ? number(real->mask_disagreement) : json(nullptr);
    }
    if (l.layer == rules::deconvnet_layer::max_pooling) {
        j["windows"] = l.windows;
        j["tied_windows"] = l.tied_windows;
    }
    return j;
}

json to_json(const similarity& s) {
    return {{"rel_l2", number(s.rel_l2)},
            {"cosine", number(s.cosine)},
            {"spearman", number(s.spearman)},
            {"top5_overlap", number(s.top5_overlap)}};
}

json to_json(const end_to_end_result& e) {
    return {{"rel_l2", number(e.rel_l2)},
            {"max_rel_diff", number(e.max_rel_diff)},
            {"guided_rel_l2", number(e.guided_rel_l2)},
            {"guided_max_rel_diff", number(e.guided_max_rel_diff)},
            {"bound", number(e.bound)},
            {"ok", e.ok},
            {"composed_with_reference", string_array(e.composed_with_reference)},
            {"gradient_vs_deconvnet", to_json(e.gradient_deconvnet)},
            {"gradient_vs_guided", to_json(e.gradient_guided)},
            {"deconvnet_vs_guided", to_json(e.deconvnet_guided)}};
}

json to_json(const gradient_check_result& g) {
    json directions = json::array();
    for (const gradient_check_result::direction& d : g.directions)
        directions.push_back({{"finite_difference", number(d.finite_difference)},
                              {"engine", number(d.engine)},
                              {"rel_error", number(d.rel_error)},
                              {"reference", number(d.reference)},
                              {"reference_rel_error", number(d.reference_rel_error)},
                              {"step", number(d.step)},
                              {"decisions_crossed", d.decisions_crossed}});
    return {{"directions", std::move(directions)},
            {"jitter", number(g.jitter)},
            {"step", number(g.step)},
            {"bound", number(g.bound)},
            {"max_rel_error", number(g.max_rel_error)},
            {"max_reference_rel_error", number(g.max_reference_rel_error)},
            {"engine_vs_reference", number(g.engine_vs_reference)},
            {"decisions", g.decisions},
            {"decisions_differing", g.decisions_differing},
            {"basis", g.basis},
            {"ok", g.ok}};
}

json image_entry(const image_certificate& c) { return {{"image", image_json(c)}, {"target", target_json(c)}}; }

json certificate_json(const std::string& model, const std::vector<image_certificate>& images, const tolerances& tol) {
    std::vector<json> entries;
    entries.reserve(images.size());
    for (const image_certificate& c : images) entries.push_back(image_entry(c));
    return aggregate_certificate(model, entries, tol);
}

json aggregate_certificate(const std::string& model, const std::vector<json>& entries, const tolerances& tol) {
    const auto names = [](const json& entry) {
        std::vector<std::string> out;
        for (const json& l : entry.at("image").at("layers")) out.push_back(l.at("name").get<std::string>());
        return out;
    };
    for (size_t k = 1; k < entries.size(); ++k)
        if (names(entries[k]) != names(entries.front()))
            throw input_error(fmt::format("certificate of {}: image {} ({}) does not list the same layers as image 0 ({})", model, k,
                                          entries[k].at("image").at("image").get<std::string>(),
                                          entries.front().at("image").at("image").get<std::string>()));
    bool ok = true;
    for (const json& e : entries) ok = ok && e.at("image").at("ok").get<bool>();

    json layers = json::array();
    json per_image = json::array();
    json target = nullptr, end_to_end = nullptr, gradient_check = nullptr;
    if (!entries.empty()) {
        const size_t count = entries.front().at("image").at("layers").size();
        for (size_t i = 0; i < count; ++i) layers.push_back(aggregate_layer(entries, i));
        for (const json& e : entries) per_image.push_back(e.at("image"));
        target = entries.front().at("target");
        end_to_end = aggregate_end_to_end(entries);
        gradient_check = aggregate_gradient_check(entries);
    }
    return {{"schema", certificate_schema},
            {"ok", ok},
            {"model", model},
            {"class", summary_class(entries)},
            {"target", std::move(target)},
            {"tolerances",
             {{"layer_max_rel", number(tol.layer_max_rel)},
              {"end_to_end_rel_l2", number(tol.end_to_end_rel_l2)},
              {"gradient_check_rel", number(tol.gradient_check_rel)}}},
            {"layers", std::move(layers)},
            {"end_to_end", std::move(end_to_end)},
            {"gradient_check", std::move(gradient_check)},
            {"images", std::move(per_image)}};
}

} // namespace deepinside::verify
