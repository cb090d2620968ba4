#!/usr/bin/python3
"""The demo page: the paper's three results on the two bundled models, in one folder with an index.html.

Usage: /usr/bin/python3 tools/demo.py OUT_DIR [--bin build/deepinside] [--dataset build/shapes]
                                              [--eval-limit 0] [--randomisation-images 100]

For models/fashion-mnist-convnet.onnx (the bundled model) and models/shapes-convnet.onnx (the
segmentation model, trained on tools/make_shapes_dataset.py's images) it runs the deepinside commands
and writes, under OUT_DIR:
  <model>/class-model/   class model images of every class and their grid        (deepinside class-model)
  <model>/saliency/      gradient, DeconvNet and guided maps of sample images    (deepinside saliency)
  <model>/segment/       GraphCut segmentations of the same images, with seeds   (deepinside segment)
  <model>/verify/        the verifier's certificate of those images              (deepinside verify)
  shapes/evaluation/     the evaluation against ground truth of the held-out split (deepinside evaluate)
  index.html             all of it on one page; every picture is a file beside it (no scripts)

The held-out split is generated into --dataset when it is missing (only the test split: every image is
seeded by its split and index, so it is the very split the model was evaluated on). --eval-limit N
evaluates the first N images only (0: all); the page says how many it used.
"""

import argparse
import html
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = "/usr/bin/python3"
METHODS = ["gradient", "deconvnet", "guided"]


def in_checkout(path):
    """A path inside the checkout made relative to it (commands run from there), so that the JSON files
    and reports the commands write name the checkout's files, not this machine's folders."""
    return os.path.relpath(path, ROOT) if os.path.isabs(path) and path.startswith(ROOT + os.sep) else path


def run(cmd, ok=(0,)):
    """Runs a command from the checkout, echoing it; stops the demo with its output when it fails."""
    cmd = [in_checkout(c) for c in cmd]
    if not os.path.isabs(cmd[0]):
        cmd[0] = os.path.join(".", cmd[0])
    print("+ " + " ".join(cmd), flush=True)
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    if done.returncode not in ok:
        sys.stdout.write(done.stdout)
        raise SystemExit(f"demo: {cmd[0]} {cmd[1] if len(cmd) > 1 else ''} failed with status {done.returncode}")
    return done.stdout


def rel(path, out):
    return os.path.relpath(path, out)


def img(src, out, alt, width=None):
    w = f' width="{width}"' if width else ""
    return f'<img src="{html.escape(rel(src, out))}" alt="{html.escape(alt)}"{w}>'


class Model:
    def __init__(self, key, title, onnx, images, about, class_model_options):
        self.key, self.title, self.onnx, self.images, self.about = key, title, onnx, images, about
        self.class_model_options = class_model_options


