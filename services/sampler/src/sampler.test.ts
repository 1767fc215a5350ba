// The sampler over real gRPC on a real socket, generating with the real stories260K
// (converted at test time) in ONNX Runtime on the CPU.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { FinishReason, GenerateRequest } from '@gsil/contracts';
import { createSession, Generator } from '@gsil/inference';
import { checkHealth, type HealthStatus } from '@gsil/service-kit';
import { GsilTokenizer } from '@gsil/tokenizer';
import { PUBLISHED_GREEDY_TEXT } from '../../../libs/model/src/testing/stories260k-sample.ts';
import type { RunningSampler } from './main.ts';
import {
  connect,
  generate,
  getInfo,
  makeModelRoot,
  type SamplerClient,
  scrapeCounter,
  startTestSampler,
  text,
  tokens,
} from './test-fixture.ts';

const TOKENS_METRIC = 'gsil_sampler_generated_tokens_total';

let root: string;
let sampler: RunningSampler;
let client: SamplerClient;
let tokenizer: GsilTokenizer;
let healthBeforeSelfCheck: HealthStatus | null = null;

beforeAll(async () => {
  root = makeModelRoot();
  // A second version with the same files, to exercise eviction.
  cpSync(join(root, 'stories260k/base'), join(root, 'stories260k/v2'), { recursive: true });
  tokenizer = GsilTokenizer.fromFile(join(root, 'stories260k/base/tokenizer.json'));
  sampler = await startTestSampler(
    root,
    {
      maxNewTokensLimit: 300,
      maxSamplesPerPrompt: 4,
      maxQueuedSequences: 64,
      maxResidentModels: 1,
    },
    {
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
    expect(c.text.trim()).toBe(PUBLISHED_GREEDY_TEXT);
    // Log-probs of greedy tokens: each at most 0, the argmax of a confident model.
    expect(Math.max(...c.tokenLogprobs)).toBeLessThanOrEqual(0);
  });
});

/** Prompt ids of a given length (real tokens, BOS first), for context-length cases. */
function promptOfLength(length: number): number[] {
  const story = tokenizer.encode('Once upon a time, there was a big dog named Max.');
  return [1, ...Array.from({ length: length - 1 }, (_, i) => story[i % story.length])];
}

describe('streaming and batching', () => {
  test('a completion streams back while the rest of the request is still generating', async () => {
    // Near the context (512) the long prompt may generate only 12 tokens; the short one
    // runs on for 200. If the server buffered, the first completion would come at the end.
    const arrivals: Array<{ promptIndex: number; tokensSoFar: Promise<number> }> = [];
    const { completions, error } = await generate(
      client,
      {
        prompts: [text('Once upon a time'), tokens(promptOfLength(500))],
        sampling: { maxNewTokens: 200 },
      },
      (c) =>
        arrivals.push({
          promptIndex: c.promptIndex,
          tokensSoFar: scrapeCounter(sampler.metricsPort!, TOKENS_METRIC),
        }),
    );
    expect(error).toBeNull();
    const endTokens = await scrapeCounter(sampler.metricsPort!, TOKENS_METRIC);

    expect(arrivals.map((a) => a.promptIndex)).toEqual([1, 0]);
    const long = completions.find((c) => c.promptIndex === 1)!;
    expect(long.tokenIds).toHaveLength(12);
    expect(long.finishReason).toBe(FinishReason.FINISH_REASON_LENGTH);
    expect(long.promptTokenCount).toBe(500);
    expect(completions.find((c) => c.promptIndex === 0)!.tokenIds).toHaveLength(200);
    // When the first completion arrived, most of the short prompt's 200 tokens were not
    // generated yet.
    expect(endTokens - (await arrivals[0].tokensSoFar)).toBeGreaterThan(100);
  });

  test('the same seed gives the same tokens whatever the batch composition', async () => {
    const sampling = { temperature: 1, topP: 0.9, maxNewTokens: 24, seed: 1234, numSamples: 2 };
    const a = await generate(client, {
      prompts: [text('The cat'), text('Once upon a time'), text('Tom had a red ball.')],
      sampling,
    });
    // Other order, other batch-mates, another sample count, and a concurrent request.
    const [b, other] = await Promise.all([
      generate(client, {
        prompts: [text('Once upon a time'), text('A little bird'), text('The cat')],
        sampling: { ...sampling, numSamples: 3 },
      }),
      generate(client, { prompts: [text('Lily')], sampling: { ...sampling, numSamples: 4 } }),
    ]);
    expect(a.error).toBeNull();
    expect(b.error).toBeNull();
    expect(other.completions).toHaveLength(4);
    const ids = (run: typeof a, promptIndex: number, sampleIndex: number) =>
      run.completions.find((c) => c.promptIndex === promptIndex && c.sampleIndex === sampleIndex)!
        .tokenIds;
    for (const sampleIndex of [0, 1]) {
      expect(ids(b, 2, sampleIndex)).toEqual(ids(a, 0, sampleIndex)); // "The cat"
      expect(ids(b, 0, sampleIndex)).toEqual(ids(a, 1, sampleIndex)); // "Once upon a time"
    }
    // Samples differ from each other, and another seed changes them.
    expect(ids(a, 0, 0)).not.toEqual(ids(a, 0, 1));
    const c = await generate(client, {
      prompts: [text('The cat')],
      sampling: { ...sampling, seed: 5 },
    });
    expect(ids(c, 0, 0)).not.toEqual(ids(a, 0, 0));
  });
});

