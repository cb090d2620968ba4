#!/usr/bin/env bash
# Regenerates reports/verify/: runs `deepinside verify` (the layer-by-layer certificate that
# DeconvNet is the gradient except at ReLU, the paper's section 4) on every model below, writes
# reports/verify/<name>/ (report.md, index.html, figures, certificate.json, run.json, verify.log)
# and then reports/verify/README.md, one table row per model (tools/verify_summary.py).
#
#   tools/verify_reports.sh [--bin PATH] [--only a,b] [--threads N] [--shared DIR] [--reports DIR]
#                           [--list]
#
#   --bin PATH      the deepinside binary (default build/deepinside)
#   --only a,b      run these models only (the table is still rebuilt from every folder present)
#   --threads N     passed to deepinside verify and to the exporters (default: theirs; exporters 1)
#   --shared DIR    the models trained elsewhere (default ../shared/models beside the checkout;
#                   skipped with a message where absent)
#   --reports DIR   where the reports go (default reports/verify)
#   --list          print the model names and exit
#
# Models and inputs:
#   fashion-mnist-convnet   models/fashion-mnist-convnet.onnx on the bundled images models/images/*.png
#   <folder>                every SHARED/<folder>/model.onnx, on SHARED/<folder>/input.npy fed as is;
#                           without input.npy, on its test_data_set_*/input_0.pb, converted to
#                           build/verify-models/shared/<folder>/input.npy first
#   alexnet vgg16 resnet18_bn resnet18_folded squeezenet1_1 googlenet densenet121 mobilenet_v2
#                           tools/export_torchvision.py (seeded random weights) into
#                           build/verify-models/torchvision/<arch>/, on its input.npy
#   paper8, paper8_cnn_m    tools/export_paper_net.py (the paper's 8-layer ILSVRC-2013 shape, and
#                           the wider CNN-M / Zeiler & Fergus shape) into build/verify-models/<name>/,
#                           on its input.npy
# Exports are cached: a model folder that already has model.onnx and input.npy is reused.
#
# Each model's exit code (0 the certificate holds, 3 a layer contradicts the paper, 1/2 an error)
# and wall time go to run.json; one failing model does not stop the others. A model's folder is
# replaced only when its run finishes. Exits 1 when any model could not be exported or verified
# (exit 1 or 2), 0 otherwise (a contradiction, exit 3, is a result, not a failure of this script).
set -euo pipefail
cd "$(dirname "$0")/.."

py=/usr/bin/python3
bin=build/deepinside
only=""
threads=""
shared=../shared/models
reports=reports/verify
list_only=0
usage() { sed -n '6,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=${2:?--bin needs a path}; shift 2 ;;
    --only) only=${2:?--only needs names}; shift 2 ;;
    --threads) threads=${2:?--threads needs a number}; shift 2 ;;
    --shared) shared=${2:?--shared needs a folder}; shift 2 ;;
    --reports) reports=${2:?--reports needs a folder}; shift 2 ;;
    --list) list_only=1; shift ;;
    -h|--help) usage ;;
    *) echo "unknown argument: $1" >&2; usage ;;
  esac
done

models_dir=build/verify-models
torchvision_archs=(alexnet vgg16 resnet18_bn resnet18_folded squeezenet1_1 googlenet densenet121
                   mobilenet_v2)
paper_nets=(paper8 paper8_cnn_m)

# Every model, in table order.
shared_names=()
if [ -d "$shared" ]; then
  while IFS= read -r found; do
    shared_names+=("$found")
  done < <(find -L "$shared" -mindepth 2 -maxdepth 2 -name model.onnx -printf '%h\n' \
           | sed 's#.*/##' | LC_ALL=C sort)
fi
all=(fashion-mnist-convnet "${shared_names[@]}" "${torchvision_archs[@]}" "${paper_nets[@]}")

if [ "$list_only" = 1 ]; then
  printf '%s\n' "${all[@]}"
  exit 0
fi
if [ ! -d "$shared" ]; then
  echo "note: $shared is absent: the models trained elsewhere are skipped" >&2
fi

selected=("${all[@]}")
if [ -n "$only" ]; then
  IFS=, read -r -a selected <<< "$only"
  for name in "${selected[@]}"; do
    if ! printf '%s\n' "${all[@]}" | grep -qxF -- "$name"; then
      echo "unknown model '$name'; known: ${all[*]}" >&2
      exit 2
    fi
  done
fi
if [ ! -x "$bin" ]; then
  echo "no deepinside binary at $bin (build it, or pass --bin PATH)" >&2
  exit 2
fi

mkdir -p "$models_dir/logs" "$reports"
# One run at a time: a second would export into the same folders and replace the same reports.
exec 9> "$models_dir/.verify_reports.lock"
if ! flock -n 9; then
  echo "another tools/verify_reports.sh is running (lock $models_dir/.verify_reports.lock)" >&2
  exit 1
fi

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
is_shared() { printf '%s\n' "${shared_names[@]}" | grep -qxF -- "$1"; }
is_torchvision() { printf '%s\n' "${torchvision_archs[@]}" | grep -qxF -- "$1"; }
export_threads=${threads:-1}

