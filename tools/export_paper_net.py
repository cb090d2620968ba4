#!/usr/bin/python3
"""Export the shape of the paper's ILSVRC-2013 ConvNet, with seeded random weights, to ONNX.

Simonyan, Vedaldi and Zisserman (arXiv 1312.6034, section 2) give their network in one line,

    conv64-conv256-conv256-conv256-conv256-full4096-full4096-full1000

(convN: a convolutional layer with N filters; fullM: a fully connected layer with M outputs), with
local response normalisation (LRN) and max pooling on the first two layers, similar to Krizhevsky et
al. 2012, trained on ILSVRC-2013 with 224x224 RGB crops. Filter sizes, strides and paddings are not
given. The same group's "Return of the Devil in the Details" (Chatfield, Simonyan, Vedaldi,
Zisserman 2014, table 1) lists a network with exactly these widths, CNN-F, and a wider one,
CNN-M (96 7x7/2, 256 5x5/2, 512 3x3 three times: the Zeiler & Fergus-like shape). Both are offered:

--variant paper (default): the paper's widths, CNN-F's kernel sizes and strides

    input   3 x 224 x 224
    conv1   64 filters 11x11, stride 4, pad 2   -> 64 x 55 x 55,  ReLU
            LRN (size 5, alpha 1e-4, beta 0.75, k 2); max pool 3x3 stride 2 -> 64 x 27 x 27
    conv2   256 filters 5x5, stride 1, pad 2    -> 256 x 27 x 27, ReLU
            LRN; max pool 3x3 stride 2          -> 256 x 13 x 13
    conv3   256 filters 3x3, stride 1, pad 1    -> 256 x 13 x 13, ReLU
    conv4   256 filters 3x3, stride 1, pad 1    -> 256 x 13 x 13, ReLU
    conv5   256 filters 3x3, stride 1, pad 1    -> 256 x 13 x 13, ReLU
            max pool 3x3 stride 2               -> 256 x 6 x 6
    fc6     9216 -> 4096, ReLU (dropout in training: absent in eval)
    fc7     4096 -> 4096, ReLU (dropout in training: absent in eval)
    fc8     4096 -> 1000: the logits (class scores S_c, before the softmax)

--variant cnn-m: the Zeiler & Fergus / CNN-M shape (96 7x7/2, 256 5x5/2, 512 3x3 x3)

    conv1   96 filters 7x7, stride 2, pad 0     -> 96 x 109 x 109, ReLU
            LRN; max pool 3x3 stride 2          -> 96 x 54 x 54
    conv2   256 filters 5x5, stride 2, pad 2    -> 256 x 27 x 27, ReLU
            LRN; max pool 3x3 stride 2          -> 256 x 13 x 13
    conv3-5 512 filters 3x3, stride 1, pad 1    -> 512 x 13 x 13, ReLU each
            max pool 3x3 stride 2               -> 512 x 6 x 6
    fc6     18432 -> 4096, ReLU; fc7 4096 -> 4096, ReLU; fc8 4096 -> 1000

Paddings: Chatfield et al. use pad 0 in conv1 (CNN-F) and pad 1 in conv2 (CNN-M) with Caffe's
ceil-mode pooling. Here every pooling is plain floor-mode MaxPool (no padding, no ceil_mode) and the
convolution paddings above are chosen so that the map before fc6 is 6x6, as in Krizhevsky's and
Zeiler & Fergus's networks (conv1 pad 2 as in torchvision's AlexNet; conv2 of cnn-m pad 2). Order in
the first two blocks: conv -> ReLU -> LRN -> max pool (Krizhevsky's). LRN is written as one ONNX LRN
node (torch 1.13 would export nn.LocalResponseNorm decomposed into Pow, Pad, AveragePool, ...).

Weights: torch.manual_seed(SEED) before construction, then He (Kaiming normal, fan_in, ReLU gain)
for every convolution and linear layer so that activations keep their scale through eight layers,
each unit's weights centred to zero mean over its fan-in (otherwise the positive mean of the ReLU
outputs alone decides the top-1 class, the same class for almost every input); biases get small
nonzero values 0.01 * N(0, 1) from a generator seeded SEED + 2. The model is put in eval mode
(dropout off). Input: standard normal from a generator seeded SEED + 1. Before writing anything the
script checks that the logits are finite and not constant, that the top-1 margin is far above
float32 rounding, and that 9 random inputs give at least 3 different top-1 classes.

Outputs, in OUTDIR:
  model.onnx     opset 13, input "input" [1,3,224,224], output "logits" [1,1000]
                 (with --softmax: output "probabilities" = Softmax(logits), the logits inner)
  input.npy      the seeded standard-normal input, float32 [1,3,224,224]
  logits.npy     PyTorch's float32 logits for input.npy, [1,1000]
  manifest.json  architecture, seed, torch version, top-1 class, ONNX op types, sanity figures

Usage: /usr/bin/python3 tools/export_paper_net.py OUTDIR [--seed 0] [--variant paper|cnn-m]
                                                   [--softmax]
"""

import argparse
import collections
import io
import json
import os
import sys
import time
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import write_atomically  # noqa: E402  (sibling module)

