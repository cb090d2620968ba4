#pragma once
// The interface every op family implements: its forward and its backward, side by side.
#include "engine/builders.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/graph.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include <memory>

namespace deepinside::ops {

class op {
public:
    explicit op(node n) : node_(std::move(n)) {}
    virtual ~op() = default;
    op(const op&) = delete;
    op& operator=(const op&) = delete;

    const node& spec() const { return node_; }

    /// Creates the forward primitives and the outputs' memory. Called once per input shape.
    virtual void build_forward(engine::forward_builder& fb) = 0;
    /// Creates the backward primitives: reads the signal at each output (fb.diff) and contributes
    /// the signal at each activation input that wants one. Called once per stacked request count.
    virtual void build_backward(engine::backward_builder& bb) = 0;

protected:
    /// Throws unsupported_error naming this node.
    [[noreturn]] void refuse(const std::string& why) const {
        throw unsupported_error(fmt::format("{}: {}", node_.describe(), why));
    }
    node node_;
};

using op_factory = std::unique_ptr<op> (*)(const node&);

/// Creates the op for a node from the one table in registry.cpp.
std::unique_ptr<op> make_op(const node& n);

} // namespace deepinside::ops
