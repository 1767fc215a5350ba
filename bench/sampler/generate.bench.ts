// Generated tokens per second of the sampler's generator (DecodePool) on stories260K: batch 1,
// 16 and 64, 128 new tokens from [BOS], greedy and top-p 0.9, KV cache vs full recompute;
// and, when Python has torch and transformers, the same workload through transformers
// generate on the same weights and cores, side by side.  Run: bun bench/sampler/generate.bench.ts
// GSIL_BENCH_CORES=N sets the cores both sides use (default: all of this machine's).
// The two sides take turns, one timed run each per round, so a slow spell of a shared
// machine falls on both; the ratio column is the median of the rounds' ratios.
// GSIL_BENCH_RUNS=N sets the rounds (default 3); GSIL_BENCH_VERBOSE=1 prints every round.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { assetFile } from '@gsil/assets';
import {
  createSession,
  DecodePool,
  decoderLayout,
  emptyPast,
  type Generator,
  int64Tensor,
  type SamplingParams,
  SequenceRng,
  sampleToken,
} from '@gsil/inference';
import { importLlama2c, saveCheckpoint } from '@gsil/model';
import { exportOnnx, onnxProto } from '@gsil/model/onnx';
import type * as ort from 'onnxruntime-node';
import { findPython } from '../../test/support/python.ts';

const NEW_TOKENS = 128;
/** Rounds of timed runs of each KV-cache workload; medians are reported. */
const RUNS = Number(process.env.GSIL_BENCH_RUNS ?? 3);
// GSIL_BENCH_BATCHES=64 narrows the workloads; GSIL_BENCH_RECOMPUTE=0 skips the no-cache rows
// (ours and transformers'), which take most of a full run.
const BATCHES = (process.env.GSIL_BENCH_BATCHES ?? '1,16,64').split(',').map(Number);
const RECOMPUTE = process.env.GSIL_BENCH_RECOMPUTE !== '0';
const MODES: Array<[string, SamplingParams]> = [
  ['greedy', { temperature: 0 }],
  ['top-p 0.9', { temperature: 1, topP: 0.9 }],
];

const { config, weights } = importLlama2c(await assetFile('stories260k', 'stories260K.bin'));
const onnxBytes = exportOnnx(config, weights);
// Both sides get the same cores: ONNX Runtime as that many decode worker threads (one
// intra-op thread each: a step is hundreds of tiny operators), torch as its thread count.
const CORES = Number(process.env.GSIL_BENCH_CORES ?? availableParallelism());
// The no-cache rows run whole sequences through this session: big enough operators for
// intra-op threads to pay, so it gets every core too.
const { session, executionProvider } = await createSession(onnxBytes, {
  intraOpThreads: CORES,
  executionProvider: 'auto',
});
// GSIL_BENCH_OPTIMUM_ONLY=1 measures the sampler as it serves a decoder exported elsewhere:
// the same graph without this project's export metadata, so the workers have no one-token
// decode graph and run the Optimum graph, whose every step copies the cache.
const optimumOnly = Boolean(process.env.GSIL_BENCH_OPTIMUM_ONLY);
const poolBytes = optimumOnly ? withoutExportMetadata(onnxBytes) : onnxBytes;

function withoutExportMetadata(bytes: Uint8Array): Uint8Array {
  const model = onnxProto.ModelProto.decode(bytes);
  model.metadataProps = [];
  return onnxProto.ModelProto.encode(model).finish();
}

const layout = decoderLayout(session, config.vocab_size);

/** Generation as the sampler runs it: a DecodePool of min(CORES, batch) workers. */
async function withGenerator<T>(
  batch: number,
  fn: (generate: Generator['generate']) => Promise<T>,
): Promise<T> {
  const pool = await DecodePool.start(poolBytes, {
    workers: Math.min(CORES, batch),
    maxBatch: batch,
    executionProvider,
  });
  try {
    if (pool.fastPath === optimumOnly) throw new Error('bench: the pool took the wrong path');
    return await fn(pool.generate.bind(pool));
  } finally {
    await pool.close();
  }
}

