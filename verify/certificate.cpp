// The verifier's computation: one forward pass of the engine, its three signals, then a walk from
// the target down to the input that sends the same signals through the engine's backward operator
// of each layer and through Zeiler and Fergus's operator (deconvnet.hpp), composing the latter into
// an independent reconstruction; finally directional finite differences of the target in double.
#include "certificate.hpp"
#include "engine/thread_scope.hpp"


#include <deepinside/errors.hpp>
#include <deepinside/evaluation.hpp>
#include <deepinside/saliency.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

namespace deepinside::verify {

namespace {

/// The values of `t` rounded to float, and those floats widened back: what both sides of a layer
/// comparison receive, so that they see the very same numbers.
struct rounded_signal {
    std::vector<float> f;
    dtensor d;
};

rounded_signal round_to_float(const dtensor& t) {
    rounded_signal r;
    r.f.resize(t.data.size());
    std::transform(t.data.begin(), t.data.end(), r.f.begin(), [](double v) { return static_cast<float>(v); });
    r.d = dtensor(t.shape, std::vector<double>(r.f.begin(), r.f.end()));
    return r;
}

dtensor random_signal(const shape_t& shape, uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 1.0);
    dtensor t(shape);
    for (double& v : t.data) v = normal(rng);
    return t;
}

double max_abs(const std::vector<double>& v) {
    double m = 0;
    for (double x : v) m = std::max(m, std::fabs(x));
    return m;
}

/// Engine (a, f32) against DeconvNet (b, double) for a layer the paper calls identical.
signal_difference compare_linear(const std::string& name, const tensor& a, const dtensor& b, double bound) {
    signal_difference d;
    d.signal = name;
    d.elements = b.size();
    const double scale = max_abs(b.data);
    int64_t differing = 0;
    for (size_t i = 0; i < b.data.size(); ++i) {
        const double diff = std::fabs(double(a.data[i]) - b.data[i]);
        d.max_abs_diff = std::max(d.max_abs_diff, diff);
        differing += diff > bound * scale;
    }
    d.max_rel_diff = scale > 0 ? d.max_abs_diff / scale : (d.max_abs_diff > 0 ? INFINITY : 0.0);
    d.differing_fraction = d.elements ? double(differing) / double(d.elements) : 0.0;
    return d;
}

/// At a ReLU: the engine's gradient rule (a) against DeconvNet's rectification (b), both fed `r`;
/// `x` the layer's forward input. They must be equal exactly where 1(X > 0) and 1(R > 0) agree and
/// different where they do not (R != 0 there).
signal_difference compare_relu(const std::string& name, const tensor& a, const dtensor& b, const dtensor& r,
                               const dtensor& x) {
    signal_difference d;
    d.signal = name;
    d.elements = b.size();
    const double scale = max_abs(b.data);
    int64_t differing = 0, disagreeing = 0;
    for (size_t i = 0; i < b.data.size(); ++i) {
        const double av = a.data[i], bv = b.data[i];
        const bool differ = av != bv;
        d.max_abs_diff = std::max(d.max_abs_diff, std::fabs(av - bv));
        differing += differ;
        const bool masks_differ = r.data[i] != 0 && ((x.data[i] > 0) != (r.data[i] > 0));
        disagreeing += masks_differ;
        if (differ != masks_differ) ++d.violations;
    }
    d.max_rel_diff = scale > 0 ? d.max_abs_diff / scale : (d.max_abs_diff > 0 ? INFINITY : 0.0);
    d.differing_fraction = d.elements ? double(differing) / double(d.elements) : 0.0;
    d.mask_disagreement = d.elements ? double(disagreeing) / double(d.elements) : 0.0;
    return d;
}

/// The top `k` positions of `v` (ties: the lower index first).
std::set<size_t> top_positions(const std::vector<float>& v, size_t k) {
    std::vector<size_t> order(v.size());
    std::iota(order.begin(), order.end(), size_t(0));
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(k), order.end(),
                      [&](size_t i, size_t j) { return v[i] > v[j] || (v[i] == v[j] && i < j); });
    return std::set<size_t>(order.begin(), order.begin() + static_cast<long>(k));
}

