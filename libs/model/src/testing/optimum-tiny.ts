// Test fixture: a decoder this project did not export. A small random-weight Llama with
// grouped query attention (4 heads, 2 KV heads), exported by torch.onnx with the Optimum /
// transformers.js names; expected.json holds what transformers' own generate gives for it.
// optimum-tiny/make_fixture.py made both.
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assetFile } from '@gsil/assets';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';

const FIXTURE = join(import.meta.dir, 'optimum-tiny');

export interface OptimumTinyCase {
  /** The prompt text; prompt_ids is [BOS] + its sentencepiece ids. */
  text: string;
  prompt_ids: number[];
  /** transformers' greedy continuation. */
  ids: number[];
  /** log_softmax at temperature 1 of each continuation token. */
  logprobs: number[];
}

export const OPTIMUM_TINY: { new_tokens: number; cases: OptimumTinyCase[] } = JSON.parse(
  readFileSync(join(FIXTURE, 'expected.json'), 'utf8'),
);

/**
 * Writes the fixture as a transformers.js repository would hold it: config.json,
 * tokenizer.json (stories260K's vocabulary, which the fixture shares) and onnx/model.onnx.
 */
export async function writeOptimumTinyModel(dir: string): Promise<void> {
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  cpSync(join(FIXTURE, 'model.onnx'), join(dir, 'onnx', 'model.onnx'));
  cpSync(join(FIXTURE, 'config.json'), join(dir, 'config.json'));
  const tok512 = await assetFile('stories260k', 'tok512.bin');
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(llama2cVocabToTokenizerJson(tok512)));
}
