// The ratio service over real gRPC on port 0, scoring with ONNX Runtime on stories260K
// converted at test time into a temporary model root.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { credentials, type ServiceError, status } from '@grpc/grpc-js';
import {
  type LogProbsRequest,
  type LogProbsResponse,
  type RatioInfo,
  RatioServiceClient,
  type RatiosRequest,
  type RatiosResponse,
  type ScoringPair,
} from '@gsil/contracts';
import { createLogger } from '@gsil/service-kit';
import { type RunningRatio, startRatio } from './main.ts';
import { ModelRegistry } from './models.ts';
import {
  createTestModelRoot,
  MODEL_NAME,
  perturbWeights,
  startTestRatio,
  type TestModelRoot,
} from './test-model-root.ts';

const base = { name: MODEL_NAME, version: 'base' };
const perturbed = { name: MODEL_NAME, version: 'perturbed' };

const text = (value: string) => ({ value: { $case: 'text' as const, value } });
const tokens = (ids: number[]) => ({ value: { $case: 'tokens' as const, value: { ids } } });
const textPair = (prompt: string, response: string): ScoringPair => ({
  prompt: text(prompt),
  response: text(response),
});

const PAIRS: ScoringPair[] = [
  textPair('Once upon a time,', ' there was a big dog named Max.'),
  textPair('Lily liked to play', ' outside in the park with her ball.'),
  textPair('', 'Once upon a time, there was a little girl named Lily.'),
  textPair('The cat', ' sat.'),
];

// Pinned once with Python transformers (LlamaForCausalLM in float64) on the checkpoint
// directories this fixture writes: sum over response tokens of log_softmax at the
// preceding position. Token ids: pair 0 prompt [1, 403, 407, 261, 378, 432], response
// [383, 286, 261, 370, 400, 428, 395, 392, 412, 444, 426, 2].
const TRANSFORMERS_LOGPROBS = {
  base: [-28.5962, -36.176715, -22.914596, -39.014683],
  perturbed: [-28.597777, -36.17217, -23.697886, -39.052573],
};
const TRANSFORMERS_FIRST_TOKENS = [-0.06842, -0.01595, -0.00078];

let modelRoot: TestModelRoot;
let ratio: RunningRatio;
let client: RatioServiceClient;

function call<Req, Res>(
  method: (req: Req, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  request: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    method.call(client, request, (err, res) => (err ? reject(err) : resolve(res))),
  );
}

const logProbs = (request: Partial<LogProbsRequest>) =>
  call<LogProbsRequest, LogProbsResponse>(client.logProbs, {
    requestId: '',
    model: base,
    pairs: [],
    perToken: false,
    ...request,
  });
const ratios = (request: Partial<RatiosRequest>) =>
  call<RatiosRequest, RatiosResponse>(client.ratios, {
    requestId: '',
    policy: base,
    reference: base,
    pairs: PAIRS,
    alpha: 0,
    beta: 0,
    ...request,
  });
const getInfo = () => call<object, RatioInfo>(client.getInfo, {});

async function expectError(promise: Promise<unknown>, code: number, message: string) {
  const err = (await promise.then(
    () => null,
    (e) => e,
  )) as ServiceError | null;
  expect(err).not.toBeNull();
  expect(status[err?.code ?? 0]).toBe(status[code]);
  expect(err?.details).toBe(message);
}

beforeAll(async () => {
  modelRoot = createTestModelRoot();
  modelRoot.writeVersion('perturbed', perturbWeights(modelRoot.weights, 0.02));
  ({ ratio, client } = await startTestRatio(modelRoot.root, 2));
});

afterAll(async () => {
  client?.close();
  await ratio?.close();
  modelRoot?.remove();
});

