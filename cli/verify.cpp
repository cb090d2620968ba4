// deepinside verify MODEL [IMAGE... | --input X.npy] [--class C] [--layer T --channel K [--unit Y,X]]
//                   [--json OUT.json] [--report DIR] [--golden FILE [--update]]
// The layer-by-layer certificate of the paper's section 4 (verify/certificate.hpp) on each image,
// the model loaded once. Exit status: 0 the certificate holds, 3 a layer contradicts the paper (or the
// end-to-end or gradient check fails; named on stderr), 4 a golden file's values moved, 1 refused
// input, 2 internal error. Under `mpirun -n K` each process certifies a contiguous share of the images
// and the first prints every image's text and writes the JSON, aggregated from every image's entry as
// one process does (--report and --golden, which need every image's tensors, are refused there).
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"
#include "parallel.hpp"

#include "certificate.hpp"
#include "certificate_json.hpp"
#include "golden.hpp"
#include "report.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

namespace deepinside::cli {

namespace {

std::string number(double v) { return fmt::format("{:.3g}", v); }

/// One image's certificate as printed: a line per layer, then the end-to-end and gradient checks.
std::string certificate_text(const verify::image_certificate& c) {
    std::string t = fmt::format("{}: {}\n", c.image, c.target_text);
    t += fmt::format("  {:<28} {:<18} {:<12} {:<12} {:>10} {:>10} {:>9}  {}\n", "layer", "op", "expected", "observed",
                     "max rel", "differing", "ties", "");
    for (const auto& l : c.layers) {
        const bool covered = l.relation != "not-covered";
        t += fmt::format("  {:<28} {:<18} {:<12} {:<12} {:>10} {:>10} {:>9}  {}\n", l.name.substr(0, 28), l.op.substr(0, 18),
                         rules::to_string(l.expected), l.relation, covered ? number(l.max_rel_diff) : "-",
                         covered ? number(l.differing_fraction) : "-",
                         l.layer == rules::deconvnet_layer::max_pooling ? fmt::format("{}", l.tied_windows) : "-",
                         l.ok ? "" : "CONTRADICTS");
    }
    const auto& e = c.end_to_end;
    t += fmt::format("  end to end: composed vs engine signal, rel L2: DeconvNet {}, guided {} (bound {}) {}\n", number(e.rel_l2),
                     number(e.guided_rel_l2), number(e.bound), e.ok ? "ok" : "FAILS");
    auto sim = [&](const char* what, const verify::similarity& s) {
        t += fmt::format("  {:<24} rel L2 {:<9} cosine {:<9} Spearman {:<9} top-5% overlap {}\n", what, number(s.rel_l2),
                         number(s.cosine), number(s.spearman), number(s.top5_overlap));
    };
    sim("gradient vs DeconvNet:", e.gradient_deconvnet);
    sim("gradient vs guided:", e.gradient_guided);
    sim("DeconvNet vs guided:", e.deconvnet_guided);
    const auto& g = c.gradient_check;
    t += fmt::format("  gradient check: {} directions at the image + {} noise, step {}: finite differences vs engine {}, vs "
                     "reference {}; engine vs reference on its activations {}; {} of {} decisions differ f32/double; bound {}: {}\n",
                     g.directions.size(), number(g.jitter), number(g.step), number(g.max_rel_error),
                     number(g.max_reference_rel_error), number(g.engine_vs_reference), g.decisions_differing, g.decisions,
                     number(g.bound), g.ok ? "ok (" + g.basis + ")" : "FAILS");
    std::string phases;
    for (const auto& [name, seconds] : c.phase_seconds) phases += fmt::format("{}{} {:.2f}", phases.empty() ? "" : ", ", name, seconds);
    t += fmt::format("  {} in {:.2f} s ({})\n", c.ok ? "certificate holds" : "CERTIFICATE FAILS", c.seconds, phases);
    return t;
}

/// What failed, for stderr, one line each, naming the image and the layer.
std::string failures_text(const verify::image_certificate& c) {
    std::string t;
    for (const auto& l : c.layers)
        if (!l.ok) t += fmt::format("deepinside: verify: {}: layer '{}' contradicts the paper: {}\n", c.image, l.name, l.problem);
    if (!c.end_to_end.ok)
        t += fmt::format("deepinside: verify: {}: the composed DeconvNet / guided signals and the engine's differ by {} / {} "
                         "(relative L2), above {}\n",
                         c.image, number(c.end_to_end.rel_l2), number(c.end_to_end.guided_rel_l2), number(c.end_to_end.bound));
    if (!c.gradient_check.ok)
        t += fmt::format("deepinside: verify: {}: finite differences and the engine's gradient differ by {} (relative), "
                         "above {}\n",
                         c.image, number(c.gradient_check.max_rel_error), number(c.gradient_check.bound));
    return t;
}

} // namespace

command add_verify(CLI::App& app) {
    struct options {
        std::string model, input, classes, layer, unit, reduce = "max", json, report, golden, golden_tolerance;
        std::vector<std::string> images;
        std::optional<int64_t> channel;
        bool update = false;
        int threads = 0, directions = 3;
        uint64_t seed = 1;
        double jitter = verify::verify_options().jitter, step = verify::verify_options().step;
        verify::tolerances tol;
        preprocess_flags pre;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    auto* img = app.add_option("IMAGE", o->images, "PNG or JPEG images, folders of them, or quoted globs (stretched to the network's size)");
    auto* npy = app.add_option("--input", o->input, "float32 .npy tensor [N, C, H, W], each of its N images certified");
    img->excludes(npy);
    app.add_option("--class", o->classes, "Class index (default: the top-1 class of each image)");
    app.add_option("--layer", o->layer, "Certify for activity of this tensor instead of a class score");
    app.add_option("--channel", o->channel, "Channel of --layer (required with --layer)");
    app.add_option("--unit", o->unit, "Y,X of the unit in --channel (default: see --reduce)");
    app.add_option("--reduce", o->reduce, "Without --unit: max (the channel's largest unit) or sum")->capture_default_str();
    app.add_option("--json", o->json, "Write the certificate as JSON (schema deepinside.verify/1, see README)");
    app.add_option("--report", o->report, "Write an HTML and Markdown report with pictures into this folder");
    app.add_option("--golden", o->golden, "Compare logits, signals and layer relations with this golden file");
    app.add_flag("--update", o->update, "With --golden: write the golden file from this run instead of comparing");
    app.add_option("--golden-tolerance", o->golden_tolerance,
                   "Override golden tolerances, e.g. logits=1e-5,signals=2e-3,fraction=0.02,layer_rel=1e-4");
    app.add_option("--tol-layer", o->tol.layer_max_rel, "Bound on max |a-b|/max|b| at convolution, fully connected, "
                   "max pooling and reshapes")->capture_default_str();
    app.add_option("--tol-end-to-end", o->tol.end_to_end_rel_l2, "Bound on the composed DeconvNet vs the engine's "
                   "deconvnet signal (relative L2)")->capture_default_str();
    app.add_option("--tol-gradient", o->tol.gradient_check_rel, "Bound on finite differences vs the engine's gradient "
                   "(relative)")->capture_default_str();
    app.add_option("--directions", o->directions, "Random directions of the gradient check")->capture_default_str();
    app.add_option("--fd-step", o->step, "Gradient check: central-difference step, relative to the input's RMS")
        ->capture_default_str();
    app.add_option("--jitter", o->jitter, "Gradient check: noise added to the image first, relative to its RMS")
        ->capture_default_str();
    app.add_option("--seed", o->seed, "Seed of the random signals and directions")->capture_default_str();
    add_threads_option(app, o->threads);
    o->pre.add_to(app);
    return [o] {
        if (o->images.empty() && o->input.empty()) throw input_error("verify needs IMAGE files or --input X.npy");
        if (o->update && o->golden.empty()) throw input_error("--update needs --golden FILE");
        if (o->directions < 1 || o->directions > 1000) throw input_error("--directions expects 1 to 1000");
        for (double t : {o->tol.layer_max_rel, o->tol.end_to_end_rel_l2, o->tol.gradient_check_rel})
            if (!(t >= 0) || !std::isfinite(t)) throw input_error("tolerances must be finite and non-negative");
        if (o->tol.layer_max_rel > 1e-4)
            throw input_error("--tol-layer above 1e-4 would not certify the paper's 'identical'; give at most 1e-4");
        const verify::golden_tolerances golden_tol = verify::parse_golden_tolerances(o->golden_tolerance);

        target requested;
        if (!o->layer.empty()) {
            if (!o->classes.empty()) throw input_error("--class and --layer exclude each other");
            if (!o->channel) throw input_error("--layer needs --channel K");
            requested = layer_target(o->layer, o->channel, o->unit, o->reduce);
        } else {
            if (o->channel || !o->unit.empty()) throw input_error("--channel and --unit need --layer");
            if (!o->classes.empty()) {
                const auto c = parse_int_list(o->classes, "--class");
                if (c.size() != 1) throw input_error("--class takes one class");
                requested.index = c;
            }
        }

        process_group world; // one process, or this rank of an mpirun
        if (world.size() > 1 && (!o->report.empty() || !o->golden.empty()))
            throw input_error("--report and --golden need every image's tensors in one process: run verify without mpirun for them");
        const int threads = o->threads > 0 ? o->threads : threads_per_process(world);

        graph g = read_onnx(o->model);
        if (const std::string missing = unsupported_nodes(g); !missing.empty()) throw unsupported_error(missing);

        verify::verify_options vo;
        vo.tol = o->tol;
        vo.directions = o->directions;
        vo.seed = o->seed;
        if (!(o->step > 0 && o->step < 1) || !(o->jitter >= 0 && o->jitter < 1))
            throw input_error("--fd-step expects a number in (0, 1) and --jitter one in [0, 1)");
        vo.step = o->step;
        vo.jitter = o->jitter;
        vo.engine = engine_flags(threads, "gradient");

        // This rank's images (all of them in one process), certified; each leaves its JSON entry, its
        // text and its failures in `out.images`, in order.
        std::vector<verify::image_certificate> certificates;
        rank_output out;
        const auto work = [&] {
            // The images, each [1, C, H, W], with their names: this rank's contiguous share.
            std::vector<std::pair<std::string, tensor>> inputs;
            if (!o->input.empty()) {
                const tensor x = read_input_npy(o->input);
                if (x.shape.size() < 2) throw input_error(fmt::format("{}: shape {} has no batch axis", o->input, to_string(x.shape)));
                shape_t one = x.shape;
                one[0] = 1;
                const int64_t count = element_count(one);
                const auto [first, last] = world.share(size_t(x.shape[0]), 1);
                for (int64_t b = int64_t(first); b < int64_t(last); ++b)
                    inputs.emplace_back(x.shape[0] == 1 ? o->input : fmt::format("{}[{}]", o->input, b),
                                        tensor(one, std::vector<float>(x.data.begin() + b * count, x.data.begin() + (b + 1) * count)));
            } else {
                const std::vector<std::string> paths = expand_image_arguments(o->images);
                const auto [first, last] = world.share(paths.size(), 1);
                for (size_t i = first; i < last; ++i) {
                    const image picture = read_image(paths[i]);
                    const shape_t shape = input_shape_for_image(g, picture);
                    inputs.emplace_back(paths[i], image_to_tensor(picture, shape[1], shape[2], shape[3], o->pre.resolve(g)));
                }
            }
            // Images of one shape share a verifier (the model compiled once); shapes are visited in turn,
            // so one verifier lives at a time, and the graph is let go once the last one is built.
            std::map<shape_t, std::vector<size_t>> by_shape;
            for (size_t i = 0; i < inputs.size(); ++i) by_shape[inputs[i].second.shape].push_back(i);
            certificates.assign(inputs.size(), {});
            size_t shapes_left = by_shape.size();
            for (const auto& [shape, members] : by_shape) {
                verify::verifier v(g, shape, vo);
                if (--shapes_left == 0) g = graph();
                for (size_t i : members) certificates[i] = v.certify(inputs[i].second, requested, inputs[i].first);
            }
            for (const auto& c : certificates)
                out.images.push_back({{"entry", verify::image_entry(c)}, {"text", certificate_text(c)}, {"failures", failures_text(c)}});
        };
        if (const auto status = run_share(world, work, out, stdout)) return *status;

        // Rank 0 (or the one process): every image's text in order, the certificate aggregated from
        // every image's entry, then what failed.
        std::vector<nlohmann::json> entries;
        for (const auto& item : out.images) {
            fmt::print("{}", item["text"].get<std::string>());
            entries.push_back(nlohmann::json(item["entry"]));
        }
        nlohmann::json summary = verify::aggregate_certificate(o->model, entries, o->tol);
        int status = summary.value("ok", false) ? 0 : 3;
        for (const auto& item : out.images) fmt::print(stderr, "{}", item["failures"].get<std::string>());

        if (!o->golden.empty()) {
            if (o->update) {
                verify::write_golden(o->golden, o->model, certificates);
                fmt::print("golden file {} written\n", o->golden);
            } else {
                const verify::golden_comparison cmp = verify::compare_golden(o->golden, certificates, golden_tol);
                summary["golden"] = cmp.to_json();
                fmt::print("{}\n", cmp.summary());
                if (!cmp.ok) {
                    fmt::print(stderr, "deepinside: verify: {}\n", cmp.summary());
                    if (status == 0) status = 4;
                }
            }
        }
        // The report first: it creates its folder, where the JSON may be asked to go.
        if (!o->report.empty()) verify::write_report(o->report, summary, certificates);
        if (!o->json.empty()) write_text(o->json, summary.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
        fmt::print("{}: {}\n", o->model, status == 0 ? "the certificate holds" : status == 3 ? "the certificate FAILS" : "golden values moved");
        return status;
    };
}

} // namespace deepinside::cli
