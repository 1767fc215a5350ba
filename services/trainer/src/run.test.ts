// End to end on real processes: the trainer in process, a sampler and a ratio replica as
// `gsil serve` child processes that pull versions from the trainer's ExportModel. A tiny
// run (stories260K, 4 MAWPS prompts, SFT then 2 GSIL iterations) is run once straight
// through and once interrupted after iteration 1 and resumed by a new trainer on the same
// folder; the final weights must be identical.

import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, status } from '@grpc/grpc-js';
import { type Run, type RunEvent, RunState, TrainerServiceClient } from '@gsil/contracts';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '@gsil/service-kit';
import { type RunningTrainer, startTrainer } from './main.ts';

const CLI_MAIN = new URL('../../cli/src/main.ts', import.meta.url).pathname;
const scratch = mkdtempSync(join(tmpdir(), 'gsil-trainer-e2e-'));
const services: ServiceProcess[] = [];

async function serve(name: string, args: string[]): Promise<string> {
  const service = await startServiceProcess({
    name,
    command: [process.execPath, CLI_MAIN],
    args,
    readyFile: join(scratch, `${name}.port`),
    spawnOptions: {
      stdio: ['ignore', 'ignore', 'inherit'],
      // The sampler's version cache defaults to a shared temp folder; versions are
      // immutable by name, so runs named alike in earlier test runs would be served stale.
      env: {
        ...process.env,
        GSIL_LOG_LEVEL: 'warn',
        GSIL_SAMPLER_CACHE_DIR: join(scratch, 'sampler-cache'),
      },
    },
    timeoutMs: 60_000,
  });
  services.push(service);
  return service.address;
}

let trainer: RunningTrainer;
let samplerAddress: string;
let ratioAddress: string;
const runsDir = join(scratch, 'runs');

beforeAll(async () => {
  trainer = await startTrainer({
    port: 0,
    host: '127.0.0.1',
    runsDir,
    handleSignals: false,
    logLevel: 'warn',
  });
  samplerAddress = await serve('sampler', ['--model-store', trainer.address]);
  // The ratio replica reads the store folder as a shared volume would be.
  ratioAddress = await serve('ratio', ['--model-root', trainer.store.root]);
}, 120_000);

afterAll(async () => {
  await Promise.all(services.map((service) => stopServiceProcess(service)));
  await trainer?.close();
});

function tinyConfig() {
  return JSON.stringify({
    task: { name: 'mawps', trainLimit: 4 },
    stages: {
      sft: { epochs: 1, learningRate: 3e-3, batchSize: 4 },
      gsil: {
        iterations: 2,
        loss: 'bernoulli',
        alpha: 0.1,
        beta: 0,
        sampling: { maxNewTokens: 8 },
      },
    },
    optimizer: { name: 'adamw', learningRate: 1e-3, batchSize: 4 },
    eval: { maxNewTokens: 8, limit: 4 },
    samplerAddresses: [samplerAddress],
    ratioAddresses: [ratioAddress],
    shardSize: 4,
    maxShardsInFlight: 2,
    backend: 'wasm',
  });
}

