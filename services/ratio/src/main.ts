// Entry point of the reward/ratio service: `gsil serve ratio` calls startRatio. It scores
// (prompt, response) pairs with ONNX Runtime under named model versions, found in a model
// root directory or pulled from the trainer's model store.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROTO_FILES, PROTO_ROOT, RatioServiceService } from '@gsil/contracts';
import {
  ConfigError,
  createLogger,
  createMetricsRegistry,
  type Logger,
  startServer,
} from '@gsil/service-kit';
import { loadRatioConfig, type RatioConfig, type RatioOptions } from './config.ts';
import { ModelRegistry } from './models.ts';
import { ResultCache } from './result-cache.ts';
import { createRatioService } from './service.ts';

export { loadRatioConfig, RatioConfigSchema } from './config.ts';

export interface RunningRatio {
  port: number;
  /** Resolves when the server has shut down (SIGTERM, SIGINT or close()). */
  closed: Promise<void>;
  close(): Promise<void>;
}

/** The folder pulled versions go to: the configured one, or a fresh temporary one. */
function cacheDirFor(config: RatioConfig): { dir: string; temporary: boolean } {
  if (config.cacheDir) return { dir: config.cacheDir, temporary: false };
  // A fresh folder per process: a test or dev root may reuse a version label for new weights.
  return { dir: mkdtempSync(join(tmpdir(), 'gsil-ratio-models-')), temporary: true };
}

/** What the embedding process may add to the configuration (tests, `gsil run`). */
export interface RatioHooks {
  /** Install SIGTERM/SIGINT handlers that close the server. Default true. */
  handleSignals?: boolean;
  /** Default: a JSON logger on stderr at GSIL_LOG_LEVEL. */
  logger?: Logger;
}

/** Starts the ratio service; resolves once it is bound and SERVING. */
export async function startRatio(
  options: RatioOptions & RatioHooks & Record<string, unknown> = {},
): Promise<RunningRatio> {
  const config = loadRatioConfig(options);
  const logger = options.logger ?? createLogger('ratio');
  const registry = createMetricsRegistry();

  if (!config.modelRoot && !config.modelStore) {
    throw new ConfigError([
      'modelRoot / modelStore: received neither; set --model-root <dir> (GSIL_RATIO_MODEL_ROOT) ' +
        'or --model-store <host:port> (GSIL_RATIO_MODEL_STORE) so model versions can be found',
    ]);
  }
  const cacheDir = cacheDirFor(config);
  const models = new ModelRegistry({
    cacheDir: cacheDir.dir,
    modelRoot: config.modelRoot,
    modelStore: config.modelStore,
    provider: config.provider,
    threads: config.threads,
    maxLoadedModels: config.maxLoadedModels,
    logger,
  });
  const implementation = createRatioService({
    models,
    cache: new ResultCache(config.cacheEntries),
    batchLimits: { maxBatchTokens: config.maxBatchTokens, maxBatchPairs: config.maxBatchPairs },
    maxPairsPerRequest: config.maxPairsPerRequest,
    logger,
    registry,
  });

  const server = await startServer({
    name: 'ratio',
    port: config.port,
    host: config.host,
    metricsPort: config.metricsPort,
    metricsRegistry: registry,
    services: [{ definition: RatioServiceService, implementation }],
    protoFiles: PROTO_FILES,
    protoRoot: PROTO_ROOT,
    logger,
    // Signals are ours to handle so that `closed` resolves however the server stops.
    handleSignals: false,
    shutdownGraceMs: config.shutdownGraceMs,
  });
  // Versions load lazily on first use, so the service is ready as soon as it is bound.
  server.setServing();

  let resolveClosed: () => void = () => undefined;
  const closed = new Promise<void>((resolve) => {
    resolveClosed = resolve;
  });
  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      await server.shutdown();
      await models.close();
      if (cacheDir.temporary) rmSync(cacheDir.dir, { recursive: true, force: true });
      resolveClosed();
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    void close();
  };
  if (options.handleSignals !== false) process.on('SIGTERM', onSignal).on('SIGINT', onSignal);
  return { port: server.port, closed, close } satisfies RunningRatio;
}
