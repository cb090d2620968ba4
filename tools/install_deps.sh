#!/usr/bin/env bash
# Installs every Debian package that building, running and testing deepinside need.
# Idempotent: when everything is present it only checks, in about a second.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libdnnl-dev                       # oneDNN: every forward and backward primitive
  ocl-icd-opencl-dev                # only a Recommends of libdnnl-dev, but its dnnl-config.cmake
                                    # calls find_package(OpenCL REQUIRED): configure fails without it
  libonnx-dev libprotobuf-dev protobuf-compiler  # ONNX's protobuf classes, checker, shape inference
  libeigen3-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  libboost-test-dev libboost-graph-dev
  libopenmpi-dev openmpi-bin        # mpirun -n K deepinside saliency|classify ...: images split across processes
  libpng-dev libjpeg-dev            # image decoding (no stb_image for untrusted files)
  libonnx-testdata                  # ONNX's backend node tests (conformance)
  dataset-fashion-mnist             # training data of the bundled model
  python3-numpy python3-torch python3-torchvision python3-onnx  # reference exports and cross-checks
  python3-pil                       # tests/io compares our JPEG decoding with PIL's
  python3-dev pybind11-dev python3-pybind11 python3-pytest  # the Python module (python/) and its tests
  chromium                          # tests/demo opens the demo page (reports/demo/) headless
  clang libclang-rt-14-dev libomp-dev  # libFuzzer targets (fuzz/), run briefly by tools/test.sh;
                                    # clang needs its own OpenMP runtime (omp.h) for the library
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
