// `gsil run --quick` as a user runs it: one child process that starts trainer, sampler and
// ratio as processes of its own, runs SFT then one GSIL iteration through the trainer's
// gRPC API and writes the run folder. Then `gsil eval` re-evaluates the saved model
// with ONNX Runtime alone and must reproduce the trainer's final evaluation.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CliResult, isRunning, killAll, runCli } from '../support/processes.ts';

const METRIC_NAMES = ['answer_accuracy', 'equation_match', 'unparsable_rate', 'dev_nll'];

interface StageEval {
  stage: string;
  version: string;
  examples: number;
  metrics: Record<string, number>;
}

interface Summary {
  state: string;
  backend: string;
  config: {
    backend: string;
    stages: { gsil: { loss: string; alpha: number; beta: number } };
    eval: { limit: number; maxNewTokens: number };
  };
  evals: StageEval[];
  iterations: Array<{ stage: string; iteration: number; steps: number }>;
}

type Event = Record<string, unknown> & { type: string };

const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * The loss of one (demonstration, generated) pair while the policy still equals the
 * reference: r(y+) = r(y-) = 0, so f = alpha * 0 + beta = beta on both sides
 * (DESIGN.md's table; spin's margin beta * (0 - 0) is 0 whatever beta is).
 */
function lossAtZeroRatio(loss: string, beta: number): number {
  switch (loss) {
    case 'bernoulli': // -log sigmoid(beta) - log sigmoid(-beta)
      return softplus(-beta) + softplus(beta);
    case 'brier':
      return (sigmoid(beta) - 1) ** 2 + sigmoid(beta) ** 2;
    case 'hinge':
      return Math.max(0, 1 - beta) + Math.max(0, 1 + beta);
    case 'kliep':
      return -beta + Math.exp(beta);
    case 'lsif':
      return -Math.exp(beta) + Math.exp(beta) ** 2 / 2;
    case 'spin':
      return Math.LN2;
    default:
      throw new Error(`no closed form for loss ${loss}`);
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'gsil-e2e-quick-'));
const outDir = join(scratch, 'quick');
let run: CliResult;
let summary: Summary;
let events: Event[];

