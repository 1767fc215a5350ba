// Training forward+backward speed of LlamaModel.sequenceLogprobs on each TF.js backend that
// loads: stories260K (the shipped model) and a larger config (dim 256, 6 layers, 8 heads,
// 4 KV heads, random weights), batch 8 x 256 tokens. Prints ms/step and tokens/s (medians),
// forward alone, peak RSS, and the heaviest kernels of one profiled step.
//
//   bun bench/model/forward-backward.bench.ts [steps=5] [backends=tensorflow,wasm,cpu]

import { readFileSync } from 'node:fs';
import { resolveAsset } from '@gsil/assets';
import {
  importLlama2c,
  type LlamaConfig,
  LlamaModel,
  parameterShapes,
  selectBackend,
  type Weights,
} from '@gsil/model';
import * as tf from '@tensorflow/tfjs';

const BATCH = 8;
const SEQ_LEN = 256;
const steps = Number(process.argv[2] ?? 5);
const backends = (process.argv[3] ?? 'tensorflow,wasm,cpu').split(',');

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Peak resident set of the whole process so far (Linux), else the current RSS.
function peakRssMiB(): number {
  try {
    const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]) / 1024;
  } catch {}
  return process.memoryUsage().rss / 2 ** 20;
}

// Deterministic weights for the large config: uniform(-0.05, 0.05) matrices, unit norms.
function randomWeights(config: LlamaConfig): Weights {
  let x = 12345;
  const next = () => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return (x / 2147483648 - 0.5) * 0.1;
  };
  const weights: Weights = new Map();
  for (const [name, shape] of parameterShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (name.endsWith('norm.weight')) data.fill(1);
    else for (let i = 0; i < data.length; i++) data[i] = next();
    weights.set(name, { shape, data });
  }
  return weights;
}

const asset = await resolveAsset('stories260k');
const stories = importLlama2c(asset.files['stories260K.bin']);
const largeConfig: LlamaConfig = {
  ...stories.config,
  hidden_size: 256,
  intermediate_size: 704, // llama2.c's rule: 4 * dim * 2/3, rounded up to a multiple of 32
  num_hidden_layers: 6,
  num_attention_heads: 8,
  num_key_value_heads: 4,
};
const models = [
  { name: 'stories260K', config: stories.config, weights: stories.weights },
  { name: 'dim256x6', config: largeConfig, weights: randomWeights(largeConfig) },
];

// BOS then a deterministic token stream; the response mask covers every predicted token.
const ids = new Int32Array(BATCH * SEQ_LEN).map((_, i) =>
  i % SEQ_LEN === 0 ? 1 : 3 + ((i * 7919) % 509),
);
const tokensPerStep = BATCH * (SEQ_LEN - 1);

for (const backend of backends) {
  try {
    await selectBackend(backend as 'tensorflow', () => {});
  } catch (err) {
    console.log(`${backend}: not available (${(err as Error).message.split('\n')[0]})`);
    continue;
  }
  for (const { name, config, weights } of models) {
    if (backend === 'cpu' && name !== 'stories260K') {
      console.log(
        `${backend} ${name}: skipped (plain-JS matmuls run ~0.5 GFLOP/s; one step would take minutes)`,
      );
      continue;
    }
    const model = LlamaModel.fromWeights(config, weights);
    const inputIds = tf.tensor2d(ids, [BATCH, SEQ_LEN], 'int32');
    const responseMask = tf.tensor2d(
      new Float32Array(BATCH * SEQ_LEN).map((_, i) => (i % SEQ_LEN === 0 ? 0 : 1)),
      [BATCH, SEQ_LEN],
    );
    const loss = () => tf.neg(tf.mean(model.sequenceLogprobs({ inputIds, responseMask })));
    const forwardBackward = async () => {
      const { value, grads } = tf.variableGrads(loss as () => tf.Scalar, model.variables());
      await Promise.all(Object.values(grads).map((g) => g.data()));
      tf.dispose([value, ...Object.values(grads)]);
    };
    const runs = backend === 'cpu' ? Math.min(steps, 2) : steps;
    const forward: number[] = [];
    const full: number[] = [];
    const tensorsBefore = tf.memory().numTensors;
    for (let i = 0; i <= runs; i++) {
      let t = performance.now();
      tf.tidy(() => loss().dataSync());
      const f = performance.now() - t;
      t = performance.now();
      await forwardBackward();
      const fb = performance.now() - t;
      if (i === 0) continue; // warm-up
      forward.push(f);
      full.push(fb);
    }
    const ms = median(full);
    console.log(
      `${backend} ${name}: forward+backward ${ms.toFixed(1)} ms/step, ` +
        `${((tokensPerStep / ms) * 1000).toFixed(0)} tokens/s; forward ${median(forward).toFixed(1)} ms; ` +
        `peak RSS ${peakRssMiB().toFixed(0)} MiB; tensors +${tf.memory().numTensors - tensorsBefore} ` +
        `(medians of ${runs}, batch ${BATCH} x ${SEQ_LEN})`,
    );
    if (backend !== 'cpu') {
      const profile = await tf.profile(forwardBackward);
      const byKernel = new Map<string, number>();
      let total = 0;
      for (const k of profile.kernels) {
        const kMs = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
        byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + kMs);
        total += kMs;
      }
      const top = [...byKernel]
        .sort((a, b) => b[1] - a[1])
        .slice(0, 6)
        .map(([k, kMs]) => `${k} ${((100 * kMs) / total).toFixed(0)}%`);
      console.log(`  ${profile.kernels.length} kernels per step; kernel time: ${top.join(', ')}`);
    }
    tf.dispose([inputIds, responseMask]);
    model.dispose();
  }
}