describe('continuous batching across requests', () => {
  const byPlace = (
    completions: { promptIndex: number; sampleIndex: number; tokenIds: number[] }[],
  ) =>
    Object.fromEntries(completions.map((c) => [`${c.promptIndex}/${c.sampleIndex}`, c.tokenIds]));
  const shardA = {
    prompts: [text('Once upon a time'), text('The dog')],
    sampling: { temperature: 1, topP: 0.9, seed: 11, numSamples: 2, maxNewTokens: 30 },
  };
  const shardB = {
    prompts: [text('Lily'), tokens([1])],
    sampling: { temperature: 0, maxNewTokens: 45 },
  };

  test('concurrent requests get exactly the tokens they get alone; cancelling one spares the other', async () => {
    const aloneA = await generate(client, shardA);
    const aloneB = await generate(client, shardB);
    expect(aloneA.completions).toHaveLength(4);

    // A long request that is cancelled while A and B share the batch with it.
    const doomed = client.generate(
      GenerateRequest.fromPartial({
        model: { name: 'stories260k', version: 'base' },
        prompts: [text('Max')],
        sampling: { temperature: 1, maxNewTokens: 300, numSamples: 3, stopTokenIds: [] },
      }),
    );
    const doomedEnded = new Promise<number | undefined>((resolve) => {
      doomed.on('error', (err: { code?: number }) => resolve(err.code));
      doomed.on('end', () => resolve(undefined));
    });
    let cancelled = false;
    doomed.on('data', () => {});
    const [togetherA, togetherB] = await Promise.all([
      generate(client, shardA, () => {
        // Cancel as soon as the first completion of A arrives, mid-generation of B.
        if (!cancelled) doomed.cancel();
        cancelled = true;
      }),
      generate(client, shardB),
    ]);
    expect(await doomedEnded).toBe(status.CANCELLED);
    expect(togetherA.error).toBeNull();
    expect(togetherB.error).toBeNull();
    expect(byPlace(togetherA.completions)).toEqual(byPlace(aloneA.completions));
    expect(byPlace(togetherB.completions)).toEqual(byPlace(aloneB.completions));
  });
});

