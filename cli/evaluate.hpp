#pragma once
// deepinside evaluate: what the evaluation measures, shared by the command (evaluate.cpp) and its
// report writer (evaluate_report.cpp).
#include <nlohmann/json.hpp>

#include <string>

namespace deepinside::cli {

/// Writes DIR/index.html and DIR/evaluation.md from the command's JSON summary (schema
/// deepinside.evaluate/1), creating DIR. The curves are drawn as inline SVG.
void write_evaluation_report(const std::string& dir, const nlohmann::ordered_json& summary);

} // namespace deepinside::cli
