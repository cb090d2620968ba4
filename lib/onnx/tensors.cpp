// Decoding ONNX TensorProtos (initializers, Constant values, tensor attributes) into constants.
// Every size is checked against the bytes that actually hold the data before anything is allocated,
// so a hostile shape cannot make us reserve memory the file does not back.
#include "onnx/detail.hpp"
#include "platform/pages.hpp"

#include <deepinside/errors.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

namespace deepinside::onnx_detail {

namespace {

using ::onnx::TensorProto;

int64_t element_bytes(int32_t data_type) {
    switch (data_type) {
    case TensorProto::BOOL: return 1; // attention masks (folded at compile time)
    case TensorProto::FLOAT:
    case TensorProto::INT32: return 4;
    case TensorProto::INT64: return 8;
    default: return 0;
    }
}

// raw_data and external data are little-endian whatever the host is.
template <typename T>
T load_little_endian(const char* p) {
    T value;
    std::memcpy(&value, p, sizeof(T));
    if constexpr (std::endian::native == std::endian::big) {
        auto* bytes = reinterpret_cast<unsigned char*>(&value);
        std::reverse(bytes, bytes + sizeof(T));
    }
    return value;
}

// `bytes` holds exactly count * element_bytes(type) bytes (checked by the callers).
void decode_raw(const std::string& bytes, int32_t data_type, int64_t count, constant& dst) {
    const auto n = static_cast<size_t>(count);
    switch (data_type) {
    case TensorProto::FLOAT:
        dst.floats.resize(n);
        if constexpr (std::endian::native == std::endian::little) {
            if (n != 0) std::memcpy(dst.floats.data(), bytes.data(), n * sizeof(float));
        } else {
            for (size_t i = 0; i < n; ++i) dst.floats[i] = load_little_endian<float>(bytes.data() + 4 * i);
        }
        break;
    case TensorProto::BOOL:
        dst.ints.resize(n);
        for (size_t i = 0; i < n; ++i) dst.ints[i] = bytes[i] != 0 ? 1 : 0;
        break;
    case TensorProto::INT32:
        dst.ints.resize(n);
        for (size_t i = 0; i < n; ++i) dst.ints[i] = load_little_endian<int32_t>(bytes.data() + 4 * i);
        break;
    case TensorProto::INT64:
        dst.ints.resize(n);
        for (size_t i = 0; i < n; ++i) dst.ints[i] = load_little_endian<int64_t>(bytes.data() + 8 * i);
        break;
    default: break;
    }
}

// Which typed field holds the values of each supported type, and how many values it has.
const char* typed_field_name(int32_t data_type) {
    switch (data_type) {
    case TensorProto::FLOAT: return "float_data";
    case TensorProto::BOOL:
    case TensorProto::INT32: return "int32_data";
    case TensorProto::INT64: return "int64_data";
    default: return "?";
    }
}

int64_t typed_field_size(const TensorProto& t, int32_t data_type) {
    switch (data_type) {
    case TensorProto::FLOAT: return t.float_data_size();
    case TensorProto::BOOL:
    case TensorProto::INT32: return t.int32_data_size();
    case TensorProto::INT64: return t.int64_data_size();
    default: return 0;
    }
}

// Values stored in a typed field that does not belong to the tensor's element type are a
// malformed tensor (ONNX says which field each type uses); name the first such field.
const char* foreign_typed_field(const TensorProto& t, int32_t data_type) {
    if (t.float_data_size() && data_type != TensorProto::FLOAT) return "float_data";
    if (t.int32_data_size() && data_type != TensorProto::INT32 && data_type != TensorProto::BOOL) return "int32_data";
    if (t.int64_data_size() && data_type != TensorProto::INT64) return "int64_data";
    if (t.double_data_size()) return "double_data";
    if (t.uint64_data_size()) return "uint64_data";
    if (t.string_data_size()) return "string_data";
    return nullptr;
}

bool has_typed_data(const TensorProto& t) {
    return t.float_data_size() || t.int32_data_size() || t.int64_data_size() || t.double_data_size() ||
           t.uint64_data_size() || t.string_data_size();
}

} // namespace

bool is_supported_type(int32_t data_type) { return element_bytes(data_type) != 0; }

std::string type_name(int32_t data_type) {
    if (!TensorProto::DataType_IsValid(data_type)) return fmt::format("type {}", data_type);
    std::string name = TensorProto::DataType_Name(static_cast<TensorProto::DataType>(data_type));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    return name;
}

shape_t checked_shape(const TensorProto& t, const std::string& what, const tensor_source& src) {
    shape_t shape(t.dims().begin(), t.dims().end());
    for (int64_t d : shape)
        if (d < 0)
            throw model_error(fmt::format("{}: {} has a negative dimension in shape {}", src.file, what, to_string(shape)));
    try {
        element_count(shape);
    } catch (const input_error&) {
        throw model_error(fmt::format("{}: {} has shape {}, whose element count overflows int64", src.file, what,
                                      to_string(shape)));
    }
    return shape;
}

constant decode_tensor(const TensorProto& t, const std::string& what, const tensor_source& src, size_t max_values) {
    const int32_t type = t.data_type();
    if (type == TensorProto::UNDEFINED)
        throw model_error(fmt::format("{}: {} has no element type", src.file, what));
    if (!is_supported_type(type))
        throw unsupported_error(fmt::format("{}: {} has element type {}; only float, int64, int32 and bool tensors are supported",
                                            src.file, what, type_name(type)));
    if (t.has_segment())
        throw unsupported_error(fmt::format("{}: {} is a segmented tensor, which is not supported", src.file, what));

    constant dst;
    dst.shape = checked_shape(t, what, src);
    dst.is_int = type != TensorProto::FLOAT;
    const int64_t count = element_count(dst.shape);
    const int64_t elem = element_bytes(type);
    if (count > std::numeric_limits<int64_t>::max() / elem)
        throw model_error(fmt::format("{}: {} has shape {}, whose size in bytes overflows int64", src.file, what,
                                      to_string(dst.shape)));
    const auto needed = static_cast<uint64_t>(count * elem);

    if (t.data_location() == TensorProto::EXTERNAL) {
        if (t.has_raw_data() || has_typed_data(t))
            throw model_error(fmt::format("{}: {} is marked as external data but also holds inline data", src.file, what));
        decode_raw(read_external_data(t, what, needed, src), type, count, dst);
        return dst;
    }
    if (t.external_data_size() != 0)
        throw model_error(fmt::format("{}: {} has external_data entries but its data_location is not EXTERNAL",
                                      src.file, what));

    if (t.has_raw_data()) {
        if (has_typed_data(t))
            throw model_error(fmt::format("{}: {} holds both raw_data and typed data fields", src.file, what));
        if (needed > src.file_bytes)
            throw model_error(fmt::format("{}: {} has shape {} of {}, {} bytes: more than the whole file ({} bytes) holds",
                                          src.file, what, to_string(dst.shape), type_name(type), needed, src.file_bytes));
        if (t.raw_data().size() != needed)
            throw model_error(fmt::format("{}: {}: raw_data holds {} bytes, shape {} of {} needs {}", src.file, what,
                                          t.raw_data().size(), to_string(dst.shape), type_name(type), needed));
        if (static_cast<uint64_t>(count) <= max_values) decode_raw(t.raw_data(), type, count, dst);
        return dst;
    }

    if (const char* field = foreign_typed_field(t, type))
        throw model_error(fmt::format("{}: {} is of {} but stores values in {}", src.file, what, type_name(type), field));
    // Each value of a typed field takes at least one byte of the file (varints), four for floats.
    const uint64_t min_bytes = type == TensorProto::FLOAT ? needed : static_cast<uint64_t>(count);
    if (min_bytes > src.file_bytes)
        throw model_error(fmt::format("{}: {} has shape {} of {}, more values than the whole file ({} bytes) can hold",
                                      src.file, what, to_string(dst.shape), type_name(type), src.file_bytes));
    const int64_t stored = typed_field_size(t, type);
    if (stored != count)
        throw model_error(fmt::format("{}: {}: {} holds {} values, shape {} needs {}", src.file, what,
                                      typed_field_name(type), stored, to_string(dst.shape), count));
    if (static_cast<uint64_t>(count) > max_values) return dst;
    switch (type) {
    case TensorProto::FLOAT: dst.floats.assign(t.float_data().begin(), t.float_data().end()); break;
    case TensorProto::INT32: dst.ints.assign(t.int32_data().begin(), t.int32_data().end()); break;
    case TensorProto::BOOL:
        for (int32_t v : t.int32_data()) dst.ints.push_back(v != 0 ? 1 : 0);
        break;
    case TensorProto::INT64: dst.ints.assign(t.int64_data().begin(), t.int64_data().end()); break;
    default: break;
    }
    return dst;
}

std::vector<float> take_float_bytes(std::string& raw_data, size_t count) {
    if (raw_data.size() != count * sizeof(float))
        throw std::logic_error("take_float_bytes: raw_data does not hold the values decode_tensor checked");
    // 8 MiB slices: each is copied, then the whole pages of the string it came from are returned to
    // the kernel (MADV_DONTNEED; the string is only freed afterwards, and never read again). glibc's
    // malloc keeps its bookkeeping outside the pages strictly inside a block, which are the only ones
    // returned. reserve() takes address space without touching it; each resize() within it touches
    // only its slice. So the process holds about one slice more than the protobuf, where a plain copy
    // held the tensor twice (VGG-16's first fully connected layer: 411 MB).
    constexpr size_t slice = (size_t(8) << 20) / sizeof(float);
    std::vector<float> values;
    values.reserve(count);
    // The reserved space as transparent huge pages: writing the slices then takes one page fault per
    // 2 MiB instead of one per 4 KiB.
    platform::advise_huge_pages(values.data(), count * sizeof(float));
    for (size_t start = 0; start < count; start += slice) {
        const size_t end = std::min(count, start + slice);
        values.resize(end);
        if constexpr (std::endian::native == std::endian::little) {
            std::memcpy(values.data() + start, raw_data.data() + start * sizeof(float), (end - start) * sizeof(float));
        } else {
            for (size_t i = start; i < end; ++i) values[i] = load_little_endian<float>(raw_data.data() + i * sizeof(float));
        }
        platform::release_pages(raw_data.data() + start * sizeof(float), (end - start) * sizeof(float));
    }
    std::string().swap(raw_data);
    return values;
}

} // namespace deepinside::onnx_detail
