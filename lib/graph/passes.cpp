#include "graph/passes.hpp"

#include <algorithm>

namespace deepinside::passes {

void fold_constant_identities(graph& g) {
    std::vector<node> kept;
    kept.reserve(g.nodes.size());
    for (auto& n : g.nodes) {
        const bool passthrough = n.op_type == "Identity" || n.op_type == "Dropout";
        const constant* c = passthrough && !n.inputs.empty() ? g.find_constant(n.inputs[0]) : nullptr;
        const bool only_first_output = n.outputs.size() == 1 || std::all_of(n.outputs.begin() + 1, n.outputs.end(),
                                                                            [](const std::string& o) { return o.empty(); });
        if (c && only_first_output && !n.outputs.empty()) {
            constant copy = *c;
            g.constants[n.outputs[0]] = std::move(copy);
            continue;
        }
        kept.push_back(std::move(n));
    }
    g.nodes = std::move(kept);
}

} // namespace deepinside::passes