similarity compare_maps(const tensor& a, const tensor& b) {
    similarity s;
    double dot = 0, aa = 0, bb = 0, dd = 0;
    for (size_t i = 0; i < a.data.size(); ++i) {
        const double x = a.data[i], y = b.data[i];
        dot += x * y;
        aa += x * x;
        bb += y * y;
        dd += (x - y) * (x - y);
    }
    s.rel_l2 = aa > 0 ? std::sqrt(dd / aa) : (dd > 0 ? INFINITY : 0.0);
    s.cosine = aa > 0 && bb > 0 ? dot / std::sqrt(aa * bb) : (aa == bb ? 1.0 : 0.0);
    const tensor ma = saliency_map(a), mb = saliency_map(b);
    s.spearman = spearman(ma.data, mb.data);
    const size_t k = std::max<size_t>(1, static_cast<size_t>(std::ceil(0.05 * double(ma.data.size()))));
    const std::set<size_t> ta = top_positions(ma.data, k), tb = top_positions(mb.data, k);
    size_t common = 0;
    for (size_t i : ta) common += tb.count(i);
    s.top5_overlap = double(common) / double(k);
    return s;
}


/// d f / d (target tensor) for one image: the seed the engine builds from `t` (fill_seed), in double.
/// The engine has already validated the target by the time this runs.
dtensor seed_of(const target& t, const dtensor& values) {
    dtensor s(values.shape);
    const int64_t per_image = values.size();
    const int64_t channels = values.shape.size() >= 2 ? values.shape[1] : per_image;
    const int64_t plane = values.shape.size() >= 2 ? per_image / channels : 1;
    const int64_t idx = t.index.empty() ? 0 : t.index[0];
    switch (t.what) {
    case target::kind::class_score: s.data[size_t(idx)] = 1; break;
    case target::kind::neuron:
        s.data[size_t(idx * plane + (t.unit.empty() ? 0 : t.unit[0] * values.shape[3] + t.unit[1]))] = 1;
        break;
    case target::kind::channel_sum: std::fill_n(s.data.begin() + idx * plane, plane, 1.0); break;
    case target::kind::channel_max: {
        const auto first = values.data.begin() + idx * plane;
        s.data[size_t(idx * plane + (std::max_element(first, first + plane) - first))] = 1;
        break;
    }
    case target::kind::tensor_sum: std::fill(s.data.begin(), s.data.end(), 1.0); break;
    case target::kind::weighted_sum: std::copy(t.weights.begin(), t.weights.end(), s.data.begin()); break;
    }
    return s;
}

double dot(const dtensor& a, const dtensor& b) {
    double s = 0;
    for (size_t i = 0; i < a.data.size(); ++i) s += a.data[i] * b.data[i];
    return s;
}

const dtensor* constant_input(const reference_network& ref, const node& n, size_t i) {
    return i < n.inputs.size() ? ref.constant(n.inputs[i]) : nullptr;
}

} // namespace

/// The verifier reads and differentiates at every layer (nothing may be fused away) and certifies
/// the exact algorithm.
engine_options unfused(engine_options o) {
    o.fuse = false;
    o.winograd = false;
    return o;
}

struct verifier::impl {
    verify_options opt;
    network net;
    reference_network ref;

    impl(const graph& g, const shape_t& shape, verify_options o)
        : opt(std::move(o)), net(g, shape, unfused(opt.engine)), ref(net.model()) {
        if (shape.empty() || shape[0] != 1)
            throw input_error(fmt::format("{}: the verifier certifies one image at a time; input shape {}", g.source,
                                          to_string(shape)));
    }

