// The model versions this replica has loaded: an ONNX Runtime session, the tokenizer and
// the limits of each (name, version), loaded on the first request that names it and
// evicted least-recently-used. Concurrent requests for the same version share one load.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ModelRef } from '@gsil/contracts';
import {
  type CreatedSession,
  createSession,
  type ExecutionProviderChoice,
  scoreResponses,
} from '@gsil/inference';
import { GsilError, notFound, Status, unavailable } from '@gsil/service-kit';
import { GsilTokenizer } from '@gsil/tokenizer';
import type { Logger } from 'pino';
import type { PairLimits } from './pairs.ts';
import type { PairScore } from './result-cache.ts';
import type { ScoringModel } from './scorer.ts';

/** Finds the local directory of a version (model.onnx, config.json, tokenizer.json). */
export type ModelDirResolver = (name: string, version: string) => Promise<string>;

export interface LoadedModel extends ScoringModel {
  tokenizer: GsilTokenizer;
  limits: PairLimits;
  session: CreatedSession;
}

export interface ModelRegistryOptions {
  resolveDir: ModelDirResolver;
  provider: ExecutionProviderChoice;
  /** ONNX Runtime intra-op threads; 0 lets it choose. */
  threads: number;
  maxLoadedModels: number;
  logger: Logger;
}

// Names become path segments: no separators, no "." or "..".
const SAFE_SEGMENT = /^(?!\.{1,2}$)[A-Za-z0-9._-]+$/;

/** Checks a request's ModelRef; `field` is its name in the request, e.g. "policy". */
export function checkModelRef(ref: ModelRef | undefined, field: string): ModelRef {
  for (const key of ['name', 'version'] as const) {
    const value = ref?.[key] ?? '';
    if (value === '') {
      throw new GsilError(Status.INVALID_ARGUMENT, `${field}.${key}: required`);
    }
    if (!SAFE_SEGMENT.test(value)) {
      throw new GsilError(
        Status.INVALID_ARGUMENT,
        `${field}.${key}: ${JSON.stringify(value)} is not a valid name (letters, digits, '.', '_', '-')`,
      );
    }
  }
  return ref as ModelRef;
}

/** A resolver over a directory root laid out as <root>/<name>/<version>/. */
export function modelRootResolver(root: string): ModelDirResolver {
  return async (name, version) => {
    const dir = join(root, name, version);
    if (!existsSync(join(dir, 'model.onnx'))) {
      throw notFound(`model ${name}/${version} not found: no ${join(dir, 'model.onnx')}`);
    }
    return dir;
  };
}

export class ModelRegistry {
  private readonly models = new Map<string, Promise<LoadedModel>>();
  /** The provider the latest session actually got ('auto' resolves to cuda or cpu). */
  executionProvider: string;

  constructor(private readonly options: ModelRegistryOptions) {
    this.executionProvider = options.provider;
  }

  /** Releases every loaded session (at shutdown). */
  async close(): Promise<void> {
    const loading = [...this.models.values()];
    this.models.clear();
    const settled = await Promise.allSettled(loading);
    for (const s of settled) if (s.status === 'fulfilled') await s.value.session.session.release();
  }

  /** Loaded versions, least recently used first. */
  async loaded(): Promise<ModelRef[]> {
    const settled = await Promise.allSettled(this.models.values());
    return settled.flatMap((s) =>
      s.status === 'fulfilled' ? [{ name: s.value.name, version: s.value.version }] : [],
    );
  }

  get(ref: ModelRef): Promise<LoadedModel> {
    const key = `${ref.name}/${ref.version}`;
    let model = this.models.get(key);
    if (model) {
      this.models.delete(key);
      this.models.set(key, model);
      return model;
    }
    model = this.load(ref.name, ref.version);
    this.models.set(key, model);
    // A failed load is not remembered: the next request tries again (the store may be back).
    model.catch(() => {
      if (this.models.get(key) === model) this.models.delete(key);
    });
    this.evict();
    return model;
  }

  private evict(): void {
    while (this.models.size > this.options.maxLoadedModels) {
      const [oldestKey, oldest] = this.models.entries().next().value as [
        string,
        Promise<LoadedModel>,
      ];
      this.models.delete(oldestKey);
      // In-flight forward passes hold their own reference; release once loaded.
      oldest.then((m) => m.session.session.release()).catch(() => undefined);
      this.options.logger.info({ model: oldestKey }, 'model evicted');
    }
  }

  private async load(name: string, version: string): Promise<LoadedModel> {
    const startMs = performance.now();
    const dir = await this.options.resolveDir(name, version);
    let config: { vocab_size: number; max_position_embeddings: number };
    let tokenizer: GsilTokenizer;
    let session: CreatedSession;
    try {
      config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
      tokenizer = GsilTokenizer.fromFile(join(dir, 'tokenizer.json'));
      session = await createSession(join(dir, 'model.onnx'), {
        executionProvider: this.options.provider,
        intraOpThreads: this.options.threads,
        warn: (message) => this.options.logger.warn({ model: `${name}/${version}` }, message),
      });
    } catch (err) {
      throw unavailable(
        `model ${name}/${version} could not be loaded from ${dir}: ${String(err)}`,
        err,
      );
    }

    this.executionProvider = session.executionProvider;

    // Per-session queue: one forward pass at a time keeps memory bounded and leaves the
    // intra-op threads to ONNX Runtime instead of oversubscribing the cores.
    let queue: Promise<unknown> = Promise.resolve();
    const forward = (pairs: { promptIds: number[]; responseIds: number[] }[]) => {
      const run = queue.then(() =>
        scoreResponses(session.session, pairs, {
          perToken: true,
          maxBatch: pairs.length,
          vocab: config.vocab_size,
        }),
      );
      queue = run.catch(() => undefined);
      return run.then((results) =>
        results.map(
          (r): PairScore => ({
            logprob: r.logprob,
            tokenCount: r.tokenCount,
            tokenLogprobs: Float32Array.from(r.tokenLogprobs ?? []),
          }),
        ),
      );
    };

    this.options.logger.info(
      {
        model: `${name}/${version}`,
        dir,
        executionProvider: session.executionProvider,
        loadMs: Math.round(performance.now() - startMs),
      },
      'model loaded',
    );
    return {
      name,
      version,
      tokenizer,
      session,
      limits: { vocabSize: config.vocab_size, maxSequenceTokens: config.max_position_embeddings },
      forward,
    };
  }
}
