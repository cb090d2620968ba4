#!/usr/bin/python3
"""Time PyTorch on the same work as deepinside, for the README's comparison.

  forward       model(x) under torch.no_grad()
  saliency      forward + torch.autograd.grad of each image's top-1 score w.r.t. the input
  saliency-all  three times forward + backward, with the gradient, DeconvNet and guided-backprop
                ReLU rules (as Captum's Saliency, Deconvolution and GuidedBackprop do)

Parameters are frozen (requires_grad False), the model is in eval mode. Weights do not matter for
timing: torchvision models get seeded random weights; --arch fashion rebuilds the bundled ConvNet
from tools/train_fashion_mnist.py and loads the initializers of --onnx unless --onnx-free.

Prints, each on its own line: the configuration, `torch <version> threads <n>`, `gflop <n>` (forward
multiply-adds x2 of Conv and Linear layers, for the whole batch), `median <ms> ms`, min/max/spread,
and `peak_rss_mb <MB>`: the process's peak resident memory (getrusage; MB = 10^6 bytes, as
`deepinside bench` prints it), the interpreter and torch's libraries included.

Usage: /usr/bin/python3 tools/bench_pytorch.py --arch vgg16 --size 224 --batch 1 \\
           --what saliency --iters 10 --threads 2
"""

import argparse
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS_DIR)

import export_torchvision  # noqa: E402  (sibling script: model builder and ReLU rules)


def build_model(args):
    """Returns (model, input shape without batch)."""
    if args.arch == "fashion":
        import train_fashion_mnist as fm
        if args.onnx_free:
            torch.manual_seed(0)
            model = fm.FashionConvNet()
        else:
            import onnx
            model = fm.model_from_onnx(onnx.load(args.onnx))
        return model, (1, 28, 28)
    return export_torchvision.build(args.arch), (3, args.size, args.size)


def count_gflop(model, x):
    """Forward GFLOP (2 x multiply-adds) of Conv2d and Linear layers, via forward hooks."""
    macs = [0]

    def conv_hook(module, inputs, output):
        kh, kw = module.kernel_size
        macs[0] += output.numel() * (module.in_channels // module.groups) * kh * kw

    def linear_hook(module, inputs, output):
        macs[0] += output.numel() * module.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return 2.0 * macs[0] / 1e9


def make_step(model, x, what):
    def forward():
        with torch.no_grad():
            return model(x)

    def saliency_once():
        xg = x.detach().requires_grad_(True)
        out = model(xg)
        top1 = out.detach().argmax(1, keepdim=True)
        # Images in a batch are independent in eval mode: the sum's gradient is each image's own.
        score = out.gather(1, top1).sum()
        return torch.autograd.grad(score, xg)[0]

    def saliency_all():
        maps = []
        for rule in export_torchvision.RULES:
            with export_torchvision.relu_rule(model, rule):
                maps.append(saliency_once())
        return maps

    return {"forward": forward, "saliency": saliency_once, "saliency-all": saliency_all}[what]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", required=True,
                        help="fashion, or a torchvision name known to export_torchvision.py")
    parser.add_argument("--onnx", default=os.path.join(TOOLS_DIR, "..", "models",
                                                       "fashion-mnist-convnet.onnx"),
                        help="weights for --arch fashion")
    parser.add_argument("--onnx-free", action="store_true",
                        help="--arch fashion with random weights, without reading the ONNX file")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--what", choices=["forward", "saliency", "saliency-all"],
                        default="forward")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if args.iters < 1 or args.batch < 1 or args.size < 1:
        sys.exit("--iters, --batch and --size must be positive")

    torch.set_num_threads(args.threads)
    model, shape = build_model(args)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    if args.what == "saliency-all" and not export_torchvision.uses_only_relu(model):
        sys.exit(f"{args.arch}: saliency-all needs a network whose only nonlinearity is ReLU")
    x = torch.randn(args.batch, *shape, generator=torch.Generator().manual_seed(1))

    gflop = count_gflop(model, x)
    step = make_step(model, x, args.what)
    for _ in range(args.warmup):
        step()
    times_ms = []
    for _ in range(args.iters):
        start = time.perf_counter()
        step()
        times_ms.append((time.perf_counter() - start) * 1e3)

    median = statistics.median(times_ms)
    print(f"arch {args.arch} size {shape[-1]} batch {args.batch} what {args.what} "
          f"iters {args.iters} warmup {args.warmup}")
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
    print(f"gflop {gflop:.4f}")
    print(f"median {median:.3f} ms")
    print(f"min {min(times_ms):.3f} ms")
    print(f"max {max(times_ms):.3f} ms")
    print(f"spread {(max(times_ms) - min(times_ms)) / median * 100:.1f} %")
    # Linux reports ru_maxrss in KiB.
    print(f"peak_rss_mb {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6:.1f}")


if __name__ == "__main__":
    main()
