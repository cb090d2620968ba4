#pragma once
// A network's forward state as the double reference's backward reads it, fusion included
// (engine_options::fuse): every activation read back and widened to double, where a tensor fusion
// did not store (a convolution's output whose batch norm and activation it applied) takes the
// values of the first stored tensor after it, through its sole readers. What the reference's
// backward reads of such a tensor is then exactly what the engine's does: the mask of a ReLU
// (x > 0 iff relu(x) > 0) or of a Clip (a < x < b iff a < clip(x) < b); an inference batch norm and
// a convolution read none. So the certificate of a fused network's backward needs no other state.
#include "reference.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/network.hpp>

#include <boost/test/unit_test.hpp>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace deepinside::test_support {

/// Every activation of `net`'s last forward pass (see above); `stored`, when given, receives the
/// names that were read back rather than stood in for.
inline std::map<std::string, verify::dtensor> stored_activations(const network& net, std::set<std::string>* stored = nullptr) {
    std::map<std::string, verify::dtensor> out;
    std::vector<std::string> missing;
    for (const auto& name : net.tensor_names()) {
        try {
            out.emplace(name, verify::to_double(net.read(name)));
            if (stored) stored->insert(name);
        } catch (const input_error&) {
            missing.push_back(name);
        }
    }
    for (const auto& name : missing) {
        std::string at = name;
        while (!out.count(at)) {
            const node* reader = nullptr;
            for (const node& n : net.model().nodes)
                if (!n.inputs.empty() && n.inputs[0] == at) reader = &n;
            BOOST_REQUIRE_MESSAGE(reader, "fused-away tensor '" << at << "' has no reader");
            at = reader->outputs.at(0);
        }
        out.emplace(name, out.at(at));
    }
    return out;
}

} // namespace deepinside::test_support
