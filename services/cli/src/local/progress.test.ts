import { describe, expect, test } from 'bun:test';
import { type Run, type RunEvent, RunState } from '@gsil/contracts';
import { RunProgress } from './progress.ts';

type Body = NonNullable<RunEvent['event']>;

const baseRun: Run = {
  runId: 'r1',
  state: RunState.RUN_STATE_RUNNING,
  runDir: '/x',
  configJson: '{}',
  stage: '',
  iteration: 0,
  step: 0,
  error: '',
  latestModel: undefined,
  startedUnixMs: 1_000,
  finishedUnixMs: 0,
  backend: '',
};

const runEvent = (fields: Partial<Run>): Body => ({
  $case: 'run',
  value: { ...baseRun, ...fields },
});
const phase = (name: string, stage: string, iteration = 0): Body => ({
  $case: 'phase',
  value: { phase: name, stage, iteration, durationMs: 100 },
});
const sftEval: Body = {
  $case: 'eval',
  value: {
    stage: 'sft',
    iteration: 0,
    model: { name: 'r1', version: 'sft' },
    metrics: { answer_accuracy: 0.5 },
    examples: 8,
  },
};
const step = (stage: string, iteration: number, global: number, stageStep: number): Body => ({
  $case: 'step',
  value: {
    stage,
    iteration,
    step: global,
    stageStep,
    stageSteps: 20,
    loss: 0.5,
    lossReal: 0.25,
    lossGenerated: 0.25,
    rewardsReal: 0,
    rewardsGenerated: 0,
    rewardsMargin: 0,
    accuracy: 0.5,
    learningRate: 1e-5,
    gradNorm: 1,
    tokensPerSecond: 1000,
    stepMs: 100,
  },
});

/** The lines RunProgress prints for `bodies`, streamed as one run's events. */
function linesFor(started: Run, bodies: Body[]): string[] {
  const lines: string[] = [];
  const progress = new RunProgress(started, (line) => lines.push(line));
  bodies.forEach((event, seq) => {
    progress.onEvent({ runId: 'r1', timeUnixMs: seq, seq, event });
  });
  return lines;
}

describe('RunProgress', () => {
  test('names the backend once, labels phases and numbers steps within the iteration', () => {
    const lines = linesFor(baseRun, [
      runEvent({}),
      runEvent({ backend: 'wasm' }),
      phase('checkpoint', 'base'),
      runEvent({ backend: 'wasm', stage: 'gsil', iteration: 1 }),
      step('gsil', 1, 400, 10),
      step('gsil', 1, 401, 11),
      step('gsil', 1, 410, 20),
      phase('sample', 'gsil', 1),
    ]);
    expect(lines[0]).toStartWith('gsil: training on TF.js backend wasm (');
    expect(lines[0]).toContain('bun run gsil setup tfjs-native');
    expect(lines[1]).toBe('   base checkpoint 0.1 s');
    expect(lines[2]).toStartWith('it1 step 10/20 loss 0.5000 ');
    expect(lines[3]).toStartWith('it1 step 20/20 ');
    expect(lines[4]).toBe('   it1 sample 0.1 s');
    expect(lines).toHaveLength(5);
  });

  test('gives the native backend without the setup hint', () => {
    expect(linesFor(baseRun, [runEvent({}), runEvent({ backend: 'tensorflow' })])).toEqual([
      'gsil: training on TF.js backend tensorflow',
    ]);
  });

  test('a resumed run says so once and does not print the earlier start again', () => {
    const resumed = { ...baseRun, startedUnixMs: 2_000 };
    const lines = linesFor(resumed, [
      // The first start, interrupted after the SFT evaluation.
      runEvent({}),
      phase('checkpoint', 'base'),
      step('sft', 0, 10, 10),
      phase('checkpoint', 'sft'),
      sftEval,
      runEvent({ state: RunState.RUN_STATE_CANCELLED, finishedUnixMs: 1_500 }),
      // This start: the SFT checkpoint is read back, published and evaluated again.
      runEvent({ startedUnixMs: 2_000 }),
      runEvent({ startedUnixMs: 2_000, backend: 'tensorflow' }),
      sftEval,
    ]);
    expect(lines).toEqual([
      'gsil: resuming run r1 from checkpoint sft',
      'gsil: training on TF.js backend tensorflow',
      '== eval sft (8 dev): answer_accuracy 0.5000',
    ]);
  });
});
