#!/usr/bin/python3
"""Train a ConvNet of the paper's kind on the shapes data set (tools/make_shapes_dataset.py), labels only.

Conv3x3-ReLU-MaxPool2 blocks, then FC-ReLU and a final FC giving unnormalised class scores; no batch
norm, no dropout. Masks, boxes and backgrounds of the data set are never read. Trains
deterministically on the CPU (torch.manual_seed, use_deterministic_algorithms, a fixed thread count),
with random flips and quarter turns of the images (the generator's distribution is invariant to
them), and exports ONNX (opset 13, input "input" [N,3,S,S] with a dynamic batch, output "logits"
[N,classes]). The normalisation stays outside the graph, value = (pixel * scale - mean[c]) / std[c]
with the per-channel mean and std of the training images, recorded in the ONNX metadata_props
(deepinside.mean, deepinside.std, deepinside.scale, deepinside.channel_order, deepinside.labels) as
tools/train_fashion_mnist.py does. Writes, beside --out:

  STEM.onnx         the model (at most 5 MB)
  STEM.labels.txt   class names, one per line, in output order
  STEM.json         data set (seed, counts, generator version, labels digests), accuracies (train,
                    test, test difficult / not difficult, per class), epochs, seed, threads, time,
                    torch version, the command

Usage: /usr/bin/python3 tools/train_shapes.py DATASET_DIR --out models/shapes-convnet.onnx \
           [--epochs 18] [--seed 0] [--threads 1]

The committed models/shapes-convnet.onnx: `tools/make_shapes_dataset.py build/shapes` (seed 0, 20000
train and 2000 test images of 96 px), then `tools/train_shapes.py build/shapes --out
models/shapes-convnet.onnx --threads 2` (about 15 minutes on 2 cores). The same command on the same
data gives the same bytes; another thread count may round differently (oneDNN's reductions).
"""

import argparse
import hashlib
import io
import json
import os
import shlex
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import write_atomically  # noqa: E402  (sibling module)

PIXEL_SCALE = 1.0 / 255.0
MAX_BYTES = 5 * 1024 * 1024


DEFAULT_LAYERS = "32:5/2,P,64,64,P,128,P,256,G"


