#!/usr/bin/env bash
# The README's speed table: deepinside against PyTorch (Debian's python3-torch) and ONNX Runtime
# (npm onnxruntime-node, if it can be installed), on the same machine in the same run, at 2 threads.
# Each row also gives our arithmetic rate as a share of oneDNN's sgemm peak on this machine, measured
# first by tools/sgemm_peak.cpp (built on demand), and the peak resident memory of both sides. Rows of
# a convolution-bound model (VGG-16, ResNet-50, MobileNetV2) below 60 % of that peak are run once more
# after the table with DNNL_VERBOSE=1 (tools/bench_profile.sh) to say where the time goes.
# Exports VGG-16, ResNet-50 and MobileNetV2 (random weights, tools/export_torchvision.py) into
# build/bench/ on first use, and again with an open batch axis into build/bench/open-batch/ for the
# batch-64 rows. Prints Markdown; every command's output is kept in build/bench/logs/.
#
# Usage: tools/bench.sh [--isa NAME] [ITERS]   (run on a quiet machine; at ITERS 10 it takes tens of minutes)
#   ITERS        timed iterations per row (default 10); the batch-64 rows of the 224×224 models, which
#                take seconds per call, run max(2, ITERS/5) after one warm-up
#   --isa NAME   cap oneDNN's ISA for deepinside's side only (DNNL_MAX_CPU_ISA=NAME, e.g. avx2: an
#                AVX2-only machine emulated on an AVX-512 one); the sgemm peak is measured under the
#                same cap, PyTorch and ONNX Runtime run as they are. BENCH_ISA=NAME does the same.
# BENCH_BUILD_DIR: the build directory with deepinside (and sgemm_peak), default build; the exports,
# ONNX Runtime and the logs go to BENCH_BUILD_DIR/bench.
# BENCH_ONLY=REGEX: only the rows whose "KEY BATCH WHAT" matches (extended regex; KEY is vgg16,
# resnet50, mobilenet_v2 or bundled), e.g. BENCH_ONLY='^resnet50 64 ' or BENCH_ONLY=bundled.
set -euo pipefail
cd "$(dirname "$0")/.."
iters=10
isa_cap=${BENCH_ISA:-}
while [ $# -gt 0 ]; do
  case $1 in
    --isa) [ $# -ge 2 ] || { echo "bench: --isa needs a value (e.g. avx2)" >&2; exit 2; }; isa_cap=$2; shift 2 ;;
    --isa=*) isa_cap=${1#--isa=}; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *[!0-9]*|'') echo "bench: unknown argument '$1' (usage: tools/bench.sh [--isa NAME] [ITERS])" >&2; exit 2 ;;
    *) iters=$1; shift ;;
  esac
done
[ "$iters" -ge 1 ] || { echo "bench: ITERS must be positive" >&2; exit 2; }
big_iters=$((iters / 5 > 2 ? iters / 5 : 2))
threads=2
build=${BENCH_BUILD_DIR:-build}
bin=$build/deepinside
peak_bin=$build/sgemm_peak
py=/usr/bin/python3
out=$build/bench
logs=$out/logs
mkdir -p "$out" "$logs"
[ -x "$bin" ] || { echo "bench: build first (tools/run.sh)" >&2; exit 1; }
if [ ! -x "$peak_bin" ]; then
  cmake --build "$build" --target sgemm_peak > "$logs/sgemm_peak-build.log" 2>&1 ||
    { echo "bench: building sgemm_peak failed; see $logs/sgemm_peak-build.log" >&2; exit 1; }
fi
only=${BENCH_ONLY:-}
ort=""
if command -v node > /dev/null && { [ -d "$out/ort/node_modules/onnxruntime-node" ] || \
     npm install --silent --ignore-scripts --prefix "$out/ort" onnxruntime-node > /dev/null 2>&1; }; then
  ort="$out/ort/node_modules"
fi

