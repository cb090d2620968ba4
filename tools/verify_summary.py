#!/usr/bin/python3
"""Summarise the verify certificates under a reports folder as one Markdown table.

Reads REPORTS/<model>/certificate.json (schema "deepinside.verify/1", written by
`deepinside verify ... --json`) and REPORTS/<model>/run.json (exit code, seconds, input; written by
tools/verify_reports.sh) for every model folder, and writes REPORTS/README.md (atomically).

One row per model: layers checked per op type; the largest max_rel_diff at convolution, fully
connected and max pooling layers; tied max-pooling windows in total; the range (min-max over layers)
of the fraction of elements where DeconvNet and the gradient differ at ReLU; the end-to-end relative
L2 of the composed DeconvNet against the engine's; Spearman and top-5 % overlap of the gradient and
DeconvNet saliency maps; the gradient check's largest relative error; the verdict and wall time.
Where a certificate covers several images (an "images" list whose entries carry their own "layers"),
each figure is the worst over the images (largest difference, lowest similarity), counts are summed
and ranges span all images.

Usage: /usr/bin/python3 tools/verify_summary.py REPORTS [--order name,name,...] [--out FILE]
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from atomic_write import write_atomically  # noqa: E402  (sibling module)

SCHEMA = "deepinside.verify/1"


def number(value):
    """A finite float, or None for missing / null / non-numeric / NaN values."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def sci(value):
    value = number(value)
    if value is None:
        return "–"
    return "0" if value == 0 else f"{value:.2g}"


def fixed(value, digits=4):
    value = number(value)
    return "–" if value is None else f"{value:.{digits}f}"


def percent(value):
    value = number(value)
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if value >= 0.001 or value == 0 else f"{100 * value:.2g} %"


def worst(values, pick=max):
    values = [v for v in (number(x) for x in values) if v is not None]
    return pick(values) if values else None


def records(certificate):
    """The per-image records holding "layers": the images' own when they have them, else the top."""
    images = certificate.get("images")
    if isinstance(images, list):
        own = [i for i in images if isinstance(i, dict) and isinstance(i.get("layers"), list)]
        if own:
            return own
    return [certificate]


def op_counts(layers):
    counts = {}
    for layer in layers:
        op = layer.get("op") or "?"
        counts[op] = counts.get(op, 0) + 1
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items()))


def summarise(certificate):
    """The table's figures from one certificate (missing fields come out as None)."""
    recs = records(certificate)
    layers = [layer for r in recs for layer in (r.get("layers") or []) if isinstance(layer, dict)]
    kind = lambda k: [layer for layer in layers if layer.get("layer") == k]
    relu = kind("rectification")
    pools = kind("max pooling")
    fractions = [number(layer.get("differing_fraction")) for layer in relu]
    fractions = [f for f in fractions if f is not None]
    e2e = [r.get("end_to_end") or {} for r in recs]
    gvd = [e.get("gradient_vs_deconvnet") or {} for e in e2e]
    checks = [r.get("gradient_check") or {} for r in recs]
    failed = [layer.get("name") or "?" for layer in layers if layer.get("ok") is False]
    tied = [number(layer.get("tied_windows")) for layer in pools]
    windows = [number(layer.get("windows")) for layer in pools]
    return {
        "ops": op_counts(recs[0].get("layers") or []),
        "images": len(recs),
        "class": certificate.get("class"),
        "conv": worst(layer.get("max_rel_diff") for layer in kind("convolution")),
        "fc": worst(layer.get("max_rel_diff") for layer in kind("fully connected")),
        "pool": worst(layer.get("max_rel_diff") for layer in pools),
        "tied": int(sum(t for t in tied if t is not None)) if pools else None,
        "windows": int(sum(w for w in windows if w is not None)) if pools else None,
        "relu_min": min(fractions) if fractions else None,
        "relu_max": max(fractions) if fractions else None,
        "e2e_rel_l2": worst(e.get("rel_l2") for e in e2e),
        "e2e_guided": worst(e.get("guided_rel_l2") for e in e2e),
        "spearman": worst((g.get("spearman") for g in gvd), min),
        "top5": worst((g.get("top5_overlap") for g in gvd), min),
        "gradcheck": worst(c.get("max_rel_error") for c in checks),
        "gradcheck_reference": worst(c.get("max_reference_rel_error") for c in checks),
        "engine_vs_reference": worst(c.get("engine_vs_reference") for c in checks),
        "through_reference": sum(c.get("basis") == "through the reference" for c in checks),
        "flips": int(sum(number(c.get("decisions_differing")) or 0 for c in checks)),
        "ok": certificate.get("ok"),
        "failed_layers": failed,
        "e2e_ok": all(e.get("ok") is not False for e in e2e),
        "gradcheck_ok": all(c.get("ok") is not False for c in checks),
    }


