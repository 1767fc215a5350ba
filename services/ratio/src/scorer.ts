// Scores tokenized pairs under one model version: cache lookups first, then the misses
// (deduplicated) grouped into length-sorted forward passes, then the results stored back.

import { type BatchLimits, planBatches } from './batching.ts';
import type { TokenizedPair } from './pairs.ts';
import { cacheKey, type PairScore, type ResultCache } from './result-cache.ts';

/** One forward pass over a batch: a score per pair, in order. */
export type ForwardFn = (pairs: TokenizedPair[]) => Promise<PairScore[]>;

export interface ScoringModel {
  name: string;
  version: string;
  forward: ForwardFn;
}

export interface ScoreStats {
  cacheHits: number;
  /** Distinct pairs computed by forward passes. */
  computedPairs: number;
  forwardPasses: number;
  /** Real (unpadded) tokens of the computed pairs. */
  computedTokens: number;
}

export async function scorePairs(
  model: ScoringModel,
  pairs: TokenizedPair[],
  cache: ResultCache,
  limits: BatchLimits,
): Promise<{ scores: PairScore[]; stats: ScoreStats }> {
  // 1. Cache lookups; identical pairs within the request are computed once.
  const scores: (PairScore | undefined)[] = new Array(pairs.length);
  const missingByKey = new Map<string, number[]>();
  let cacheHits = 0;
  pairs.forEach((pair, i) => {
    const key = cacheKey(model.name, model.version, pair.promptIds, pair.responseIds);
    const waiting = missingByKey.get(key);
    if (waiting) {
      waiting.push(i);
      return;
    }
    const cached = cache.get(key);
    if (cached) {
      scores[i] = cached;
      cacheHits++;
    } else {
      missingByKey.set(key, [i]);
    }
  });

  // 2. Forward passes over the distinct misses, grouped by length.
  const missKeys = [...missingByKey.keys()];
  const missPairs = missKeys.map((key) => pairs[(missingByKey.get(key) as number[])[0]]);
  const lengths = missPairs.map((p) => p.promptIds.length + p.responseIds.length);
  const batches = planBatches(lengths, limits);
  let computedTokens = 0;
  for (const batch of batches) {
    const batchScores = await model.forward(batch.map((i) => missPairs[i]));
    batch.forEach((missIndex, row) => {
      const score = batchScores[row];
      const key = missKeys[missIndex];
      cache.set(key, score);
      for (const i of missingByKey.get(key) as number[]) scores[i] = score;
      computedTokens += lengths[missIndex];
    });
  }

  return {
    scores: scores as PairScore[],
    stats: {
      cacheHits,
      computedPairs: missPairs.length,
      forwardPasses: batches.length,
      computedTokens,
    },
  };
}
