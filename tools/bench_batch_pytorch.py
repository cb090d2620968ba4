#!/usr/bin/python3
"""PyTorch's side of tools/bench_batch.sh: batched saliency maps of a folder of pictures, end to end.

Two subcommands.

  prepare OUT_DIR [--resnet-onnx FILE]
      Writes, once (existing files are kept), the benchmark's inputs:
        OUT_DIR/fashion/NNNN.png   the first 256 Fashion-MNIST test images (28x28 grey), from
                                   Debian's dataset-fashion-mnist (tools/train_fashion_mnist.py reads it)
        OUT_DIR/photos/NNNN.jpg    64 deterministic synthetic photo-like RGB pictures, 400x300
                                   (no photos are shipped with the project or found on this machine)
        OUT_DIR/fashion.pt         state dict of tools/train_fashion_mnist.py's FashionConvNet with the
                                   initializers of models/fashion-mnist-convnet.onnx
        OUT_DIR/resnet18.pt        state dict of torchvision's resnet18 with the initializers of
                                   --resnet-onnx (tools/export_torchvision.py's resnet18_bn), or, when
                                   that file is missing, built as export_torchvision.py builds it
        OUT_DIR/resnet18.onnx      the same weights exported with the batch axis open, batch norm folded as
                                   torch.onnx.export does by default (the
                                   resnet18_bn file's batch is fixed at 1, and deepinside batches
                                   only what the file lets it)
      and checks that each .pt reproduces the ONNX file's reference logits where one exists, so that
      both sides compute on the same weights.

  run --model fashion|resnet18 --weights FILE.pt --images DIR --out DIR --batch N
      --methods gradient[,deconvnet,guided] --threads T [--onnx FILE] [--json FILE]
      What `deepinside saliency MODEL DIR --method ... --out DIR/ --no-overlay` does, in PyTorch:
      load the model; decode every picture with PIL and preprocess it as deepinside does (fashion: the
      grey pixels scaled by 1/255 and normalised with the ONNX file's deepinside.mean/std; resnet18:
      torchvision's Resize(256) + CenterCrop(224) + ToTensor + ImageNet Normalize, which is
      deepinside's --preset imagenet); per batch of N pictures, for each method one forward pass with
      requires_grad input and one backward pass of the sum of each image's top-1 score (the images of
      a batch are independent in eval mode, so each gets its own gradient); the DeconvNet and guided
      rules swap every ReLU for a custom autograd Function (export_torchvision.relu_rule); the map is
      max over channels of |signal|; per image and method it writes STEM.METHOD.CLASS.grad.npy (the
      signal [C,H,W]), STEM.METHOD.CLASS.npy (the map [H,W]) and STEM.METHOD.CLASS.png (the map as an
      inferno heatmap clipped at its 99.5th percentile of |map|), as deepinside does (with one method
      the names are STEM.grad.npy, STEM.npy and STEM.png, as deepinside's).
      Prints `seconds_after_import S` (the run without the interpreter's start and `import torch`) and
      `peak_rss_kib K` (resource.getrusage).

  compare OURS_DIR PYTORCH_DIR
      Checks that both sides did the same work: the same file names (so the same top-1 classes when
      the names carry them), and per map file (.npy, not .grad.npy) the largest difference relative to
      the map's largest value. Prints one line: files, median and largest relative difference, and
      how many maps differ by more than 1e-3 (piecewise-linear networks: a float32 rounding that flips
      one ReLU or max-pool decision changes a few pixels of the map, not its scale).
"""

import argparse
import os
import resource
import sys
import time

T_PROCESS = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(TOOLS_DIR)
sys.path.insert(0, TOOLS_DIR)

PHOTO_COUNT = 64
FASHION_COUNT = 256
PHOTO_SIZE = (400, 300)  # width, height: larger than 224 and not square, so --preset imagenet applies
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]

