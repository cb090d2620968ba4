#!/usr/bin/env node
// ONNX Runtime's CPU forward time for the README's comparison, measured in the same run as ours.
// Usage: node tools/bench_onnxruntime.js MODEL.onnx --shape 1,3,224,224 --iters N --threads T [--warmup W]
// Prints the version, min, max, median and peak_rss_mb (the process's peak resident memory, Node's own
// included; MB = 10^6 bytes, as deepinside bench and tools/bench_pytorch.py print it).
// Needs the npm package onnxruntime-node (tools/bench.sh installs it with --ignore-scripts under build/).
'use strict';
const ort = require('onnxruntime-node');

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

async function main() {
  const model = process.argv[2];
  const shape = arg('--shape', '1,3,224,224').split(',').map(Number);
  const iters = Number(arg('--iters', '20')), warmup = Number(arg('--warmup', '3'));
  const threads = Number(arg('--threads', '2'));
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
  });
  const count = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(count);
  let seed = 1;
  for (let i = 0; i < count; ++i) { seed = (seed * 1103515245 + 12345) % 2147483648; data[i] = seed / 2147483648 - 0.5; }
  const feeds = { [session.inputNames[0]]: new ort.Tensor('float32', data, shape) };
  for (let i = 0; i < warmup; ++i) await session.run(feeds);
  const ms = [];
  for (let i = 0; i < iters; ++i) {
    const t0 = process.hrtime.bigint();
    await session.run(feeds);
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  const median = ms.length % 2 ? ms[(ms.length - 1) / 2] : 0.5 * (ms[ms.length / 2 - 1] + ms[ms.length / 2]);
  console.log(`onnxruntime ${require('onnxruntime-node/package.json').version} threads ${threads}`);
  console.log(`min ${ms[0].toFixed(3)} ms\nmax ${ms[ms.length - 1].toFixed(3)} ms`);
  console.log(`median ${median.toFixed(3)} ms`);
  if (process.resourceUsage) console.log(`peak_rss_mb ${(process.resourceUsage().maxRSS * 1024 / 1e6).toFixed(1)}`); // maxRSS: KiB
}
main().catch((e) => { console.error(`bench_onnxruntime: ${e.message}`); process.exit(1); });
