// Entry point of the trainer service: `gsil serve trainer --port N` calls startTrainer.

import { join, resolve } from 'node:path';
import { PROTO_FILES, PROTO_ROOT, TrainerServiceService } from '@gsil/contracts';
import { createLogger, startServer } from '@gsil/service-kit';
import { ModelStore } from './model-store.ts';
import { executeRun } from './pipeline.ts';
import { RunManager } from './run-manager.ts';
import { loadTrainerServerConfig, type TrainerServerConfigInput } from './server-config.ts';
import { trainerServiceImplementation } from './trainer-service.ts';

export interface RunningTrainer {
  port: number;
  address: string;
  runs: RunManager;
  store: ModelStore;
  /** Cancels running runs (they resume from their last checkpoint on restart), then stops. */
  close(): Promise<void>;
  /** Resolves once the server has shut down (close(), SIGTERM or SIGINT). */
  closed: Promise<void>;
}

export async function startTrainer(
  configInput: TrainerServerConfigInput | Record<string, unknown> = {},
  argv: string[] = [],
): Promise<RunningTrainer> {
  const config = loadTrainerServerConfig(configInput, argv);
  const logger = createLogger('trainer', config.logLevel || undefined);
  const runsRoot = resolve(config.runsDir);
  const store = new ModelStore(resolve(config.storeDir || join(runsRoot, 'models')));
  const runs = new RunManager(runsRoot, (context) => executeRun(context, store), logger);

  const server = await startServer({
    name: 'trainer',
    port: config.port,
    host: config.host,
    services: [
      {
        definition: TrainerServiceService,
        implementation: trainerServiceImplementation(runs, store),
      },
    ],
    protoFiles: PROTO_FILES,
    protoRoot: PROTO_ROOT,
    logger,
    metricsPort: config.metricsPort,
    shutdownGraceMs: config.shutdownGraceMs,
    // Our own handler below also cancels running runs before the server stops.
    handleSignals: false,
  });
  server.setServing();
  logger.info({ runsRoot, storeRoot: store.root }, 'trainer ready');

  let markClosed: () => void = () => {};
  const closed = new Promise<void>((resolve) => {
    markClosed = resolve;
  });
  let closing: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    void close();
  };
  const close = () => {
    closing ??= (async () => {
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      await runs.close();
      await server.shutdown();
      markClosed();
    })();
    return closing;
  };
  if (config.handleSignals) process.on('SIGTERM', onSignal).on('SIGINT', onSignal);

  return {
    port: server.port,
    address: server.address,
    runs,
    store,
    close,
    closed,
  };
}
