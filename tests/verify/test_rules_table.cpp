// rules::table is the one answer to "what does DeconvNet do at this op?": the engine's registry
// cannot register an op without a row (a static_assert in lib/ops/registry.cpp), the reference knows
// every op that has one, and the README's "Rules per op" table is this table, row for row.
#include "support.hpp"

#include "support/environment.hpp"
#include "support/requirements.hpp"

#include <deepinside/rules.hpp>

#include <fmt/format.h>

#include <boost/test/unit_test.hpp>

#include <fstream>
#include <sstream>

using namespace deepinside;

namespace {

std::string cell_of(rules::behaviour b) {
    switch (b) {
    case rules::behaviour::exact: return "exact";
    case rules::behaviour::relu: return "relu";
    case rules::behaviour::nonrelu: return "nonrelu";
    }
    return "?";
}

/// The README's rows between the "### Rules per op" heading and the next blank line after the table.
std::vector<std::string> readme_rows(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    bool in_section = false, in_table = false;
    std::vector<std::string> rows;
    while (std::getline(in, line)) {
        if (line.rfind("### Rules per op", 0) == 0) in_section = true;
        else if (in_section && line.rfind("#", 0) == 0) break;
        else if (in_section && line.rfind("| ", 0) == 0) {
            in_table = true;
            rows.push_back(line);
        } else if (in_table) {
            break;
        }
    }
    return rows;
}

} // namespace

BOOST_AUTO_TEST_SUITE(rules_table)

BOOST_AUTO_TEST_CASE(relu_masks_are_the_paper_s) {
    BOOST_TEST(rules::relu_masks_of(backward_rule::gradient).input_positive);
    BOOST_TEST(!rules::relu_masks_of(backward_rule::gradient).signal_positive);
    BOOST_TEST(!rules::relu_masks_of(backward_rule::deconvnet).input_positive);
    BOOST_TEST(rules::relu_masks_of(backward_rule::deconvnet).signal_positive);
    BOOST_TEST(rules::relu_masks_of(backward_rule::guided).input_positive);
    BOOST_TEST(rules::relu_masks_of(backward_rule::guided).signal_positive);
    BOOST_TEST((rules::find("Relu")->under_rules == rules::behaviour::relu));
    BOOST_TEST(rules::find("Abs") == nullptr); // constant-only arithmetic: folded, never an op
    // Only ReLU differs; every op the paper treats as linear is predicted identical.
    for (const auto& r : rules::table())
        BOOST_TEST(((rules::expected_relation(r.layer) == rules::expectation::differs) == (r.op_type == "Relu")), r.op_type);
}

BOOST_AUTO_TEST_CASE(the_readme_table_is_rules_table,
                     *test_support::needs_file(std::string(test_support::env("DEEPINSIDE_SOURCE_DIR")) + "/README.md", "the checkout")) {
    const auto rows = readme_rows(std::string(test_support::env("DEEPINSIDE_SOURCE_DIR")) + "/README.md");
    BOOST_REQUIRE_EQUAL(rows.size(), rules::table().size() + 2); // header and separator
    for (size_t i = 0; i < rules::table().size(); ++i) {
        const auto& r = rules::table()[i];
        const std::string expected = fmt::format("| {} | {} | {} | {} | {} |", r.op_type, cell_of(r.under_rules), rules::to_string(r.layer),
                                                 rules::to_string(rules::expected_relation(r.layer)), r.deconvnet_does);
        BOOST_TEST(rows[i + 2] == expected);
    }
}

BOOST_AUTO_TEST_SUITE_END()
