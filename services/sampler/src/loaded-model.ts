// One model version ready to generate: its decode workers (each with ONNX Runtime sessions
// on the model), tokenizer and context.
import { DecodePool, type ExecutionProviderChoice } from '@gsil/inference';
import { decoderOnnxFile, readServingConfig } from '@gsil/model-store';
import { GsilTokenizer } from '@gsil/tokenizer';

export interface LoadedModel {
  tokenizer: GsilTokenizer;
  /** Tokens of prompt plus completion the model can attend to. */
  contextLength: number;
  /** The running batches that all requests for this version share. */
  batcher: DecodePool;
  executionProvider: 'cuda' | 'webgpu' | 'cpu';
  /**
   * Marks the model in use by one request; the returned function ends the use. The
   * workers stop only once the model is unloaded and no request uses it, so an eviction
   * never cuts a running generation short.
   */
  use(): () => void;
  /** Stops the workers now, or after the last request using the model ends. */
  unload(): Promise<void>;
}

export interface LoadOptions {
  provider: ExecutionProviderChoice;
  /** ONNX Runtime intra-op threads of each worker's sessions. */
  threads: number;
  /** Decoding threads, each with its own sessions and share of the batch. */
  decodeWorkers: number;
  /** Rows decoded together across all requests for the version. */
  maxBatchSize: number;
  warn: (message: string) => void;
  /** Told how many tokens the workers generated (one per batch row per pass). */
  onTokens?: (count: number) => void;
}

export async function loadModelDir(dir: string, options: LoadOptions): Promise<LoadedModel> {
  const { vocabSize, contextLength } = readServingConfig(dir);
  const tokenizer = GsilTokenizer.fromModelDir(dir);
  // Our own exports also get the decode-step graph (the generator's fast path); other
  // graphs in the Optimum convention run on their session alone.
  const pool = await DecodePool.start(decoderOnnxFile(dir), {
    workers: Math.min(options.decodeWorkers, options.maxBatchSize),
    maxBatch: options.maxBatchSize,
    executionProvider: options.provider,
    intraOpThreads: options.threads,
    vocab: vocabSize,
    warn: options.warn,
    onTokens: options.onTokens,
  });
  let users = 0;
  let unloaded = false;
  let released: Promise<void> | null = null;
  const releaseWhenIdle = () => {
    if (unloaded && users === 0) released ??= pool.close();
    return released ?? Promise.resolve();
  };
  return {
    tokenizer,
    contextLength,
    batcher: pool,
    executionProvider: pool.executionProvider,
    use() {
      users++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        users--;
        void releaseWhenIdle();
      };
    },
    unload() {
      unloaded = true;
      return releaseWhenIdle();
    },
  };
}
