import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';

/** Per-call metrics of a gRPC server, labelled by method and status code name. */
export interface RpcMetrics {
  calls: Counter<'method' | 'code'>;
  latencySeconds: Histogram<'method' | 'code'>;
}

/** One registry per process (or per server in tests), with Node's default metrics. */
export function createMetricsRegistry(prefix = 'gsil_'): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix });
  return registry;
}

export function createRpcMetrics(registry: Registry, prefix = 'gsil_'): RpcMetrics {
  return {
    calls: new Counter({
      name: `${prefix}rpc_calls_total`,
      help: 'Completed gRPC calls by method and status code.',
      labelNames: ['method', 'code'],
      registers: [registry],
    }),
    latencySeconds: new Histogram({
      name: `${prefix}rpc_duration_seconds`,
      help: 'gRPC call duration from arrival to status, in seconds.',
      labelNames: ['method', 'code'],
      // 1 ms to ~2 min: unary scoring calls are fast, generation streams are long.
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 30, 120],
      registers: [registry],
    }),
  };
}

export function recordRpc(metrics: RpcMetrics, method: string, code: string, durationMs: number) {
  metrics.calls.inc({ method, code });
  metrics.latencySeconds.observe({ method, code }, durationMs / 1000);
}

export interface MetricsServer {
  /** The bound port (the real one when 0 was asked for). */
  port: number;
  close(): Promise<void>;
}

/**
 * Serves `GET /metrics` in the Prometheus text format. Port 0 picks a free port; -1 means
 * metrics are off and null is returned.
 */
export async function serveMetrics(
  registry: Registry,
  port: number,
  host = '0.0.0.0',
): Promise<MetricsServer | null> {
  if (port < 0) return null;
  const server: Server = createServer(async (req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    try {
      const body = await registry.metrics();
      res.writeHead(200, { 'content-type': registry.contentType }).end(body);
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