describe('LogProbs', () => {
  test('text pairs are tokenized as the trainer does and scored with prompt tokens masked', async () => {
    const { results } = await logProbs({ pairs: PAIRS, perToken: true });
    expect(results).toHaveLength(PAIRS.length);
    // " there was a big dog named Max." is the last 11 pieces of REFERENCE.md's test vector
    // (sentencepiece trims the leading space, then adds its dummy prefix), plus EOS.
    expect(results[0].tokenCount).toBe(12);
    for (const r of results) {
      expect(r.tokenLogprobs).toHaveLength(r.tokenCount);
      const sum = r.tokenLogprobs.reduce((s, x) => s + x, 0);
      expect(r.logprob).toBeCloseTo(sum, 4);
    }
    results.forEach((r, i) => {
      expect(Math.abs(r.logprob - TRANSFORMERS_LOGPROBS.base[i])).toBeLessThan(1e-3);
    });
    results[0].tokenLogprobs.slice(0, 3).forEach((x, j) => {
      expect(x).toBeCloseTo(TRANSFORMERS_FIRST_TOKENS[j], 4);
    });
  });

  test('token ids are used as given and agree with the same pair as text', async () => {
    const { results } = await logProbs({
      pairs: [
        {
          prompt: tokens([1, 403, 407, 261, 378, 432]),
          response: tokens([383, 286, 261, 370, 400, 428, 395, 392, 412, 444, 426, 2]),
        },
      ],
    });
    expect(results[0].tokenCount).toBe(12);
    expect(results[0].tokenLogprobs).toEqual([]);
    expect(Math.abs(results[0].logprob - TRANSFORMERS_LOGPROBS.base[0])).toBeLessThan(1e-3);
  });

  test('a repeated pair is answered from the cache with the same values', async () => {
    const pairs = [textPair('A dog', ' ran to the park.'), textPair('A bird', ' sang a song.')];
    const before = await getInfo();
    const first = await logProbs({ pairs, perToken: true });
    const afterFirst = await getInfo();
    const second = await logProbs({ pairs, perToken: true });
    const afterSecond = await getInfo();
    expect(Number(afterFirst.cacheHits)).toBe(Number(before.cacheHits));
    expect(Number(afterFirst.cacheEntries)).toBe(Number(before.cacheEntries) + 2);
    expect(Number(afterSecond.cacheHits)).toBe(Number(afterFirst.cacheHits) + 2);
    expect(second.results).toEqual(first.results);
    expect(afterSecond.loadedModels).toContainEqual(base);
    expect(afterSecond.executionProvider).toBe('cpu');
  });
});

describe('Ratios', () => {
  test('a version against itself gives r = 0 and reward = beta', async () => {
    const { results } = await ratios({ alpha: 0.1, beta: 2 });
    expect(results).toHaveLength(PAIRS.length);
    for (const r of results) {
      expect(r.logRatio).toBe(0);
      expect(r.reward).toBe(2);
      expect(r.policyLogprob).toBe(r.referenceLogprob);
    }
  });

  test('against a perturbed version r is the difference of the two LogProbs', async () => {
    const policy = await logProbs({ model: perturbed, pairs: PAIRS });
    const reference = await logProbs({ model: base, pairs: PAIRS });
    const { results } = await ratios({ policy: perturbed, reference: base, alpha: 0.5, beta: 1 });
    results.forEach((r, i) => {
      const expected = policy.results[i].logprob - reference.results[i].logprob;
      expect(Math.abs(r.logRatio - expected)).toBeLessThan(1e-9);
      expect(r.reward).toBeCloseTo(0.5 * expected + 1, 9);
      expect(r.tokenCount).toBe(reference.results[i].tokenCount);
      // And the perturbed model itself matches transformers on its weights.
      expect(Math.abs(r.policyLogprob - TRANSFORMERS_LOGPROBS.perturbed[i])).toBeLessThan(1e-3);
    });
    // alpha 0 means 1.
    const unscaled = await ratios({ policy: perturbed, reference: base, alpha: 0, beta: 0 });
    expect(unscaled.results[2].reward).toBe(unscaled.results[2].logRatio);
  });
});

