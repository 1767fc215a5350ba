import {
  credentials,
  type GrpcObject,
  loadPackageDefinition,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';

/** Time between health polls while waiting for a server. */
const POLL_INTERVAL_MS = 50;

let healthClientConstructor: ServiceClientConstructor | null = null;

function healthClient(): ServiceClientConstructor {
  if (!healthClientConstructor) {
    const definition = loadSync(protoPath, { keepCase: true, enums: String, defaults: true });
    const root = loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: GrpcObject } };
    };
    healthClientConstructor = root.grpc.health.v1.Health as ServiceClientConstructor;
  }
  return healthClientConstructor;
}

export type HealthStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

/** One grpc.health.v1 Check; rejects when the server cannot be reached. */
export function checkHealth(
  address: string,
  service = '',
  timeoutMs = 1000,
): Promise<HealthStatus> {
  const Client = healthClient();
  const client = new Client(address, credentials.createInsecure());
  return new Promise<HealthStatus>((resolve, reject) => {
    client.check(
      { service },
      { deadline: Date.now() + timeoutMs },
      (err: Error | null, res: { status: HealthStatus }) => {
        client.close();
        if (err) reject(err);
        else resolve(res.status);
      },
    );
  });
}

/**
 * Polls the health service until it reports SERVING, instead of sleeping and hoping the
 * port is open. Rejects after timeoutMs with the last status or error seen, or with the
 * signal's reason once it aborts (the caller knows the server is gone).
 */
export async function waitForServing(
  address: string,
  timeoutMs: number,
  service = '',
  signal?: AbortSignal,
): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadlineMs) {
    signal?.throwIfAborted();
    try {
      const status = await checkHealth(address, service, Math.min(1000, deadlineMs - Date.now()));
      if (status === 'SERVING') return;
      last = `status ${status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`${address} did not become SERVING within ${timeoutMs} ms (last: ${last})`);
}