def gradient_cell(s):
    """The direct error, or, where f32 and double took different decisions, the two halves the
    certificate then rests on."""
    if not s["through_reference"]:
        return f"{sci(s['gradcheck'])} direct"
    return (f"{sci(s['gradcheck'])} direct; via the reference ({s['flips']} decision"
            f"{'s' if s['flips'] != 1 else ''} differ): FD {sci(s['gradcheck_reference'])}, "
            f"engine {sci(s['engine_vs_reference'])}")


def verdict(s, run):
    code = run.get("exit_code")
    if s is None:
        if code is None:
            return "not run"
        message = run.get("message") or ""
        if len(message) > 160:
            message = message[:157] + "..."
        return f"**no certificate** (exit {code})" + (f": {message}" if message else "")
    if s["ok"] is True and code in (0, None):
        return "holds"
    reasons = []
    if s["failed_layers"]:
        shown = ", ".join(f"`{n}`" for n in s["failed_layers"][:3])
        more = len(s["failed_layers"]) - 3
        reasons.append(f"layers {shown}" + (f" and {more} more" if more > 0 else ""))
    if not s["e2e_ok"]:
        reasons.append("end to end")
    if not s["gradcheck_ok"]:
        reasons.append("gradient check")
    if s["ok"] is True:  # certificate says ok, but the command did not exit 0
        reasons.append(f"certificate ok but exit {code}")
    text = "**contradicted**" + (": " + "; ".join(reasons) if reasons else "")
    if code not in (None, 3) and s["ok"] is not True:
        text += f" (exit {code})"
    return text


def load(path):
    try:
        with open(path) as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, f"{os.path.basename(path)} unreadable: {e}"


def row(name, folder):
    run, _ = load(os.path.join(folder, "run.json"))
    run = run if isinstance(run, dict) else {}
    certificate, problem = load(os.path.join(folder, "certificate.json"))
    s = None
    if isinstance(certificate, dict):
        if certificate.get("schema") not in (None, SCHEMA):
            problem = f"schema {certificate.get('schema')!r}, expected {SCHEMA}"
        else:
            s = summarise(certificate)
    elif certificate is not None:
        problem = "certificate.json is not a JSON object"
    seconds = number(run.get("seconds"))
    cells = [f"[{name}]({name}/report.md)" if os.path.exists(os.path.join(folder, "report.md"))
             else name]
    if s is None:
        cells += ["–"] * 9
    else:
        relu = ("–" if s["relu_min"] is None
                else f"{percent(s['relu_min'])} – {percent(s['relu_max'])}")
        tied = "–" if s["tied"] is None else f"{s['tied']} of {s['windows']}"
        cells += [s["ops"] or "–", sci(s["conv"]), sci(s["fc"]), sci(s["pool"]), tied, relu,
                  f"{sci(s['e2e_rel_l2'])} / {sci(s['e2e_guided'])}",
                  f"{fixed(s['spearman'])} / {percent(s['top5'])}", gradient_cell(s)]
    text = verdict(s, run)
    if problem:
        text += f" ({problem})"
    cells += [text, "–" if seconds is None else f"{seconds:.1f}"]
    return cells, run, s


