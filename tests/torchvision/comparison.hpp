#pragma once
// The three-party comparison of the torchvision tests, shared by torchvision_test.cpp (whose header
// comment gives the reasoning and the numbered checks) and families_test.cpp: reading the export
// scripts' files, (1) our forward against the reference's double forward, (4) the decisions the two
// forward passes take differently, and (2, 3, 4) one backward signal against the reference on our
// forward, the reference on its own forward and PyTorch's float64 signal.
#include <deepinside/io.hpp>
#include <deepinside/network.hpp>
#include <deepinside/tensor.hpp>

#include "reference.hpp"

#include <boost/test/unit_test.hpp>

#include "support/numbers.hpp"
#include "support/stored_state.hpp"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>

namespace deepinside::torchvision_test {

namespace fs = std::filesystem;
using deepinside::test_support::rel_l2;

/// The top-1 class the export script took the signals for (class.txt); -1 when unreadable.
inline int64_t read_class(const fs::path& dir) {
    std::ifstream in(dir / "class.txt");
    int64_t c = -1;
    in >> c;
    return c;
}

/// A .f64 file of the export scripts (raw little-endian float64, C order) holding `shape`.
inline verify::dtensor read_f64(const fs::path& file, const shape_t& shape) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    BOOST_REQUIRE_MESSAGE(in, "cannot open " << file);
    const auto bytes = static_cast<int64_t>(in.tellg());
    const int64_t count = element_count(shape);
    BOOST_REQUIRE_MESSAGE(bytes == count * 8, file << " holds " << bytes << " bytes, expected " << count << " float64 values");
    verify::dtensor t(shape);
    in.seekg(0);
    in.read(reinterpret_cast<char*>(t.data.data()), bytes);
    BOOST_REQUIRE(in);
    return t;
}

/// The class-score seed: 1 at class c of image 0.
inline verify::dtensor one_hot(const shape_t& shape, int64_t c) {
    verify::dtensor seed(shape);
    seed.data.at(static_cast<size_t>(c)) = 1.0;
    return seed;
}

inline shape_t without_batch(shape_t s) {
    s.erase(s.begin());
    return s;
}

/// Both forward passes of one input, widened to double, and how they differ (checks 1 and 4).
struct forward_states {
    std::map<std::string, verify::dtensor> ours;      ///< ours, with the reference's values for folded constants
    std::map<std::string, verify::dtensor> reference; ///< the reference's own double forward
    double worst_activation = 0;                      ///< the largest rel L2 of one of our activations
    std::string worst_name;
    int64_t flips = 0;       ///< decisions taken differently by the two forward passes
    std::string flip_report; ///< " OP differing/total" per op type
};

/// Runs the reference's double forward on `x` (after `net.forward(x)`), compares every activation
/// of ours with it (check 1: `worst_activation`) and counts the decisions that differ (check 4).
inline forward_states compare_forward(const network& net, const verify::reference_network& reference, const tensor& x) {
    forward_states s;
    s.reference = reference.forward(verify::to_double(x));
    std::set<std::string> stored; // fusion's (support/stored_state.hpp): check 1 compares these
    s.ours = test_support::stored_activations(net, &stored);
    for (const auto& name : stored) {
        const auto it = s.reference.find(name);
        BOOST_REQUIRE_MESSAGE(it != s.reference.end(), "the reference computed no tensor '" << name << "'");
        const double e = rel_l2(s.ours.at(name), it->second);
        if (e > s.worst_activation) s.worst_activation = e, s.worst_name = name;
    }
    // Tensors computed from constants alone (which the engine folds before compiling) are not
    // activations of ours; the reference's values stand in for them.
    for (const auto& [name, t] : s.reference) s.ours.try_emplace(name, t);
    std::map<std::string, std::pair<int64_t, int64_t>> flips_by_op; // op type -> (differing, total)
    for (const auto& d : reference.compare_decisions(s.ours, s.reference)) {
        flips_by_op[d.op_type].first += d.differing;
        flips_by_op[d.op_type].second += d.decisions;
        s.flips += d.differing;
    }
    for (const auto& [op, n] : flips_by_op)
        s.flip_report += " " + op + " " + std::to_string(n.first) + "/" + std::to_string(n.second);
    return s;
}

/// Check 4's bound, ours against PyTorch where no decision differs. Through ReLU, max pooling and
/// Clip the backward reads the forward only through decisions, so with none differing ours is the
/// exact backward up to f32 sums: 1e-5, as the certificate. Through smooth nonlinearities (sigmoid,
/// HardSwish, GELU, softmax, layer norm, squeeze-and-excitation gating) it reads forward values
/// themselves, so the forward's own f32 error (check 1's bound, 1e-4) passes into the signal:
/// measured 1.1e-5 on MobileNetV3-large at opset 13 under AVX2 with one thread.
inline constexpr double all_relu_direct_bound = 1e-5;
inline constexpr double smooth_direct_bound = 1e-4;

/// Checks 2, 3 and 4 for one signal of ours (`signal`, image 0's signal at the input) under `rule`
/// (and `policy` at nonlinearities other than ReLU), for the class-score seed `seed`, against
/// PyTorch's float64 signal `torch`.
inline void check_signal(const std::string& arch, const std::string& name, const tensor& signal,
                         const verify::reference_network& reference, const forward_states& states,
                         const std::string& score_tensor, const verify::dtensor& seed, backward_rule rule,
                         const verify::dtensor& torch, nonrelu_policy policy = nonrelu_policy::refuse,
                         double direct_bound = all_relu_direct_bound) {
    // 2. Certificate of our backward: the reference on our own forward state.
    verify::dtensor on_ours = reference.backward(states.ours, score_tensor, seed, rule, policy);
    on_ours.shape = torch.shape;
    const double certificate = rel_l2(signal, on_ours);
    // 3. The reference on its own double forward against PyTorch in float64.
    verify::dtensor on_reference = reference.backward(states.reference, score_tensor, seed, rule, policy);
    on_reference.shape = torch.shape;
    const double reference_vs_torch = rel_l2(on_reference, torch);
    const double flip_effect = rel_l2(on_ours, on_reference);
    const double ours_vs_torch = rel_l2(signal, torch);
    BOOST_TEST_MESSAGE(arch << ": " << name << " rel L2: ours vs reference on our forward " << certificate
                            << "; reference vs PyTorch float64 " << reference_vs_torch << "; ours vs PyTorch " << ours_vs_torch
                            << "; moved by the " << states.flips << " differing decisions: " << flip_effect);
    // f32 backward sums in another order than double: ~1e-6 expected, 1e-5 bound.
    BOOST_TEST(certificate <= 1e-5, arch << " " << name << ": ours vs reference on our forward " << certificate);
    // Two double computations of the same function: ~1e-15 measured, 1e-12 bound.
    BOOST_TEST(reference_vs_torch <= 1e-12, arch << " " << name << ": reference vs PyTorch float64 " << reference_vs_torch);
    if (states.flips == 0)
        BOOST_TEST(ours_vs_torch <= direct_bound, arch << " " << name << ": no decision differs, yet ours vs PyTorch " << ours_vs_torch);
}

} // namespace deepinside::torchvision_test
