#pragma once
// Pieces of the ONNX reader shared between its files: tensor decoding (tensors.cpp) and external
// data (external_data.cpp). Every function throws with a message that starts with the file name.
#include <deepinside/graph.hpp>

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>

namespace deepinside::onnx_detail {

/// Where the bytes of a tensor may come from, and how to name them in messages.
struct tensor_source {
    std::string file;          ///< the model's name as given by the caller, first word of every message
    uint64_t file_bytes = 0;   ///< size of the serialized model: bounds what inline data can hold
    std::string base_dir;      ///< folder for external data; "" refuses external data
    bool allow_external = true;
};

/// True for the element types a constant can hold: FLOAT, INT64, INT32.
bool is_supported_type(int32_t data_type);

/// "FLOAT", "DOUBLE", ... ("type 42" for values outside the enum).
std::string type_name(int32_t data_type);

/// The shape of `t`, checked: no negative dimension, element count fits int64.
/// `what` names the tensor in messages, e.g. "initializer 'fc.weight'".
shape_t checked_shape(const ::onnx::TensorProto& t, const std::string& what, const tensor_source& src);

/// Decodes a FLOAT, INT64 or INT32 tensor (raw_data, typed fields or external data) into a
/// constant; an unsupported element type is an unsupported_error, any inconsistency a model_error.
/// A tensor held inside the protobuf (raw_data or typed fields) of more than `max_values` values is
/// only checked: the constant gets its shape and type but no values (take_float_bytes or a second
/// call takes them later), so that its values and the protobuf's copy are never resident together.
constant decode_tensor(const ::onnx::TensorProto& t, const std::string& what, const tensor_source& src,
                       size_t max_values = SIZE_MAX);

/// The values of a FLOAT tensor's raw_data that decode_tensor has checked (`count` values), moved
/// out of the protobuf string without both copies being resident: copied a slice at a time, each
/// copied slice of the string handed back to the kernel; the string is left empty.
std::vector<float> take_float_bytes(std::string& raw_data, size_t count);

/// Reads exactly `expected_bytes` bytes of the external data of `t` after checking the location
/// stays inside src.base_dir (relative, no "..", no symlink, regular file) and that offset and
/// length are well formed and inside the file. Files are opened only after every check passed.
std::string read_external_data(const ::onnx::TensorProto& t, const std::string& what, uint64_t expected_bytes,
                               const tensor_source& src);

} // namespace deepinside::onnx_detail
