#!/usr/bin/python3
"""Export every torchvision classification family to ONNX (opsets 13 and 17), with float64 references.

For each family NAME and opset N this writes OUTDIR/NAME-opsetN/:

  model.onnx          torch.onnx.export with default settings (training EVAL, constant folding),
                      opset N, input "input" [batch,3,S,S], output "logits" [batch,1000], the batch
                      axis dynamic
  input.npy           seeded standard-normal input, float32 [1,3,S,S]
  input_batch2.npy    [2,3,S,S]: input.npy, then a second seeded image
  logits.npy          PyTorch's float32 output for input.npy                  [1,1000]
  logits.f64          PyTorch's float64 output for input.npy                  [1,1000]
  logits_batch2.f64   PyTorch's float64 output for input_batch2.npy           [2,1000]
  class.txt           the top-1 class c of the float32 forward
  gradient.f64        dS_c/d input, exact                                     [3,S,S]
  deconvnet.f64       ReLU backward = relu(signal), every other op exact      [3,S,S]
  guided.f64          ReLU backward = relu(signal)*1(x>0), every other op exact [3,S,S]
  manifest.json       ONNX op types, parameter counts, all_relu, nonlinearities, times, checks

All signals are computed in float64 on the very weights the ONNX file holds (model.double(), a
widening that is exact). Where a network has nonlinearities other than ReLU (all_relu false),
deconvnet.f64 and guided.f64 are what `--nonrelu gradient` computes: the rule at ReLU only, the
exact derivative at GELU, SiLU, Hardswish, sigmoid, softmax, LayerNorm, SE gating. A network with no
ReLU at all gets three equal signals (the manifest says so).

So that the file's weights are PyTorch's: every Conv2d -> BatchNorm2d pair is folded in PyTorch
(torch.nn.utils.fusion.fuse_conv_bn_eval) before the export, which would otherwise fold it itself in
float32 with its own rounding; the batch norms that follow no convolution stay BatchNormalization
nodes. Swin V2's continuous position bias (an MLP of constants that the exporter folds in float32)
is computed once in float32 and frozen as a buffer, and its logit scale is set to log(1) = 0, so
that no weight of the file is a float32 rounding of something PyTorch computes in float64.

Weights are random (torch.manual_seed(0)), made nontrivial as in export_torchvision.py (seeded
biases, calibrated and perturbed batch norm) and further: LayerNorm affine parameters, attention
input-projection biases, ViT's class token and ConvNeXt's layer scale (1e-6 by default, which
would make every block an identity) get seeded values; EfficientNet's residual branches are damped
(make_more_nontrivial says why). swin_v2_t does not export with PyTorch 1.13 (NOT_EXPORTABLE).

Families already exported (manifest.json present) are skipped. Usage:
  /usr/bin/python3 tools/export_torchvision_families.py OUTDIR [--families a,b] [--opsets 13,17]
"""

import argparse
import collections
import gc
import json
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_torchvision import (INPUT_SEED, PARAMETER_SEED, f64_bytes, fold_batchnorm,  # noqa: E402
                                make_parameters_nontrivial, npy_bytes, relu_rule)
from atomic_write import write_atomically  # noqa: E402

# (family, input size). Every torchvision 0.14 classification family; swin_v2_t and maxvit_t are
# kept when this torchvision has them and PyTorch can export them (NOT_EXPORTABLE).
FAMILIES = [
    ("alexnet", 224), ("vgg16", 224), ("vgg16_bn", 224), ("resnet18", 224), ("resnet50", 224),
    ("resnext50_32x4d", 224), ("wide_resnet50_2", 224), ("squeezenet1_0", 224),
    ("squeezenet1_1", 224), ("densenet121", 224), ("googlenet", 224), ("inception_v3", 299),
    ("shufflenet_v2_x1_0", 224), ("mnasnet1_0", 224), ("mobilenet_v2", 224),
    ("mobilenet_v3_small", 224), ("mobilenet_v3_large", 224), ("efficientnet_b0", 224),
    ("efficientnet_v2_s", 224), ("regnet_x_400mf", 224), ("regnet_y_400mf", 224),
    ("convnext_tiny", 224), ("vit_b_16", 224), ("swin_t", 224), ("swin_v2_t", 224),
    ("maxvit_t", 224),
]
# Families this torchvision has that Debian's PyTorch 1.13 cannot export (checked: the reason).
NOT_EXPORTABLE = {
    "swin_v2_t": "torch.onnx 1.13 cannot export aten::zero_ (shifted_window_attention zeroes the key "
                 "bias in place: qkv_bias[length:2*length].zero_()), at opset 13 and 17",
}
OPSETS = [13, 17]
RULES = ["gradient", "deconvnet", "guided"]
SECOND_IMAGE_SEED = INPUT_SEED + 100