# Our side's environment: the thread count, and the ISA cap of --isa (not given to the other sides).
ours_env=("OMP_NUM_THREADS=$threads")
[ -z "$isa_cap" ] || ours_env+=("DNNL_MAX_CPU_ISA=${isa_cap^^}")
ours() { env "${ours_env[@]}" "$bin" bench "$@" --threads $threads; }
theirs() { OMP_NUM_THREADS=$threads $py tools/bench_pytorch.py "$@" --threads $threads; }
field() { awk -v k="$1" '$1 == k {print $2; exit}' "$2"; } # KEY FILE: the value of line `KEY value ...`
is_number() { [[ $1 =~ ^[0-9]+(\.[0-9]*)?$ ]]; }
mb() { if is_number "$1"; then printf "%.0f" "$1"; else echo "?"; fi; }
ratio() { if is_number "$1" && is_number "$2"; then awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; else echo "–"; fi; }

# Which machine the figures come from: the CPU, the ISA oneDNN dispatches to for our side
# (DNNL_MAX_CPU_ISA, when set, caps it: AVX2 emulates an AVX2-only machine on an AVX-512 one), the
# commit and the load.
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
isa=$(env DNNL_VERBOSE=1 "${ours_env[@]}" "$bin" classify models/fashion-mnist-convnet.onnx models/images/0000-ankle-boot.png \
        2>/dev/null | sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -n 1)
cap=${isa_cap:+ (capped by --isa: DNNL_MAX_CPU_ISA=${isa_cap^^} for deepinside and the sgemm peak only)}
[ -n "$cap" ] || cap=${DNNL_MAX_CPU_ISA:+ (DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA in the environment)}
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
git diff --quiet HEAD -- lib include cli CMakeLists.txt 2> /dev/null || commit="$commit with uncommitted changes"
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# The ceiling our GFLOP/s are held to: oneDNN's sgemm at the same threads and ISA, measured before and
# after the rows; the higher figure is the machine's (a busy moment only lowers it), the gap between
# the two says how much the load moved during the run.
sgemm_peak() { # LOG: prints the peak GFLOP/s
  env "${ours_env[@]}" "$peak_bin" --threads $threads > "$1" 2>&1 || { echo "bench: sgemm_peak failed; see $1" >&2; exit 1; }
  field peak_gflops "$1"
}
peak_before=$(sgemm_peak "$logs/sgemm_peak-before.txt")

