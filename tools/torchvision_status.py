#!/usr/bin/python3
"""Which torchvision families deepinside runs: writes reports/torchvision-families.md.

For every family x opset exported by tools/export_torchvision_families.py (into
BUILD/torchvision-families/<family>-opset<N>/; run it first, or pass --export to run it), this runs
the built CLI:

  deepinside info MODEL                                  (exit 0, or the refusal: the op named)
  deepinside forward MODEL --input input.npy             (logits rel L2 vs PyTorch float64)
  deepinside saliency MODEL --input input.npy --method gradient,deconvnet,guided
                                                         (with --nonrelu gradient where the network
                                                          has nonlinearities other than ReLU; there
                                                          the default's refusal is recorded too)
  deepinside bench MODEL --input input.npy --what saliency --iters N --threads 2
                                                         (median ms per gradient map, forward included)

Usage: /usr/bin/python3 tools/torchvision_status.py [--build build] [--out reports/torchvision-families.md]
       [--families a,b] [--iters 5] [--export]
"""

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))

OPSETS = [13, 17]
NODE = re.compile(r"node '([^']*)' \(([\w.]+), opset (\d+)\)")


def run(cmd, timeout=1800):
    t0 = time.perf_counter()
    env = dict(os.environ, OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "passive"))
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr.strip(), time.perf_counter() - t0


def first_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    return lines[-1] if lines else ""


def cell(text):
    return text.replace("|", "\\|").replace("\n", " ")


