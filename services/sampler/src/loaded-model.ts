// One model version ready to generate: its ONNX Runtime session, tokenizer and context.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  ContinuousBatcher,
  createDecodeSession,
  createSession,
  type ExecutionProviderChoice,
  Generator,
} from '@gsil/inference';
import type { LlamaConfig } from '@gsil/model';
import { GsilTokenizer } from '@gsil/tokenizer';
import type * as ort from 'onnxruntime-node';

/** Files of a model version directory that the sampler reads. */
export const MODEL_FILES = ['model.onnx', 'tokenizer.json', 'config.json'];

export interface LoadedModel {
  tokenizer: GsilTokenizer;
  config: LlamaConfig;
  /** Tokens of prompt plus completion the model can attend to. */
  contextLength: number;
  generator: Generator;
  /** The running batch that all requests for this version share. */
  batcher: ContinuousBatcher;
  executionProvider: 'cuda' | 'webgpu' | 'cpu';
  session: ort.InferenceSession;
  /**
   * Marks the model in use by one request; the returned function ends the use. The
   * session is released only once the model is unloaded and no request uses it, so an
   * eviction never cuts a running generation short.
   */
  use(): () => void;
  /** Releases the session now, or after the last request using it ends. */
  unload(): Promise<void>;
}

export interface LoadOptions {
  provider: ExecutionProviderChoice;
  threads: number;
  /** Rows decoded together across all requests for the version. */
  maxBatchSize: number;
  warn: (message: string) => void;
  /** Told how many tokens each ONNX Runtime pass generates (one per batch row). */
  onTokens?: (count: number) => void;
}

/**
 * Counts generated tokens at the source: every pass of the decoder (prefill or decode
 * step) produces the next token of each of its input_ids rows. The Generator has no step
 * hook, and counting here also covers work that a cancelled request never returns.
 */
function countingSession(
  session: ort.InferenceSession,
  onTokens: (count: number) => void,
): ort.InferenceSession {
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<unknown>;
  return new Proxy(session, {
    get(target, key, receiver) {
      if (key !== 'run') return Reflect.get(target, key, receiver);
      return async (feeds: Record<string, ort.Tensor>, ...rest: unknown[]) => {
        const result = await run(feeds, ...rest);
        onTokens(Number(feeds.input_ids?.dims[0] ?? 0));
        return result;
      };
    },
  });
}

export async function loadModelDir(dir: string, options: LoadOptions): Promise<LoadedModel> {
  const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as LlamaConfig;
  const tokenizer = new GsilTokenizer(
    await readFile(join(dir, 'tokenizer.json'), 'utf8'),
    join(dir, 'tokenizer.json'),
  );
  const created = await createSession(join(dir, 'model.onnx'), {
    executionProvider: options.provider,
    intraOpThreads: options.threads,
    warn: options.warn,
  });
  // Our own exports also get the decode-step graph (Generator's fast path); other graphs
  // in the Optimum convention run on their session alone.
  const decode = await createDecodeSession(join(dir, 'model.onnx'), {
    executionProvider: created.executionProvider,
    intraOpThreads: options.threads,
    warn: options.warn,
  });
  const count = (s: ort.InferenceSession) =>
    options.onTokens ? countingSession(s, options.onTokens) : s;
  const session = count(created.session);
  const generator = new Generator(session, config.vocab_size, decode && count(decode));
  let users = 0;
  let unloaded = false;
  let released: Promise<void> | null = null;
  const releaseWhenIdle = () => {
    if (unloaded && users === 0) {
      released ??= Promise.all([created.session.release(), decode?.release()]).then(() => {});
    }
    return released ?? Promise.resolve();
  };
  return {
    tokenizer,
    config,
    contextLength: config.max_position_embeddings,
    generator,
    batcher: new ContinuousBatcher(generator, options.maxBatchSize),
    executionProvider: created.executionProvider,
    session: created.session,
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
