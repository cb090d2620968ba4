#include <deepinside/errors.hpp>
#include <deepinside/graph.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace deepinside {

namespace {
template <typename T>
const T* typed(const node& n, const std::string& attr, const char* type_name) {
    auto it = n.attributes.find(attr);
    if (it == n.attributes.end()) return nullptr;
    const T* v = std::get_if<T>(&it->second);
    if (!v) throw model_error(fmt::format("{}: attribute '{}' must be {}", n.describe(), attr, type_name));
    return v;
}
} // namespace

int64_t node::get_int(const std::string& attr, int64_t fallback) const {
    const auto* v = typed<int64_t>(*this, attr, "an int");
    return v ? *v : fallback;
}
float node::get_float(const std::string& attr, float fallback) const {
    const auto* v = typed<float>(*this, attr, "a float");
    return v ? *v : fallback;
}
std::string node::get_string(const std::string& attr, const std::string& fallback) const {
    const auto* v = typed<std::string>(*this, attr, "a string");
    return v ? *v : fallback;
}
std::vector<int64_t> node::get_ints(const std::string& attr, const std::vector<int64_t>& fallback) const {
    const auto* v = typed<std::vector<int64_t>>(*this, attr, "a list of ints");
    return v ? *v : fallback;
}
std::vector<float> node::get_floats(const std::string& attr, const std::vector<float>& fallback) const {
    const auto* v = typed<std::vector<float>>(*this, attr, "a list of floats");
    return v ? *v : fallback;
}
const constant* node::get_tensor(const std::string& attr) const { return typed<constant>(*this, attr, "a tensor"); }

std::string node::describe() const {
    return fmt::format("node '{}' ({}{}, opset {})", name, domain.empty() ? "" : domain + ".", op_type, opset);
}

const constant* graph::find_constant(const std::string& tensor_name) const {
    auto it = constants.find(tensor_name);
    return it == constants.end() ? nullptr : &it->second;
}

std::optional<size_t> graph::producer_of(const std::string& tensor_name) const {
    for (size_t i = 0; i < nodes.size(); ++i)
        for (const auto& out : nodes[i].outputs)
            if (out == tensor_name) return i;
    return std::nullopt;
}

std::vector<std::string> nearest_names(const std::string& given, const std::vector<std::string>& candidates, size_t count) {
    const auto lower = [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); };
    // Levenshtein distance with one row of the table.
    const auto distance = [&](const std::string& a, const std::string& b) {
        std::vector<size_t> row(b.size() + 1);
        for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
        for (size_t i = 1; i <= a.size(); ++i) {
            size_t diagonal = row[0];
            row[0] = i;
            for (size_t j = 1; j <= b.size(); ++j) {
                const size_t substitute = diagonal + (lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1);
                diagonal = row[j];
                row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
            }
        }
        return row[b.size()];
    };
    // Names that contain what was typed come first ("conv2" finds "/conv2/Conv"), shortest first;
    // then the rest by edit distance.
    const auto contains = [&](const std::string& name) {
        return !given.empty() && std::search(name.begin(), name.end(), given.begin(), given.end(),
                                             [&](char a, char b) { return lower(a) == lower(b); }) != name.end();
    };
    std::vector<std::pair<size_t, size_t>> ranked; // (rank, candidate index)
    const size_t beyond = given.size() + 1'000'000;
    for (size_t k = 0; k < candidates.size(); ++k)
        ranked.emplace_back(contains(candidates[k]) ? candidates[k].size() : beyond + distance(given, candidates[k]), k);
    std::stable_sort(ranked.begin(), ranked.end());
    std::vector<std::string> nearest;
    for (size_t k = 0; k < ranked.size() && nearest.size() < count; ++k) {
        const std::string& name = candidates[ranked[k].second];
        if (std::find(nearest.begin(), nearest.end(), name) == nearest.end()) nearest.push_back(name);
    }
    return nearest;
}

} // namespace deepinside