SIZE = 224
LRN = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)

# (name, out channels, kernel, stride, pad, LRN + max pool after the ReLU, max pool only)
VARIANTS = {
    "paper": {
        "description": "Simonyan et al. 2014 section 2: conv64-conv256-conv256-conv256-conv256-"
                       "full4096-full4096-full1000, LRN and max pooling on the first two layers; "
                       "kernel sizes and strides of Chatfield et al. 2014's CNN-F",
        "convs": [("conv1", 64, 11, 4, 2, "lrn+pool"), ("conv2", 256, 5, 1, 2, "lrn+pool"),
                  ("conv3", 256, 3, 1, 1, None), ("conv4", 256, 3, 1, 1, None),
                  ("conv5", 256, 3, 1, 1, "pool")],
    },
    "cnn-m": {
        "description": "Zeiler & Fergus-like shape (Chatfield et al. 2014's CNN-M): conv96 7x7/2, "
                       "conv256 5x5/2, conv512 3x3 x3, full4096-full4096-full1000, LRN and max "
                       "pooling on the first two layers",
        "convs": [("conv1", 96, 7, 2, 0, "lrn+pool"), ("conv2", 256, 5, 2, 2, "lrn+pool"),
                  ("conv3", 512, 3, 1, 1, None), ("conv4", 512, 3, 1, 1, None),
                  ("conv5", 512, 3, 1, 1, "pool")],
    },
}
FC = [("fc6", 4096), ("fc7", 4096), ("fc8", 1000)]


class _LRNFunction(torch.autograd.Function):
    """F.local_response_norm, exported as one ONNX LRN node.

    torch 1.13 exports nn.LocalResponseNorm as its decomposition (Pow, Pad, AveragePool, Mul, Add,
    Div); this symbolic writes the ONNX operator instead. The formulas agree: y = x / (k + alpha/size
    * sum of x^2 over the channels c - (size-1)//2 .. c + size//2)^beta, for odd size symmetric.
    """

    @staticmethod
    def forward(ctx, x, size, alpha, beta, k):
        return nn.functional.local_response_norm(x, size, alpha, beta, k)

    @staticmethod
    def symbolic(g, x, size, alpha, beta, k):
        return g.op("LRN", x, size_i=size, alpha_f=alpha, beta_f=beta, bias_f=k)


class LRN2d(nn.LocalResponseNorm):
    """nn.LocalResponseNorm, differentiable in PyTorch, one LRN node in an ONNX export."""

    def forward(self, x):
        if torch.onnx.is_in_onnx_export():
            return _LRNFunction.apply(x, self.size, self.alpha, self.beta, self.k)
        return super().forward(x)


class PaperNet(nn.Module):
    def __init__(self, variant, softmax=False):
        super().__init__()
        layers = collections.OrderedDict()
        self.shapes = []  # (layer, C, H, W) after each stage, for the manifest
        channels, size = 3, SIZE
        for name, out, kernel, stride, pad, after in VARIANTS[variant]["convs"]:
            layers[name] = nn.Conv2d(channels, out, kernel, stride=stride, padding=pad)
            layers[f"relu_{name}"] = nn.ReLU(inplace=False)
            channels, size = out, (size + 2 * pad - kernel) // stride + 1
            self.shapes.append({"layer": name, "filters": out, "kernel": kernel, "stride": stride,
                                "pad": pad, "output": [out, size, size]})
            if after == "lrn+pool":
                layers[f"lrn_{name}"] = LRN2d(**LRN)
            if after in ("lrn+pool", "pool"):
                layers[f"pool_{name}"] = nn.MaxPool2d(3, stride=2)
                size = (size - 3) // 2 + 1
                self.shapes.append({"layer": f"pool_{name}", "kernel": 3, "stride": 2,
                                    "lrn_before": after == "lrn+pool",
                                    "output": [out, size, size]})
        self.features = nn.Sequential(layers)
        self.feature_shape = (channels, size, size)
        head = collections.OrderedDict()
        inputs = channels * size * size
        for i, (name, out) in enumerate(FC):
            head[name] = nn.Linear(inputs, out)
            self.shapes.append({"layer": name, "inputs": inputs, "output": [out]})
            if i < len(FC) - 1:
                head[f"relu_{name}"] = nn.ReLU(inplace=False)
                head[f"dropout_{name}"] = nn.Dropout(0.5)  # identity in eval mode
            inputs = out
        self.classifier = nn.Sequential(head)
        self.softmax = softmax

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return torch.softmax(x, dim=1) if self.softmax else x

    def logits(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def build(variant, seed, softmax):
    torch.manual_seed(seed)
    model = PaperNet(variant, softmax)
    bias_generator = torch.Generator().manual_seed(seed + 2)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                # Zero-mean filters: post-ReLU activations have a positive mean, which random
                # filters pass on as an input-independent offset; after eight layers that offset
                # alone picks the top-1 class, the same for every input. Centering each unit's
                # weights over its fan-in removes it (and keeps the He variance up to (n-1)/n).
                m.weight.sub_(m.weight.mean(dim=tuple(range(1, m.weight.dim())), keepdim=True))
                m.bias.copy_(0.01 * torch.randn(m.bias.shape, generator=bias_generator))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def sanity(model, x, seed):
    """Raise unless the logits are finite, nonconstant and the top-1 is clear and input-dependent."""
    with torch.no_grad():
        logits = model.logits(x)[0]
        if not torch.isfinite(logits).all():
            raise RuntimeError("non-finite logits")
        spread = float(logits.std())
        if spread == 0.0:
            raise RuntimeError("all logits equal")
        top2 = torch.topk(logits, 2).values
        margin = float(top2[0] - top2[1])
        # float32 inference elsewhere (oneDNN) must agree on the top-1: demand a margin well above
        # float32 rounding of the logits.
        if margin < 1e-4 * float(logits.abs().max()):
            raise RuntimeError(f"top-1 margin {margin} too small for a float32 comparison")
        others = torch.randn(8, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed + 3))
        classes = model.logits(others).argmax(1).tolist()
    distinct = len(set(classes + [int(logits.argmax())]))
    if distinct < 3:
        raise RuntimeError(f"degenerate: 9 random inputs give only {distinct} distinct "
                           "top-1 classes")
    return {"logit_std": spread, "max_abs_logit": float(logits.abs().max()),
            "top1_margin": margin, "distinct_top1_of_9_random_inputs": distinct}