    /// The engine's backward operator of one node under the gradient rule, for each of `signals` at
    /// its output: the signal at input `wrt`.
    std::vector<tensor> engine_operator(const node& n, const std::string& wrt, const std::vector<const rounded_signal*>& signals) {
        std::vector<backward_request> requests;
        for (const rounded_signal* s : signals) {
            backward_request r;
            r.what.what = target::kind::weighted_sum;
            r.what.tensor = n.outputs[0];
            r.what.weights = s->f;
            r.rule = backward_rule::gradient;
            requests.push_back(std::move(r));
        }
        std::vector<tensor> out = net.backward(requests, wrt);
        // Each (layer output, layer input) plan is used once per image: keeping them all would hold
        // the stacked signals of every layer at once (1.5 GB on VGG-16).
        net.release_backward_plans();
        return out;
    }

    image_certificate certify(const tensor& image, const target& requested, const std::string& image_name);
};

image_certificate verifier::impl::certify(const tensor& image, const target& requested, const std::string& image_name) {
    image_certificate c;
    const auto start = std::chrono::steady_clock::now();
    auto last = start;
    // Adds the time since the previous call to phase `name` (the speed figures of the README).
    auto lap = [&](const char* name) {
        const auto now = std::chrono::steady_clock::now();
        c.phase_seconds[name] += std::chrono::duration<double>(now - last).count();
        last = now;
    };
    c.image = image_name;
    c.input = image;
    net.forward(image);
    const tensor scores = net.read(net.score_tensor());
    c.scores = scores.data;

    target t = requested;
    if (t.tensor.empty()) t.tensor = net.score_tensor();
    if (t.what == target::kind::class_score && t.index.empty())
        t.index = {static_cast<int64_t>(std::max_element(scores.data.begin(), scores.data.end()) - scores.data.begin())};
    c.what = t;
    c.target_text = describe_target(t, t.tensor);

    const std::vector<tensor> signals = net.backward(
        {{t, backward_rule::gradient}, {t, backward_rule::deconvnet}, {t, backward_rule::guided}});
    c.gradient = signals[0];
    c.deconvnet = signals[1];
    c.guided = signals[2];
    net.release_backward_plans();

    lap("engine");
    // Every activation of the engine's forward pass, widened: the switches and masks of both sides
    // come from the very values the engine used.
    std::map<std::string, dtensor> acts;
    for (const std::string& name : net.tensor_names()) acts.emplace(name, to_double(net.read(name)));

    // The layers between the target and the input.
    const graph& g = ref.model();
    std::set<std::string> upstream{t.tensor}, downstream{net.input_name()};
    for (auto it = g.nodes.rbegin(); it != g.nodes.rend(); ++it)
        if (std::any_of(it->outputs.begin(), it->outputs.end(), [&](auto& o) { return upstream.count(o); }))
            for (auto& i : it->inputs)
                if (acts.count(i)) upstream.insert(i);
    for (const node& n : g.nodes)
        if (std::any_of(n.inputs.begin(), n.inputs.end(), [&](auto& i) { return downstream.count(i); }))
            for (auto& o : n.outputs) downstream.insert(o);
    auto on_path = [&](const std::string& name) { return upstream.count(name) && downstream.count(name); };

    // The independent reconstructions at each tensor reached so far: DeconvNet's, and guided
    // backpropagation's (the same operators, with the forward mask 1(X > 0) after each rectification).
    std::map<std::string, dtensor> recon, recon_guided;
    recon.emplace(t.tensor, seed_of(t, acts.at(t.tensor)));
    recon_guided.emplace(t.tensor, recon.at(t.tensor));
    auto add_to = [](std::map<std::string, dtensor>& m, const std::string& name, const dtensor& v) {
        auto [it, inserted] = m.try_emplace(name, v);
        if (!inserted)
            for (size_t j = 0; j < it->second.data.size(); ++j) it->second.data[j] += v.data[j];
    };
    const double bound = opt.tol.layer_max_rel;
    for (size_t k = g.nodes.size(); k-- > 0;) {
        const node& n = g.nodes[k];
        if (n.outputs.empty() || !on_path(n.outputs[0])) continue;
        const auto r_it = recon.find(n.outputs[0]);
        if (r_it == recon.end()) continue;
        // Every consumer of this node's output comes later in the graph and has been visited: the
        // reconstruction there is complete, and no longer needed once passed on.
        const rounded_signal real = round_to_float(r_it->second);
        recon.erase(r_it);
        const auto g_it = recon_guided.find(n.outputs[0]);
        const rounded_signal guided_in = round_to_float(g_it->second);
        recon_guided.erase(g_it);
        std::vector<std::string> act_inputs;
        for (const auto& in : n.inputs)
            if (!in.empty() && on_path(in)) act_inputs.push_back(in);
        if (act_inputs.empty()) continue;

        const rules::op_rules* row = rules::find(n.op_type);
        layer_result L;
        L.name = n.name;
        L.op = n.op_type;
        L.input = act_inputs[0];
        L.output = n.outputs[0];
        L.layer = row ? row->layer : rules::deconvnet_layer::none;
        L.engine_deconvnet = row ? std::string(row->deconvnet_does) : std::string("no engine op");

        // The DeconvNet operator of this layer, if the paper defines one and the layer is of the form
        // it treats (one activation input; constant weights).
        const std::string& x_name = n.inputs.empty() ? std::string() : n.inputs[0];
        const bool single = act_inputs.size() == 1 && act_inputs[0] == x_name;
        std::function<dtensor(const dtensor&)> deconv;
        std::string uncovered_why;
        const dtensor* x = single ? &acts.at(x_name) : nullptr;
        if (!single && L.layer != rules::deconvnet_layer::none) {
            uncovered_why = "more than one input depends on the image";
        } else if (L.layer == rules::deconvnet_layer::convolution) {
            if (const dtensor* w = constant_input(ref, n, 1)) {
                auto layer = std::make_shared<zf::conv_layer>(zf::conv_layer_of(n, *w, x->shape));
                deconv = [this, layer](const dtensor& r) { return opt.operators.filter(*layer, r); };
            } else {
                uncovered_why = "its filters are not constants";
            }
        } else if (L.layer == rules::deconvnet_layer::fully_connected) {
            const dtensor* w = constant_input(ref, n, 1);
            if (w && !(n.op_type == "Gemm" && n.get_int("transA", 0) != 0) && (n.op_type == "Gemm" || w->shape.size() == 2)) {
                auto layer = std::make_shared<zf::fc_layer>(zf::fc_layer_of(n, *w, x->shape));
                deconv = [this, layer](const dtensor& r) { return opt.operators.transpose_multiply(*layer, r); };
            } else {
                uncovered_why = "its weights are not a constant matrix applied from the right";
            }
        } else if (L.layer == rules::deconvnet_layer::max_pooling) {
            auto sw = std::make_shared<zf::switches>(opt.operators.record_switches(n, *x));
            L.windows = sw->windows;
            L.tied_windows = sw->tied_windows;
            deconv = [this, sw](const dtensor& r) { return opt.operators.unpool(*sw, r); };
        } else if (L.layer == rules::deconvnet_layer::rectification) {
            deconv = [this, x](const dtensor& r) { return opt.operators.rectify(r, *x); };
        } else if (L.layer == rules::deconvnet_layer::reshape) {
            deconv = [x](const dtensor& r) { return dtensor(x->shape, r.data); };
        }

        if (!deconv) {
            L.expected = rules::expectation::not_covered;
            L.relation = "not-covered";
            if (!uncovered_why.empty()) L.engine_deconvnet += " (not a DeconvNet layer here: " + uncovered_why + ")";
            // The composition passes such a layer with the reference's exact backward, as the engine's
            // deconvnet rule does (nonlinearities without a DeconvNet definition: their derivative).
            const std::vector<dtensor> diffs = ref.node_backward(n, acts, real.d, backward_rule::deconvnet, nonrelu_policy::gradient);
            const std::vector<dtensor> diffs_guided =
                ref.node_backward(n, acts, guided_in.d, backward_rule::guided, nonrelu_policy::gradient);
            for (size_t i = 0; i < n.inputs.size(); ++i) {
                if (!on_path(n.inputs[i]) || diffs[i].data.empty()) continue;
                add_to(recon, n.inputs[i], diffs[i]);
                add_to(recon_guided, n.inputs[i], diffs_guided[i]);
            }
            c.end_to_end.composed_with_reference.push_back(n.name);
            c.layers.push_back(std::move(L));
            continue;
        }

        L.expected = rules::expected_relation(L.layer);
        const rounded_signal random = round_to_float(random_signal(real.d.shape, opt.seed * 1000003u + k));
        lap("layers.other");
        const std::vector<tensor> engine_out = engine_operator(n, x_name, {&real, &random});
        lap("layers.engine");
        const dtensor deconv_real = deconv(real.d), deconv_random = deconv(random.d);
        lap("layers.deconvnet");
        if (deconv_real.shape != x->shape || deconv_random.shape != x->shape)
            throw std::logic_error(fmt::format("verifier: the DeconvNet operator of {} returned shape {} for input {}",
                                               n.describe(), to_string(deconv_real.shape), to_string(x->shape)));
        if (L.layer == rules::deconvnet_layer::rectification) {
            L.signals.push_back(compare_relu("real", engine_out[0], deconv_real, real.d, *x));
            L.signals.push_back(compare_relu("random", engine_out[1], deconv_random, random.d, *x));
            int64_t violations = 0;
            bool any_differ = false;
            for (const auto& s : L.signals) {
                violations += s.violations;
                any_differ = any_differ || s.differing_fraction > 0;
            }
            L.relation = any_differ ? "differs" : "identical";
            L.ok = violations == 0;
            if (!L.ok)
                L.problem = fmt::format("{}: {} elements break the ReLU relation (equal where 1(X>0) and 1(R>0) agree, "
                                        "different where they do not)",
                                        n.describe(), violations);
        } else {
            L.signals.push_back(compare_linear("real", engine_out[0], deconv_real, bound));
            L.signals.push_back(compare_linear("random", engine_out[1], deconv_random, bound));
            const bool within = std::all_of(L.signals.begin(), L.signals.end(), [&](auto& s) { return s.max_rel_diff <= bound; });
            L.relation = within ? "identical" : "differs";
            L.ok = within;
            if (!L.ok)
                L.problem = fmt::format("{}: the engine's backward and DeconvNet's {} differ by {:.3g} (max |a-b| / max |b|), "
                                        "above the bound {:.3g}",
                                        n.describe(), rules::to_string(L.layer),
                                        std::max(L.signals[0].max_rel_diff, L.signals[1].max_rel_diff), bound);
        }
        for (const auto& s : L.signals) {
            L.max_abs_diff = std::max(L.max_abs_diff, s.max_abs_diff);
            L.max_rel_diff = std::max(L.max_rel_diff, s.max_rel_diff);
        }
        L.differing_fraction = L.signals[0].differing_fraction;
        add_to(recon, x_name, deconv_real);
        dtensor guided_out = deconv(guided_in.d);
        if (L.layer == rules::deconvnet_layer::rectification)
            for (size_t j = 0; j < guided_out.data.size(); ++j)
                if (!(x->data[j] > 0)) guided_out.data[j] = 0;
        add_to(recon_guided, x_name, guided_out);
        lap("layers.deconvnet");
        c.layers.push_back(std::move(L));
    }

    lap("layers.other");
    // End to end: the composed reconstruction against the engine's deconvnet signal.
    {
        auto& e = c.end_to_end;
        e.bound = opt.tol.end_to_end_rel_l2;
        // The engine's f32 signal against a composed one: relative L2 and max |a-b| / max |b|.
        auto against = [&](const tensor& engine, const std::map<std::string, dtensor>& composed_at, double& rel_l2,
                           double& max_rel) {
            const auto it = composed_at.find(net.input_name());
            const dtensor composed = it != composed_at.end() ? it->second : dtensor(image.shape);
            double dd = 0, bb = 0, worst = 0;
            for (size_t i = 0; i < composed.data.size(); ++i) {
                const double diff = double(engine.data[i]) - composed.data[i];
                dd += diff * diff;
                bb += composed.data[i] * composed.data[i];
                worst = std::max(worst, std::fabs(diff));
            }
            const double scale = max_abs(composed.data);
            max_rel = scale > 0 ? worst / scale : (worst > 0 ? INFINITY : 0.0);
            rel_l2 = bb > 0 ? std::sqrt(dd / bb) : (dd > 0 ? INFINITY : 0.0);
        };
        against(c.deconvnet, recon, e.rel_l2, e.max_rel_diff);
        against(c.guided, recon_guided, e.guided_rel_l2, e.guided_max_rel_diff);
        e.ok = e.rel_l2 <= e.bound && e.guided_rel_l2 <= e.bound;
        e.gradient_deconvnet = compare_maps(c.gradient, c.deconvnet);
        e.gradient_guided = compare_maps(c.gradient, c.guided);
        e.deconvnet_guided = compare_maps(c.deconvnet, c.guided);
    }

    acts.clear(); // before the gradient check's own forward passes: peak memory
    recon.clear();
    recon_guided.clear();
    lap("end_to_end");
    // The gradient certified: directional central differences of f = <seed, target tensor> in double,
    // at the image plus a small seeded jitter. At the image itself a max-pooling window may be tied
    // (flat backgrounds tie thousands of them) and the score is not differentiable there: a difference
    // quotient then measures a one-sided derivative that no gradient equals. The jitter (verify_options::jitter,
    // 1e-3 of the input RMS) breaks such ties with probability one; the step (1e-8 of the RMS) stays far below
    // the gaps it opens.
    {
        auto& gc = c.gradient_check;
        gc.bound = opt.tol.gradient_check_rel;
        const dtensor noise = random_signal(image.shape, opt.seed * 104729u + 3u);
        double rms = 0;
        for (float v : image.data) rms += double(v) * double(v);
        rms = std::max(std::sqrt(rms / double(std::max<int64_t>(image.size(), 1))), 1e-3);
        gc.jitter = opt.jitter * rms;
        gc.step = opt.step * rms;
        tensor jittered = image;
        for (size_t i = 0; i < jittered.data.size(); ++i)
            jittered.data[i] = static_cast<float>(double(image.data[i]) + gc.jitter * noise.data[i]);
        net.forward(jittered);
        const dtensor g = to_double(net.backward({{t, backward_rule::gradient}})[0]);
        std::map<std::string, dtensor> engine_acts;
        for (const std::string& name : net.tensor_names()) engine_acts.emplace(name, to_double(net.read(name)));
        const dtensor seed = seed_of(t, engine_acts.at(t.tensor));
        const dtensor x0 = to_double(jittered);
        dtensor g_ref, g_ref_engine;
        std::vector<std::vector<int64_t>> exact_decisions;
        {
            const auto exact = ref.forward(x0);
            g_ref = ref.backward(exact, t.tensor, seed, backward_rule::gradient);
            for (const auto& d : ref.compare_decisions(engine_acts, exact)) {
                gc.decisions += d.decisions;
                gc.decisions_differing += d.differing;
            }
            exact_decisions = ref.decisions(exact);
        }
        g_ref_engine = ref.backward(engine_acts, t.tensor, seed, backward_rule::gradient);
        engine_acts.clear();
        {
            double dd = 0, rr = 0;
            for (size_t i = 0; i < g.data.size(); ++i) {
                dd += (g.data[i] - g_ref_engine.data[i]) * (g.data[i] - g_ref_engine.data[i]);
                rr += g_ref_engine.data[i] * g_ref_engine.data[i];
            }
            gc.engine_vs_reference = rr > 0 ? std::sqrt(dd / rr) : (dd > 0 ? INFINITY : 0.0);
        }
        auto rel = [](double a, double b) {
            const double scale = std::max(std::fabs(a), std::fabs(b));
            return scale > 0 ? std::fabs(a - b) / scale : 0.0;
        };
        // A difference quotient across a decision change (a ReLU input or a max-pooling gap crossing
        // zero between x - h d and x + h d) is no derivative: such a direction is retried with h / 4,
        // three times at most, and a direction that still crosses one is reported and left out.
        int64_t counted = 0;
        for (int d = 0; d < opt.directions; ++d) {
            const dtensor dir = random_signal(x0.shape, opt.seed * 7919u + 17u * uint64_t(d) + 1u);
            gradient_check_result::direction r;
            double h = gc.step;
            for (int attempt = 0;; ++attempt) {
                double value[2] = {0, 0};
                r.decisions_crossed = 0;
                for (int side = 0; side < 2; ++side) {
                    dtensor x = x0;
                    const double sign = side == 0 ? 1.0 : -1.0;
                    for (size_t i = 0; i < x.data.size(); ++i) x.data[i] += sign * h * dir.data[i];
                    std::vector<std::vector<int64_t>> here;
                    value[side] = dot(seed, ref.forward_to(x, t.tensor, &here));
                    for (size_t k = 0; k < here.size(); ++k)
                        for (size_t i = 0; i < here[k].size(); ++i) r.decisions_crossed += here[k][i] != exact_decisions[k][i];
                }
                r.finite_difference = (value[0] - value[1]) / (2 * h);
                r.step = h;
                if (r.decisions_crossed == 0 || attempt == 3) break;
                h /= 4;
            }
            r.engine = dot(dir, g);
            r.reference = dot(dir, g_ref);
            r.rel_error = rel(r.finite_difference, r.engine);
            r.reference_rel_error = rel(r.finite_difference, r.reference);
            if (r.decisions_crossed == 0) {
                ++counted;
                gc.max_rel_error = std::max(gc.max_rel_error, r.rel_error);
                gc.max_reference_rel_error = std::max(gc.max_reference_rel_error, r.reference_rel_error);
            }
            gc.directions.push_back(r);
        }
        // Direct when it holds; through the reference only when decisions differ (otherwise a miss
        // is the engine's), and then both halves must hold: the exact derivative is the reference's
        // gradient, and the engine computes the reference's gradient on its own forward pass.
        if (counted == 0) {
            gc.basis = "failed"; // every direction crossed a decision: nothing was measured
        } else if (gc.max_rel_error <= gc.bound) {
            gc.basis = "direct";
        } else if (gc.decisions_differing > 0 && gc.max_reference_rel_error <= gc.bound &&
                   gc.engine_vs_reference <= opt.tol.end_to_end_rel_l2) {
            gc.basis = "through the reference";
        } else {
            gc.basis = "failed";
        }
        gc.ok = gc.basis != "failed";
        net.forward(image); // the engine's state is this image's again
    }

    lap("gradient_check");
    c.ok = c.end_to_end.ok && c.gradient_check.ok &&
           std::all_of(c.layers.begin(), c.layers.end(), [](const layer_result& l) { return l.ok; });
    c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return c;
}

verifier::verifier(const graph& g, const shape_t& input_shape, verify_options options)
    : impl_(std::make_unique<impl>(g, input_shape, std::move(options))) {}
verifier::~verifier() = default;

image_certificate verifier::certify(const tensor& image, const target& t, const std::string& image_name) {
    // The references' parallel loops and Eigen's products read omp_get_max_threads(): they run on
    // the engine's count, which the network sets only inside its own calls.
    const engine::thread_scope scope(impl_->net.threads());
    return impl_->certify(image, t, image_name);
}

network& verifier::engine() { return impl_->net; }

} // namespace deepinside::verify
