#!/usr/bin/python3
"""The README's correctness figures, read from the logs tools/test.sh keeps (build/test-logs/).

For each pass of test.sh (default ISA, AVX2 with 1 thread, AVX512_CORE with 2 threads) this prints
the largest value of every measure the tests report, and the kink/switch decisions on which our f32
forward and the double forward differed, so that the README's table is a command anyone can rerun:

    tools/test.sh && /usr/bin/python3 tools/correctness_figures.py [build/test-logs]
"""

import collections
import pathlib
import re
import sys

NUMBER = r"([0-9.]+(?:e[-+]?[0-9]+)?)"

# (label, regex with one number group): the largest match over a pass is reported.
MEASURES = [
    ("shared models, forward vs ONNX Runtime (rel L2)", rf"forward vs ONNX Runtime, relative L2 error {NUMBER}"),
    ("SqueezeNet (PyTorch 2.11 export) dS/dx vs PyTorch 2.11 (rel L2)", rf"squeezenet: gradient vs PyTorch, relative L2 error {NUMBER}"),
    ("shared + bundled models, activations vs double reference (rel L2)", rf"forward, max rel L2 over \d+ activations {NUMBER}"),
    ("shared + bundled models, signals vs double reference on our forward (rel L2)",
     rf"(?:at the input|at '[^']*'|channel \d+, \w+), rel L2 {NUMBER}"),
    ("op sweeps, forward vs double reference (rel L2)", rf"max forward rel L2 {NUMBER}"),
    ("op sweeps, backward vs double reference (rel L2)", rf"max backward rel L2 {NUMBER}"),
    ("central differences in double (relative)", rf"coordinates checked, \d+ skipped \(kink crossed\), max relative error {NUMBER}"),
    ("torchvision logits vs PyTorch float64 (rel L2)", rf"logits rel L2 vs PyTorch float64 {NUMBER}"),
    ("torchvision activations vs double reference (rel L2)", rf"worst activation rel L2 vs double reference {NUMBER}"),
    ("torchvision signals vs double reference on our forward (rel L2)", rf"ours vs reference on our forward {NUMBER}"),
    ("torchvision double reference vs PyTorch float64 (rel L2)", rf"reference vs PyTorch float64 {NUMBER}"),
    ("torchvision directional differences of our f32 S_c (relative)", rf"direction \d+ fd \S+ <g,d> \S+ rel {NUMBER}"),
]

DECISIONS = re.compile(r"(\w+): decisions that differ between our f32 and the double forward:(.*)")
SIGNAL = re.compile(rf"(\w+): (\w+) rel L2: ours vs reference on our forward \S+; reference vs PyTorch float64 \S+; "
                    rf"ours vs PyTorch {NUMBER}; moved by the (\d+) differing decisions: {NUMBER}")


def strip(line):
    return re.sub(r"\x1b\[[0-9;]*m", "", line)


def report(name, text, isa):
    if not any(re.search(pattern, text) for _, pattern in MEASURES):
        return  # a log without figures (the fuzzers')
    print(f"## {name}" + (f" (oneDNN ISA: {isa})" if isa else ""))
    for label, pattern in MEASURES:
        values = [float(m.group(1)) for m in re.finditer(pattern, text)]
        if values:
            print(f"- {label}: max {max(values):.2g} over {len(values)}")
    flips = collections.OrderedDict()
    for m in DECISIONS.finditer(text):
        flips[m.group(1)] = " ".join(m.group(2).split())
    if flips:
        print("- decisions where our f32 forward and the double forward differ (differing/total):")
        for arch, counts in flips.items():
            print(f"  - {arch}: {counts}")
    moved = [m for m in SIGNAL.finditer(text) if int(m.group(4)) > 0]
    for m in moved:
        print(f"  - {m.group(1)} {m.group(2)}: ours vs PyTorch float64 {float(m.group(3)):.2g}, "
              f"of which {m.group(4)} differing decisions account for {float(m.group(5)):.2g}")
    print()


def main():
    logs = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build/test-logs")
    if not logs.is_dir():
        sys.exit(f"{logs}: no such folder; run tools/test.sh first")
    for log in sorted(logs.glob("*.log")):
        name = log.stem
        text = "\n".join(strip(line) for line in log.read_text(errors="replace").splitlines())
        header = logs / f"{name}.isa.txt"  # written by test.sh: the ISA and thread count of the pass
        isa = header.read_text().strip() if header.exists() else ""
        report(name, text, isa)


if __name__ == "__main__":
    main()
