// Starts a sampler replica: `gsil serve sampler` calls startSampler with the CLI's flags;
// GSIL_SAMPLER_* environment variables fill in what the flags leave out.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROTO_FILES, PROTO_ROOT, SamplerServiceService } from '@gsil/contracts';
import {
  DirectoryModelFetcher,
  GrpcModelFetcher,
  ModelCache,
  type ModelFetcher,
  refLabel,
} from '@gsil/model-store';
import {
  ConfigError,
  createLogger,
  GsilError,
  type Logger,
  Status,
  startServer,
} from '@gsil/service-kit';
import { Counter, Gauge } from 'prom-client';
import { Admission } from './admission.ts';
import { loadSamplerConfig, type SamplerOptions } from './config.ts';
import { type LoadedModel, loadModelDir } from './loaded-model.ts';
import { selfCheck } from './self-check.ts';
import { type SamplerState, samplerImplementation } from './service.ts';

export type { SamplerOptions } from './config.ts';

/** The load gauge an autoscaler can follow (deploy/k8s/overlays/gpu scales on it). */
export const QUEUED_SEQUENCES_METRIC = 'gsil_sampler_queued_sequences';

export interface RunningSampler {
  /** The bound gRPC port (the real one when 0 was asked for). */
  port: number;
  /** The bound Prometheus port, or null when metrics are off. */
  metricsPort: number | null;
  /** Resolves once the server has shut down (SIGTERM, SIGINT or close()). */
  closed: Promise<void>;
  close(): Promise<void>;
}

export interface StartSamplerExtras {
  /** Environment to read GSIL_SAMPLER_* from (default process.env). */
  env?: Record<string, string | undefined>;
  /** Install SIGTERM/SIGINT handlers (default true; tests turn it off). */
  handleSignals?: boolean;
  /** Logger to use (default: JSON to stderr, level from GSIL_LOG_LEVEL). */
  logger?: Logger;
  /**
   * Awaited once the port is bound, before the self-check: the replica answers health
   * checks with NOT_SERVING meanwhile (lets a supervisor or a test observe that phase).
   */
  onListening?: (port: number) => Promise<void> | void;
}

