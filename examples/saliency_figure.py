#!/usr/bin/python3
"""Figure 2 of Simonyan, Vedaldi and Zisserman (2014), with the deepinside Python module.

The paper's figure 2 shows test images beside the saliency maps of their top-1 class: per pixel the
largest |dS_c/dx| over the colour channels, from one backward pass. This script draws one row per image:

    image | gradient | DeconvNet | guided backpropagation

for the bundled Fashion-MNIST model and its bundled images (or the model and images given), all three
maps of every image from one forward and one stacked backward pass, and writes the panel as one PNG.
It needs only NumPy and the module: no matplotlib. Written as notebook cells (`# %%`): it runs as a
script, or cell by cell in an editor that knows the convention.

    cmake --build build --target deepinside_python
    PYTHONPATH=build/python /usr/bin/python3 examples/saliency_figure.py --out figure2.png
"""

# %% Setup: the module and the options
import argparse
import glob
import os

import numpy as np

import deepinside

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METHODS = ["gradient", "deconvnet", "guided"]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("images", nargs="*", help="PNG or JPEG images (default: the first 4 bundled images)")
parser.add_argument("--model", default=os.path.join(ROOT, "models", "fashion-mnist-convnet.onnx"))
parser.add_argument("--out", default="saliency-figure.png", help="the panel, PNG")
parser.add_argument("--zoom", type=int, default=4, help="integer enlargement of every picture (nearest neighbour)")
parser.add_argument("--gap", type=int, default=4, help="white pixels between pictures")
parser.add_argument("--threads", type=int, default=2)
args, _ = parser.parse_known_args()  # known only: a notebook kernel adds its own arguments
images = args.images or sorted(glob.glob(os.path.join(ROOT, "models", "images", "*.png")))[:4]

# %% The model, and the images as one batch prepared with the model's own preprocessing
net = deepinside.Network(args.model, threads=args.threads)
x = np.concatenate([deepinside.image_to_tensor(path, net) for path in images], axis=0)  # [N, C, H, W]
print(f"{args.model}: input {net.input_name} {net.input_shape}, batch {x.shape}")

# %% The top-1 class of each image and the three maps of the paper's section 3.1
# classes=None takes each image's top-1 class; map="max-abs" gives max over channels of |signal|.
scores = net.scores(x)
top1 = scores.argmax(axis=1)
maps = net.saliency(x, methods=METHODS, map="max-abs")  # {method: [1, N, H, W]}
labels = net.labels
for n, path in enumerate(images):
    name = labels[top1[n]] if top1[n] < len(labels) else f"class {top1[n]}"
    print(f"row {n}: {os.path.basename(path)}: top-1 {name} (score {scores[n, top1[n]]:.3f})")


# %% Pictures: the input as the network saw it, and each map as an "inferno" heatmap
def input_picture(tensor):
    """[C, H, W] input values, min-max scaled to 0..255: grey for 1 channel, RGB for 3."""
    lo, hi = float(tensor.min()), float(tensor.max())
    scaled = (tensor - lo) / (hi - lo if hi > lo else 1.0) * 255.0
    picture = np.rint(scaled).astype(np.uint8).transpose(1, 2, 0)
    return np.repeat(picture, 3, axis=2) if picture.shape[2] == 1 else picture


def enlarge(picture, zoom):
    return np.repeat(np.repeat(picture, zoom, axis=0), zoom, axis=1)


rows = [[input_picture(x[n])] + [deepinside.heatmap(maps[m][0, n]) for m in METHODS] for n in range(len(images))]

# %% The panel: one row per image, white gaps between pictures
height, width = (d * args.zoom for d in x.shape[2:])
columns = 1 + len(METHODS)
panel = np.full((len(rows) * (height + args.gap) + args.gap, columns * (width + args.gap) + args.gap, 3), 255,
                dtype=np.uint8)
for r, row in enumerate(rows):
    for c, picture in enumerate(row):
        y0, x0 = args.gap + r * (height + args.gap), args.gap + c * (width + args.gap)
        panel[y0:y0 + height, x0:x0 + width] = enlarge(picture, args.zoom)
deepinside.write_png(args.out, panel)
print(f"wrote {args.out}: {panel.shape[1]} x {panel.shape[0]} pixels, columns: image, " + ", ".join(METHODS))
