import { beforeAll, describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { importLlama2c } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import type { Completion, GenerationOptions, GenerationRequest } from './calls.ts';
import { ContinuousBatcher } from './continuous-batcher.ts';
import { Generator } from './generator.ts';
import { createDecodeSession, createSession } from './session.ts';

const STORIES_BIN = await assetFile('stories260k', 'stories260K.bin');
const generators: Record<string, Generator> = {};

beforeAll(async () => {
  const { config, weights } = importLlama2c(STORIES_BIN);
  const bytes = exportOnnx(config, weights);
  const options = { executionProvider: 'cpu' as const, intraOpThreads: 1 };
  const { session } = await createSession(bytes, options);
  generators['optimum graph'] = new Generator(session);
  generators['decode-step graph'] = new Generator(
    session,
    undefined,
    await createDecodeSession(bytes, options),
  );
});

async function collect(stream: AsyncGenerator<Completion>): Promise<number[][]> {
  const tokens: number[][] = [];
  for await (const c of stream) tokens[c.requestIndex] = c.tokenIds;
  return tokens;
}

// Two trainer shards: greedy prompts, and seeded top-p samples with a different budget.
const greedyShard: GenerationRequest[] = [
  { promptIds: [1], promptKey: 'bos' },
  { promptIds: [1, 403, 407, 261, 378], promptKey: 'once' },
];
const greedy: GenerationOptions = { maxNewTokens: 40, temperature: 0, stopTokenIds: [2] };
const sampledShard: GenerationRequest[] = [0, 1, 2].map((sampleIndex) => ({
  promptIds: [1, 403],
  promptKey: 'p',
  sampleIndex,
}));
const sampled: GenerationOptions = { maxNewTokens: 25, temperature: 1, topP: 0.9, seed: 3 };

describe.each(['optimum graph', 'decode-step graph'])('ContinuousBatcher on the %s', (path) => {
  test('concurrent calls share a batch and get exactly their solo tokens', async () => {
    const generator = generators[path];
    const aloneGreedy = await collect(generator.generate(greedyShard, greedy));
    const aloneSampled = await collect(generator.generate(sampledShard, sampled));
    const batcher = new ContinuousBatcher(generator, 4);
    const [together1, together2] = await Promise.all([
      collect(batcher.generate(greedyShard, greedy)),
      collect(batcher.generate(sampledShard, sampled)),
    ]);
    expect(together1).toEqual(aloneGreedy);
    expect(together2).toEqual(aloneSampled);
    expect(aloneGreedy[0]).toHaveLength(40);
  });

  test('cancelling one call removes only its rows', async () => {
    const generator = generators[path];
    const alone = await collect(generator.generate(sampledShard, sampled));
    const batcher = new ContinuousBatcher(generator, 8);
    const controller = new AbortController();
    const cancelled = collect(
      batcher.generate(greedyShard, {
        ...greedy,
        maxNewTokens: 200,
        signal: controller.signal,
      }),
    );
    const kept = collect(batcher.generate(sampledShard, sampled));
    // Cancel once the shared loop has decoded a few steps for both calls.
    setTimeout(() => controller.abort(new Error('cancelled by the test')), 5);
    await expect(cancelled).rejects.toThrow('cancelled by the test');
    expect(await kept).toEqual(alone);
    // The batcher keeps serving after a cancellation.
    expect(await collect(batcher.generate(sampledShard, sampled))).toEqual(alone);
  });
});
