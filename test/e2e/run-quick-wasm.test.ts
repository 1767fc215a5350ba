// Where the native TF.js backend is built, the default `auto` backend is native, so the
// main job's quick run above exercises native only. This runs it once more on WASM, so
// both backends carry the main job wherever both exist (without the native build, the
// quick run above already was on WASM and this one is skipped).
import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killAll, REPO_ROOT, runCli } from '../support/processes.ts';

const NATIVE_ADDON = join(
  REPO_ROOT,
  'node_modules/@tensorflow/tfjs-node/lib/napi-v8/tfjs_binding.node',
);
const nativeBuilt = existsSync(NATIVE_ADDON);
if (!nativeBuilt) console.log(`skipping the WASM rerun: no native addon at ${NATIVE_ADDON}`);

describe.skipIf(!nativeBuilt)('gsil run --quick --backend wasm', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'gsil-e2e-wasm-'));
  afterAll(async () => {
    await killAll();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('trains on WASM and succeeds', async () => {
    const out = join(scratch, 'wasm');
    const run = await runCli(['run', '--quick', '--backend', 'wasm', '--out', out]);
    expect(run.code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.state).toBe('succeeded');
    expect(summary.config.backend).toBe('wasm');
    expect(summary.backend).toBe('wasm');
    expect(run.stderr).toContain('gsil: training on TF.js backend wasm (');
    expect(readFileSync(join(out, 'logs', 'trainer.log'), 'utf8')).toContain('tfjs backend: wasm');
    const versions = summary.evals.map((e: { version: string }) => e.version);
    expect(versions).toEqual(['sft', 'it1']);
    for (const e of summary.evals) expect(Number.isFinite(e.metrics.dev_nll)).toBe(true);
  }, 600_000);
});