export async function startSampler(
  options: SamplerOptions = {},
  extras: StartSamplerExtras = {},
): Promise<RunningSampler> {
  // 1. Configuration: a bad value fails here, naming the field.
  const config = loadSamplerConfig(options, extras.env);
  const logger = extras.logger ?? createLogger('sampler');
  const warn = (message: string) => logger.warn(message);

  // 2. The gRPC server, NOT_SERVING until the self-check passed.
  const fetchers: ModelFetcher[] = [];
  if (config.modelRoot) fetchers.push(new DirectoryModelFetcher(config.modelRoot));
  if (config.modelStore) fetchers.push(new GrpcModelFetcher(config.modelStore));
  if (fetchers.length === 0) {
    // A configured cache may hold versions pulled earlier; without one nothing could serve.
    if (!config.cacheDir) {
      throw new ConfigError([
        'modelRoot / modelStore: received neither; set --model-root <dir> ' +
          '(GSIL_SAMPLER_MODEL_ROOT) or --model-store <host:port> (GSIL_SAMPLER_MODEL_STORE) ' +
          'so model versions can be found',
      ]);
    }
    logger.warn('neither modelRoot nor modelStore is set: only versions already in cacheDir serve');
  }
  // Without a configured cache, a fresh folder per process: run ids (and so model names)
  // can repeat across runs on one machine, and two replicas must not share a folder.
  const temporaryCache = config.cacheDir ? undefined : mkdtempSync(join(tmpdir(), 'gsil-sampler-'));
  const models = new ModelCache<LoadedModel>({
    root: config.cacheDir ?? temporaryCache!,
    maxResident: config.maxResidentModels,
    fetchers,
    load: (dir, ref) =>
      loadModelDir(dir, {
        // The self-check resolved 'auto' once; every model then opens on that provider.
        provider: state.executionProvider === 'unknown' ? config.provider : state.executionProvider,
        threads: config.threads,
        decodeWorkers: config.decodeWorkers,
        maxBatchSize: config.maxBatchSize,
        warn,
        onTokens: (count) => generatedTokens.inc(count),
      }).catch((err) => {
        throw new GsilError(
          Status.FAILED_PRECONDITION,
          `model ${refLabel(ref)} in ${dir} could not be loaded: ${(err as Error).message}`,
          err,
        );
      }),
    unload: (model) => model.unload(),
    logger,
  });
  const state: SamplerState = {
    config,
    models,
    admission: new Admission(config.maxQueuedSequences),
    executionProvider: 'unknown',
    logger,
  };
  const running = await startServer({
    name: 'sampler',
    port: config.port,
    host: config.host,
    services: [{ definition: SamplerServiceService, implementation: samplerImplementation(state) }],
    protoFiles: PROTO_FILES,
    protoRoot: PROTO_ROOT,
    logger,
    metricsPort: config.metricsPort,
    // Signals are handled below, so that `closed` also resolves on SIGTERM.
    handleSignals: false,
    shutdownGraceMs: config.shutdownGraceMs,
  });
  const generatedTokens = new Counter({
    name: 'gsil_sampler_generated_tokens_total',
    help: 'Tokens generated by the decoder, counted per pass, including cancelled work.',
    registers: [running.registry],
  });
  // For autoscaling on load rather than CPU: sequences waiting or decoding, against the limit.
  new Gauge({
    name: QUEUED_SEQUENCES_METRIC,
    help: 'Sequences admitted and not yet finished (decoding plus waiting for a batch slot).',
    registers: [running.registry],
    collect() {
      this.set(state.admission.queuedSequences);
    },
  });
  new Gauge({
    name: 'gsil_sampler_queued_sequences_limit',
    help: 'Sequences this replica admits before answering RESOURCE_EXHAUSTED (maxQueuedSequences).',
    registers: [running.registry],
  }).set(config.maxQueuedSequences);
  new Gauge({
    name: 'gsil_sampler_loaded_models',
    help: 'Model versions loaded and ready to generate.',
    registers: [running.registry],
    collect() {
      this.set(models.residentRefs().length);
    },
  });

  // 3. Self-check and preloads, then SERVING. A failure stops what started and says which.
  const startStep = async (step: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (err) {
      await running.shutdown(0);
      await models.close();
      if (temporaryCache) rmSync(temporaryCache, { recursive: true, force: true });
      throw new Error(`sampler ${step} failed: ${(err as Error).message}`, { cause: err });
    }
  };
  await startStep('self-check', async () => {
    await extras.onListening?.(running.port);
    state.executionProvider = await selfCheck(config.provider, config.threads, warn);
  });
  await startStep('preload', async () => {
    for (const label of config.preload) await warmUp(models, label, logger);
  });
  running.setServing();
  logger.info({ executionProvider: state.executionProvider, config }, 'sampler ready');

  // 4. Shutdown: close() and SIGTERM/SIGINT take the same path, so `closed` sees both.
  let resolveClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let shuttingDown: Promise<void> | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    void close();
  };
  const close = () => {
    shuttingDown ??= (async () => {
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      await running.shutdown();
      await models.close();
      if (temporaryCache) rmSync(temporaryCache, { recursive: true, force: true });
      resolveClosed();
    })();
    return shuttingDown;
  };
  if (extras.handleSignals ?? true) process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  return { port: running.port, metricsPort: running.metricsPort, closed, close };
}

/** Pulls and loads `name/version`, then generates one greedy token from [BOS] with it. */
async function warmUp(models: ModelCache<LoadedModel>, label: string, logger: Logger) {
  const [name, version] = label.split('/');
  const startMs = performance.now();
  const model = await models.get({ name, version });
  const endUse = model.use();
  try {
    const prompt = [model.tokenizer.bosId];
    for await (const completion of model.batcher.generate([{ promptIds: prompt }], {
      temperature: 0,
      maxNewTokens: 1,
    })) {
      if (completion.tokenIds.length !== 1) {
        throw new Error(`${label}: a one-token generation gave ${completion.tokenIds.length}`);
      }
    }
  } finally {
    endUse();
  }
  logger.info({ model: label, ms: Math.round(performance.now() - startMs) }, 'preloaded');
}
