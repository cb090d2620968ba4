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

/// "class" of the top level: one int, an array of per-image ints, or null.
json summary_class(const std::vector<image_certificate>& images) {
    if (images.empty()) return nullptr;
    for (const image_certificate& c : images)
        if (c.what.what != target::kind::class_score) return nullptr;
    const auto first = class_of(images.front());
    bool same = true;
    for (const image_certificate& c : images) same = same && class_of(c) == first;
    if (same) return first ? json(*first) : json(nullptr);
    json a = json::array();
    for (const image_certificate& c : images) a.push_back(class_json(c));
    return a;
}

void accumulate(signal_difference& into, const signal_difference& s) {
    into.max_abs_diff = worst(into.max_abs_diff, s.max_abs_diff);
    into.max_rel_diff = worst(into.max_rel_diff, s.max_rel_diff);
    into.differing_fraction = worst(into.differing_fraction, s.differing_fraction);
    into.mask_disagreement = worst(into.mask_disagreement, s.mask_disagreement);
    into.violations = std::max(into.violations, s.violations);
    into.elements = std::max(into.elements, s.elements);
}

/// Layer `i` over every image: the worst of each number, ok when every image is.
layer_result aggregate_layer(const std::vector<image_certificate>& images, size_t i) {
    layer_result agg = images.front().layers[i];
    for (size_t k = 1; k < images.size(); ++k) {
        const layer_result& l = images[k].layers[i];
        agg.ok = agg.ok && l.ok;
        if (l.relation == "differs") agg.relation = "differs";
        if (agg.problem.empty()) agg.problem = l.problem;
        agg.max_abs_diff = worst(agg.max_abs_diff, l.max_abs_diff);
        agg.max_rel_diff = worst(agg.max_rel_diff, l.max_rel_diff);
        agg.differing_fraction = worst(agg.differing_fraction, l.differing_fraction);
        agg.windows = std::max(agg.windows, l.windows);
        agg.tied_windows = std::max(agg.tied_windows, l.tied_windows);
        // Signals are matched by name ("real", "random"); one only some images have is appended.
        for (const signal_difference& s : l.signals) {
            auto it = std::find_if(agg.signals.begin(), agg.signals.end(),
                                   [&](const signal_difference& a) { return a.signal == s.signal; });
            if (it == agg.signals.end())
                agg.signals.push_back(s);
            else
                accumulate(*it, s);
        }
    }
    return agg;
}

/// The real signal of a layer (whose mask disagreement the layer reports), else the first.
const signal_difference* real_signal(const layer_result& l) {
    for (const signal_difference& s : l.signals)
        if (s.signal == "real") return &s;
    return l.signals.empty() ? nullptr : &l.signals.front();
}

json aggregate_end_to_end(const std::vector<image_certificate>& images) {
    end_to_end_result agg = images.front().end_to_end;
    for (size_t k = 1; k < images.size(); ++k) {
        const end_to_end_result& e = images[k].end_to_end;
        agg.rel_l2 = worst(agg.rel_l2, e.rel_l2);
        agg.max_rel_diff = worst(agg.max_rel_diff, e.max_rel_diff);
        agg.guided_rel_l2 = worst(agg.guided_rel_l2, e.guided_rel_l2);
        agg.guided_max_rel_diff = worst(agg.guided_max_rel_diff, e.guided_max_rel_diff);
        agg.ok = agg.ok && e.ok;
        for (const std::string& name : e.composed_with_reference)
            if (std::find(agg.composed_with_reference.begin(), agg.composed_with_reference.end(), name) ==
                agg.composed_with_reference.end())
                agg.composed_with_reference.push_back(name);
    }
    const auto mean = [&](similarity end_to_end_result::*which) {
        similarity m;
        for (const image_certificate& c : images) {
            const similarity& s = c.end_to_end.*which;
            m.rel_l2 += s.rel_l2;
            m.cosine += s.cosine;
            m.spearman += s.spearman;
            m.top5_overlap += s.top5_overlap;
        }
        const double n = static_cast<double>(images.size());
        m.rel_l2 /= n;
        m.cosine /= n;
        m.spearman /= n;
        m.top5_overlap /= n;
        return m;
    };
    agg.gradient_deconvnet = mean(&end_to_end_result::gradient_deconvnet);
    agg.gradient_guided = mean(&end_to_end_result::gradient_guided);
    agg.deconvnet_guided = mean(&end_to_end_result::deconvnet_guided);
    json j = to_json(agg);
    j["images"] = images.size();
    return j;
}

json aggregate_gradient_check(const std::vector<image_certificate>& images) {
    const gradient_check_result& first = images.front().gradient_check;
    double max_rel_error = first.max_rel_error, max_reference_rel_error = first.max_reference_rel_error,
           engine_vs_reference = first.engine_vs_reference;
    int64_t differing = 0, through_reference = 0;
    bool ok = true;
    size_t directions = 0;
    for (const image_certificate& c : images) {
        max_rel_error = worst(max_rel_error, c.gradient_check.max_rel_error);
        max_reference_rel_error = worst(max_reference_rel_error, c.gradient_check.max_reference_rel_error);
        engine_vs_reference = worst(engine_vs_reference, c.gradient_check.engine_vs_reference);
        differing += c.gradient_check.decisions_differing;
        through_reference += c.gradient_check.basis == "through the reference";
        ok = ok && c.gradient_check.ok;
        directions += c.gradient_check.directions.size();
    }
    return {{"directions", directions},
            {"jitter", number(first.jitter)},
            {"step", number(first.step)},
            {"bound", number(first.bound)},
            {"max_rel_error", number(max_rel_error)},
            {"max_reference_rel_error", number(max_reference_rel_error)},
            {"engine_vs_reference", number(engine_vs_reference)},
            {"decisions_differing", differing},
            {"images_through_reference", through_reference},
            {"ok", ok}};
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

json certificate_json(const std::string& model, const std::vector<image_certificate>& images, const tolerances& tol) {
    for (size_t k = 1; k < images.size(); ++k) {
        const auto& first = images.front().layers;
        const auto& these = images[k].layers;
        bool same = first.size() == these.size();
        for (size_t i = 0; same && i < first.size(); ++i) same = first[i].name == these[i].name;
        if (!same)
            throw input_error(fmt::format("certificate of {}: image {} ({}) does not list the same layers as image 0 ({})",
                                          model, k, images[k].image, images.front().image));
    }
    bool ok = true;
    for (const image_certificate& c : images) ok = ok && c.ok;

    json layers = json::array();
    json per_image = json::array();
    json target = nullptr, end_to_end = nullptr, gradient_check = nullptr;
    if (!images.empty()) {
        for (size_t i = 0; i < images.front().layers.size(); ++i) layers.push_back(to_json(aggregate_layer(images, i)));
        for (const image_certificate& c : images) per_image.push_back(image_json(c));
        target = target_json(images.front());
        end_to_end = aggregate_end_to_end(images);
        gradient_check = aggregate_gradient_check(images);
    }
    return {{"schema", certificate_schema},
            {"ok", ok},
            {"model", model},
            {"class", summary_class(images)},
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