def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32))
    return buffer.getvalue()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="paper")
    parser.add_argument("--softmax", action="store_true",
                        help="end the graph in Softmax (output 'probabilities')")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    model = build(args.variant, args.seed, args.softmax)
    if model.feature_shape[1:] not in ((6, 6), (7, 7)):
        raise RuntimeError(f"feature map before fc6 is {model.feature_shape}, expected 6x6 or 7x7")
    x = torch.randn(1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(args.seed + 1))
    checks = sanity(model, x, args.seed)
    with torch.no_grad():
        logits = model.logits(x)

    output = "probabilities" if args.softmax else "logits"
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch 1.13's exporter warns about its own internals (Slice folding, g.op deprecation)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        torch.onnx.export(model, x, buffer, opset_version=13, input_names=["input"],
                          output_names=[output], do_constant_folding=True,
                          training=torch.onnx.TrainingMode.EVAL)
    onnx_bytes = buffer.getvalue()

    import onnx
    proto = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(proto)
    op_counts = collections.Counter(node.op_type for node in proto.graph.node)
    expected = {"Conv": 5, "Relu": 7, "LRN": 2, "MaxPool": 3, "Gemm": 3}
    for op, count in expected.items():
        if op_counts.get(op, 0) != count:
            raise RuntimeError(f"the ONNX graph has {op_counts.get(op, 0)} {op} nodes, "
                               f"expected {count}")

    os.makedirs(args.out_dir, exist_ok=True)
    target = lambda f: os.path.join(args.out_dir, f)
    write_atomically(target("model.onnx"), onnx_bytes)
    write_atomically(target("input.npy"), npy_bytes(x.numpy()))
    write_atomically(target("logits.npy"), npy_bytes(logits.numpy()))

    c = int(logits[0].argmax())
    parameters = sum(p.numel() for p in model.parameters())
    manifest = {
        "name": "paper8" if args.variant == "paper" else "paper8_cnn_m",
        "variant": args.variant,
        "description": VARIANTS[args.variant]["description"],
        "input_size": [1, 3, SIZE, SIZE],
        "layers": model.shapes,
        "lrn": LRN,
        "pooling": "MaxPool 3x3 stride 2, floor mode, no padding",
        "order": "conv -> ReLU -> LRN -> max pool (first two), conv -> ReLU (conv3-4), "
                 "conv5 -> ReLU -> max pool, fc6/fc7 -> ReLU (-> dropout, identity in eval), fc8",
        "output": output,
        "softmax_appended": args.softmax,
        "parameters": parameters,
        "seed": args.seed,
        "weights": f"random: torch.manual_seed({args.seed}), Kaiming normal (fan_in, relu) "
                   f"weights centred per unit over the fan-in, biases 0.01 * N(0,1) from "
                   f"torch.Generator seed {args.seed + 2}",
        "input": f"standard normal, torch.Generator seed {args.seed + 1}",
        "top1_class": c,
        "top1_score": float(logits[0, c]),
        "sanity": checks,
        "opset": 13,
        "op_types": dict(sorted(op_counts.items())),
        "onnx_bytes": len(onnx_bytes),
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "seconds": round(time.perf_counter() - started, 2),
    }
    write_atomically(target("manifest.json"), (json.dumps(manifest, indent=2) + "\n").encode())
    shapes = " -> ".join("x".join(map(str, s["output"])) for s in model.shapes)
    print(f"{manifest['name']}: {parameters / 1e6:.1f} M parameters, {shapes}; top-1 class {c} "
          f"(score {manifest['top1_score']:.4g}, margin {checks['top1_margin']:.3g}); "
          f"ops {', '.join(f'{k}:{v}' for k, v in manifest['op_types'].items())}; "
          f"{manifest['seconds']} s", flush=True)


if __name__ == "__main__":
    main()
