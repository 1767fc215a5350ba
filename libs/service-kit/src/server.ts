import { Server, ServerCredentials, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { wrapImplementation } from './handlers.js';
import {
  createMetricsRegistry,
  createRpcMetrics,
  type MetricsServer,
  serveMetrics,
} from './metrics.js';

/** How long in-flight calls may run after a shutdown signal before they are cut off. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;

export interface ServiceRegistration {
  /** e.g. SamplerServiceService from @gsil/contracts. */
  definition: ServiceDefinition;
  /** Handlers in grpc-js style; unary ones may also return a promise of the response. */
  // biome-ignore lint/suspicious/noExplicitAny: generated *Server interfaces vary per service.
  implementation: any;
}

export interface StartServerOptions {
  /** Service name for logs and metrics, e.g. "sampler". */
  name: string;
  /** Port 0 picks a free one; the bound port is returned. */
  port: number;
  /** Default 0.0.0.0; use 127.0.0.1 for local runs and tests. */
  host?: string;
  services: ServiceRegistration[];
  /** .proto files (relative to protoRoot) described by server reflection; omit for none. */
  protoFiles?: string[];
  protoRoot?: string;
  logger: Logger;
  /** Prometheus /metrics port: 0 ephemeral, -1 off (default -1). */
  metricsPort?: number;
  metricsRegistry?: Registry;
  shutdownGraceMs?: number;
  /** Install SIGTERM/SIGINT handlers (default true; tests turn it off). */
  handleSignals?: boolean;
}

export interface RunningServer {
  server: Server;
  /** host:port actually bound. */
  address: string;
  port: number;
  metricsPort: number | null;
  registry: Registry;
  /** Health status of the whole server and each service becomes SERVING (e.g. after loading). */
  setServing(): void;
  setNotServing(): void;
  /**
   * Stops accepting calls, lets in-flight calls finish for up to graceMs, then cuts the
   * rest off. Resolves once the server is down; calling it again returns the same promise.
   */
  shutdown(graceMs?: number): Promise<void>;
}

function serviceNames(definition: ServiceDefinition): string[] {
  // The path is "/gsil.v1.SamplerService/Generate": the fully-qualified name sits between slashes.
  const names = new Set(Object.values(definition).map((m) => m.path.split('/')[1]));
  return [...names];
}

export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const logger = options.logger;
  const host = options.host ?? '0.0.0.0';
  const registry = options.metricsRegistry ?? createMetricsRegistry();
  const metrics = createRpcMetrics(registry);

  // 1. Services, wrapped for logging, metrics and error mapping.
  const server = new Server();
  const names: string[] = [];
  for (const { definition, implementation } of options.services) {
    server.addService(
      definition,
      wrapImplementation(definition, implementation, { logger, metrics }),
    );
    names.push(...serviceNames(definition));
  }

  // 2. Health: NOT_SERVING until the service says it is ready ("" is the whole server).
  const health = new HealthImplementation(
    Object.fromEntries(['', ...names].map((n) => [n, 'NOT_SERVING' as const])),
  );
  health.addToServer(server);
  const setAll = (status: 'SERVING' | 'NOT_SERVING') => {
    for (const n of ['', ...names]) health.setStatus(n, status);
    logger.info({ status }, 'health status changed');
  };

  // 3. Reflection over our contracts, so grpcurl and other-language clients can explore.
  if (options.protoFiles?.length) {
    const packageDefinition = loadSync(options.protoFiles, {
      includeDirs: options.protoRoot ? [options.protoRoot] : [],
    });
    new ReflectionService(packageDefinition).addToServer(server);
  }

  // 4. Bind, then metrics.
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    );
  });
  let metricsServer: MetricsServer | null = null;
  try {
    metricsServer = await serveMetrics(registry, options.metricsPort ?? -1, host);
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  // Where this machine's clients reach it; the log says what was bound.
  const address = `${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`;
  logger.info(
    { address: `${host}:${port}`, metricsPort: metricsServer?.port ?? null, services: names },
    'listening',
  );

  // 5. Graceful shutdown.
  let shutdownPromise: Promise<void> | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'shutting down');
    void shutdown();
  };
  const shutdown = (graceMs = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS) => {
    shutdownPromise ??= (async () => {
      process.off('SIGTERM', onSignal).off('SIGINT', onSignal);
      setAll('NOT_SERVING');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          logger.warn({ graceMs }, 'grace period over; cancelling remaining calls');
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await metricsServer?.close();
      logger.info('stopped');
    })();
    return shutdownPromise;
  };
  if (options.handleSignals ?? true) process.on('SIGTERM', onSignal).on('SIGINT', onSignal);

  return {
    server,
    address,
    port,
    metricsPort: metricsServer?.port ?? null,
    registry,
    setServing: () => setAll('SERVING'),
    setNotServing: () => setAll('NOT_SERVING'),
    shutdown,
  };
}
