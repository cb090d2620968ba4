#!/usr/bin/python3
"""Writes the seed corpora of the fuzz targets into OUT/<target>/ (tools/fuzz.sh calls it).

Good and bad files of every kind the readers must handle, close to what the test suites build:
  onnx_reader  tiny consistent models (every supported op, IR 8 / opset 13 and IR 10 / opset 21),
               the same with external data (model + "@@EXTERNAL@@" + data file, see
               fuzz/onnx_reader.cpp) and every refused location / offset / length, structural
               errors (cycle, duplicate producer, missing tensor, versions), the ONNX node tests of
               supported ops from libonnx-testdata, and "skeletons" of the repository's real models
               (their graphs with every initializer shrunk to at most 16 values, since the real
               files, 0.14 to 5 MB, are above the targets' -max_len).
  npy          float32 arrays of several ranks and the three format versions, the repository's
               .npy files that fit -max_len, and bad headers, dtypes, orders and body sizes.
  png          the bundled sample images and hand-made PNGs of every colour type and bit depth,
               interlaced, with palette and transparency, plus truncated, bad-CRC and huge-header files.
  jpeg         baseline and progressive, grey and colour, several subsamplings (with Pillow when
               it is installed; fuzz/seeds/jpeg holds a few committed ones in any case), a CMYK file,
               truncated and damaged files, and hand-made progressive files of repeated scans.
Only numpy and onnx are required (Debian's python3-numpy, python3-onnx); Pillow is optional.
Usage: make_seeds.py OUT [--repo DIR] [--max-len N]
"""
import argparse
import io
import os
import struct
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEPARATOR = b"@@EXTERNAL@@"
SUPPORTED_OPS = {
    "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout",
    "Elu", "Flatten", "Gemm", "GlobalAveragePool", "GlobalMaxPool", "Identity", "LeakyRelu", "LogSoftmax",
    "LRN", "MatMul", "MaxPool", "Mul", "Pad", "ReduceMean", "Relu", "Reshape", "Selu", "Sigmoid", "Softmax",
    "Squeeze", "Sub", "Tanh", "Unsqueeze",
}


class Writer:
    def __init__(self, out, max_len):
        self.out = out
        self.max_len = max_len
        self.counts = {}

    def __call__(self, target, name, data):
        if len(data) > self.max_len:
            return  # libFuzzer would truncate it: a different, accidental seed
        folder = os.path.join(self.out, target)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, name), "wb") as f:
            f.write(data)
        self.counts[target] = self.counts.get(target, 0) + 1


# ---- ONNX ------------------------------------------------------------------------------------

def ramp(n, scale=0.01):
    return np.array([scale * (i + 1) * (-1 if i % 2 else 1) for i in range(n)], dtype=np.float32)


