// External data: a valid file inside the model's folder loads; every way out of the folder, every
// malformed offset/length and every size mismatch is refused with a message naming the tensor.
#include "expect_error.hpp"
#include "model_builder.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/onnx_reader.hpp>

#include <boost/test/unit_test.hpp>

#include <map>

using namespace deepinside;
using namespace onnx_test;

namespace {

// 16 bytes of padding, then fc.w's floats, then 8 bytes of padding.
const size_t padding = 16;

struct external_fixture {
    temp_dir dir;
    tiny_weights weights;
    std::string blob;

    external_fixture() {
        blob = std::string(padding, 'p') + le_bytes(weights.fc_w) + std::string(8, 'q');
        dir.write("weights.bin", blob);
    }

    /// The tiny model with fc.w stored externally under `entries` (key -> value).
    onnx::ModelProto model(const std::map<std::string, std::string>& entries) const {
        auto m = tiny_model(weights);
        auto* t = initializer(m, "fc.w");
        t->clear_raw_data();
        t->set_data_location(onnx::TensorProto::EXTERNAL);
        for (const auto& [key, value] : entries) {
            auto* e = t->add_external_data();
            e->set_key(key);
            e->set_value(value);
        }
        return m;
    }

    std::map<std::string, std::string> valid_entries(const std::string& location = "weights.bin") const {
        return {{"location", location},
                {"offset", std::to_string(padding)},
                {"length", std::to_string(weights.fc_w.size() * sizeof(float))}};
    }

    graph load(const std::map<std::string, std::string>& entries, const read_options& options = {}) const {
        return read_onnx(dir.write("model.onnx", model(entries)), options);
    }

    std::string model_path() const { return (dir.path() / "model.onnx").string(); }
};

} // namespace

BOOST_FIXTURE_TEST_SUITE(external_data, external_fixture)

