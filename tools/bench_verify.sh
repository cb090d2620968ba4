#!/usr/bin/env bash
# The README's verifier timings: `deepinside verify` run REPS times (bench-style repetition, never a
# timed test) on the bundled model (one image) and on VGG-16 at 224x224 (random weights, exported
# into build/bench/ as tools/bench.sh does), at 2 threads. Prints the median wall time, the spread,
# the phases of the median run and the peak resident memory (GNU time, when installed).
# Usage: tools/bench_verify.sh [REPS]   (run on a quiet machine)
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-3}
threads=2
bin=build/deepinside
py=/usr/bin/python3
out=build/bench
[ -x "$bin" ] || { echo "bench_verify: build first (tools/run.sh)" >&2; exit 1; }
[ -f "$out/vgg16/model.onnx" ] || $py tools/export_torchvision.py "$out" --archs vgg16 > "$out/export-vgg16.log" 2>&1
timer=()
[ -x /usr/bin/time ] && timer=(/usr/bin/time -f "%M")

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "CPU: ${cpu:-unknown} ($(nproc) cores); commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown);" \
     "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg); $reps runs each, $threads threads"
echo
echo "| model | median s | min s | max s | peak memory | phases of the median run (s) |"
echo "| --- | --- | --- | --- | --- | --- |"
run() { # name args...
  local name=$1; shift
  local times=() phases=() mems=() tmp
  tmp=$(mktemp -d)
  for ((i = 0; i < reps; i++)); do
    local start end
    start=$(date +%s.%N)
    OMP_NUM_THREADS=$threads "${timer[@]}" "$bin" verify "$@" --threads $threads > "$tmp/out" 2> "$tmp/err" \
      || { echo "bench_verify: $name failed: $(tail -n 1 "$tmp/err")" >&2; rm -rf "$tmp"; return 1; }
    end=$(date +%s.%N)
    times+=("$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')")
    phases+=("$(sed -n 's/.*certificate holds in [0-9.]* s (\(.*\))$/\1/p' "$tmp/out" | head -n 1)")
    mems+=("$( [ ${#timer[@]} -gt 0 ] && tail -n 1 "$tmp/err" || echo "")")
  done
  rm -rf "$tmp"
  # The median run by time; its phases and memory.
  local order median_index
  order=$(for i in "${!times[@]}"; do echo "${times[$i]} $i"; done | sort -g)
  median_index=$(echo "$order" | sed -n "$(( (reps + 1) / 2 ))p" | cut -d' ' -f2)
  local mem=${mems[$median_index]}
  printf '| %s | %.2f | %.2f | %.2f | %s | %s |\n' "$name" "${times[$median_index]}" \
    "$(echo "$order" | head -n 1 | cut -d' ' -f1)" "$(echo "$order" | tail -n 1 | cut -d' ' -f1)" \
    "${mem:+$((mem / 1024)) MiB}" "${phases[$median_index]}"
}
run "bundled model, 1 image (28x28)" models/fashion-mnist-convnet.onnx models/images/0000-ankle-boot.png
run "VGG-16, 1 image (224x224)" "$out/vgg16/model.onnx" --input "$out/vgg16/input.npy"
