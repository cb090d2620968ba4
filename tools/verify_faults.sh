#!/usr/bin/env bash
# Negative controls on the engine side: shows that `deepinside verify` catches a wrong engine
# backward rule, and names the layer.
#
# For each tools/faults/NAME.patch (each begins with a comment saying what it breaks), one at a time:
# apply it to a copy of the committed tree under build-verify-faults/src, build only the `deepinside`
# target (Release, one build directory shared by all faults so that only the touched file recompiles),
# run `deepinside verify` on the bundled model models/fashion-mnist-convnet.onnx with all of
# models/images/*.png in one call plus --json, record the exit status, the layers named on stderr
# ("layer 'NAME' contradicts the paper") and, from the JSON, the end-to-end check (the worst
# end_to_end.rel_l2 over the images) and the gradient check (gradient_check.ok and the per-image
# gradient_check.basis), then reverse the patch. The unpatched baseline runs first and must exit 0.
#
# What verify can see: it compares, per layer, the engine's GRADIENT rule with Zeiler and Fergus's
# operator; end to end, the engine's DECONVNET and GUIDED signals (from one stacked gradient/
# deconvnet/guided call) with those composed from the independent operators; and the engine's
# gradient with finite differences. It runs only the model's own operators, and plants nothing in
# its own reference. Each fault is therefore classified (from the patched files, the
# rules the fault changes, and the model's operators as `deepinside info` lists them) as "in reach"
# (verify must catch it) or "out of reach" (with the reason); the report says which is which.
#
# Usage: tools/verify_faults.sh [options]
#   --faults "F G ..."  only these faults (names of tools/faults/*.patch without .patch)
#   --rev REV           the commit to copy (default HEAD, `git archive`)
#   --jobs N            build jobs (default 2); builds and runs are under `nice -n 10`
#   --report FILE       where to write the report (default reports/verify/negative-controls.md)
#   --list              list the faults with their first comment line and exit
# Threads and ISA come from the caller's environment (OMP_NUM_THREADS, DNNL_MAX_CPU_ISA).
#
# Exit status: 0 when the baseline holds and every fault in reach is caught (verify exits 3 with a
# failing check); 1 when a fault in reach is not caught, or a patch does not apply or build; 2 when
# the unpatched baseline does not build or its certificate does not hold.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
rev=HEAD
only=""
jobs=2
report="$root/reports/verify/negative-controls.md"
list=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --faults) only=$2; shift 2 ;;
    --rev) rev=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "verify_faults: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