describe('bad input', () => {
  const { INVALID_ARGUMENT, NOT_FOUND } = status;
  const good = textPair('A', ' b.');

  test('empty response, out-of-vocabulary token and over-long pair name the pair and field', async () => {
    await expectError(
      logProbs({ pairs: [good, good, { prompt: text('A'), response: tokens([]) }] }),
      INVALID_ARGUMENT,
      'pairs[2].response: empty',
    );
    await expectError(
      logProbs({ pairs: [good, textPair('A', '')] }),
      INVALID_ARGUMENT,
      'pairs[1].response: empty',
    );
    await expectError(
      logProbs({ pairs: [{ prompt: tokens([1, 5]), response: tokens([7, 512, 2]) }] }),
      INVALID_ARGUMENT,
      'pairs[0].response.tokens[1]: 512 is outside the vocabulary [0, 512)',
    );
    await expectError(
      logProbs({
        pairs: [good, { prompt: tokens([1]), response: tokens(new Array(512).fill(5)) }],
      }),
      INVALID_ARGUMENT,
      'pairs[1]: 513 tokens (prompt 1 + response 512) exceed the model context of 512',
    );
    await expectError(
      logProbs({ pairs: [{ prompt: undefined, response: text('x') }] }),
      INVALID_ARGUMENT,
      'pairs[0].prompt: missing (set text or tokens)',
    );
    await expectError(logProbs({ pairs: [] }), INVALID_ARGUMENT, 'pairs: empty');
  });

  test('missing or unknown model versions', async () => {
    await expectError(
      logProbs({ model: { name: MODEL_NAME, version: '' }, pairs: [good] }),
      INVALID_ARGUMENT,
      'model.version: required',
    );
    await expectError(
      ratios({ reference: { name: '..', version: 'base' } }),
      INVALID_ARGUMENT,
      'reference.name: ".." is not a valid name ' +
        "(letters, digits, '.', '_', '-', starting with a letter or digit)",
    );
    const err = await logProbs({
      model: { name: MODEL_NAME, version: 'it9' },
      pairs: [good],
    }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(NOT_FOUND);
    expect((err as ServiceError).details).toStartWith('model stories260k@it9 not found');
  });

  test('a version that cannot be pulled or loaded is UNAVAILABLE', async () => {
    // A model.onnx that is not an ONNX graph: found, but loading fails.
    const broken = join(modelRoot.root, MODEL_NAME, 'broken');
    mkdirSync(broken, { recursive: true });
    for (const file of ['config.json', 'tokenizer.json']) {
      copyFileSync(join(modelRoot.root, MODEL_NAME, 'base', file), join(broken, file));
    }
    writeFileSync(join(broken, 'model.onnx'), 'not an onnx graph');
    const err = await logProbs({ model: { name: MODEL_NAME, version: 'broken' }, pairs: [good] })
      .then(() => null)
      .catch((e: ServiceError) => e);
    expect(err?.code).toBe(status.UNAVAILABLE);
    expect(err?.details).toStartWith(`model ${MODEL_NAME}/broken could not be loaded`);

    // A model store nobody listens on (port 1 on loopback refuses connections).
    const storeOnly = await startRatio({
      port: 0,
      host: '127.0.0.1',
      modelStore: '127.0.0.1:1',
      handleSignals: false,
      logger: createLogger('ratio', 'silent'),
    });
    const storeClient = new RatioServiceClient(
      `127.0.0.1:${storeOnly.port}`,
      credentials.createInsecure(),
    );
    try {
      const request = { requestId: '', model: base, pairs: [good], perToken: false };
      const pullErr = await new Promise<ServiceError | null>((resolve) =>
        storeClient.logProbs(request, (e) => resolve(e)),
      );
      expect(pullErr?.code).toBe(status.UNAVAILABLE);
      expect(pullErr?.details).toStartWith(`model ${MODEL_NAME}@base could not be pulled`);
    } finally {
      storeClient.close();
      await storeOnly.close();
    }
  });
});

describe('model versions', () => {
  test('a version evicted while leased keeps scoring until its lease ends', async () => {
    const cacheDir = `${modelRoot.root}-evict-cache`;
    const registry = new ModelRegistry({
      cacheDir,
      modelRoot: modelRoot.root,
      provider: 'cpu',
      threads: 1,
      maxLoadedModels: 1,
      logger: createLogger('ratio', 'silent'),
    });
    try {
      const pair = { promptIds: [1, 403], responseIds: [407, 261, 2] };
      const baseModel = await registry.get(base);
      const endLease = baseModel.lease();
      await registry.get(perturbed); // evicts base (one resident version)
      expect(registry.loaded()).toEqual([perturbed]);
      const [leased] = await baseModel.forward([pair]);
      expect(leased.tokenCount).toBe(3);
      endLease();
      expect(() => baseModel.lease()).toThrow('was just unloaded; retry');
    } finally {
      await registry.close();
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
