#pragma once
/// The exception hierarchy of the public API. The CLI catches `deepinside::error` once at the top
/// and prints its message as one line; every message names the file, node or tensor at fault and
/// the rule it breaks.
#include <stdexcept>
#include <string>

namespace deepinside {

/// Base of every error the library throws on purpose.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A model file that is malformed or breaks an ONNX rule (bad sizes, shapes, paths, graph).
class model_error : public error {
public:
    using error::error;
};

/// A valid model or request that uses something this tool does not implement (an op, an
/// attribute value, an element type, a backward rule).
class unsupported_error : public error {
public:
    using error::error;
};

/// Bad user input: an image, a .npy file, a tensor of the wrong shape, a bad option value.
class input_error : public error {
public:
    using error::error;
};

/// A NaN or an infinity computed from finite input: an activation of the forward pass or a signal
/// of the backward pass overflowed, or the model holds weights that are not finite. The message
/// names the first tensor holding one (in topological order; for a signal, in the order the
/// backward pass computes them, from the target back, with the method and target), the value and
/// its index. Non-finite *input* is an input_error.
class numerical_error : public error {
public:
    using error::error;
};

/// An operating-system level failure reading or writing a file.
class io_error : public error {
public:
    using error::error;
};

} // namespace deepinside
