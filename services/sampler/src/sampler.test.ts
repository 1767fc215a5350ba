// The sampler over real gRPC on a real socket, generating with the real stories260K
// (converted at test time) in ONNX Runtime on the CPU.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { FinishReason } from '@gsil/contracts';
import { createSession, Generator } from '@gsil/inference';
import { checkHealth, createLogger, type HealthStatus } from '@gsil/service-kit';
import { GsilTokenizer } from '@gsil/tokenizer';
import { type RunningSampler, startSampler } from './main.ts';
import {
  connect,
  DATA_DIR,
  generate,
  getInfo,
  makeModelRoot,
  type SamplerClient,
  scrapeCounter,
  text,
  tokens,
} from './test-fixture.ts';

const TOKENS_METRIC = 'gsil_sampler_generated_tokens_total';

/** The published greedy sample: the only fenced block of REFERENCE.md. */
const PUBLISHED_SAMPLE = readFileSync(join(DATA_DIR, 'REFERENCE.md'), 'utf8').split('```\n')[1];

let root: string;
let sampler: RunningSampler;
let client: SamplerClient;
let tokenizer: GsilTokenizer;
let healthBeforeSelfCheck: HealthStatus | null = null;

beforeAll(async () => {
  root = makeModelRoot();
  tokenizer = GsilTokenizer.fromFile(join(root, 'stories260k/base/tokenizer.json'));
  sampler = await startSampler(
    {
      port: 0,
      host: '127.0.0.1',
      metricsPort: 0,
      modelRoot: root,
      cacheDir: join(root, '.cache'),
      provider: 'cpu',
      threads: 1,
      maxBatchSize: 8,
      maxNewTokensLimit: 300,
      maxSamplesPerPrompt: 4,
      maxQueuedSequences: 64,
    },
    {
      env: {},
      handleSignals: false,
      shutdownGraceMs: 200,
      logger: createLogger('sampler-test', 'silent'),
      onListening: async (port) => {
        healthBeforeSelfCheck = await checkHealth(`127.0.0.1:${port}`);
      },
    },
  );
  client = connect(sampler.port);
});

afterAll(async () => {
  client?.close();
  await sampler?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('sampler service', () => {
  test('health is NOT_SERVING until the self-check ran, then SERVING', async () => {
    expect(healthBeforeSelfCheck).toBe('NOT_SERVING');
    expect(await checkHealth(`127.0.0.1:${sampler.port}`)).toBe('SERVING');
  });

  test('greedy from a text prompt equals the library generator', async () => {
    const prompt = 'Once upon a time, there was a big dog named Max.';
    const { completions, error } = await generate(client, {
      prompts: [text(prompt)],
      sampling: { maxNewTokens: 40 },
    });
    expect(error).toBeNull();

    const { session } = await createSession(join(root, 'stories260k/base/model.onnx'), {
      executionProvider: 'cpu',
    });
    const promptIds = tokenizer.encodePrompt(prompt);
    let expected: number[] = [];
    for await (const c of new Generator(session).generate([{ promptIds }], {
      maxNewTokens: 40,
      temperature: 0,
      stopTokenIds: [tokenizer.eosId],
    })) {
      expected = c.tokenIds;
    }
    await session.release();

    const [c] = completions;
    expect(promptIds.slice(0, 3)).toEqual([1, 403, 407]);
    expect(c.promptTokenCount).toBe(promptIds.length);
    expect(c.tokenIds).toEqual(expected);
    expect(c.tokenIds).toHaveLength(40);
    expect(c.text).toBe(tokenizer.decode(expected));
    expect(c.tokenLogprobs).toHaveLength(40);
    expect(c.finishReason).toBe(FinishReason.FINISH_REASON_LENGTH);
  });

  test('an empty text prompt ([BOS]) with 256 tokens gives the published sample', async () => {
    const { completions, error } = await generate(client, {
      prompts: [text('')],
      sampling: { maxNewTokens: 256 },
    });
    expect(error).toBeNull();
    const [c] = completions;
    expect(c.promptTokenCount).toBe(1);
    expect(c.tokenIds).toHaveLength(256);
    expect(c.text.trim()).toBe(PUBLISHED_SAMPLE.trim());
    // Log-probs of greedy tokens: each at most 0, the argmax of a confident model.
    expect(Math.max(...c.tokenLogprobs)).toBeLessThanOrEqual(0);
  });
});
