#pragma once
// What a test case needs from outside the repository (../shared/models, ONNX's test data, Debian's
// datasets, Python with PyTorch), declared as a Boost.Test precondition:
//
//     BOOST_AUTO_TEST_CASE(name, *needs_shared_models()) { ... }
//
// Where it is missing, Boost reports the case as skipped ("is skipped because precondition
// failed: ..."), ctest reports the area as skipped (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt)
// and tools/test.sh fails: a missing fixture is never a silent pass. Inside a case that declared
// its needs, a missing file is an error (require_file), not a reason to return early.
#include "support/environment.hpp"

#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace deepinside::test_support {

namespace requirements_detail {

inline boost::test_tools::assertion_result missing(const std::string& what) {
    boost::test_tools::assertion_result r(false);
    r.message() << what;
    return r;
}

inline boost::test_tools::assertion_result folder_with(const char* variable, const std::string& file, const std::string& what) {
    const std::string root = env(variable);
    if (root.empty()) return missing(std::string(variable) + " is not set (" + what + ")");
    if (!std::filesystem::exists(std::filesystem::path(root) / file))
        return missing(what + ": " + (std::filesystem::path(root) / file).string() + " is absent");
    return true;
}

} // namespace requirements_detail

/// ../shared/models beside the checkout (DEEPINSIDE_SHARED_MODELS), with `model` in it when given.
inline boost::unit_test::precondition needs_shared_models(const std::string& model = "") {
    return boost::unit_test::precondition([model](boost::unit_test::test_unit_id) {
        return requirements_detail::folder_with("DEEPINSIDE_SHARED_MODELS", model.empty() ? "" : model + "/model.onnx",
                                                "the real models of ../shared/models");
    });
}

/// ONNX's backend node tests (Debian's libonnx-testdata; DEEPINSIDE_ONNX_TESTDATA).
inline boost::unit_test::precondition needs_onnx_testdata() {
    return boost::unit_test::precondition([](boost::unit_test::test_unit_id) {
        return requirements_detail::folder_with("DEEPINSIDE_ONNX_TESTDATA", "node", "ONNX's test data (libonnx-testdata)");
    });
}

/// A file installed by a Debian package (for example a data set), named in the message.
inline boost::unit_test::precondition needs_file(std::string path, std::string package) {
    return boost::unit_test::precondition([path, package](boost::unit_test::test_unit_id) -> boost::test_tools::assertion_result {
        if (std::filesystem::exists(path)) return true;
        return requirements_detail::missing(path + " is absent (Debian package " + package + ")");
    });
}

/// DEEPINSIDE_PYTHON can import every module of `modules` (space-separated).
inline boost::unit_test::precondition needs_python(std::string modules) {
    return boost::unit_test::precondition([modules](boost::unit_test::test_unit_id) -> boost::test_tools::assertion_result {
        const std::string python = env("DEEPINSIDE_PYTHON");
        if (python.empty()) return requirements_detail::missing("DEEPINSIDE_PYTHON is not set");
        std::string imports;
        for (char c : modules) imports += c == ' ' ? ',' : c;
        const std::string cmd = "'" + python + "' -c 'import " + imports + "' > /dev/null 2>&1";
        if (std::system(cmd.c_str()) == 0) return true;
        return requirements_detail::missing(python + " cannot import " + imports);
    });
}

/// Inside a case that declared its needs: the file must be there.
inline std::filesystem::path require_file(const std::filesystem::path& p) {
    BOOST_REQUIRE_MESSAGE(std::filesystem::exists(p), p.string() << " is absent although the test's precondition held");
    return p;
}

} // namespace deepinside::test_support
