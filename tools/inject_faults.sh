#!/usr/bin/env bash
# Fault injection: shows that the test suite fails when a backward rule is wrong.
#
# For each tools/faults/NAME.patch (each begins with a comment saying what it breaks), one at a time:
# apply it to a copy of the tree under build-faults/src, build the test executables (Release, one
# build directory shared by all faults so that only the touched file recompiles), run the numeric
# ctest areas, record which areas fail and which Boost test cases reported the errors, then reverse
# the patch. An unpatched baseline runs first: an area that already fails there cannot count as
# catching anything. At the end a table fault x area is printed and written, with date, commit and
# CPU, to reports/fault-injection.md.
#
# Usage: tools/inject_faults.sh [options]
#   --source head|worktree|REV  what to copy (default head: the committed tree, `git archive HEAD`;
#                               worktree: the working tree's tracked and untracked, not ignored, files)
#   --areas "A B ..."           ctest areas to run (default: verify engine conformance cli torchvision bundled)
#   --faults "F G ..."          only these faults (names of tools/faults/*.patch without .patch)
#   --torchvision DIR           exports for the torchvision area (default: build/torchvision of the main
#                               build); the area is left out, and the report says so, when they are incomplete
#   --no-baseline               skip the unpatched run (every area is then assumed to pass without a fault)
#   --jobs N                    build jobs (default 2); builds and tests run under `nice -n 10`
#   --report FILE               where to write the report (default reports/fault-injection.md)
#   --list                      list the faults with their first comment line and exit
# Threads and ISA come from the caller's environment (OMP_NUM_THREADS, DNNL_MAX_CPU_ISA), as in tools/test.sh.
#
# Exit status: 0 when every fault was caught by at least one area that passes at baseline; 1 when a
# fault was caught by none (or a patch failed to apply or to build); 2 when all were caught but the
# baseline itself had failing areas.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
source_kind=head
areas="verify engine conformance cli torchvision bundled"
only=""
tv_dir="$root/build/torchvision"
baseline=1
jobs=2
report="$root/reports/fault-injection.md"
list=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --source) source_kind=$2; shift 2 ;;
    --areas) areas=$2; shift 2 ;;
    --faults) only=$2; shift 2 ;;
    --torchvision) tv_dir=$2; shift 2 ;;
    --no-baseline) baseline=0; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --list) list=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "inject_faults: unknown option $1 (see --help)" >&2; exit 64 ;;
  esac
done

die() { echo "inject_faults: $*" >&2; exit 1; }
describe() { sed -n '3,/^#$/{s/^# //;/^#$/d;p}' "$1" | head -1; }

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

scratch="$root/build-faults"
src="$scratch/src"
bld="$scratch/build"
logs="$scratch/logs"
mkdir -p "$scratch" "$src" "$bld"
rm -rf "$logs" && mkdir -p "$logs"
export BOOST_TEST_COLOR_OUTPUT=no
start=$(date +%s)

# ---- 1. Copy the tree. A fresh export is synchronised into build-faults/src file by file, so that
# unchanged files keep their timestamps and a second run rebuilds only what changed.
export_dir="$scratch/export"
rm -rf "$export_dir" && mkdir -p "$export_dir"
case "$source_kind" in
  worktree)
    commit="$(git -C "$root" rev-parse --short HEAD) + working tree"
    git -C "$root" diff --quiet HEAD || commit="$commit (with uncommitted changes)"
    git -C "$root" ls-files -z --cached --others --exclude-standard |
      (cd "$root" && tar --null -T - --ignore-failed-read -cf - 2>/dev/null) | tar -xf - -C "$export_dir" ;;
  *)
    rev=$([[ "$source_kind" == head ]] && echo HEAD || echo "$source_kind")
    commit=$(git -C "$root" rev-parse --short "$rev^{commit}") || die "no commit $rev"
    git -C "$root" archive "$rev" | tar -xf - -C "$export_dir" ;;
esac
(cd "$export_dir" && find . \( -type f -o -type l \) -print0) | while IFS= read -r -d '' f; do
  if ! cmp -s "$export_dir/$f" "$src/$f"; then mkdir -p "$src/$(dirname "$f")"; cp -P "$export_dir/$f" "$src/$f"; fi