HEADER = ["model", "layers checked", "conv max rel", "fc max rel", "max-pool max rel",
          "tied windows", "ReLU differing (min – max)", "end-to-end rel L2: DeconvNet / guided",
          "grad vs DeconvNet: Spearman / top-5 % overlap", "gradient check: max rel err",
          "verdict", "seconds"]

PREAMBLE = """# Verify certificates, one per model

Generated by `tools/verify_reports.sh` (table: `tools/verify_summary.py`); do not edit by hand.
Each folder holds the `deepinside verify` report of one model: `report.md`, `index.html`, the
figures, and `certificate.json` (schema `deepinside.verify/1`); `run.json` records the command, the
input, the exit code (0 the certificate holds, 3 a layer contradicts the paper, 1 or 2 an error) and
the wall time.

The claim (Simonyan, Vedaldi, Zisserman 2014, section 4): DeconvNet is the gradient at convolution,
fully connected and max-pooling layers, and differs only at ReLU. Columns:

- *layers checked*: the layers between the class score and the input, by ONNX op type.
- *conv / fc / max-pool max rel*: the largest max |engine − DeconvNet| / max |DeconvNet| over layers
  of that kind (over every signal sent through them); these should be rounding-sized.
- *tied windows*: max-pooling windows whose maximum is tied, of all windows (switch choice matters).
- *ReLU differing*: per ReLU layer, the fraction of elements where DeconvNet's mask 1(R > 0) and the
  gradient's 1(X > 0) give different values; the range over the ReLU layers. Nonzero is what the paper
  predicts.
- *end-to-end rel L2*: the DeconvNet reconstruction composed from the independent operators against
  the engine's deconvnet signal at the input, and the same for guided backpropagation.
- *grad vs DeconvNet*: Spearman rank correlation of the two saliency maps and the share of the top 5 %
  pixels of one in the top 5 % of the other: how different the ReLU rule makes the whole signal.
- *gradient check*: largest relative error of the engine's gradient against central differences in
  double ("direct"). Where the engine's f32 forward and the exact one take a different ReLU or
  max-pool decision (a value within f32 rounding of a kink), the direct figure can be 1e-3 and the
  certificate rests on the reference instead: finite differences against the reference's gradient
  (FD) and the engine's gradient against the reference's backward on the engine's activations.

Where a certificate covers several images the figures are the worst over them.
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reports")
    parser.add_argument("--order", default="", help="comma-separated model names listed first")
    parser.add_argument("--out", help="default: REPORTS/README.md")
    args = parser.parse_args()

    folders = sorted(d for d in os.listdir(args.reports)
                     if os.path.isdir(os.path.join(args.reports, d)) and not d.startswith("."))
    order = [n for n in args.order.split(",") if n]
    names = [n for n in order if n in folders] + [n for n in folders if n not in order]
    lines = [PREAMBLE, "| " + " | ".join(HEADER) + " |",
             "|" + "|".join(" --- " for _ in HEADER) + "|"]
    inputs = []
    holds = 0
    for name in names:
        cells, run, s = row(name, os.path.join(args.reports, name))
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        holds += cells[-2] == "holds"
        if run.get("input"):
            extra = f", class {s['class']}" if s and s.get("class") is not None else ""
            inputs.append(f"- {name}: {run['input']}{extra}")
    lines.append("")
    lines.append(f"{holds} of {len(names)} models: the certificate holds.")
    if inputs:
        lines += ["", "Inputs:", ""] + inputs
    runs = [load(os.path.join(args.reports, n, "run.json"))[0] or {} for n in names]
    stamps = sorted({(r.get("date"), r.get("binary_version")) for r in runs if r.get("date")})
    if stamps:
        lines += ["", "Runs: " + "; ".join(f"{d} ({v})" if v else d for d, v in stamps[-3:]) + "."]
    out = args.out or os.path.join(args.reports, "README.md")
    write_atomically(out, ("\n".join(lines) + "\n").encode())
    print(f"{out}: {len(names)} models, {holds} hold")


if __name__ == "__main__":
    main()
