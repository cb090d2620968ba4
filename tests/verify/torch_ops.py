"""Independent float64 PyTorch results for tests/verify/test_torch.cpp.

Usage: torch_ops.py DIR. DIR/cases.json lists cases {"op", "attrs", "x": [file, shape], "params": {name: [file,
shape]}, "seed": [file, shape], "y": file, "dx": file}; tensors are raw little-endian float64 in C order.
For each case this writes y = op(x) and dx = d<seed, y>/dx. Exit code 3 when torch is missing.
"""
import json
import os
import sys

try:
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as e:  # the C++ test declares these as its precondition; this is a failure
    print(f"torch_ops.py: {e}", file=sys.stderr)
    sys.exit(3)


def load(folder, spec):
    name, shape = spec
    data = np.fromfile(os.path.join(folder, name), dtype="<f8")
    return torch.from_numpy(data.reshape(shape).copy())


def run(case, x, p):
    a = case["attrs"]
    op = case["op"]
    if op == "conv":
        t, l, b, r = a["pads"]
        xp = F.pad(x, (l, r, t, b))  # asymmetric ONNX pads, as torch's padding is symmetric
        return F.conv2d(xp, p["w"], p.get("b"), stride=a["strides"], dilation=a["dilations"], groups=a["group"])
    if op == "max_pool":
        return F.max_pool2d(x, a["kernel"], a["strides"], a["pads"], a["dilations"], ceil_mode=bool(a["ceil_mode"]))
    if op == "avg_pool":
        return F.avg_pool2d(x, a["kernel"], a["strides"], a["pads"], ceil_mode=bool(a["ceil_mode"]),
                            count_include_pad=bool(a["count_include_pad"]))
    if op == "lrn":
        return F.local_response_norm(x, a["size"], a["alpha"], a["beta"], a["bias"])
    if op == "softmax":
        return F.softmax(x, dim=a["axis"])
    if op == "log_softmax":
        return F.log_softmax(x, dim=a["axis"])
    if op == "gelu":
        return F.gelu(x, approximate=a["approximate"])
    if op == "hardswish":
        return F.hardswish(x)
    if op == "hardsigmoid":  # torch's is alpha 1/6, beta 1/2; any other ramp written out
        return torch.clamp(a["alpha"] * x + a["beta"], 0, 1)
    if op == "erf":
        return torch.erf(x)
    if op == "prelu":
        return torch.where(x > 0, x, x * p["slope"])
    if op == "layer_norm":
        shape = x.shape[a["axis"]:]
        return F.layer_norm(x, shape, p["scale"].expand(shape), p["bias"].expand(shape), eps=a["epsilon"])
    raise ValueError(f"unknown op {op}")


def main():
    folder = sys.argv[1]
    with open(os.path.join(folder, "cases.json")) as f:
        cases = json.load(f)
    for case in cases:
        x = load(folder, case["x"]).requires_grad_(True)
        params = {k: load(folder, v) for k, v in case.get("params", {}).items()}
        y = run(case, x, params)
        seed = load(folder, case["seed"]) if list(y.shape) == case["seed"][1] else None
        y.detach().numpy().astype("<f8").tofile(os.path.join(folder, case["y"]))
        with open(os.path.join(folder, case["y"] + ".shape"), "w") as f:
            f.write(" ".join(str(d) for d in y.shape))
        if seed is not None:
            (dx,) = torch.autograd.grad((y * seed).sum(), x)
            dx.numpy().astype("<f8").tofile(os.path.join(folder, case["dx"]))


if __name__ == "__main__":
    main()