class ShapesConvNet(nn.Module):
    """Conv-ReLU layers and max pools from a spec, then FC(hidden)-ReLU and FC(classes).

    The spec is a comma-separated list: "C" is a 3x3 convolution (stride 1, padding 1) with C output
    channels followed by ReLU, "C:K/S" a KxK convolution with stride S (padding K//2) and ReLU, "P"
    a 2x2 max pool (stride 2), "G" a max pool over the whole remaining map (a MaxPool whose window
    is the map), which must come last. The default, "32:5/2,P,64,64,P,128,P,256,G", starts like
    Zeiler and Fergus's and the paper's nets (a strided first convolution, then max pooling).

    The global max pool makes the class evidence independent of where the object lies: with a fully
    connected layer over the spatial map, a pilot on 3000 images stayed at chance after 6 epochs.
    """

    def __init__(self, size, classes, layers=DEFAULT_LAYERS, hidden=128):
        super().__init__()
        self.size, self.spec, self.hidden = size, layers, hidden
        self.steps = []          # ("conv", index) or ("pool", window)
        self.convs = nn.ModuleList()
        self.parts = []
        side, c_in = size, 3
        tokens = [t.strip() for t in layers.split(",")]
        if not tokens or tokens[-1] != "G" or tokens.count("G") != 1:
            raise ValueError(f"layer spec {layers!r} must end with its only G")
        for token in tokens:
            if token == "P":
                if side % 2:
                    raise ValueError(f"layer spec {layers!r}: max pool of an odd map ({side})")
                self.steps.append(("pool", 2))
                self.parts.append("maxpool2")
                side //= 2
            elif token == "G":
                self.steps.append(("pool", side))
                self.parts.append(f"maxpool{side} (global)")
                side = 1
            else:
                channels, _, rest = token.partition(":")
                kernel, stride = (int(v) for v in rest.split("/")) if rest else (3, 1)
                conv = nn.Conv2d(c_in, int(channels), kernel, stride=stride, padding=kernel // 2)
                self.steps.append(("conv", len(self.convs)))
                self.convs.append(conv)
                self.parts.append(f"conv{kernel}x{kernel}/{stride}({c_in}->{channels})-ReLU")
                side = (side + 2 * (kernel // 2) - kernel) // stride + 1
                c_in = int(channels)
        self.fc1 = nn.Linear(c_in, hidden)
        self.fc2 = nn.Linear(hidden, classes)
        self.parts += [f"FC({c_in}->{hidden})-ReLU", f"FC({hidden}->{classes})"]
        # He initialisation: without batch norm, PyTorch's default (uniform, gain sqrt(1/3)) lets the
        # signal shrink layer by layer.
        for layer in list(self.convs) + [self.fc1]:
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
        nn.init.xavier_uniform_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x):
        for kind, arg in self.steps:
            x = F.relu(self.convs[arg](x)) if kind == "conv" else F.max_pool2d(x, arg)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    def describe(self):
        return ", ".join(self.parts)


def load_split(dataset, split, size):
    """uint8 images [N,3,S,S] and int64 labels [N], from labels.json (labels only)."""
    with open(os.path.join(dataset, split, "labels.json")) as f:
        entries = json.load(f)
    images = np.empty((len(entries), 3, size, size), dtype=np.uint8)
    for i, e in enumerate(entries):
        with Image.open(os.path.join(dataset, split, e["file"])) as im:
            a = np.asarray(im.convert("RGB"))
        if a.shape != (size, size, 3):
            raise ValueError(f"{split}/{e['file']}: shape {a.shape}, expected {(size, size, 3)}")
        images[i] = a.transpose(2, 0, 1)
    labels = np.array([e["class"] for e in entries], dtype=np.int64)
    difficult = np.array([bool(e.get("difficult", False)) for e in entries])
    return torch.from_numpy(images), torch.from_numpy(labels), difficult


def normalise(x_u8, mean, std):
    return (x_u8.float() * PIXEL_SCALE - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def evaluate(model, x_u8, mean, std, batch=500):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, x_u8.shape[0], batch):
            out.append(model(normalise(x_u8[i:i + batch], mean, std)))
    return torch.cat(out)


def augment(xb, generator):
    """Per image: a random horizontal flip, then a random number of quarter turns."""
    flip = torch.rand(xb.shape[0], generator=generator) < 0.5
    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
    turns = torch.randint(0, 4, (xb.shape[0],), generator=generator)
    out = xb.clone()
    for k in (1, 2, 3):
        sel = turns == k
        if bool(sel.any()):
            out[sel] = torch.rot90(xb[sel], k, (2, 3))
    return out


def train(model, x_u8, y, mean, std, epochs, seed, batch_size, lr, warmup, x_test, y_test):
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (x_u8.shape[0] + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, epochs=epochs,
                                                    steps_per_epoch=steps_per_epoch,
                                                    pct_start=warmup)
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(x_u8.shape[0], generator=generator)
        total_loss, correct = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb = augment(normalise(x_u8[idx], mean, std), generator)
            yb = y[idx]
            optimiser.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            loss.backward()
            optimiser.step()
            scheduler.step()
            total_loss += float(loss) * xb.shape[0]
            correct += int((logits.argmax(1) == yb).sum())
        seconds = time.perf_counter() - start
        test_acc = float((evaluate(model, x_test, mean, std).argmax(1) == y_test).float().mean())
        print(f"epoch {epoch + 1}/{epochs}: loss {total_loss / x_u8.shape[0]:.4f}, train (augmented) "
              f"{correct / x_u8.shape[0]:.4f}, test {test_acc:.4f} ({seconds:.1f} s)", flush=True)


def export_onnx(model, size, mean, std, classes):
    import onnx
    model.eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 3, size, size), buffer, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {
        "deepinside.mean": ",".join(repr(float(m)) for m in mean),
        "deepinside.std": ",".join(repr(float(s)) for s in std),
        "deepinside.scale": repr(PIXEL_SCALE),
        "deepinside.channel_order": "RGB",
        "deepinside.labels": ",".join(classes),
    })
    proto.doc_string = ("Shapes ConvNet trained by tools/train_shapes.py on tools/make_shapes_dataset.py "
                        "images (labels only); input (pixel*scale-mean[c])/std[c], RGB, output "
                        "unnormalised class scores")
    onnx.checker.check_model(proto)
    return proto


