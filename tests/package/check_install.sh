#!/usr/bin/env bash
# The installed package as a user meets it: `cmake --install` of this build tree into a fresh
# prefix, then examples/ built against that prefix with CMake (find_package) and with pkg-config,
# and run; and the installed command, which must find the installed library. Needs only the build
# tree (built), the source tree and the toolchain the build used.
# Environment (set by ctest): DEEPINSIDE_SOURCE_DIR, DEEPINSIDE_BUILD_DIR, DEEPINSIDE_BIN.
set -euo pipefail

src=${DEEPINSIDE_SOURCE_DIR:?} build=${DEEPINSIDE_BUILD_DIR:?} bin=${DEEPINSIDE_BIN:?}
model=$src/models/fashion-mnist-convnet.onnx
picture=$src/models/images/0000-ankle-boot.png
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
checks=0

pass() { checks=$((checks + 1)); echo "ok $checks: $*"; }
fail() { echo "FAILED: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" > "$work/install.log" || { cat "$work/install.log" >&2; fail "cmake --install"; }
for f in bin/deepinside lib/libdeepinside.so include/deepinside/deepinside.hpp include/deepinside/network.hpp \
         lib/cmake/deepinside/deepinsideConfig.cmake lib/cmake/deepinside/deepinsideConfigVersion.cmake \
         lib/cmake/deepinside/deepinsideTargets.cmake lib/pkgconfig/deepinside.pc; do
  [[ -e $prefix/$f ]] || fail "the install has no $f"
done
pass "cmake --install put the library, headers, command, CMake package and pkg-config file in $prefix"
# A package that names the build or source tree works here and nowhere else.
if grep -rl -e "$src" -e "$build" "$prefix/lib/cmake" "$prefix/lib/pkgconfig"; then fail "the package names the build or source tree"; fi
pass "the CMake package and the .pc file name neither the source nor the build tree"

# The class the command prints for the image: "  1. Ankle boot   class    9  score ...".
expected=$("$bin" classify "$model" "$picture" --top 1 | awk '$1 == "1." { for (i = 1; i < NF; ++i) if ($i == "class") print $(i + 1) }')
[[ $expected =~ ^[0-9]+$ ]] || fail "no class from '$bin classify'"

# run_example NAME DIR EXE: runs EXE on the image in DIR, checks its class and its three heatmaps.
run_example() {
  local name=$1 out=$work/$2 exe=$3 rc=0
  mkdir -p "$out"
  "$exe" "$model" "$picture" "$out/boot" > "$out/stdout" || rc=$?
  [[ $rc == 0 ]] || { cat "$out/stdout" >&2; fail "$name exited with status $rc"; }
  local got
  got=$(awk '$1 == "class" { print $2 }' "$out/stdout")
  [[ $got == "$expected" ]] || fail "$name printed class '$got'; deepinside classify prints $expected"
  for method in gradient deconvnet guided; do
    local png=$out/boot.$method.png
    [[ -s $png && $(od -An -tx1 -N8 "$png" | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$name did not write the PNG $png"
  done
  pass "$name: class $got as deepinside classify, and boot.{gradient,deconvnet,guided}.png written"
}

cmake -S "$src/examples" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
  > "$work/configure.log" || { cat "$work/configure.log" >&2; fail "configuring examples/ against $prefix"; }
cmake --build "$work/cmake-build" > "$work/build.log" || { cat "$work/build.log" >&2; fail "building examples/"; }
pass "examples/ configured with find_package(deepinside 0.1) and built against the install"
run_example "saliency_example (CMake)" out-cmake "$work/cmake-build/saliency_example"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046 # pkg-config's flags are meant to be split
${CXX:-g++} -std=c++17 "$src/examples/saliency_example.cpp" -o "$work/saliency_example_pc" $(pkg-config --cflags --libs deepinside) \
  -Wl,-rpath,"$(pkg-config --variable=libdir deepinside)"
pass "the example compiled and linked with \$(pkg-config --cflags --libs deepinside) ($(pkg-config --modversion deepinside))"
run_example "saliency_example (pkg-config)" out-pkg-config "$work/saliency_example_pc"
for method in gradient deconvnet guided; do
  cmp -s "$work/out-cmake/boot.$method.png" "$work/out-pkg-config/boot.$method.png" ||
    fail "the two builds of the example wrote different $method heatmaps"
done
pass "both builds of the example wrote identical heatmaps"

"$prefix/bin/deepinside" info "$model" > "$work/info.txt" || { cat "$work/info.txt" >&2; fail "the installed deepinside info"; }
grep -q "^10 layers" "$work/info.txt" || fail "the installed deepinside info did not list the model's 10 layers"
resolved=$(ldd "$prefix/bin/deepinside" | awk '$1 ~ /^libdeepinside\.so/ { print $3 }')
[[ $resolved == "$prefix"/* ]] || fail "the installed command loads libdeepinside.so from '$resolved', not from $prefix"
pass "the installed deepinside info runs, on the installed library ($resolved)"

echo "package: $checks checks passed"