def tiny_model(ir=8, opset=13):
    """The reader tests' tiny model: x[N,1,4,4] -> Conv -> Relu -> Flatten -> Gemm -> y[N,3]."""
    inits = [
        numpy_helper.from_array(ramp(18).reshape(2, 1, 3, 3), "conv.w"),
        helper.make_tensor("conv.b", TensorProto.FLOAT, [2], [0.5, -0.25]),  # typed field, not raw_data
        numpy_helper.from_array(ramp(96, 0.001).reshape(3, 32), "fc.w"),
        numpy_helper.from_array(np.array([0.1, 0.2, 0.3], np.float32), "fc.b"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv.w", "conv.b"], ["c"], "conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Flatten", ["r"], ["f"], "flat", axis=1),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["y"], "fc", transB=1, alpha=1.0),
    ]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    m = helper.make_model(g, producer_name="deepinside-fuzz", opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    helper.set_model_props(m, {"labels": "a,b,c", "deepinside.mean": "0.5"})
    return m


def many_ops_model(ir=8, opset=13):
    """One consistent graph that uses every supported op at least once (x[1,2,8,8] -> y[1,4])."""
    f = lambda name, shape, scale=0.1: numpy_helper.from_array(ramp(int(np.prod(shape)), scale).reshape(shape), name)
    i64 = lambda name, values: numpy_helper.from_array(np.array(values, np.int64), name)
    inits = [
        f("w1", [4, 2, 3, 3]), f("b1", [4]),
        f("bn.s", [4]), f("bn.b", [4]),
        numpy_helper.from_array(np.zeros(4, np.float32), "bn.m"), numpy_helper.from_array(np.ones(4, np.float32), "bn.v"),
        f("wd", [4, 1, 3, 3]), f("k", [1, 4, 1, 1]),
        i64("pads", [0, 0, 1, 1, 0, 0, 1, 1]), i64("shape", [1, -1]), i64("axes0", [0]),
        f("mm", [8, 4]), f("fcw", [4, 4]), f("fcb", [4]),
    ]
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c1", "bn.s", "bn.b", "bn.m", "bn.v"], ["bn"], epsilon=1e-5),
        n("Relu", ["bn"], ["r1"]),
        n("Conv", ["r1", "wd"], ["dw"], group=4, kernel_shape=[3, 3], pads=[1, 1, 1, 1], dilations=[1, 1]),
        n("Clip", ["dw"], ["clip"]) if opset >= 11 else n("Clip", ["dw"], ["clip"], min=0.0, max=6.0),
        n("LeakyRelu", ["clip"], ["lr"], alpha=0.1),
        n("Elu", ["lr"], ["elu"], alpha=1.0),
        n("Selu", ["elu"], ["selu"]),
        n("Sigmoid", ["selu"], ["sig"]),
        n("Tanh", ["r1"], ["tanh"]),
        n("Add", ["sig", "tanh"], ["add"]),
        n("Mul", ["add", "k"], ["mul"]),
        n("Sub", ["mul", "k"], ["sub"]),
        n("Div", ["sub", "kc"], ["div"]),
        n("Constant", [], ["kc"], value=helper.make_tensor("kc.v", TensorProto.FLOAT, [], [2.0])),
        n("LRN", ["div"], ["lrn"], size=3),
        n("MaxPool", ["lrn"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        n("AveragePool", ["lrn"], ["ap"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
          count_include_pad=1),
        n("Concat", ["mp", "ap"], ["cat"], axis=1),
        n("Pad", ["cat", "pads"], ["pad"], mode="constant") if opset >= 11 else
        n("Pad", ["cat"], ["pad"], pads=[0, 0, 1, 1, 0, 0, 1, 1]),
        n("GlobalMaxPool", ["pad"], ["gmp"]),
        n("GlobalAveragePool", ["pad"], ["gap"]),
        n("ReduceMean", ["pad"], ["rm"], axes=[2, 3], keepdims=1) if opset < 18 else
        n("ReduceMean", ["pad", "axes23"], ["rm"], keepdims=1),
        n("Add", ["gmp", "gap"], ["g1"]),
        n("Add", ["g1", "rm"], ["g2"]),
        n("Dropout", ["g2"], ["drop"]),
        n("Identity", ["drop"], ["id"]),
        n("Squeeze", ["id", "axes23"], ["sq"]) if opset >= 13 else n("Squeeze", ["id"], ["sq"], axes=[2, 3]),
        n("Unsqueeze", ["sq", "axes0"], ["usq"]) if opset >= 13 else n("Unsqueeze", ["sq"], ["usq"], axes=[0]),
        n("Reshape", ["usq", "shape"], ["flat"]),
        n("MatMul", ["flat", "mm"], ["m1"]),
        n("Flatten", ["m1"], ["f1"], axis=1),
        n("Gemm", ["f1", "fcw", "fcb"], ["gemm"], transB=1),
        n("Softmax", ["gemm"], ["sm"], axis=1),
        n("LogSoftmax", ["sm"], ["y"], axis=1),
    ]
    inits.append(i64("axes23", [2, 3]))
    g = helper.make_graph(nodes, "many", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 8, 8])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    m = helper.make_model(g, producer_name="deepinside-fuzz", opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def external(model, entries, name="fc.w"):
    """`model` with initializer `name` moved to external data described by `entries`."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for t in m.graph.initializer:
        if t.name == name:
            t.ClearField("raw_data")
            t.ClearField("float_data")
            t.data_location = TensorProto.EXTERNAL
            for k, v in entries:
                e = t.external_data.add()
                e.key, e.value = k, v
    return m


def skeleton(model, keep=16):
    """A real model's graph with every initializer cut to at most `keep` values (dims shrunk to 1
    from the left until it fits): the structure, op types and attributes stay, the weights go."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.DiscardUnknownFields()  # e.g. per-node metadata of newer exporters: 1.4 kB a node in SqueezeNet
    for n in m.graph.node:
        n.doc_string = ""
    for t in m.graph.initializer:
        dims = list(t.dims)
        i = 0
        while int(np.prod(dims, dtype=np.int64)) > keep and i < len(dims):
            dims[i] = 1
            i += 1
        if dims == list(t.dims):
            continue
        if t.data_type != TensorProto.FLOAT:
            continue
        values = numpy_helper.to_array(t).reshape(-1)[: int(np.prod(dims, dtype=np.int64))].reshape(dims)
        t.CopyFrom(numpy_helper.from_array(values.astype(np.float32), t.name))
    return m


def onnx_seeds(put, repo):
    T = "onnx_reader"
    ser = lambda m: m.SerializeToString()
    tiny = tiny_model()
    put(T, "tiny-ir8-opset13.onnx", ser(tiny))
    put(T, "tiny-ir10-opset21.onnx", ser(tiny_model(10, 21)))
    put(T, "tiny-ir7-opset7.onnx", ser(tiny_model(7, 7)))
    for ir, opset in [(8, 13), (7, 10), (8, 17), (10, 18), (10, 21)]:
        put(T, f"many-ops-ir{ir}-opset{opset}.onnx", ser(many_ops_model(ir, opset)))

    # External data: 16 bytes of padding, fc.w's floats, 8 more bytes (as tests/onnx does).
    fc_w = ramp(96, 0.001).tobytes()
    blob = b"p" * 16 + fc_w + b"q" * 8
    good = [("location", "weights.bin"), ("offset", "16"), ("length", str(len(fc_w)))]
    put(T, "external-valid.onnx", ser(external(tiny, good)) + SEPARATOR + blob)
    put(T, "external-valid-ir10.onnx", ser(external(tiny_model(10, 21), good)) + SEPARATOR + blob)
    put(T, "external-subfolder.onnx",
        ser(external(tiny, [("location", "data/weights.bin"), ("offset", "16"), ("length", str(len(fc_w)))]))
        + SEPARATOR + blob)
    put(T, "external-whole-file.onnx", ser(external(tiny, [("location", "weights.bin")])) + SEPARATOR + fc_w)
    put(T, "external-checksum-key.onnx",
        ser(external(tiny, good + [("checksum", "0123")])) + SEPARATOR + blob)
    bad_entries = {
        "parent": [("location", "../weights.bin")],
        "parent-inner": [("location", "data/../weights.bin")],
        "absolute": [("location", "/etc/hostname")],
        "symlink": [("location", "link.bin"), ("offset", "16"), ("length", str(len(fc_w)))],
        "symlinked-folder": [("location", "linked/weights.bin"), ("offset", "16"), ("length", str(len(fc_w)))],
        "folder": [("location", "folder.bin")],
        "missing": [("location", "absent.bin")],
        "no-location": [("offset", "0")],
        "empty-location": [("location", "")],
        "nul-location": [("location", "weights.bin\0x")],
        "offset-beyond": [("location", "weights.bin"), ("offset", str(len(blob) + 1))],
        "offset-overflow": [("location", "weights.bin"), ("offset", "18446744073709551615"), ("length", "384")],
        "offset-too-long": [("location", "weights.bin"), ("offset", "184467440737095516160")],
        "offset-negative": [("location", "weights.bin"), ("offset", "-1")],
        "offset-hex": [("location", "weights.bin"), ("offset", "0x10")],
        "length-past-end": [("location", "weights.bin"), ("offset", "16"), ("length", str(len(blob)))],
        "length-wrong": [("location", "weights.bin"), ("offset", "16"), ("length", "4")],
        "length-space": [("location", "weights.bin"), ("offset", "16"), ("length", " 384")],
        "duplicate-key": good + [("offset", "0")],
    }
    for name, entries in bad_entries.items():
        put(T, f"external-bad-{name}.onnx", ser(external(tiny, entries)) + SEPARATOR + blob)
    put(T, "external-no-data-part.onnx", ser(external(tiny, good)))
    # External data inside a Constant node's tensor and in a tensor attribute.
    m = tiny_model()
    t = helper.make_tensor("cv", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])
    t.ClearField("float_data")
    t.data_location = TensorProto.EXTERNAL
    for k, v in [("location", "weights.bin"), ("offset", "4"), ("length", "12")]:
        e = t.external_data.add()
        e.key, e.value = k, v
    m.graph.node.insert(0, helper.make_node("Constant", [], ["cst"], value=t))
    m.graph.node.append(helper.make_node("Add", ["y0", "cst"], ["y"]))
    m.graph.node[-2].output[0] = "y0"
    put(T, "external-constant.onnx", ser(m) + SEPARATOR + blob)

    # Structural and version errors.
    def variant(name, edit, base=None):
        v = onnx.ModelProto()
        v.CopyFrom(base or tiny)
        edit(v)
        put(T, name, ser(v))

    variant("bad-ir11.onnx", lambda m: setattr(m, "ir_version", 11))
    variant("bad-ir2.onnx", lambda m: setattr(m, "ir_version", 2))
    variant("bad-opset6.onnx", lambda m: setattr(m.opset_import[0], "version", 6))
    variant("bad-opset22.onnx", lambda m: setattr(m.opset_import[0], "version", 22))
    variant("bad-no-default-opset.onnx", lambda m: setattr(m.opset_import[0], "domain", "com.example"))
    variant("bad-two-default-opsets.onnx", lambda m: m.opset_import.add(domain="ai.onnx", version=13))
    variant("bad-no-graph.onnx", lambda m: m.ClearField("graph"))
    variant("unsorted.onnx", lambda m: m.graph.node.reverse())

    def cycle(m):
        m.graph.node[1].input[0] = "f"
    variant("bad-cycle.onnx", cycle)

    def twice(m):
        m.graph.node[2].output[0] = "r"
    variant("bad-produced-twice.onnx", twice)
    variant("bad-missing-input.onnx", lambda m: m.graph.node[1].input.__setitem__(0, "nowhere"))
    variant("bad-unsupported-op.onnx", lambda m: setattr(m.graph.node[1], "op_type", "Gelu"))
    variant("bad-unknown-domain.onnx", lambda m: setattr(m.graph.node[1], "domain", "com.example"))
    variant("bad-no-output.onnx", lambda m: m.graph.ClearField("output"))
    variant("bad-int-input.onnx", lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", TensorProto.INT32))
    variant("bad-negative-dim.onnx", lambda m: m.graph.initializer[0].dims.__setitem__(0, -2))
    variant("bad-overflow-dims.onnx", lambda m: m.graph.initializer[0].dims.extend([1 << 40, 1 << 40]))
    variant("bad-raw-size.onnx", lambda m: setattr(m.graph.initializer[0], "raw_data", b"\0" * 7))
    variant("bad-double-initializer.onnx", lambda m: setattr(m.graph.initializer[2], "data_type", TensorProto.DOUBLE))
    variant("bad-duplicate-initializer.onnx", lambda m: setattr(m.graph.initializer[1], "name", "conv.w"))
    variant("bad-graph-attribute.onnx", lambda m: m.graph.node[1].attribute.append(
        helper.make_attribute("body", helper.make_graph([], "g", [], []))))
    variant("bad-attribute-twice.onnx", lambda m: m.graph.node[0].attribute.append(
        helper.make_attribute("pads", [0, 0, 0, 0])))
    variant("bad-untyped-attribute.onnx", lambda m: m.graph.node[2].attribute.append(onnx.AttributeProto(name="untyped")))
    variant("bad-conv-kernel.onnx", lambda m: m.graph.node[0].attribute[0].ints.__setitem__(0, 5))
    variant("control-chars-in-name.onnx", lambda m: setattr(m.graph.node[1], "op_type", "Re\nlu\x1b"))
    data = ser(tiny)
    put(T, "truncated.onnx", data[: len(data) // 2])
    put(T, "empty.onnx", b"")
    put(T, "random.onnx", bytes((i * 131 + 7) % 256 for i in range(512)))

    # ONNX's node tests of supported ops (all ops of the model supported).
    node_dir = "/usr/share/libonnx-testdata/data/node"
    if os.path.isdir(node_dir):
        for case in sorted(os.listdir(node_dir)):
            path = os.path.join(node_dir, case, "model.onnx")
            if not os.path.isfile(path):
                continue
            try:
                model = onnx.load(path)
            except Exception:
                continue
            if all(n.op_type in SUPPORTED_OPS for n in model.graph.node):
                with open(path, "rb") as f:
                    put(T, f"node-{case}.onnx", f.read())

    # The repository's real models, as skeletons (see the module docstring).
    paths = [os.path.join(repo, "models", f) for f in sorted(os.listdir(os.path.join(repo, "models")))
             if f.endswith(".onnx")]
    shared = os.path.join(repo, "..", "shared", "models")
    if os.path.isdir(shared):
        paths += [os.path.join(shared, d, "model.onnx") for d in sorted(os.listdir(shared))
                  if os.path.isfile(os.path.join(shared, d, "model.onnx"))]
    for path in paths:
        name = os.path.basename(os.path.dirname(path)) if path.endswith("/model.onnx") else os.path.basename(path)[:-5]
        with open(path, "rb") as f:
            data = f.read()
        put(T, f"real-{name}.onnx", data)  # kept only when it fits -max_len
        put(T, f"skeleton-{name}.onnx", ser(skeleton(onnx.load_from_string(data))))


# ---- .npy ------------------------------------------------------------------------------------

def npy_bytes(array, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version, allow_pickle=False)
    return buf.getvalue()


def npy_raw(header, body=b"", version=(1, 0)):
    """A .npy file from a literal header dict, padded like NumPy's."""
    h = header.encode("latin1")
    pre = 10 if version[0] == 1 else 12
    h += b" " * ((64 - (pre + len(h) + 1) % 64) % 64) + b"\n"
    length = struct.pack("<H", len(h)) if version[0] == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes(version) + length + h + body


def npy_seeds(put, repo):
    T = "npy"
    r = lambda *shape: ramp(int(np.prod(shape)) if shape else 1).reshape(shape)
    put(T, "scalar.npy", npy_bytes(np.float32(1.5).reshape(())))
    put(T, "empty.npy", npy_bytes(np.zeros((0,), np.float32)))
    put(T, "zero-dim-2d.npy", npy_bytes(np.zeros((3, 0), np.float32)))
    put(T, "vector.npy", npy_bytes(r(5)))
    put(T, "matrix.npy", npy_bytes(r(2, 3)))
    put(T, "nchw.npy", npy_bytes(r(1, 1, 4, 4)))
    put(T, "rank8.npy", npy_bytes(np.ones([1] * 8, np.float32)))
    put(T, "version2.npy", npy_bytes(r(2, 2), (2, 0)))
    put(T, "version3.npy", npy_bytes(r(3), (3, 0)))
    put(T, "float64.npy", npy_bytes(r(2, 2).astype(np.float64)))
    put(T, "int32.npy", npy_bytes(np.arange(4, dtype=np.int32)))
    put(T, "big-endian.npy", npy_bytes(r(4).astype(">f4")))
    put(T, "fortran.npy", npy_bytes(np.asfortranarray(r(2, 3))))
    put(T, "rank9.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }",
                               b"\0" * 4))
    good = npy_bytes(r(2, 3))
    put(T, "truncated-body.npy", good[:-5])
    put(T, "trailing-bytes.npy", good + b"\0\0\0\0")
    put(T, "truncated-header.npy", good[:40])
    put(T, "preamble-only.npy", good[:9])
    put(T, "bad-magic.npy", b"\x93NUMPZ" + good[6:])
    put(T, "version4.npy", good[:6] + b"\x04\x00" + good[8:])
    put(T, "header-too-long.npy", good[:8] + b"\xff\xff" + good[10:])
    put(T, "header-huge-v2.npy", b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}")
    put(T, "shape-not-tuple.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (5), }", b"\0" * 20))
    put(T, "shape-negative.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"))
    put(T, "shape-leading-zero.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (01,), }", b"\0" * 4))
    put(T, "shape-overflow.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775807, 2), }"))
    put(T, "shape-huge-dim.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }"))
    put(T, "shape-big-count.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,), }"))
    put(T, "extra-key.npy", npy_raw("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }", b"\0" * 4))
    put(T, "duplicate-key.npy", npy_raw("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                                        b"\0" * 4))
    put(T, "missing-key.npy", npy_raw("{'descr': '<f4', 'shape': (), }", b"\0" * 4))
    put(T, "double-quotes.npy", npy_raw('{"descr": "<f4", "fortran_order": False, "shape": (2,)}', b"\0" * 8))
    put(T, "escape.npy", npy_raw("{'descr': '<f\\4', 'fortran_order': False, 'shape': (), }", b"\0" * 4))
    put(T, "unterminated.npy", npy_raw("{'descr': '<f4", b""))
    put(T, "not-a-dict.npy", npy_raw("[1, 2, 3]", b""))
    put(T, "object-dtype.npy", npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", b"\x80\x04N."))
    put(T, "structured-dtype.npy",
        npy_raw("{'descr': [('a', '<f4'), ('b', '<f4')], 'fortran_order': False, 'shape': (1,), }", b"\0" * 8))
    put(T, "bool-lowercase.npy", npy_raw("{'descr': '<f4', 'fortran_order': false, 'shape': (), }", b"\0" * 4))
    put(T, "empty-file.npy", b"")

    shared = os.path.join(repo, "..", "shared", "models")
    if os.path.isdir(shared):
        for d in sorted(os.listdir(shared)):
            if not os.path.isdir(os.path.join(shared, d)):
                continue
            for f in sorted(os.listdir(os.path.join(shared, d))):
                if f.endswith(".npy"):
                    with open(os.path.join(shared, d, f), "rb") as fh:
                        put(T, f"shared-{d}-{f}", fh.read())  # kept only when it fits -max_len


# ---- PNG -------------------------------------------------------------------------------------

def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xffffffff)


ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def png_bytes(width, height, depth, colour, rows, interlace=False, extra=(), level=6, filt=0):
    """A PNG from `rows(x0, y0, dx, dy, w, h)` -> list of packed scanlines (without filter byte)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 1 if interlace else 0)
    raw = b""
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    for x0, y0, dx, dy in passes:
        w = (width - x0 + dx - 1) // dx if width > x0 else 0
        h = (height - y0 + dy - 1) // dy if height > y0 else 0
        if w == 0 or h == 0:
            continue
        for line in rows(x0, y0, dx, dy, w, h):
            raw += bytes([filt]) + line  # filter 0 (None) or 1 (Sub) on data that tolerates either
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
    for kind, data in extra:
        out += chunk(kind, data)
    return out + chunk(b"IDAT", zlib.compress(raw, level)) + chunk(b"IEND", b"")


def pattern_rows(channels, depth):
    def rows(x0, y0, dx, dy, w, h):
        lines = []
        for j in range(h):
            y = y0 + j * dy
            if depth == 16:
                vals = [((x0 + i * dx) * 4099 + y * 257 * (c + 1)) & 0xffff for i in range(w) for c in range(channels)]
                lines.append(struct.pack(f">{len(vals)}H", *vals))
            elif depth == 8:
                lines.append(bytes(((x0 + i * dx) * 16 + y * 8 * (c + 1)) & 0xff for i in range(w) for c in range(channels)))
            else:  # 1, 2, 4 bits, one channel
                per = 8 // depth
                vals = [((x0 + i * dx) + y) % (1 << depth) for i in range(w)]
                vals += [0] * (-len(vals) % per)
                line = bytearray()
                for k in range(0, len(vals), per):
                    b = 0
                    for v in vals[k:k + per]:
                        b = (b << depth) | v
                    line.append(b)
                lines.append(bytes(line))
        return lines
    return rows


def png_seeds(put, repo):
    T = "png"
    images = os.path.join(repo, "models", "images")
    for f in sorted(os.listdir(images)) if os.path.isdir(images) else []:
        if f.endswith(".png"):
            with open(os.path.join(images, f), "rb") as fh:
                put(T, f"bundled-{f}", fh.read())
    kinds = [("grey8", 8, 0, 1), ("grey16", 16, 0, 1), ("grey1", 1, 0, 1), ("grey2", 2, 0, 1), ("grey4", 4, 0, 1),
             ("rgb8", 8, 2, 3), ("rgb16", 16, 2, 3), ("grey-alpha8", 8, 4, 2), ("grey-alpha16", 16, 4, 2),
             ("rgba8", 8, 6, 4), ("rgba16", 16, 6, 4)]
    for name, depth, colour, channels in kinds:
        put(T, f"{name}.png", png_bytes(7, 5, depth, colour, pattern_rows(channels, depth)))
    put(T, "rgb8-interlaced.png", png_bytes(9, 9, 8, 2, pattern_rows(3, 8), interlace=True))
    put(T, "grey1-interlaced.png", png_bytes(11, 3, 1, 0, pattern_rows(1, 1), interlace=True))
    put(T, "rgb8-sub-filter.png", png_bytes(6, 4, 8, 2, pattern_rows(3, 8), filt=1))
    palette = bytes(v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 37) & 0xff))
    put(T, "palette4.png", png_bytes(8, 4, 4, 3, pattern_rows(1, 4), extra=[(b"PLTE", palette)]))
    put(T, "palette8-trns.png", png_bytes(8, 4, 8, 3, lambda *a: [bytes((i + j) % 16 for i in range(a[4])) for j in range(a[5])],
                                         extra=[(b"PLTE", palette), (b"tRNS", bytes(range(0, 256, 32)))]))
    put(T, "grey8-trns.png", png_bytes(4, 4, 8, 0, pattern_rows(1, 8), extra=[(b"tRNS", b"\x00\x10")]))
    put(T, "rgb8-trns.png", png_bytes(4, 4, 8, 2, pattern_rows(3, 8), extra=[(b"tRNS", b"\x00\x10\x00\x20\x00\x30")]))
    put(T, "ancillary.png", png_bytes(4, 4, 8, 2, pattern_rows(3, 8), extra=[
        (b"gAMA", struct.pack(">I", 45455)), (b"sRGB", b"\x00"), (b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
        (b"tEXt", b"Comment\0deepinside"), (b"zTXt", b"Comment\0\0" + zlib.compress(b"compressed text")),
        (b"iCCP", b"icc\0\0" + zlib.compress(b"\0" * 128)), (b"sBIT", b"\x08\x08\x08")]))
    good = png_bytes(7, 5, 8, 2, pattern_rows(3, 8))
    put(T, "truncated.png", good[:len(good) - 20])
    put(T, "truncated-header.png", good[:20])
    put(T, "bad-crc.png", good[:30] + bytes([good[30] ^ 0x01]) + good[31:])
    put(T, "no-iend.png", good[:-12])
    put(T, "bad-zlib.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 7, 5, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", b"\x78\x9c" + bytes(range(3, 200, 7))) + chunk(b"IEND", b""))
    put(T, "short-idat.png", png_bytes(7, 5, 8, 2, lambda *a: [b"\x01" * 21] * 2))
    put(T, "bad-filter.png", png_bytes(4, 4, 8, 0, pattern_rows(1, 8), filt=9))
    put(T, "bad-depth.png", png_bytes(4, 4, 3, 0, pattern_rows(1, 8)))
    put(T, "palette-missing-plte.png", png_bytes(4, 4, 8, 3, pattern_rows(1, 8)))
    put(T, "huge-dims.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    put(T, "zero-width.png", b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 4, 8, 0, 0, 0, 0))
        + chunk(b"IEND", b""))
    put(T, "wide-row.png", png_bytes(3000, 1, 8, 0, lambda *a: [bytes(a[4])], level=9))
    put(T, "signature-only.png", b"\x89PNG\r\n\x1a\n")


# ---- JPEG ------------------------------------------------------------------------------------

def segment(marker, payload):
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def jpeg_repeated_scans(width, height, ac_scans):
    """A progressive grey JPEG, every block 0: one DC scan, then `ac_scans` identical AC scans of
    end-of-band runs only (a few bytes each, a pass over every block each; libjpeg accepts the
    repetition silently). tests/io/fuzz_regression_tests.cpp builds the same file."""
    out, acc, n = bytearray(), 0, 0

    def put(value, bits):
        nonlocal acc, n
        for i in range(bits - 1, -1, -1):
            acc, n = (acc << 1) | ((value >> i) & 1), n + 1
            if n == 8:
                out.append(acc)
                if acc == 0xFF:
                    out.append(0)
                acc, n = 0, 0

    def finish():
        if n:
            put((1 << (8 - n)) - 1, 8 - n)
        data = bytes(out)
        out.clear()
        return data

    blocks = ((width + 7) // 8) * ((height + 7) // 8)
    j = b"\xff\xd8" + segment(0xDB, b"\x00" + b"\x01" * 64)
    j += segment(0xC2, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00")
    j += segment(0xC4, b"\x00" + bytes([1] + [0] * 15) + b"\x00")  # DC: one 1-bit code, category 0
    j += segment(0xC4, b"\x10" + bytes([1] + [0] * 15) + b"\xe0")  # AC: one 1-bit code, EOB14
    for _ in range(blocks):
        put(0, 1)
    j += segment(0xDA, b"\x01\x01\x00\x00\x00\x00") + finish()
    left = blocks
    while left > 0:
        run = min(left, 32767)
        left -= run
        put(0, 1)
        put(max(run, 16384) - 16384, 14)
    ac = segment(0xDA, b"\x01\x01\x00\x01\x3f\x00") + finish()
    return j + ac * ac_scans + b"\xff\xd9"


def jpeg_seeds(put, repo):
    T = "jpeg"
    # Hand-made, no Pillow needed: repeated progressive scans, below and above the 500-scan limit.
    put(T, "progressive-repeated-scans.jpg", jpeg_repeated_scans(64, 48, 40))
    put(T, "progressive-many-scans.jpg", jpeg_repeated_scans(64, 48, 520))
    try:
        from PIL import Image
    except ImportError:
        print("make_seeds: Pillow is not installed; the JPEG corpus has only fuzz/seeds/jpeg", file=sys.stderr)
        return

    def jpeg(img, **options):
        buf = io.BytesIO()
        img.save(buf, "JPEG", **options)
        return buf.getvalue()

    w, h = 19, 13
    rgb = Image.new("RGB", (w, h))
    rgb.putdata([((x * 13) & 0xff, (y * 19) & 0xff, ((x + y) * 7) & 0xff) for y in range(h) for x in range(w)])
    grey = rgb.convert("L")
    put(T, "baseline-rgb420.jpg", jpeg(rgb, quality=75))
    put(T, "baseline-rgb444.jpg", jpeg(rgb, quality=90, subsampling=0))
    put(T, "baseline-rgb422.jpg", jpeg(rgb, quality=50, subsampling=1))
    put(T, "baseline-grey.jpg", jpeg(grey, quality=75))
    put(T, "progressive-rgb.jpg", jpeg(rgb, quality=75, progressive=True))
    put(T, "progressive-grey.jpg", jpeg(grey, quality=60, progressive=True))
    put(T, "optimized-rgb.jpg", jpeg(rgb, quality=75, optimize=True))
    put(T, "cmyk.jpg", jpeg(rgb.convert("CMYK"), quality=75))
    put(T, "with-exif-comment.jpg", jpeg(rgb, quality=75, comment=b"deepinside", exif=b"Exif\0\0MM\0*\0\0\0\x08\0\0"))
    put(T, "with-icc.jpg", jpeg(rgb, quality=75, icc_profile=b"\0" * 200))
    put(T, "one-pixel.jpg", jpeg(Image.new("RGB", (1, 1), (200, 10, 10))))
    put(T, "wide.jpg", jpeg(Image.new("L", (1500, 1), 128), quality=10))
    good = jpeg(rgb, quality=75)
    put(T, "truncated.jpg", good[: len(good) * 2 // 3])
    put(T, "truncated-header.jpg", good[:100])
    put(T, "no-eoi.jpg", good[:-2])
    put(T, "damaged-scan.jpg", good[:-40] + b"\xff\xd0" + good[-38:])
    put(T, "trailing-garbage.jpg", good + b"garbage")
    put(T, "soi-only.jpg", b"\xff\xd8\xff\xd9")
    prog = jpeg(rgb, quality=75, progressive=True)
    put(T, "progressive-truncated.jpg", prog[: len(prog) // 2])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--max-len", type=int, default=65536)
    args = ap.parse_args()
    put = Writer(args.out, args.max_len)
    onnx_seeds(put, args.repo)
    npy_seeds(put, args.repo)
    png_seeds(put, args.repo)
    jpeg_seeds(put, args.repo)
    print("make_seeds: " + ", ".join(f"{t} {n}" for t, n in sorted(put.counts.items())))


if __name__ == "__main__":
    main()
