// The run's inputs: the base model (asset or Hugging Face folder) and the task's
// demonstrations, tokenized by the project's convention.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { resolveAsset } from '@gsil/assets';
import { type Demonstration, loadDemonstrations as loadTaskDemonstrations } from '@gsil/data';
import { importLlama2c, loadCheckpoint } from '@gsil/model';
import type { RunConfig } from '@gsil/run-config';
import { invalidArgument } from '@gsil/service-kit';
import { type GsilTokenizer, llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import type { ModelState } from './checkpoints.ts';

export type { Demonstration } from '@gsil/data';

export async function loadBaseModel(baseModel: string): Promise<ModelState> {
  if (existsSync(join(baseModel, 'config.json'))) {
    const loaded = loadCheckpoint(baseModel);
    return { config: loaded.config, weights: loaded.weights, tokenizerJson: loaded.tokenizerJson };
  }
  if (baseModel !== 'stories260k') {
    throw invalidArgument(
      'baseModel',
      `must be "stories260k" or a Hugging Face model folder (with config.json); got ${JSON.stringify(baseModel)}`,
    );
  }
  const asset = await resolveAsset('stories260k');
  const { config, weights } = importLlama2c(asset.files['stories260K.bin']);
  const tokenizerJson = JSON.stringify(llama2cVocabToTokenizerJson(asset.files['tok512.bin']));
  return { config, weights, tokenizerJson };
}

async function taskFile(config: RunConfig, split: 'train' | 'dev'): Promise<string> {
  const given = split === 'train' ? config.task.trainFile : config.task.devFile;
  if (given) return given;
  if (config.task.name === 'mawps') {
    return (await resolveAsset('mawps-fold0')).files[split === 'train' ? 'train.csv' : 'dev.csv'];
  }
  return (await resolveAsset('gsm8k')).files[split === 'train' ? 'train.jsonl' : 'test.jsonl'];
}

/** Train or dev demonstrations of the run's task; `limit` 0 means all. */
export async function loadDemonstrations(
  config: RunConfig,
  split: 'train' | 'dev',
  tokenizer: GsilTokenizer,
  maxTokens: number,
  limit: number,
  onSkipped?: (count: number, path: string) => void,
): Promise<Demonstration[]> {
  const path = await taskFile(config, split);
  const rows = loadTaskDemonstrations(
    config.task.name,
    path,
    tokenizer,
    maxTokens,
    limit,
    (count) => onSkipped?.(count, path),
  );
  if (rows.length === 0) {
    const field = split === 'train' ? 'task.trainFile' : 'task.devFile';
    throw invalidArgument(field, `${path} holds no usable ${split} rows`);
  }
  return rows;
}