# Inferno at 9 evenly spaced points (matplotlib's table), interpolated linearly to 256 entries.
_INFERNO_POINTS = np.array([
    [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
    [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164]], dtype=np.float64)
INFERNO = np.stack([np.interp(np.linspace(0, 8, 256), np.arange(9), _INFERNO_POINTS[:, c])
                    for c in range(3)], axis=1).round().astype(np.uint8)


# ---------------------------------------------------------------------------------------------- prepare

def synthetic_photo(index):
    """A deterministic photo-like picture: a sky/ground gradient, blurred blobs and shapes, texture."""
    w, h = PHOTO_SIZE
    rng = np.random.default_rng(1000 + index)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    top, bottom = rng.uniform(40, 230, 3), rng.uniform(20, 200, 3)
    horizon = rng.uniform(0.3, 0.7) * h
    t = np.clip((yy - horizon) / (0.25 * h) + 0.5, 0, 1)[..., None]
    img = (1 - t) * top + t * bottom
    for _ in range(rng.integers(3, 8)):  # soft ellipses ("objects")
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(15, 120), rng.uniform(15, 100)
        d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
        alpha = (1 / (1 + np.exp(np.minimum((d - 1) * 6, 60))))[..., None]
        img = (1 - alpha) * img + alpha * rng.uniform(0, 255, 3)
    for _ in range(rng.integers(1, 4)):  # hard-edged rectangles
        x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
        x1, y1 = x0 + rng.integers(10, 120), y0 + rng.integers(10, 90)
        img[y0:y1, x0:x1] = 0.3 * img[y0:y1, x0:x1] + 0.7 * rng.uniform(0, 255, 3)
    freq = rng.uniform(0.02, 0.2)
    img += 12 * np.sin(freq * xx + rng.uniform(0, 6))[..., None] * np.cos(freq * 0.7 * yy)[..., None]
    img += rng.normal(0, 6, img.shape)  # sensor noise
    return np.clip(img, 0, 255).astype(np.uint8)


def onnx_state(path):
    import onnx
    from onnx import numpy_helper
    proto = onnx.load(path)
    return proto, {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}


def state_from_onnx(model, initializers, source):
    """The model's state dict with every parameter and buffer taken from the ONNX initializers."""
    state = model.state_dict()
    for name in state:
        if name.endswith("num_batches_tracked"):
            continue
        if name not in initializers:
            raise KeyError(f"{source} has no initializer named {name}")
        if tuple(initializers[name].shape) != tuple(state[name].shape):
            raise ValueError(f"{source}: initializer {name} has shape {initializers[name].shape}, "
                             f"expected {tuple(state[name].shape)}")
        state[name] = torch.from_numpy(initializers[name].copy())
    return state


def prepare(args):
    from PIL import Image
    import train_fashion_mnist as fm
    out = args.out_dir
    fashion_dir, photo_dir = os.path.join(out, "fashion"), os.path.join(out, "photos")
    os.makedirs(fashion_dir, exist_ok=True)
    os.makedirs(photo_dir, exist_ok=True)

    if len([f for f in os.listdir(fashion_dir) if f.endswith(".png")]) != FASHION_COUNT:
        images, _ = fm.load_split("t10k")
        for i in range(FASHION_COUNT):
            Image.fromarray(images[i], mode="L").save(os.path.join(fashion_dir, f"{i:04d}.png"))
        print(f"prepare: {FASHION_COUNT} Fashion-MNIST test images -> {fashion_dir}")
    if len([f for f in os.listdir(photo_dir) if f.endswith(".jpg")]) != PHOTO_COUNT:
        for i in range(PHOTO_COUNT):
            Image.fromarray(synthetic_photo(i), mode="RGB").save(
                os.path.join(photo_dir, f"{i:04d}.jpg"), quality=90)
        print(f"prepare: {PHOTO_COUNT} synthetic {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEGs -> {photo_dir}")

    fashion_pt = os.path.join(out, "fashion.pt")
    if not os.path.exists(fashion_pt):
        _, inits = onnx_state(args.fashion_onnx)
        model = fm.FashionConvNet()
        model.load_state_dict(state_from_onnx(model, inits, args.fashion_onnx))
        torch.save(model.state_dict(), fashion_pt)
        print(f"prepare: {fashion_pt} from {args.fashion_onnx}")

    resnet_pt = os.path.join(out, "resnet18.pt")
    if not os.path.exists(resnet_pt):
        import torchvision
        import export_torchvision as et
        if os.path.exists(args.resnet_onnx):
            _, inits = onnx_state(args.resnet_onnx)
            model = torchvision.models.resnet18(weights=None)
            model.load_state_dict(state_from_onnx(model, inits, args.resnet_onnx))
            source = args.resnet_onnx
        else:  # the very construction of export_torchvision.py's resnet18_bn
            model = et.build("resnet18_bn")
            et.make_parameters_nontrivial(model, 224)
            source = "export_torchvision.build('resnet18_bn')"
        model.eval()
        ref_dir = os.path.dirname(args.resnet_onnx)
        x_path, y_path = os.path.join(ref_dir, "input.npy"), os.path.join(ref_dir, "logits.npy")
        if os.path.exists(x_path) and os.path.exists(y_path):
            with torch.no_grad():
                y = model(torch.from_numpy(np.load(x_path))).numpy()
            ref = np.load(y_path)
            diff = float(np.abs(y - ref).max())
            if diff > 1e-4 * max(1.0, float(np.abs(ref).max())):
                sys.exit(f"prepare: resnet18 from {source} differs from its exporter's "
                         f"logits by {diff}: not the same weights")
            print(f"prepare: resnet18 reproduces {y_path} within {diff:.2e}")
        torch.save(model.state_dict(), resnet_pt)
        print(f"prepare: {resnet_pt} from {source}")

    # tools/export_torchvision.py's resnet18_bn has its batch axis fixed at 1, and deepinside refuses
    # --batch with such a file: export the same weights again with the batch axis open, the way users
    # export: torch.onnx.export's defaults in eval mode, which fold batch norm into the convolutions.
    # PyTorch's side runs the unfolded model; the folding's float32 rounding is far below what the
    # maps' comparison reports.
    resnet_onnx = os.path.join(out, "resnet18.onnx")
    if not os.path.exists(resnet_onnx):
        import io
        import onnx
        import torchvision
        from atomic_write import write_atomically
        model = torchvision.models.resnet18(weights=None)
        model.load_state_dict(torch.load(resnet_pt))
        model.eval()
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        buffer = io.BytesIO()
        torch.onnx.export(model, x, buffer, opset_version=13, input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        proto = onnx.load_from_string(buffer.getvalue())
        onnx.checker.check_model(proto)
        if any(n.op_type == "BatchNormalization" for n in proto.graph.node):
            sys.exit(f"prepare: {resnet_onnx}: the export kept BatchNormalization nodes; expected them folded")
        write_atomically(resnet_onnx, buffer.getvalue())
        print(f"prepare: {resnet_onnx} (batch axis open, the weights of {resnet_pt})")


# -------------------------------------------------------------------------------------------------- run

def fashion_normaliser(onnx_path):
    """(mean, std, scale) from the bundled model's deepinside.* metadata, read without onnx.load's
    cost of parsing the weights twice: the file is small, so onnx.load is fine here."""
    import onnx
    meta = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    return float(meta["deepinside.mean"]), float(meta["deepinside.std"]), float(meta["deepinside.scale"])


def heatmap_png(m, path, image_module):
    a = np.abs(m)
    top = float(np.percentile(a, 99.5))
    if top <= 0:
        top = float(a.max()) or 1.0
    idx = np.clip(a / top * 255.0, 0, 255).astype(np.uint8)
    image_module.fromarray(INFERNO[idx], mode="RGB").save(path)


def run(args):
    t_start = time.perf_counter()
    from PIL import Image
    torch.set_num_threads(args.threads)
    methods = [m for m in args.methods.split(",") if m]
    import export_torchvision as et  # relu_rule: the DeconvNet / guided ReLU swap

    if args.model == "fashion":
        import train_fashion_mnist as fm
        model = fm.FashionConvNet()
        mean, std, scale = fashion_normaliser(args.onnx)

        def load(path):
            pixels = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
            return torch.from_numpy((pixels * np.float32(scale) - np.float32(mean)) / np.float32(std))[None]
    else:
        import torchvision
        import torchvision.transforms as T
        model = torchvision.models.resnet18(weights=None)
        transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                               T.Normalize(IMAGENET_MEAN, IMAGENET_STD)])

        def load(path):
            return transform(Image.open(path).convert("RGB"))
    model.load_state_dict(torch.load(args.weights))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)

    paths = sorted(os.path.join(args.images, f) for f in os.listdir(args.images)
                   if f.lower().endswith((".png", ".jpg", ".jpeg")))
    os.makedirs(args.out, exist_ok=True)
    files = 0
    for first in range(0, len(paths), args.batch):
        chunk = paths[first:first + args.batch]
        x = torch.stack([load(p) for p in chunk])
        for method in methods:
            xg = x.clone().requires_grad_(True)
            if method == "gradient":
                out = model(xg)
                top1 = out.detach().argmax(1, keepdim=True)
                out.gather(1, top1).sum().backward()
            else:
                with et.relu_rule(model, method):
                    out = model(xg)
                    top1 = out.detach().argmax(1, keepdim=True)
                    out.gather(1, top1).sum().backward()
            signal = xg.grad
            maps = signal.abs().amax(dim=1)
            signal_np, maps_np, classes = signal.numpy(), maps.numpy(), top1[:, 0].tolist()
            for b, path in enumerate(chunk):
                # deepinside's names: STEM.METHOD.CLASS.* when there are several methods, else STEM.*
                stem = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0])
                if len(methods) > 1:
                    stem += f".{method}.{classes[b]}"
                np.save(stem + ".grad.npy", signal_np[b])
                np.save(stem + ".npy", maps_np[b])
                heatmap_png(maps_np[b], stem + ".png", Image)
                files += 3
    t_end = time.perf_counter()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"pytorch: {len(paths)} images, {len(methods)} method(s), batch {args.batch}, "
          f"{files} files, threads {torch.get_num_threads()}")
    print(f"seconds_after_import {t_end - t_start:.3f}")
    print(f"seconds_in_process {t_end - T_PROCESS:.3f}")
    print(f"peak_rss_kib {peak_kib}")


