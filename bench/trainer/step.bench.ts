// GSIL update speed of the trainer: one optimizer step on stories260K over 8 pairs of
// 128-token responses (bernoulli loss, AdamW), on each TF.js backend that loads, with a
// breakdown into forward, backward and optimizer; and, when PyTorch is importable, the same
// step in PyTorch (step_torch.py beside this file) for the ratio. Each phase is timed in wall
// time and in process CPU time (user + system, all threads): on a shared machine the CPU
// time is the steadier figure. PyTorch runs with as many threads as TensorFlow uses (the
// core count). After the timed steps, one profiled step lists the top kernels.
//
//   bun bench/trainer/step.bench.ts [steps=5]
//   GSIL_BENCH_BACKENDS=tensorflow bun bench/trainer/step.bench.ts 9   (one backend only)

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveAsset } from '@gsil/assets';
import { gsilLoss } from '@gsil/gsil';
import { importLlama2c, saveCheckpoint, selectBackend } from '@gsil/model';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { type Pair, Policy, packSequences } from '../../services/trainer/src/policy.ts';
import { findPython } from '../../test/support/python.ts';

const PAIRS = 8;
const RESPONSE_TOKENS = 128;
const steps = Number(process.argv[2] ?? 5);
const backends = (process.env.GSIL_BENCH_BACKENDS ?? 'tensorflow,wasm,cpu').split(',');
const threads = availableParallelism();

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
/** Wall and process CPU milliseconds of `fn`. */
function timed(fn: () => void): { wallMs: number; cpuMs: number } {
  const cpu = process.cpuUsage();
  const t = performance.now();
  fn();
  const wallMs = performance.now() - t;
  const used = process.cpuUsage(cpu);
  return { wallMs, cpuMs: (used.user + used.system) / 1000 };
}

const tokensPerStep = 2 * PAIRS * RESPONSE_TOKENS;

type Phases = Record<
  'forward' | 'backward' | 'optimizer' | 'full',
  { wallMs: number[]; cpuMs: number[] }
>;
const results: Record<string, { wallMs: number; cpuMs: number }> = {};

for (const backend of backends as Array<'tensorflow' | 'wasm' | 'cpu'>) {
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
  const forwardBackward = () => {
    const { value, grads } = tf.variableGrads(lossOf, policy.model.variables());
    for (const g of Object.values(grads)) g.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  const fullStep = () => {
    policy.step('bernoulli', [pairs], { alpha: 0.1, beta: 0 }, settings.learningRate);
  };
  const phases: Phases = {
    forward: { wallMs: [], cpuMs: [] },
    backward: { wallMs: [], cpuMs: [] },
    optimizer: { wallMs: [], cpuMs: [] },
    full: { wallMs: [], cpuMs: [] },
  };
  for (let i = 0; i <= steps; i++) {
    const f = timed(() => tf.tidy(() => lossOf().dataSync()));
    const fb = timed(forwardBackward);
    const s = timed(fullStep);
    if (i === 0) continue; // warm-up: kernels compile, WASM memory grows
    // The full step repeats the forward and backward; what it adds is clip + optimizer.
    for (const clock of ['wallMs', 'cpuMs'] as const) {
      phases.forward[clock].push(f[clock]);
      phases.backward[clock].push(fb[clock] - f[clock]);
      phases.optimizer[clock].push(s[clock] - fb[clock]);
      phases.full[clock].push(s[clock]);
    }
  }
  const stepMs = median(phases.full.wallMs);
  const stepCpuMs = median(phases.full.cpuMs);
  results[backend] = { wallMs: stepMs, cpuMs: stepCpuMs };
  const part = (name: keyof Phases) =>
    `${name} ${median(phases[name].wallMs).toFixed(1)} ms (cpu ${median(phases[name].cpuMs).toFixed(1)})`;
  console.log(
    `${backend}: ${stepMs.toFixed(1)} ms/step wall, ${stepCpuMs.toFixed(1)} ms cpu, ` +
      `${((tokensPerStep / stepMs) * 1000).toFixed(0)} tokens/s; ${part('forward')}, ` +
      `${part('backward')}, ${part('optimizer')} (medians of ${steps}; ` +
      'the parts are separate measurements and need not add up)',
  );

  // One profiled full step: kernel time by kernel name, top 12.
  const profile = await tf.profile(fullStep);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of profile.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(k.kernelTimeMs) || 0;
    entry.calls += 1;
    byKernel.set(k.name, entry);
  }
  const totalKernelMs = [...byKernel.values()].reduce((n, e) => n + e.ms, 0);
  const top = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, 12);
  console.log(
    `  kernels of one step: ${profile.kernels.length} calls, ${totalKernelMs.toFixed(1)} ms; top: ` +
      top.map(([name, e]) => `${name} ${e.ms.toFixed(1)} ms/${e.calls}`).join(', '),
  );
  tf.dispose([packed.tokens, packed.responseMask, packed.attentionMask]);
  policy.dispose();
}

// The same step in PyTorch, from the same weights written as a Hugging Face folder.
const { python, missing } = findPython(['torch', 'transformers'], 'GSIL_BENCH_PYTHON');
if (python) {
  const dir = mkdtempSync(join(tmpdir(), 'gsil-bench-'));
  saveCheckpoint(dir, {
    config,
    weights,
    tokenizerJson: llama2cVocabToTokenizerJson(asset.files['tok512.bin']),
  });
  const script = new URL('./step_torch.py', import.meta.url).pathname;
  // PyTorch at TensorFlow's thread count and at one thread: on a loaded 2-core machine its
  // OpenMP threads can spin against other work and run far slower than one thread does.
  for (const torchThreads of [...new Set([threads, 1])]) {
    const torch = spawnSync(
      python,
      [script, dir, String(steps), String(PAIRS), String(RESPONSE_TOKENS), String(torchThreads)],
      { encoding: 'utf8' },
    );
    process.stdout.write(torch.stdout);
    if (torch.status !== 0) process.stderr.write(torch.stderr);
    const torchMs = Number(/torch: ([\d.]+) ms\/step wall/.exec(torch.stdout)?.[1]);
    const torchCpuMs = Number(/ ([\d.]+) ms cpu/.exec(torch.stdout)?.[1]);
    for (const [backend, r] of Object.entries(results)) {
      console.log(
        `${backend} / torch (${torchThreads} threads): ${(r.wallMs / torchMs).toFixed(2)}x wall, ` +
          `${(r.cpuMs / torchCpuMs).toFixed(2)}x cpu`,
      );
    }
  }
} else {
  console.log(`PyTorch comparison skipped: ${missing}`);
}
