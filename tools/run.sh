#!/usr/bin/env bash
# The main job, from a fresh clone: install what is missing, build in Release, then classify the
# bundled Fashion-MNIST images with the bundled model, write a saliency map for each under
# build/main-job/ (all three methods from one forward pass), and certify on them, layer by layer,
# that DeconvNet is the gradient except at ReLU (report in build/main-job/verify/). Then the demo
# (tools/demo.py): class model images, saliency maps, segmentations, certificates and the
# evaluation against ground truth of both bundled models, in reports/demo/index.html.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build -j"$(nproc)" --target deepinside
model=models/fashion-mnist-convnet.onnx
./build/deepinside info "$model"
echo
./build/deepinside classify "$model" models/images/*.png --top 3
echo
mkdir -p build/main-job
for img in models/images/*.png; do
  name=$(basename "$img" .png)
  ./build/deepinside saliency "$model" "$img" --method gradient,deconvnet,guided --out "build/main-job/$name"
done
echo "saliency maps written to build/main-job/"
echo
./build/deepinside verify "$model" models/images/*.png --json build/main-job/verify/certificate.json \
    --report build/main-job/verify | tail -n 14
echo "verify report written to build/main-job/verify/index.html"
echo
# The held-out split of the shapes data set (2,000 images) is generated into build/shapes when absent.
/usr/bin/python3 tools/demo.py reports/demo | grep -v '^+ '
