// The RatioService handlers: LogProbs, Ratios and GetInfo over the model registry, the
// result cache and length-grouped forward passes.

import type { ServerUnaryCall } from '@grpc/grpc-js';
import type {
  LogProbsRequest,
  LogProbsResponse,
  ModelRef,
  RatioInfo,
  RatiosRequest,
  RatiosResponse,
  ScoringPair,
} from '@gsil/contracts';
import { callLogger, GsilError, Status } from '@gsil/service-kit';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import type { BatchLimits } from './batching.ts';
import { checkModelRef, type ModelRegistry } from './models.ts';
import { tokenizePairs } from './pairs.ts';
import type { PairScore, ResultCache } from './result-cache.ts';
import { scorePairs } from './scorer.ts';

export interface RatioServiceDeps {
  models: ModelRegistry;
  cache: ResultCache;
  batchLimits: BatchLimits;
  maxPairsPerRequest: number;
  logger: Logger;
  registry: Registry;
}

function checkPairCount(pairs: ScoringPair[], maxPairs: number): void {
  if (pairs.length === 0) throw new GsilError(Status.INVALID_ARGUMENT, 'pairs: empty');
  if (pairs.length > maxPairs) {
    throw new GsilError(
      Status.INVALID_ARGUMENT,
      `pairs: ${pairs.length} pairs exceed the limit of ${maxPairs} per request; split the request`,
    );
  }
}

export function createRatioService(deps: RatioServiceDeps) {
  const scoredTokens = new Counter({
    name: 'gsil_ratio_scored_tokens_total',
    help: 'Sequence tokens run through forward passes (cache misses only)',
    registers: [deps.registry],
  });
  const cacheHits = new Counter({
    name: 'gsil_ratio_cache_hits_total',
    help: 'Pairs answered from the result cache',
    registers: [deps.registry],
  });

  /** Tokenizes, checks and scores the pairs under one version. */
  async function score(ref: ModelRef, pairs: ScoringPair[], logger: Logger): Promise<PairScore[]> {
    const model = await deps.models.get(ref);
    const endLease = model.lease();
    try {
      const tokenized = tokenizePairs(pairs, model.tokenizer, model.limits);
      const startMs = performance.now();
      const { scores, stats } = await scorePairs(model, tokenized, deps.cache, deps.batchLimits);
      scoredTokens.inc(stats.computedTokens);
      cacheHits.inc(stats.cacheHits);
      logger.debug(
        { model: `${ref.name}/${ref.version}`, ...stats, scoreMs: performance.now() - startMs },
        'score',
      );
      return scores;
    } finally {
      endLease();
    }
  }

  return {
    async logProbs(call: ServerUnaryCall<LogProbsRequest, LogProbsResponse>) {
      const request = call.request;
      const ref = checkModelRef(request.model, 'model');
      checkPairCount(request.pairs, deps.maxPairsPerRequest);
      const scores = await score(ref, request.pairs, callLogger(call, deps.logger));
      return {
        results: scores.map((s) => ({
          logprob: s.logprob,
          tokenCount: s.tokenCount,
          tokenLogprobs: request.perToken ? Array.from(s.tokenLogprobs) : [],
        })),
      } satisfies LogProbsResponse;
    },

    async ratios(call: ServerUnaryCall<RatiosRequest, RatiosResponse>) {
      const request = call.request;
      const policy = checkModelRef(request.policy, 'policy');
      const reference = checkModelRef(request.reference, 'reference');
      checkPairCount(request.pairs, deps.maxPairsPerRequest);
      const alpha = request.alpha === 0 ? 1 : request.alpha;
      const logger = callLogger(call, deps.logger);
      // Sequential, not parallel: both share the cores, and the second often hits the cache
      // when policy and reference are the same version.
      const policyScores = await score(policy, request.pairs, logger);
      const referenceScores = await score(reference, request.pairs, logger);
      return {
        results: policyScores.map((p, i) => {
          const logRatio = p.logprob - referenceScores[i].logprob;
          return {
            policyLogprob: p.logprob,
            referenceLogprob: referenceScores[i].logprob,
            logRatio,
            reward: alpha * logRatio + request.beta,
            tokenCount: p.tokenCount,
          };
        }),
      } satisfies RatiosResponse;
    },

    async getInfo() {
      return {
        loadedModels: deps.models.loaded(),
        executionProvider: deps.models.executionProvider,
        cacheEntries: deps.cache.size,
        cacheHits: deps.cache.hits,
      } satisfies RatioInfo;
    },
  };
}
