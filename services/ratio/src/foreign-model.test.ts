// The ratio service scoring with a decoder it did not export: torch.onnx's export of a small
// grouped-query Llama in the Optimum convention, laid out as a transformers.js repository
// (onnx/model.onnx). Expected log-probabilities come from transformers (the fixture's
// make_fixture.py).
import { afterAll, beforeAll, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogProbsResponse, RatioServiceClient } from '@gsil/contracts';
import {
  OPTIMUM_TINY,
  writeOptimumTinyModel,
} from '../../../libs/model/src/testing/optimum-tiny.ts';
import type { RunningRatio } from './main.ts';
import { startTestRatio } from './test-model-root.ts';

const MODEL = { name: 'tiny', version: 'optimum' };
/** The same weights as Optimum's merged decoder (onnx/decoder_model_merged.onnx). */
const MERGED = { name: 'tiny', version: 'merged' };

let root: string;
let ratio: RunningRatio;
let client: RatioServiceClient;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gsil-ratio-foreign-'));
  await writeOptimumTinyModel(join(root, MODEL.name, MODEL.version));
  await writeOptimumTinyModel(join(root, MERGED.name, MERGED.version), true);
  ({ ratio, client } = await startTestRatio(root, 1));
});

afterAll(async () => {
  client?.close();
  await ratio?.close();
  rmSync(root, { recursive: true, force: true });
});

test.each([
  ['onnx/model.onnx', MODEL],
  ['onnx/decoder_model_merged.onnx', MERGED],
])(
  'LogProbs of transformers greedy continuations equal transformers log-probabilities (%s)',
  async (_, model) => {
    const tokens = (ids: number[]) => ({ value: { $case: 'tokens' as const, value: { ids } } });
    const response = await new Promise<LogProbsResponse>((resolve, reject) =>
      client.logProbs(
        {
          requestId: '',
          model,
          perToken: true,
          pairs: OPTIMUM_TINY.cases.map((c) => ({
            prompt: tokens(c.prompt_ids),
            response: tokens(c.ids),
          })),
        },
        (err, res) => (err ? reject(err) : resolve(res)),
      ),
    );
    expect(response.results).toHaveLength(OPTIMUM_TINY.cases.length);
    OPTIMUM_TINY.cases.forEach((c, i) => {
      const result = response.results[i];
      expect(result.tokenCount).toBe(c.ids.length);
      const sum = c.logprobs.reduce((a, b) => a + b, 0);
      expect(Math.abs(result.logprob - sum)).toBeLessThan(1e-3);
      result.tokenLogprobs.forEach((lp, t) => {
        expect(Math.abs(lp - c.logprobs[t])).toBeLessThan(1e-4);
      });
    });
  },
);
