// The model versions this replica has loaded: an ONNX Runtime session, the tokenizer and
// the limits of each (name, version), loaded on the first request that names it and
// evicted least-recently-used. Concurrent requests for the same version share one load.

import type { ModelRef } from '@gsil/contracts';
import {
  type CreatedSession,
  createSession,
  type ExecutionProviderChoice,
  scoreResponses,
} from '@gsil/inference';
import {
  DirectoryModelFetcher,
  decoderOnnxFile,
  GrpcModelFetcher,
  ModelCache,
  type ModelFetcher,
  readServingConfig,
  type ServingConfig,
} from '@gsil/model-store';
import { GsilError, Status, unavailable } from '@gsil/service-kit';
import { GsilTokenizer } from '@gsil/tokenizer';
import type { Logger } from 'pino';
import type { PairLimits } from './pairs.ts';
import type { PairScore } from './result-cache.ts';
import type { ScoringModel } from './scorer.ts';

export interface LoadedModel extends ScoringModel {
  tokenizer: GsilTokenizer;
  limits: PairLimits;
  session: CreatedSession;
  /**
   * Holds the session open until the returned function is called: a version evicted while
   * a request still scores with it is released only after that request ends.
   */
  lease(): () => void;
  /** Called by the cache on eviction; releases now or when the last lease ends. */
  unload(): Promise<void>;
}

export interface ModelRegistryOptions {
  /** Local folder of pulled versions, <cacheDir>/<name>/<version>/. */
  cacheDir: string;
  /** A shared directory of versions to copy from, tried first. */
  modelRoot?: string;
  /** A trainer host:port whose ExportModel stream serves versions. */
  modelStore?: string;
  provider: ExecutionProviderChoice;
  /** ONNX Runtime intra-op threads; 0 lets it choose. */
  threads: number;
  maxLoadedModels: number;
  logger: Logger;
}

// Names become folder names: the model store's alphabet (libs/model-store layout.ts).
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

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
        `${field}.${key}: ${JSON.stringify(value)} is not a valid name ` +
          `(letters, digits, '.', '_', '-', starting with a letter or digit)`,
      );
    }
  }
  return { name: (ref as ModelRef).name, version: (ref as ModelRef).version };
}

/**
 * Loaded versions over libs/model-store's ModelCache: a version missing locally is copied
 * from the model root or pulled from the trainer (sha256-checked; unknown everywhere is
 * NOT_FOUND, a failing source UNAVAILABLE), then loaded; concurrent requests share one
 * pull, and the least recently used version is unloaded beyond maxLoadedModels.
 */
export class ModelRegistry {
  private readonly cache: ModelCache<LoadedModel>;
  /** The provider the latest session actually got ('auto' resolves to cuda or cpu). */
  executionProvider: string;

  constructor(private readonly options: ModelRegistryOptions) {
    this.executionProvider = options.provider;
    const fetchers: ModelFetcher[] = [];
    if (options.modelRoot) fetchers.push(new DirectoryModelFetcher(options.modelRoot));
    if (options.modelStore) fetchers.push(new GrpcModelFetcher(options.modelStore));
    this.cache = new ModelCache<LoadedModel>({
      root: options.cacheDir,
      maxResident: options.maxLoadedModels,
      fetchers,
      load: (dir, ref) => this.load(dir, ref.name, ref.version),
      unload: (model) => model.unload(),
      logger: options.logger,
    });
  }

  /** Loaded versions, least recently used first. */
  loaded(): ModelRef[] {
    return this.cache.residentRefs();
  }

  get(ref: ModelRef): Promise<LoadedModel> {
    return this.cache.get(ref);
  }

  /** Releases every loaded session (at shutdown). */
  close(): Promise<void> {
    return this.cache.close();
  }

  private async load(dir: string, name: string, version: string): Promise<LoadedModel> {
    const startMs = performance.now();
    let config: ServingConfig;
    let tokenizer: GsilTokenizer;
    let session: CreatedSession;
    try {
      config = readServingConfig(dir);
      tokenizer = GsilTokenizer.fromModelDir(dir);
      session = await createSession(decoderOnnxFile(dir), {
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
          vocab: config.vocabSize,
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

    let leases = 0;
    let evicted = false;
    let released: Promise<void> | null = null;
    const release = () => {
      released ??= session.session.release();
      return released;
    };
    const lease = () => {
      if (evicted) throw unavailable(`model ${name}/${version} was just unloaded; retry`);
      leases++;
      let ended = false;
      return () => {
        if (ended) return;
        ended = true;
        leases--;
        if (evicted && leases === 0) void release();
      };
    };
    const unload = async () => {
      evicted = true;
      if (leases === 0) await release();
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
      limits: { vocabSize: config.vocabSize, maxSequenceTokens: config.contextLength },
      forward,
      lease,
      unload,
    };
  }
}
