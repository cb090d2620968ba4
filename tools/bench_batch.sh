#!/usr/bin/env bash
# Issue 10's speed goal, measured end to end as a user runs it: saliency maps of 256 Fashion-MNIST
# test images (the bundled models/fashion-mnist-convnet.onnx) and of 64 pictures at 224x224 on
# ResNet-18, by `deepinside saliency MODEL DIR --out OUT/ --no-overlay`, against PyTorch doing the
# same work with batches (tools/bench_batch_pytorch.py: load the model, decode every picture with
# PIL, preprocess, forward + backward of each image's top-1 score per batch, write the same
# .grad.npy/.npy/.png files), in the same run, on the same weights, at the same thread count.
# Goal: ours <= 0.5 x PyTorch's time. Wall clock of the whole process on both sides (PyTorch's
# includes starting Python and `import torch`; the time without them is reported beside it).
#
# Inputs (made once into build/bench-batch/ by `tools/bench_batch_pytorch.py prepare`, then reused):
#   fashion/NNNN.png   the first 256 Fashion-MNIST test images (Debian's dataset-fashion-mnist)
#   photos/NNNN.jpg    64 deterministic synthetic photo-like 400x300 JPEGs (no photos on the machine);
#                      both sides preprocess them as torchvision's ImageNet recipe (resize shorter side
#                      to 256, antialiased; centre crop 224; ImageNet mean/std): deepinside's
#                      --preset imagenet
#   resnet18.pt / resnet18.onnx  tools/export_torchvision.py's resnet18_bn weights (seeded random,
#                      batch norm folded by the default export as users get it), re-exported with the batch axis open; fashion.pt the bundled
#                      model's weights in tools/train_fashion_mnist.py's FashionConvNet
#
# Rows (each timed --repeat times, the two sides alternating; medians reported): gradient alone and
# gradient,deconvnet,guided (ours: one backward pass of the stacked batch; PyTorch: three
# forward+backward passes with the ReLU rules swapped in), PyTorch at our default batch and at its
# whole set as one batch (ResNet-18 with three methods: only at whichever of the two was faster for
# the gradient). Then (unless --no-analysis, one run each, our side only) where our time goes: --batch
# sweeps, fsync waits (strace), compute alone (`deepinside bench`), model load and decode.
# A `sync` (untimed) precedes every timed run, so that neither side pays for the other's writeback.
#
# Prints a Markdown report and writes it to reports/bench-batch.md.
# Usage: tools/bench_batch.sh [--repeat N] [--threads T] [--no-analysis] [--report-only]   (defaults: 3, 2)
#   --report-only: no timed runs; the report from the last run's build/bench-batch/results (and, unless
#   --no-analysis, the analysis run again). About 25 minutes on a busy 2-core machine, 3 repeats.
set -euo pipefail
cd "$(dirname "$0")/.."
repeat=3
threads=2
analysis=1
report_only=0
usage() { echo "usage: $0 [--repeat N] [--threads T] [--no-analysis] [--report-only]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) [ $# -ge 2 ] || usage; repeat=$2; shift 2 ;;
    --threads) [ $# -ge 2 ] || usage; threads=$2; shift 2 ;;
    --no-analysis) analysis=0; shift ;;
    --report-only) report_only=1; shift ;;
    *) usage ;;
  esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ && "$threads" =~ ^[1-9][0-9]*$ ]] || usage