BOOST_AUTO_TEST_CASE(valid_external_data_inside_the_folder_loads) {
    const graph g = load(valid_entries());
    BOOST_TEST(g.constants.at("fc.w").floats == weights.fc_w, boost::test_tools::per_element());
    BOOST_TEST(g.constants.at("fc.w").shape == (shape_t{3, 32}), boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(valid_external_data_in_a_subfolder_loads) {
    dir.write("data/weights.bin", blob);
    const graph g = load(valid_entries("data/weights.bin"));
    BOOST_TEST(g.constants.at("fc.w").floats == weights.fc_w, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(length_defaults_to_the_rest_of_the_file) {
    const std::string exact = le_bytes(weights.fc_w);
    dir.write("exact.bin", exact);
    const graph g = load({{"location", "exact.bin"}});
    BOOST_TEST(g.constants.at("fc.w").floats == weights.fc_w, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(model_given_by_relative_path_finds_its_data) {
    dir.write("model.onnx", model(valid_entries()));
    const auto previous = fs::current_path();
    fs::current_path(dir.path());
    try {
        const graph g = read_onnx("model.onnx");
        BOOST_TEST(g.constants.at("fc.w").floats == weights.fc_w, boost::test_tools::per_element());
    } catch (...) {
        fs::current_path(previous);
        throw;
    }
    fs::current_path(previous);
}

BOOST_AUTO_TEST_CASE(absolute_path_is_refused) {
    auto entries = valid_entries((dir.path() / "weights.bin").string());
    const std::string msg = error_of<model_error>([&] { load(entries); });
    CHECK_HAS(msg, model_path() + ": initializer 'fc.w'");
    CHECK_HAS(msg, "absolute path");
}

BOOST_AUTO_TEST_CASE(parent_folder_components_are_refused) {
    // The data really exists one level up: only the rule stops it.
    const std::string msg = error_of<model_error>([&] {
        dir.write("sub/keep", "x");
        read_onnx(dir.write("sub/model.onnx", model(valid_entries("../weights.bin"))));
    });
    CHECK_HAS(msg, "initializer 'fc.w'");
    CHECK_HAS(msg, "'..'");
    CHECK_HAS(error_of<model_error>([&] { load(valid_entries("data/../weights.bin")); }), "'..'");
}

BOOST_AUTO_TEST_CASE(symlinks_are_refused) {
    fs::create_symlink(dir.path() / "weights.bin", dir.path() / "link.bin");
    std::string msg = error_of<model_error>([&] { load(valid_entries("link.bin")); });
    CHECK_HAS(msg, "initializer 'fc.w'");
    CHECK_HAS(msg, "symbolic link");

    // A linked folder leads out of the model's folder just as well.
    temp_dir outside;
    outside.write("weights.bin", blob);
    fs::create_directory_symlink(outside.path(), dir.path() / "linked");
    msg = error_of<model_error>([&] { load(valid_entries("linked/weights.bin")); });
    CHECK_HAS(msg, "symbolic link");
}

BOOST_AUTO_TEST_CASE(missing_file_and_folders_are_refused) {
    CHECK_HAS(error_of<model_error>([&] { load(valid_entries("absent.bin")); }), "does not exist");
    fs::create_directory(dir.path() / "folder.bin");
    CHECK_HAS(error_of<model_error>([&] { load(valid_entries("folder.bin")); }), "not a regular file");
    CHECK_HAS(error_of<model_error>([&] { load({{"offset", "0"}}); }), "no location");
}

BOOST_AUTO_TEST_CASE(offset_and_length_beyond_the_file_are_refused) {
    auto entries = valid_entries();
    entries["offset"] = std::to_string(blob.size() - 10);
    std::string msg = error_of<model_error>([&] { load(entries); });
    CHECK_HAS(msg, "initializer 'fc.w'");
    CHECK_HAS(msg, "runs past the end");

    entries["offset"] = std::to_string(blob.size() + 1);
    CHECK_HAS(error_of<model_error>([&] { load(entries); }), "beyond the end");
}

BOOST_AUTO_TEST_CASE(offset_overflow_is_refused) {
    auto entries = valid_entries();
    entries["offset"] = "18446744073709551615"; // offset + length wraps around in 64 bits
    CHECK_HAS(error_of<model_error>([&] { load(entries); }), "beyond the end");

    entries = valid_entries();
    entries["offset"] = "8";
    entries["length"] = "18446744073709551615";
    CHECK_HAS(error_of<model_error>([&] { load(entries); }), "runs past the end");

    entries["offset"] = "99999999999999999999999";
    CHECK_HAS(error_of<model_error>([&] { load(entries); }), "does not fit in 64 bits");
}

BOOST_AUTO_TEST_CASE(non_digit_offsets_and_lengths_are_refused) {
    for (const std::string bad : {"12a", "-1", " 16", "+16", "0x10", "1e3", ""}) {
        auto entries = valid_entries();
        entries["offset"] = bad;
        const std::string msg = error_of<model_error>([&] { load(entries); });
        CHECK_HAS(msg, "initializer 'fc.w'");
        CHECK_HAS(msg, "offset '" + bad + "' is not a non-negative decimal integer");
    }
    auto entries = valid_entries();
    entries["length"] = "384 ";
    CHECK_HAS(error_of<model_error>([&] { load(entries); }), "length '384 '");
}

BOOST_AUTO_TEST_CASE(length_must_match_the_shape) {
    auto entries = valid_entries();
    entries["length"] = "380";
    const std::string msg = error_of<model_error>([&] { load(entries); });
    CHECK_HAS(msg, "initializer 'fc.w': external data length is 380 bytes, shape [3, 32] of float needs 384");
}

BOOST_AUTO_TEST_CASE(bytes_without_a_folder_refuse_external_data) {
    const std::string msg = error_of<model_error>([&] {
        read_onnx_bytes(serialize(model(valid_entries())), "in-memory", "");
    });
    CHECK_HAS(msg, "in-memory: initializer 'fc.w'");
    CHECK_HAS(msg, "external");

    // With a folder it works.
    const graph g = read_onnx_bytes(serialize(model(valid_entries())), "in-memory", dir.path().string());
    BOOST_TEST(g.constants.at("fc.w").floats == weights.fc_w, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(options_can_forbid_external_data) {
    read_options options;
    options.allow_external_data = false;
    CHECK_HAS(error_of<model_error>([&] { load(valid_entries(), options); }), "forbid");
}

BOOST_AUTO_TEST_CASE(external_data_with_inline_data_is_refused) {
    auto m = model(valid_entries());
    initializer(m, "fc.w")->set_raw_data(le_bytes(weights.fc_w));
    CHECK_HAS(error_of<model_error>([&] { read_onnx(dir.write("model.onnx", m)); }), "also holds inline data");
}

BOOST_AUTO_TEST_SUITE_END()
