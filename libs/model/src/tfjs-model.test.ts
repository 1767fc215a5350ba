import { describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { GsilTokenizer, llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from './backend.ts';
import { importLlama2c } from './llama2c.ts';
import { PUBLISHED_GREEDY_TEXT } from './testing/stories260k-sample.ts';
import { greedyGenerate, LlamaModel } from './tfjs-model.ts';

const { config, weights } = importLlama2c(await assetFile('stories260k', 'stories260K.bin'));
const TOK512_MODEL = await assetFile('stories260k', 'tok512.model');
// BOS + the REFERENCE.md tokenizer test vector.
const IDS = [1, 403, 407, 261, 378, 432, 383, 286, 261, 370, 400, 428, 395, 392, 412, 444, 426];
const quiet = () => {};

function expectClose(actual: number[], expected: number[], tolerance: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    expect(Math.abs(actual[i] - expected[i])).toBeLessThan(tolerance);
  }
}

describe('LlamaModel on wasm', async () => {
  await selectBackend('wasm', quiet);
  const model = LlamaModel.fromWeights(config, weights);

  test('logits match transformers LlamaForCausalLM on the converted checkpoint', () => {
    // Pinned from Python transformers 5.18 / torch 2.14 (float32) loading our
    // saveCheckpoint output of stories260K.
    const logits = model.logits(tf.tensor2d([IDS], [1, IDS.length], 'int32'));
    const values = logits.arraySync()[0];
    expectClose(
      values[16].slice(0, 5),
      [-4.0816469, 5.1526465, -4.0830779, -4.0817156, -4.080965],
      1e-4,
    );
    expectClose(
      values[0].slice(0, 5),
      [-6.2229128, 8.4043417, -6.2237391, -6.2225428, -6.2219524],
      1e-4,
    );
    expectClose(values[5].slice(100, 103), [-6.3451581, -6.3453813, -6.3456483], 1e-4);
    logits.dispose();
  });

  test('sequenceLogprobs sums log p over response tokens only (transformers: -0.6206369)', () => {
    const responseMask = IDS.map((_, i) => (i >= IDS.length - 6 ? 1 : 0));
    const logps = model.sequenceLogprobs({
      inputIds: tf.tensor2d([IDS], [1, IDS.length], 'int32'),
      responseMask: tf.tensor2d([responseMask]),
    });
    expectClose([...logps.dataSync()], [-0.6206369], 1e-4);
  });

  test('right padding with an attention mask leaves real positions unchanged', () => {
    const short = IDS.slice(0, 9);
    const padded = [...short, 0, 0, 0];
    const batch = tf.tensor2d([IDS.slice(0, 12), padded], [2, 12], 'int32');
    const mask = tf.tensor2d([Array(12).fill(1), [...Array(9).fill(1), 0, 0, 0]]);
    const both = model.logits(batch, mask).arraySync();
    const alone = model.logits(tf.tensor2d([short], [1, 9], 'int32')).arraySync();
    expectClose(both[1][8], alone[0][8], 1e-5);
    expectClose(both[0][8], alone[0][8], 1e-5);
  });

  test('greedy generation from BOS reproduces the published stories260K sample', () => {
    const tokenizer = new GsilTokenizer(llama2cVocabToTokenizerJson(TOK512_MODEL));
    // llama2.c's run stops at the next BOS; 256 tokens is its default step count.
    const generated = greedyGenerate(model, [config.bos_token_id], 256, [config.bos_token_id]);
    expect(generated.length).toBe(256);
    expect(tokenizer.decode(generated)).toBe(PUBLISHED_GREEDY_TEXT);
  }, 60_000);
});

// A few Adam steps on a fixed batch must move every parameter and lower the loss.
async function trainingStep(backend: 'wasm' | 'cpu'): Promise<void> {
  await selectBackend(backend, quiet);
  const model = LlamaModel.fromWeights(config, weights);
  const before = model.exportWeights();
  const inputIds = tf.tensor2d(
    [IDS.slice(0, 12), [...IDS.slice(0, 8), 0, 0, 0, 0]],
    [2, 12],
    'int32',
  );
  const attentionMask = tf.tensor2d([Array(12).fill(1), [...Array(8).fill(1), 0, 0, 0, 0]]);
  const responseMask = tf.tensor2d([
    [...Array(4).fill(0), ...Array(8).fill(1)],
    [...Array(4).fill(0), ...Array(4).fill(1), 0, 0, 0, 0],
  ]);
  const optimizer = tf.train.adam(1e-3);
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    const loss = optimizer.minimize(
      () =>
        tf.neg(
          tf.mean(model.sequenceLogprobs({ inputIds, responseMask, attentionMask })),
        ) as tf.Scalar,
      true,
      model.variables(),
    );
    losses.push(loss!.dataSync()[0]);
    loss!.dispose();
  }
  expect(losses[2]).toBeLessThan(losses[0]);
  for (const [name, w] of model.exportWeights()) {
    const old = before.get(name)!.data;
    const changed = w.data.some((v, i) => v !== old[i]);
    if (!changed) throw new Error(`parameter ${name} did not change on ${backend}`);
  }
  optimizer.dispose();
  model.dispose();
}

test(
  'a training step changes every parameter and lowers the loss on wasm',
  () => trainingStep('wasm'),
  60_000,
);
test(
  'a training step changes every parameter and lowers the loss on cpu',
  () => trainingStep('cpu'),
  60_000,
);
