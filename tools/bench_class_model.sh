#!/usr/bin/env bash
# Class model images at ImageNet size: `deepinside class-model` on VGG-16 (224x224, seeded random
# weights exported by tools/export_torchvision.py into build/bench/vgg16/, as tools/bench.sh does)
# for 10 classes in one batch, against Debian's PyTorch doing the same ascent on the same weights
# (tools/bench_class_model.py), in the same run, at the same thread count. Prints a Markdown row.
#
# Both times exclude loading and compiling the model (deepinside: reading the 528 MB ONNX file and
# creating the forward primitives; PyTorch: building the model) and include every step (one forward
# and one backward pass of the batch, and the update) plus the final forward pass for the end scores;
# deepinside's also includes creating its backward primitives (on the first step).
# Usage: tools/bench_class_model.sh [--steps N] [--threads T] [--our-isa ISA]   (defaults: 200 steps, 2 threads)
#   --our-isa AVX2 runs our side under DNNL_MAX_CPU_ISA=AVX2 (an AVX2-only machine, emulated; PyTorch
#   keeps its own dispatch).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=200
threads=2
our_isa=""
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --our-isa) our_isa=$2; shift 2 ;;
    *) echo "usage: $0 [--steps N] [--threads T] [--our-isa ISA]" >&2; exit 2 ;;
  esac
done
bin=build/deepinside
py=/usr/bin/python3
out=build/bench
lr=0.1
l2=0.05
classes=0,1,2,3,4,5,6,7,8,9
[ -x "$bin" ] || { echo "bench_class_model: build first (tools/run.sh)" >&2; exit 1; }
mkdir -p "$out/class-model"
[ -f "$out/vgg16/model.onnx" ] || $py tools/export_torchvision.py "$out" --archs vgg16 > "$out/export-vgg16.log" 2>&1

echo "CPU: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1) ($(nproc) cores); load average before the run:" \
     "$(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
env ${our_isa:+DNNL_MAX_CPU_ISA=$our_isa} OMP_NUM_THREADS=$threads $bin class-model "$out/vgg16/model.onnx" --class "$classes" --steps "$steps" --lr $lr --l2 $l2 \
    --threads "$threads" --out "$out/class-model/vgg16" > "$out/class-model/deepinside.log"
ours=$($py -c "import json, sys; print(json.load(open(sys.argv[1]))['time_s']['ascent'])" "$out/class-model/vgg16.json")
theirs_log=$(OMP_NUM_THREADS=$threads $py tools/bench_class_model.py --arch vgg16 --size 224 --classes "$classes" --steps "$steps" \
    --lr $lr --l2 $l2 --threads "$threads")
echo "$theirs_log" > "$out/class-model/pytorch.log"
theirs=$(echo "$theirs_log" | awk '/^ascent/ {print $2}')
echo
echo "| model | classes (batch) | steps | deepinside s | ms/step | PyTorch s | ms/step | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
awk -v a="$ours" -v b="$theirs" -v n="$steps" 'BEGIN {
  printf "| VGG-16 224×224 | 10 | %d | %.2f | %.0f | %.2f | %.0f | %.2f |\n", n, a, 1e3 * a / n, b, 1e3 * b / n, a / b }'
echo
echo "ratio = deepinside time / PyTorch time (goal: <= 0.6). $threads threads, lr $lr, l2 $l2, zero start; model load excluded on both sides.${our_isa:+ Our side under DNNL_MAX_CPU_ISA=$our_isa.}"
echo "$($py -c "import torch; print('PyTorch', torch.__version__)"); logs in $out/class-model/"