done
(cd "$src" && find . \( -type f -o -type l \) -print0) | while IFS= read -r -d '' f; do
  [[ -e "$export_dir/$f" || -L "$export_dir/$f" ]] || rm -f "$src/$f"
done
rm -rf "$export_dir"
# The tests find ../shared/models beside the source tree.
[[ -d "$root/../shared" ]] && ln -sfn "$(cd "$root/../shared" && pwd)" "$scratch/shared"

# ---- 2. The torchvision exports (minutes to make): link the main build's, read-only, if complete.
tv_note=""
if [[ " $areas " == *" torchvision "* ]]; then
  archs=$(sed -n '/std::vector<std::string> archs/,/;/p' "$src/tests/torchvision/torchvision_test.cpp" | grep -o '"[^"]*"' | tr -d '"' || true)
  complete=1
  [[ -n "$archs" && -d "$tv_dir" ]] || complete=0
  for a in $archs; do [[ -f "$tv_dir/$a/gradient.f64" && -f "$tv_dir/$a/logits.f64" ]] || complete=0; done
  if [[ -d "$bld/torchvision" && ! -L "$bld/torchvision" ]]; then
    tv_note="torchvision: exports made earlier in build-faults/build/torchvision"
  elif [[ $complete -eq 1 ]]; then
    ln -sfn "$(cd "$tv_dir" && pwd)" "$bld/torchvision"
    tv_note="torchvision: exports linked from $tv_dir"
  else
    areas=$(echo " $areas " | sed 's/ torchvision / /; s/^ *//; s/ *$//')
    tv_note="torchvision: area NOT RUN, exports in $tv_dir are missing or incomplete (run the torchvision test in the main build first, or pass --torchvision DIR)"
    echo "inject_faults: $tv_note" >&2
  fi
