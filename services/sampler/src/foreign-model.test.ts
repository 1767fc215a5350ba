// The sampler serving a decoder it did not export: a small random-weight Llama with grouped
// query attention, exported by torch.onnx with the Optimum / transformers.js names and laid
// out as a transformers.js repository (onnx/model.onnx). Expected tokens and log-probabilities
// come from transformers' own generate (libs/model/src/testing/optimum-tiny/make_fixture.py).
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FinishReason } from '@gsil/contracts';
import { GPT2_BPE_TINY, writeGpt2BpeModel } from '../../../libs/model/src/testing/gpt2-bpe-tiny.ts';
import {
  OPTIMUM_TINY as expected,
  writeOptimumTinyModel,
} from '../../../libs/model/src/testing/optimum-tiny.ts';
import type { RunningSampler } from './main.ts';
import {
  connect,
  generate,
  type SamplerClient,
  startTestSampler,
  text,
  tokens,
} from './test-fixture.ts';

const MODEL = { name: 'tiny', version: 'optimum' };
/** The same weights as Optimum's merged decoder (onnx/decoder_model_merged.onnx). */
const MERGED = { name: 'tiny', version: 'merged' };
/** GPT-2 with a byte-level BPE tokenizer. */
const GPT2 = { name: 'gpt2', version: 'bpe' };

let root: string;
let sampler: RunningSampler;
let client: SamplerClient;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gsil-sampler-foreign-'));
  await writeOptimumTinyModel(join(root, MODEL.name, MODEL.version));
  await writeOptimumTinyModel(join(root, MERGED.name, MERGED.version), true);
  writeGpt2BpeModel(join(root, GPT2.name, GPT2.version));
  sampler = await startTestSampler(root);
  client = connect(sampler.port);
});

afterAll(async () => {
  client?.close();
  await sampler?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('a decoder exported by torch.onnx in the Optimum convention', () => {
  test.each([
    ['onnx/model.onnx', MODEL],
    ['onnx/decoder_model_merged.onnx', MERGED],
  ])(
    'greedy from text prompts, batched together, equals transformers generate (%s)',
    async (_, model) => {
      const { completions, error } = await generate(client, {
        model,
        prompts: expected.cases.map((c) => text(c.text)),
        sampling: { maxNewTokens: expected.new_tokens },
      });
      expect(error).toBeNull();
      expect(completions).toHaveLength(expected.cases.length);
      for (const want of expected.cases) {
        const got = completions.find((c) => c.promptIndex === expected.cases.indexOf(want));
        expect(got?.promptTokenCount).toBe(want.prompt_ids.length);
        expect(got?.tokenIds).toEqual(want.ids);
        expect(got?.finishReason).toBe(FinishReason.FINISH_REASON_LENGTH);
        const logprobs = got?.tokenLogprobs ?? [];
        expect(logprobs).toHaveLength(want.logprobs.length);
        for (let i = 0; i < logprobs.length; i++) {
          expect(Math.abs(logprobs[i] - want.logprobs[i])).toBeLessThan(1e-4);
        }
      }
    },
  );

  test('a token prompt alone gets the tokens it gets in the batch', async () => {
    const [, second] = expected.cases;
    const { completions, error } = await generate(client, {
      model: MODEL,
      prompts: [tokens(second.prompt_ids)],
      sampling: { maxNewTokens: 10 },
    });
    expect(error).toBeNull();
    expect(completions[0].tokenIds).toEqual(second.ids.slice(0, 10));
  });

  test('seeded sampling is reproducible on it', async () => {
    const request = {
      model: MODEL,
      prompts: [text(expected.cases[0].text)],
      sampling: { maxNewTokens: 16, temperature: 1, topP: 0.9, seed: 7, numSamples: 3 },
    };
    const first = await generate(client, request);
    const second = await generate(client, request);
    expect(first.error).toBeNull();
    const bySample = (r: typeof first) =>
      [...r.completions].sort((a, b) => a.sampleIndex - b.sampleIndex).map((c) => c.tokenIds);
    expect(bySample(second)).toEqual(bySample(first));
    expect(new Set(bySample(first).map((ids) => ids.join(','))).size).toBeGreaterThan(1);
  });
});

describe('GPT-2 with a byte-level BPE tokenizer, exported by torch.onnx', () => {
  test('greedy from text prompts equals transformers: tokens, stops at EOS, text', async () => {
    const { cases, new_tokens } = GPT2_BPE_TINY;
    const { completions, error } = await generate(client, {
      model: GPT2,
      prompts: cases.map((c) => text(c.text)),
      sampling: { maxNewTokens: new_tokens },
    });
    expect(error).toBeNull();
    expect(completions).toHaveLength(cases.length);
    cases.forEach((want, i) => {
      const got = completions.find((c) => c.promptIndex === i);
      // [BOS] + ids: the config's bos_token_id (<|endoftext|>), not "<s>".
      expect(got?.promptTokenCount).toBe(want.prompt_ids.length);
      expect(got?.tokenIds).toEqual(want.ids);
      const stopped = want.ids.length < new_tokens;
      expect(got?.finishReason).toBe(
        stopped ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH,
      );
      expect(got?.text).toBe(want.completion_text);
      (got?.tokenLogprobs ?? []).forEach((lp, t) => {
        expect(Math.abs(lp - want.logprobs[t])).toBeLessThan(1e-4);
      });
    });
    // The cases cover both ends: rows that stop at EOS and one that runs the whole budget.
    expect(cases.some((c) => c.ids.length < new_tokens)).toBe(true);
    expect(cases.some((c) => c.ids.length === new_tokens)).toBe(true);
  });

  test('a prompt longer than n_positions is INVALID_ARGUMENT naming the context', async () => {
    const { error } = await generate(client, {
      model: GPT2,
      prompts: [tokens(Array.from({ length: 300 }, () => 5))],
    });
    expect(error?.details).toBe(
      'prompts[0]: 300 tokens exceed the context of 256 (at most 255 leave room to generate)',
    );
  });
});
