// libFuzzer target: deepinside::read_onnx, including external data.
//
// Input layout: MODEL [SEPARATOR DATA], SEPARATOR = "@@EXTERNAL@@" (its first occurrence splits).
// MODEL is written to model/model.onnx and DATA (empty when there is no separator) to
// model/weights.bin in a private scratch folder, then read_onnx("…/model/model.onnx") runs, so that
// a model naming external data reaches every check of lib/onnx/external_data.cpp with a real file:
//
//   root/model/model.onnx          the model part
//   root/model/weights.bin         the data part
//   root/model/data/weights.bin    hard link to it (a valid location in a subfolder)
//   root/model/link.bin            symbolic link to weights.bin (refused)
//   root/model/linked/             symbolic link to root/outside (refused)
//   root/model/folder.bin/         a folder (refused: not a regular file)
//   root/outside/weights.bin       hard link, reachable only through "linked" (refused)
//   root/weights.bin               hard link, reachable only through ".." (refused)
//
// A refusal (deepinside::error) is the expected outcome for malformed models; a crash, a sanitizer
// report, a leak, another exception type or a huge allocation is a finding.
#include "fuzz_support.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <exception>
#include <string>

namespace {

constexpr std::string_view separator = "@@EXTERNAL@@";

struct model_folder {
    fuzz_support::fs::path model, weights;

    model_folder() {
        namespace fs = fuzz_support::fs;
        const fs::path root = fuzz_support::scratch_folder().root();
        const fs::path dir = root / "model";
        fs::create_directories(dir / "data");
        fs::create_directories(dir / "folder.bin");
        fs::create_directories(root / "outside");
        model = dir / "model.onnx";
        weights = dir / "weights.bin";
        fuzz_support::overwrite(weights, "");
        fs::create_hard_link(weights, dir / "data" / "weights.bin");
        fs::create_hard_link(weights, root / "outside" / "weights.bin");
        fs::create_hard_link(weights, root / "weights.bin");
        fs::create_symlink("weights.bin", dir / "link.bin");
        fs::create_directory_symlink(root / "outside", dir / "linked");
    }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const model_folder folder;
    const std::string_view input = fuzz_support::as_view(data, size);
    const size_t split = input.find(separator);
    fuzz_support::overwrite(folder.model, input.substr(0, split));
    fuzz_support::overwrite(folder.weights, split == std::string_view::npos ? std::string_view()
                                                                            : input.substr(split + separator.size()));
    try {
        const deepinside::graph g = deepinside::read_onnx(folder.model.string());
        // An accepted graph's constants must hold as many values as their shapes say.
        for (const auto& [name, c] : g.constants) {
            const auto count = static_cast<size_t>(deepinside::element_count(c.shape));
            if ((c.is_int ? c.ints.size() : c.floats.size()) != count)
                fuzz_support::die("read_onnx returned a constant whose values disagree with its shape");
        }
    } catch (const deepinside::error&) {
        // refused: expected for malformed models
    } catch (const std::exception& e) {
        std::fprintf(stderr, "read_onnx threw %s\n", e.what());
        fuzz_support::die("exception outside deepinside::error");
    }
    return 0;
}