die() { echo "verify_faults: $*" >&2; exit "${2:-1}"; }
# The first sentence of the patch's description (its first comment line after "# Fault: NAME", continued
# to the end of the sentence when that line breaks mid-sentence).
describe() { sed -n '3,/^#$/{s/^# //;/^#$/d;p}' "$1" | tr '\n' ' ' | sed 's/\([.]\) .*/\1/; s/ *$//'; }
# The files a patch touches.
touched() { sed -n 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$1" | paste -sd' '; }

fault_dir="$root/tools/faults"
faults=()
if [[ -n "$only" ]]; then
  for f in $only; do [[ -f "$fault_dir/$f.patch" ]] || die "no fault named $f in tools/faults"; faults+=("$f"); done
else
  for p in "$fault_dir"/*.patch; do faults+=("$(basename "$p" .patch)"); done
fi
[[ ${#faults[@]} -gt 0 ]] || die "no faults in tools/faults"
if [[ $list -eq 1 ]]; then
  for f in "${faults[@]}"; do printf '%-32s %s\n' "$f" "$(describe "$fault_dir/$f.patch")"; done
  exit 0
fi

model_rel=models/fashion-mnist-convnet.onnx
scratch="$root/build-verify-faults"
src="$scratch/src"
bld="$scratch/build"
logs="$scratch/logs"
mkdir -p "$scratch" "$src" "$bld"
rm -rf "$logs" && mkdir -p "$logs"
start=$(date +%s)

# ---- 1. Copy the committed tree. The export is synchronised into build-verify-faults/src file by
# file, so that unchanged files keep their timestamps and a second run rebuilds only what changed.
commit=$(git -C "$root" rev-parse --short "$rev^{commit}") || die "no commit $rev"
commit_line=$(git -C "$root" log -1 --format='%h (%ci) "%s' "$commit" | awk '{ print (length($0) > 110 ? substr($0, 1, 107) "..." : $0) "\"" }')
export_dir="$scratch/export"
rm -rf "$export_dir" && mkdir -p "$export_dir"
git -C "$root" archive "$commit" | tar -xf - -C "$export_dir"
(cd "$export_dir" && find . \( -type f -o -type l \) -print0) | while IFS= read -r -d '' f; do
  if ! cmp -s "$export_dir/$f" "$src/$f"; then mkdir -p "$src/$(dirname "$f")"; cp -P "$export_dir/$f" "$src/$f"; fi
done
(cd "$src" && find . \( -type f -o -type l \) -print0) | while IFS= read -r -d '' f; do
  [[ -e "$export_dir/$f" || -L "$export_dir/$f" ]] || rm -f "$src/$f"
done
rm -rf "$export_dir"
[[ -f "$src/$model_rel" ]] || die "$model_rel is not in $commit"
images=()
for p in "$src"/models/images/*.png; do images+=("${p#$src/}"); done
[[ -e "$src/${images[0]}" ]] || die "no models/images/*.png in $commit"

# ---- 2. Configure once (the test suite is not built: only the deepinside target is needed).
echo "== configuring build-verify-faults/build (Release) from $commit_line"
nice -n 10 cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DDEEPINSIDE_TESTS=OFF -DDEEPINSIDE_FUZZ=OFF \
  > "$logs/configure.log" 2>&1 || { cat "$logs/configure.log" >&2; die "configure failed" 2; }

applied=""        # the fault whose patch is in the copy
applied_patch=""  # and the patch file applied
revert() {
  if [[ -n "$applied" ]]; then
    patch -d "$src" -p1 -F0 -R -s --no-backup-if-mismatch < "$applied_patch" ||
      echo "verify_faults: could not reverse $applied; the next run re-copies the tree" >&2
    applied=""
  fi
}
trap revert EXIT

declare -A rc layers e2e e2e_ok grad_ok grad_basis grad_err checks build_time first_failure

build() {
  local row=$1 t0
  t0=$(date +%s)
  if ! nice -n 10 cmake --build "$bld" -j"$jobs" --target deepinside > "$logs/$row/build.log" 2>&1; then
    build_time[$row]=$(( $(date +%s) - t0 ))
    return 1
  fi
  build_time[$row]=$(( $(date +%s) - t0 ))
}

# Runs verify for row $1 and fills the arrays from its exit status, stderr and JSON.
run_verify() {
  local row=$1 dir="$logs/$1" code=0 summary
  rm -f "$dir/verify.json"
  (cd "$src" && nice -n 10 "$bld/deepinside" verify "$model_rel" "${images[@]}" --json "$dir/verify.json") \
    > "$dir/verify.out" 2> "$dir/verify.err" || code=$?
  rc[$row]=$code
  # The layers named on stderr, in order of first mention, with the number of images naming them.
  layers[$row]=$(grep -o "layer '[^']*' contradicts the paper" "$dir/verify.err" |
    sed "s/^layer '\(.*\)' contradicts the paper$/\1/" |
    awk -v n="${#images[@]}" '{ if (!($0 in c)) o[++k] = $0; c[$0]++ }
      END { for (i = 1; i <= k; ++i) printf "%s%s%s", (i > 1 ? ", " : ""), o[i], (c[o[i]] < n ? " (" c[o[i]] "/" n " images)" : "") }' || true)
  first_failure[$row]=$(grep -m1 'deepinside: ' "$dir/verify.err" | sed "s|$src/||g" | cut -c1-300 || true)
  if [[ -s "$dir/verify.json" ]]; then
    summary=$(python3 - "$dir/verify.json" <<'EOF'
import json, math, sys
from collections import Counter
d = json.load(open(sys.argv[1]))
def num(v):
    return math.inf if v is None else float(v)
imgs = d.get("images", [])
worst_d = max((num(i["end_to_end"]["rel_l2"]) for i in imgs), default=math.nan)
worst_g = max((num(i["end_to_end"].get("guided_rel_l2")) for i in imgs), default=math.nan)
bases = Counter(i["gradient_check"].get("basis", "?") for i in imgs)
basis = ", ".join(f"{b} x{n}" if len(bases) > 1 or n > 1 else b for b, n in bases.most_common())
gc = d.get("gradient_check", {})
fmt = lambda v: "inf" if math.isinf(v) else "nan" if math.isnan(v) else f"{v:.3g}"
print("\t".join([fmt(worst_d) + " / " + fmt(worst_g), "ok" if d["end_to_end"]["ok"] else "FAILS",
                 "ok" if gc.get("ok") else "FAILS", basis, fmt(num(gc.get("max_rel_error")))]))
EOF
) || summary=$'?\t?\t?\t?\t?'
    IFS=$'\t' read -r "e2e[$row]" "e2e_ok[$row]" "grad_ok[$row]" "grad_basis[$row]" "grad_err[$row]" <<< "$summary"
  else
    e2e[$row]="-"; e2e_ok[$row]="no JSON"; grad_ok[$row]="no JSON"; grad_basis[$row]="-"; grad_err[$row]="-"
  fi
  # The checks that failed.
  local c=""
  [[ -n "${layers[$row]}" ]] && c+="per-layer, "
  [[ "${e2e_ok[$row]}" == FAILS ]] && c+="end-to-end, "
  [[ "${grad_ok[$row]}" == FAILS ]] && c+="gradient check, "
  checks[$row]=${c%, }
  printf '   verify exit %s; layers named: %s; end-to-end rel L2 (DeconvNet / guided) %s (%s); gradient check %s (%s, max rel error %s)\n' \
    "${rc[$row]}" "${layers[$row]:-none}" "${e2e[$row]}" "${e2e_ok[$row]}" "${grad_ok[$row]}" "${grad_basis[$row]}" "${grad_err[$row]}"
}

rows=(baseline)
mkdir -p "$logs/baseline"
echo "== baseline (no fault): building"
build baseline || { tail -30 "$logs/baseline/build.log" >&2
  die "the unpatched $commit does not build (someone mid-change? wait, check \`git log -1\` and re-run)" 2; }
echo "   built in ${build_time[baseline]} s; running verify on ${#images[@]} images"
run_verify baseline
[[ ${rc[baseline]} -eq 0 && -z "${checks[baseline]}" ]] ||
  die "the unpatched baseline does not hold (exit ${rc[baseline]}; see $logs/baseline/verify.err)" 2

# The model's operators, as the engine lists them.
model_ops=$(cd "$src" && "$bld/deepinside" info "$model_rel" | awk '$1 ~ /^[0-9]+$/ && $3 ~ /^[A-Z]/ { print $3 }' | sort -u | paste -sd' ')
[[ -n "$model_ops" ]] || die "could not list the operators of $model_rel"

# ---- 3. What verify should see. For each known fault: the ONNX operators whose backward it changes
# and the rules it changes (all: the operator's backward, shared by the gradient, deconvnet and guided
# rules; gradient / deconvnet / guided: that rule only; stacked: every rule but the first request's in a
# stacked call). A fault that touches only verify/ is in the verifier's own reference, not the engine.
fault_ops() {
  case "$1" in
    batchnorm-backward-epsilon) echo "BatchNormalization" ;;
    concat-backward-offset) echo "Concat" ;;
    conv-backward-flipped-kernel) echo "Conv" ;;
    deconvnet-forward-mask|relu-gradient-mask-from-signal|relu-rule-of-first-request|guided-without-forward-mask) echo "Relu" ;;
    gemm-backward-untransposed) echo "Gemm MatMul" ;;
    maxpool-last-maximum) echo "MaxPool" ;;
    sub-backward-sign) echo "Sub" ;;
    *) echo "" ;;
  esac
}
fault_rules() {
  case "$1" in
    deconvnet-forward-mask) echo deconvnet ;;
    relu-gradient-mask-from-signal) echo gradient ;;
    relu-rule-of-first-request) echo stacked ;;
    guided-without-forward-mask) echo guided ;;
    *) echo all ;;
  esac
}
declare -A expect reason
classify() {
  local f=$1 files ops rules present="" o
  files=$(touched "$fault_dir/$f.patch")
  ops=$(fault_ops "$f")
  rules=$(fault_rules "$f")
  for o in $ops; do [[ " $model_ops " == *" $o "* ]] && present+="$o "; done
  present=${present% }
  if [[ -z "$ops" ]]; then
    expect[$f]=yes
    reason[$f]="not classified in tools/verify_faults.sh ($files): counted as in reach"
  elif ! grep -qv '^verify/' <<< "$(tr ' ' '\n' <<< "$files")"; then
    expect[$f]=no
    reason[$f]="not an engine fault: the patch changes only the verifier's own double reference ($files)"
  elif [[ -z "$present" ]]; then
    expect[$f]=no
    reason[$f]="the model has no ${ops// / or } node, so the patched backward never runs (model operators: $model_ops)"
  else
    case "$rules" in
      all) expect[$f]=yes
        reason[$f]="$present backward is shared by every rule: the per-layer check (engine gradient rule vs DeconvNet operator at each $present), the gradient check and the end-to-end check should all see it" ;;
      gradient) expect[$f]=yes
        reason[$f]="changes the gradient rule at $present: the per-layer check at each $present (engine gradient rule vs DeconvNet's rectification) and the gradient check should see it" ;;
      deconvnet) expect[$f]=yes
        reason[$f]="changes only the deconvnet rule at $present: verify never runs the engine's deconvnet rule per layer, only the end-to-end check (engine deconvnet signal vs composed DeconvNet) can see it" ;;
      stacked) expect[$f]=yes
        reason[$f]="the engine's three signals come from one stacked call (gradient first), so its deconvnet signal becomes the gradient: only the end-to-end check can see it (the per-layer calls and the gradient check request the gradient rule alone)" ;;
      guided) expect[$f]=yes
        reason[$f]="changes only the guided rule at $present: only the end-to-end check (engine guided signal vs the composed guided backpropagation) can see it" ;;
    esac
  fi
}
for f in "${faults[@]}"; do classify "$f"; done

# ---- 4. The faults.
broken=()
for f in "${faults[@]}"; do
  rows+=("$f")
  mkdir -p "$logs/$f"
  p="$fault_dir/$f.patch"
  echo "== fault $f: $(describe "$p")"
  echo "   expected: $([[ ${expect[$f]} == yes ]] && echo "in reach" || echo "out of reach"): ${reason[$f]}"
  if ! patch -d "$src" -p1 -F0 --dry-run -s --no-backup-if-mismatch < "$p" > "$logs/$f/patch.log" 2>&1; then
    cat "$logs/$f/patch.log" >&2
    echo "   PATCH DOES NOT APPLY to $commit"
    broken+=("$f"); rc[$f]="patch failed"; build_time[$f]=0
    continue
  fi
  patch -d "$src" -p1 -F0 -s --no-backup-if-mismatch < "$p"
  applied=$f
  applied_patch=$p
  if ! build "$f"; then
    echo "   BUILD FAILED (see $logs/$f/build.log)"
    tail -20 "$logs/$f/build.log" >&2
    broken+=("$f"); rc[$f]="build failed"
  else
    echo "   built in ${build_time[$f]} s"
    run_verify "$f"
  fi
  revert
done
# The build is left as the last fault's; the reversed file recompiles at the next run.

verdict() { # caught / NOT caught / patch or build failure, for fault $1
  local f=$1
  if [[ " ${broken[*]} " == *" $f "* ]]; then echo "${rc[$f]}"
  elif [[ "${rc[$f]}" == 3 && -n "${checks[$f]}" ]]; then echo caught
  else echo "NOT caught"; fi
}
missed=()
for f in "${faults[@]}"; do
  v=$(verdict "$f")
  if [[ " ${broken[*]} " == *" $f "* ]]; then missed+=("$f")
  elif [[ ${expect[$f]} == yes && $v != caught ]]; then missed+=("$f"); fi
done
total=$(( $(date +%s) - start ))

# ---- 5. The report.
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
isa=$(grep -q -m1 -w avx512f /proc/cpuinfo 2>/dev/null && echo "AVX-512" || (grep -q -m1 -w avx2 /proc/cpuinfo && echo "AVX2, no AVX-512" || echo "no AVX2"))
cell() { local v=${1:-}; v=${v//|/\\|}; echo "${v:--}"; }
mkdir -p "$(dirname "$report")"
tmp_report="$report.tmp.$$"
{
  echo "# Negative controls: \`deepinside verify\` against faults planted in the engine"
  echo
  echo "Written by \`tools/verify_faults.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'); tree: commit $commit_line"
  echo "(\`git archive\`, the committed tree only). CPU: ${cpu:-unknown} ($(nproc) cores, $isa),"
  echo "DNNL_MAX_CPU_ISA=${DNNL_MAX_CPU_ISA:-unset}, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}. Total time ${total} s."
  echo
  echo "Each fault is a patch in \`tools/faults/\` applied alone to the copy; \`deepinside\` is rebuilt (Release)"
  echo "and \`deepinside verify $model_rel models/images/*.png --json OUT\` certifies the ${#images[@]} bundled"
  echo "images in one call. *What it breaks*: the first sentence of the patch's header."
  echo "*Layers named*: the layers stderr names as \"layer 'NAME' contradicts the paper\""
  echo "(with the number of images when not all). *End-to-end rel L2*: the worst over the images of the"
  echo "engine's deconvnet signal against the DeconvNet composed from the independent operators (bound"
  echo "1e-4). *Gradient check*: \`gradient_check.ok\` of the aggregate, the per-image \`basis\`, and the worst"
  echo "relative error of finite differences against the engine's gradient. Model operators: $model_ops."
  echo
  echo "| fault | what it breaks | verify exit | layers named | end-to-end rel L2 (DeconvNet / guided) | gradient check | failing checks | expected | verdict |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
  for r in "${rows[@]}"; do
    if [[ $r == baseline ]]; then what="nothing (unpatched)"; exp="holds"; v="holds"
    else
      what=$(describe "$fault_dir/$r.patch"); exp=$([[ ${expect[$r]} == yes ]] && echo "in reach" || echo "out of reach")
      v=$(verdict "$r"); [[ $v == caught ]] && v="**caught**"
      [[ ${expect[$r]} == yes && $v != "**caught**" ]] && v="**$v**"
    fi
    if [[ " ${broken[*]} " == *" $r "* ]]; then
      echo "| $r | $(cell "$what") | ${rc[$r]} | - | - | - | - | $exp | $v |"
    else
      echo "| $r | $(cell "$what") | ${rc[$r]} | $(cell "${layers[$r]}") | ${e2e[$r]} (${e2e_ok[$r]}) | ${grad_ok[$r]} (${grad_basis[$r]}; ${grad_err[$r]}) | $(cell "${checks[$r]}") | $exp | $v |"
    fi
  done
  echo
  echo "## Verdicts"
  echo
  for f in "${faults[@]}"; do
    v=$(verdict "$f")
    if [[ $v == caught ]]; then
      line="caught, by: ${checks[$f]}"
      [[ ${expect[$f]} == no ]] && line+=" (although classified out of reach)"
    elif [[ " ${broken[*]} " == *" $f "* ]]; then line="$v: tools/faults/$f.patch does not apply to $commit or does not build, so verify was not tested on it (in reach)"
    elif [[ ${expect[$f]} == yes ]]; then line="$v (in reach: this is a failure of verify)"
    else line="$v (out of reach, as expected)"; fi
    echo "- **$f**: $line. ${reason[$f]^}."
  done
  echo
  echo "## What verify can and cannot see"
  echo
  echo "- **Per-layer check**: at every layer between the target and the input, the same signals (the real"
  echo "  DeconvNet reconstruction arriving there and a seeded random one) go through the engine's backward"
  echo "  operator under the *gradient* rule and through Zeiler and Fergus's operator in double. A fault in an"
  echo "  operator's backward (shared by all rules) or in the gradient rule at ReLU is named there, layer by layer."
  echo "- **End-to-end check**: the engine's *deconvnet* and *guided* signals at the input against those composed"
  echo "  from the independent operators (guided: with the forward mask after each rectification). This is the"
  echo "  only place where the engine's deconvnet and guided rules are tested, so a deconvnet-only or guided-only"
  echo "  fault (deconvnet-forward-mask, guided-without-forward-mask) or one that swaps rules in the stacked"
  echo "  gradient/deconvnet/guided call (relu-rule-of-first-request) can only be caught here, and no layer is named."
  echo "- **Gradient check**: finite differences of the score in double against the engine's gradient, at the"
  echo "  image plus a small jitter; any fault in the gradient's backward shows here."
  echo "- **Out of reach**: verify only runs the operators of the model it is given:"
  echo "  faults in BatchNormalization, Concat or Sub need a model with those nodes (tools/inject_faults.sh"
  echo "  catches them with the test suite). maxpool-last-maximum is planted in the verifier's own double"
  echo "  reference (verify/ref_pool.cpp), not in the engine; the DeconvNet operators record their switches"
  echo "  independently, and the reference only enters the gradient check, where the jitter breaks ties of"
  echo "  nonzero maxima and a tied window of zeros after a ReLU gets zero gradient whichever zero is chosen."
  echo
  echo "## Details"
  for f in "${faults[@]}"; do
    echo
    echo "### $f"
    echo
    sed -n '3,/^#$/{s/^# //;/^#$/d;p}' "$fault_dir/$f.patch"
    echo
    echo "- patched: $(touched "$fault_dir/$f.patch"); build ${build_time[$f]:-0} s"
    if [[ " ${broken[*]} " != *" $f "* ]]; then
      echo "- verify exit ${rc[$f]}; failing checks: ${checks[$f]:-none}"
      [[ -n "${first_failure[$f]}" ]] && echo "- first stderr line: \`$(sed 's/`/'"'"'/g' <<< "${first_failure[$f]}")\`"
    fi
  done
} > "$tmp_report"
mv -f "$tmp_report" "$report"
echo
sed -n '/^| fault/,/^## What verify/p' "$report" | sed '$d'
echo "total time ${total} s; logs in build-verify-faults/logs/; report written to ${report#$root/}"

if [[ ${#missed[@]} -gt 0 ]]; then
  echo "verify_faults: in reach but NOT caught (or did not apply/build): ${missed[*]}" >&2
  exit 1
fi
echo "every fault in reach of verify was caught"
