#!/usr/bin/python3
"""The PyTorch side of tools/bench_class_model.sh: the class model ascent of `deepinside class-model`.

One batch of K images (one per class), plain gradient ascent with a fixed step on the unnormalised
scores with an L2 penalty, exactly as lib/methods/class_model.cpp does it:

    x <- x * (1 - 2 lr l2) + lr * d(sum_k S_{c_k}(x_k)) / dx     (zero start: x = 0)

(Images of a batch are independent in eval mode, so the gradient of the sum is each image's own.)
The model is torchvision's, built and given parameters exactly as tools/export_torchvision.py does
before exporting build/bench/<arch>/model.onnx (seeded, so the same weights as the ONNX file), in eval
mode, parameters frozen. The timed span is what deepinside's PREFIX.json reports as time_s.ascent:
every step plus the final forward pass for the end scores; building the model is not timed.

Prints: `torch <version> threads <n>`, `ascent <s> s`, `per_step <ms> ms`, and the start and end
score of each class.

Usage: /usr/bin/python3 tools/bench_class_model.py --arch vgg16 --size 224 --classes 0,...,9 \\
           --steps 200 --lr 0.1 --l2 0.05 --threads 2
"""

import argparse
import os
import sys
import time

import torch

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, TOOLS_DIR)

import export_torchvision  # noqa: E402  (sibling script: the exported models' builder)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="vgg16")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--classes", default="0,1,2,3,4,5,6,7,8,9")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--l2", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model = export_torchvision.build(args.arch)
    export_torchvision.make_parameters_nontrivial(model, args.size)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    classes = torch.tensor([int(c) for c in args.classes.split(",")]).view(-1, 1)
    x = torch.zeros(len(classes), 3, args.size, args.size)
    decay = 1.0 - 2.0 * args.lr * args.l2

    start = time.perf_counter()
    first = None
    for _ in range(args.steps):
        xg = x.requires_grad_(True)
        scores = model(xg)
        if first is None:
            first = scores.detach().gather(1, classes).flatten()
        (grad,) = torch.autograd.grad(scores.gather(1, classes).sum(), xg)
        with torch.no_grad():
            x = x.detach().mul_(decay).add_(grad, alpha=args.lr)
    with torch.no_grad():
        end = model(x).gather(1, classes).flatten()
    seconds = time.perf_counter() - start

    print(f"torch {torch.__version__} threads {torch.get_num_threads()}")
    print(f"ascent {seconds:.3f} s")
    print(f"per_step {1e3 * seconds / max(args.steps, 1):.1f} ms")
    if first is not None:
        print("score_start " + " ".join(f"{v:.4f}" for v in first.tolist()))
    print("score_end " + " ".join(f"{v:.4f}" for v in end.tolist()))


if __name__ == "__main__":
    main()
