// Checkpoint directories in the Hugging Face layout, loadable by transformers as they are:
// config.json, model.safetensors, tokenizer.json, generation_config.json.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LlamaConfig, parameterShapes, type Weights } from './config.ts';
import { decodeSafetensors, encodeSafetensors } from './safetensors.ts';

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';
export const TOKENIZER_FILE = 'tokenizer.json';
export const GENERATION_CONFIG_FILE = 'generation_config.json';

export interface Checkpoint {
  config: LlamaConfig;
  weights: Weights;
  /** The tokenizer.json document, as text or as parsed JSON. */
  tokenizerJson: string | object;
  /** generation_config.json; defaults to the config's BOS and EOS ids. */
  generationConfig?: Record<string, unknown>;
}

export interface LoadedCheckpoint {
  config: LlamaConfig;
  weights: Weights;
  tokenizerJson: string;
  generationConfig: Record<string, unknown>;
}

/**
 * Writes the four files into `dir` (created if missing). Each file is written under a
 * temporary name and then renamed, so a reader never sees a half-written file.
 */
export function saveCheckpoint(dir: string, checkpoint: Checkpoint): void {
  const { config, weights } = checkpoint;
  checkWeights(config, weights, 'weights to save');
  mkdirSync(dir, { recursive: true });

  // Save in the canonical parameter order so files are byte-identical across runs.
  const ordered: Weights = new Map();
  for (const [name] of parameterShapes(config)) ordered.set(name, weights.get(name)!);
  const generationConfig = checkpoint.generationConfig ?? {
    bos_token_id: config.bos_token_id,
    eos_token_id: config.eos_token_id,
  };
  const tokenizerText =
    typeof checkpoint.tokenizerJson === 'string'
      ? checkpoint.tokenizerJson
      : JSON.stringify(checkpoint.tokenizerJson);

  const files: Array<[string, string | Uint8Array]> = [
    [WEIGHTS_FILE, encodeSafetensors(ordered)],
    [TOKENIZER_FILE, tokenizerText],
    [GENERATION_CONFIG_FILE, `${JSON.stringify(generationConfig, null, 2)}\n`],
    // config.json last: its presence marks a complete checkpoint for readers that poll.
    [CONFIG_FILE, `${JSON.stringify(config, null, 2)}\n`],
  ];
  const suffix = `.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    for (const [name, content] of files) writeFileSync(join(dir, name + suffix), content);
    for (const [name] of files) renameSync(join(dir, name + suffix), join(dir, name));
  } finally {
    for (const [name] of files) rmSync(join(dir, name + suffix), { force: true });
  }
}

/** Reads a checkpoint directory, validating every tensor against the config. */
export function loadCheckpoint(dir: string): LoadedCheckpoint {
  const configPath = join(dir, CONFIG_FILE);
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as LlamaConfig;
  if (config.model_type !== 'llama') {
    throw new Error(`${configPath}: model_type is ${config.model_type}, expected "llama"`);
  }
  // Configs written by transformers may omit fields that have defaults there.
  config.tie_word_embeddings ??= false;

  const weightsPath = join(dir, WEIGHTS_FILE);
  const { tensors } = decodeSafetensors(readFileSync(weightsPath), weightsPath);
  // transformers drops a tied lm_head when saving, but tolerate one that is present.
  if (config.tie_word_embeddings) tensors.delete('lm_head.weight');
  checkWeights(config, tensors, weightsPath);

  const generationPath = join(dir, GENERATION_CONFIG_FILE);
  let generationConfig: Record<string, unknown>;
  try {
    generationConfig = JSON.parse(readFileSync(generationPath, 'utf8'));
  } catch {
    generationConfig = { bos_token_id: config.bos_token_id, eos_token_id: config.eos_token_id };
  }
  return {
    config,
    weights: tensors,
    tokenizerJson: readFileSync(join(dir, TOKENIZER_FILE), 'utf8'),
    generationConfig,
  };
}

/** Throws naming the tensor and `source` if a parameter is missing, extra or misshapen. */
export function checkWeights(config: LlamaConfig, weights: Weights, source: string): void {
  const expected = parameterShapes(config);
  const expectedNames = new Set(expected.map(([name]) => name));
  for (const name of weights.keys()) {
    if (!expectedNames.has(name)) throw new Error(`${source}: unexpected tensor ${name}`);
  }
  for (const [name, shape] of expected) {
    const w = weights.get(name);
    if (!w) throw new Error(`${source}: missing tensor ${name}`);
    if (w.shape.length !== shape.length || w.shape.some((d, i) => d !== shape[i])) {
      throw new Error(`${source}: tensor ${name} has shape [${w.shape}], expected [${shape}]`);
    }
    if (!(w.data instanceof Float32Array)) {
      throw new Error(`${source}: tensor ${name} is not float32`);
    }
    const count = shape.reduce((a, b) => a * b, 1);
    if (w.data.length !== count) {
      throw new Error(`${source}: tensor ${name} has ${w.data.length} values, expected ${count}`);
    }
  }
}