# ONNX op types that are nonlinearities other than ReLU (or normalisations: smooth, nonlinear).
NONRELU_ONNX_OPS = {"Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Erf", "Gelu", "Tanh", "LeakyRelu",
                    "Elu", "Selu", "Softplus", "Softsign", "PRelu", "Softmax", "LogSoftmax",
                    "LayerNormalization", "Sqrt", "Pow", "Exp", "Log", "Reciprocal", "ReduceL2",
                    "InstanceNormalization", "Mish"}
NONRELU_MODULES = (nn.ReLU6, nn.Hardtanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish,
                   nn.Hardsigmoid, nn.Sigmoid, nn.Tanh, nn.PReLU, nn.Softmax, nn.LayerNorm,
                   nn.MultiheadAttention)


def available_families():
    return [(f, s) for f, s in FAMILIES if hasattr(torchvision.models, f) and f not in NOT_EXPORTABLE]


def build(name):
    """The torchvision model of a family, seeded random weights, no auxiliary heads."""
    torch.manual_seed(0)
    models = torchvision.models
    if name == "googlenet":
        return models.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=True)
    if name == "inception_v3":
        return models.inception_v3(weights=None, aux_logits=False, transform_input=False, init_weights=True)
    return getattr(models, name)(weights=None)


def make_more_nontrivial(model):
    """Seeded values for the parameters torchvision initialises to constants that
    make_parameters_nontrivial does not cover; freezes Swin V2's position bias (see the docstring)."""
    generator = torch.Generator().manual_seed(PARAMETER_SEED + 1)
    changed = collections.Counter()
    with torch.no_grad():
        for m in model.modules():
            # ViT's head is initialised to zero weights: its logits would be its bias alone.
            if isinstance(m, (nn.Linear, nn.Conv2d)) and not m.weight.any():
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) / fan_in ** 0.5)
                changed["zero weights"] += 1
            if isinstance(m, nn.LayerNorm):
                # ONNX holds epsilon as float32 (an attribute at opset 17, a constant at 13): use
                # that very value, as export_torchvision.py does for batch norm.
                m.eps = float(np.float32(m.eps))
            if isinstance(m, nn.LayerNorm) and m.elementwise_affine:
                m.weight.copy_(torch.empty(m.weight.shape).uniform_(0.5, 1.5, generator=generator))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=generator))
                changed["LayerNorm"] += 1
            if isinstance(m, nn.MultiheadAttention) and m.in_proj_bias is not None:
                m.in_proj_bias.copy_(0.01 * torch.randn(m.in_proj_bias.shape, generator=generator))
                changed["MultiheadAttention.in_proj_bias"] += 1
            if hasattr(m, "class_token") and isinstance(m.class_token, nn.Parameter):
                m.class_token.copy_(0.1 * torch.randn(m.class_token.shape, generator=generator))
                changed["class_token"] += 1
            if hasattr(m, "layer_scale") and isinstance(m.layer_scale, nn.Parameter):
                m.layer_scale.copy_(torch.empty(m.layer_scale.shape).uniform_(0.1, 0.5, generator=generator))
                changed["layer_scale"] += 1
            if hasattr(m, "logit_scale") and isinstance(m.logit_scale, nn.Parameter):
                m.logit_scale.zero_()
                changed["logit_scale"] += 1
        # EfficientNet's residual branches end in a batch norm with no activation: at calibrated
        # scale, 16 (B0) to 40 (V2-S) of them compound into logits of 1e2 to 1e4 and a chaotic
        # network (PyTorch's own f32 and f64 logits then differ by 8e-5 and 0.35); damping each
        # branch by 0.2 (the "zero-init residual" idea) keeps it at 6e-7.
        for m in model.modules():
            if type(m).__name__ in ("MBConv", "FusedMBConv") and getattr(m, "use_res_connect", False):
                bn = m.block[-1][1]
                bn.weight.mul_(0.2)
                bn.bias.mul_(0.2)
                changed["residual branch damped"] += 1
        for m in model.modules():
            if type(m).__name__ == "ShiftedWindowAttentionV2":
                m.register_buffer("frozen_relative_position_bias", m.get_relative_position_bias().detach().clone())
                m.get_relative_position_bias = (lambda mod=m: mod.frozen_relative_position_bias)
                changed["frozen_relative_position_bias"] += 1
    return dict(changed)


