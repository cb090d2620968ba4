// deepinside: look inside image classifiers. One executable, one subcommand per job; errors are
// caught once here and printed as one line with a non-zero exit.
#include "commands.hpp"
#include "parallel.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <sched.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

namespace {

/// The CLI's threads spin briefly, then sleep. GNU OpenMP (under oneDNN and the host loops) reads
/// OMP_WAIT_POLICY and GOMP_SPINCOUNT once, when it is loaded, before main(). Its default spins
/// long (300,000 turns) before sleeping, and on a machine where another process keeps a core busy
/// every parallel region then waits for a descheduled thread (the issue measured ResNet-18 saliency
/// at 772 ms instead of 112 ms). Sleeping at once (OMP_WAIT_POLICY=passive) avoids that, but then
/// every parallel region pays a futex wake-up, which on an idle machine made the bundled model's
/// saliency 4.4 times slower (0.87 against 0.20 ms) and MobileNetV2's forward 1.9 times (8.4
/// against 4.5 ms). 1,000 turns (a microsecond or two) keeps the idle speed and costs under 10 %
/// on larger models when a core is busy (ResNet-18 saliency 78 against 72 ms with `yes` on one
/// core; the bundled model's 0.2 ms saliency then takes 1.1 against 0.4 ms). So when the user set
/// neither variable, the program runs itself again, once, with GOMP_SPINCOUNT=1000: the variable
/// is set before exec, so the new image sees it and does not exec again (the exec costs about
/// 9 ms here). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins. On one CPU there is nothing to gain
/// (libgomp already spins only 100 times when it runs more threads than the CPUs it may use), so
/// no exec. If exec fails (no /proc), the variable is removed again and the run continues with
/// libgomp's default.
void spin_briefly_by_default(char** argv) {
    if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    if (::sched_getaffinity(0, sizeof cpus, &cpus) == 0 && CPU_COUNT(&cpus) == 1) return;
    if (::setenv("GOMP_SPINCOUNT", "1000", 1) != 0) return;
    ::execv("/proc/self/exe", argv);
    ::unsetenv("GOMP_SPINCOUNT");
}

} // namespace

int main(int argc, char** argv) {
    spin_briefly_by_default(argv);
    CLI::App app{"deepinside: gradients, DeconvNet and guided backprop of ONNX image classifiers on oneDNN"};
    app.require_subcommand(1);
    // Bad options are bad input like any other: one line, status 1 (set before the subcommands,
    // which inherit it).
    app.failure_message([](const CLI::App*, const CLI::Error& e) {
        return fmt::format("deepinside: error: {} (see --help)\n", e.what());
    });
    app.set_version_flag("--version", "deepinside 0.1.0");
    std::vector<std::pair<CLI::App*, deepinside::cli::command>> commands;
    auto add = [&](const char* name, const char* help, auto adder) {
        CLI::App* sub = app.add_subcommand(name, help);
        commands.emplace_back(sub, adder(*sub));
    };
    add("info", "Inputs, outputs and layers of a model, with shapes and parameter counts", deepinside::cli::add_info);
    add("classify", "Classify PNG/JPEG images: the top-K classes with scores", deepinside::cli::add_classify);
    add("forward", "Run the model on a float32 .npy tensor and write its first output as .npy",
        deepinside::cli::add_forward);
    add("saliency", "Image-specific class saliency: gradient, DeconvNet or guided backprop signals and maps",
        deepinside::cli::add_saliency);
    add("bench", "Time forward or saliency passes (median and spread)", deepinside::cli::add_bench);
    add("verify", "Certify, layer by layer, that DeconvNet is the gradient except at ReLU (the paper's section 4)",
        deepinside::cli::add_verify);
    add("class-model",
        "Class model images: gradient ascent on a class score with an L2 penalty (the paper's section 2)",
        deepinside::cli::add_class_model);
    add("evaluate",
        "Score the saliency methods against ground truth: segmentation, pointing game, deletion/insertion, "
        "randomisation",
        deepinside::cli::add_evaluate);
    add("segment",
        "Weakly supervised segmentation from a saliency map: quantile seeds, colour GMMs, GraphCut, box (section 3.2)",
        deepinside::cli::add_segment);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int status = app.exit(e); // prints help, the version, or the one-line failure
        return status == 0 ? 0 : 1;
    }
    try {
        for (auto& [sub, run] : commands)
            if (sub->parsed()) return run();
    } catch (const deepinside::error& e) {
        if (deepinside::cli::is_secondary_rank()) {
            // Under mpirun every rank meets an error of the options or the inputs alike, and rank 0
            // prints it; mpirun ends the job as soon as one process exits non-zero, so the others
            // give rank 0 time to print first. Should rank 0 not have failed, this rank still says why.
            std::this_thread::sleep_for(std::chrono::seconds(3));
            fmt::print(stderr, "deepinside: error: {}\n", e.what());
            return 1;
        }
        fmt::print(stderr, "deepinside: error: {}\n", e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        fmt::print(stderr, "deepinside: error: out of memory\n");
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "deepinside: internal error: {}\n", e.what());
        return 2;
    }
    return 0;
}
