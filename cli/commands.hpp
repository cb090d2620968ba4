#pragma once
// The subcommands of the `deepinside` executable. Each registers its options on the CLI11 app and
// returns the function that runs it once parsing succeeded.
#include <CLI/CLI.hpp>

#include <functional>

namespace deepinside::cli {

using command = std::function<int()>;

command add_info(CLI::App& app);
command add_classify(CLI::App& app);
command add_forward(CLI::App& app);
command add_saliency(CLI::App& app);
command add_bench(CLI::App& app);
command add_verify(CLI::App& app);
command add_class_model(CLI::App& app);
command add_evaluate(CLI::App& app);
command add_segment(CLI::App& app);

} // namespace deepinside::cli