# Each row's cells, printed once the peak after the run is known: key|name|model|batch|what|ms|GFLOP/s|rest
rows=()
ort_version=""
row() { # KEY NAME MODEL TORCH-ARGS BATCH WHAT SHAPE ITERS WARMUP [OUR-FLAGS]
  local key=$1 name=$2 model=$3 targs=$4 batch=$5 what=$6 shape=$7 n=$8 warm=$9 flags=${10:-}
  local base=$logs/$key-b$batch-$what
  [[ -z $only || "$key $batch $what" =~ $only ]] || return 0
  [ -z "$flags" ] || base=$base-${flags//[^a-z]/}
  echo "bench: $name, batch $batch, $what" >&2
  # The torchvision models are exported on first use: batch 1 from the fixed-batch file the earlier
  # tables were measured on, batch 64 from a second export with the batch axis open.
  if [ "$key" != bundled ] && [ ! -f "$model" ]; then
    local flag="" log=$logs/export-$key.log
    [ "$batch" = 1 ] || { flag=--dynamic-batch; log=$logs/export-$key-open-batch.log; }
    # shellcheck disable=SC2086  # an empty flag is no argument
    $py tools/export_torchvision.py "$(dirname "$(dirname "$model")")" --archs "$key" $flag > "$log" 2>&1 ||
      { echo "bench: exporting $key failed; see $log" >&2; exit 1; }
  fi
  local ms="failed" gf="–" t="failed" ort_ms="–" ort_ratio="–" rss_ours="?" rss_theirs="?"
  # shellcheck disable=SC2086  # OUR-FLAGS may be several words, or none
  if ours "$model" --batch "$batch" --what "$what" --iters "$n" --warmup "$warm" $flags > "$base-deepinside.txt" 2>&1; then
    ms=$(field median "$base-deepinside.txt")
    gf=$(field gflops_per_s "$base-deepinside.txt")
    rss_ours=$(mb "$(field peak_rss_mb "$base-deepinside.txt")")
  else
    echo "bench: deepinside failed on $name batch $batch $what; see $base-deepinside.txt" >&2
  fi
  # shellcheck disable=SC2086  # TORCH-ARGS is several words
  if theirs $targs --batch "$batch" --what "$what" --iters "$n" --warmup "$warm" > "$base-pytorch.txt" 2>&1; then
    t=$(field median "$base-pytorch.txt")
    rss_theirs=$(mb "$(field peak_rss_mb "$base-pytorch.txt")")
  else
    echo "bench: PyTorch failed on $name batch $batch $what; see $base-pytorch.txt" >&2
  fi
  if [ "$what" = forward ] && [ -n "$ort" ]; then
    if NODE_PATH="$ort" node tools/bench_onnxruntime.js "$model" --shape "$shape" --iters "$n" --warmup "$warm" \
         --threads $threads > "$base-onnxruntime.txt" 2>&1; then
      ort_ms=$(field median "$base-onnxruntime.txt")
      ort_ratio=$(ratio "$ms" "$ort_ms")
      ort_version=$(awk '$1 == "onnxruntime" {print $2}' "$base-onnxruntime.txt")
    else
      ort_ms="failed"
      echo "bench: ONNX Runtime failed on $name batch $batch; see $base-onnxruntime.txt" >&2
    fi
  fi
  rows+=("$key|$name|$model|$batch|$what|$ms|$gf|$t | $(ratio "$ms" "$t") | $ort_ms | $ort_ratio | $rss_ours / $rss_theirs")
}

bundled=models/fashion-mnist-convnet.onnx
large() { # WHAT BATCH: the rows of the 224×224 models (batch 64 on the open-batch exports, fewer iterations)
  local what=$1 b=$2 dir=$out n=$iters warm=3
  [ "$b" = 1 ] || { dir=$out/open-batch; n=$big_iters; warm=1; }
  row vgg16 VGG-16 "$dir/vgg16/model.onnx" "--arch vgg16 --size 224" "$b" "$what" "$b,3,224,224" "$n" "$warm"
  row resnet50 ResNet-50 "$dir/resnet50/model.onnx" "--arch resnet50 --size 224" "$b" "$what" "$b,3,224,224" "$n" "$warm"
  # No saliency-all: MobileNetV2's ReLU6 is not a ReLU (see the footnote).
  [ "$what" = saliency-all ] ||
    row mobilenet_v2 MobileNetV2 "$dir/mobilenet_v2/model.onnx" "--arch mobilenet_v2 --size 224" "$b" "$what" "$b,3,224,224" "$n" "$warm"
}
for what in forward saliency saliency-all; do
  large $what 1
  [ $what != forward ] || large $what 64
  for b in 1 64; do
    row bundled "bundled 28×28" $bundled "--arch fashion" $b $what $b,1,28,28 "$iters" 3
  done
done
# The same rows with --winograd, where it applies (3x3 stride-1 convolutions on AVX-512; MobileNetV2
# has none outside its depthwise layers). Not the default: it rounds more (README "Speed").
for what in forward saliency saliency-all; do
  row vgg16 "VGG-16 --winograd" "$out/vgg16/model.onnx" "--arch vgg16 --size 224" 1 "$what" 1,3,224,224 "$iters" 3 --winograd
  row resnet50 "ResNet-50 --winograd" "$out/resnet50/model.onnx" "--arch resnet50 --size 224" 1 "$what" 1,3,224,224 "$iters" 3 --winograd
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
peak_after=$(sgemm_peak "$logs/sgemm_peak-after.txt")
peak=$(awk -v a="$peak_before" -v b="$peak_after" 'BEGIN {print (a > b ? a : b)}')
sizes=$(awk '$1 == "size" {printf "%s%s", sep, $2; sep = ", "}' "$logs/sgemm_peak-after.txt")

echo "CPU: ${cpu:-unknown} ($(nproc) cores); oneDNN ISA for deepinside: ${isa:-unknown}$cap;" \
     "commit $commit; load average before the run: $load_before, after: $load_after"
echo
echo "oneDNN sgemm peak: $peak GFLOP/s ($threads threads, ISA $(field isa "$logs/sgemm_peak-after.txt"); the better of" \
     "$peak_before before the rows and $peak_after after them; best call of square sizes $sizes; tools/sgemm_peak.cpp)."
echo
echo "| model | batch | what | deepinside ms | GFLOP/s | % of peak | PyTorch ms | ratio | ONNX Runtime ms | ratio | RSS MB ours / PyTorch |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
profile_rows=() # the rows to explain after the table
for r in "${rows[@]}"; do
  IFS='|' read -r key name model batch what ms gf rest <<< "$r"
  pct="–"
  ! is_number "$gf" || pct=$(awk -v g="$gf" -v p="$peak" 'BEGIN {printf "%.0f", 100 * g / p}')
  echo "| $name | $batch | $what | $ms | $gf | $pct | $rest |"
  case $key in
    vgg16|resnet50|mobilenet_v2)
      if is_number "$pct" && [ "$pct" -lt 60 ] && [[ $name != *--winograd* ]]; then profile_rows+=("$name|$model|$batch|$what|$pct"); fi ;;
  esac
