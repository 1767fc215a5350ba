// The ratio service's numbers against independent computations on the same weights: the
// TF.js LlamaModel the trainer trains, the sampler's own token log-probs from greedy
// generation, and the same pairs scored in other batch compositions.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { Generator } from '@gsil/inference';
import { LlamaModel, selectBackend } from '@gsil/model';
import { createLogger } from '@gsil/service-kit';
import { GsilTokenizer } from '@gsil/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { type LoadedModel, ModelRegistry } from './models.ts';
import { type TokenizedPair, tokenizePairs } from './pairs.ts';
import { ResultCache } from './result-cache.ts';
import { scorePairs } from './scorer.ts';
import { createTestModelRoot, MODEL_NAME, type TestModelRoot } from './test-model-root.ts';

let modelRoot: TestModelRoot;
let registry: ModelRegistry;
let model: LoadedModel;
let pairs: TokenizedPair[];

const TEXTS: Array<[string, string]> = [
  ['Once upon a time,', ' there was a big dog named Max.'],
  ['Lily liked to play', ' outside in the park with her ball.'],
  ['', 'Once upon a time, there was a little girl named Lily. She loved to play outside.'],
  ['The cat', ' sat.'],
  ['Tom had a red car.', ' He drove it to the store and bought some milk for his mom.'],
  ['One day,', ' the sun was shining.'],
];

/** Scores without the cache, so that each call really runs its own forward passes. */
async function scoreUncached(batch: TokenizedPair[], maxBatchPairs: number) {
  const limits = { maxBatchTokens: 1 << 20, maxBatchPairs };
  return (await scorePairs(model, batch, new ResultCache(0), limits)).scores;
}

beforeAll(async () => {
  modelRoot = createTestModelRoot();
  registry = new ModelRegistry({
    cacheDir: `${modelRoot.root}-cache`,
    modelRoot: modelRoot.root,
    provider: 'cpu',
    threads: 2,
    maxLoadedModels: 2,
    logger: createLogger('ratio-test', 'silent'),
  });
  model = await registry.get({ name: MODEL_NAME, version: 'base' });
  const tokenizer = new GsilTokenizer(modelRoot.tokenizerJson);
  const textPairs = TEXTS.map(([prompt, response]) => ({
    prompt: { value: { $case: 'text' as const, value: prompt } },
    response: { value: { $case: 'text' as const, value: response } },
  }));
  pairs = tokenizePairs(textPairs, tokenizer, model.limits);
});

afterAll(async () => {
  await registry?.close();
  rmSync(`${modelRoot.root}-cache`, { recursive: true, force: true });
  modelRoot?.remove();
});

describe('agreement', () => {
  test('summed log-probs equal the TF.js LlamaModel on the same weights (1e-3)', async () => {
    await selectBackend('cpu', () => undefined);
    const llama = LlamaModel.fromWeights(modelRoot.config, modelRoot.weights);
    const scores = await scoreUncached(pairs, 64);
    for (const [i, pair] of pairs.entries()) {
      const ids = [...pair.promptIds, ...pair.responseIds];
      const responseMask = ids.map((_, j) => (j >= pair.promptIds.length ? 1 : 0));
      const inputIds = tf.tensor2d([ids], [1, ids.length], 'int32');
      const mask = tf.tensor2d([responseMask], [1, ids.length]);
      const logprob = llama.sequenceLogprobs({ inputIds, responseMask: mask });
      const expected = (await logprob.data())[0];
      tf.dispose([inputIds, mask, logprob]);
      expect(Math.abs(scores[i].logprob - expected)).toBeLessThan(1e-3);
      expect(scores[i].tokenCount).toBe(pair.responseIds.length);
    }
  });

  test("a pair's result does not depend on its batch-mates (1e-4)", async () => {
    const together = await scoreUncached(pairs, 64);
    const alone = await Promise.all(pairs.map(async (p) => (await scoreUncached([p], 1))[0]));
    const reversed = (await scoreUncached([...pairs].reverse(), 3)).reverse();
    for (let i = 0; i < pairs.length; i++) {
      expect(Math.abs(together[i].logprob - alone[i].logprob)).toBeLessThan(1e-4);
      expect(Math.abs(reversed[i].logprob - alone[i].logprob)).toBeLessThan(1e-4);
      for (let j = 0; j < alone[i].tokenCount; j++) {
        expect(Math.abs(together[i].tokenLogprobs[j] - alone[i].tokenLogprobs[j])).toBeLessThan(
          1e-4,
        );
      }
    }
  });

  test('scoring greedy generations reproduces the sampler-side token log-probs (1e-4)', async () => {
    const generator = new Generator(model.session.session, modelRoot.config.vocab_size);
    const requests = pairs.slice(0, 4).map((p) => ({ promptIds: p.promptIds }));
    const completions = [];
    for await (const c of generator.generate(requests, {
      temperature: 0,
      maxNewTokens: 40,
      stopTokenIds: [modelRoot.config.eos_token_id],
    })) {
      completions.push(c);
    }
    completions.sort((a, b) => a.requestIndex - b.requestIndex);
    const generated = completions.map((c) => ({
      promptIds: requests[c.requestIndex].promptIds,
      responseIds: c.tokenIds,
    }));
    const scores = await scoreUncached(generated, 64);
    completions.forEach((c, i) => {
      expect(c.tokenIds.length).toBeGreaterThan(0);
      expect(scores[i].tokenCount).toBe(c.tokenIds.length);
      const sampled = c.tokenLogprobs.reduce((s, x) => s + x, 0);
      expect(Math.abs(scores[i].logprob - sampled)).toBeLessThan(1e-4);
    });
  });
});
