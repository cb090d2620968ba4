#!/usr/bin/env bash
# Scaling of `deepinside saliency` from one process to two under Open MPI, on one machine: the 256
# Fashion-MNIST test images of tools/bench_batch.sh (made by it, in build/bench-batch/fashion/) with
# the bundled model and all three methods, wall clock of the whole command, the median of --repeat
# runs, the two ways alternating. One process runs with --threads 2; under `mpirun -n 2` each rank
# takes its default (the machine's CPUs shared between the ranks on it: 1 thread each). Also checks
# that both ways wrote the same files with the same bytes.
# Usage: tools/bench_mpi.sh [--repeat N]   (default 5)
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=5
[ "${1:-}" = "--repeat" ] && repeat=$2
bin=build/deepinside
model=models/fashion-mnist-convnet.onnx
images=build/bench-batch/fashion
[ -d "$images" ] || /usr/bin/python3 tools/bench_batch_pytorch.py prepare build/bench-batch > /dev/null
out=build/bench-mpi
mpirun=(mpirun --oversubscribe -n 2)
[ "$(id -u)" -eq 0 ] && mpirun=(mpirun --allow-run-as-root --oversubscribe -n 2)
args=(saliency "$model" "$images" --method gradient,deconvnet,guided)

seconds() { # prints the wall-clock seconds of "$@"
  local start end
  start=$(date +%s%N)
  "$@" > /dev/null
  end=$(date +%s%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "bench_mpi: load before: $(cut -d' ' -f1-3 /proc/loadavg)"
one=() two=()
for ((i = 1; i <= repeat; ++i)); do
  rm -rf "$out"
  one+=("$(seconds "$bin" "${args[@]}" --threads 2 --out "$out/one/")")
  two+=("$(seconds "${mpirun[@]}" "$bin" "${args[@]}" --out "$out/two/")")
done
diff -r -q "$out/one" "$out/two" > /dev/null || { echo "bench_mpi: the two runs wrote different files" >&2; exit 1; }
m1=$(printf '%s\n' "${one[@]}" | median)
m2=$(printf '%s\n' "${two[@]}" | median)
files=$(find "$out/one" -type f | wc -l)
echo "bench_mpi: load after: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| processes | threads each | images | maps | median s (of %d) | speed-up |\n| --- | --- | --- | --- | --- | --- |\n' "$repeat"
printf '| 1 | 2 | 256 | 768 | %.2f | 1.00 |\n' "$m1"
printf '| 2 (mpirun -n 2) | 1 | 256 | 768 | %.2f | %.2f |\n' "$m2" "$(awk -v a="$m1" -v b="$m2" 'BEGIN { print a / b }')"
echo "bench_mpi: $files files, identical in both runs; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs"
