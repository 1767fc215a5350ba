// Model directories for the one-shot commands (generate, eval): a given Hugging Face
// style directory, or the base model converted once into the user cache.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheDir, resolveAsset } from '@gsil/assets';
import { createSession, DecodePool } from '@gsil/inference';
import { importLlama2c, loadCheckpoint, saveCheckpoint } from '@gsil/model';
import { exportOnnx } from '@gsil/model/onnx';
import { findDecoderOnnxFile, readServingConfig } from '@gsil/model-store';
import { GsilTokenizer, llama2cVocabToTokenizerJson } from '@gsil/tokenizer';
import type * as ort from 'onnxruntime-node';

const ONNX_FILE = 'model.onnx';

/** stories260K as a checkpoint directory with model.onnx, converted once and cached. */
async function baseModelDir(): Promise<string> {
  const dir = join(defaultCacheDir(), 'models', 'stories260k', 'base');
  if (existsSync(join(dir, ONNX_FILE))) return dir;
  const asset = await resolveAsset('stories260k');
  const { config, weights } = importLlama2c(asset.files['stories260K.bin']);
  const tmp = `${dir}.tmp-${process.pid}`;
  saveCheckpoint(tmp, {
    config,
    weights,
    tokenizerJson: llama2cVocabToTokenizerJson(asset.files['tok512.bin']),
  });
  writeFileSync(join(tmp, ONNX_FILE), exportOnnx(config, weights));
  mkdirSync(join(dir, '..'), { recursive: true });
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

/**
 * The ONNX graph and tokenizer of a model directory. A directory without model.onnx
 * (a checkpoint written by another tool) is exported on the fly, in memory.
 */
export async function modelFiles(modelDir?: string): Promise<{
  onnx: string | Uint8Array;
  tokenizer: GsilTokenizer;
  /** Width of the graph's logits (config.json's vocab_size). */
  vocab: number;
  contextTokens: number;
  evalMaxNewTokens?: number;
}> {
  const dir = modelDir ?? (await baseModelDir());
  if (!existsSync(join(dir, 'config.json'))) {
    throw new Error(`${dir}: not a model directory (no config.json)`);
  }
  // A checkpoint written by another tool has no decoder graph: export it in memory.
  let onnx: string | Uint8Array | undefined = findDecoderOnnxFile(dir);
  if (!onnx) {
    const { config, weights } = loadCheckpoint(dir);
    onnx = exportOnnx(config, weights);
  }
  const { vocabSize, contextLength } = readServingConfig(dir);
  // The trainer records its evaluation budget as generation_config.json's max_new_tokens.
  const generationFile = join(dir, 'generation_config.json');
  const generation = existsSync(generationFile)
    ? JSON.parse(readFileSync(generationFile, 'utf8'))
    : {};
  return {
    evalMaxNewTokens: generation.max_new_tokens,
    onnx,
    tokenizer: GsilTokenizer.fromModelDir(dir),
    vocab: vocabSize,
    contextTokens: contextLength,
  };
}

export interface OpenModel {
  /** The exported graph, for scoring. */
  session: ort.InferenceSession;
  /** Generation on decode worker threads with sessions of their own. */
  generator: DecodePool;
  release(): Promise<void>;
}

/**
 * ONNX Runtime sessions of a model file as the sampler opens them: the exported graph for
 * scoring, and `decodeWorkers` generation threads (each also gets the one-token decode
 * graph derived from the file when it is our own export).
 */
export async function openModel(
  onnxPath: string | Uint8Array,
  vocab: number,
  decodeWorkers = 1,
): Promise<OpenModel> {
  const warn = (message: string) => process.stderr.write(`${message}\n`);
  const { session, executionProvider } = await createSession(onnxPath, {
    intraOpThreads: 1,
    warn,
  });
  const generator = await DecodePool.start(onnxPath, {
    workers: decodeWorkers,
    maxBatch: 64,
    executionProvider,
    vocab,
    warn,
  });
  return {
    session,
    generator,
    release: async () => {
      await generator.close();
      await session.release();
    },
  };
}
