// The demo page as a reader meets it: opened in headless Chromium (Debian's chromium), every image on it
// and on the reports it links to must load, and the evaluation table must be there. Checked on the
// page committed in reports/demo/ and on one written afresh by tools/demo.py (smaller evaluation), so
// that a change which breaks the generator fails here and not only when someone looks.
#include "support/environment.hpp"
#include "support/requirements.hpp"
#include "support/scratch_dir.hpp"

#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using deepinside::test_support::env;
using json = nlohmann::json;

namespace {

const char* chromium = "/usr/bin/chromium";

/// A fresh folder for one case's files, removed afterwards.
struct scratch : deepinside::test_support::scratch_dir {
    scratch() : scratch_dir("deepinside-demo") {}
    const fs::path& dir = path();
};

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

int shell(const std::string& cmd) {
    const int raw = std::system(cmd.c_str());
    return WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
}

/// What Chromium saw on one page: its images, those that did not load, its tables and the ids of
/// its tables' classes.
struct page_view {
    int images = 0, tables = 0;
    std::vector<std::string> broken;
    std::vector<std::string> table_classes;
    std::vector<std::string> links;
};

/// Opens each page in an iframe of a harness page (file URLs are one origin under
/// --allow-file-access-from-files) and reads, after the page's load event, which images have
/// loaded (complete with a natural width) and which tables it holds. The result comes back through
/// --dump-dom as JSON in the harness's <pre>.
std::vector<page_view> open_in_chromium(const std::vector<fs::path>& pages, const fs::path& work) {
    json urls = json::array();
    for (const auto& p : pages) urls.push_back("file://" + fs::absolute(p).string());
    const fs::path harness = work / "harness.html";
    std::ofstream(harness) << R"(<!doctype html><html><body><pre id="result">pending</pre><iframe id="f"></iframe><script>
const pages = )" << urls.dump() << R"(;
const views = [];
const frame = document.getElementById('f');
function next(i) {
  if (i === pages.length) { document.getElementById('result').textContent = JSON.stringify(views); return; }
  frame.onload = () => {
    const d = frame.contentDocument;
    const imgs = [...d.images];
    views.push({images: imgs.length,
                broken: imgs.filter(x => !(x.complete && x.naturalWidth > 0)).map(x => x.getAttribute('src')),
                tables: d.querySelectorAll('table').length,
                table_classes: [...d.querySelectorAll('table')].map(t => t.className),
                links: [...d.querySelectorAll('a[href]')].map(a => a.getAttribute('href'))});
    next(i + 1);
  };
  frame.src = pages[i];
}
next(0);
</script></body></html>)";
    const fs::path dom = work / "dom.html";
    const std::string cmd = std::string(chromium) +
                            " --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --allow-file-access-from-files --virtual-time-budget=30000"
                            " --user-data-dir=" + (work / "profile").string() + " --dump-dom file://" + harness.string() + " > " +
                            dom.string() + " 2> " + (work / "chromium.log").string();
    BOOST_REQUIRE_MESSAGE(shell("timeout 180 " + cmd) == 0, "chromium failed: " + slurp(work / "chromium.log"));
    const std::string text = slurp(dom);
    std::smatch m;
    BOOST_REQUIRE_MESSAGE(std::regex_search(text, m, std::regex(R"(<pre id="result">([^<]*)</pre>)")),
                          "no result in Chromium's DOM: " + text.substr(0, 500));
    BOOST_REQUIRE_MESSAGE(m[1].str() != "pending", "Chromium did not finish loading the pages");
    std::string payload = std::regex_replace(m[1].str(), std::regex("&quot;"), "\"");
    payload = std::regex_replace(payload, std::regex("&amp;"), "&");
    std::vector<page_view> out;
    for (const auto& v : json::parse(payload)) {
        page_view p;
        p.images = v["images"].get<int>();
        p.tables = v["tables"].get<int>();
        p.broken = v["broken"].get<std::vector<std::string>>();
        p.table_classes = v["table_classes"].get<std::vector<std::string>>();
        p.links = v["links"].get<std::vector<std::string>>();
        out.push_back(std::move(p));
    }
    BOOST_REQUIRE_EQUAL(out.size(), pages.size());
    return out;
}

