import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RunState } from '@gsil/contracts';
import { writeReport } from './report.ts';

const run = {
  runId: 'r1',
  state: RunState.RUN_STATE_SUCCEEDED,
  runDir: '/x',
  configJson: '{}',
  stage: 'gsil',
  iteration: 1,
  step: 3,
  error: '',
  latestModel: { name: 'r1', version: 'it1' },
  startedUnixMs: 1_000,
  finishedUnixMs: 61_000,
  backend: 'wasm',
};

const events = [
  // Evaluated before an interruption, and again when the run resumed (the later one counts).
  {
    type: 'eval',
    stage: 'sft',
    iteration: 0,
    examples: 4,
    model: { name: 'r1', version: 'sft' },
    metrics: { answer_accuracy: 0.2, dev_nll: 1.6 },
  },
  { type: 'step', stage: 'sft', iteration: 0, step: 1, loss: 3 },
  { type: 'step', stage: 'gsil', iteration: 1, step: 2, loss: 1.38, rewardsReal: 0, accuracy: 0.5 },
  { type: 'phase', phase: 'update', durationMs: 1500 },
  { type: 'phase', phase: 'update', durationMs: 500 },
  { type: 'phase', phase: 'eval', durationMs: 250 },
  {
    type: 'eval',
    stage: 'sft',
    iteration: 0,
    examples: 4,
    model: { name: 'r1', version: 'sft' },
    metrics: { answer_accuracy: 0.25, dev_nll: 1.5 },
  },
  {
    type: 'eval',
    stage: 'gsil',
    iteration: 1,
    examples: 4,
    model: { name: 'r1', version: 'it1' },
    metrics: { answer_accuracy: 0.5, dev_nll: 1.25 },
  },
];

describe('writeReport', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gsil-report-'));
  writeReport(dir, { run, config: { seed: 7 }, events });
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  const html = readFileSync(join(dir, 'report.html'), 'utf8');

  test('summary.json sums phase time and lists evaluations in order', () => {
    expect(summary.phaseMs).toEqual({ update: 2000, eval: 250 });
    expect(summary.durationMs).toBe(60_000);
    expect(summary.evals.map((e: { version: string }) => e.version)).toEqual(['sft', 'it1']);
    expect(summary.evals[0].metrics.answer_accuracy).toBe(0.25);
    expect(summary.evals[1].metrics.answer_accuracy).toBe(0.5);
    expect(summary.config).toEqual({ seed: 7 });
    expect(summary.state).toBe('succeeded');
    expect(summary.backend).toBe('wasm');
  });

  test('report.html inlines its charts and loads nothing from the network', () => {
    // SFT loss, GSIL loss, rewards, accuracy and the evaluation bars.
    expect(html.match(/<svg/g)?.length).toBe(5);
    expect(html).not.toMatch(/<script|<link|src="http/);
    expect(html).toContain('<td>it1</td><td>4</td><td>0.5000</td><td>1.2500</td>');
    expect(html).toContain('Trained on the TF.js backend wasm.');
  });
});
