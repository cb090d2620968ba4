#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) with Clang, ASan and UBSan in build-fuzz/, prepares their
# seed corpora and runs each target for RUNS executions. Prints one summary line per target and
# exits non-zero on any finding: a crash, a sanitizer report, a leak, an input slower than
# FUZZ_TIMEOUT seconds, an allocation above FUZZ_MALLOC_LIMIT_MB, an exception outside the library's
# error hierarchy. Findings are saved in build-fuzz/findings/<target>/ (rerun one with
# build-fuzz/fuzz/fuzz_<target> FILE).
#
#   tools/fuzz.sh [RUNS]     build, seed and run every target RUNS times (default 20000)
#   tools/fuzz.sh seeds      only (re)write the seed corpora into build-fuzz/seeds/
#
# Environment: FUZZ_TARGETS (default "onnx_reader npy png jpeg"), FUZZ_BUILD_DIR (default build-fuzz;
# one run at a time per folder, a second waits), FUZZ_JOBS (build jobs, default 2),
# FUZZ_TIMEOUT (seconds per input, default 5), FUZZ_RSS_LIMIT_MB (default 2048),
# FUZZ_MALLOC_LIMIT_MB (default 1024), FUZZ_SEED (libFuzzer -seed, default random).
# Corpora: build-fuzz/corpus/<target>/ keeps what the fuzzer finds interesting from run to run;
# build-fuzz/seeds/<target>/ (fuzz/make_seeds.py) and fuzz/seeds/<target>/ are read-only seeds.
set -euo pipefail
cd "$(dirname "$0")/.."

targets=(${FUZZ_TARGETS:-onnx_reader npy png jpeg})
build=${FUZZ_BUILD_DIR:-build-fuzz}
python=/usr/bin/python3

# Seconds since a `date +%s.%N` stamp.
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

make_seeds() {
  rm -rf "$build/seeds"
  "$python" fuzz/make_seeds.py "$build/seeds" --max-len 65536
}

runs=${1:-20000}
if ! [[ "$runs" =~ ^[0-9]+$ || "$runs" = seeds ]]; then
  echo "usage: tools/fuzz.sh [RUNS] | tools/fuzz.sh seeds" >&2
  exit 2
fi

# One tools/fuzz.sh at a time per build folder: a second one would rebuild the targets, rewrite the
# seeds and truncate the logs under a running one.
mkdir -p "$build"
exec 9> "$build/.fuzz.lock"
if ! flock -n 9; then
  echo "fuzz: $build is in use by another tools/fuzz.sh; waiting (FUZZ_BUILD_DIR=... picks another folder)" >&2
  flock 9
fi

if [ "$runs" = seeds ]; then
  make_seeds
  exit 0
fi

for tool in clang clang++; do
  command -v "$tool" > /dev/null || { echo "fuzz: $tool not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
done

start=$(date +%s.%N)
CC=clang CXX=clang++ cmake -S . -B "$build" -DDEEPINSIDE_FUZZ=ON -DDEEPINSIDE_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g" > /dev/null
cmake --build "$build" -j"${FUZZ_JOBS:-2}" --target "${targets[@]/#/fuzz_}" > "$build/build.log" 2>&1 ||
  { tail -n 40 "$build/build.log" >&2; echo "fuzz: build failed (log: $build/build.log)" >&2; exit 2; }
printf 'fuzz: built %s in %.0f s\n' "${targets[*]}" "$(elapsed "$start")"
make_seeds

# The targets' scratch folders (fuzz/fuzz_support.hpp) live under one folder removed on exit, so
# that nothing is left behind even when a target crashes.
scratch_base=/dev/shm
[ -w "$scratch_base" ] || scratch_base=${TMPDIR:-/tmp}
export DEEPINSIDE_FUZZ_TMP
DEEPINSIDE_FUZZ_TMP=$(mktemp -d "$scratch_base/deepinside-fuzz-run.XXXXXX")
trap 'rm -rf "$DEEPINSIDE_FUZZ_TMP"' EXIT

# Leaks are findings; undefined behaviour already aborts (-fno-sanitize-recover=all).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

status=0
for t in "${targets[@]}"; do
  corpus=$build/corpus/$t
  findings=$build/findings/$t
  log=$build/logs/$t.log
  mkdir -p "$corpus" "$findings" "$(dirname "$log")"
  seeds=("$build/seeds/$t")
  [ -d "fuzz/seeds/$t" ] && seeds+=("fuzz/seeds/$t")
  before=$(find "$findings" -type f | wc -l)
  args=(-runs="$runs" -max_len=65536 -timeout="${FUZZ_TIMEOUT:-5}" -rss_limit_mb="${FUZZ_RSS_LIMIT_MB:-2048}"
        -malloc_limit_mb="${FUZZ_MALLOC_LIMIT_MB:-1024}" -dict="fuzz/$t.dict" -artifact_prefix="$findings/"
        -print_final_stats=1)
  [ "$t" = npy ] && args[1]=-max_len=66000 # room for a header at the reader's 64 KiB limit
  [ -n "${FUZZ_SEED:-}" ] && args+=(-seed="$FUZZ_SEED")
  t0=$(date +%s.%N)
  rc=0
  "$build/fuzz/fuzz_$t" "${args[@]}" "$corpus" "${seeds[@]}" > "$log" 2>&1 || rc=$?
  seconds=$(elapsed "$t0")
  after=$(find "$findings" -type f | wc -l)

  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -n 1)
  done_line=$(grep -a -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<< "$done_line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<< "$done_line")
  files=$(find "$corpus" -type f | wc -l)
  bytes=$(du -sk "$corpus" | cut -f1)
  execs=${execs:-0}
  rate=$(awk -v n="$execs" -v s="$seconds" 'BEGIN { printf "%d", (s > 0 ? n / s : 0) }')
  verdict=ok
  if [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
    verdict="FINDING (exit $rc; log $log; inputs in $findings/)"
    status=1
  fi
  printf 'fuzz %-11s %9s execs %7.1f s %7s exec/s  cov %5s ft %6s  corpus %5s files %6s kB  rss %5s MB  %s\n' \
    "$t" "$execs" "$seconds" "$rate" "${cov:-?}" "${ft:-?}" "$files" "$bytes" "${rss:-?}" "$verdict"
  if [ "$verdict" != ok ]; then
    grep -a -E 'ERROR|SUMMARY|fuzz target:|==[0-9]+==|Test unit written' "$log" | head -n 12 | sed 's/^/  /' >&2 || true
  fi
done
printf 'fuzz: total %.0f s\n' "$(elapsed "$start")"
exit "$status"
