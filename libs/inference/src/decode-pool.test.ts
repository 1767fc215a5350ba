import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { importLlama2c } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { PUBLISHED_GREEDY_IDS } from '../../model/src/testing/stories260k-sample.ts';
import type { Completion, GenerationOptions, GenerationRequest } from './calls.ts';
import { DecodePool } from './decode-pool.ts';
import { Generator } from './generator.ts';
import { createDecodeSession, createSession } from './session.ts';

const STORIES_BIN = await assetFile('stories260k', 'stories260K.bin');
let bytes: Uint8Array;
let pool: DecodePool;
let generated = 0;

beforeAll(async () => {
  const { config, weights } = importLlama2c(STORIES_BIN);
  bytes = exportOnnx(config, weights);
  pool = await DecodePool.start(bytes, {
    workers: 2,
    maxBatch: 6,
    executionProvider: 'cpu',
    onTokens: (count) => {
      generated += count;
    },
  });
});

afterAll(async () => {
  await pool?.close();
});

async function collect(stream: AsyncGenerator<Completion>): Promise<Completion[]> {
  const byIndex: Completion[] = [];
  for await (const c of stream) byIndex[c.requestIndex] = c;
  return byIndex;
}

describe('DecodePool', () => {
  test('two workers each reproduce the published greedy sample, and count every token', async () => {
    expect(pool.workers).toBe(2);
    expect(pool.executionProvider).toBe('cpu');
    expect(pool.fastPath).toBe(true);
    const before = generated;
    const requests = Array.from({ length: 8 }, () => ({ promptIds: [1] }));
    const completions = await collect(
      pool.generate(requests, { temperature: 0, maxNewTokens: PUBLISHED_GREEDY_IDS.length }),
    );
    expect(completions).toHaveLength(8);
    for (const c of completions) expect(c.tokenIds).toEqual(PUBLISHED_GREEDY_IDS);
    expect(pool.activeRows).toBe(0);
    // Workers report their counts at most every 100 ms.
    await Bun.sleep(250);
    expect(generated - before).toBe(8 * PUBLISHED_GREEDY_IDS.length);
  });

  test('sampled rows get the tokens a single generator gives them, whichever worker runs them', async () => {
    const { session } = await createSession(bytes, { executionProvider: 'cpu' });
    const decode = await createDecodeSession(bytes, { executionProvider: 'cpu' });
    const generator = new Generator(session, undefined, decode);
    // No promptKey: rows are keyed by their index in the call, as Generator keys them.
    const requests: GenerationRequest[] = [
      { promptIds: [1, 403] },
      { promptIds: [1, 403], sampleIndex: 1 },
      { promptIds: [1, 403, 407, 261, 378], maxNewTokens: 9 },
      { promptIds: [1], sampleIndex: 2 },
      { promptIds: [1, 400, 428], promptKey: 'named' },
      { promptIds: [1, 403] },
      { promptIds: [1, 298, 315], maxNewTokens: 3 },
    ];
    const options: GenerationOptions = {
      temperature: 0.8,
      topP: 0.9,
      topK: 40,
      maxNewTokens: 30,
      seed: 11,
      stopTokenIds: [2],
    };
    const alone = await collect(generator.generate(requests, options));
    const pooled = await collect(pool.generate(requests, options));
    await session.release();
    await decode?.release();
    // Tokens exactly; log-probabilities to float32 rounding, which may differ with the
    // batch a row ran in (ONNX Runtime's kernels block work by batch size).
    const tokensOf = (cs: Completion[]) =>
      cs.map(({ tokenIds, finishReason }) => ({ tokenIds, finishReason }));
    expect(tokensOf(pooled)).toEqual(tokensOf(alone));
    pooled.forEach((c, i) => {
      expect(c.requestIndex).toBe(i);
      c.tokenLogprobs.forEach((logprob, t) => {
        expect(Math.abs(logprob - alone[i].tokenLogprobs[t])).toBeLessThan(1e-5);
      });
    });
    // Rows 0 and 5 share a prompt and sample index but not a key: different streams.
    expect(pooled[0].tokenIds).not.toEqual(pooled[5].tokenIds);
    expect(pooled[2].tokenIds).toHaveLength(9);
    expect(pooled[6].tokenIds).toHaveLength(3);
  });

  test('an aborted call frees its rows and the pool serves the next one', async () => {
    const controller = new AbortController();
    const requests = Array.from({ length: 10 }, (_, i) => ({ promptIds: [1], sampleIndex: i }));
    const stream = pool.generate(requests, {
      temperature: 1,
      maxNewTokens: 400,
      signal: controller.signal,
    });
    const first = await stream.next();
    expect(first.done).toBe(false);
    expect(pool.activeRows).toBeGreaterThan(0);
    controller.abort(new Error('client went away'));
    await expect(stream.next()).rejects.toThrow('client went away');
    expect(pool.activeRows).toBe(0);
    const [c] = await collect(
      pool.generate([{ promptIds: [1] }], { temperature: 0, maxNewTokens: 5 }),
    );
    expect(c.tokenIds).toEqual(PUBLISHED_GREEDY_IDS.slice(0, 5));
  });

  test('a worker that dies fails only the calls with rows on it, and is replaced', async () => {
    const crashing = await DecodePool.start(bytes, { workers: 2, maxBatch: 4 });
    try {
      const requests = Array.from({ length: 4 }, (_, i) => ({ promptIds: [1], sampleIndex: i }));
      const stream = crashing.generate(requests, { temperature: 1, maxNewTokens: 400 });
      // A thread ending under load, as an out-of-memory kill would end it.
      const lanes = (crashing as unknown as { lanes: Array<{ worker: { terminate(): void } }> })
        .lanes;
      lanes[0].worker.terminate();
      await expect(collect(stream)).rejects.toThrow(/decode worker 0 exited .*rows were lost/);
      expect(crashing.activeRows).toBe(0);
      // The replacement and the surviving worker both serve the next call.
      const next = await collect(
        crashing.generate(
          Array.from({ length: 4 }, () => ({ promptIds: [1] })),
          { temperature: 0, maxNewTokens: 6 },
        ),
      );
      for (const c of next) expect(c.tokenIds).toEqual(PUBLISHED_GREEDY_IDS.slice(0, 6));
    } finally {
      await crashing.close();
    }
  });

  test('closing while rows decode fails their calls and frees the sessions only after the last pass', async () => {
    // Each delay lands the close at another point of a worker's loop (mid-pass, between
    // passes, during prefill); freeing a session under a scheduled pass would crash here.
    for (const delayMs of [0, 3, 10, 25]) {
      const closing = await DecodePool.start(bytes, { workers: 2, maxBatch: 4 });
      const requests = Array.from({ length: 6 }, (_, i) => ({ promptIds: [1], sampleIndex: i }));
      const outcome = collect(
        closing.generate(requests, { temperature: 1, maxNewTokens: 400 }),
      ).then(
        () => 'finished',
        (error: Error) => error.message,
      );
      await Bun.sleep(delayMs);
      await closing.close();
      expect(await outcome).toBe('DecodePool closed');
    }
  });

  test('an empty prompt is refused before any row is handed out', async () => {
    const stream = pool.generate([{ promptIds: [1] }, { promptIds: [] }], { maxNewTokens: 3 });
    await expect(stream.next()).rejects.toThrow('a prompt has no tokens');
    expect(pool.activeRows).toBe(0);
  });

  test('a file that is not a model fails start with the reason ONNX Runtime gives', async () => {
    const garbage = new TextEncoder().encode('not an onnx model');
    await expect(
      DecodePool.start(garbage, { workers: 2, executionProvider: 'cpu' }),
    ).rejects.toThrow('protobuf parsing failed');
  });

  test('generate after close is refused', async () => {
    const closing = await DecodePool.start(bytes, { workers: 1, maxBatch: 2 });
    await closing.close();
    await expect(
      closing.generate([{ promptIds: [1] }], { maxNewTokens: 1 }).next(),
    ).rejects.toThrow('after close');
  });
});
