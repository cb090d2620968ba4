#!/usr/bin/env bash
# Builds and runs the whole test suite (CI's .ci/run calls exactly this):
#   1. Release build, every ctest area, oneDNN's default ISA for this CPU, 2 threads;
#   2. the numeric areas again under DNNL_MAX_CPU_ISA=AVX2 with 1 thread, and under
#      DNNL_MAX_CPU_ISA=AVX512_CORE with 2 threads where the CPU has AVX-512 (oneDNN then sums in
#      another order; every criterion must hold on any of them);
#   3. a Debug build with AddressSanitizer and UndefinedBehaviorSanitizer running the unit areas;
#   4. each libFuzzer target for a short, fixed number of executions (tools/fuzz.sh).
# Fails when any test fails, when any area is skipped (a precondition of tests/support/
# requirements.hpp did not hold: everything the suite needs comes from install_deps.sh or
# ../shared), or when a test case checked nothing. Ends with the assertions each area checked.
# Full logs: build/test-logs/; tools/correctness_figures.py turns them into the README's figures.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
jobs=$(nproc)
logs=build/test-logs
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$jobs"
rm -rf "$logs"
mkdir -p "$logs"

summary=()   # one line per (pass, area)
passed=0 failed=0 skipped=0

# run_pass NAME BUILD_DIR CTEST_ARGS... : runs ctest with the caller's environment, keeps its log,
# and records each area's outcome and assertion count.
run_pass() {
  local name=$1 dir=$2
  shift 2
  local isa
  isa=$(DNNL_VERBOSE=1 "$dir/deepinside" classify models/fashion-mnist-convnet.onnx models/images/0000-ankle-boot.png 2>/dev/null |
        sed -n 's/^onednn_verbose,info,cpu,isa://p' | head -n 1)
  echo
  echo "== $name: oneDNN ISA '${isa:-unknown}', OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset} =="
  echo "${isa:-unknown}, OMP_NUM_THREADS=${OMP_NUM_THREADS:-unset}" > "$logs/$name.isa.txt"
  local status=0
  ctest --test-dir "$dir" --output-on-failure "$@" | tee "$logs/$name.ctest.txt" || status=$?
  cp "$dir/Testing/Temporary/LastTest.log" "$logs/$name.log"
  # Per area: the ctest verdict, and Boost's "N assertions out of M" from the area's own report.
  while IFS='|' read -r area verdict assertions; do
    summary+=("$(printf '%-28s %-12s %-8s %s' "$name" "$area" "$verdict" "${assertions:-?} assertions")")
    case $verdict in
      passed) passed=$((passed + 1)) ;;
      skipped) skipped=$((skipped + 1)) ;;
      *) failed=$((failed + 1)) ;;
    esac
  done < <(awk '
    /^[0-9]+\/[0-9]+ Test: / { area = $3; verdict[area] = "failed"; order[++n] = area }
    /assertions? out of [0-9]+ (passed|failed)/ { for (i = 1; i <= NF; ++i) if ($i == "of") a[area] = $(i + 1) }
    /is skipped because precondition failed/ { skip[area] = 1 }
    /did not check any assertions/ { empty[area] = 1 }
    /^Test Passed\./ { verdict[area] = "passed" }
    END {
      for (i = 1; i <= n; ++i) {
        t = order[i]; v = verdict[t]
        if (skip[t]) v = "skipped"
        if (empty[t]) v = "empty"
        print t "|" v "|" a[t]
      }
    }' "$logs/$name.log")
  return 0
}

run_pass release-default build
numeric=(-L numeric)
OMP_NUM_THREADS=1 DNNL_MAX_CPU_ISA=AVX2 run_pass release-avx2-1thread build "${numeric[@]}"
if grep -qw avx512f /proc/cpuinfo; then
  OMP_NUM_THREADS=2 DNNL_MAX_CPU_ISA=AVX512_CORE run_pass release-avx512core-2threads build "${numeric[@]}"
else
  echo "== no AVX-512 on this CPU: DNNL_MAX_CPU_ISA=AVX512_CORE would run AVX2 again; that pass is left out =="
fi

cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Debug -DDEEPINSIDE_SANITIZE=ON > /dev/null
cmake --build build-sanitize -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_pass sanitize-unit build-sanitize -L unit

echo
echo "== fuzzing: each target for a fixed number of executions (tools/fuzz.sh) =="
fuzz_runs=20000
if FUZZ_SEED=1 tools/fuzz.sh "$fuzz_runs" 2>&1 | tee "$logs/fuzz.log"; then
  summary+=("$(printf '%-28s %-12s %-8s %s' fuzz "4 targets" passed "$fuzz_runs executions each")")
  passed=$((passed + 1))
else
  summary+=("$(printf '%-28s %-12s %-8s %s' fuzz "4 targets" failed "see build/test-logs/fuzz.log")")
  failed=$((failed + 1))
fi

echo
echo "== what each area checked =="
printf '%s\n' "${summary[@]}"
echo "tests: $passed passed, $failed failed, $skipped skipped"
if [ "$failed" -ne 0 ] || [ "$skipped" -ne 0 ]; then
  echo "test.sh: failing: every area must pass and none may be skipped (see build/test-logs/)" >&2
  exit 1
fi
