#!/usr/bin/env bash
# The README's speed table: deepinside against PyTorch (Debian's python3-torch) and ONNX Runtime
# (npm onnxruntime-node, if it can be installed), on the same machine in the same run, at 2 threads.
# Exports VGG-16 and ResNet-50 (random weights) into build/bench/ first. Prints a Markdown table.
# Usage: tools/bench.sh [ITERS]   (run on a quiet machine; it takes about 15 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-10}
threads=2
bin=build/deepinside
py=/usr/bin/python3
out=build/bench
mkdir -p "$out"
[ -x "$bin" ] || { echo "bench: build first (tools/run.sh)" >&2; exit 1; }
for arch in vgg16 resnet50; do
  [ -f "$out/$arch/model.onnx" ] || $py tools/export_torchvision.py "$out" --archs "$arch" > "$out/export-$arch.log" 2>&1
done
ort=""
if command -v node > /dev/null && { [ -d "$out/ort/node_modules/onnxruntime-node" ] || \
     npm install --silent --ignore-scripts --prefix "$out/ort" onnxruntime-node > /dev/null 2>&1; }; then
  ort="$out/ort/node_modules"
fi

median() { awk '/^median/ {print $2}'; }
ours() { OMP_NUM_THREADS=$threads $bin bench "$@" --iters "$iters" --threads $threads; }
theirs() { OMP_NUM_THREADS=$threads $py tools/bench_pytorch.py "$@" --iters "$iters" --threads $threads; }

# Which machine the figures come from: the CPU, and the ISA oneDNN dispatches to for our side
# (DNNL_MAX_CPU_ISA, when set, caps it: AVX2 emulates an AVX2-only machine on an AVX-512 one).
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
isa=$(DNNL_VERBOSE=1 OMP_NUM_THREADS=$threads $bin classify models/fashion-mnist-convnet.onnx models/images/0000-ankle-boot.png \
        2>/dev/null | sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -n 1)
echo "CPU: ${cpu:-unknown} ($(nproc) cores); oneDNN ISA for deepinside: ${isa:-unknown}${DNNL_MAX_CPU_ISA:+ (DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA)};" \
     "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| model | batch | what | deepinside ms | GFLOP/s | PyTorch ms | ratio | ONNX Runtime ms | ratio |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
row() { # name model-args torch-args batch what shape
  local name=$1 margs=$2 targs=$3 batch=$4 what=$5 shape=$6
  local o t r
  o=$(ours $margs --batch "$batch" --what "$what")
  local ms gf
  ms=$(echo "$o" | median)
  gf=$(echo "$o" | awk '/^gflops_per_s/ {print $2}')
  t=$(theirs $targs --batch "$batch" --what "$what" | median)
  local ort_ms="–" ort_ratio="–"
  if [ "$what" = forward ] && [ -n "$ort" ]; then
    ort_ms=$(NODE_PATH="$ort" node tools/bench_onnxruntime.js "${margs%% *}" --shape "$shape" --iters "$iters" --threads $threads | median)
    ort_ratio=$(awk -v a="$ms" -v b="$ort_ms" 'BEGIN {printf "%.2f", a / b}')
  fi
  r=$(awk -v a="$ms" -v b="$t" 'BEGIN {printf "%.2f", a / b}')
  echo "| $name | $batch | $what | $ms | $gf | $t | $r | $ort_ms | $ort_ratio |"
}
for what in forward saliency saliency-all; do
  row VGG-16 "$out/vgg16/model.onnx" "--arch vgg16 --size 224" 1 $what 1,3,224,224
  row ResNet-50 "$out/resnet50/model.onnx" "--arch resnet50 --size 224" 1 $what 1,3,224,224
  for b in 1 64; do
    row "bundled 28×28" "models/fashion-mnist-convnet.onnx" "--arch fashion" $b $what $b,1,28,28
  done
done
echo
echo "ratio = deepinside time / other time (below 1: deepinside is faster). $(nproc) cores, $threads threads, $iters iterations, $(date -u +%Y-%m-%d)."
$py -c "import torch; print('PyTorch', torch.__version__)"