describe('a tiny run over real sampler and ratio processes', () => {
  test('runs SFT and 2 GSIL iterations, emitting metrics and publishing versions', async () => {
    const client = new TrainerServiceClient(trainer.address, credentials.createInsecure());
    const run = await new Promise<{ runId: string }>((resolve, reject) =>
      client.startRun({ runId: 'straight', configJson: tinyConfig() }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
    expect(run.runId).toBe('straight');
    const events: RunEvent[] = [];
    await new Promise<void>((resolve, reject) => {
      const stream = client.watchRun({ runId: 'straight' });
      stream.on('data', (e: RunEvent) => events.push(e));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const last = events.at(-1)?.event;
    expect(last?.$case === 'run' && last.value.error).toBe('');
    expect(last?.$case === 'run' && last.value.state).toBe(RunState.RUN_STATE_SUCCEEDED);
    expect(last?.$case === 'run' && last.value.backend).toBe('wasm');
    const evals = events.flatMap((e) => (e.event?.$case === 'eval' ? [e.event.value] : []));
    expect(evals.map((e) => e.model?.version)).toEqual(['sft', 'it1', 'it2']);
    const steps = events.flatMap((e) => (e.event?.$case === 'step' ? [e.event.value] : []));
    // 4 pairs in one batch of 4: one step each in SFT, it1, it2; [global, in stage, of stage].
    expect(steps.map((s) => [s.step, s.stageStep, s.stageSteps])).toEqual([
      [1, 1, 1],
      [2, 1, 1],
      [3, 1, 1],
    ]);
    expect(trainer.store.list().map((m) => m.version)).toEqual(['base', 'it1', 'it2', 'sft']);
    client.close();
  }, 300_000);

  test('a run interrupted after iteration 1 and resumed by a new trainer ends with the same weights', async () => {
    const port = trainer.port;
    let client = new TrainerServiceClient(trainer.address, credentials.createInsecure());
    await new Promise((resolve, reject) =>
      client.startRun({ runId: 'resumed', configJson: tinyConfig() }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
    // Stop the whole trainer as soon as iteration 1 is published (as a crash would).
    await new Promise<void>((resolve, reject) => {
      const stream = client.watchRun({ runId: 'resumed' });
      stream.on('data', (e: RunEvent) => {
        if (
          e.event?.$case === 'phase' &&
          e.event.value.phase === 'publish' &&
          e.event.value.iteration === 1
        ) {
          stream.cancel();
          resolve();
        }
      });
      stream.on('error', (err: { code?: number }) => (err.code === 1 ? undefined : reject(err)));
      stream.on('end', () => reject(new Error('run ended before iteration 1 was published')));
    });
    client.close();
    await trainer.close();
    expect(existsSync(join(runsDir, 'resumed', 'checkpoints', 'it2', 'model.safetensors'))).toBe(
      false,
    );

    // A new trainer on the same folder (and port, where the sampler pulls versions).
    trainer = await startTrainer({
      port,
      host: '127.0.0.1',
      runsDir,
      handleSignals: false,
      logLevel: 'warn',
    });
    client = new TrainerServiceClient(trainer.address, credentials.createInsecure());
    const interrupted = trainer.runs.get('resumed');
    expect(interrupted.state).toBe(RunState.RUN_STATE_CANCELLED);
    await new Promise((resolve, reject) =>
      client.startRun({ runId: 'resumed', configJson: '' }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
    const finished = await trainer.runs.wait('resumed');
    expect(finished.error).toBe('');
    expect(finished.state).toBe(RunState.RUN_STATE_SUCCEEDED);
    client.close();

    const weights = (run: string) =>
      readFileSync(join(runsDir, run, 'checkpoints', 'it2', 'model.safetensors'));
    expect(weights('resumed').equals(weights('straight'))).toBe(true);
  }, 300_000);

  test('CancelRun stops a running run; GetRun and ListRuns report it afterwards', async () => {
    const client = new TrainerServiceClient(trainer.address, credentials.createInsecure());
    await new Promise((resolve, reject) =>
      client.startRun({ runId: 'to-cancel', configJson: tinyConfig() }, (err, r) =>
        err ? reject(err) : resolve(r),
      ),
    );
    // Cancel at the first optimizer step, while the run is certainly running.
    await new Promise<void>((resolve, reject) => {
      const stream = client.watchRun({ runId: 'to-cancel' });
      stream.on('data', (e: RunEvent) => {
        if (e.event?.$case !== 'step') return;
        stream.cancel();
        resolve();
      });
      stream.on('error', (err: { code?: number }) => (err.code === 1 ? undefined : reject(err)));
      stream.on('end', () => reject(new Error('run ended before its first step')));
    });
    const cancelled = await new Promise<Run>((resolve, reject) =>
      client.cancelRun({ runId: 'to-cancel' }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(cancelled.state).toBe(RunState.RUN_STATE_CANCELLED);
    const got = await new Promise<Run>((resolve, reject) =>
      client.getRun({ runId: 'to-cancel' }, (err, r) => (err ? reject(err) : resolve(r))),
    );
    expect(got.state).toBe(RunState.RUN_STATE_CANCELLED);
    expect(existsSync(join(runsDir, 'to-cancel', 'checkpoints', 'it1'))).toBe(false);
    const listed = await new Promise<{ runs: Run[] }>((resolve, reject) =>
      client.listRuns({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    const states = Object.fromEntries(listed.runs.map((r) => [r.runId, r.state]));
    expect(states['to-cancel']).toBe(RunState.RUN_STATE_CANCELLED);
    expect(states.straight).toBe(RunState.RUN_STATE_SUCCEEDED);
    client.close();
  }, 300_000);

  test('rejects a bad config and unknown runs with the right status over gRPC', async () => {
    const client = new TrainerServiceClient(trainer.address, credentials.createInsecure());
    const startErr = await new Promise<{ code: number; details: string }>((resolve) =>
      client.startRun(
        {
          runId: 'bad',
          configJson: JSON.stringify({
            samplerAddresses: ['x:1'],
            ratioAddresses: ['y:1'],
            optimizer: { name: 'sgd' },
          }),
        },
        (err) => resolve(err as unknown as { code: number; details: string }),
      ),
    );
    expect(startErr.code).toBe(status.INVALID_ARGUMENT);
    expect(startErr.details).toBe(
      'invalid run config: optimizer.name: got "sgd"; accepted values: "adamw", "rmsprop"',
    );
    const getErr = await new Promise<{ code: number }>((resolve) =>
      client.getRun({ runId: 'nope' }, (err) => resolve(err as unknown as { code: number })),
    );
    expect(getErr.code).toBe(status.NOT_FOUND);
    client.close();
  });
});
