#include "io/support.hpp"

#include <deepinside/io.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace deepinside;
using io_test::check_throws;
using io_test::scratch_dir;

namespace {

tensor random_tensor(const shape_t& shape, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 10.0f);
    tensor t(shape);
    for (float& v : t.data) v = dist(rng);
    return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return false;
    return a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// A .npy file assembled by hand from its parts, independent of write_npy. `header` is padded
/// with spaces and a newline to a multiple of 64 bytes like NumPy does.
std::vector<uint8_t> make_npy(int major, std::string header, const std::vector<uint8_t>& body, bool pad = true) {
    const size_t prefix = major == 1 ? 10 : 12;
    if (pad) {
        const size_t total = prefix + header.size() + 1;
        header.append((64 - total % 64) % 64, ' ');
        header.push_back('\n');
    }
    std::vector<uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', static_cast<uint8_t>(major), 0};
    const size_t n = header.size();
    out.push_back(uint8_t(n & 0xff));
    out.push_back(uint8_t((n >> 8) & 0xff));
    if (major != 1) {
        out.push_back(uint8_t((n >> 16) & 0xff));
        out.push_back(uint8_t((n >> 24) & 0xff));
    }
    out.insert(out.end(), header.begin(), header.end());
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::vector<uint8_t> float_bytes(const std::vector<float>& values) {
    std::vector<uint8_t> out;
    for (float v : values) {
        const auto bits = std::bit_cast<uint32_t>(v);
        for (int i = 0; i < 4; ++i) out.push_back(uint8_t(bits >> (8 * i))); // little-endian
    }
    return out;
}

std::string header_for(const std::string& shape, const std::string& descr = "<f4", const std::string& fortran = "False") {
    return "{'descr': '" + descr + "', 'fortran_order': " + fortran + ", 'shape': " + shape + ", }";
}

} // namespace

BOOST_AUTO_TEST_SUITE(npy)

BOOST_AUTO_TEST_CASE(round_trip_ranks_0_to_4) {
    scratch_dir dir;
    const std::vector<shape_t> shapes = {{}, {7}, {3, 5}, {2, 3, 4}, {1, 3, 5, 6}, {2, 0, 3}};
    uint32_t seed = 1;
    for (const shape_t& shape : shapes) {
        tensor src = random_tensor(shape, seed++);
        if (!src.data.empty()) {
            src.data[0] = -0.0f;
            src.data.back() = std::numeric_limits<float>::denorm_min();
        }
        const std::string path = dir.file("t.npy");
        write_npy(path, src);
        const tensor back = read_npy(path);
        BOOST_TEST(back.shape == src.shape);
        BOOST_TEST(same_bits(back.data, src.data), "values differ for shape " << to_string(shape));

        // NumPy's layout: the data starts on a 64-byte boundary and the header ends in '\n'.
        const std::vector<uint8_t> bytes = io_test::read_bytes(path);
        const size_t header_len = bytes[8] | (size_t(bytes[9]) << 8);
        BOOST_TEST((10 + header_len) % 64 == 0u);
        BOOST_TEST(bytes[10 + header_len - 1] == '\n');
        BOOST_TEST(bytes.size() == 10 + header_len + 4 * src.data.size());
    }
    BOOST_TEST(dir.entries() == std::vector<std::string>{"t.npy"}, "no temporary file left behind");
}

BOOST_AUTO_TEST_CASE(non_finite_values_survive) {
    scratch_dir dir;
    tensor src({4}, {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                     -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::max()});
    write_npy(dir.file("n.npy"), src);
    BOOST_TEST(same_bits(read_npy(dir.file("n.npy")).data, src.data));
}

BOOST_AUTO_TEST_CASE(reads_hand_made_versions_and_spellings) {
    scratch_dir dir;
    const std::vector<float> values = {1.5f, -2.0f, 3.25f, 0.0f, 8.0f, -1e-3f};
    const auto body = float_bytes(values);
    struct variant {
        int major;
        std::string header;
    };
    const std::vector<variant> variants = {
        {1, header_for("(2, 3)")},
        {2, header_for("(2, 3)")},
        {3, header_for("(2, 3)")},
        {1, "{\"shape\": (2,3), \"fortran_order\": False, \"descr\": \"<f4\"}"}, // any key order, double quotes
        {1, "{'descr':'<f4','fortran_order':False,'shape':(2,3,)}"},
        {1, " { 'descr' : '<f4' ,\t'fortran_order' : False , 'shape' : ( 2 , 3 ) } "},
    };
    for (const variant& v : variants) {
        io_test::write_bytes(dir.file("v.npy"), make_npy(v.major, v.header, body));
        const tensor t = read_npy(dir.file("v.npy"));
        BOOST_TEST(t.shape == (shape_t{2, 3}), v.header);
        BOOST_TEST(t.data == values, boost::test_tools::per_element());
    }
    // Rank 0 and rank 1.
    io_test::write_bytes(dir.file("s.npy"), make_npy(1, header_for("()"), float_bytes({42.0f})));
    BOOST_TEST(read_npy(dir.file("s.npy")).shape == shape_t{});
    BOOST_TEST(read_npy(dir.file("s.npy")).data == std::vector<float>{42.0f});
    io_test::write_bytes(dir.file("r.npy"), make_npy(1, header_for("(1,)"), float_bytes({7.0f})));
    BOOST_TEST(read_npy(dir.file("r.npy")).shape == shape_t{1});
    // Rank 8 is the limit.
    io_test::write_bytes(dir.file("8.npy"), make_npy(1, header_for("(1, 1, 1, 1, 1, 1, 1, 2)"), float_bytes({1, 2})));
    BOOST_TEST(read_npy(dir.file("8.npy")).shape.size() == 8u);
}

BOOST_AUTO_TEST_CASE(rejects_wrong_dtype_order_and_garbage) {
    scratch_dir dir;
    const auto body6 = float_bytes({1, 2, 3, 4, 5, 6});
    struct bad {
        std::string name;
        std::vector<uint8_t> bytes;
        std::string fragment;
    };
    const std::vector<bad> cases = {
        {"f8.npy", make_npy(1, header_for("(3,)", "<f8"), std::vector<uint8_t>(24)), "'<f8' is not float32"},
        {"i4.npy", make_npy(1, header_for("(6,)", "<i4"), body6), "'<i4' is not float32"},
        {"be.npy", make_npy(1, header_for("(6,)", ">f4"), body6), "big-endian"},
        {"pipe.npy", make_npy(1, header_for("(6,)", "|f4"), body6), "'|f4' is not float32"},
        {"fortran.npy", make_npy(1, header_for("(2, 3)", "<f4", "True"), body6), "fortran_order"},
        {"truncated.npy", make_npy(1, header_for("(7,)"), body6), "needs 28 data bytes, the file holds 24"},
        {"trailing.npy", make_npy(1, header_for("(5,)"), body6), "4 trailing bytes"},
        {"int_shape.npy", make_npy(1, header_for("6"), body6), "expected '('"},
        {"paren.npy", make_npy(1, header_for("(6)"), body6), "(n,)"},
        {"negative.npy", make_npy(1, header_for("(-6,)"), body6), "non-negative"},
        {"float_dim.npy", make_npy(1, header_for("(6.0,)"), body6), "expected ','"},
        {"huge_dim.npy", make_npy(1, header_for("(99999999999999999999,)"), body6), "does not fit in int64"},
        {"unknown_key.npy", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,), 'x': 1}", body6),
         "unexpected key 'x'"},
        {"twice.npy", make_npy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (6,)}", body6),
         "appears twice"},
        {"missing.npy", make_npy(1, "{'descr': '<f4', 'shape': (6,)}", body6), "'fortran_order' is missing"},
        {"eval.npy", make_npy(1, "__import__('os').system('false')", body6), "expected '{'"},
        {"unclosed.npy", make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (6,)", body6), "expected ','"},
        {"after.npy", make_npy(1, header_for("(6,)") + " x", body6), "after the closing"},
        {"lowercase.npy", make_npy(1, header_for("(6,)", "<f4", "false"), body6), "True or False"},
        {"rank9.npy", make_npy(1, header_for("(1, 1, 1, 1, 1, 1, 1, 1, 6)"), body6), "more than 8 dimensions"},
        {"magic.npy", {'N', 'U', 'M', 'P', 'Y', 0, 0, 0, 0, 0, 0, 0}, "not a .npy file"},
        {"short.npy", {0x93, 'N', 'U'}, "not a .npy file"},
        {"version.npy", [] { auto b = make_npy(1, header_for("(0,)"), {}); b[6] = 4; return b; }(), "version 4.0"},
        {"long_header.npy", [] { auto b = make_npy(2, header_for("(0,)"), {}); b[11] = 0x40; return b; }(),
         "above the limit"},
        {"short_header.npy", make_npy(1, header_for("(0,)"), {}, false), ""},
    };
    for (const bad& c : cases) {
        std::vector<uint8_t> bytes = c.bytes;
        if (c.name == "short_header.npy") bytes.resize(bytes.size() - 5); // header cut short
        io_test::write_bytes(dir.file(c.name), bytes);
        BOOST_TEST_CONTEXT(c.name) {
            check_throws<input_error>([&] { read_npy(dir.file(c.name)); }, {dir.file(c.name), c.fragment});
        }
    }
}

