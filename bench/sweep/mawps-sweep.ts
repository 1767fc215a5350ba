// The sweep behind the default recipe (README, "Choosing the defaults"): GSIL losses and
// (alpha, beta) tried from one shared SFT starting point, on MAWPS fold 0's dev split only.
//
//   bun bench/sweep/mawps-sweep.ts --sft-model <dir> [--iterations 2] [--out runs/sweep]
//
// <dir> is an SFT checkpoint, e.g. <run>/trainer/<runId>/checkpoints/sft of a `gsil run`.
// Each configuration is one `gsil run --sft-epochs 0 --model <dir>` (its own services and run
// folder); the table printed at the end is what the README shows.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'sft-model': { type: 'string' },
    iterations: { type: 'string', default: '2' },
    out: { type: 'string', default: 'runs/sweep' },
    only: { type: 'string' },
    lr: { type: 'string' },
  },
});
if (!values['sft-model']) throw new Error('--sft-model <dir> is required');
const sftModel = resolve(values['sft-model']);
const outRoot = resolve(values.out!);
const cli = resolve(import.meta.dir, '../../services/cli/src/main.ts');

interface Trial {
  name: string;
  flags: string[];
}

// Phase 1 scans the learning rate with the logistic loss; phase 2 tries every loss and
// (alpha, beta) at the chosen rate. `--lr` overrides the phase-2 rate.
const lr = values.lr ?? '3e-5';
const trials: Trial[] = [
  ...['1e-4', '3e-5', '1e-5'].map((rate) => ({
    name: `lr ${rate} bernoulli a=0.1 b=0`,
    flags: ['--lr', rate, '--loss', 'bernoulli', '--alpha', '0.1', '--beta', '0'],
  })),
  ...[
    ['bernoulli', '0.01', '2'],
    ['bernoulli', '1', '0'],
    ['brier', '0.1', '0'],
    ['hinge', '0.1', '0'],
    ['kliep', '0.1', '0'],
    ['lsif', '0.1', '0'],
  ].map(([loss, alpha, beta]) => ({
    name: `${loss} a=${alpha} b=${beta} lr ${lr}`,
    flags: ['--lr', lr, '--loss', loss, '--alpha', alpha, '--beta', beta],
  })),
  { name: `spin b=0.1 lr ${lr}`, flags: ['--lr', lr, '--loss', 'spin', '--beta', '0.1'] },
  { name: `sft (continued) lr ${lr}`, flags: ['--lr', lr, '--loss', 'sft'] },
];

interface Eval {
  version: string;
  metrics: Record<string, number>;
}

function evals(runDir: string): Eval[] {
  const summary = JSON.parse(readFileSync(join(runDir, 'summary.json'), 'utf8'));
  return summary.evals;
}

const rows: string[] = [];
const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(100 * x).toFixed(1)}%`);
for (const trial of trials) {
  if (values.only && !trial.name.startsWith(values.only)) continue;
  const dir = join(outRoot, trial.name.replace(/[^a-z0-9.]+/gi, '-'));
  if (!existsSync(join(dir, 'summary.json'))) {
    const args = [cli, 'run', '--sft-epochs', '0', '--model', sftModel, '--iterations'];
    args.push(values.iterations!, '--out', dir, ...trial.flags);
    process.stderr.write(`sweep: ${trial.name}\n`);
    const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
    if (result.status !== 0) {
      rows.push(`| ${trial.name} | failed (exit ${result.status}) | | |`);
      continue;
    }
  }
  const byVersion = evals(dir);
  const cells = byVersion.map(
    (e) =>
      `${e.version}: ${pct(e.metrics.answer_accuracy)} / ${pct(e.metrics.equation_match)} / ` +
      `${e.metrics.dev_nll.toFixed(3)}`,
  );
  rows.push(`| ${trial.name} | ${cells.join(' | ')} |`);
  process.stdout.write(`${rows.at(-1)}\n`);
}
process.stdout.write(
  '\n| configuration | start (answer acc / equation match / dev NLL) | iteration 1 | iteration 2 |\n' +
    '| --- | --- | --- | --- |\n' +
    `${rows.join('\n')}\n`,
);