def model_from_onnx(proto, template):
    """A copy of template with the weights stored in the ONNX initializers."""
    import copy
    from onnx import numpy_helper
    initializers = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    rebuilt = copy.deepcopy(template)
    state = rebuilt.state_dict()
    for name in state:
        if name not in initializers:
            raise KeyError(f"exported ONNX has no initializer named {name}")
        if tuple(initializers[name].shape) != tuple(state[name].shape):
            raise ValueError(f"initializer {name} has shape {initializers[name].shape}")
        state[name] = torch.from_numpy(initializers[name].copy())
    rebuilt.load_state_dict(state)
    return rebuilt.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    parser.add_argument("--out", default="models/shapes-convnet.onnx")
    parser.add_argument("--epochs", type=int, default=18)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    parser.add_argument("--warmup", type=float, default=0.15,
                        help="share of the steps rising to the peak learning rate (one-cycle)")
    parser.add_argument("--layers", default=DEFAULT_LAYERS,
                        help="conv / pool spec, see ShapesConvNet (default %(default)s)")
    parser.add_argument("--hidden", type=int, default=128, help="units of the hidden FC layer")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if not args.out.endswith(".onnx"):
        sys.exit("--out must end with .onnx")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    with open(os.path.join(args.dataset, "manifest.json")) as f:
        dataset_manifest = json.load(f)
    with open(os.path.join(args.dataset, "classes.txt")) as f:
        classes = [line.rstrip("\n") for line in f if line.strip()]
    if any("," in c for c in classes):
        sys.exit("class names must not contain commas (deepinside.labels is comma-separated)")
    size = int(dataset_manifest["size"])

    start = time.perf_counter()
    x_train, y_train, _ = load_split(args.dataset, "train", size)
    x_test, y_test, test_difficult = load_split(args.dataset, "test", size)
    scaled = x_train.double() * PIXEL_SCALE
    mean = scaled.mean(dim=(0, 2, 3)).float()
    std = scaled.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1, unbiased=False).float()
    del scaled
    print(f"train {len(y_train)} images, test {len(y_test)} ({size}x{size}, {len(classes)} classes), "
          f"loaded in {time.perf_counter() - start:.1f} s; mean {mean.tolist()} std {std.tolist()}",
          flush=True)

    model = ShapesConvNet(size, len(classes), args.layers, args.hidden)
    print(model.describe(), f"({sum(p.numel() for p in model.parameters())} parameters)", flush=True)
    start = time.perf_counter()
    train(model, x_train, y_train, mean, std, args.epochs, args.seed, args.batch_size, args.lr,
          args.warmup, x_test, y_test)
    training_seconds = time.perf_counter() - start

    proto = export_onnx(model, size, mean.tolist(), std.tolist(), classes)
    onnx_bytes = proto.SerializeToString()
    if len(onnx_bytes) > MAX_BYTES:
        sys.exit(f"exported model is {len(onnx_bytes)} bytes, over the 5 MB budget")

    # Accuracies of the weights as exported, not of the in-memory training copy.
    exported = model_from_onnx(proto, model)
    test_logits = evaluate(exported, x_test, mean, std)
    max_diff = float((test_logits - evaluate(model, x_test, mean, std)).abs().max())
    if max_diff > 1e-4:
        sys.exit(f"ONNX initializers do not reproduce the trained model: max |diff| {max_diff}")
    test_pred = test_logits.argmax(1)
    test_ok = (test_pred == y_test).numpy()
    train_acc = float((evaluate(exported, x_train, mean, std).argmax(1) == y_train).float().mean())
    test_acc = float(test_ok.mean())
    per_class = {c: round(float(test_ok[y_test.numpy() == i].mean()), 4)
                 for i, c in enumerate(classes) if (y_test.numpy() == i).any()}
    difficult_acc = float(test_ok[test_difficult].mean()) if test_difficult.any() else None
    easy_acc = float(test_ok[~test_difficult].mean()) if (~test_difficult).any() else None
    op_types = sorted({node.op_type for node in proto.graph.node})
    print(f"ONNX ops: {', '.join(op_types)}; {len(onnx_bytes)} bytes")
    print(f"train accuracy {train_acc:.4f}; test accuracy {test_acc:.4f} "
          f"({int(test_ok.sum())}/{len(test_ok)}); difficult {difficult_acc} "
          f"({int(test_difficult.sum())} images), others {easy_acc}")
    print("per class: " + ", ".join(f"{c} {a:.3f}" for c, a in per_class.items()))

    out_dir = os.path.dirname(os.path.abspath(args.out))
    stem = os.path.basename(args.out)[:-len(".onnx")]
    os.makedirs(out_dir, exist_ok=True)
    write_atomically(args.out, onnx_bytes)
    write_atomically(os.path.join(out_dir, stem + ".labels.txt"), ("\n".join(classes) + "\n").encode())
    report = {
        "model": stem + ".onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "bytes": len(onnx_bytes),
        "architecture": model.describe(),
        "layers": args.layers,
        "hidden": args.hidden,
        "parameters": sum(p.numel() for p in model.parameters()),
        "input": [None, 3, size, size],
        "classes": classes,
        "dataset": {
            "generator": dataset_manifest.get("generator"),
            "generator_version": dataset_manifest.get("generator_version"),
            "seed": dataset_manifest.get("seed"),
            "size": size,
            "counts": dataset_manifest.get("counts"),
            "labels_sha256": dataset_manifest.get("labels_sha256"),
        },
        "train_accuracy": round(train_acc, 4),
        "test_accuracy": round(test_acc, 4),
        "test_correct": int(test_ok.sum()),
        "test_images": int(len(test_ok)),
        "test_accuracy_difficult": None if difficult_acc is None else round(difficult_acc, 4),
        "test_difficult_images": int(test_difficult.sum()),
        "test_accuracy_not_difficult": None if easy_acc is None else round(easy_acc, 4),
        "test_accuracy_per_class": per_class,
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "optimiser": f"Adam, one-cycle learning rate, max {args.lr}, warm-up {args.warmup}",
        "augmentation": "random horizontal flip and quarter turns",
        "training_seconds": round(training_seconds, 1),
        "threads": args.threads,
        "normalisation": {"scale": PIXEL_SCALE, "mean": mean.tolist(), "std": std.tolist()},
        "torch_version": torch.__version__,
        "onnx_opset": 13,
        "command": "/usr/bin/python3 " + " ".join(shlex.quote(a) for a in sys.argv),
    }
    write_atomically(os.path.join(out_dir, stem + ".json"), (json.dumps(report, indent=2) + "\n").encode())
    print(f"training time {training_seconds:.1f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