/// The demo's index.html and the reports it links to: everything loads, the evaluation table is there.
void check_demo(const fs::path& demo, const fs::path& work) {
    const fs::path index = demo / "index.html";
    BOOST_REQUIRE_MESSAGE(fs::exists(index), index.string() + " is absent");
    std::vector<fs::path> pages{index};
    const auto first = open_in_chromium(pages, work);
    // Every local page the index links to (the verifier's certificates, the evaluation report).
    for (const auto& link : first[0].links)
        if (link.find("://") == std::string::npos && link.rfind('#', 0) != 0 && link.size() > 5 &&
            link.substr(link.size() - 5) == ".html")
            pages.push_back(demo / link);
    BOOST_TEST(pages.size() >= 4u, "the index links to both certificates and the evaluation report");
    const auto views = open_in_chromium(pages, work);
    for (size_t i = 0; i < pages.size(); ++i) {
        BOOST_TEST_CONTEXT(pages[i].string()) {
            BOOST_TEST(views[i].broken.empty(), views[i].broken.size() << " images did not load, the first: "
                                                                      << (views[i].broken.empty() ? "" : views[i].broken[0]));
            BOOST_TEST(views[i].tables >= 1);
        }
    }
    // The index: class model grids and tiles of both models, three maps per sample image, the segmentations.
    BOOST_TEST(views[0].images >= 40);
    BOOST_TEST(std::count(views[0].table_classes.begin(), views[0].table_classes.end(), "evaluation") == 1);
    const std::string text = slurp(index);
    for (const char* needle : {"class-model/class-0.0.png", "class-model/class-1.0.png", "gradient", "deconvnet", "guided", "seeds", "verify/index.html",
                               "evaluation/index.html"})
        BOOST_TEST(text.find(needle) != std::string::npos, "index.html mentions " << needle);
}

boost::unit_test::precondition needs_chromium() {
    return deepinside::test_support::needs_file(chromium, "chromium");
}

} // namespace

BOOST_AUTO_TEST_SUITE(demo_page)

BOOST_AUTO_TEST_CASE(the_committed_demo_loads_in_chromium, *needs_chromium()) {
    scratch work;
    check_demo(fs::path(env("DEEPINSIDE_SOURCE_DIR")) / "reports" / "demo", work.dir);
}

BOOST_AUTO_TEST_CASE(a_fresh_demo_loads_in_chromium, *needs_chromium()) {
    scratch work;
    const fs::path out = work.dir / "demo";
    const std::string cmd = std::string(env("DEEPINSIDE_PYTHON")) + " " + env("DEEPINSIDE_SOURCE_DIR") + "/tools/demo.py " +
                            out.string() + " --bin " + env("DEEPINSIDE_BIN") + " --dataset " + (work.dir / "shapes").string() +
                            " --eval-limit 48 --randomisation-images 16 > " + (work.dir / "demo.log").string() + " 2>&1";
    BOOST_REQUIRE_MESSAGE(shell(cmd) == 0, "tools/demo.py failed:\n" + slurp(work.dir / "demo.log"));
    check_demo(out, work.dir);
    // The evaluation it ran is the one the page says: 48 images, every method, the baselines.
    const json s = json::parse(slurp(out / "shapes" / "evaluation" / "evaluation.json"));
    BOOST_TEST(s["schema"] == "deepinside.evaluate/1");
    BOOST_TEST(s["images"] == 48);
    for (const char* m : {"gradient", "deconvnet", "guided"}) BOOST_TEST(s["methods"].contains(m), m);
}

BOOST_AUTO_TEST_SUITE_END()