describe('request errors', () => {
  const expectError = async (
    request: Parameters<typeof generate>[1],
    code: number,
    message: string,
  ) => {
    const { error } = await generate(client, request);
    expect(error?.code).toBe(code);
    expect(error?.details).toContain(message);
  };

  test('INVALID_ARGUMENT names the request field', async () => {
    await expectError(
      { prompts: [text('a'), text('b'), text('c'), tokens(promptOfLength(600))] },
      status.INVALID_ARGUMENT,
      'prompts[3]: 600 tokens exceed the context of 512',
    );
    await expectError(
      { prompts: [text('a')], sampling: { numSamples: 5 } },
      status.INVALID_ARGUMENT,
      "sampling.num_samples: 5 exceeds this sampler's limit of 4",
    );
    await expectError(
      { prompts: [text('a')], sampling: { maxNewTokens: 301 } },
      status.INVALID_ARGUMENT,
      "sampling.max_new_tokens: 301 exceeds this sampler's limit of 300",
    );
    await expectError(
      { prompts: [text('a')], sampling: { maxNewTokens: -1 } },
      status.INVALID_ARGUMENT,
      'sampling.max_new_tokens: -1 is negative (0 means 64)',
    );
    await expectError(
      { prompts: [text('a')], sampling: { numSamples: -2 } },
      status.INVALID_ARGUMENT,
      'sampling.num_samples: -2 is negative (0 means 1)',
    );
    await expectError(
      { prompts: [tokens([1, 700])] },
      status.INVALID_ARGUMENT,
      'prompts[0].tokens.ids[1]: 700 is not a token id of this model (0 to 511)',
    );
    await expectError({ prompts: [] }, status.INVALID_ARGUMENT, 'prompts: is empty');
    await expectError(
      { model: { name: '', version: 'base' }, prompts: [text('a')] },
      status.INVALID_ARGUMENT,
      'model.name: is required',
    );
  });

  test('NOT_FOUND for a version no source has', async () => {
    await expectError(
      { model: { name: 'stories260k', version: 'it9' }, prompts: [text('a')] },
      status.NOT_FOUND,
      'model stories260k@it9 not found',
    );
  });

  test('RESOURCE_EXHAUSTED when a request exceeds the queue', async () => {
    // 17 prompts x 4 samples = 68 sequences > maxQueuedSequences 64.
    await expectError(
      { prompts: Array.from({ length: 17 }, () => text('a')), sampling: { numSamples: 4 } },
      status.RESOURCE_EXHAUSTED,
      'request needs 68 sequences',
    );
  });
});

/** The generated-token counter once two reads 200 ms apart agree (work has stopped). */
async function settledTokenCount(): Promise<number> {
  let last = -1;
  let now = await scrapeCounter(sampler.metricsPort!, TOKENS_METRIC);
  for (let i = 0; i < 20 && now !== last; i++) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    last = now;
    now = await scrapeCounter(sampler.metricsPort!, TOKENS_METRIC);
  }
  expect(now).toBe(last);
  return now;
}

