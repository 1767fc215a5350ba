// GSIL update speed of the trainer: one optimizer step on stories260K over 8 pairs of
// 128-token responses (bernoulli loss, AdamW), on each TF.js backend that loads, with a
// breakdown into forward, backward and optimizer; and, when PyTorch is importable, the same
// step in PyTorch (step_torch.py beside this file) for the ratio.
//
//   bun bench/trainer/step.bench.ts [steps=5]

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAsset } from '@gsil/assets';
import { gsilLoss } from '@gsil/gsil';
import { importLlama2c, saveCheckpoint, selectBackend } from '@gsil/model';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { type Pair, Policy, packSequences } from '../../services/trainer/src/policy.ts';

const PAIRS = 8;
const RESPONSE_TOKENS = 128;
const steps = Number(process.argv[2] ?? 5);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// Deterministic token ids (a linear congruential stream), the same for PyTorch below.
function tokenStream(seed: number, count: number): number[] {
  const ids: number[] = [];
  let x = seed;
  for (let i = 0; i < count; i++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    ids.push(3 + (x % 509));
  }
  return ids;
}

const asset = await resolveAsset('stories260k');
const { config, weights } = importLlama2c(asset.files['stories260K.bin']);
const pairs: Pair[] = Array.from({ length: PAIRS }, (_, i) => ({
  real: { promptIds: [1], responseIds: tokenStream(2 * i + 1, RESPONSE_TOKENS) },
  generated: { promptIds: [1], responseIds: tokenStream(2 * i + 2, RESPONSE_TOKENS) },
  refRealLogp: 0,
  refGeneratedLogp: 0,
}));
const settings = {
  name: 'adamw' as const,
  learningRate: 1e-4,
  weightDecay: 0,
  warmupSteps: 0,
  schedule: 'constant' as const,
  maxGradNorm: 1,
};
const tokensPerStep = 2 * PAIRS * RESPONSE_TOKENS;
const results: Record<string, number> = {};

for (const backend of ['tensorflow', 'wasm', 'cpu'] as const) {
  try {
    await selectBackend(backend, () => {});
  } catch (err) {
    console.log(`${backend}: not available (${(err as Error).message.split('\n')[0]})`);
    continue;
  }
  const policy = new Policy(config, weights, settings);
  // Reference logps = the policy's own at the start, as at the start of an iteration.
  const refs = policy.sequenceLogps([
    ...pairs.map((p) => p.real),
    ...pairs.map((p) => p.generated),
  ]);
  pairs.forEach((p, i) => {
    p.refRealLogp = refs[i];
    p.refGeneratedLogp = refs[PAIRS + i];
  });
  const packed = packSequences([...pairs.map((p) => p.real), ...pairs.map((p) => p.generated)]);
  const lossOf = () => {
    const logps = policy.model.sequenceLogprobs({
      inputIds: packed.tokens,
      responseMask: packed.responseMask,
      attentionMask: packed.attentionMask,
    });
    const out = gsilLoss(
      'bernoulli',
      {
        policyRealLogps: logps.slice(0, PAIRS) as tf.Tensor1D,
        policyGeneratedLogps: logps.slice(PAIRS, PAIRS) as tf.Tensor1D,
        refRealLogps: tf.tensor1d(pairs.map((p) => p.refRealLogp)),
        refGeneratedLogps: tf.tensor1d(pairs.map((p) => p.refGeneratedLogp)),
      },
      { alpha: 0.1, beta: 0 },
    );
    out.dispose();
    return out.loss;
  };
  const forward: number[] = [];
  const backward: number[] = [];
  const optimizer: number[] = [];
  const full: number[] = [];
  for (let i = 0; i <= steps; i++) {
    let t = performance.now();
    tf.tidy(() => lossOf().dataSync());
    const f = performance.now() - t;
    t = performance.now();
    const { value, grads } = tf.variableGrads(lossOf, policy.model.variables());
    await Promise.all(Object.values(grads).map((g) => g.data()));
    const fb = performance.now() - t;
    tf.dispose([value, ...Object.values(grads)]);
    t = performance.now();
    policy.step('bernoulli', [pairs], { alpha: 0.1, beta: 0 }, settings.learningRate);
    const s = performance.now() - t;
    if (i === 0) continue; // warm-up: kernels compile, WASM memory grows
    // The full step repeats the forward and backward; what it adds is clip + optimizer.
    forward.push(f);
    backward.push(fb - f);
    optimizer.push(s - fb);
    full.push(s);
  }
  const stepMs = median(full);
  results[backend] = stepMs;
  console.log(
    `${backend}: ${stepMs.toFixed(1)} ms/step, ${((tokensPerStep / stepMs) * 1000).toFixed(0)} tokens/s; ` +
      `forward ${median(forward).toFixed(1)} ms, backward ${median(backward).toFixed(1)} ms, ` +
      `optimizer+clip ${median(optimizer).toFixed(1)} ms (medians of ${steps}; ` +
      'the parts are separate measurements and need not add up)',
  );
  tf.dispose([packed.tokens, packed.responseMask, packed.attentionMask]);
  policy.dispose();
}

// The same step in PyTorch, from the same weights written as a Hugging Face folder.
const probe = spawnSync('python3', ['-c', 'import torch, transformers'], { encoding: 'utf8' });
if (probe.status === 0) {
  const dir = mkdtempSync(join(tmpdir(), 'gsil-bench-'));
  saveCheckpoint(dir, {
    config,
    weights,
    tokenizerJson: llama2cVocabToTokenizerJson(asset.files['tok512.bin']),
  });
  const script = new URL('./step_torch.py', import.meta.url).pathname;
  const torch = spawnSync(
    'python3',
    [script, dir, String(steps), String(PAIRS), String(RESPONSE_TOKENS)],
    {
      encoding: 'utf8',
    },
  );
  process.stdout.write(torch.stdout);
  if (torch.status !== 0) process.stderr.write(torch.stderr);
  const torchMs = Number(/torch: ([\d.]+) ms\/step/.exec(torch.stdout)?.[1]);
  for (const [backend, ms] of Object.entries(results)) {
    console.log(`${backend} / torch: ${(ms / torchMs).toFixed(1)}x the PyTorch step time`);
  }
} else {
  console.log('PyTorch not importable: no comparison');
}
