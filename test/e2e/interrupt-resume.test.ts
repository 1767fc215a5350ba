// Ctrl-C on `gsil run` stops every service cleanly, and the same command run again resumes
// the run from its last complete checkpoint instead of starting over.
import { afterAll, describe, expect, test } from 'bun:test';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI_MAIN, isRunning, killAll, REPO_ROOT, runCli } from '../support/processes.ts';

const scratch = mkdtempSync(join(tmpdir(), 'gsil-e2e-resume-'));
const outDir = join(scratch, 'run');
const SERVICES = ['trainer', 'sampler', 'ratio'];

/** Service pids from their "listening" log lines. */
function servicePids(): number[] {
  return SERVICES.flatMap((name) =>
    readFileSync(join(outDir, 'logs', `${name}.log`), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { pid: number })
      .map((entry) => entry.pid)
      .slice(0, 1),
  );
}

describe('gsil run interrupted and resumed', () => {
  afterAll(() => {
    killAll();
    rmSync(scratch, { recursive: true, force: true });
  });

  test('SIGINT after the SFT evaluation stops every service cleanly', async () => {
    const child = spawn(process.execPath, [CLI_MAIN, 'run', '--quick', '--out', outDir], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    // Interrupt once the SFT checkpoint is evaluated (it is published before that).
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        if (stderr.includes('== eval sft')) resolve();
      });
      child.once('close', () => reject(new Error(`run ended before the SFT eval:\n${stderr}`)));
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).not.toContain('did not stop cleanly');
    for (const name of SERVICES) {
      const log = readFileSync(join(outDir, 'logs', `${name}.log`), 'utf8')
        .trim()
        .split('\n');
      expect(JSON.parse(log.at(-1)!).msg).toBe('stopped');
    }
    for (const pid of servicePids()) expect(isRunning(pid)).toBe(false);
  }, 300_000);

  test('the same command resumes from the SFT checkpoint and finishes', async () => {
    const run = await runCli(['run', '--quick', '--out', outDir]);
    expect(run.code).toBe(0);
    // Said once; the first start's lines are not printed again, the SFT evaluation (run
    // again on resume) appears once.
    const lines = run.stderr.split('\n');
    expect(lines.filter((line) => line.startsWith('gsil: resuming'))).toEqual([
      'gsil: resuming run run from checkpoint sft',
    ]);
    expect(lines.filter((line) => line.startsWith('== eval sft'))).toHaveLength(1);
    expect(lines.filter((line) => line.startsWith('== sft:'))).toEqual([]);
    const summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8'));
    expect(summary.state).toBe('succeeded');
    expect(summary.evals.map((e: { version: string }) => e.version)).toEqual(['sft', 'it1']);
    // SFT ran once: its steps were logged by the first trainer only.
    const sftSteps = readFileSync(join(outDir, 'logs', 'trainer.log'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"stage":"sft"') && line.includes('"msg":"step"'));
    const quickSftSteps = 2; // 64 demonstrations, batch 32, one epoch
    expect(sftSteps.length).toBe(quickSftSteps);
  }, 300_000);
});
