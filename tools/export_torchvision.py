#!/usr/bin/python3
"""Export torchvision classifiers with seeded random weights to ONNX, with PyTorch reference outputs.

For each architecture NAME this writes OUTDIR/NAME/:

  model.onnx     opset 13, input "input" [1,3,S,S], output "logits" [1,1000]
                 (with --dynamic-batch: [batch,3,S,S] and [batch,1000], the batch axis open)
  input.npy      seeded standard-normal input, float32 [1,3,S,S]
  logits.npy     PyTorch's float32 output for input.npy, [1,1000]
  manifest.json  architecture, size, ONNX op types, top-1 class, timings, torch version

and with --signals, computed in float64 (the model and input widened with .double(): the very
weights the ONNX file holds, so that the reference is exact and a comparison measures only the
other side's f32 error), for the top-1 class c of the float32 forward (c also in class.txt):

  logits.f64     PyTorch's float64 output for input.npy                  [1,1000]
  gradient.f64   dS_c/d input, ReLU backward = grad * 1(x > 0)           [3,S,S]
  deconvnet.f64  same chain with ReLU backward = relu(grad)              (ReLU networks only)
  guided.f64     same chain with ReLU backward = relu(grad) * 1(x > 0)   (ReLU networks only)

A .f64 file is raw little-endian float64 in C order, no header: its shape is the one given here.

Weights are random (torch.manual_seed(0) before construction), never pretrained; biases that
torchvision initialises to zero get small seeded values. Batch-norm running statistics are first
calibrated on seeded random images (so activations keep a sane scale through deep random networks)
and then perturbed, together with the affine parameters, so that BatchNormalization is really
exercised. Every BatchNormalization is kept as a node, except in
resnet18_folded, where it is folded into the preceding convolution before export.

Usage: /usr/bin/python3 tools/export_torchvision.py OUTDIR [--archs a,b] [--size 224] [--signals]
                                                      [--dynamic-batch]
"""

import argparse
import collections
import io
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from atomic_write import write_atomically  # noqa: E402  (sibling module)

# The test set; the benchmark-only models (vgg16 is 528 MB) are exported only when named.
DEFAULT_ARCHS = ["alexnet", "vgg11_bn", "resnet18_bn", "resnet18_folded", "squeezenet1_1",
                 "googlenet", "mobilenet_v2", "densenet121"]
BENCHMARK_ARCHS = ["vgg16", "resnet50"]
RULES = ["gradient", "deconvnet", "guided"]
INPUT_SEED = 1
PARAMETER_SEED = 2


def build(name):
    """Construct the torchvision model behind an export name, seeded, random weights."""
    torch.manual_seed(0)
    models = torchvision.models
    if name in ("resnet18_bn", "resnet18_folded"):
        return models.resnet18(weights=None)
    if name == "googlenet":
        return models.googlenet(weights=None, aux_logits=False, transform_input=False,
                                init_weights=True)
    if name in DEFAULT_ARCHS + BENCHMARK_ARCHS:
        return getattr(models, name)(weights=None)
    raise ValueError(f"unknown architecture {name}; known: {', '.join(DEFAULT_ARCHS + BENCHMARK_ARCHS)}")


def make_parameters_nontrivial(model, size):
    """Give zero-initialised biases small seeded values; calibrate and perturb batch norm.

    torchvision initialises conv/linear biases to zero and BN to the identity: a bias bug would go
    unseen, and the exporter would merge the equal initializers behind Identity nodes. Returns the
    number of batch-norm modules.
    """
    generator = torch.Generator().manual_seed(PARAMETER_SEED)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None \
                    and not m.bias.any():
                m.bias.copy_(0.01 * torch.randn(m.bias.shape, generator=generator))
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return 0
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: the stats become those of the calibration batch
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size, generator=generator))
    model.eval()
    with torch.no_grad():
        for m in norms:
            c = m.num_features
            m.running_var.mul_(torch.empty(c).uniform_(0.5, 2.0, generator=generator))
            m.running_mean.add_(0.2 * torch.randn(c, generator=generator) * m.running_var.sqrt())
            m.weight.copy_(torch.empty(c).uniform_(0.5, 1.5, generator=generator))
            m.bias.copy_(0.1 * torch.randn(c, generator=generator))
            m.momentum = 0.1
            # ONNX stores epsilon as a float32 attribute: use that very value, so that the float64
            # references compute what the file says (0.001 vs 0.001f alone moves them by 3e-8).
            m.eps = float(np.float32(m.eps))
    return len(norms)


