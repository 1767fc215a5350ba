import { beforeAll, describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { importLlama2c } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { GsilTokenizer, llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import type * as ort from 'onnxruntime-node';
import { PUBLISHED_GREEDY_IDS } from '../../model/src/testing/stories260k-sample.ts';
import type { Completion, GenerationOptions, GenerationRequest } from './calls.ts';
import { Generator } from './generator.ts';
import { scoreResponses } from './score.ts';
import { createDecodeSession, createSession } from './session.ts';

const STORIES_BIN = await assetFile('stories260k', 'stories260K.bin');
const TOK512_BIN = await assetFile('stories260k', 'tok512.bin');

const PUBLISHED_FIRST_LINE =
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.';

let session: ort.InferenceSession;
let generator: Generator;
/** The same model on the Optimum graph alone, and with the decode-step fast path. */
const generators: Record<string, Generator> = {};
let tokenizer: GsilTokenizer;

beforeAll(async () => {
  const { config, weights } = importLlama2c(STORIES_BIN);
  const bytes = exportOnnx(config, weights);
  ({ session } = await createSession(bytes, { executionProvider: 'cpu', intraOpThreads: 1 }));
  const decodeSession = await createDecodeSession(bytes, {
    executionProvider: 'cpu',
    intraOpThreads: 1,
  });
  expect(decodeSession).toBeDefined();
  generators['optimum graph'] = new Generator(session);
  generators['decode-step graph'] = new Generator(session, undefined, decodeSession);
  tokenizer = new GsilTokenizer(llama2cVocabToTokenizerJson(TOK512_BIN));
});

async function collect(requests: GenerationRequest[], options: GenerationOptions) {
  const byIndex = new Array<Completion>(requests.length);
  for await (const c of generator.generate(requests, options)) byIndex[c.requestIndex] = c;
  return byIndex;
}

const SAMPLED: GenerationOptions = { maxNewTokens: 24, temperature: 1, topP: 0.9, seed: 7 };
const short = { promptIds: [1, 403], promptKey: 'short' };
const long = { promptIds: tokenizer0Prompt(), promptKey: 'long' };

// "Once upon a time, there was a big dog named Max." with BOS (REFERENCE.md test vector).
function tokenizer0Prompt(): number[] {
  return [1, 403, 407, 261, 378, 432, 383, 286, 261, 370, 400, 428, 395, 392, 412, 444, 426];
}

describe.each(['optimum graph', 'decode-step graph'])('Generator on the %s', (path) => {
  beforeAll(() => {
    generator = generators[path];
  });

  test('greedy decoding from BOS reproduces the published stories260K sample', async () => {
    const [c] = await collect([{ promptIds: [1] }], {
      maxNewTokens: 256,
      temperature: 0,
      stopTokenIds: [1],
    });
    expect(c.tokenIds).toEqual(PUBLISHED_GREEDY_IDS);
    expect(c.finishReason).toBe('length');
    expect(tokenizer.decode(c.tokenIds).split('\n')[0]).toBe(PUBLISHED_FIRST_LINE);
  });

  test('cached decoding equals full recompute (log-probs within 1e-4)', async () => {
    const [c] = await collect([long], { maxNewTokens: 40, temperature: 0 });
    const [scored] = await scoreResponses(
      session,
      [{ promptIds: long.promptIds, responseIds: c.tokenIds }],
      {
        perToken: true,
      },
    );
    expect(scored.tokenCount).toBe(40);
    scored.tokenLogprobs?.forEach((lp, i) => {
      expect(Math.abs(lp - c.tokenLogprobs[i])).toBeLessThan(1e-4);
    });
    expect(Math.abs(scored.logprob - c.logprob)).toBeLessThan(1e-4);
  });

  test('a short prompt batched with a long one gets exactly its solo tokens', async () => {
    const greedy = { maxNewTokens: 30, temperature: 0 };
    const [alone] = await collect([short], greedy);
    const [together] = await collect([long, short, long], greedy).then((cs) => [cs[1]]);
    expect(together.tokenIds).toEqual(alone.tokenIds);
  });

  test('seeded sampling does not depend on batch composition or slot refills', async () => {
    const samples = [0, 1, 2].map((sampleIndex) => ({ ...short, sampleIndex }));
    const alone = await collect(samples, { ...SAMPLED, maxBatch: 1 });
    const mixed = await collect([long, ...samples, long], { ...SAMPLED, maxBatch: 3 });
    expect(mixed.slice(1, 4).map((c) => c.tokenIds)).toEqual(alone.map((c) => c.tokenIds));
    // Different sample indices draw different streams.
    expect(alone[0].tokenIds).not.toEqual(alone[1].tokenIds);
  });

  test('stops at a stop token and includes it', async () => {
    const [c] = await collect([{ promptIds: [1] }], {
      maxNewTokens: 300,
      temperature: 0,
      stopTokenIds: [13],
    });
    // The published sample's first newline (id 13) is its 62nd token.
    expect(c.tokenIds).toEqual(PUBLISHED_GREEDY_IDS.slice(0, 62));
    expect(c.finishReason).toBe('stop');
  });

  test('an aborted signal stops generation', async () => {
    const controller = new AbortController();
    controller.abort();
    const run = collect([short], { ...SAMPLED, signal: controller.signal });
    await expect(run).rejects.toThrow();
  });
});

describe('scoreResponses', () => {
  beforeAll(() => {
    generator = generators['optimum graph'];
  });

  test('equals the generator log-probs and ignores batch-mates (1e-4)', async () => {
    const [c] = await collect([short], SAMPLED);
    const pair = { promptIds: short.promptIds, responseIds: c.tokenIds };
    const [alone] = await scoreResponses(session, [pair]);
    expect(Math.abs(alone.logprob - c.logprob)).toBeLessThan(1e-4);
    const others = [
      { promptIds: long.promptIds, responseIds: [370, 400] },
      { promptIds: [1], responseIds: PUBLISHED_GREEDY_IDS.slice(0, 50) },
    ];
    const batched = await scoreResponses(session, [others[0], pair, others[1]], { maxBatch: 3 });
    expect(Math.abs(batched[1].logprob - alone.logprob)).toBeLessThan(1e-4);
    expect(batched[1].tokenCount).toBe(24);
  });
});
