#pragma once
// Helpers shared by the methods tests (segmentation, class models): a scratch folder, running the
// deepinside executable, and exception checks.
#include <deepinside/errors.hpp>

// Only main.cpp may define the module (see there).
#undef BOOST_TEST_MODULE
#include <boost/test/unit_test.hpp>

#include "support/environment.hpp"
#include "support/requirements.hpp"
#include "support/scratch_dir.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace methods_test {

namespace fs = std::filesystem;

/// A fresh folder under the system temp folder, removed with everything in it.
class scratch_dir : public deepinside::test_support::scratch_dir {
public:
    scratch_dir() : deepinside::test_support::scratch_dir("deepinside-methods") {}
};

inline std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// The repository's root (DEEPINSIDE_SOURCE_DIR), for the bundled models and images.
inline fs::path source_dir() { return deepinside::test_support::env("DEEPINSIDE_SOURCE_DIR"); }

/// The built deepinside executable (DEEPINSIDE_BIN, set by ctest) as a precondition.
inline boost::unit_test::precondition needs_deepinside_bin() {
    const std::string variables[] = {"DEEPINSIDE_BIN", "DEEPINSIDE_SOURCE_DIR"};
    return boost::unit_test::precondition([variables](
                                              boost::unit_test::test_unit_id) -> boost::test_tools::assertion_result {
        const std::string bin = deepinside::test_support::env(variables[0].c_str());
        const std::string src = deepinside::test_support::env(variables[1].c_str());
        if (bin.empty() || !fs::exists(bin) || src.empty()) {
            boost::test_tools::assertion_result r(false);
            r.message() << "DEEPINSIDE_BIN and DEEPINSIDE_SOURCE_DIR must name the built executable and the checkout";
            return r;
        }
        return true;
    });
}

struct run_result {
    int status = -1;
    std::string out, err;
};

/// Runs `deepinside ARGS` from `dir` (stdout and stderr captured in files outside it).
inline run_result run_deepinside(const std::string& args) {
    static int counter = 0;
    const std::string stem = "deepinside-methods-run-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    const fs::path out = fs::temp_directory_path() / (stem + ".out"), err = fs::temp_directory_path() / (stem + ".err");
    const std::string cmd = std::string("'") + deepinside::test_support::env("DEEPINSIDE_BIN") + "' " + args + " > '" +
                            out.string() + "' 2> '" + err.string() + "'";
    const int raw = std::system(cmd.c_str());
    run_result r;
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    r.out = slurp(out);
    r.err = slurp(err);
    fs::remove(out);
    fs::remove(err);
    return r;
}

/// Checks that `fn` throws exactly `E` with a one-line message containing every fragment.
template <class E, class F> void check_throws(F&& fn, const std::vector<std::string>& fragments) {
    try {
        fn();
        BOOST_ERROR("no exception thrown; expected one mentioning " << (fragments.empty() ? "" : fragments[0]));
    } catch (const E& e) {
        const std::string message = e.what();
        BOOST_TEST_MESSAGE("message: " << message);
        BOOST_CHECK_MESSAGE(message.find('\n') == std::string::npos, "message is not one line: " << message);
        for (const std::string& f : fragments)
            BOOST_CHECK_MESSAGE(message.find(f) != std::string::npos,
                                "message '" << message << "' lacks '" << f << "'");
    } catch (const std::exception& e) {
        BOOST_ERROR("wrong exception type: " << e.what());
    }
}

} // namespace methods_test