describe('cancellation and info', () => {
  test('a deadline that passes stops the generation', async () => {
    const before = await settledTokenCount();
    // 16 rows x 300 tokens = 4800 tokens if nothing stopped it; the call may run 300 ms.
    const call = client.generate(
      GenerateRequest.fromPartial({
        model: { name: 'stories260k', version: 'base' },
        prompts: Array.from({ length: 4 }, (_, i) => text(`Tale ${i}`)),
        sampling: { temperature: 1, maxNewTokens: 300, numSamples: 4, stopTokenIds: [] },
      }),
      { deadline: Date.now() + 300 },
    );
    const ended = new Promise<number | undefined>((resolve) => {
      call.on('error', (err: { code?: number }) => resolve(err.code));
      call.on('end', () => resolve(undefined));
    });
    call.on('data', () => {});
    expect(await ended).toBe(status.DEADLINE_EXCEEDED);
    expect((await settledTokenCount()) - before).toBeLessThan(4800);
  });

  test('cancelling a call stops its generation', async () => {
    const before = await scrapeCounter(sampler.metricsPort!, TOKENS_METRIC);
    // 16 rows x 300 tokens = 4800 tokens if nothing stopped it.
    const call = client.generate(
      GenerateRequest.fromPartial({
        model: { name: 'stories260k', version: 'base' },
        prompts: Array.from({ length: 4 }, (_, i) => text(`Story ${i}`)),
        sampling: { temperature: 1, maxNewTokens: 300, numSamples: 4, stopTokenIds: [] },
      }),
    );
    const ended = new Promise<number | undefined>((resolve) => {
      call.on('error', (err: { code?: number }) => resolve(err.code));
      call.on('end', () => resolve(undefined));
    });
    call.on('data', () => {});
    // Wait until generation is under way, then cancel.
    while ((await scrapeCounter(sampler.metricsPort!, TOKENS_METRIC)) - before < 160) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The load gauge counts the call's 16 sequences while they decode, none once cancelled.
    expect(await scrapeCounter(sampler.metricsPort!, 'gsil_sampler_queued_sequences')).toBe(16);
    call.cancel();
    expect(await ended).toBe(status.CANCELLED);

    expect((await settledTokenCount()) - before).toBeLessThan(2400);
    expect(await scrapeCounter(sampler.metricsPort!, 'gsil_sampler_queued_sequences')).toBe(0);
    expect(await scrapeCounter(sampler.metricsPort!, 'gsil_sampler_queued_sequences_limit')).toBe(
      64,
    );

    // The cancelled request's queue tickets were returned: a full-size request is admitted.
    const full = await generate(client, {
      prompts: Array.from({ length: 16 }, () => text('a')),
      sampling: { numSamples: 4, maxNewTokens: 1 },
    });
    expect(full.error).toBeNull();
    expect(full.completions).toHaveLength(64);
  });

  test('GetInfo reports loaded versions, provider, threads and limits', async () => {
    const info = await getInfo(client);
    expect(info).toEqual({
      loadedModels: [{ name: 'stories260k', version: 'base' }],
      executionProvider: 'cpu',
      intraOpThreads: 1,
      maxBatchSize: 8,
      maxNewTokensLimit: 300,
      maxSamplesPerPrompt: 4,
      decodeWorkers: 1,
    });
  });

  test('a request for another version while one generates: both served in full', async () => {
    // maxResidentModels is 1: loading v2 evicts base, usually while base still generates
    // (on a loaded machine base may finish first: loading v2 starts a decode thread).
    // loaded-model.test.ts pins the contract without timing: a model unloaded while in use
    // serves its request to the end.
    const running = generate(client, {
      prompts: Array.from({ length: 4 }, (_, i) => text(`Story ${i}`)),
      sampling: { maxNewTokens: 200, temperature: 1, numSamples: 2 },
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const v2 = await generate(client, {
      model: { name: 'stories260k', version: 'v2' },
      prompts: [text('Once upon a time')],
      sampling: { maxNewTokens: 8 },
    });
    expect(v2.error).toBeNull();
    expect(v2.completions[0].tokenIds).toHaveLength(8);
    const base = await running;
    expect(base.error).toBeNull();
    expect(base.completions).toHaveLength(8);
    // Each ran to its own end: 200 tokens, or EOS (id 2) before that.
    for (const c of base.completions) {
      if (c.finishReason === FinishReason.FINISH_REASON_LENGTH)
        expect(c.tokenIds).toHaveLength(200);
      else expect(c.tokenIds.at(-1)).toBe(2);
    }
    expect((await getInfo(client)).loadedModels).toEqual([{ name: 'stories260k', version: 'v2' }]);
  });
});

describe('preload', () => {
  test('a preloaded version is loaded and generating before health reports SERVING', async () => {
    let healthWhileStarting: HealthStatus | null = null;
    const warm = await startTestSampler(
      root,
      { preload: ['stories260k/v2'], cacheDir: join(root, '.cache-preload') },
      {
        onListening: async (port) => {
          healthWhileStarting = await checkHealth(`127.0.0.1:${port}`);
        },
      },
    );
    try {
      expect(healthWhileStarting as HealthStatus | null).toBe('NOT_SERVING');
      expect(await checkHealth(`127.0.0.1:${warm.port}`)).toBe('SERVING');
      const warmClient = connect(warm.port);
      // Loaded before any request, and the preload's one token was generated.
      expect((await getInfo(warmClient)).loadedModels).toEqual([
        { name: 'stories260k', version: 'v2' },
      ]);
      expect(await scrapeCounter(warm.metricsPort!, TOKENS_METRIC)).toBeGreaterThanOrEqual(1);
      warmClient.close();
    } finally {
      await warm.close();
    }
  });

  test('a version that cannot be preloaded stops start-up, naming it', async () => {
    await expect(
      startTestSampler(root, { preload: ['stories260k/missing'], cacheDir: join(root, '.c2') }),
    ).rejects.toThrow(/^sampler preload failed: .*stories260k@missing/);
    await expect(startTestSampler(root, { preload: ['stories260k'] })).rejects.toThrow(
      'preload.0: received "stories260k"',
    );
  });
});
