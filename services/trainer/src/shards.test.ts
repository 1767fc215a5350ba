import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import type { ServerWritableStream } from '@grpc/grpc-js';
import {
  type Completion,
  FinishReason,
  type GenerateRequest,
  SamplerServiceService,
} from '@gsil/contracts';
import {
  createLogger,
  GsilError,
  type RunningServer,
  Status,
  startServer,
  unavailable,
} from '@gsil/service-kit';
import { SamplerReplicas } from './remote.ts';
import { chunk, runShards } from './shards.ts';

// Real gRPC sampler replicas, in process: a healthy one that answers each prompt with a
// fixed completion (its own token ids reversed), and one that is always UNAVAILABLE, as a
// replica being drained would be.
const served: Array<{ replica: string; requestId: string }> = [];

function samplerReplica(name: string, healthy: boolean) {
  return {
    generate: async (call: ServerWritableStream<GenerateRequest, Completion>) => {
      served.push({ replica: name, requestId: call.request.requestId });
      if (!healthy) throw unavailable(`replica ${name} is draining`);
      call.request.prompts.forEach((prompt, promptIndex) => {
        const ids = prompt.value?.$case === 'tokens' ? prompt.value.value.ids : [];
        call.write({
          promptIndex,
          sampleIndex: 0,
          tokenIds: [...ids].reverse(),
          text: '',
          finishReason: FinishReason.FINISH_REASON_STOP,
          tokenLogprobs: ids.map(() => -1),
          promptTokenCount: ids.length,
        });
      });
    },
    getInfo: () => Promise.reject(new GsilError(Status.UNIMPLEMENTED, 'not in this test')),
  };
}

const servers: RunningServer[] = [];
let replicas: SamplerReplicas;

beforeAll(async () => {
  const logger = createLogger('test-sampler', 'silent');
  for (const [name, healthy] of [
    ['good', true],
    ['down', false],
  ] as const) {
    servers.push(
      await startServer({
        name,
        port: 0,
        host: '127.0.0.1',
        services: [
          { definition: SamplerServiceService, implementation: samplerReplica(name, healthy) },
        ],
        logger,
        handleSignals: false,
      }),
    );
  }
  replicas = new SamplerReplicas(servers.map((s) => s.address));
});

afterAll(async () => {
  replicas.close();
  await Promise.all(servers.map((s) => s.shutdown(0)));
});

describe('runShards over real gRPC sampler replicas', () => {
  test('retries shards that hit the UNAVAILABLE replica on the next one', async () => {
    served.length = 0;
    const prompts = [
      [1, 5],
      [1, 6],
      [1, 7],
      [1, 8],
      [1, 9],
    ];
    const shards = chunk(prompts, 2);
    const arrived: number[] = [];
    const results = await runShards(
      shards,
      { replicaCount: 2, maxInFlight: 2, attempts: 2 },
      (shard, { shardIndex, replicaIndex, signal }) =>
        replicas.generate(
          replicaIndex,
          {
            requestId: `shard-${shardIndex}`,
            model: { name: 'm', version: 'base' },
            prompts: shard.map((ids) => ({ value: { $case: 'tokens', value: { ids } } })),
            sampling: undefined,
          },
          { timeoutMs: 5000, signal },
        ),
      (_, shardIndex) => {
        arrived.push(shardIndex);
      },
    );

    // Results come back in shard order, each completion the reversed prompt.
    expect(results.map((completions) => completions.map((c) => c.tokenIds))).toEqual([
      [
        [5, 1],
        [6, 1],
      ],
      [
        [7, 1],
        [8, 1],
      ],
      [[9, 1]],
    ]);
    expect(arrived.sort()).toEqual([0, 1, 2]);
    // Every shard was finally served by the healthy replica; the ones that first met the
    // draining replica were retried with the same request id.
    const good = served.filter((s) => s.replica === 'good').map((s) => s.requestId);
    const down = served.filter((s) => s.replica === 'down').map((s) => s.requestId);
    expect(good.sort()).toEqual(['shard-0', 'shard-1', 'shard-2']);
    expect(down.length).toBeGreaterThan(0);
    for (const id of down) expect(good).toContain(id);
  });

  test('fails with the replica status once attempts are spent', async () => {
    const attempt = runShards(
      [[[1, 2]]],
      { replicaCount: 1, maxInFlight: 1, attempts: 2 },
      (shard, { signal }) =>
        replicas.generate(
          1,
          {
            requestId: 'only',
            model: { name: 'm', version: 'base' },
            prompts: shard.map((ids) => ({ value: { $case: 'tokens', value: { ids } } })),
            sampling: undefined,
          },
          { timeoutMs: 5000, signal },
        ),
    );
    await expect(attempt).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  });

  test('an aborted run cancels its calls with CANCELLED', async () => {
    const controller = new AbortController();
    controller.abort(new Error('run cancelled by CancelRun'));
    const attempt = runShards(
      [[[1, 2]]],
      { replicaCount: 1, maxInFlight: 1, attempts: 3, signal: controller.signal },
      (shard, { signal }) =>
        replicas.generate(
          0,
          {
            requestId: 'x',
            model: { name: 'm', version: 'base' },
            prompts: shard.map((ids) => ({ value: { $case: 'tokens', value: { ids } } })),
            sampling: undefined,
          },
          { timeoutMs: 5000, signal },
        ),
    );
    await expect(attempt).rejects.toMatchObject({ code: Status.CANCELLED });
  });
});
