// A run's checkpoints: runs/<runId>/checkpoints/<version>/ holds the Hugging Face folder
// (config.json, model.safetensors, tokenizer.json, generation_config.json) plus model.onnx,
// and a marker written last. Checkpoints hold no optimizer state: every stage and iteration
// starts its optimizer afresh from the reference weights, so resuming at a checkpoint is
// exact.

import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type LlamaConfig, loadCheckpoint, saveCheckpoint, type Weights } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { COMPLETE_MARKER } from './model-store.ts';

export const ONNX_FILE = 'model.onnx';

export interface ModelState {
  config: LlamaConfig;
  weights: Weights;
  /** tokenizer.json text. */
  tokenizerJson: string;
}

export function checkpointDir(runDir: string, version: string): string {
  return join(runDir, 'checkpoints', version);
}

export function hasCheckpoint(runDir: string, version: string): boolean {
  return existsSync(join(checkpointDir(runDir, version), COMPLETE_MARKER));
}

/**
 * Writes the HF folder and the ONNX graph of `state`, then the marker. `evalMaxNewTokens`
 * goes into generation_config.json as `max_new_tokens`, so `gsil eval` and transformers'
 * `generate` use the budget the run evaluated with.
 */
export function writeCheckpoint(
  runDir: string,
  version: string,
  state: ModelState,
  evalMaxNewTokens?: number,
): string {
  const dir = checkpointDir(runDir, version);
  // A folder without its marker is a checkpoint interrupted mid-write: start it over.
  rmSync(dir, { recursive: true, force: true });
  saveCheckpoint(dir, {
    config: state.config,
    weights: state.weights,
    tokenizerJson: state.tokenizerJson,
    generationConfig: {
      bos_token_id: state.config.bos_token_id,
      eos_token_id: state.config.eos_token_id,
      do_sample: false,
      ...(evalMaxNewTokens ? { max_new_tokens: evalMaxNewTokens } : {}),
    },
  });
  writeFileSync(join(dir, ONNX_FILE), exportOnnx(state.config, state.weights));
  writeFileSync(join(dir, COMPLETE_MARKER), '');
  return dir;
}

export function readCheckpoint(runDir: string, version: string): ModelState {
  const loaded = loadCheckpoint(checkpointDir(runDir, version));
  return { config: loaded.config, weights: loaded.weights, tokenizerJson: loaded.tokenizerJson };
}

/** Version labels in run order: "base", then "sft" when configured, then "it1".."itK". */
export function runVersions(hasSft: boolean, iterations: number): string[] {
  const versions = ['base'];
  if (hasSft) versions.push('sft');
  for (let k = 1; k <= iterations; k++) versions.push(`it${k}`);
  return versions;
}

/** The last version in run order whose checkpoint is complete, or undefined. */
export function lastCompleteVersion(runDir: string, versions: string[]): string | undefined {
  let last: string | undefined;
  for (const version of versions) {
    if (!hasCheckpoint(runDir, version)) break;
    last = version;
  }
  return last;
}
