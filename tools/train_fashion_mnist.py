#!/usr/bin/python3
"""Train the bundled default model: a small ConvNet of the paper's kind on Fashion-MNIST.

Reads the IDX files of Debian's dataset-fashion-mnist package, trains deterministically on the CPU,
exports ONNX (opset 13, input "input" [N,1,28,28], output "logits" [N,10], unnormalised scores, no
softmax) and writes, into --out-dir:

  fashion-mnist-convnet.onnx        the model, with deepinside.* metadata (normaliser and labels)
  fashion-mnist-convnet.labels.txt  one class name per line, in output order
  fashion-mnist-convnet.json        test accuracy, epochs, seed, training time, versions
  images/NNNN-<label>.png           8 test images (28x28 grey), one per class where possible

The normalisation is kept outside the graph: value = (pixel * scale - mean) / std, recorded in the
ONNX metadata_props so that the C++ tool can apply it.

Usage: /usr/bin/python3 tools/train_fashion_mnist.py --out-dir models --epochs 6 --seed 0
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import re
import struct
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from atomic_write import write_atomically  # noqa: E402  (sibling module)

DATASET_DIR = "/usr/share/datasets/fashion-mnist"
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
PIXEL_SCALE = 1.0 / 255.0
MODEL_STEM = "fashion-mnist-convnet"


class FashionConvNet(nn.Module):
    """conv3x3(32)-ReLU-maxpool2 / conv3x3(64)-ReLU-maxpool2 / FC(128)-ReLU / FC(10).

    Input [N,1,28,28] normalised pixels; output [N,10] unnormalised class scores.
    """

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        if self.training:
            # Same arithmetic as flatten + fc1: a 7x7 convolution whose kernel is fc1's weight viewed
            # as [128,64,7,7] (NCHW flatten order). Debian's torch links the reference BLAS, so the
            # matrix product is several times slower than oneDNN's convolution; training takes this
            # route, while eval and the ONNX export keep the ordinary Flatten + Gemm.
            x = F.conv2d(x, self.fc1.weight.view(128, 64, 7, 7), self.fc1.bias)
            x = torch.flatten(x, 1)
        else:
            x = self.fc1(torch.flatten(x, 1))
        x = F.relu(x)
        return self.fc2(x)


def read_idx(path, expected_magic, expected_dims):
    """Read one gzip'd IDX file of unsigned bytes; returns a numpy uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4:
        raise ValueError(f"{path}: truncated IDX header")
    magic, = struct.unpack(">I", data[:4])
    if magic != expected_magic:
        raise ValueError(f"{path}: IDX magic {magic:#010x}, expected {expected_magic:#010x}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(dims) != len(expected_dims) or any(e is not None and d != e
                                               for d, e in zip(dims, expected_dims)):
        raise ValueError(f"{path}: IDX dims {dims}, expected {expected_dims}")
    count = int(np.prod(dims))
    if len(data) - header != count:
        raise ValueError(f"{path}: {len(data) - header} data bytes, header says {count}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_split(split):
    images = read_idx(os.path.join(DATASET_DIR, f"{split}-images-idx3-ubyte.gz"), 0x00000803,
                      (None, 28, 28))
    labels = read_idx(os.path.join(DATASET_DIR, f"{split}-labels-idx1-ubyte.gz"), 0x00000801,
                      (images.shape[0],))
    if labels.max() >= len(CLASS_NAMES):
        raise ValueError(f"{split}: label {labels.max()} out of range")
    return images, labels




def png_grey8(pixels):
    """Encode a 2-D uint8 array as an 8-bit greyscale PNG (no filtering)."""
    height, width = pixels.shape

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def slug(name):
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def normalise(images_u8, mean, std):
    x = torch.from_numpy(images_u8.astype(np.float32)).unsqueeze(1) * PIXEL_SCALE
    return (x - mean) / std


def evaluate(model, x, y, batch=1000):
    model.eval()
    correct = 0
    logits = []
    with torch.no_grad():
        for i in range(0, x.shape[0], batch):
            out = model(x[i:i + batch])
            logits.append(out)
            correct += int((out.argmax(1) == y[i:i + batch]).sum())
    return correct / x.shape[0], torch.cat(logits)


def train(model, x, y, epochs, seed, batch_size, lr, flip):
    generator = torch.Generator().manual_seed(seed)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = (x.shape[0] + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, epochs=epochs,
                                                    steps_per_epoch=steps_per_epoch)
    for epoch in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(x.shape[0], generator=generator)
        total_loss = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * batch_size:(step + 1) * batch_size]
            xb, yb = x[idx], y[idx]
            if flip:
                mirrored = torch.rand(xb.shape[0], generator=generator) < 0.5
                xb = torch.where(mirrored[:, None, None, None], xb.flip(3), xb)
            optimiser.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimiser.step()
            scheduler.step()
            total_loss += float(loss) * xb.shape[0]
        print(f"epoch {epoch + 1}/{epochs}: loss {total_loss / x.shape[0]:.4f} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)


def export_onnx(model, mean, std):
    """Export to an in-memory ONNX model with deepinside.* metadata; returns the ModelProto."""
    import onnx
    model.eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), buffer, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)
    proto = onnx.load_from_string(buffer.getvalue())
    props = {
        "deepinside.mean": repr(float(mean)),
        "deepinside.std": repr(float(std)),
        "deepinside.scale": repr(PIXEL_SCALE),
        "deepinside.channel_order": "RGB",
        "deepinside.labels": ",".join(CLASS_NAMES),
    }
    onnx.helper.set_model_props(proto, props)
    proto.doc_string = ("Fashion-MNIST ConvNet trained by tools/train_fashion_mnist.py; input "
                        "(pixel*scale-mean)/std, output unnormalised class scores")
    onnx.checker.check_model(proto)
    return proto