def fold_batchnorm(model, require_all=True):
    """Fold every Conv2d -> BatchNorm2d pair into the convolution (BN becomes Identity).

    With require_all=False, batch norms that follow no convolution (DenseNet's pre-activation
    ones) are left as they are; returns the number folded either way.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    folded = 0
    for parent in model.modules():
        children = list(parent.named_children())
        for (conv_name, conv), (bn_name, bn) in zip(children, children[1:]):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(parent, conv_name, fuse_conv_bn_eval(conv, bn))
                setattr(parent, bn_name, nn.Identity())
                folded += 1
    # Pairs are found by registration order, which in torchvision's ResNet (conv1/bn1, conv2/bn2,
    # downsample) is also the data-flow order; the caller compares logits before and after.
    left = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    if left and require_all:
        raise RuntimeError(f"{len(left)} BatchNorm2d modules could not be folded")
    return folded


def export_onnx(model, x, keep_batchnorm, dynamic_batch=False):
    buffer = io.BytesIO()
    # In eval mode the exporter fuses Conv+BatchNormalization; PRESERVE keeps the BN nodes
    # (as inference-mode BatchNormalization, since the model is in eval mode).
    training = torch.onnx.TrainingMode.PRESERVE if keep_batchnorm else torch.onnx.TrainingMode.EVAL
    # deepinside refuses another batch than a fixed one (bench --batch 64 in tools/bench.sh): the
    # open axis is an option so that the test set keeps the files its references were made with.
    dynamic_axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic_batch else None
    torch.onnx.export(model, x, buffer, opset_version=13, input_names=["input"],
                      output_names=["logits"], training=training, do_constant_folding=True,
                      dynamic_axes=dynamic_axes)
    return buffer.getvalue()




def npy_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32))
    return buffer.getvalue()


def f64_bytes(tensor):
    """Raw little-endian float64, C order."""
    return np.ascontiguousarray(tensor.detach().numpy(), dtype="<f8").tobytes()


class _RuleRelu(torch.autograd.Function):
    """ReLU whose backward follows one of the paper's three rules."""

    @staticmethod
    def forward(ctx, x, rule):
        ctx.rule = rule
        # Only the mask is kept, so later in-place ops on x cannot corrupt the backward pass.
        ctx.save_for_backward(x > 0)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, grad):
        positive_input, = ctx.saved_tensors
        if ctx.rule == "gradient":
            return grad * positive_input, None
        if ctx.rule == "deconvnet":
            return grad.clamp(min=0), None
        return grad.clamp(min=0) * positive_input, None


class _RuleReluModule(nn.Module):
    def __init__(self, rule, counter):
        super().__init__()
        self.rule = rule
        self.counter = counter

    def forward(self, x):
        self.counter["module"] += 1
        return _RuleRelu.apply(x, self.rule)


