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
cmake --build build -j"$(nproc)" --target deepinside deepinside_python
model=models/fashion-mnist-convnet.onnx
./build/deepinside info "$model"
echo
./build/deepinside classify "$model" models/images/*.png --top 3
echo
# Every image in one run: the model loaded once, the images in one batch; a panel per image and a
# JSON summary (schema deepinside.saliency/1) beside the maps.
./build/deepinside saliency "$model" models/images --method gradient,deconvnet,guided --panel \
    --out build/main-job/ --json build/main-job/saliency.json
echo "saliency maps written to build/main-job/ (summary: build/main-job/saliency.json)"
echo
./build/deepinside verify "$model" models/images/*.png --json build/main-job/verify/certificate.json \
    --report build/main-job/verify | tail -n 14
echo "verify report written to build/main-job/verify/index.html"
echo
# The held-out split of the shapes data set (2,000 images) is generated into build/shapes when absent.
/usr/bin/python3 tools/demo.py reports/demo | grep -v '^+ '
