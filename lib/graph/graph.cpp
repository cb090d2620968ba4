#include <deepinside/errors.hpp>
#include <deepinside/graph.hpp>

#include <fmt/format.h>

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

} // namespace deepinside