// GSIL_BENCH_CLOCK=cpu times the KV-cache rows (ours and transformers') in CPU seconds of
// the process instead of wall seconds: steadier on a shared machine, and equal to wall time
// for a single-threaded run on an idle one.
const CPU_CLOCK = process.env.GSIL_BENCH_CLOCK === 'cpu';
const nowSeconds = () => {
  if (!CPU_CLOCK) return performance.now() / 1000;
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

/** One timed run of the KV-cache workload through `generate`. */
async function cachedRun(
  generate: Generator['generate'],
  batch: number,
  params: SamplingParams,
): Promise<number> {
  const requests = Array.from({ length: batch }, (_, i) => ({ promptIds: [1], sampleIndex: i }));
  const start = nowSeconds();
  let tokens = 0;
  for await (const c of generate(requests, { ...params, maxNewTokens: NEW_TOKENS })) {
    tokens += c.tokenIds.length;
  }
  return tokens / (nowSeconds() - start);
}

/** Decoding without a cache: every step runs the whole sequence again. */
async function recompute(batch: number, params: SamplingParams): Promise<number> {
  const vocab = config.vocab_size;
  const rngs = Array.from({ length: batch }, (_, i) => new SequenceRng(0, 0, i));
  const seqs = Array.from({ length: batch }, () => [1]);
  const start = performance.now();
  for (let step = 0; step < NEW_TOKENS; step++) {
    const length = seqs[0].length;
    const out: ort.InferenceSession.ReturnType = await session.run({
      input_ids: int64Tensor(seqs.flat(), [batch, length]),
      attention_mask: int64Tensor(new Array(batch * length).fill(1), [batch, length]),
      position_ids: int64Tensor(
        seqs.flatMap(() => Array.from({ length }, (_, t) => t)),
        [batch, length],
      ),
      ...emptyPast(layout, batch),
    });
    const logits = out.logits.data as Float32Array;
    seqs.forEach((seq, b) => {
      seq.push(sampleToken(logits, (b * length + length - 1) * vocab, vocab, params, rngs[b]));
    });
  }
  return (batch * NEW_TOKENS) / ((performance.now() - start) / 1000);
}

/**
 * transformers' generate in a long-lived Python process (hf_generate.py) on the same weights,
 * asked for one timed run at a time so that its runs alternate with ours; or why it cannot
 * run here.
 */
interface Baseline {
  run(batch: number, mode: string, cache: boolean): Promise<number>;
  close(): void;
}

async function startBaseline(): Promise<Baseline | string> {
  const { python, missing } = findPython(['torch', 'transformers'], 'GSIL_BENCH_PYTHON');
  if (!python) return missing;
  const dir = mkdtempSync(join(tmpdir(), 'gsil-bench-'));
  saveCheckpoint(dir, { config, weights, tokenizerJson: '{}' });
  const child = spawn(
    python,
    [
      join(import.meta.dir, 'hf_generate.py'),
      dir,
      String(NEW_TOKENS),
      String(CORES),
      CPU_CLOCK ? 'cpu' : 'wall',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextAnswer = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error(`hf_generate.py exited (code ${child.exitCode})`);
    return JSON.parse(value);
  };
  await nextAnswer(); // {"ready": true} once the model is loaded
  return {
    async run(batch, mode, cache) {
      child.stdin.write(
        `${batch} ${mode === 'greedy' ? 'greedy' : 'top-p'} ${cache ? 'kv' : 'recompute'}\n`,
      );
      return (await nextAnswer()).tokensPerSecond;
    },
    close() {
      child.stdin.end();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const hf = await startBaseline();
const rows: Array<{
  batch: number;
  mode: string;
  cache: boolean;
  ort: number;
  hf?: number;
  ratio?: number;
}> = [];
for (const batch of BATCHES) {
  for (const [mode, params] of MODES) {
    // One warm-up run on each side (a fresh session allocates and compiles as it meets each
    // shape), then RUNS rounds of one run each, ours then theirs: a slow spell on this
    // shared machine then lands on both sides of a round. Reported: the medians, and the
    // median of the per-round ratios.
    const ours: number[] = [];
    const theirs: number[] = [];
    await withGenerator(batch, async (generate) => {
      await cachedRun(generate, batch, params);
      for (let round = 0; round < RUNS; round++) {
        ours.push(await cachedRun(generate, batch, params));
        if (typeof hf !== 'string') theirs.push(await hf.run(batch, mode, true));
      }
    });
    if (process.env.GSIL_BENCH_VERBOSE) {
      console.error(
        `${batch} ${mode}: ours ${ours.map(Math.round)} theirs ${theirs.map(Math.round)}`,
      );
    }
    rows.push({
      batch,
      mode,
      cache: true,
      ort: median(ours),
      hf: theirs.length ? median(theirs) : undefined,
      ratio: theirs.length ? median(ours.map((o, i) => o / theirs[i])) : undefined,
    });
    if (RECOMPUTE) {
      const ort = await recompute(batch, params);
      const ref = typeof hf === 'string' ? undefined : await hf.run(batch, mode, false);
      rows.push({ batch, mode, cache: false, ort, hf: ref, ratio: ref ? ort / ref : undefined });
    }
  }
}
if (typeof hf !== 'string') hf.close();
const graph = optimumOnly ? 'Optimum graph only' : 'decode-step graph';
console.log(
  `ONNX Runtime (${executionProvider}, ${graph}, ${CORES} decode workers) ` +
    `vs transformers (${CORES} torch threads), ${NEW_TOKENS} new tokens, generated tokens/s ` +
    `(${CPU_CLOCK ? 'kv rows per CPU second' : 'wall clock'})`,
);
if (typeof hf === 'string') console.log(`transformers: skipped (${hf})`);
console.log('batch  mode        cache      ort tok/s   transformers tok/s   ort/transformers');
for (const r of rows) {
  console.log(
    [
      String(r.batch).padStart(5),
      r.mode.padEnd(10),
      (r.cache ? 'kv' : 'recompute').padEnd(9),
      r.ort.toFixed(0).padStart(11),
      (r.hf ? r.hf.toFixed(0) : '-').padStart(20),
      (r.ratio ? `${r.ratio.toFixed(2)}x` : '-').padStart(18),
    ].join('  '),
  );
}