class FileGelu(nn.Module):
    """GELU as torch.onnx 1.13 writes it at opsets 13 and 17: (x * (Erf(x / c) + 1)) * 0.5 with c
    the float32 rounding of sqrt(2) (1.4142135381698608, not 1.4142135623730951), so that the
    float64 references compute the function the file holds (PyTorch's own GELU differs by 2e-8)."""

    SQRT2 = float(np.float32(np.sqrt(2.0)))

    def forward(self, x):
        return (x * (torch.erf(x / self.SQRT2) + 1.0)) * 0.5


ONE_SIXTH_F32 = float(np.float32(1.0 / 6.0))


class FileHardsigmoid(nn.Module):
    """Hardsigmoid as exported: ONNX HardSigmoid with alpha the float32 rounding of 1/6, beta 0.5."""

    def forward(self, x):
        return torch.clamp(x * ONE_SIXTH_F32 + 0.5, 0.0, 1.0)


class FileHardswish(nn.Module):
    """Hardswish as exported: before opset 14, x * HardSigmoid(x) (alpha float32(1/6)); from 14 on
    the HardSwish op, whose 1/6 is exact by its definition (PyTorch's own function). Set `opset`."""

    opset = 17

    def forward(self, x):
        if self.opset < 14:
            return x * torch.clamp(x * ONE_SIXTH_F32 + 0.5, 0.0, 1.0)
        return nn.functional.hardswish(x)


def swin_attention_with_file_scale():
    """torchvision's shifted_window_attention with its query scale (C // heads) ** -0.5 rounded to
    float32, as the exporter writes it (a Python float becomes a float32 constant of the file)."""
    import inspect
    import torchvision.models.swin_transformer as swin
    if getattr(swin.shifted_window_attention, "file_scale", False):
        return 0
    source = inspect.getsource(swin.shifted_window_attention)
    original = "q = q * (C // num_heads) ** -0.5"
    if original not in source:
        raise RuntimeError("torchvision's shifted_window_attention no longer scales q as expected")
    namespace = dict(vars(swin))
    namespace["np"] = np
    exec(source.replace(original, "q = q * float(np.float32((C // num_heads) ** -0.5))"), namespace)  # noqa: S102
    patched = namespace["shifted_window_attention"]
    patched.file_scale = True
    swin.shifted_window_attention = patched
    return 1


def match_file_constants(model):
    """Swaps the modules whose export bakes a float32 rounding of a PyTorch constant into the file
    for ones computing with that rounding (for the float64 references); returns what was swapped."""
    swapped = collections.Counter()
    for m in model.modules():
        # MaxViT's attention scales by feat_dim ** -0.5, a Python float: the file holds it in float32.
        if type(m).__name__ == "RelativePositionalMultiHeadAttention" and isinstance(getattr(m, "scale_factor", None), float):
            m.scale_factor = float(np.float32(m.scale_factor))
            swapped["attention scale"] += 1
        if type(m).__name__ == "ShiftedWindowAttention":
            swapped["attention scale"] += swin_attention_with_file_scale()
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.GELU and child.approximate == "none":
                setattr(parent, name, FileGelu())
                swapped["GELU"] += 1
            elif type(child) is nn.Hardsigmoid:
                setattr(parent, name, FileHardsigmoid())
                swapped["Hardsigmoid"] += 1
            elif type(child) is nn.Hardswish:
                setattr(parent, name, FileHardswish())
                swapped["Hardswish"] += 1
    return dict(swapped)