bin=build/deepinside
py=/usr/bin/python3
pyside=tools/bench_batch_pytorch.py
work=build/bench-batch
report=reports/bench-batch.md
[ -x "$bin" ] || { echo "bench_batch: build first (cmake --build build --target deepinside)" >&2; exit 1; }
mkdir -p "$work/out" "$work/results"
[ $report_only = 1 ] || rm -f "$work"/results/*
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date +%s)

echo "bench_batch: preparing inputs in $work (once)" >&2
$py "$pyside" prepare "$work" > "$work/prepare.log" 2>&1 || { cat "$work/prepare.log" >&2; exit 1; }
fashion_onnx=models/fashion-mnist-convnet.onnx
resnet_onnx=$work/resnet18.onnx
export OMP_NUM_THREADS=$threads

# Peak RSS: /usr/bin/time's %M where it exists, else VmHWM polled from /proc (a short run may end
# between two polls; the figure is then the last one seen).
have_time=0
[ -x /usr/bin/time ] && have_time=1
run_measured() { # LOG RSSFILE CMD...: runs CMD with stdout+stderr to LOG, writes its peak RSS (KiB)
  local log=$1 rssf=$2
  shift 2
  if [ $have_time = 1 ]; then
    /usr/bin/time -f %M -o "$rssf" "$@" > "$log" 2>&1
  else
    "$@" > "$log" 2>&1 &
    local pid=$! hwm=0 v
    while kill -0 "$pid" 2> /dev/null; do
      v=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$pid/status" 2> /dev/null || true)
      [ -n "$v" ] && hwm=$v
      sleep 0.05
    done
    wait "$pid"
    echo "$hwm" > "$rssf"
  fi
}

timed() { # KEY OUTDIR CMD...: one timed run, appended to results/KEY as "seconds rss_kib [seconds_after_import]"
  local key=$1 outdir=$2
  shift 2
  rm -rf "$outdir"
  sync
  local t0 t1 log="$work/results/$key.log"
  t0=$(date +%s.%N)
  run_measured "$log" "$work/results/.rss" "$@" || { echo "bench_batch: failed: $*" >&2; cat "$log" >&2; exit 1; }
  t1=$(date +%s.%N)
  local inner
  inner=$(sed -n 's/^seconds_after_import //p' "$log")
  echo "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') $(tail -n 1 "$work/results/.rss") $inner" >> "$work/results/$key"
}

median_col() { # KEY COLUMN
  awk -v c="$2" '{print $c}' "$work/results/$1" | sort -g | awk '{v[NR] = $1} END {
    if (NR == 0) {print "–"; exit}
    if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
spread() { # KEY: min–max of the times
  awk '{print $1}' "$work/results/$1" | sort -g | awk 'NR == 1 {lo = $1} {hi = $1} END {printf "%.2f–%.2f", lo, hi}'
}

# The commands, as a user types them.
model_of() { [ "$1" = fashion ] && echo "$fashion_onnx" || echo "$resnet_onnx"; }
images_of() { [ "$1" = fashion ] && echo "$work/fashion" || echo "$work/photos"; }
pre_of() { # MODEL: sets the array pre to its preprocessing options
  pre=()
  [ "$1" = fashion ] || pre=(--preset imagenet)
}
ours() { # MODEL METHODS OUT [BATCH]: sets the array cmd to our command
  local m=$1 methods=$2 out=$3 b=${4:-}
  pre_of "$m"
  cmd=("$bin" saliency "$(model_of "$m")" "$(images_of "$m")" "${pre[@]}" --method "$methods" --out "$out/"
       --no-overlay --threads "$threads")
  [ -z "$b" ] || cmd+=(--batch "$b")
}
theirs() { # MODEL METHODS OUT BATCH: sets the array cmd to PyTorch's command
  local m=$1 methods=$2 out=$3 b=$4 model=resnet18
  [ "$m" = fashion ] && model=fashion
  cmd=("$py" "$pyside" run --model "$model" --weights "$work/$model.pt" --images "$(images_of "$m")" --out "$out"
       --batch "$b" --methods "$methods" --threads "$threads")
}

# Warm-up (untimed): page cache of both programs, their libraries, the models and the images; and
# our default batch for each model, from the JSON summary.
# Our default batch depends on the methods (each image counts once per method in the stacked
# backward pass): ours_batch[MODEL-grad] and ours_batch[MODEL-all]; default_batch[MODEL] is the
# gradient's, at which PyTorch runs too.
all=gradient,deconvnet,guided
declare -A default_batch ours_batch
for m in fashion resnet18; do
  for tag in grad all; do
    if [ $report_only = 0 ]; then
      ours "$m" "$([ $tag = grad ] && echo gradient || echo "$all")" "$work/out/warm-$m-$tag"
      "${cmd[@]}" --json "$work/out/warm-$m-$tag.json" > "$work/out/warm-$m-$tag.log" 2>&1 \
        || { echo "bench_batch: our warm-up run on $m failed:" >&2; cat "$work/out/warm-$m-$tag.log" >&2; exit 1; }
    fi
    ours_batch[$m-$tag]=$($py -c 'import json, sys; print(json.load(open(sys.argv[1]))["batch"])' "$work/out/warm-$m-$tag.json")
  done
  default_batch[$m]=${ours_batch[$m-grad]}
done
if [ $report_only = 0 ]; then
  theirs fashion gradient "$work/out/warm-pt" 64
  "${cmd[@]}" > /dev/null
fi
count_of() { [ "$1" = fashion ] && echo 256 || echo 64; }
full_of() { count_of "$1"; }

# One row: ours at the default batch and PyTorch at the given batches, alternating, --repeat times.
run_row() { # MODEL METHODS PT_BATCH...
  local m=$1 methods=$2 tag
  shift 2
  tag=$([ "$methods" = gradient ] && echo grad || echo all)
  local r b
  for ((r = 1; r <= repeat; r++)); do
    echo "bench_batch: $m $methods, repeat $r/$repeat (load $(cut -d' ' -f1 /proc/loadavg))" >&2
    ours "$m" "$methods" "$work/out/ours-$m-$tag"
    timed "ours-$m-$tag" "$work/out/ours-$m-$tag" "${cmd[@]}"
    for b in "$@"; do
      theirs "$m" "$methods" "$work/out/pt-$m-$tag-$b" "$b"
      timed "pt-$m-$tag-$b" "$work/out/pt-$m-$tag-$b" "${cmd[@]}"
    done
  done
}
uniq_batches() { printf '%s\n' "$@" | awk '!seen[$1]++' | tr '\n' ' '; }

fb=${default_batch[fashion]}
rb=${default_batch[resnet18]}
if [ $report_only = 0 ]; then
  # shellcheck disable=SC2046
  run_row fashion gradient $(uniq_batches "$fb" 256)
  # shellcheck disable=SC2046
  run_row fashion "$all" $(uniq_batches "$fb" 256)
  # shellcheck disable=SC2046
  run_row resnet18 gradient $(uniq_batches "$rb" 64)
fi
best_rb=$rb
if [ -f "$work/results/pt-resnet18-grad-64" ] && \
   awk -v a="$(median_col pt-resnet18-grad-64 1)" -v b="$(median_col "pt-resnet18-grad-$rb" 1)" 'BEGIN {exit !(a < b)}'; then
  best_rb=64
fi
# PyTorch at its faster batch only: at a batch of 6 it takes about twice as long (150 s here).
[ $report_only = 1 ] || run_row resnet18 "$all" "$best_rb"

# Same work? File names (with the top-1 class when several methods) and the maps, ours against PyTorch.
checks=""
for m in fashion resnet18; do
  for tag in grad all; do
    b=${default_batch[$m]}
    [ -d "$work/out/pt-$m-$tag-$b" ] || b=$(full_of "$m")
    checks+="- $m, $([ $tag = grad ] && echo gradient || echo "$all"): $($py "$pyside" compare \
      "$work/out/ours-$m-$tag" "$work/out/pt-$m-$tag-$b" 2>&1)"$'\n'
  done
done

# The table.
mb() { awk -v k="$1" 'BEGIN {if (k == "–") print "–"; else printf "%.0f", k / 1024}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
table="| model | images | batch ours / PyTorch | methods | ours s | PyTorch s | ratio ours/PyTorch | goal ≤ 0.5 | PyTorch s without start + import torch | ours peak RSS MB | PyTorch peak RSS MB |"$'\n'
table+="| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"$'\n'
row() { # MODEL TAG PT_BATCH NAME
  local m=$1 tag=$2 b=$3 name=$4
  local o t r
  o=$(median_col "ours-$m-$tag" 1)
  t=$(median_col "pt-$m-$tag-$b" 1)
  r=$(ratio "$o" "$t")
  table+="| $name | $(count_of "$m") | ${ours_batch[$m-$tag]} / $b | $([ "$tag" = grad ] && echo gradient || echo "gradient, deconvnet, guided") |"
  table+=" $o ($(spread "ours-$m-$tag")) | $t ($(spread "pt-$m-$tag-$b")) | **$r** |"
  table+=" $(awk -v r="$r" 'BEGIN {print (r <= 0.5) ? "met" : "not met"}') | $(median_col "pt-$m-$tag-$b" 3) |"
  table+=" $(mb "$(median_col "ours-$m-$tag" 2)") | $(mb "$(median_col "pt-$m-$tag-$b" 2)") |"$'\n'
}
for m in fashion resnet18; do
  name=$([ "$m" = fashion ] && echo "bundled Fashion-MNIST ConvNet, 28×28" || echo "ResNet-18, 400×300 JPEG → 224×224")
  for tag in grad all; do
    for b in $(uniq_batches "${default_batch[$m]}" "$(full_of "$m")"); do
      [ -f "$work/results/pt-$m-$tag-$b" ] && row "$m" "$tag" "$b" "$name"
    done
  done
done

# Where our time goes (one run each, our side only).
analysis_md=""
if [ $analysis = 1 ]; then
  sweep="| model | methods | --batch | wall s |"$'\n'"| --- | --- | --- | --- |"$'\n'
  for m in fashion resnet18; do
    for b in 1 16 $([ $m = fashion ] && echo 64 256 || echo 6 64); do
      echo "bench_batch: analysis: $m --batch $b" >&2
      ours "$m" gradient "$work/out/sweep-$m-$b" "$b"
      timed "sweep-$m-$b" "$work/out/sweep-$m-$b" "${cmd[@]}"
      sweep+="| $m | gradient | $b$(if [ "$b" = "${default_batch[$m]}" ]; then echo " (default)"; fi) | $(median_col "sweep-$m-$b" 1) |"$'\n'
    done
  done
  stages="| model | methods | whole run s (one more run) | model load + parse s (\`info\`) | decode + compile + forward s (\`classify\` − load) | forward + backward s (\`bench\`, × batches) | files: fsync waits s (strace, count) | the rest s (map, PNG/npy encoding, writes) |"$'\n'
  stages+="| --- | --- | --- | --- | --- | --- | --- | --- |"$'\n'
  for m in fashion resnet18; do
    n=$(count_of "$m")
    t0=$(date +%s.%N); $bin info "$(model_of "$m")" > /dev/null; t1=$(date +%s.%N)
    load=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    pre_of "$m"
    t0=$(date +%s.%N)
    $bin classify "$(model_of "$m")" "$(images_of "$m")" "${pre[@]}" --threads "$threads" > /dev/null
    t1=$(date +%s.%N)
    cls=$(awk -v a="$t0" -v b="$t1" -v l="$load" 'BEGIN {printf "%.3f", b - a - l}')
    for tag in grad all; do
      what=$([ $tag = grad ] && echo saliency || echo saliency-all)
      methods=$([ $tag = grad ] && echo gradient || echo "$all")
      echo "bench_batch: analysis: $m $what compute, fsync" >&2
      bt=${ours_batch[$m-$tag]}
      kt=$(( (n + bt - 1) / bt ))
      ms=$($bin bench "$(model_of "$m")" --batch "$bt" --what "$what" --iters 3 --warmup 1 --threads "$threads" \
           | awk '/^median/ {print $2}' || true)
      [ -n "$ms" ] || ms=0
      compute=$(awk -v ms="$ms" -v k="$kt" 'BEGIN {printf "%.3f", ms * k / 1e3}')
      fs="–"
      if command -v strace > /dev/null; then
        rm -rf "$work/out/strace-$m"; sync
        ours "$m" "$methods" "$work/out/strace-$m"
        strace -f -T -e trace=fsync,fdatasync -o "$work/results/strace-$m-$tag.txt" "${cmd[@]}" > /dev/null 2>&1 \
          || echo "bench_batch: the strace run of $m $methods failed" >&2
        fs=$(sed -n 's/.*<\([0-9.]*\)>$/\1/p' "$work/results/strace-$m-$tag.txt" | awk '{t += $1; n++} END {printf "%.2f (%d)", t, n}')
      fi
      # The whole run again, now, under the same load as the parts (the table's median may be older).
      ours "$m" "$methods" "$work/out/split-$m-$tag"
      timed "split-$m-$tag" "$work/out/split-$m-$tag" "${cmd[@]}"
      whole=$(median_col "split-$m-$tag" 1)
      rest=$(awk -v w="$whole" -v l="$load" -v c="$cls" -v k="$compute" -v f="${fs%% *}" \
             'BEGIN {if (f == "–") f = 0; printf "%.2f", w - l - c - k - f}')
      stages+="| $m | $methods | $whole | $load | $cls | $compute ($kt × $ms ms) | $fs | $rest |"$'\n'
    done
  done
  analysis_md="## Where our time goes (one run each)

Our side at other batch sizes, gradient only:

$sweep
A rough split of one more run of ours at the default batch (separate processes, so the parts need not
add up exactly; the classify run includes its own forward pass, which \`bench\` counts again; the
fsync waits are the time spent inside fsync in a run under strace, which does not count the journal
and writeback work the syncs cause afterwards, so the real cost of syncing is larger: run ours with
fsync made a no-op through LD_PRELOAD to see it):

$stages"
fi

# Machine and versions.
cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
isa=$(DNNL_VERBOSE=1 $bin classify "$fashion_onnx" models/images/0000-ankle-boot.png --threads "$threads" 2> /dev/null \
      | sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -n 1)
torch_version=$($py -c 'import torch; print(torch.__version__, "with", torch.backends.mkldnn.is_available() and "oneDNN (MKL-DNN)" or "no oneDNN")')
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))
md="# Batched saliency: deepinside against PyTorch, end to end

Issue 10's speed goal: saliency maps for 256 Fashion-MNIST images and for 64 images at 224² on
ResNet-18 in at most 0.5 of the time PyTorch takes doing the same with batches.
Median of $repeat wall-clock runs per cell (min–max in brackets), the two sides alternating, in one run
of \`tools/bench_batch.sh\`; the whole process on both sides: loading the model, decoding every
picture, batching, forward and backward, writing .grad.npy, .npy and .png per image and method.

$table
- ratio = ours / PyTorch at the batch named (below 0.5: the goal is met). PyTorch's second batch is the
  whole set as one batch; ResNet-18 with three methods runs only at whichever of our default and 64
  was faster for the gradient.
- ours: \`deepinside saliency MODEL DIR --method M --out OUT/ --no-overlay --threads $threads\` (ResNet-18:
  \`--preset imagenet\`), at its default batch (about 4 MB of input, each image counted once per
  method, at most 64; PyTorch runs at our gradient batch); three methods are one backward pass of the
  batch stacked three times.
- PyTorch: \`tools/bench_batch_pytorch.py run\`; three methods are three forward + backward passes with
  every ReLU swapped for the DeconvNet or guided rule (a custom autograd Function).
- Same work: same output file names and maps on both sides:
$checks  (ResNet-18's random weights leave many activations near zero, where float32 rounding flips a
  ReLU or max-pool decision and changes a few pixels of a map.)
- Peak RSS: $([ $have_time = 1 ] && echo "/usr/bin/time's maximum resident set size" || echo "VmHWM polled from /proc").

$analysis_md
## Machine

- CPU: ${cpu:-unknown}, $(nproc) cores; $threads threads on both sides (OMP_NUM_THREADS, \`--threads\`, \`torch.set_num_threads\`)
- oneDNN ISA for deepinside: ${isa:-unknown}${DNNL_MAX_CPU_ISA:+ (DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA)}
- PyTorch $torch_version; deepinside $($bin --version 2>&1 | awk '{print $2}'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- lib cli 2> /dev/null || echo " (lib/ or cli/ modified in the tree)"), binary built $(date -u -r "$bin" +%Y-%m-%dT%H:%MZ)
- Load average before the run: $load_before; after: $load_after (a shared machine: timings are noisy)
- Date: $(date -u +%Y-%m-%d), $elapsed s for the whole benchmark

$(if [ $report_only = 1 ]; then echo "The table's timed runs are those of an earlier invocation (results of $(date -u -r "$work/results/ours-fashion-grad" +%Y-%m-%dT%H:%MZ)); this report was made with --report-only, so the binary may have been rebuilt between the table and the analysis.
"; fi)
Rerun: \`tools/bench_batch.sh --repeat $repeat --threads $threads$(if [ $analysis = 0 ]; then echo " --no-analysis"; fi)\`
"
echo "$md"
mkdir -p "$(dirname "$report")"
printf '%s' "$md" > "$report.tmp"
mv "$report.tmp" "$report"
echo "bench_batch: wrote $report" >&2
