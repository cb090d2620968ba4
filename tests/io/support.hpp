#pragma once
// Helpers shared by the io tests: a scratch folder, raw file access and an optional Python.
#include <deepinside/errors.hpp>

// Only main.cpp may define the module (see there).
#undef BOOST_TEST_MODULE
#include <boost/test/unit_test.hpp>

#include "support/requirements.hpp"
#include "support/scratch_dir.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace io_test {

namespace fs = std::filesystem;

/// A fresh folder under the system temp folder, removed with everything in it.
class scratch_dir : public deepinside::test_support::scratch_dir {
public:
    scratch_dir() : deepinside::test_support::scratch_dir("deepinside-io") {}
};

inline std::vector<uint8_t> read_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + path);
}

inline std::string python() {
    const char* p = std::getenv("DEEPINSIDE_PYTHON");
    return p && *p ? p : "/usr/bin/python3";
}

/// Runs `script` with Python from `dir`; returns true on exit status 0.
inline bool run_python(const scratch_dir& dir, const std::string& script) {
    const std::string script_path = dir.file("script.py");
    {
        std::ofstream out(script_path);
        out << script;
    }
    const std::string cmd = "cd '" + dir.path().string() + "' && " + python() + " " + script_path;
    return std::system(cmd.c_str()) == 0;
}

/// Checks that `fn` throws exactly `E` with a one-line message containing every fragment.
template <class E, class F>
void check_throws(F&& fn, const std::vector<std::string>& fragments) {
    try {
        fn();
        BOOST_ERROR("no exception thrown; expected one mentioning " << (fragments.empty() ? "" : fragments[0]));
    } catch (const E& e) {
        const std::string message = e.what();
        BOOST_TEST_MESSAGE("message: " << message);
        BOOST_CHECK_MESSAGE(message.find('\n') == std::string::npos, "message is not one line: " << message);
        for (const std::string& f : fragments)
            BOOST_CHECK_MESSAGE(message.find(f) != std::string::npos, "message '" << message << "' lacks '" << f << "'");
    } catch (const std::exception& e) {
        BOOST_ERROR("wrong exception type: " << e.what());
    }
}

} // namespace io_test
