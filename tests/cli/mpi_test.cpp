// verify and evaluate under `mpirun -n 2`: the same JSON (time and the process count apart), the
// same printed lines and the same files as one process on the same input, and a failure on one rank
// (a corrupt image in the second half of the list) one message naming the file and exit status 1.
// Missing MPI is a failure here, not a skip: the commands' MPI path would otherwise go untested.
#include "cli/cli_support.hpp" // first: it keeps the area's test module in cli_test.cpp
#include "support/environment.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

using namespace cli_support;

namespace {

using json = nlohmann::json;

const std::string mpi_prefix = mpirun_two_ranks;

/// mpirun must be on PATH (Debian's openmpi-bin).
void require_mpirun() {
    BOOST_TEST_REQUIRE(std::system("command -v mpirun > /dev/null 2>&1") == 0,
                       "mpirun is not on PATH: install Debian's openmpi-bin (tools/install_deps.sh) to run these tests");
}

result succeeds(const std::string& args, const std::string& prefix = "") {
    const result r = run(args, prefix);
    BOOST_TEST_REQUIRE(r.status == 0, (prefix.empty() ? "" : prefix + " ") << "deepinside " << args << ": exit status "
                                                                                << r.status << ", stderr: " << r.err);
    return r;
}

/// `j` without the keys named `names`, at any depth.
json without(json j, const std::vector<std::string>& names) {
    if (j.is_object()) {
        for (const auto& name : names) j.erase(name);
        for (auto& [key, value] : j.items()) value = without(value, names);
    } else if (j.is_array()) {
        for (auto& value : j) value = without(value, names);
    }
    return j;
}

/// The lines of `text` that hold none of `timing` (the lines reporting seconds).
std::string untimed_lines(const std::string& text, const std::vector<std::string>& timing) {
    std::istringstream in(text);
    std::string out;
    for (std::string line; std::getline(in, line);)
        if (std::none_of(timing.begin(), timing.end(), [&](const std::string& t) { return line.find(t) != std::string::npos; }))
            out += line + "\n";
    return out;
}

std::vector<std::string> listing(const fs::path& dir) {
    std::vector<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(dir)) names.push_back(fs::relative(e.path(), dir).string());
    std::sort(names.begin(), names.end());
    return names;
}

/// The lines of `err` that name `file`.
size_t lines_naming(const std::string& err, const std::string& file) {
    std::istringstream in(err);
    size_t n = 0;
    for (std::string line; std::getline(in, line);) n += line.find(file) != std::string::npos;
    return n;
}