class relu_rule:
    """Context manager: every ReLU of `model`, module or functional, follows `rule` in backward.

    nn.ReLU modules are swapped for rule modules; torch.relu / F.relu (googlenet and densenet call
    them from forward) and the Tensor methods relu / relu_ are patched for the duration and
    restored on exit. The rule ReLU is never in place: callers use the returned value.
    """

    def __init__(self, model, rule):
        self.model = model
        self.rule = rule
        self.counter = collections.Counter()
        self.swapped = []
        self.patched = []

    def __enter__(self):
        for parent in self.model.modules():
            for name, child in list(parent.named_children()):
                if type(child) is nn.ReLU:
                    self.swapped.append((parent, name, child))
                    setattr(parent, name, _RuleReluModule(self.rule, self.counter))
        rule, counter = self.rule, self.counter

        def functional_relu(x, inplace=False):
            counter["functional"] += 1
            return _RuleRelu.apply(x, rule)

        def torch_relu(x):
            counter["functional"] += 1
            return _RuleRelu.apply(x, rule)

        # Tensor.relu / Tensor.relu_ too, so that x.relu() cannot slip past the count check.
        for owner, attr, replacement in [(F, "relu", functional_relu), (F, "relu_", torch_relu),
                                         (torch, "relu", torch_relu), (torch, "relu_", torch_relu),
                                         (torch.Tensor, "relu", torch_relu),
                                         (torch.Tensor, "relu_", torch_relu)]:
            self.patched.append((owner, attr, getattr(owner, attr)))
            setattr(owner, attr, replacement)
        return self

    def __exit__(self, *exc):
        for owner, attr, original in reversed(self.patched):
            setattr(owner, attr, original)
        for parent, name, child in self.swapped:
            setattr(parent, name, child)
        return False


def uses_only_relu(model):
    """False when the model has a nonlinearity the three rules do not cover (e.g. ReLU6)."""
    other = (nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish,
             nn.Sigmoid, nn.Tanh, nn.PReLU)
    return not any(isinstance(m, other) for m in model.modules())


def input_gradient(model, x, c, rule=None):
    """dS_c/dx for a single image, [3,S,S]; rule=None is plain autograd with the stock ReLUs."""
    x = x.clone().requires_grad_(True)
    if rule is None:
        score = model(x)[0, c]
        return torch.autograd.grad(score, x)[0][0], None
    with relu_rule(model, rule) as patched:
        score = model(x)[0, c]
        grad = torch.autograd.grad(score, x)[0][0]
    return grad, dict(patched.counter)


