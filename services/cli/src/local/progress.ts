// What a person at the terminal sees: the backend the trainer trains on, a progress bar for
// the phase under way and one summary line per step interval, phase, iteration and
// evaluation. A resumed run's stream first replays its earlier starts; those were shown
// when they happened, so they are summed up in one line instead of printed again.

import { type Run, type RunEvent, RunState } from '@gsil/contracts';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';

const STEP_LOG_INTERVAL = 10;
/** Backends that train several times slower than the native binding. */
const SLOW_BACKENDS = new Set(['wasm', 'cpu']);

function fmt(value: number, digits = 4): string {
  return Number.isFinite(value) ? value.toFixed(digits) : String(value);
}

export class RunProgress {
  private readonly bars = new MultiBar(
    {
      format: ' {phase} |{bar}| {value}/{total} {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
      stream: process.stderr,
    },
    Presets.shades_classic,
  );
  private bar: SingleBar | undefined;
  private barPhase = '';
  /** Events of earlier starts of the run, replayed before this start's. */
  private readonly earlier: RunEvent[] = [];
  private live = false;
  private backendShown = false;

  /**
   * @param started the run as StartRun returned it: its `startedUnixMs` marks where this
   *   start's events begin in the stream.
   * @param write receives each finished line (default: stderr, above the progress bars).
   */
  constructor(
    private readonly started: Run,
    private readonly write?: (line: string) => void,
  ) {}

  private line(text: string): void {
    if (this.write) this.write(text);
    else if (process.stderr.isTTY) this.bars.log(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  onEvent(event: RunEvent): void {
    const body = event.event;
    if (!body) return;
    if (!this.live) {
      const startsThisRun =
        body.$case === 'run' &&
        body.value.state === RunState.RUN_STATE_RUNNING &&
        body.value.startedUnixMs === this.started.startedUnixMs;
      if (!startsThisRun) {
        this.earlier.push(event);
        return;
      }
      this.live = true;
      if (this.earlier.length > 0) this.line(resumeLine(this.started.runId, this.earlier));
    }
    switch (body.$case) {
      case 'progress': {
        const { phase, done, total } = body.value;
        if (!process.stderr.isTTY) return;
        if (this.barPhase !== phase || !this.bar) {
          this.bar?.stop();
          if (this.bar) this.bars.remove(this.bar);
          this.bar = this.bars.create(total, done, { phase: phase.padEnd(8) });
          this.barPhase = phase;
        } else {
          this.bar.setTotal(total);
          this.bar.update(done);
        }
        return;
      }
      case 'step': {
        const s = body.value;
        // Numbered within the stage or iteration, as the iteration lines count them; the
        // last step is shown too, so a short stage still prints its final loss.
        if (s.stageStep % STEP_LOG_INTERVAL !== 0 && s.stageStep !== s.stageSteps) return;
        const step = `step ${s.stageStep}/${s.stageSteps}`;
        const speed = `${Math.round(s.tokensPerSecond)} tok/s, ${Math.round(s.stepMs)} ms/step`;
        if (s.stage === 'sft') {
          this.line(`sft ${step} nll/token ${fmt(s.loss)} lr ${s.learningRate} ${speed}`);
        } else {
          this.line(
            `it${s.iteration} ${step} loss ${fmt(s.loss)} ` +
              `(real ${fmt(s.lossReal)} gen ${fmt(s.lossGenerated)}) ` +
              `rewards real ${fmt(s.rewardsReal)} gen ${fmt(s.rewardsGenerated)} ` +
              `acc ${fmt(s.accuracy, 2)} ${speed}`,
          );
        }
        return;
      }
      case 'iteration': {
        const it = body.value;
        const seconds = `${(it.durationMs / 1000).toFixed(1)} s`;
        if (it.stage === 'sft') {
          this.line(`== sft: ${it.steps} steps, mean nll/token ${fmt(it.meanLoss)}, ${seconds}`);
        } else {
          this.line(
            `== gsil iteration ${it.iteration}: ${it.steps} steps, mean loss ${fmt(it.meanLoss)}, ` +
              `rewards real ${fmt(it.meanRewardsReal)} gen ${fmt(it.meanRewardsGenerated)}, ` +
              `acc ${fmt(it.meanAccuracy, 3)}, ${seconds}`,
          );
        }
        return;
      }
      case 'eval': {
        const e = body.value;
        const metrics = Object.entries(e.metrics)
          .map(([name, value]) => `${name} ${fmt(value)}`)
          .join(', ');
        this.line(`== eval ${e.model?.version ?? e.stage} (${e.examples} dev): ${metrics}`);
        return;
      }
      case 'phase': {
        const p = body.value;
        const stage = p.stage === 'gsil' ? `it${p.iteration}` : p.stage;
        this.line(`   ${stage} ${p.phase} ${(p.durationMs / 1000).toFixed(1)} s`);
        return;
      }
      case 'run': {
        const backend = body.value.backend;
        if (!backend || this.backendShown) return;
        this.backendShown = true;
        this.line(
          `gsil: training on TF.js backend ${backend}` +
            (SLOW_BACKENDS.has(backend)
              ? ' (several times slower than the native one: `bun run gsil setup tfjs-native` ' +
                'builds it, see README "Backends")'
              : ''),
        );
        return;
      }
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bars.stop();
  }
}

/** "gsil: resuming run r1 from checkpoint sft", after the last checkpoint written before. */
function resumeLine(runId: string, earlier: readonly RunEvent[]): string {
  const checkpoints = earlier.flatMap((e) =>
    e.event?.$case === 'phase' && e.event.value.phase === 'checkpoint' ? [e.event.value] : [],
  );
  const last = checkpoints.at(-1);
  if (!last) return `gsil: resuming run ${runId} from the start (no checkpoint was complete)`;
  const version = last.stage === 'gsil' ? `it${last.iteration}` : last.stage;
  return `gsil: resuming run ${runId} from checkpoint ${version}`;
}