/// Four bundled images in a folder of their own, the first four by name.
std::string image_folder(const scratch& s) {
    std::vector<fs::path> images;
    for (auto& e : fs::directory_iterator(std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/images")) images.push_back(e.path());
    std::sort(images.begin(), images.end());
    BOOST_TEST_REQUIRE(images.size() >= 4u);
    const fs::path dir = s.path("images");
    fs::create_directories(dir);
    for (size_t i = 0; i < 4; ++i) fs::copy_file(images[i], dir / images[i].filename());
    return dir.string();
}

/// A held-out split of 8 images of tools/make_shapes_dataset.py, in the scratch folder.
std::string shapes_split(const scratch& s) {
    const std::string root = s.path("shapes");
    const std::string cmd = std::string(env("DEEPINSIDE_PYTHON")) + " " + env("DEEPINSIDE_SOURCE_DIR") +
                            "/tools/make_shapes_dataset.py " + root + " --train 0 --test 8 > " + s.path("generator.log") + " 2>&1";
    BOOST_TEST_REQUIRE(std::system(cmd.c_str()) == 0, "the generator failed: " << slurp(s.path("generator.log")));
    return root;
}

std::string shapes_model() { return std::string(env("DEEPINSIDE_SOURCE_DIR")) + "/models/shapes-convnet.onnx"; }

} // namespace

BOOST_AUTO_TEST_SUITE(mpirun_runs)

BOOST_AUTO_TEST_CASE(verify_gives_the_single_process_certificate) {
    require_mpirun();
    scratch s;
    const std::string args = "verify " + bundled_model() + " " + image_folder(s) + " --directions 2";
    const result one = succeeds(args + " --json " + s.path("a.json"));
    const result two = succeeds(args + " --json " + s.path("b.json"), mpi_prefix);
    const json a = read_json(s.path("a.json")), b = read_json(s.path("b.json"));
    BOOST_TEST(a["images"].size() == 4u);
    // The aggregate ("layers", "end_to_end", "gradient_check") and every image's entry, in order.
    BOOST_TEST(without(a, {"seconds"}).dump(1) == without(b, {"seconds"}).dump(1));
    const std::vector<std::string> timing = {"certificate holds in", "CERTIFICATE FAILS in"};
    BOOST_TEST(untimed_lines(one.out, timing) == untimed_lines(two.out, timing));
    // The JSON is the only file either run writes.
    std::vector<std::string> written;
    for (const auto& name : listing(s.dir))
        if (name.rfind("images", 0) != 0) written.push_back(name);
    BOOST_TEST(written == (std::vector<std::string>{"a.json", "b.json"}), boost::test_tools::per_element());

    // The report's pictures and the golden file need every image's tensors in one process.
    const result refused = run(args + " --report " + s.path("out-report"), mpi_prefix);
    BOOST_TEST(refused.status == 1, "exit status " << refused.status << ": " << refused.err);
    BOOST_TEST(lines_naming(refused.err, "deepinside: error:") == 1u, refused.err);
    BOOST_TEST(refused.err.find("mpirun") != std::string::npos, refused.err);
    BOOST_TEST(!fs::exists(s.path("out-report")));
}

BOOST_AUTO_TEST_CASE(verify_failure_on_the_second_rank_names_the_file) {
    require_mpirun();
    scratch s;
    const std::string folder = image_folder(s);
    const std::string corrupt = folder + "/zz-corrupt.png"; // last by name: the second rank's
    std::ofstream(corrupt, std::ios::binary) << "\x89PNG\r\n\x1a\nnot a png at all";
    const result r = run("verify " + bundled_model() + " " + folder + " --directions 1 --json " + s.path("out.json"), mpi_prefix);
    BOOST_TEST(r.status == 1, "exit status " << r.status << ": " << r.err);
    BOOST_TEST(lines_naming(r.err, "zz-corrupt.png") == 1u, r.err);
    BOOST_TEST(lines_naming(r.err, "rank 1 of 2") == 1u, r.err);
    BOOST_TEST(!fs::exists(s.path("out.json")));
}

BOOST_AUTO_TEST_CASE(evaluate_gives_the_single_process_results) {
    require_mpirun();
    scratch s;
    const std::string split = shapes_split(s);
    // Batches of 2 over 8 images: the first rank takes images 0-3, the second 4-7 (and images 4 and
    // 5 of the randomisation check's 6, and the random order replayed up to image 4).
    const std::string args = "evaluate " + shapes_model() + " " + split +
                             " --batch 2 --method gradient,guided --curve-steps 4 --randomisation-images 6 --per-image";
    const result one = succeeds(args + " --json " + s.path("a.json") + " --report " + s.path("ra"));
    const result two = succeeds(args + " --json " + s.path("b.json") + " --report " + s.path("rb"), mpi_prefix);
    const json a = read_json(s.path("a.json")), b = read_json(s.path("b.json"));
    BOOST_TEST(a["time"]["processes"] == 1);
    BOOST_TEST(b["time"]["processes"] == 2); // really two processes
    BOOST_TEST(a["images"] == 8);
    BOOST_TEST(a["per_image"].size() == 8u);
    BOOST_TEST(a["randomisation"]["stages"].size() > 0u);
    const std::vector<std::string> timing = {"time", "segmentation_ms_per_image"};
    BOOST_TEST(without(a, timing).dump(1) == without(b, timing).dump(1));
    BOOST_TEST(untimed_lines(one.out, {"time:"}) == untimed_lines(two.out, {"time:"}));
    BOOST_TEST(listing(s.path("ra")) == listing(s.path("rb")), boost::test_tools::per_element());

    // A corrupt image of the second half: the second rank fails, one message names it.
    const json labels = read_json(split + "/test/labels.json");
    const std::string bad = labels.at(6).at("file").get<std::string>();
    std::ofstream(split + "/test/" + bad, std::ios::binary | std::ios::trunc) << "not an image";
    const result r = run(args + " --json " + s.path("out.json"), mpi_prefix);
    BOOST_TEST(r.status == 1, "exit status " << r.status << ": " << r.err);
    BOOST_TEST(lines_naming(r.err, fs::path(bad).filename().string()) == 1u, r.err);
    BOOST_TEST(!fs::exists(s.path("out.json")));
}

BOOST_AUTO_TEST_SUITE_END()
