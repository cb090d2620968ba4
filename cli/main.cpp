// deepinside: look inside image classifiers. One executable, one subcommand per job; errors are
// caught once here and printed as one line with a non-zero exit.
#include "commands.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <new>

int main(int argc, char** argv) {
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
    add("forward", "Run the model on a float32 .npy tensor and write its first output as .npy", deepinside::cli::add_forward);
    add("saliency", "Image-specific class saliency: gradient, DeconvNet or guided backprop signals and maps",
        deepinside::cli::add_saliency);
    add("bench", "Time forward or saliency passes (median and spread)", deepinside::cli::add_bench);
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
