// The phases that run on other services: sampling the reference's own responses (sampler
// replicas), scoring reference log-probabilities (ratio replicas), and the dev evaluation
// that uses both. Scoring of a shard starts as soon as its completions arrive.

import type { Completion, ModelRef, ScoringPair } from '@gsil/contracts';
import { taskMetrics } from '@gsil/eval';
import type { SamplingConfig } from '@gsil/run-config';
import type { RatioReplicas, SamplerReplicas } from './remote.ts';
import { chunk, runShards } from './shards.ts';
import type { Demonstration } from './task-data.ts';

export interface RemoteSettings {
  samplers: SamplerReplicas;
  ratios: RatioReplicas;
  shardSize: number;
  maxShardsInFlight: number;
  shardAttempts: number;
  shardRetryDelayMs: number;
  requestTimeoutMs: number;
  signal: AbortSignal;
  /** Prefix of every request id: retries of the same shard reuse its id. */
  requestPrefix: string;
  onProgress?: (phase: string, done: number, total: number) => void;
}

function tokens(ids: number[]) {
  return { value: { $case: 'tokens' as const, value: { ids } } };
}

function pairOf(promptIds: number[], responseIds: number[]): ScoringPair {
  return { prompt: tokens(promptIds), response: tokens(responseIds) };
}

/** How shards are spread over `replicaCount` replicas, limited and retried (runShards). */
function shardOptions(settings: RemoteSettings, replicaCount: number) {
  return {
    replicaCount,
    maxInFlight: settings.maxShardsInFlight,
    attempts: settings.shardAttempts,
    retryDelayMs: settings.shardRetryDelayMs,
    signal: settings.signal,
  };
}

/** Summed reference log-probability of each (prompt, response), in order, with token counts. */
export async function scorePairs(
  settings: RemoteSettings,
  model: ModelRef,
  pairs: readonly { promptIds: number[]; responseIds: number[] }[],
  tag: string,
): Promise<{ logps: number[]; tokenCounts: number[] }> {
  const shards = chunk(pairs, settings.shardSize);
  const results = await runShards(
    shards,
    shardOptions(settings, settings.ratios.clients.length),
    (shard, { shardIndex, replicaIndex, signal }) =>
      settings.ratios.logProbs(
        replicaIndex,
        {
          requestId: `${settings.requestPrefix}-${tag}-${shardIndex}`,
          model,
          pairs: shard.map((p) => pairOf(p.promptIds, p.responseIds)),
          perToken: false,
        },
        { timeoutMs: settings.requestTimeoutMs, signal },
      ),
  );
  const flat = results.flatMap((r) => r.results);
  return { logps: flat.map((r) => r.logprob), tokenCounts: flat.map((r) => r.tokenCount) };
}

export interface SampledPrompt {
  demo: Demonstration;
  /** samplesPerPrompt responses, by sample index. */
  completions: Completion[];
  refRealLogp: number;
  /** By sample index. */
  refGeneratedLogps: number[];
}

/**
 * Samples `samplesPerPrompt` responses per demonstration prompt with the reference, and
 * scores the demonstration and every sample under the reference as each shard arrives.
 */
export async function sampleAndScore(
  settings: RemoteSettings,
  reference: ModelRef,
  demos: readonly Demonstration[],
  sampling: SamplingConfig & { numSamples: number; seed: number },
  timings: { sampleMs: number; scoreMs: number },
): Promise<SampledPrompt[]> {
  const shards = chunk(demos, settings.shardSize);
  const scoring: Promise<void>[] = [];
  const out = new Array<SampledPrompt>(demos.length);
  let sampled = 0;
  const start = performance.now();
  // Scoring runs while later shards are still sampled: its time is the span from the
  // first ratio request to the last answer, not a sum over concurrent requests.
  let firstScoreMs = Number.POSITIVE_INFINITY;
  let lastScoreMs = Number.NEGATIVE_INFINITY;

  await runShards(
    shards,
    shardOptions(settings, settings.samplers.clients.length),
    (shard, { shardIndex, replicaIndex, signal }) =>
      settings.samplers.generate(
        replicaIndex,
        {
          requestId: `${settings.requestPrefix}-sample-${shardIndex}`,
          model: reference,
          prompts: shard.map((d) => tokens(d.promptIds)),
          sampling: {
            temperature: sampling.temperature,
            topP: sampling.topP,
            topK: sampling.topK,
            maxNewTokens: sampling.maxNewTokens,
            numSamples: sampling.numSamples,
            seed: sampling.seed,
            stopTokenIds: [],
          },
        },
        { timeoutMs: settings.requestTimeoutMs, signal },
      ),
    (completions, shardIndex) => {
      const shard = shards[shardIndex];
      sampled += shard.length;
      settings.onProgress?.('sample', sampled, demos.length);
      const byPrompt = shard.map(() => new Array<Completion>(sampling.numSamples));
      for (const c of completions) byPrompt[c.promptIndex][c.sampleIndex] = c;
      // Demonstrations first, then each sample: one ratio request list per shard.
      const pairs = shard.flatMap((demo, i) => [
        demo,
        ...byPrompt[i].map((c) => ({ promptIds: demo.promptIds, responseIds: c.tokenIds })),
      ]);
      firstScoreMs = Math.min(firstScoreMs, performance.now());
      scoring.push(
        scorePairs(settings, reference, pairs, `score-${shardIndex}`).then(({ logps }) => {
          lastScoreMs = Math.max(lastScoreMs, performance.now());
          const stride = 1 + sampling.numSamples;
          shard.forEach((demo, i) => {
            out[shardIndex * settings.shardSize + i] = {
              demo,
              completions: byPrompt[i],
              refRealLogp: logps[i * stride],
              refGeneratedLogps: logps.slice(i * stride + 1, (i + 1) * stride),
            };
          });
        }),
      );
    },
  );
  timings.sampleMs = performance.now() - start;
  await Promise.all(scoring);
  timings.scoreMs = Math.max(0, lastScoreMs - firstScoreMs);
  return out;
}

/** Greedy dev answers through the sampler, task metrics, and dev NLL through the ratio. */
export async function evaluateDev(
  settings: RemoteSettings,
  model: ModelRef,
  task: 'mawps' | 'gsm8k',
  dev: readonly Demonstration[],
  maxNewTokens: number,
): Promise<Record<string, number>> {
  const shards = chunk(dev, settings.shardSize);
  const texts = new Array<string>(dev.length);
  await runShards(
    shards,
    shardOptions(settings, settings.samplers.clients.length),
    async (shard, { shardIndex, replicaIndex, signal }) => {
      const completions = await settings.samplers.generate(
        replicaIndex,
        {
          requestId: `${settings.requestPrefix}-eval-${shardIndex}`,
          model,
          prompts: shard.map((d) => tokens(d.promptIds)),
          sampling: {
            temperature: 0,
            topP: 1,
            topK: 0,
            maxNewTokens,
            numSamples: 1,
            seed: 0,
            stopTokenIds: [],
          },
        },
        { timeoutMs: settings.requestTimeoutMs, signal },
      );
      for (const c of completions) texts[shardIndex * settings.shardSize + c.promptIndex] = c.text;
    },
  );

  const { logps, tokenCounts } = await scorePairs(settings, model, dev, 'dev-nll');
  return taskMetrics(task, dev, texts, logps, tokenCounts);
}
