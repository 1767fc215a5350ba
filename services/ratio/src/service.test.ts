// The ratio service over real gRPC on port 0, scoring with ONNX Runtime on stories260K
// converted at test time into a temporary model root.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
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
import { type RunningRatio, startRatio } from './main.ts';
import {
  createTestModelRoot,
  MODEL_NAME,
  perturbWeights,
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
  ratio = await startRatio({
    port: 0,
    host: '127.0.0.1',
    modelRoot: modelRoot.root,
    provider: 'cpu',
    threads: 2,
    handleSignals: false,
  });
  client = new RatioServiceClient(`127.0.0.1:${ratio.port}`, credentials.createInsecure());
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
      expect(r.logprob).toBeLessThan(0);
    }
  });
});
