#include "golden.hpp"

// The atomic writer and the bounded reader of the library's io (one implementation of "temporary
// file, fsync, rename" in the project); deepinside_verify links deepinside_lib.
#include "../lib/io/files.hpp"

#include <deepinside/errors.hpp>
#include <deepinside/rules.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <limits>
#include <map>
#include <utility>

namespace deepinside::verify {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// base64

namespace golden_detail {

namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int8_t, 256> decoding_table() {
    std::array<int8_t, 256> t{};
    for (auto& v : t) v = -1;
    for (int i = 0; i < 64; ++i) t[static_cast<unsigned char>(alphabet[i])] = static_cast<int8_t>(i);
    return t;
}

constexpr std::array<int8_t, 256> decoding = decoding_table();

std::string describe_char(unsigned char c) {
    if (c >= 0x21 && c < 0x7f) return fmt::format("'{}'", static_cast<char>(c));
    return fmt::format("byte 0x{:02x}", c);
}

} // namespace

std::string base64_encode(const uint8_t* data, size_t size) {
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | uint32_t(data[i + 2]);
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        out += alphabet[v & 63];
    }
    if (size - i == 1) {
        const uint32_t v = uint32_t(data[i]) << 16;
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += "==";
    } else if (size - i == 2) {
        const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8;
        out += alphabet[v >> 18 & 63];
        out += alphabet[v >> 12 & 63];
        out += alphabet[v >> 6 & 63];
        out += '=';
    }
    return out;
}

std::vector<uint8_t> base64_decode(const std::string& text) {
    const size_t n = text.size();
    if (n % 4 != 0)
        throw model_error(fmt::format("base64 text of {} characters: the length is not a multiple of 4", n));
    size_t padding = 0;
    if (n >= 1 && text[n - 1] == '=') ++padding;
    if (n >= 2 && text[n - 2] == '=') ++padding;
    std::vector<uint8_t> out;
    out.reserve(n / 4 * 3);
    uint32_t sextets[4];
    for (size_t group = 0; group < n; group += 4) {
        const bool last = group + 4 == n;
        const size_t valid = last ? 4 - padding : 4;
        for (size_t k = 0; k < valid; ++k) {
            const auto c = static_cast<unsigned char>(text[group + k]);
            const int8_t v = decoding[c];
            if (v < 0)
                throw model_error(fmt::format("bad base64: {} at position {}{}", describe_char(c), group + k,
                                              c == '=' ? " (padding is allowed only at the end)" : ""));
            sextets[k] = static_cast<uint32_t>(v);
        }
        for (size_t k = valid; k < 4; ++k) sextets[k] = 0;
        const uint32_t v = sextets[0] << 18 | sextets[1] << 12 | sextets[2] << 6 | sextets[3];
        out.push_back(static_cast<uint8_t>(v >> 16));
        if (valid >= 3) out.push_back(static_cast<uint8_t>(v >> 8 & 0xff));
        if (valid == 4) out.push_back(static_cast<uint8_t>(v & 0xff));
        // Canonical encoding only: the bits below the last whole byte must be zero.
        if ((valid == 2 && (v & 0xffff) != 0) || (valid == 3 && (v & 0xff) != 0))
            throw model_error(fmt::format("bad base64: the padded last group at position {} has nonzero unused bits",
                                          group));
    }
    return out;
}

} // namespace golden_detail

