// Times ONNX Runtime (onnxruntime-node, CPU execution provider) on one model with the same
// method as `qforge bench`: warm-up, then at least --duration seconds and --iterations queries,
// latency median/p99 of host wall time per query. Prints one JSON line.
//
// usage: node ort_bench.js MODEL BATCH THREADS [WARMUP_MS DURATION_S ITERATIONS]
'use strict';
const ort = require('onnxruntime-node');

function percentile(sorted, p) {
  const n = sorted.length;
  const excluded = Math.floor((100 - p) * n / 100 + 1e-9);
  return sorted[Math.min(Math.max(n - 1 - excluded, 0), n - 1)];
}

async function main() {
  const [model, batchText, threadsText, warmupText = '200', durationText = '3', itersText = '10'] =
      process.argv.slice(2);
  const batch = Number(batchText);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: Number(threadsText),
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  const feeds = {};
  for (const name of session.inputNames) {
    // onnxruntime-node 1.30 exposes input metadata; fall back to 3x224x224 images.
    const meta = session.inputMetadata ? session.inputMetadata.find((m) => m.name === name) : null;
    const dims = meta && meta.shape ? meta.shape.map((d, i) => (i === 0 ? batch : d)) : [batch, 3, 224, 224];
    const size = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    let seed = 12345;
    for (let i = 0; i < size; ++i) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      data[i] = seed / 1073741824 - 1;
    }
    feeds[name] = new ort.Tensor('float32', data, dims);
  }
  const now = () => Number(process.hrtime.bigint()) / 1e9;
  const warmupEnd = now() + Number(warmupText) / 1e3;
  while (now() < warmupEnd) await session.run(feeds);
  const latencies = [];
  const start = now();
  let t = start;
  while (latencies.length < Number(itersText) || t - start < Number(durationText)) {
    const before = now();
    await session.run(feeds);
    t = now();
    latencies.push((t - before) * 1e3);
  }
  latencies.sort((a, b) => a - b);
  const n = latencies.length;
  const median = n % 2 ? latencies[(n - 1) / 2] : (latencies[n / 2 - 1] + latencies[n / 2]) / 2;
  console.log(JSON.stringify({
    runtime: 'onnxruntime-node ' + require('onnxruntime-node/package.json').version,
    batch, queries: n, median_ms: median, p99_ms: percentile(latencies, 99),
    qps: n / (t - start),
  }));
}

main().catch((e) => {
  console.error('ort_bench: ' + e.message);
  process.exit(1);
});
