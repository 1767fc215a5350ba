// Test fixture: a GPT-2 (learned positions, LayerNorm, tied embeddings) with random weights and
// its own byte-level BPE tokenizer.json, exported by torch.onnx with the Optimum names;
// config.json as save_pretrained writes it (n_positions, no max_position_embeddings), BOS =
// EOS = <|endoftext|>. expected.json holds transformers' greedy tokens, their log-probabilities
// and decoded text. gpt2-bpe-tiny/make_fixture.py made all of it.
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const FIXTURE = join(import.meta.dir, 'gpt2-bpe-tiny');

export interface Gpt2BpeCase {
  text: string;
  /** [BOS] + the tokenizer's ids of text. */
  prompt_ids: number[];
  /** transformers' greedy continuation, ending with EOS where it stopped. */
  ids: number[];
  logprobs: number[];
  /** tokenizers' decode of ids without special tokens. */
  completion_text: string;
}

export const GPT2_BPE_TINY: { new_tokens: number; cases: Gpt2BpeCase[] } = JSON.parse(
  readFileSync(join(FIXTURE, 'expected.json'), 'utf8'),
);

/** Writes the fixture as a model version folder: model.onnx, config.json, tokenizer.json. */
export function writeGpt2BpeModel(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const file of ['model.onnx', 'config.json', 'tokenizer.json']) {
    cpSync(join(FIXTURE, file), join(dir, file));
  }
}
