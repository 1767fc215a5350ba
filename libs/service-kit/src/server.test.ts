import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { credentials, loadPackageDefinition, type ServiceError, status } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import {
  PROTO_FILES,
  PROTO_ROOT,
  Run,
  RunEvent,
  TrainerServiceClient,
  TrainerServiceService,
} from '@gsil/contracts';
import { invalidArgument } from './errors.js';
import { checkHealth, waitForServing } from './health-client.js';
import { createLogger } from './logger.js';
import { type RunningServer, startServer } from './server.js';

const logger = createLogger('test', 'silent');
const EVENT_GAP_MS = 60;

/** A TrainerService with two real handlers; every other method is UNIMPLEMENTED. */
const trainer = {
  getRun: async (call: { request: { runId: string } }) => {
    if (call.request.runId === '') throw invalidArgument('run_id', 'is required');
    if (call.request.runId === 'boom') throw new Error('disk on fire');
    return Run.fromPartial({ runId: call.request.runId, state: 2 });
  },
  // Three events EVENT_GAP_MS apart: long enough for a shutdown to arrive mid-stream.
  watchRun: async (call: { request: { runId: string }; write(e: RunEvent): void }) => {
    for (let seq = 0; seq < 3; seq++) {
      await new Promise((resolve) => setTimeout(resolve, EVENT_GAP_MS));
      call.write(RunEvent.fromPartial({ runId: call.request.runId, seq }));
    }
  },
};

function reflectionServices(address: string): Promise<string[]> {
  const reflectionProto = new URL(
    '../../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto',
    import.meta.url,
  ).pathname;
  // biome-ignore lint/suspicious/noExplicitAny: dynamic proto-loader client.
  const root = loadPackageDefinition(loadSync(reflectionProto, { keepCase: true })) as any;
  const client = new root.grpc.reflection.v1.ServerReflection(
    address,
    credentials.createInsecure(),
  );
  return new Promise((resolve, reject) => {
    const stream = client.ServerReflectionInfo();
    stream.on('data', (res: { list_services_response: { service: { name: string }[] } }) => {
      resolve(res.list_services_response.service.map((s) => s.name).sort());
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write({ list_services: '*' });
  });
}

describe('startServer', () => {
  let running: RunningServer;
  let client: InstanceType<typeof TrainerServiceClient>;

  beforeAll(async () => {
    running = await startServer({
      name: 'test',
      port: 0,
      host: '127.0.0.1',
      services: [{ definition: TrainerServiceService, implementation: trainer }],
      protoFiles: PROTO_FILES,
      protoRoot: PROTO_ROOT,
      logger,
      metricsPort: 0,
      handleSignals: false,
    });
    client = new TrainerServiceClient(running.address, credentials.createInsecure());
  });
  afterAll(async () => {
    client.close();
    await running.shutdown(100);
  });

  test('binds a free port and reports NOT_SERVING until setServing()', async () => {
    expect(running.port).toBeGreaterThan(0);
    expect(await checkHealth(running.address)).toBe('NOT_SERVING');
    expect(await checkHealth(running.address, 'gsil.v1.TrainerService')).toBe('NOT_SERVING');
    running.setServing();
    await waitForServing(running.address, 2000);
    expect(await checkHealth(running.address, 'gsil.v1.TrainerService')).toBe('SERVING');
  });

  test('reflection lists our services', async () => {
    const names = await reflectionServices(running.address);
    expect(names).toContain('gsil.v1.SamplerService');
    expect(names).toContain('gsil.v1.RatioService');
    expect(names).toContain('gsil.v1.TrainerService');
  });

  test('a thrown invalidArgument arrives as INVALID_ARGUMENT with its message', async () => {
    const err = await new Promise<ServiceError>((resolve) =>
      client.getRun({ runId: '' }, (e) => resolve(e as ServiceError)),
    );
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe('run_id is required');
  });

  test('an unknown error arrives as INTERNAL with the cause message kept', async () => {
    const err = await new Promise<ServiceError>((resolve) =>
      client.getRun({ runId: 'boom' }, (e) => resolve(e as ServiceError)),
    );
    expect(err.code).toBe(status.INTERNAL);
    expect(err.details).toBe('internal error: disk on fire');
  });

  test('unimplemented methods answer UNIMPLEMENTED; async unary handlers answer', async () => {
    const err = await new Promise<ServiceError>((resolve) =>
      client.listRuns({}, (e) => resolve(e as ServiceError)),
    );
    expect(err.code).toBe(status.UNIMPLEMENTED);
    const run = await new Promise((resolve, reject) =>
      client.getRun({ runId: 'r1' }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(run).toMatchObject({ runId: 'r1', state: 2 });
  });

  test('/metrics serves Prometheus text with rpc counters by method and code', async () => {
    const res = await fetch(`http://127.0.0.1:${running.metricsPort}/metrics`);
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('# TYPE gsil_rpc_calls_total counter');
    expect(text).toContain(
      'gsil_rpc_calls_total{method="/gsil.v1.TrainerService/GetRun",code="INVALID_ARGUMENT"} 1',
    );
    expect(text).toContain('gsil_process_cpu_user_seconds_total');
    expect((await fetch(`http://127.0.0.1:${running.metricsPort}/other`)).status).toBe(404);
  });
});

describe('graceful shutdown', () => {
  test('lets an in-flight stream finish, then refuses new calls', async () => {
    const running = await startServer({
      name: 'test',
      port: 0,
      host: '127.0.0.1',
      services: [{ definition: TrainerServiceService, implementation: trainer }],
      logger,
      handleSignals: false,
    });
    const client = new TrainerServiceClient(running.address, credentials.createInsecure());
    const seqs: number[] = [];
    const ended = new Promise<number>((resolve) => {
      const stream = client.watchRun({ runId: 'r' });
      stream.on('data', (event: RunEvent) => {
        seqs.push(event.seq);
        // Shut down as soon as the stream is known to be in flight.
        if (event.seq === 0) void running.shutdown(5000);
      });
      stream.on('status', (s) => resolve(s.code));
      stream.on('error', () => {});
    });
    expect(await ended).toBe(status.OK);
    expect(seqs).toEqual([0, 1, 2]);
    await running.shutdown();
    await expect(checkHealth(running.address, '', 300)).rejects.toThrow();
    client.close();
  });

  test('cuts off calls still running after the grace period', async () => {
    const slow = { watchRun: () => new Promise(() => {}) };
    const running = await startServer({
      name: 'test',
      port: 0,
      host: '127.0.0.1',
      services: [{ definition: TrainerServiceService, implementation: slow }],
      logger,
      handleSignals: false,
    });
    const client = new TrainerServiceClient(running.address, credentials.createInsecure());
    const stream = client.watchRun({ runId: 'r' });
    const code = new Promise<number>((resolve) => {
      stream.on('status', (s) => resolve(s.code));
      stream.on('error', () => {});
    });
    stream.on('metadata', () => {});
    await new Promise((resolve) => setTimeout(resolve, 50));
    const startMs = performance.now();
    await running.shutdown(100);
    expect(performance.now() - startMs).toBeLessThan(1000);
    expect([status.CANCELLED, status.UNAVAILABLE, status.INTERNAL]).toContain(await code);
    client.close();
  });
});