namespace {

// ---------------------------------------------------------------------------------------------
// small helpers

/// The string as it comes back from a JSON file: invalid UTF-8 replaced by U+FFFD (the writer does
/// the same), so that a name read back compares equal to the name certified now.
std::string as_written(const std::string& s) {
    const bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
    if (ascii) return s;
    return json::parse(json(s).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
}

json number_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

std::optional<int64_t> class_of(const image_certificate& c) {
    if (c.what.what == target::kind::class_score && !c.what.index.empty()) return c.what.index.front();
    return std::nullopt;
}

std::string iso_now() {
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string encode_floats(const float* values, size_t count) {
    std::vector<uint8_t> bytes(count * 4);
    for (size_t i = 0; i < count; ++i) {
        uint32_t u;
        std::memcpy(&u, &values[i], 4);
        bytes[4 * i] = static_cast<uint8_t>(u & 0xff);
        bytes[4 * i + 1] = static_cast<uint8_t>(u >> 8 & 0xff);
        bytes[4 * i + 2] = static_cast<uint8_t>(u >> 16 & 0xff);
        bytes[4 * i + 3] = static_cast<uint8_t>(u >> 24 & 0xff);
    }
    return golden_detail::base64_encode(bytes.data(), bytes.size());
}

json tensor_json(const shape_t& shape, const std::vector<float>& data, const std::string& image, const char* what) {
    if (element_count(shape) != static_cast<int64_t>(data.size()))
        throw input_error(fmt::format("{}: the {} holds {} values, its shape {} needs {}", image, what, data.size(),
                                      to_string(shape), element_count(shape)));
    json j = json::object();
    j["shape"] = shape;
    j["dtype"] = "float32";
    j["data"] = encode_floats(data.data(), data.size());
    return j;
}

bool same_bits(float a, float b) {
    uint32_t x, y;
    std::memcpy(&x, &a, 4);
    std::memcpy(&y, &b, 4);
    return x == y;
}

/// |a - b|, 0 for equal bits, infinity when one is NaN.
double abs_change(float a, float b) {
    if (same_bits(a, b)) return 0;
    const double d = std::fabs(double(a) - double(b));
    return std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
}

/// "(c,y,x)": the index of C-order position `flat`, without a leading batch dimension of 1.
std::string position(const shape_t& shape, int64_t flat) {
    std::vector<int64_t> index(shape.size(), 0);
    for (size_t d = shape.size(); d-- > 0;) {
        if (shape[d] > 0) {
            index[d] = flat % shape[d];
            flat /= shape[d];
        }
    }
    const size_t first = shape.size() > 1 && shape[0] == 1 ? 1 : 0;
    std::string s = "(";
    for (size_t d = first; d < index.size(); ++d) {
        if (d > first) s += ',';
        s += std::to_string(index[d]);
    }
    return s + ")";
}

std::string num(double v) { return fmt::format("{:.3g}", v); }
std::string value(double v) { return fmt::format("{:.9g}", v); }

// ---------------------------------------------------------------------------------------------
// reading

class reader {
public:
    explicit reader(const std::string& path) : path_(path) {}

    [[noreturn]] void fail(const std::string& where, const std::string& what) const {
        throw model_error(fmt::format("{}: not a valid golden file ({}): {}: {}", path_, golden_schema, where, what));
    }

    const json& member(const json& obj, const char* key, const std::string& where) const {
        const auto it = obj.find(key);
        if (it == obj.end()) fail(where, fmt::format("no \"{}\" member", key));
        return *it;
    }

    std::string string(const json& obj, const char* key, const std::string& where) const {
        const json& v = member(obj, key, where);
        if (!v.is_string()) fail(where + "." + key, fmt::format("expected a string, found {}", v.type_name()));
        return v.get<std::string>();
    }

    std::string optional_string(const json& obj, const char* key, const std::string& where) const {
        return obj.contains(key) ? string(obj, key, where) : std::string();
    }

    int64_t integer(const json& v, const std::string& where) const {
        if (v.is_number_unsigned()) {
            if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
                fail(where, "integer out of range");
            return static_cast<int64_t>(v.get<uint64_t>());
        }
        if (!v.is_number_integer()) fail(where, fmt::format("expected an integer, found {}", v.type_name()));
        return v.get<int64_t>();
    }

    /// A number; null (how the writer stores a value that is not finite) reads as NaN.
    double number(const json& obj, const char* key, const std::string& where) const {
        const json& v = member(obj, key, where);
        if (v.is_null()) return std::numeric_limits<double>::quiet_NaN();
        if (!v.is_number()) fail(where + "." + key, fmt::format("expected a number, found {}", v.type_name()));
        return v.get<double>();
    }

    bool boolean(const json& obj, const char* key, const std::string& where) const {
        const json& v = member(obj, key, where);
        if (!v.is_boolean()) fail(where + "." + key, fmt::format("expected true or false, found {}", v.type_name()));
        return v.get<bool>();
    }

    shape_t shape(const json& v, const std::string& where) const {
        if (!v.is_array()) fail(where, fmt::format("expected an array of dimensions, found {}", v.type_name()));
        shape_t s;
        for (size_t i = 0; i < v.size(); ++i) {
            const int64_t d = integer(v[i], fmt::format("{}[{}]", where, i));
            if (d < 0) fail(where, fmt::format("negative dimension {}", d));
            s.push_back(d);
        }
        try {
            element_count(s);
        } catch (const error&) {
            fail(where, fmt::format("the shape {} has too many elements", to_string(s)));
        }
        return s;
    }

    tensor float_tensor(const json& obj, const char* key, const std::string& image_where) const {
        const std::string where = image_where + "." + key;
        const json& t = member(obj, key, image_where);
        if (!t.is_object()) fail(where, fmt::format("expected an object, found {}", t.type_name()));
        const shape_t s = shape(member(t, "shape", where), where + ".shape");
        const std::string dtype = string(t, "dtype", where);
        if (dtype != "float32") fail(where + ".dtype", fmt::format("\"{}\" is not \"float32\"", dtype));
        const std::string text = string(t, "data", where);
        std::vector<uint8_t> bytes;
        try {
            bytes = golden_detail::base64_decode(text);
        } catch (const model_error& e) {
            fail(where + ".data", e.what());
        }
        const int64_t count = element_count(s);
        if (static_cast<int64_t>(bytes.size()) != 4 * count)
            fail(where + ".data", fmt::format("holds {} bytes, the shape {} needs {} (float32)", bytes.size(),
                                              to_string(s), 4 * count));
        std::vector<float> values(static_cast<size_t>(count));
        for (size_t i = 0; i < values.size(); ++i) {
            const uint32_t u = uint32_t(bytes[4 * i]) | uint32_t(bytes[4 * i + 1]) << 8 |
                               uint32_t(bytes[4 * i + 2]) << 16 | uint32_t(bytes[4 * i + 3]) << 24;
            std::memcpy(&values[i], &u, 4);
        }
        return tensor(s, std::move(values));
    }

    golden_layer layer(const json& l, const std::string& where) const {
        if (!l.is_object()) fail(where, fmt::format("expected an object, found {}", l.type_name()));
        golden_layer g;
        g.name = string(l, "name", where);
        g.op = string(l, "op", where);
        g.relation = string(l, "relation", where);
        g.ok = boolean(l, "ok", where);
        g.max_rel_diff = number(l, "max_rel_diff", where);
        g.differing_fraction = number(l, "differing_fraction", where);
        g.tied_windows = integer(member(l, "tied_windows", where), where + ".tied_windows");
        if (g.tied_windows < 0) fail(where + ".tied_windows", "negative");
        return g;
    }

    golden_image image(const json& im, const std::string& where) const {
        if (!im.is_object()) fail(where, fmt::format("expected an object, found {}", im.type_name()));
        golden_image g;
        g.image = string(im, "image", where);
        g.input_shape = shape(member(im, "input_shape", where), where + ".input_shape");
        g.target = string(im, "target", where);
        const json& cls = member(im, "class", where);
        if (!cls.is_null()) g.class_index = integer(cls, where + ".class");
        g.scores = float_tensor(im, "scores", where);
        g.gradient = float_tensor(im, "gradient", where);
        g.deconvnet = float_tensor(im, "deconvnet", where);
        g.guided = float_tensor(im, "guided", where);
        const json& layers = member(im, "layers", where);
        if (!layers.is_array()) fail(where + ".layers", fmt::format("expected an array, found {}", layers.type_name()));
        for (size_t i = 0; i < layers.size(); ++i) g.layers.push_back(layer(layers[i], fmt::format("{}.layers[{}]", where, i)));
        return g;
    }

    golden_file file() const {
        // Golden files hold three float32 signals per image in base64 (4/3 of their size): a few MB per
        // ImageNet image. The limit only guards against reading something that cannot be one.
        const std::vector<uint8_t> bytes = io_detail::read_file_bytes(path_, int64_t(8) << 30);
        json root;
        try {
            root = json::parse(bytes.begin(), bytes.end());
        } catch (const json::exception& e) {
            throw model_error(fmt::format("{}: not a golden file: invalid JSON: {}", path_, e.what()));
        }
        if (!root.is_object())
            throw model_error(fmt::format("{}: not a golden file: the top level is {}, not an object", path_, root.type_name()));
        const auto schema = root.find("schema");
        if (schema == root.end() || !schema->is_string())
            throw model_error(fmt::format("{}: not a golden file: no \"schema\" string (expected \"{}\")", path_, golden_schema));
        golden_file g;
        g.schema = schema->get<std::string>();
        if (g.schema != golden_schema)
            throw model_error(fmt::format("{}: golden file of schema \"{}\"; this deepinside reads \"{}\" (rewrite it with --update)",
                                          path_, g.schema, golden_schema));
        g.model = optional_string(root, "model", "top level");
        g.created = optional_string(root, "created", "top level");
        const json& images = member(root, "images", "top level");
        if (!images.is_array()) fail("images", fmt::format("expected an array, found {}", images.type_name()));
        for (size_t i = 0; i < images.size(); ++i) g.images.push_back(image(images[i], fmt::format("images[{}]", i)));
        return g;
    }

private:
    const std::string& path_;
};

// ---------------------------------------------------------------------------------------------
// comparing

class comparer {
public:
    comparer(const golden_tolerances& tol, std::vector<golden_difference>& moved) : tol_(tol), moved_(moved) {}

    void image(size_t position, const golden_image& g, const image_certificate& c) {
        image_ = g.image;
        const std::string name = as_written(c.image);
        if (g.image != name) {
            add("image-name", "", 0, 0, 0, 0,
                fmt::format("image {} is \"{}\" in the golden file but \"{}\" now; not compared further", position + 1,
                            g.image, name));
            return;
        }
        if (g.input_shape != c.input.shape) {
            add("input-shape", "", 0, 0, 0, 0,
                fmt::format("input shape {} in the golden file, {} now; not compared further", to_string(g.input_shape),
                            to_string(c.input.shape)));
            return;
        }
        const std::optional<int64_t> cls = class_of(c);
        const auto class_text = [](const std::optional<int64_t>& k) { return k ? std::to_string(*k) : std::string("none"); };
        const auto class_value = [](const std::optional<int64_t>& k) {
            return k ? double(*k) : std::numeric_limits<double>::quiet_NaN();
        };
        if (g.class_index != cls)
            add("class", "", class_value(g.class_index), class_value(cls), 0, 0,
                fmt::format("target class {} -> {}", class_text(g.class_index), class_text(cls)));
        else if (g.target != as_written(c.target_text))
            add("target", "", 0, 0, 0, 0, fmt::format("target \"{}\" -> \"{}\"", g.target, as_written(c.target_text)));

        scores(g.scores, c.scores);
        signal("gradient", g.gradient, c.gradient);
        signal("deconvnet", g.deconvnet, c.deconvnet);
        signal("guided", g.guided, c.guided);
        layers(g.layers, c.layers);
    }

private:
    void add(const char* what, std::string where, double golden, double now, double change, double tolerance,
             std::string detail) {
        moved_.push_back({image_, what, std::move(where), golden, now, change, tolerance, std::move(detail)});
    }

    void scores(const tensor& g, const std::vector<float>& now) {
        if (static_cast<size_t>(g.size()) != now.size()) {
            add("scores", "", 0, 0, 0, 0,
                fmt::format("scores: shape {} in the golden file, {} now", to_string(g.shape),
                            to_string(shape_t{static_cast<int64_t>(now.size())})));
            return;
        }
        double largest = 0, scale = 0;
        size_t at = 0;
        for (size_t i = 0; i < now.size(); ++i) {
            scale = std::max(scale, std::fabs(double(g.data[i])));
            const double d = abs_change(now[i], g.data[i]);
            if (d > largest) {
                largest = d;
                at = i;
            }
        }
        const double rel = largest == 0 ? 0 : scale == 0 ? std::numeric_limits<double>::infinity() : largest / scale;
        if (!(rel <= tol_.logits))
            add("scores", fmt::format("class {}", at), g.data[at], now[at], rel, tol_.logits,
                fmt::format("scores: max relative difference {} > {} (largest change at class {}: {} -> {})", num(rel),
                            num(tol_.logits), at, value(g.data[at]), value(now[at])));
    }

    void signal(const char* name, const tensor& g, const tensor& now) {
        if (g.shape != now.shape || g.data.size() != now.data.size()) {
            add(name, "", 0, 0, 0, 0,
                fmt::format("{}: shape {} in the golden file, {} now", name, to_string(g.shape), to_string(now.shape)));
            return;
        }
        double d2 = 0, b2 = 0, largest = 0;
        size_t at = 0;
        for (size_t i = 0; i < now.data.size(); ++i) {
            const double b = g.data[i];
            b2 += b * b;
            const double d = abs_change(now.data[i], g.data[i]);
            d2 += d * d;
            if (d > largest) {
                largest = d;
                at = i;
            }
        }
        const double rel = d2 == 0 ? 0 : b2 == 0 ? std::numeric_limits<double>::infinity() : std::sqrt(d2) / std::sqrt(b2);
        if (!(rel <= tol_.signals)) {
            const std::string where = position(g.shape, static_cast<int64_t>(at));
            add(name, where, g.data[at], now.data[at], rel, tol_.signals,
                fmt::format("{}: relative L2 {} > {} (largest change at {}: {} -> {})", name, num(rel),
                            num(tol_.signals), where, value(g.data[at]), value(now.data[at])));
        }
    }

    static std::string layer_where(const std::string& name, const std::string& op, size_t position) {
        return fmt::format("{} ({})", name.empty() ? fmt::format("#{}", position + 1) : name, op);
    }

    void layers(const std::vector<golden_layer>& golden, const std::vector<layer_result>& now) {
        // The k-th layer of a name matches the k-th layer of that name.
        std::map<std::pair<std::string, int>, size_t> index_now;
        std::map<std::string, int> seen;
        std::vector<std::string> names_now(now.size());
        for (size_t i = 0; i < now.size(); ++i) {
            names_now[i] = as_written(now[i].name);
            index_now[{names_now[i], seen[names_now[i]]++}] = i;
        }
        std::vector<bool> matched(now.size(), false);
        seen.clear();
        for (size_t i = 0; i < golden.size(); ++i) {
            const golden_layer& g = golden[i];
            const std::string where = layer_where(g.name, g.op, i);
            const auto it = index_now.find({g.name, seen[g.name]++});
            if (it == index_now.end()) {
                add("layer-missing", where, 0, 0, 0, 0, fmt::format("layer {}: in the golden file, missing now", where));
                continue;
            }
            matched[it->second] = true;
            layer(where, g, now[it->second]);
        }
        for (size_t i = 0; i < now.size(); ++i)
            if (!matched[i]) {
                const std::string where = layer_where(names_now[i], as_written(now[i].op), i);
                add("layer-added", where, 0, 0, 0, 0, fmt::format("layer {}: added, not in the golden file", where));
            }
    }

    void layer(const std::string& where, const golden_layer& g, const layer_result& c) {
        const std::string op = as_written(c.op);
        if (g.op != op) {
            add("op", where, 0, 0, 0, 0, fmt::format("layer {}: op {} -> {}; not compared further", where, g.op, op));
            return;
        }
        const std::string relation = as_written(c.relation);
        if (g.relation != relation)
            add("relation", where, 0, 0, 0, 0, fmt::format("layer {}: relation {} -> {}", where, g.relation, relation));
        if (g.ok != c.ok)
            add("ok", where, g.ok ? 1 : 0, c.ok ? 1 : 0, 0, 0,
                fmt::format("layer {}: ok {} -> {}", where, g.ok ? "true" : "false", c.ok ? "true" : "false"));

        const rules::op_rules* row = rules::find(op);
        const rules::deconvnet_layer kind = row ? row->layer : rules::deconvnet_layer::none;
        if (kind == rules::deconvnet_layer::rectification) {
            const double change = std::fabs(c.differing_fraction - g.differing_fraction);
            if (!(change <= tol_.fraction))
                add("differing-fraction", where, g.differing_fraction, c.differing_fraction, change, tol_.fraction,
                    fmt::format("layer {}: differing fraction {} -> {} (moved {} > {})", where, value(g.differing_fraction),
                                value(c.differing_fraction), num(change), num(tol_.fraction)));
        }
        if (rules::expected_relation(kind) == rules::expectation::identical) {
            const double bound = std::isnan(g.max_rel_diff) ? tol_.layer_rel : std::max(g.max_rel_diff, tol_.layer_rel);
            if (!(c.max_rel_diff <= bound))
                add("max-rel-diff", where, g.max_rel_diff, c.max_rel_diff, c.max_rel_diff, bound,
                    fmt::format("layer {}: max relative difference {} > max(golden {}, {})", where, num(c.max_rel_diff),
                                num(g.max_rel_diff), num(tol_.layer_rel)));
        }
        if (g.tied_windows != c.tied_windows)
            add("tied-windows", where, double(g.tied_windows), double(c.tied_windows), 0, 0,
                fmt::format("layer {}: tied max-pooling windows {} -> {}", where, g.tied_windows, c.tied_windows));
    }

    const golden_tolerances& tol_;
    std::vector<golden_difference>& moved_;
    std::string image_;
};

} // namespace

// ---------------------------------------------------------------------------------------------
// public API

golden_tolerances parse_golden_tolerances(const std::string& text) {
    golden_tolerances tol;
    const auto trim = [](std::string s) {
        const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
        while (!s.empty() && space(s.back())) s.pop_back();
        size_t b = 0;
        while (b < s.size() && space(s[b])) ++b;
        return s.substr(b);
    };
    if (trim(text).empty()) return tol;
    const auto bad = [&](const std::string& why) {
        return input_error(fmt::format("--golden-tolerance \"{}\": {} (expected KEY=VALUE,... with keys logits, "
                                       "signals, fraction, layer_rel)",
                                       text, why));
    };
    std::vector<std::string> done;
    size_t start = 0;
    while (start <= text.size()) {
        size_t end = text.find(',', start);
        if (end == std::string::npos) end = text.size();
        const std::string item = trim(text.substr(start, end - start));
        start = end + 1;
        if (item.empty()) throw bad("empty item");
        const size_t eq = item.find('=');
        if (eq == std::string::npos) throw bad(fmt::format("\"{}\" has no '='", item));
        std::string key = trim(item.substr(0, eq));
        const std::string number = trim(item.substr(eq + 1));
        if (key == "layer-rel") key = "layer_rel";
        double* slot = key == "logits"      ? &tol.logits
                       : key == "signals"   ? &tol.signals
                       : key == "fraction"  ? &tol.fraction
                       : key == "layer_rel" ? &tol.layer_rel
                                            : nullptr;
        if (!slot) throw bad(fmt::format("unknown key \"{}\"", key));
        if (std::find(done.begin(), done.end(), key) != done.end()) throw bad(fmt::format("\"{}\" given twice", key));
        done.push_back(key);
        double v = 0;
        const char* first = number.data();
        const char* last = number.data() + number.size();
        const auto [ptr, ec] = std::from_chars(first, last, v);
        if (number.empty() || ec != std::errc() || ptr != last || !std::isfinite(v) || v < 0)
            throw bad(fmt::format("{}: \"{}\" is not a finite number >= 0", key, number));
        *slot = v;
    }
    return tol;
}

void write_golden(const std::string& path, const std::string& model, const std::vector<image_certificate>& images) {
    json root = json::object();
    root["schema"] = golden_schema;
    root["model"] = model;
    root["created"] = iso_now();
    json list = json::array();
    for (const image_certificate& c : images) {
        json im = json::object();
        im["image"] = c.image;
        im["input_shape"] = c.input.shape;
        im["target"] = c.target_text;
        const std::optional<int64_t> cls = class_of(c);
        im["class"] = cls ? json(*cls) : json(nullptr);
        im["scores"] = tensor_json(shape_t{static_cast<int64_t>(c.scores.size())}, c.scores, c.image, "scores");
        im["gradient"] = tensor_json(c.gradient.shape, c.gradient.data, c.image, "gradient");
        im["deconvnet"] = tensor_json(c.deconvnet.shape, c.deconvnet.data, c.image, "deconvnet");
        im["guided"] = tensor_json(c.guided.shape, c.guided.data, c.image, "guided");
        json layers = json::array();
        for (const layer_result& l : c.layers) {
            json j = json::object();
            j["name"] = l.name;
            j["op"] = l.op;
            j["relation"] = l.relation;
            j["ok"] = l.ok;
            j["max_rel_diff"] = number_or_null(l.max_rel_diff);
            j["differing_fraction"] = number_or_null(l.differing_fraction);
            j["tied_windows"] = l.tied_windows;
            layers.push_back(std::move(j));
        }
        im["layers"] = std::move(layers);
        list.push_back(std::move(im));
    }
    root["images"] = std::move(list);
    // Names that are not valid UTF-8 are written with U+FFFD in their place (as_written() does the same
    // when comparing).
    const std::string text = root.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
    io_detail::atomic_file file(path);
    file.write(text.data(), text.size());
    file.commit();
}

golden_file read_golden(const std::string& path) { return reader(path).file(); }

golden_comparison compare_golden(const std::string& path, const std::vector<image_certificate>& images,
                                 const golden_tolerances& tol) {
    const golden_file g = read_golden(path);
    golden_comparison r;
    r.file = path;
    r.tolerances = tol;
    comparer cmp(tol, r.moved);
    const size_t common = std::min(g.images.size(), images.size());
    for (size_t i = 0; i < common; ++i) cmp.image(i, g.images[i], images[i]);
    for (size_t i = common; i < g.images.size(); ++i)
        r.moved.push_back({g.images[i].image, "image-missing", "", 0, 0, 0, 0,
                           fmt::format("image {} of {} in the golden file, not given now", i + 1, g.images.size())});
    for (size_t i = common; i < images.size(); ++i)
        r.moved.push_back({as_written(images[i].image), "image-added", "", 0, 0, 0, 0,
                           fmt::format("image {} of {} given now, not in the golden file", i + 1, images.size())});
    r.ok = r.moved.empty();
    return r;
}

std::string golden_comparison::summary() const {
    std::string s = moved.empty() ? fmt::format("golden {}: nothing moved", file)
                                  : fmt::format("golden {}: {} item{} moved", file, moved.size(), moved.size() == 1 ? "" : "s");
    for (const golden_difference& m : moved) s += fmt::format("\n  {}: {}", m.image, m.detail);
    return s;
}

json golden_comparison::to_json() const {
    json j = json::object();
    j["ok"] = ok;
    j["file"] = file;
    j["tolerances"] = {{"logits", tolerances.logits},
                       {"signals", tolerances.signals},
                       {"fraction", tolerances.fraction},
                       {"layer_rel", tolerances.layer_rel}};
    json list = json::array();
    for (const golden_difference& m : moved)
        list.push_back({{"image", m.image},
                        {"what", m.what},
                        {"where", m.where},
                        {"golden", number_or_null(m.golden)},
                        {"now", number_or_null(m.now)},
                        {"change", number_or_null(m.change)},
                        {"tolerance", number_or_null(m.tolerance)},
                        {"detail", m.detail}});
    j["moved"] = std::move(list);
    return j;
}

} // namespace deepinside::verify