fi
read -r -a area_list <<< "$areas"
[[ ${#area_list[@]} -gt 0 ]] || die "no areas to run"

# ---- 3. Configure once.
echo "== configuring build-faults/build (Release) from $commit"
nice -n 10 cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=Release -DDEEPINSIDE_TESTS=ON -DDEEPINSIDE_FUZZ=OFF \
  > "$logs/configure.log" 2>&1 || { cat "$logs/configure.log" >&2; die "configure failed"; }
targets=(deepinside)
for a in "${area_list[@]}"; do targets+=("test_$a"); done

applied=""
revert() {
  if [[ -n "$applied" ]]; then
    patch -d "$src" -p1 -F0 -R -s --no-backup-if-mismatch < "$fault_dir/$applied.patch" ||
      echo "inject_faults: could not reverse $applied; the next run re-copies the tree" >&2
    applied=""
  fi
}
trap revert EXIT

declare -A status cases first_error build_time run_time

# Runs every area for row $1; fills status[$1,area] with pass / FAIL / skip / timeout.
run_areas() {
  local row=$1 a log rc t0
  t0=$(date +%s)
  for a in "${area_list[@]}"; do
    log="$logs/$row/$a.log"
    rc=0
    nice -n 10 ctest --test-dir "$bld" -R "^$a\$" -V > "$log" 2>&1 || rc=$?
    if grep -q '\*\*\*Timeout' "$log"; then status[$row,$a]=timeout
    elif grep -qE '\*\*\*Skipped|Not Run|No tests were found' "$log"; then status[$row,$a]=skip
    elif [[ $rc -eq 0 ]]; then status[$row,$a]=pass
    else status[$row,$a]=FAIL
    fi
    cases[$row,$a]=$(grep -oE 'error: in "[^"]+"' "$log" | sed 's/.*in "\(.*\)"/\1/' | sort -u | paste -sd' ' || true)
    first_error[$row,$a]=$(grep -m1 -E 'error: in "|error: ' "$log" | sed "s/^[0-9]*: //; s|$src/||" | cut -c1-220 || true)
    printf '   %-12s %s%s\n' "$a" "${status[$row,$a]}" "${cases[$row,$a]:+  (${cases[$row,$a]})}"
  done
  run_time[$row]=$(( $(date +%s) - t0 ))
}

build() {
  local row=$1 t0
  t0=$(date +%s)
  if ! nice -n 10 cmake --build "$bld" -j"$jobs" --target "${targets[@]}" > "$logs/$row/build.log" 2>&1; then
    build_time[$row]=$(( $(date +%s) - t0 ))
    return 1
  fi
  build_time[$row]=$(( $(date +%s) - t0 ))
}

rows=()
if [[ $baseline -eq 1 ]]; then
  rows+=(baseline)
  mkdir -p "$logs/baseline"
  echo "== baseline (no fault): building"
  build baseline || { tail -30 "$logs/baseline/build.log" >&2; die "the unpatched tree does not build"; }
  echo "   built in ${build_time[baseline]} s; running ${area_list[*]}"
  run_areas baseline
fi

broken=()
for f in "${faults[@]}"; do
  rows+=("$f")
  mkdir -p "$logs/$f"
  p="$fault_dir/$f.patch"
  echo "== fault $f: $(describe "$p")"
  patch -d "$src" -p1 -F0 --dry-run -s --no-backup-if-mismatch < "$p" > "$logs/$f/patch.log" 2>&1 ||
    { cat "$logs/$f/patch.log" >&2; die "fault $f no longer applies to $commit: update tools/faults/$f.patch"; }
  patch -d "$src" -p1 -F0 -s --no-backup-if-mismatch < "$p"
  applied=$f
  if ! build "$f"; then
    echo "   BUILD FAILED (see $logs/$f/build.log)"
    tail -20 "$logs/$f/build.log" >&2
    broken+=("$f")
    for a in "${area_list[@]}"; do status[$f,$a]=build-failed; done
    run_time[$f]=0
  else
    echo "   built in ${build_time[$f]} s"
    run_areas "$f"
  fi
  revert
done
# Leave the build matching the unpatched tree (the reversed file recompiles next time anyway).

# ---- 4. Verdicts and the table.
caught_by() { # areas that catch fault $1: fail with the fault, pass at baseline
  local f=$1 a out=""
  for a in "${area_list[@]}"; do
    [[ "${status[$f,$a]}" == FAIL || "${status[$f,$a]}" == timeout ]] || continue
    [[ $baseline -eq 0 || "${status[baseline,$a]}" == pass ]] || continue
    out+="$a "
  done
  echo "${out% }"
}
cell() { # table cell for row $1, area $2
  local r=$1 a=$2 s=${status[$1,$2]}
  if [[ $r == baseline ]]; then
    case $s in pass) echo "passes" ;; *) echo "$s" ;; esac
    return
  fi
  case $s in
    FAIL|timeout)
      if [[ $baseline -eq 1 && "${status[baseline,$a]}" != pass ]]; then echo "fails (also at baseline)"
      elif [[ $s == timeout ]]; then echo "CAUGHT (timeout)"
      else local n; n=$(wc -w <<< "${cases[$r,$a]}"); [[ $n -gt 0 ]] && echo "CAUGHT ($n)" || echo "CAUGHT"; fi ;;
    pass) echo "-" ;;
    *) echo "$s" ;;
  esac
}

uncaught=()
baseline_bad=()
if [[ $baseline -eq 1 ]]; then
  for a in "${area_list[@]}"; do [[ "${status[baseline,$a]}" == pass ]] || baseline_bad+=("$a:${status[baseline,$a]}"); done
fi
for f in "${faults[@]}"; do
  [[ " ${broken[*]} " == *" $f "* ]] && continue
  [[ -n "$(caught_by "$f")" ]] || uncaught+=("$f")
done
total=$(( $(date +%s) - start ))