def refusal(stderr):
    """'`Op` at node 'x': message' from a refusal's message."""
    message = first_line(stderr).replace("deepinside: error: ", "").split("; supported ops")[0]
    m = NODE.search(message)
    if m:
        return f"`{m.group(2)}`: {message}"
    return message


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def status_of(binary, d, manifest, iters, threads):
    model, x = os.path.join(d, "model.onnx"), os.path.join(d, "input.npy")
    row = {"status": "", "logits": "", "ms": "", "notes": ""}
    rc, out, err, _ = run([binary, "info", model])
    if rc != 0:
        row["status"] = "refused: " + refusal(err)
        return row
    with tempfile.TemporaryDirectory(prefix="deepinside-status-") as tmp:
        y = os.path.join(tmp, "y.npy")
        rc, out, err, _ = run([binary, "forward", model, "--input", x, "--out", y, "--threads", str(threads)])
        if rc != 0:
            row["status"] = "forward refused: " + refusal(err)
            return row
        logits64 = np.fromfile(os.path.join(d, "logits.f64"), dtype="<f8")
        row["logits"] = f"{rel_l2(np.load(y), logits64):.1e}"
        extra = [] if manifest["all_relu"] else ["--nonrelu", "gradient"]
        rc, out, err, _ = run([binary, "saliency", model, "--input", x, "--method", "gradient,deconvnet,guided",
                               "--out", os.path.join(tmp, "s"), "--threads", str(threads)] + extra)
        if rc != 0:
            row["status"] = "forward runs; saliency refused: " + refusal(err)
            return row
        notes = []
        if not manifest["all_relu"]:
            rc, out, err, _ = run([binary, "saliency", model, "--input", x, "--method", "deconvnet",
                                   "--out", os.path.join(tmp, "r"), "--threads", str(threads)])
            notes.append("deconvnet without --nonrelu: " + ("refused at " + (f"`{NODE.search(err).group(1)}` ({NODE.search(err).group(2)})"
                                                                             if NODE.search(err) else first_line(err))
                                                            if rc == 1 else f"exit {rc} (expected a refusal)"))
        rc, out, err, _ = run([binary, "bench", model, "--input", x, "--what", "saliency", "--iters", str(iters),
                               "--warmup", "1", "--threads", str(threads)])
        m = re.search(r"median\s+([\d.]+)\s*ms", out)
        if rc == 0 and m:
            row["ms"] = f"{float(m.group(1)):.0f}"
        else:
            notes.append("bench failed: " + first_line(err))
        row["status"] = "runs" + ("" if manifest["all_relu"] else " (deconvnet/guided with --nonrelu gradient)")
        row["notes"] = "; ".join(notes)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "reports", "torchvision-families.md"))
    parser.add_argument("--families", default="")
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--export", action="store_true", help="run tools/export_torchvision_families.py first")
    args = parser.parse_args()

    from export_torchvision_families import available_families
    exports = os.path.join(args.build, "torchvision-families")
    families = [f for f, _ in available_families()]
    if args.families:
        families = [f for f in args.families.split(",") if f]
    if args.export:
        subprocess.run(["nice", sys.executable, os.path.join(ROOT, "tools", "export_torchvision_families.py"), exports,
                        "--families", ",".join(families)])
    binary = os.path.join(args.build, "deepinside")
    if not os.access(binary, os.X_OK):
        sys.exit(f"{binary} is not built")
    export_log = os.path.join(args.build, "torchvision-families.log")
    failures = {}
    if os.path.exists(export_log):
        for line in open(export_log):
            m = re.match(r"(\w+): FAILED: (.*)", line.strip())
            if m:
                failures[m.group(1)] = m.group(2)

    rows = []
    started = time.perf_counter()
    for f in families:
        for n in OPSETS:
            d = os.path.join(exports, f"{f}-opset{n}")
            manifest_file = os.path.join(d, "manifest.json")
            if not os.path.exists(manifest_file):
                rows.append([f, str(n), "", "", "not exported: " + failures.get(f, "no export in " + d), "", "", ""])
                continue
            manifest = json.load(open(manifest_file))
            r = status_of(binary, d, manifest, args.iters, args.threads)
            rows.append([f, str(n), f"{manifest['onnx_parameters']:,}", "yes" if manifest["all_relu"] else "no",
                         r["status"], r["logits"], r["ms"], r["notes"]])
            print(" | ".join(rows[-1]), flush=True)

    if args.families and os.path.exists(args.out):
        # Only some families were run: keep the report's rows of the others, in FAMILIES order.
        kept = {}
        for line in open(args.out):
            cells = [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]
            if line.startswith("| ") and len(cells) == 8 and cells[1].isdigit() and cells[0] not in families:
                kept[(cells[0], cells[1])] = cells
        new = {(r[0], r[1]): r for r in rows}
        order = [f for f, _ in available_families()]
        rows = [r for key, r in sorted({**kept, **new}.items(),
                                       key=lambda kv: (order.index(kv[0][0]) if kv[0][0] in order else 99, kv[0][1]))]
    runs = sum(1 for r in rows if r[4].startswith("runs"))
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    rc, head, _, _ = run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    lines = [
        "# torchvision families: what deepinside runs",
        "",
        f"Written by `tools/torchvision_status.py` on {datetime.date.today().isoformat()} (commit {head.strip()}, "
        f"working tree as it was), {cpu}, {os.cpu_count()} CPUs, `--threads {args.threads}`; "
        f"{runs} of {len(rows)} family × opset exports run.",
        "",
        "Models: `tools/export_torchvision_families.py` (torchvision's classifiers with seeded random weights, "
        "`torch.onnx.export` defaults, dynamic batch). *parameters*: float values in the ONNX file (batch norm "
        "folded into convolutions). *all-ReLU*: no nonlinearity but ReLU (else DeconvNet and guided need "
        "`--nonrelu gradient`). *status*: `runs` when `info`, `forward` and `saliency --method "
        "gradient,deconvnet,guided` all succeed, else the first refusal with the op and the message. "
        "*logits*: rel L2 of `deepinside forward` against PyTorch in float64. *ms*: median of "
        f"`deepinside bench --what saliency --iters {args.iters}` (forward and one gradient map, model "
        "loading excluded). The numerical certificate of the signals is tests/torchvision/families_test.cpp.",
        "",
        "| family | opset | parameters | all-ReLU | status | logits rel L2 | ms per map | notes |",
        "| --- | ---: | ---: | :---: | --- | ---: | ---: | --- |",
    ]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    lines += ["", f"Table computed in {time.perf_counter() - started:.0f} s."]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    from atomic_write import write_atomically
    write_atomically(args.out, ("\n".join(lines) + "\n").encode())
    print(f"wrote {args.out}: {runs} of {len(rows)} run")


if __name__ == "__main__":
    main()
