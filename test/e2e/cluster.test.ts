// The "use running services" path of `gsil run`: a trainer, two sampler replicas and a
// ratio scorer started on their own, as a cluster runs them (`gsil serve`), replicas
// pulling versions from the trainer. The run must spread sampling over both replicas,
// and every service must shut down gracefully on SIGTERM.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials } from '@grpc/grpc-js';
import { type SamplerInfo, SamplerServiceClient } from '@gsil/contracts';
import {
  type CliResult,
  killAll,
  runCli,
  type ServiceProcess,
  startService,
  stopService,
} from '../support/processes.ts';

/** Graceful shutdown drains in-flight calls; idle services should be gone well within this. */
const SHUTDOWN_LIMIT_MS = 5_000;

const scratch = mkdtempSync(join(tmpdir(), 'gsil-e2e-cluster-'));
const outDir = join(scratch, 'cluster-run');
let trainer: ServiceProcess;
let samplers: ServiceProcess[];
let ratio: ServiceProcess;
let run: CliResult;

function samplerInfo(address: string): Promise<SamplerInfo> {
  const client = new SamplerServiceClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) =>
    client.getInfo({}, (error, info) => {
      client.close();
      if (error) reject(error);
      else resolve(info);
    }),
  );
}

beforeAll(async () => {
  const options = { scratchDir: scratch };
  trainer = await startService('trainer', ['--runs-dir', join(scratch, 'runs')], options);
  const store = ['--model-store', trainer.address];
  // Each replica its own version cache, as each pod has its own volume.
  samplers = await Promise.all(
    [0, 1].map((i) =>
      startService('sampler', store, {
        ...options,
        env: { GSIL_SAMPLER_CACHE_DIR: join(scratch, `sampler-cache-${i}`) },
      }),
    ),
  );
  ratio = await startService('ratio', store, options);

  run = await runCli([
    'run',
    '--quick',
    '--trainer',
    trainer.address,
    '--sampler',
    samplers[0].address,
    '--sampler',
    samplers[1].address,
    '--ratio',
    ratio.address,
    '--out',
    outDir,
  ]);
}, 300_000);

afterAll(() => {
  killAll();
  rmSync(scratch, { recursive: true, force: true });
});

describe('gsil run against running services', () => {
  test('succeeds and writes the run folder from the remote trainer', () => {
    if (run.code !== 0) throw new Error(`gsil run exited ${run.code}:\n${run.stderr}`);
    const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8'));
    expect(summary.state).toBe('succeeded');
    expect(summary.config.samplerAddresses).toEqual(samplers.map((s) => s.address));
    expect(summary.config.ratioAddresses).toEqual([ratio.address]);
    expect(summary.evals.map((e: { version: string }) => e.version)).toEqual(['sft', 'it1']);
    expect(existsSync(join(outDir, 'model', 'model.onnx'))).toBe(true);
    // No services of its own: the run folder has no local trainer store.
    expect(existsSync(join(outDir, 'trainer'))).toBe(false);
  });

  test('both sampler replicas served requests', async () => {
    const runId = 'cluster-run';
    for (const sampler of samplers) {
      const info = await samplerInfo(sampler.address);
      const versions = info.loadedModels.filter((m) => m.name === runId).map((m) => m.version);
      expect(versions.length).toBeGreaterThan(0);
    }
  });

  test('every service exits 0 promptly on SIGTERM', async () => {
    const exits = await Promise.all([...samplers, ratio, trainer].map((s) => stopService(s)));
    for (const exit of exits) {
      expect(exit).toMatchObject({ code: 0, signal: null });
      expect(exit.elapsedMs).toBeLessThan(SHUTDOWN_LIMIT_MS);
    }
  });
});