def export_one(name, out_dir, size, signals, dynamic_batch=False):
    started = time.perf_counter()
    model = build(name)
    norms = make_parameters_nontrivial(model, size)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(INPUT_SEED))

    with torch.no_grad():
        logits = model(x)
    folded = 0
    if name == "resnet18_folded":
        folded = fold_batchnorm(model)
        with torch.no_grad():
            folded_logits = model(x)
        drift = float((folded_logits - logits).abs().max())
        if drift > 1e-3 * max(1.0, float(logits.abs().max())):
            raise RuntimeError(f"{name}: folding BN changed the logits by {drift}")
        logits = folded_logits

    export_start = time.perf_counter()
    onnx_bytes = export_onnx(model, x, keep_batchnorm=(name != "resnet18_folded"),
                             dynamic_batch=dynamic_batch)
    export_seconds = time.perf_counter() - export_start

    import onnx
    proto = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(proto)
    op_counts = collections.Counter(node.op_type for node in proto.graph.node)
    has_bn = op_counts.get("BatchNormalization", 0)
    if name == "resnet18_folded" and has_bn:
        raise RuntimeError(f"{name}: {has_bn} BatchNormalization nodes left after folding")
    if norms and name != "resnet18_folded" and has_bn != norms:
        raise RuntimeError(f"{name}: {norms} BatchNorm modules but {has_bn} BatchNormalization nodes")

    os.makedirs(os.path.join(out_dir, name), exist_ok=True)
    target = lambda f: os.path.join(out_dir, name, f)
    write_atomically(target("model.onnx"), onnx_bytes)
    write_atomically(target("input.npy"), npy_bytes(x.numpy()))
    write_atomically(target("logits.npy"), npy_bytes(logits.numpy()))

    c = int(logits[0].argmax())
    manifest = {
        "name": name, "size": size, "opset": 13, "top1_class": c,
        "top1_score": float(logits[0, c]), "max_abs_logit": float(logits.abs().max()),
        "op_types": dict(sorted(op_counts.items())), "batchnorm_modules": norms,
        "batchnorm_folded": folded, "onnx_bytes": len(onnx_bytes),
        "export_seconds": round(export_seconds, 2), "torch_version": torch.__version__,
        "torchvision_version": torchvision.__version__, "weights": "random, torch.manual_seed(0)",
        "input": f"standard normal, torch.Generator seed {INPUT_SEED}",
    }

    if dynamic_batch:
        manifest["batch_axis"] = "open"

    if signals:
        signal_start = time.perf_counter()
        # float64 from here on: the same weights, widened exactly.
        model = model.double()
        x = x.double()
        with torch.no_grad():
            logits64 = model(x)
        write_atomically(target("logits.f64"), f64_bytes(logits64))
        manifest["max_abs_logit_f64_vs_f32"] = float((logits64 - logits.double()).abs().max())
        reference, _ = input_gradient(model, x, c)
        rules = RULES if uses_only_relu(model) else ["gradient"]
        manifest["signals"] = {}
        for rule in rules:
            if rule == "gradient" and not uses_only_relu(model):
                grad, counts = reference, {}
            else:
                grad, counts = input_gradient(model, x, c, rule)
                calls = sum(counts.values())
                if calls != op_counts.get("Relu", 0):
                    raise RuntimeError(f"{name}: rule {rule} replaced {calls} ReLU calls, the "
                                       f"ONNX graph has {op_counts.get('Relu', 0)} Relu nodes")
            if rule == "gradient":
                scale = float(reference.abs().max())
                diff = float((grad - reference).abs().max())
                if diff > 1e-12 * max(scale, 1e-30):
                    raise RuntimeError(f"{name}: gradient rule differs from autograd by {diff} "
                                       f"(max |grad| {scale})")
            elif torch.equal(grad, reference):
                raise RuntimeError(f"{name}: rule {rule} gave exactly the plain gradient")
            if not torch.isfinite(grad).all() or float(grad.abs().max()) == 0.0:
                raise RuntimeError(f"{name}: rule {rule} gave a zero or non-finite signal")
            write_atomically(target(f"{rule}.f64"), f64_bytes(grad))
            manifest["signals"][rule] = {"relu_calls": counts,
                                         "max_abs": float(grad.abs().max())}
        write_atomically(target("class.txt"), f"{c}\n".encode())
        manifest["signal_seconds"] = round(time.perf_counter() - signal_start, 2)
        if not uses_only_relu(model):
            manifest["signals_note"] = "not a pure-ReLU network: only gradient.npy is written"

    manifest["total_seconds"] = round(time.perf_counter() - started, 2)
    write_atomically(target("manifest.json"), (json.dumps(manifest, indent=2) + "\n").encode())
    return manifest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("--archs", default=",".join(DEFAULT_ARCHS),
                        help="comma-separated; known: " + ",".join(DEFAULT_ARCHS + BENCHMARK_ARCHS))
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--signals", action="store_true",
                        help="also write gradient/deconvnet/guided.npy and class.txt")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="leave the batch axis of model.onnx open (input and logits); "
                             "input.npy and logits.npy stay batch 1")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    archs = [a for a in args.archs.split(",") if a]
    unknown = [a for a in archs if a not in DEFAULT_ARCHS + BENCHMARK_ARCHS]
    if unknown:
        sys.exit(f"unknown architecture(s) {', '.join(unknown)}; known: "
                 f"{', '.join(DEFAULT_ARCHS + BENCHMARK_ARCHS)}")
    os.makedirs(args.out_dir, exist_ok=True)
    for name in archs:
        m = export_one(name, args.out_dir, args.size, args.signals, args.dynamic_batch)
        ops = ", ".join(f"{k}:{v}" for k, v in m["op_types"].items())
        print(f"{name}: class {m['top1_class']} (score {m['top1_score']:.4g}), "
              f"{m['onnx_bytes'] / 1e6:.1f} MB, export {m['export_seconds']} s, "
              f"total {m['total_seconds']} s; ops {ops}", flush=True)


if __name__ == "__main__":
    main()