BOOST_AUTO_TEST_CASE(overflowing_and_absurd_shapes_do_not_allocate) {
    scratch_dir dir;
    const auto body = float_bytes({1, 2, 3, 4});
    // 2^62 * 4 elements overflow int64; 2^61 * 2 elements fit but their bytes do not fit in a
    // file; 1e11 elements would be 400 GB: any attempt to allocate them fails the test with
    // bad_alloc (or an ASan report) instead of input_error.
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"(4611686018427387904, 4)", "more elements than int64"},
        {"(2305843009213693952, 2)", "more bytes"},
        {"(100000000000,)", "needs 400000000000 data bytes, the file holds 16"},
        {"(9223372036854775807, 9223372036854775807)", "more elements than int64"},
        {"(0, 9223372036854775807)", "trailing bytes"},
    };
    for (const auto& [shape, fragment] : cases) {
        io_test::write_bytes(dir.file("big.npy"), make_npy(1, header_for(shape), body));
        BOOST_TEST_CONTEXT(shape) {
            check_throws<input_error>([&] { read_npy(dir.file("big.npy")); }, {dir.file("big.npy"), fragment});
        }
    }
}

BOOST_AUTO_TEST_CASE(missing_file_and_unwritable_destination) {
    scratch_dir dir;
    check_throws<io_error>([&] { read_npy(dir.file("absent.npy")); }, {dir.file("absent.npy")});
    const std::string nowhere = dir.file("no/such/folder/t.npy");
    check_throws<io_error>([&] { write_npy(nowhere, tensor({2}, {1, 2})); }, {nowhere});
    // A destination that is a folder: the temporary file is written, the rename fails, and the
    // temporary file must be gone.
    std::filesystem::create_directory(dir.file("folder.npy"));
    check_throws<io_error>([&] { write_npy(dir.file("folder.npy"), tensor({2}, {1, 2})); }, {dir.file("folder.npy")});
    BOOST_TEST(dir.entries() == std::vector<std::string>{"folder.npy"});
    // An inconsistent tensor is refused before anything is created.
    tensor bad;
    bad.shape = {3};
    bad.data = {1, 2};
    check_throws<input_error>([&] { write_npy(dir.file("bad.npy"), bad); }, {dir.file("bad.npy")});
    BOOST_TEST(dir.entries() == std::vector<std::string>{"folder.npy"});
}

