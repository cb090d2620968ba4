#!/usr/bin/env bash
# Where one call's time goes: runs `deepinside bench` once with DNNL_VERBOSE=1 and sums the oneDNN
# primitives executed in the LAST timed iteration (the warm-up and earlier iterations settle caches
# and first-touch page faults) per primitive kind, implementation and prop kind, against that
# iteration's wall time. What is left is time outside oneDNN primitives: the engine's host loops
# (ReLU rules, copies, finite checks), thread start-up between primitives, and the verbose printing
# itself (a few microseconds per primitive, which inflates this line on tiny models).
#
# Usage: tools/bench_profile.sh MODEL [--what forward|saliency|saliency-all] [--batch N]
#            [--iters N] [--threads T] [--bin PATH] [--min-share PCT]
#   --iters      timed iterations, the last one is summed (default 2; one warm-up iteration first)
#   --threads    default 2
#   --bin        deepinside binary (default $DEEPINSIDE_BIN, else build/deepinside); it needs
#                `bench --mark-iterations`, which brackets each timed iteration in its output
#   --min-share  groups below this share of the iteration (%, default 1) are summed in one line
# DNNL_MAX_CPU_ISA in the environment caps oneDNN's ISA as usual. Prints Markdown: one line saying
# what was run, then a table.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "bench_profile: $*" >&2; exit 2; }
model="" what=forward batch="" iters=2 threads=2 min_share=1
bin=${DEEPINSIDE_BIN:-$root/build/deepinside}
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    --what|--batch|--iters|--threads|--bin|--min-share)
      [ $# -ge 2 ] || die "missing value after $1"
      case $1 in
        --what) what=$2 ;; --batch) batch=$2 ;; --iters) iters=$2 ;; --threads) threads=$2 ;;
        --bin) bin=$2 ;; --min-share) min_share=$2 ;;
      esac
      shift 2 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) [ -z "$model" ] || die "one model only ($model, $1)"; model=$1; shift ;;
  esac
done
[ -n "$model" ] || die "usage: tools/bench_profile.sh MODEL [--what W] [--batch N] (see --help)"
[ -x "$bin" ] || die "$bin: no such program (build first, or pass --bin)"
case $iters in ''|*[!0-9]*|0) die "--iters must be a positive integer" ;; esac

log=$(mktemp)
trap 'rm -f "$log"' EXIT
# To a file, not a pipe: oneDNN flushes stdout after every verbose line.
if ! DNNL_VERBOSE=1 OMP_NUM_THREADS=$threads "$bin" bench "$model" --what "$what" ${batch:+--batch "$batch"} \
       --iters "$iters" --warmup 1 --threads "$threads" --mark-iterations > "$log"; then
  echo "bench_profile: deepinside bench failed (a build without bench --mark-iterations?)" >&2
  exit 1
fi
last=$((iters - 1))
wall=$(sed -n "s/^iteration $last \([0-9.]*\) ms\$/\1/p" "$log")
[ -n "$wall" ] || die "no 'iteration $last' line in the output of $bin bench"

# oneDNN 2.x writes `onednn_verbose,exec,cpu,KIND,IMPL,PROP,...,TIME`; 3.x puts `primitive,` (and
# optionally a timestamp) before `exec`: the fields are found relative to `exec`.
groups=$(awk -F, -v last="$last" '
  $0 == "iteration_start " last { on = 1; next }
  on && index($0, "iteration " last " ") == 1 { on = 0; next }
  on && /^onednn_verbose,/ {
    for (i = 2; i <= 4 && $i != "exec"; ++i) {}
    if ($i != "exec") next
    k = $(i + 2) "\t" $(i + 3) "\t" $(i + 4)
    ms[k] += $NF; n[k]++
  }
  END { for (k in ms) printf "%.6f\t%d\t%s\n", ms[k], n[k], k }' "$log" | sort -t "$(printf '\t')" -k1,1gr)
[ -n "$groups" ] || die "no onednn_verbose exec lines in the last iteration (DNNL_VERBOSE unsupported by this oneDNN?)"

input=$(sed -n 's/^input //p' "$log")
echo "\`$model\`, $what, input $input, $threads threads${DNNL_MAX_CPU_ISA:+, DNNL_MAX_CPU_ISA=$DNNL_MAX_CPU_ISA}:" \
     "the last of $iters timed iterations, run with DNNL_VERBOSE=1, took $wall ms."
echo
echo "| primitive | implementation | prop kind | calls | ms | share of the iteration |"
echo "| --- | --- | --- | --- | --- | --- |"
printf '%s\n' "$groups" | awk -F '\t' -v wall="$wall" -v min="$min_share" '
  function share(t) { return sprintf("%.1f %%", 100 * t / wall) }
  {
    total += $1; calls += $2
    if (100 * $1 / wall >= min) printf "| %s | %s | %s | %d | %.3f | %s |\n", $3, $4, $5, $2, $1, share($1)
    else { rest += $1; rest_calls += $2; rest_groups++ }
  }
  END {
    if (rest_groups) printf "| %d smaller groups | | | %d | %.3f | %s |\n", rest_groups, rest_calls, rest, share(rest)
    printf "| **all oneDNN primitives** | | | %d | %.3f | %s |\n", calls, total, share(total)
    printf "| **outside oneDNN primitives** (host loops) | | | | %.3f | %s |\n", wall - total, share(wall - total)
  }'
