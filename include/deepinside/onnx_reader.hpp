#pragma once
/// Reading ONNX files into the project's graph.
#include <deepinside/graph.hpp>

#include <string>

namespace deepinside {

struct read_options {
    /// Refuse files larger than this before reading them (bytes).
    int64_t max_file_bytes = int64_t(4) << 30;
    /// Allow initializers stored as external data (read only from inside the model's folder).
    bool allow_external_data = true;
};

/// Parses an ONNX file with ONNX's own protobuf classes, runs ONNX's checker and shape inference
/// where Debian's onnx can (IR <= 8, opset <= 17) and the project's own structural checks on every
/// file, then builds the graph. Throws model_error (malformed), unsupported_error (a non-float tensor
/// type, an opset or IR version outside the supported range), io_error (unreadable). Op types are
/// not checked against the engine's table: `network` refuses a node it cannot run when it is built.
graph read_onnx(const std::string& path, const read_options& options = {});

/// Same, from bytes already in memory; `source` names them in messages, `base_dir` is where
/// external data would be looked for ("" refuses external data).
graph read_onnx_bytes(const std::string& bytes, const std::string& source, const std::string& base_dir,
                      const read_options& options = {});

} // namespace deepinside