BOOST_AUTO_TEST_CASE(overwrites_atomically) {
    scratch_dir dir;
    write_npy(dir.file("o.npy"), tensor({3}, {1, 2, 3}));
    write_npy(dir.file("o.npy"), tensor({2}, {4, 5}));
    BOOST_TEST(read_npy(dir.file("o.npy")).data == (std::vector<float>{4, 5}), boost::test_tools::per_element());
    BOOST_TEST(dir.entries() == std::vector<std::string>{"o.npy"});
}

BOOST_AUTO_TEST_CASE(interoperates_with_numpy, *deepinside::test_support::needs_python("numpy")) {
    scratch_dir dir;
    // NumPy writes: versions 1.0, 2.0 and 3.0, several ranks; values i * 0.5 - 3.
    const bool wrote = io_test::run_python(dir, R"(
import numpy as np
from numpy.lib import format as fmt
def arr(shape):
    n = int(np.prod(shape))
    return (np.arange(n, dtype=np.float32) * np.float32(0.5) - np.float32(3)).reshape(shape)
np.save('np_r1.npy', arr((5,)))
np.save('np_r2.npy', arr((3, 4)))
np.save('np_r4.npy', arr((1, 3, 4, 5)))
np.save('np_r0.npy', np.float32(-3))
np.save('np_empty.npy', arr((0, 3)))
for version in [(2, 0), (3, 0)]:
    with open('np_v%d.npy' % version[0], 'wb') as f:
        fmt.write_array(f, arr((2, 3, 4)), version=version)
np.save('np_f8.npy', arr((3,)).astype(np.float64))
np.save('np_i4.npy', np.arange(3, dtype=np.int32))
np.save('np_be.npy', arr((3,)).astype('>f4'))
np.save('np_fortran.npy', np.asfortranarray(arr((3, 4))))
)");
    BOOST_REQUIRE_MESSAGE(wrote, "the NumPy script failed");
    const std::vector<std::pair<std::string, shape_t>> good = {
        {"np_r1.npy", {5}}, {"np_r2.npy", {3, 4}}, {"np_r4.npy", {1, 3, 4, 5}}, {"np_r0.npy", {}},
        {"np_empty.npy", {0, 3}}, {"np_v2.npy", {2, 3, 4}}, {"np_v3.npy", {2, 3, 4}},
    };
    for (const auto& [name, shape] : good) {
        BOOST_TEST_CONTEXT(name) {
            const tensor t = read_npy(dir.file(name));
            BOOST_TEST(t.shape == shape);
            BOOST_REQUIRE_EQUAL(t.data.size(), static_cast<size_t>(element_count(shape)));
            for (size_t i = 0; i < t.data.size(); ++i) BOOST_TEST(t.data[i] == float(i) * 0.5f - 3.0f);
        }
    }
    check_throws<input_error>([&] { read_npy(dir.file("np_f8.npy")); }, {"np_f8.npy", "'<f8'", "astype(np.float32)"});
    check_throws<input_error>([&] { read_npy(dir.file("np_i4.npy")); }, {"np_i4.npy", "'<i4'"});
    check_throws<input_error>([&] { read_npy(dir.file("np_be.npy")); }, {"np_be.npy", "'>f4'"});
    check_throws<input_error>([&] { read_npy(dir.file("np_fortran.npy")); }, {"np_fortran.npy", "fortran_order"});

    // NumPy reads what we write.
    write_npy(dir.file("ours_r3.npy"), tensor({2, 3, 2}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}));
    write_npy(dir.file("ours_r0.npy"), tensor({}, {2.5f}));
    write_npy(dir.file("ours_r1.npy"), tensor({1}, {-1.0f}));
    const bool read_back = io_test::run_python(dir, R"(
import numpy as np, sys
a = np.load('ours_r3.npy')
ok = a.dtype == np.float32 and a.shape == (2, 3, 2) and (a.ravel() == np.arange(12)).all() and a.flags.c_contiguous
b = np.load('ours_r0.npy')
ok = ok and b.shape == () and b == 2.5
c = np.load('ours_r1.npy')
ok = ok and c.shape == (1,) and c[0] == -1.0
sys.exit(0 if ok else 1)
)");
    BOOST_TEST(read_back, "NumPy did not read our files back as written");
}

BOOST_AUTO_TEST_SUITE_END()
