// Scored tokens per second of the ratio service on stories260K over real gRPC: LogProbs
// requests of 64 pairs of 80-120 tokens (prompt 20 + response 60-100), cold (every pair
// new, so every pair runs a forward pass) against the cache-hit path (the same request
// again), plus Ratios of two versions cold.  Run: bun bench/ratio/score.bench.ts
// GSIL_BENCH_THREADS sets ONNX Runtime's intra-op threads (default 0: its own choice).

import { credentials, type ServiceError } from '@grpc/grpc-js';
import {
  type LogProbsRequest,
  type LogProbsResponse,
  RatioServiceClient,
  type RatiosRequest,
  type RatiosResponse,
  type ScoringPair,
} from '@gsil/contracts';
import { createLogger } from '@gsil/service-kit';
import { startRatio } from '../../services/ratio/src/main.ts';
import {
  createTestModelRoot,
  MODEL_NAME,
  perturbWeights,
} from '../../services/ratio/src/test-model-root.ts';

const PAIRS_PER_REQUEST = 64;
const PROMPT_TOKENS = 20;
const REPS = Number(process.env.GSIL_BENCH_REPS ?? 10);
const THREADS = Number(process.env.GSIL_BENCH_THREADS ?? 0);

// Deterministic pseudo-random token ids (a fresh pair per call, so cold requests miss).
let state = 12345;
const nextId = () => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return 3 + (state % 509);
};
const ids = (n: number) => Array.from({ length: n }, nextId);
const tokens = (value: number[]) => ({
  value: { $case: 'tokens' as const, value: { ids: value } },
});

function makePairs(): { pairs: ScoringPair[]; sequenceTokens: number; responseTokens: number } {
  const pairs: ScoringPair[] = [];
  let sequenceTokens = 0;
  let responseTokens = 0;
  for (let i = 0; i < PAIRS_PER_REQUEST; i++) {
    const responseLength = 60 + ((i * 41) % 41); // 60..100
    pairs.push({
      prompt: tokens([1, ...ids(PROMPT_TOKENS - 1)]),
      response: tokens(ids(responseLength)),
    });
    sequenceTokens += PROMPT_TOKENS + responseLength;
    responseTokens += responseLength;
  }
  return { pairs, sequenceTokens, responseTokens };
}

const root = createTestModelRoot();
root.writeVersion('perturbed', perturbWeights(root.weights, 0.02));
const ratio = await startRatio({
  port: 0,
  host: '127.0.0.1',
  modelRoot: root.root,
  threads: THREADS,
  handleSignals: false,
  logger: createLogger('ratio-bench', 'warn'),
});
const client = new RatioServiceClient(`127.0.0.1:${ratio.port}`, credentials.createInsecure());
const base = { name: MODEL_NAME, version: 'base' };
const perturbed = { name: MODEL_NAME, version: 'perturbed' };

function logProbs(pairs: ScoringPair[]): Promise<LogProbsResponse> {
  const request: LogProbsRequest = { requestId: '', model: base, pairs, perToken: false };
  return new Promise((resolve, reject) =>
    client.logProbs(request, (err: ServiceError | null, res) => (err ? reject(err) : resolve(res))),
  );
}
function ratios(pairs: ScoringPair[]): Promise<RatiosResponse> {
  const request: RatiosRequest = {
    requestId: '',
    policy: perturbed,
    reference: base,
    pairs,
    alpha: 0.1,
    beta: 0,
  };
  return new Promise((resolve, reject) =>
    client.ratios(request, (err: ServiceError | null, res) => (err ? reject(err) : resolve(res))),
  );
}

/** Median wall time in ms of `reps` calls of `run`, each on its own fresh input. */
async function median(reps: number, run: () => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const start = performance.now();
    await run();
    times.push(performance.now() - start);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

// Warm-up: loads both versions and lets ONNX Runtime settle its allocations.
await logProbs(makePairs().pairs);
await ratios(makePairs().pairs);

const sample = makePairs();
const coldMs = await median(REPS, () => logProbs(makePairs().pairs));
await logProbs(sample.pairs);
const hitMs = await median(REPS, () => logProbs(sample.pairs));
const ratiosMs = await median(REPS, () => ratios(makePairs().pairs));

const rate = (tokens: number, ms: number) => Math.round((tokens / ms) * 1000);
const line = (label: string, ms: number, passes = 1) =>
  `${label.padEnd(30)} ${ms.toFixed(1).padStart(8)} ms  ${String(rate(sample.sequenceTokens * passes, ms)).padStart(9)} seq tok/s  ${String(rate(sample.responseTokens * passes, ms)).padStart(9)} resp tok/s`;

console.log(
  `ratio service, stories260K, ${PAIRS_PER_REQUEST} pairs/request, ${sample.sequenceTokens} sequence ` +
    `tokens (${sample.responseTokens} response), median of ${REPS}, intra-op threads ${THREADS || 'auto'}`,
);
console.log(line('LogProbs cold (all misses)', coldMs));
console.log(line('LogProbs cache hits', hitMs));
console.log(line('Ratios cold (2 versions)', ratiosMs, 2));
console.log(`cache-hit speed-up: ${(coldMs / hitMs).toFixed(1)}x`);

client.close();
await ratio.close();
root.remove();
