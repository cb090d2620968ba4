// deepinside bench MODEL [--input X.npy] --what forward|saliency|saliency-all --iters N --threads T [--check none|outputs|all]
//                 [--mark-iterations]
// Times whole calls on a network built once (primitive creation is outside the timed region) and
// prints the median, the spread, the arithmetic rate of the convolutions and matrix products, and the
// process's peak resident memory (`peak_rss_mb`, MB = 10^6 bytes, as tools/bench_pytorch.py prints it).
#include "commands.hpp"
#include "common.hpp"
#include "inputs.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <random>

#include <sys/resource.h>

namespace deepinside::cli {

namespace {

/// Multiply-adds ×2 of the Conv, Gemm and MatMul nodes in one forward pass.
double forward_flops(const graph& g, const network& net) {
    double flops = 0;
    for (const node& n : g.nodes) {
        if (n.op_type == "Conv") {
            const constant* w = g.find_constant(n.inputs.at(1));
            if (!w) continue;
            const shape_t y = net.shape_of(n.outputs[0]);
            flops += 2.0 * double(element_count(y)) * double(w->shape[1] * w->shape[2] * w->shape[3]);
        } else if (n.op_type == "Gemm" || n.op_type == "MatMul") {
            const shape_t y = net.shape_of(n.outputs[0]);
            const shape_t a = net.shape_of(n.inputs[0]);
            const int64_t k = n.op_type == "Gemm" && n.get_int("transA", 0) ? a[0] : a.back();
            flops += 2.0 * double(element_count(y)) * double(k);
        }
    }
    return flops;
}

} // namespace

command add_bench(CLI::App& app) {
    struct options {
        std::string model, input, what = "forward", check = "outputs";
        int iters = 20, threads = 0, warmup = 3;
        int64_t batch = 1;
        bool mark = false, winograd = false;
    };
    auto o = std::make_shared<options>();
    app.add_option("MODEL", o->model, "ONNX model file")->required();
    app.add_option("--input", o->input, "float32 .npy input (default: random normal of the model's input shape)");
    auto* batch = app.add_option("--batch", o->batch, "Batch of the random input")->capture_default_str()->check(positive_integer("images", 65536));
    app.add_option("--what", o->what, "forward, saliency (forward + one gradient map) or saliency-all (forward + gradient, deconvnet and guided)")
        ->capture_default_str()->check(CLI::IsMember({"forward", "saliency", "saliency-all"}));
    app.add_option("--iters", o->iters, "Timed iterations")->capture_default_str()->check(positive_integer("iterations", 1'000'000));
    app.add_option("--check", o->check,
                   "NaN/infinity check timed with each call: none, outputs (the library's default) or all (every activation and "
                   "signal, as the other commands do)")
        ->capture_default_str()->check(CLI::IsMember({"none", "outputs", "all"}));
    app.add_option("--warmup", o->warmup, "Untimed iterations first")->capture_default_str()->check(CLI::NonNegativeNumber);
    app.add_flag("--mark-iterations", o->mark,
                 "Print `iteration_start I` before and `iteration I <ms> ms` after each timed iteration, on the stdout "
                 "DNNL_VERBOSE=1 writes to, so that its lines can be split per iteration (tools/bench_profile.sh)");
    add_threads_option(app, o->threads);
    add_winograd_flag(app, o->winograd);
    return [o, batch] {
        if (batch->count() && !o->input.empty())
            throw input_error("--batch sets the batch of the random input; with --input the file's shape is the batch");
        graph g = read_onnx(o->model);
        // An explicit --batch on a model whose batch axis is fixed must not be ignored.
        if (batch->count() && o->input.empty()) choose_batch(g, o->batch, 1);
        tensor x;
        if (!o->input.empty()) {
            x = read_input_npy(o->input);
        } else {
            shape_t s = g.inputs.at(0).shape;
            if (s.empty()) throw input_error(fmt::format("{}: the input has no shape; pass --input", o->model));
            for (size_t d = 0; d < s.size(); ++d)
                if (s[d] < 0) {
                    if (d != 0) throw input_error(fmt::format("{}: input dimension {} is open; pass --input", o->model, d));
                    s[d] = o->batch;
                }
            x = tensor(s);
            std::mt19937 rng(0);
            std::normal_distribution<float> normal;
            for (auto& v : x.data) v = normal(rng);
        }
        // The network takes the graph over: the weights are held once, as a long-running program would.
        engine_options engine = engine_flags(o->threads, "gradient",
                                             o->check == "none"  ? finite_check::none
                                             : o->check == "all" ? finite_check::all
                                                                 : finite_check::outputs);
        engine.winograd = o->winograd;
        network net(std::move(g), x.shape, engine);
        net.forward(x);
        const std::vector<int64_t> top = top1_per_image(net.read(net.score_tensor()));
        std::vector<backward_request> requests;
        if (o->what == "saliency") requests = {{{target::kind::class_score, "", top, {}}, backward_rule::gradient}};
        if (o->what == "saliency-all")
            for (auto r : {backward_rule::gradient, backward_rule::deconvnet, backward_rule::guided})
                requests.push_back({{target::kind::class_score, "", top, {}}, r});
        if (!requests.empty()) net.prepare_backward(requests.size());
        auto once = [&] {
            net.forward(x);
            if (!requests.empty()) net.backward(requests);
        };
        for (int i = 0; i < o->warmup; ++i) once();
        std::vector<double> ms;
        for (int i = 0; i < o->iters; ++i) {
            // fmt::print and oneDNN's verbose lines share C's stdout buffer, so the markers keep their place.
            if (o->mark) fmt::print("iteration_start {}\n", i);
            const auto t0 = std::chrono::steady_clock::now();
            once();
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            if (o->mark) fmt::print("iteration {} {:.3f} ms\n", i, ms.back());
        }
        std::sort(ms.begin(), ms.end());
        const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
        // A backward-data pass costs what the forward does; one forward serves every request.
        const double gflop = forward_flops(net.model(), net) * (1.0 + double(requests.size())) * 1e-9;
        const char* policy = std::getenv("OMP_WAIT_POLICY");
        const char* spin = std::getenv("GOMP_SPINCOUNT");
        fmt::print("model {}\ninput {}\nwhat {} ({} backward requests)\ncheck {}\nconvolution {}\n", o->model, to_string(x.shape), o->what,
                   requests.size(), o->check, o->winograd ? "winograd where it applies" : "direct");
        // The thread count the network runs on, and how idle threads wait (read by libgomp at start).
        fmt::print("threads {}\nwait_policy {}{}\niters {}\n", net.threads(), policy ? policy : "unset (libgomp's default: spin, then sleep)",
                   spin ? fmt::format(" (GOMP_SPINCOUNT {})", spin) : std::string(), ms.size());
        fmt::print("min {:.3f} ms\nmax {:.3f} ms\nspread {:.3f} ms ({:.1f} % of the median)\n", ms.front(), ms.back(),
                   ms.back() - ms.front(), 100.0 * (ms.back() - ms.front()) / median);
        fmt::print("gflop {:.4f}\ngflops_per_s {:.1f}\n", gflop, gflop / (median * 1e-3));
        // Peak resident memory of the whole process (model, plans, activations, oneDNN's scratch):
        // Linux gives ru_maxrss in KiB; MB here is 10^6 bytes.
        rusage usage{};
        getrusage(RUSAGE_SELF, &usage);
        fmt::print("peak_rss_mb {:.1f}\n", double(usage.ru_maxrss) * 1024.0 / 1e6);
        double total = 0;
        for (double t : ms) total += t;
        fmt::print("mean {:.3f} ms\n", total / double(ms.size())); // what a collapse under load shows first
        fmt::print("median {:.3f} ms\n", median);
        return 0;
    };
}

} // namespace deepinside::cli