def model_section(m, args, out):
    """Runs every command on one model; returns its HTML section."""
    base = os.path.join(out, m.key)
    for sub in ("class-model", "saliency", "segment", "verify"):
        os.makedirs(os.path.join(base, sub), exist_ok=True)
    labels = [l.strip() for l in open(os.path.splitext(m.onnx)[0] + ".labels.txt") if l.strip()]
    parts = [f'<section id="{m.key}"><h2>{html.escape(m.title)}</h2><p>{m.about}</p>']

    # 1. Class model images (the paper's section 2): the paper's plain form, then with the usual extras.
    parts.append("<h3>Class model images</h3><p>Gradient ascent on each class's unnormalised score with an L2 penalty, "
                 "from the mean image, all classes in one batch. Score and softmax probability at the end of the "
                 "ascent under each image.</p>")
    for variant, (what, options) in enumerate(m.class_model_options):
        cm = os.path.join(base, "class-model", f"class-{variant}")
        run([args.bin, "class-model", m.onnx, "--class", "all", *options, "--out", cm])
        info = json.load(open(cm + ".json"))
        parts.append(f"<p>{html.escape(what)}: <code>deepinside class-model --class all {html.escape(' '.join(options))}</code></p>"
                     '<div class="row">')
        for entry in info["classes"]:
            c = entry["index"]
            parts.append(f'<figure>{img(f"{cm}.{c}.png", out, labels[c], 112)}<figcaption>{html.escape(labels[c])}<br>'
                         f'score {entry["score_end"]:.1f}, p {entry["probability_end"]:.3f}</figcaption></figure>')
        parts.append("</div>")

    # 2. The three saliency maps of each sample image, side by side (one forward, one backward pass each).
    parts.append("<h3>Image-specific saliency: gradient, DeconvNet and guided backpropagation</h3>"
                 "<p>The top-1 class's map, max over channels of |signal|, over the image it was computed on.</p>"
                 "<table class=\"maps\"><tr><th>image</th>" + "".join(f"<th>{x}</th>" for x in METHODS) + "</tr>")
    for path in m.images:
        stem = os.path.splitext(os.path.basename(path))[0]
        local = os.path.join(base, "saliency", stem + ".png")
        shutil.copyfile(path, local)
        prefix = os.path.join(base, "saliency", stem)
        printed = run([args.bin, "saliency", m.onnx, local, "--method", ",".join(METHODS), "--out", prefix])
        cls = printed.split("class ", 1)[1].split(" ", 1)[0] if "class " in printed else None
        row = f"<tr><td>{img(local, out, stem, 112)}</td>"
        for method in METHODS:
            row += f"<td>{img(f'{prefix}.{method}.{cls}.overlay.png', out, f'{stem} {method}', 112)}</td>"
        parts.append(row + "</tr>")
    parts.append("</table>")

    # 3. Segmentation from the gradient map (the paper's section 3.2).
    seg = os.path.join(base, "segment", "seg")
    local_images = [os.path.join(base, "saliency", os.path.splitext(os.path.basename(p))[0] + ".png") for p in m.images]
    run([args.bin, "segment", m.onnx, *local_images, "--out", seg])
    segs = json.load(open(seg + ".json"))
    parts.append("<h3>Weakly supervised segmentation</h3><p>Foreground seeds above the map's 95 % quantile, background "
                 "seeds below its 30 % quantile, a five-Gaussian colour model for each, GraphCut, the largest "
                 "component and its box (<code>deepinside segment</code>). Seeds: "
                 + "foreground blue, background cyan, unused red, as in the paper's figure 3.</p>"
                 "<table class=\"maps\"><tr><th>image</th><th>seeds</th><th>mask</th><th>object and box</th></tr>")
    for record in segs["results"]:
        files = record["files"]
        cells = [img(os.path.join(ROOT, record["image"]), out, "image", 112)]
        cells += [img(os.path.join(ROOT, files[k]), out, k, 112) for k in ("seeds", "mask", "overlay")]
        parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</table>")

    # 4. The verifier's certificate on the same images.
    vdir = os.path.join(base, "verify")
    run([args.bin, "verify", m.onnx, *local_images, "--json", os.path.join(vdir, "certificate.json"), "--report", vdir],
        ok=(0,))
    parts.append(f'<h3>The verifier</h3><p>DeconvNet is the gradient except at ReLU, checked layer by layer on these images: '
                 f'<a href="{rel(os.path.join(vdir, "index.html"), out)}">the certificate</a>.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def evaluation_section(args, out, dataset):
    edir = os.path.join(out, "shapes", "evaluation")
    os.makedirs(edir, exist_ok=True)
    cmd = [args.bin, "evaluate", os.path.join(ROOT, "models", "shapes-convnet.onnx"), os.path.abspath(dataset),
           "--json", os.path.join(edir, "evaluation.json"), "--report", edir,
           "--randomisation-images", str(args.randomisation_images)]
    if args.eval_limit:
        cmd += ["--limit", str(args.eval_limit)]
    printed = run(cmd)
    print(printed)
    s = json.load(open(os.path.join(edir, "evaluation.json")))
    rows = ["<tr><th>method</th><th>mask IoU</th><th>localisation %</th><th>pointing %</th><th>pointing, difficult %</th>"
            "<th>relevance mass</th><th>deletion AUC</th><th>insertion AUC</th></tr>"]
    for name, m in s["methods"].items():
        rows.append(f"<tr><td>{name} + GraphCut</td><td>{m['segmentation']['mean_iou']:.3f}</td>"
                    f"<td>{100 * m['segmentation']['localisation']:.1f}</td><td>{100 * m['pointing_game']['all']:.1f}</td>"
                    f"<td>{100 * m['pointing_game']['difficult']:.1f}</td><td>{m['relevance_mass']:.3f}</td>"
                    f"<td>{m['curves']['deletion_auc']:.3f}</td><td>{m['curves']['insertion_auc']:.3f}</td></tr>")
    b = s["baselines"]
    rows.append(f"<tr><td>baselines: centred box / centre point / uniform map / random order</td>"
                f"<td>{b['centre_box']['mean_iou']:.3f}</td><td>{100 * b['centre_box']['localisation']:.1f}</td>"
                f"<td>{100 * b['centre_point']['all']:.1f}</td><td>{100 * b['centre_point']['difficult']:.1f}</td>"
                f"<td>{b['uniform_mass']:.3f}</td><td>{b['random_order']['deletion_auc']:.3f}</td>"
                f"<td>{b['random_order']['insertion_auc']:.3f}</td></tr>")
    return (f'<section id="evaluation"><h2>Evaluation against ground truth</h2><p>{s["images"]} held-out images of the shapes data '
            f'set ({s["difficult_images"]} difficult), classifier accuracy {100 * s["classifier"]["top1_accuracy"]:.1f} %. '
            f'Maps of the true class. <a href="{rel(os.path.join(edir, "index.html"), out)}">The full report</a> has the '
            f'baselines of every measure, the curves and the model-randomisation check.</p>'
            f'<table class="evaluation">{"".join(rows)}</table></section>')


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--bin", default=os.path.join(ROOT, "build", "deepinside"))
    p.add_argument("--dataset", default=os.path.join(ROOT, "build", "shapes"))
    p.add_argument("--eval-limit", type=int, default=0)
    p.add_argument("--randomisation-images", type=int, default=100)
    p.add_argument("--samples", type=int, default=6, help="held-out shapes images shown")
    args = p.parse_args()
    out = os.path.abspath(args.out)
    started = time.time()
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)

    if not os.path.exists(os.path.join(args.dataset, "test", "labels.json")):
        count = max(args.eval_limit, args.samples) if args.eval_limit else 2000
        run([PYTHON, os.path.join(ROOT, "tools", "make_shapes_dataset.py"), args.dataset, "--train", "0", "--test", str(count)])
    tests = json.load(open(os.path.join(args.dataset, "test", "labels.json")))
    shapes_images = [os.path.join(args.dataset, "test", e["file"]) for e in tests[: args.samples]]
    bundled_images = sorted(os.path.join(ROOT, "models", "images", f) for f in os.listdir(os.path.join(ROOT, "models", "images"))
                            if f.endswith(".png"))
    models = [
        Model("bundled", "The bundled model: Fashion-MNIST, 28×28 grey", os.path.join(ROOT, "models", "fashion-mnist-convnet.onnx"),
              bundled_images, "A small convolutional network (conv, ReLU, max-pool, fully connected) trained on Fashion-MNIST "
              "by <code>tools/train_fashion_mnist.py</code>.",
              [("The paper's plain form (the command's defaults)", []),
               ("With jitter and clipping to the pixel range (options, not in the paper)", ["--jitter", "2", "--clip"])]),
        Model("shapes", "The segmentation model: ten shapes on cluttered backgrounds, 96×96 colour",
              os.path.join(ROOT, "models", "shapes-convnet.onnx"), shapes_images,
              "A convolutional network of the paper's kind trained on labels alone (<code>tools/train_shapes.py</code>) "
              "on images of <code>tools/make_shapes_dataset.py</code>; masks and boxes are kept for evaluation only.",
              [("The paper's plain form, with a step and penalty for this model's gradient scale", ["--lr", "10", "--l2", "0.001"]),
               ("With jitter and blur (options, not in the paper)",
                ["--lr", "10", "--l2", "0.001", "--jitter", "2", "--blur", "0.7", "--blur-every", "4"])]),
    ]
    sections = [model_section(m, args, out) for m in models]
    sections.append(evaluation_section(args, out, args.dataset))
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>deepinside: inside two image classifiers</title>
<style>
body{{font-family:sans-serif;max-width:72em;margin:1em auto;padding:0 1em;color:#1f2328}}
table{{border-collapse:collapse;margin:.5em 0 1.5em}} td,th{{border:1px solid #d0d7de;padding:3px 6px}}
th{{background:#f6f8fa}} .evaluation td:not(:first-child){{text-align:right}}
.row{{display:flex;flex-wrap:wrap;gap:8px}} figure{{margin:0;text-align:center;font-size:85%}}
img{{image-rendering:pixelated}}
</style></head><body>
<h1>deepinside: inside two image classifiers</h1>
<p>Simonyan, Vedaldi and Zisserman's "Deep Inside Convolutional Networks" reproduced on two small bundled models:
class model images (section 2), image-specific saliency by the gradient, DeconvNet and guided backpropagation
(section 3.1, and section 4's comparison, certified by the verifier), weakly supervised segmentation (section 3.2),
and an evaluation of the three maps against ground truth. Written by <code>tools/demo.py</code> in
{time.time() - started:.0f} s.</p>
<p><a href="#bundled">bundled model</a> · <a href="#shapes">segmentation model</a> · <a href="#evaluation">evaluation</a></p>
{"".join(sections)}
</body></html>
"""
    # The raw signals (.npy) are the commands' outputs for programs; the page shows the pictures only.
    for folder, _, files in os.walk(out):
        for name in files:
            if name.endswith(".npy"):
                os.remove(os.path.join(folder, name))
    with open(os.path.join(out, "index.html.tmp"), "w") as f:
        f.write(page)
    os.replace(os.path.join(out, "index.html.tmp"), os.path.join(out, "index.html"))
    print(f"demo written to {os.path.join(out, 'index.html')} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