def model_from_onnx(proto):
    """Rebuild FashionConvNet with the weights stored in the ONNX initializers."""
    from onnx import numpy_helper
    initializers = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    rebuilt = FashionConvNet()
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
    parser.add_argument("--out-dir", default="models")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--no-flip", action="store_true", help="disable random horizontal flips")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.use_deterministic_algorithms(True)

    train_images, train_labels = load_split("train")
    test_images, test_labels = load_split("t10k")
    scaled = train_images.astype(np.float64) * PIXEL_SCALE
    mean, std = float(scaled.mean()), float(scaled.std())
    print(f"train {train_images.shape[0]} images, test {test_images.shape[0]}; "
          f"mean {mean:.6f} std {std:.6f}", flush=True)

    x_train = normalise(train_images, mean, std)
    y_train = torch.from_numpy(train_labels.astype(np.int64))
    x_test = normalise(test_images, mean, std)
    y_test = torch.from_numpy(test_labels.astype(np.int64))

    model = FashionConvNet()
    start = time.perf_counter()
    train(model, x_train, y_train, args.epochs, args.seed, args.batch_size, args.lr,
          flip=not args.no_flip)
    training_seconds = time.perf_counter() - start

    proto = export_onnx(model, mean, std)
    onnx_bytes = proto.SerializeToString()
    if len(onnx_bytes) > 5 * 1024 * 1024:
        sys.exit(f"exported model is {len(onnx_bytes)} bytes, over the 5 MB budget")

    # Accuracy of the weights as exported, not of the in-memory training copy.
    exported = model_from_onnx(proto)
    accuracy, logits = evaluate(exported, x_test, y_test)
    _, reference_logits = evaluate(model, x_test, y_test)
    max_diff = float((logits - reference_logits).abs().max())
    if max_diff > 1e-4:
        sys.exit(f"ONNX initializers do not reproduce the trained model: max |diff| {max_diff}")
    op_types = sorted({node.op_type for node in proto.graph.node})
    print(f"ONNX ops: {', '.join(op_types)}; {len(onnx_bytes)} bytes")
    print(f"test accuracy {accuracy:.4f} ({round(accuracy * len(y_test))}/{len(y_test)})")

    out_dir = args.out_dir
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    onnx_path = os.path.join(out_dir, MODEL_STEM + ".onnx")
    write_atomically(onnx_path, onnx_bytes)
    write_atomically(os.path.join(out_dir, MODEL_STEM + ".labels.txt"),
                     ("\n".join(CLASS_NAMES) + "\n").encode())

    chosen, seen = [], set()
    for index, label in enumerate(test_labels):
        if int(label) not in seen:
            seen.add(int(label))
            chosen.append(index)
        if len(chosen) == 8:
            break
    image_files = []
    for index in chosen:
        name = f"{index:04d}-{slug(CLASS_NAMES[test_labels[index]])}.png"
        write_atomically(os.path.join(out_dir, "images", name), png_grey8(test_images[index]))
        image_files.append({"file": "images/" + name, "test_index": int(index),
                            "label": CLASS_NAMES[test_labels[index]],
                            "predicted": CLASS_NAMES[int(logits[index].argmax())]})

    report = {
        "model": MODEL_STEM + ".onnx",
        "sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "bytes": len(onnx_bytes),
        "architecture": "conv3x3(1->32)-ReLU-maxpool2, conv3x3(32->64)-ReLU-maxpool2, "
                        "FC(3136->128)-ReLU, FC(128->10)",
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_accuracy": accuracy,
        "test_correct": round(accuracy * len(y_test)),
        "test_images": len(y_test),
        "epochs": args.epochs,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "optimiser": f"Adam, one-cycle learning rate, max {args.lr}",
        "augmentation": "none" if args.no_flip else "random horizontal flip",
        "training_seconds": round(training_seconds, 1),
        "threads": args.threads,
        "normalisation": {"scale": PIXEL_SCALE, "mean": mean, "std": std},
        "torch_version": torch.__version__,
        "onnx_opset": 13,
        "images": image_files,
    }
    write_atomically(os.path.join(out_dir, MODEL_STEM + ".json"),
                     (json.dumps(report, indent=2) + "\n").encode())
    print(f"training time {training_seconds:.1f} s; wrote {onnx_path}")


if __name__ == "__main__":
    main()