done
echo
echo "ratio = deepinside time / other time (below 1: deepinside is faster). % of peak = deepinside's GFLOP/s / the sgemm" \
     "peak. $(nproc) cores, $threads threads, $iters iterations ($big_iters after 1 warm-up for the 224×224 models at" \
     "batch 64), $(date -u +%Y-%m-%d)."
echo "RSS = peak resident set size of the whole process (getrusage, MB = 10^6 bytes): ours includes the model," \
     "the execution plans and every activation; PyTorch's includes the interpreter and torch's libraries."
echo "--winograd rows: Winograd's F(4x4, 3x3) on the 3x3 stride-1 convolutions (opt-in: it rounds more); their GFLOP/s" \
     "count the direct algorithm's arithmetic, so they can pass 100 % of the sgemm peak."
echo "MobileNetV2 has no saliency-all row: its ReLU6 is not a ReLU, so the DeconvNet and guided rules have no definition" \
     "there (deepinside refuses them unless --nonrelu gradient; tools/bench_pytorch.py refuses the network)."
echo "$($py -c "import torch; print('PyTorch', torch.__version__)")${ort_version:+; ONNX Runtime $ort_version}"

if [ ${#profile_rows[@]} -gt 0 ]; then
  echo
  echo "**Where the time goes** in the rows of convolution-bound models below 60 % of the sgemm peak:" \
       "each row run once more with DNNL_VERBOSE=1 (tools/bench_profile.sh), oneDNN's own time per primitive" \
       "summed over the last timed iteration."
  for r in "${profile_rows[@]}"; do
    IFS='|' read -r name model batch what pct <<< "$r"
    echo "bench: profiling $name, batch $batch, $what" >&2
    echo
    echo "*$name, batch $batch, $what: $pct % of peak.*"
    echo
    env "${ours_env[@]}" tools/bench_profile.sh "$model" --what "$what" --batch "$batch" --threads $threads --bin "$bin" \
      2> "$logs/profile-stderr.txt" || echo "(tools/bench_profile.sh failed; see $logs/profile-stderr.txt)"
  done
fi