def compare(args):
    ours = sorted(f for f in os.listdir(args.ours) if not f.startswith("."))
    theirs = sorted(f for f in os.listdir(args.theirs) if not f.startswith("."))
    if ours != theirs:
        only = sorted(set(ours) ^ set(theirs))
        sys.exit(f"compare: the file names differ ({len(only)} on one side only, e.g. {only[:3]})")
    rel = []
    for f in ours:
        if f.endswith(".npy") and not f.endswith(".grad.npy"):
            a, b = np.load(os.path.join(args.ours, f)), np.load(os.path.join(args.theirs, f))
            if a.shape != b.shape:
                sys.exit(f"compare: {f}: shape {a.shape} against {b.shape}")
            rel.append(float(np.abs(a - b).max() / max(float(np.abs(b).max()), 1e-30)))
    rel = np.array(rel)
    print(f"{len(ours)} files, same names; {len(rel)} maps: relative difference median {np.median(rel):.1e}, "
          f"max {rel.max():.1e}, {(rel > 1e-3).sum()} above 1e-3")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("out_dir")
    p.add_argument("--fashion-onnx", default=os.path.join(ROOT, "models", "fashion-mnist-convnet.onnx"))
    p.add_argument("--resnet-onnx", default=os.path.join(ROOT, "build", "torchvision", "resnet18_bn",
                                                         "model.onnx"))
    r = sub.add_parser("run")
    r.add_argument("--model", choices=["fashion", "resnet18"], required=True)
    r.add_argument("--weights", required=True)
    r.add_argument("--onnx", default=os.path.join(ROOT, "models", "fashion-mnist-convnet.onnx"),
                   help="fashion: the ONNX file whose metadata holds the normaliser")
    r.add_argument("--images", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--batch", type=int, required=True)
    r.add_argument("--methods", default="gradient")
    r.add_argument("--threads", type=int, default=2)
    c = sub.add_parser("compare")
    c.add_argument("ours")
    c.add_argument("theirs")
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args)
    elif args.command == "compare":
        compare(args)
    else:
        if args.batch < 1:
            sys.exit("--batch must be positive")
        run(args)


if __name__ == "__main__":
    main()
