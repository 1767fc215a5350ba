// Test and benchmark fixture: converts the real stories260K checkpoint into a temporary
// model root <root>/stories260k/<version>/ (Hugging Face checkpoint plus model.onnx), and
// writes perturbed copies as further versions.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { assetFile } from '@gsil/assets';
import { RatioServiceClient } from '@gsil/contracts';
import { importLlama2c, type LlamaConfig, saveCheckpoint, type Weights } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { createLogger } from '@gsil/service-kit';
import { llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import { type RunningRatio, startRatio } from './main.ts';

export const STORIES_BIN = await assetFile('stories260k', 'stories260K.bin');
export const TOK512_MODEL = await assetFile('stories260k', 'tok512.model');
export const MODEL_NAME = 'stories260k';

export interface TestModelRoot {
  root: string;
  config: LlamaConfig;
  weights: Weights;
  tokenizerJson: Record<string, unknown>;
  /** Writes `weights` as version `version` under the root. */
  writeVersion(version: string, weights: Weights): void;
  remove(): void;
}

export function createTestModelRoot(): TestModelRoot {
  const root = mkdtempSync(join(tmpdir(), 'gsil-ratio-test-'));
  const { config, weights } = importLlama2c(STORIES_BIN);
  const tokenizerJson = llama2cVocabToTokenizerJson(TOK512_MODEL);
  const writeVersion = (version: string, versionWeights: Weights) => {
    const dir = join(root, MODEL_NAME, version);
    saveCheckpoint(dir, { config, weights: versionWeights, tokenizerJson });
    writeFileSync(join(dir, 'model.onnx'), exportOnnx(config, versionWeights));
  };
  writeVersion('base', weights);
  return {
    root,
    config,
    weights,
    tokenizerJson,
    writeVersion,
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/**
 * A copy of `weights` with every value scaled by 1 + scale * sin(index): a deterministic,
 * small change that moves every log-probability a little.
 */
export function perturbWeights(weights: Weights, scale: number): Weights {
  const perturbed: Weights = new Map();
  for (const [name, tensor] of weights) {
    const data = new Float32Array(tensor.data.length);
    for (let i = 0; i < data.length; i++) data[i] = tensor.data[i] * (1 + scale * Math.sin(i + 1));
    perturbed.set(name, { shape: [...tensor.shape], data });
  }
  return perturbed;
}

/** A quiet ratio service on a free loopback port over `modelRoot`, and a client of it. */
export async function startTestRatio(
  modelRoot: string,
  threads: number,
): Promise<{ ratio: RunningRatio; client: RatioServiceClient }> {
  const ratio = await startRatio({
    port: 0,
    host: '127.0.0.1',
    modelRoot,
    provider: 'cpu',
    threads,
    handleSignals: false,
    logger: createLogger('ratio', 'silent'),
  });
  const client = new RatioServiceClient(`127.0.0.1:${ratio.port}`, credentials.createInsecure());
  return { ratio, client };
}