def nonrelu_module_types(model):
    return sorted({type(m).__name__ for m in model.modules() if isinstance(m, NONRELU_MODULES)})


def export_onnx(model, x, opset):
    import io
    buffer = io.BytesIO()
    # With no parameter requiring grad, nn.MultiheadAttention takes its fused inference path
    # (aten::_native_multi_head_attention), which torch.onnx 1.13 cannot export; the model is the
    # same function either way.
    for p in model.parameters():
        p.requires_grad_(True)
    try:
        torch.onnx.export(model, x, buffer, opset_version=opset, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    finally:
        for p in model.parameters():
            p.requires_grad_(False)
    return buffer.getvalue()


def onnx_summary(onnx_bytes):
    import onnx
    proto = onnx.load_from_string(onnx_bytes)
    onnx.checker.check_model(proto)
    ops = collections.Counter(n.op_type for n in proto.graph.node)
    params = 0
    for init in proto.graph.initializer:
        if init.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
            params += int(np.prod(init.dims)) if init.dims else 1
    first_nonrelu = next(((n.name, n.op_type) for n in proto.graph.node if n.op_type in NONRELU_ONNX_OPS), None)
    return dict(sorted(ops.items())), params, first_nonrelu


def signal(model, x, c, rule):
    """The signal at the input for class c of image 0 under `rule` at ReLU (others exact), [3,S,S]."""
    x = x.clone().requires_grad_(True)
    if rule is None:
        out = model(x)
        return torch.autograd.grad(out[0, c], x)[0][0], {}, out.detach()
    with relu_rule(model, rule) as patched:
        out = model(x)
        grad = torch.autograd.grad(out[0, c], x)[0][0]
    return grad, dict(patched.counter), out.detach()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def float64_references(name, model, x, x2, logits, c, relu_count):
    """(logits of x2 [2,1000], f32-vs-f64 logits rel L2, {rule: signal}, {rule: checks}) in float64."""
    xd, x2d = x.double(), x2.double()
    with torch.no_grad():
        logits64_b2 = model(x2d)
    logits64 = logits64_b2[:1]
    f32_vs_f64 = float((logits64 - logits.double()).norm() / logits64.norm())
    if f32_vs_f64 > 1e-4:
        raise RuntimeError(f"{name}: PyTorch f32 vs f64 logits rel L2 {f32_vs_f64}: the model is not the same function")
    # The gradient is plain autograd; the rule ReLU's "gradient" branch is checked against autograd
    # by export_torchvision.py, and not run again here (float64 passes of the big families take
    # minutes on 2 shared cores).
    plain, _, out_plain = signal(model, xd, c, None)
    if not torch.isfinite(plain).all() or float(plain.abs().max()) == 0.0:
        raise RuntimeError(f"{name}: the gradient is zero or not finite")
    signals = {"gradient": plain}
    checks = {"gradient": {"relu_calls": {}, "max_abs": float(plain.abs().max()), "rel_l2_vs_gradient": 0.0}}
    for rule in RULES[1:]:
        grad, counts, out = signal(model, xd, c, rule)
        calls = sum(counts.values())
        if calls != relu_count:
            raise RuntimeError(f"{name}: rule {rule} replaced {calls} ReLU calls ({counts}), the ONNX graph has "
                               f"{relu_count} Relu nodes")
        # An in-place ReLU whose side effect the model relied on would change the forward here.
        if not torch.equal(out, out_plain):
            raise RuntimeError(f"{name}: the forward pass with rule ReLUs differs from the stock one")
        if relu_count > 0 and torch.equal(grad, plain):
            raise RuntimeError(f"{name}: rule {rule} gave exactly the plain gradient: the patch did nothing")
        elif relu_count == 0 and not torch.equal(grad, plain):
            raise RuntimeError(f"{name}: no ReLU, yet rule {rule} differs from the gradient")
        if not torch.isfinite(grad).all() or float(grad.abs().max()) == 0.0:
            raise RuntimeError(f"{name}: rule {rule} gave a zero or non-finite signal")
        signals[rule] = grad
        checks[rule] = {"relu_calls": counts, "max_abs": float(grad.abs().max()),
                        "rel_l2_vs_gradient": float((grad - plain).norm() / plain.norm())}
    return logits64_b2, f32_vs_f64, signals, checks


def export_family(name, size, out_dir, opsets, force=False):
    dirs = {n: os.path.join(out_dir, f"{name}-opset{n}") for n in opsets}
    todo = [n for n in opsets if force or not os.path.exists(os.path.join(dirs[n], "manifest.json"))]
    if not todo:
        print(f"{name}: already exported", flush=True)
        return None
    started = time.perf_counter()
    model = build(name)
    pytorch_params = sum(p.numel() for p in model.parameters())
    norms = make_parameters_nontrivial(model, size)
    extra = make_more_nontrivial(model)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    nonrelu_modules = nonrelu_module_types(model)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(INPUT_SEED))
    x2 = torch.cat([x, torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(SECOND_IMAGE_SEED))])

    with torch.no_grad():
        logits_before = model(x)
    # Fold Conv -> BN pairs in PyTorch: the file then holds PyTorch's own folded weights.
    folded = fold_batchnorm(model, require_all=False) if norms else 0
    bn_left = sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    with torch.no_grad():
        logits = model(x)
    drift = float((logits - logits_before).abs().max())
    if drift > 1e-3 * max(1.0, float(logits.abs().max())):
        raise RuntimeError(f"{name}: folding BN changed the logits by {drift}")
    c = int(logits[0].argmax())
    setup_seconds = time.perf_counter() - started

    summaries = {}
    for n in todo:
        t0 = time.perf_counter()
        onnx_bytes = export_onnx(model, x, n)
        export_seconds = time.perf_counter() - t0
        ops, onnx_params, first_nonrelu = onnx_summary(onnx_bytes)
        if ops.get("BatchNormalization", 0) != bn_left:
            raise RuntimeError(f"{name} opset {n}: {bn_left} unfolded BatchNorm modules but "
                               f"{ops.get('BatchNormalization', 0)} BatchNormalization nodes (the exporter folded "
                               "something PyTorch did not)")
        os.makedirs(dirs[n], exist_ok=True)
        target = lambda f, n=n: os.path.join(dirs[n], f)
        write_atomically(target("model.onnx"), onnx_bytes)
        write_atomically(target("input.npy"), npy_bytes(x.numpy()))
        write_atomically(target("input_batch2.npy"), npy_bytes(x2.numpy()))
        write_atomically(target("logits.npy"), npy_bytes(logits.numpy()))
        write_atomically(target("class.txt"), f"{c}\n".encode())
        summaries[n] = dict(op_types=ops, onnx_parameters=onnx_params, onnx_bytes=len(onnx_bytes),
                            export_seconds=round(export_seconds, 2), first_nonrelu_node=first_nonrelu)
        del onnx_bytes
        gc.collect()
        print(f"{name} opset {n}: exported in {export_seconds:.1f} s, {summaries[n]['onnx_bytes'] / 1e6:.1f} MB",
              flush=True)

    # float64 references: the same weights, widened exactly.
    t0 = time.perf_counter()
    extra.update(match_file_constants(model))
    model = model.double()
    relu_nodes = {n: summaries[n]["op_types"].get("Relu", 0) for n in todo}
    if len(set(relu_nodes.values())) != 1:
        raise RuntimeError(f"{name}: Relu node counts differ between opsets: {relu_nodes}")
    relu_count = next(iter(relu_nodes.values()))
    # Hardswish is written differently before opset 14 (FileHardswish): one reference per variant.
    hardswish = [m for m in model.modules() if isinstance(m, FileHardswish)]
    variants = {}
    for n in todo:
        variants.setdefault(min(n, 14) if hardswish else 0, []).append(n)
    references = {}
    for key, members in variants.items():
        for m in hardswish:
            m.opset = members[0]
        references[key] = float64_references(name, model, x, x2, logits, c, relu_count)
        for n in members:
            references[n] = references[key]
    f32_vs_f64 = max(r[1] for r in references.values())
    signal_seconds = time.perf_counter() - t0

    all_relu = not nonrelu_modules and not any(
        op in NONRELU_ONNX_OPS for s in summaries.values() for op in s["op_types"])
    for n in todo:
        logits64_b2, _, signals, checks = references[n]
        logits64 = logits64_b2[:1]
        target = lambda f, n=n: os.path.join(dirs[n], f)
        write_atomically(target("logits.f64"), f64_bytes(logits64))
        write_atomically(target("logits_batch2.f64"), f64_bytes(logits64_b2))
        for rule, g in signals.items():
            write_atomically(target(f"{rule}.f64"), f64_bytes(g))
        s = summaries[n]
        manifest = {
            "family": name, "opset": n, "size": size, "top1_class": c, "top1_score": float(logits[0, c]),
            "all_relu": all_relu, "nonrelu_modules": nonrelu_modules,
            "nonrelu_onnx_ops": sorted(op for op in s["op_types"] if op in NONRELU_ONNX_OPS),
            "first_nonrelu_node": s["first_nonrelu_node"], "relu_nodes": relu_count,
            "op_types": s["op_types"], "pytorch_parameters": pytorch_params,
            "onnx_parameters": s["onnx_parameters"], "onnx_bytes": s["onnx_bytes"],
            "batchnorm_modules": norms, "batchnorm_folded": folded, "batchnorm_nodes": bn_left,
            "made_nontrivial": extra, "logits_f32_vs_f64_rel_l2": references[n][1],
            "fold_logit_drift": drift, "signals": checks,
            "signals_meaning": "rules at ReLU, exact derivative elsewhere" + (
                "" if all_relu else " (what --nonrelu gradient computes)"),
            "export_seconds": s["export_seconds"], "setup_seconds": round(setup_seconds, 2),
            "signal_seconds": round(signal_seconds, 2), "peak_rss_mb": round(peak_rss_mb()),
            "torch_version": torch.__version__, "torchvision_version": torchvision.__version__,
            "weights": "random, torch.manual_seed(0)",
            "input": f"standard normal, torch.Generator seed {INPUT_SEED} (second image {SECOND_IMAGE_SEED})",
        }
        write_atomically(target("manifest.json"), (json.dumps(manifest, indent=2) + "\n").encode())
    total = time.perf_counter() - started
    print(f"{name}: class {c}, all_relu {all_relu}, {relu_count} Relu, f32 vs f64 {f32_vs_f64:.2e}, "
          f"signals {signal_seconds:.1f} s, total {total:.1f} s, peak RSS {peak_rss_mb():.0f} MB", flush=True)
    del model, references
    gc.collect()
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir")
    names = [f for f, _ in available_families()]
    parser.add_argument("--families", default=",".join(names), help="comma-separated; known: " + ",".join(names))
    parser.add_argument("--opsets", default=",".join(map(str, OPSETS)))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force", action="store_true", help="export again what is already there")
    parser.add_argument("--list", action="store_true", help="print the families this torchvision has and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(names))
        return
    torch.set_num_threads(args.threads)
    sizes = dict(available_families())
    wanted = [f for f in args.families.split(",") if f]
    unknown = [f for f in wanted if f not in sizes]
    if unknown:
        sys.exit(f"unknown or unavailable families {', '.join(unknown)}; known: {', '.join(names)}")
    opsets = [int(o) for o in args.opsets.split(",") if o]
    os.makedirs(args.out_dir, exist_ok=True)
    failed = []
    for f in wanted:
        try:
            export_family(f, sizes[f], args.out_dir, opsets, args.force)
        except Exception as e:  # one family's failure must not stop the others; reported, exit 1
            print(f"{f}: FAILED: {type(e).__name__}: {e}", flush=True)
            failed.append(f)
        gc.collect()
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