# Sets model, input_desc and verify_args (the inputs) for one name; exports or converts first when
# needed. Returns non-zero, with the reason in prepare_error, when that fails.
prepare() {
  local name=$1 dir pb log
  prepare_error=""
  verify_args=()
  log="$models_dir/logs/prepare-$name.log"
  if [ "$name" = fashion-mnist-convnet ]; then
    model=models/fashion-mnist-convnet.onnx
    verify_args=(models/images/*.png)
    input_desc="the bundled images models/images/*.png (${#verify_args[@]} images)"
  elif is_shared "$name"; then
    dir="$shared/$name"
    model="$dir/model.onnx"
    if [ -f "$dir/input.npy" ]; then
      verify_args=(--input "$dir/input.npy")
      input_desc="input.npy of the shared folder, fed as is"
    else
      pb=$(find "$dir" -path '*test_data_set_*/input_0.pb' | sort | head -n 1)
      if [ -z "$pb" ]; then
        prepare_error="$dir has neither input.npy nor test_data_set_*/input_0.pb"
        return 1
      fi
      mkdir -p "$models_dir/shared/$name"
      local npy="$models_dir/shared/$name/input.npy"
      if [ ! -f "$npy" ]; then
        "$py" - "$pb" "$npy" > "$log" 2>&1 <<'EOF' \
          || { prepare_error="converting $pb failed (see $log)"; return 1; }
import os, sys
import numpy as np
import onnx
from onnx import numpy_helper
tensor = onnx.TensorProto()
with open(sys.argv[1], "rb") as f:
    tensor.ParseFromString(f.read())
array = np.ascontiguousarray(numpy_helper.to_array(tensor), dtype=np.float32)
tmp = sys.argv[2] + ".tmp.npy"
np.save(tmp, array)
os.replace(tmp, sys.argv[2])
print(f"{sys.argv[1]} -> {sys.argv[2]}: {array.shape}")
EOF
      fi
      verify_args=(--input "$npy")
      input_desc="${pb#"$dir"/}, converted to .npy"
    fi
  elif is_torchvision "$name"; then
    dir="$models_dir/torchvision/$name"
    model="$dir/model.onnx"
    if [ ! -f "$model" ] || [ ! -f "$dir/input.npy" ]; then
      "$py" tools/export_torchvision.py "$models_dir/torchvision" --archs "$name" \
        --threads "$export_threads" > "$log" 2>&1 \
        || { prepare_error="export failed: $(tail -n 1 "$log") (see $log)"; return 1; }
    fi
    verify_args=(--input "$dir/input.npy")
    input_desc="tools/export_torchvision.py's seeded standard-normal input.npy [1,3,224,224]"
  else
    dir="$models_dir/$name"
    model="$dir/model.onnx"
    local variant=paper
    [ "$name" = paper8_cnn_m ] && variant=cnn-m
    if [ ! -f "$model" ] || [ ! -f "$dir/input.npy" ]; then
      "$py" tools/export_paper_net.py "$dir" --variant "$variant" \
        --threads "$export_threads" > "$log" 2>&1 \
        || { prepare_error="export failed: $(tail -n 1 "$log") (see $log)"; return 1; }
    fi
    verify_args=(--input "$dir/input.npy")
    input_desc="tools/export_paper_net.py --variant $variant: seeded standard-normal input.npy"
    input_desc+=" [1,3,224,224]"
  fi
}

# run.json: what ran, its exit code and time (json-escaped by Python).
write_run_json() {
  local out=$1 name=$2 code=$3 seconds=$4 message=$5
  shift 5
  "$py" - "$out" "$name" "$code" "$seconds" "$message" "$model" "$input_desc" \
    "$("$bin" --version 2>/dev/null | head -n 1 || true)" \
    "$(git rev-parse --short HEAD 2>/dev/null || true)" "$@" <<'EOF'
import datetime, json, os, shlex, sys
out, name, code, seconds, message, model, input_desc, version, commit, *command = sys.argv[1:]
run = {
    "name": name, "model": model, "input": input_desc,
    "command": " ".join(shlex.quote(a) for a in command),
    "exit_code": int(code), "seconds": float(seconds),
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    "binary_version": version, "commit": commit,
}
if message:
    run["message"] = message
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(run, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
EOF
}

failures=0
for name in "${selected[@]}"; do
  started=$(date +%s.%N)
  tmp="$reports/.tmp-$name"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  model="" input_desc="" code=0 message=""
  if prepare "$name"; then
    cmd=("$bin" verify "$model" "${verify_args[@]}" --json "$tmp/certificate.json" --report "$tmp")
    [ -n "$threads" ] && cmd+=(--threads "$threads")
    "${cmd[@]}" > "$tmp/verify.log" 2>&1 || code=$?
    if [ "$code" != 0 ] && [ "$code" != 3 ]; then
      message=$(grep -v '^[[:space:]]*$' "$tmp/verify.log" | tail -n 1 | cut -c1-200 || true)
    fi
    # The report names the temporary folder nowhere it matters, but the log may: show the final one.
    sed -i "s#$tmp#$reports/$name#g" "$tmp/verify.log" 2>/dev/null || true
  else
    code=1
    message=$prepare_error
    cmd=(prepare "$name")
    echo "$prepare_error" > "$tmp/verify.log"
  fi
  seconds=$(elapsed "$started")
  # the command as it would be typed for the final folder
  shown=("${cmd[@]}")
  for i in "${!shown[@]}"; do shown[i]=${shown[i]//"$tmp"/"$reports/$name"}; done
  write_run_json "$tmp/run.json" "$name" "$code" "$seconds" "$message" "${shown[@]}"
  rm -rf "${reports:?}/$name"
  mv "$tmp" "$reports/$name"
  case "$code" in
    0) verdict="certificate holds" ;;
    3) verdict="a layer contradicts the paper" ;;
    *) verdict="ERROR: $message"; failures=$((failures + 1)) ;;
  esac
  printf '%-26s exit %-2s %8s s  %s\n' "$name" "$code" "$seconds" "$verdict"
done

order=$(IFS=,; echo "${all[*]}")
"$py" tools/verify_summary.py "$reports" --order "$order"
if [ "$failures" -gt 0 ]; then
  echo "$failures model(s) could not be verified" >&2
  exit 1
fi