w=32
echo
printf "%-${w}s" "fault"; for a in "${area_list[@]}"; do printf ' | %-12s' "$a"; done; echo " | verdict"
for r in "${rows[@]}"; do
  printf "%-${w}s" "$r"
  for a in "${area_list[@]}"; do printf ' | %-12s' "$(cell "$r" "$a" | tr -d '\n' | cut -c1-12)"; done
  if [[ $r == baseline ]]; then v=$([[ ${#baseline_bad[@]} -eq 0 ]] && echo clean || echo "NOT CLEAN"); 
  elif [[ " ${broken[*]} " == *" $r "* ]]; then v="BUILD FAILED"
  elif [[ -n "$(caught_by "$r")" ]]; then v=caught
  else v="NOT CAUGHT"; fi
  echo " | $v"
done
echo "(CAUGHT (n): the area fails with n Boost test cases reporting errors; -: the area passes with the fault)"
echo "total time ${total} s; logs in build-faults/logs/"

# ---- 5. The report.
cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)
isa=$(grep -o -m1 -w 'avx512f' /proc/cpuinfo >/dev/null 2>&1 && echo "AVX-512" || (grep -q -m1 -w avx2 /proc/cpuinfo && echo "AVX2, no AVX-512" || echo "no AVX2"))
mkdir -p "$(dirname "$report")"
{
  echo "# Fault injection"
  echo
  echo "Written by \`tools/inject_faults.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), tree: $commit ($source_kind),"
  echo "CPU: ${cpu:-unknown} ($(nproc) cores, $isa), DNNL_MAX_CPU_ISA=${DNNL_MAX_CPU_ISA:-unset}, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}."
  echo "Total time ${total} s."
  [[ -n "$tv_note" ]] && echo "${tv_note^}."
  echo
  echo "Each fault is a patch in \`tools/faults/\` (its header says what it breaks), applied alone to a copy of"
  echo "the tree; the numeric test areas are then built (Release) and run. **CAUGHT (n)**: the area fails, n"
  echo "Boost test cases reporting errors; **-**: the area passes despite the fault. An area counts only if"
  echo "it passes on the unpatched baseline."
  echo
  printf '| fault |'; for a in "${area_list[@]}"; do printf ' %s |' "$a"; done; echo " verdict | build / run (s) |"
  printf '| --- |'; for a in "${area_list[@]}"; do printf ' --- |'; done; echo " --- | --- |"
  for r in "${rows[@]}"; do
    printf '| %s |' "$r"
    for a in "${area_list[@]}"; do c=$(cell "$r" "$a" | tr -d '\n'); [[ $c == CAUGHT* ]] && c="**$c**"; printf ' %s |' "$c"; done
    if [[ $r == baseline ]]; then v=$([[ ${#baseline_bad[@]} -eq 0 ]] && echo clean || echo "**not clean**")
    elif [[ " ${broken[*]} " == *" $r "* ]]; then v="**build failed**"
    elif [[ -n "$(caught_by "$r")" ]]; then v=caught
    else v="**NOT CAUGHT**"; fi
    echo " $v | ${build_time[$r]:-0} / ${run_time[$r]:-0} |"
  done
  echo
  echo "## What each fault breaks, and the test cases that caught it"
  for f in "${faults[@]}"; do
    echo
    echo "### $f"
    echo
    sed -n '3,/^#$/{s/^# //;/^#$/d;p}' "$fault_dir/$f.patch"
    echo
    any=0
    for a in "${area_list[@]}"; do
      [[ "${status[$f,$a]}" == FAIL || "${status[$f,$a]}" == timeout ]] || continue
      any=1
      echo "- **$a**: ${cases[$f,$a]:-(no Boost case named; ctest failure)}"
      [[ -n "${first_error[$f,$a]}" ]] && echo "  - first error: \`$(sed 's/`/'"'"'/g' <<< "${first_error[$f,$a]}")\`"
    done
    [[ $any -eq 1 ]] || echo "- no area failed."
  done
  if [[ ${#baseline_bad[@]} -gt 0 ]]; then
    echo
    echo "## Baseline"
    echo
    for a in "${area_list[@]}"; do
      [[ "${status[baseline,$a]}" == pass ]] && continue
      echo "- **$a** ${status[baseline,$a]} without any fault: ${cases[baseline,$a]:-} \`$(sed 's/`/'"'"'/g' <<< "${first_error[baseline,$a]:-}")\`"
    done
  fi
} > "$report"
echo "report written to ${report#$root/}"

if [[ ${#broken[@]} -gt 0 || ${#uncaught[@]} -gt 0 ]]; then
  [[ ${#broken[@]} -gt 0 ]] && echo "inject_faults: did not build with the fault: ${broken[*]}" >&2
  [[ ${#uncaught[@]} -gt 0 ]] && echo "inject_faults: NOT CAUGHT by any test: ${uncaught[*]}" >&2
  exit 1
fi
if [[ ${#baseline_bad[@]} -gt 0 ]]; then
  echo "inject_faults: every fault was caught, but the baseline is not clean: ${baseline_bad[*]}" >&2
  exit 2
fi
echo "every fault was caught"