beforeAll(async () => {
  run = await runCli(['run', '--quick', '--out', outDir]);
  if (run.code !== 0) throw new Error(`gsil run exited ${run.code}:\n${run.stderr}`);
  summary = JSON.parse(readFileSync(join(outDir, 'summary.json'), 'utf8'));
  events = readFileSync(join(outDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}, 300_000);

afterAll(() => {
  killAll();
  rmSync(scratch, { recursive: true, force: true });
});

describe('gsil run --quick', () => {
  test('succeeds and leaves no service process behind', () => {
    expect(run.code).toBe(0);
    expect(summary.state).toBe('succeeded');

    // Each service logs its pid on its first line ("listening").
    const pids = readdirSync(join(outDir, 'logs')).flatMap((file) =>
      readFileSync(join(outDir, 'logs', file), 'utf8')
        .split('\n')
        .filter((line) => line.includes('"msg":"listening"'))
        .map((line) => ({ file, pid: JSON.parse(line).pid as number })),
    );
    expect(pids.map((p) => p.file).sort()).toEqual(['ratio.log', 'sampler.log', 'trainer.log']);
    expect(pids.filter(({ pid }) => isRunning(pid))).toEqual([]);
  });

  test('names the TF.js backend the trainer took, on the console and in summary.json', () => {
    const trainerLog = readFileSync(join(outDir, 'logs', 'trainer.log'), 'utf8');
    const logged = trainerLog.match(/tfjs backend: (\w+)/)?.[1];
    expect(['tensorflow', 'wasm', 'cpu']).toContain(summary.backend);
    expect(summary.backend).toBe(logged!);
    expect(summary.config.backend).toBe('auto');
    const shown = run.stderr.split('\n').filter((line) => line.includes('TF.js backend'));
    expect(shown).toHaveLength(1);
    expect(shown[0]).toStartWith(`gsil: training on TF.js backend ${summary.backend}`);
    // The hint to build the native backend only where training is slow without it.
    expect(shown[0].includes('gsil setup tfjs-native')).toBe(summary.backend !== 'tensorflow');
    expect(readFileSync(join(outDir, 'report.html'), 'utf8')).toContain(
      `Trained on the TF.js backend ${summary.backend}.`,
    );
  });

  test('labels phase lines with their stage and numbers steps within each stage', () => {
    // Phase lines read "   <stage> <phase> <seconds> s", the base stage's included.
    expect(run.stderr).toMatch(/^ {3}base checkpoint \d+\.\d s$/m);
    expect(run.stderr).toMatch(/^ {3}it1 update \d+\.\d s$/m);
    expect(run.stderr).not.toMatch(/^ {3}(checkpoint|publish|update|eval) /m);
    // Each stage prints its last step as "<stage> step n/n", n its own step count.
    for (const { stage, iteration, steps } of summary.iterations) {
      const label = stage === 'sft' ? 'sft' : `it${iteration}`;
      expect(run.stderr).toMatch(new RegExp(`^${label} step ${steps}/${steps} `, 'm'));
    }
    // metrics.jsonl keeps the global step beside the step within the stage.
    const sftSteps = summary.iterations[0].steps;
    const firstGsil = events.find((e) => e.type === 'step' && e.stage === 'gsil')!;
    expect(firstGsil.step).toBe(sftSteps + 1);
    expect(firstGsil.stageStep).toBe(1);
  });

  test('evaluates after SFT and after the GSIL iteration', () => {
    const byVersion = new Map(summary.evals.map((e) => [e.version, e]));
    expect([...byVersion.keys()]).toEqual(['sft', 'it1']);
    for (const stageEval of summary.evals) {
      expect(stageEval.examples).toBe(summary.config.eval.limit);
      for (const name of METRIC_NAMES) expect(Object.keys(stageEval.metrics)).toContain(name);
      expect(Number.isFinite(stageEval.metrics.dev_nll)).toBe(true);
      expect(stageEval.metrics.dev_nll).toBeGreaterThan(0);
    }
    // The GSIL update moved the policy, so the demonstrations' NLL moved too.
    const sftNll = byVersion.get('sft')!.metrics.dev_nll;
    expect(Math.abs(byVersion.get('it1')!.metrics.dev_nll - sftNll)).toBeGreaterThan(1e-4);
  });

  test('logs finite step losses, the first GSIL one at the closed form', () => {
    const steps = events.filter((e) => e.type === 'step');
    const sftSteps = steps.filter((s) => s.stage === 'sft');
    const gsilSteps = steps.filter((s) => s.stage === 'gsil');
    expect(sftSteps.length).toBeGreaterThan(0);
    expect(gsilSteps.length).toBeGreaterThan(0);
    for (const step of steps) expect(Number.isFinite(step.loss)).toBe(true);

    // Before the first update the policy is the reference: r = 0 for every response.
    const { loss, beta } = summary.config.stages.gsil;
    const first = gsilSteps[0];
    expect(first.loss as number).toBeCloseTo(lossAtZeroRatio(loss, beta), 4);
    if (loss === 'bernoulli' && beta === 0)
      expect(first.loss as number).toBeCloseTo(2 * Math.LN2, 4);
    expect(Math.abs(first.rewardsReal as number)).toBeLessThan(1e-4);
    expect(Math.abs(first.rewardsGenerated as number)).toBeLessThan(1e-4);
  });

  test('writes a report that opens offline, with inline SVG charts', () => {
    const html = readFileSync(join(outDir, 'report.html'), 'utf8');
    expect(html.match(/<svg/g)?.length ?? 0).toBeGreaterThanOrEqual(2);
    // Nothing fetched: no scripts, stylesheets or images by URL. (xmlns values inside the
    // SVG are namespace names, not fetched, so only attributes that load are checked.)
    expect(html).not.toMatch(/<(script|link|img|iframe)\b[^>]*\b(src|href)\s*=/i);
    expect(html).not.toMatch(/url\(\s*['"]?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import/i);
    expect(html).not.toMatch(/\b(src|href)\s*=\s*['"]?(https?:)?\/\//i);
  });

  test('saves the final model as a Hugging Face directory with ONNX', () => {
    for (const file of ['config.json', 'model.safetensors', 'tokenizer.json', 'model.onnx']) {
      expect(existsSync(join(outDir, 'model', file))).toBe(true);
    }
    expect(existsSync(join(outDir, 'trainer'))).toBe(true);
  });

  test('gsil eval on the saved model reproduces the final evaluation', async () => {
    const finalEval = summary.evals.at(-1)!;
    const evalRun = await runCli([
      'eval',
      '--model',
      join(outDir, 'model'),
      '--task',
      'mawps',
      '--limit',
      String(summary.config.eval.limit),
      '--max-new-tokens',
      String(summary.config.eval.maxNewTokens),
      '--json',
    ]);
    expect(evalRun.code).toBe(0);
    const local = JSON.parse(evalRun.stdout) as {
      examples: number;
      metrics: Record<string, number>;
    };
    expect(local.examples).toBe(finalEval.examples);
    for (const name of ['answer_accuracy', 'equation_match', 'unparsable_rate']) {
      expect(local.metrics[name]).toBe(finalEval.metrics[name]);
    }
    expect(Math.abs(local.metrics.dev_nll - finalEval.metrics.dev_nll)).toBeLessThan(1e-4);
  }, 120_000);
});
