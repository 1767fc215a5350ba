// What a person at the terminal sees: a progress bar for the phase under way and one
// summary line per step interval, iteration and evaluation.

import type { RunEvent } from '@gsil/contracts';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';

const STEP_LOG_INTERVAL = 10;

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

  private line(text: string): void {
    if (process.stderr.isTTY) this.bars.log(`${text}\n`);
    else process.stderr.write(`${text}\n`);
  }

  onEvent(event: RunEvent): void {
    const body = event.event;
    if (!body) return;
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
        if (s.step % STEP_LOG_INTERVAL !== 0) return;
        const speed = `${Math.round(s.tokensPerSecond)} tok/s, ${Math.round(s.stepMs)} ms/step`;
        if (s.stage === 'sft') {
          this.line(`sft step ${s.step} nll/token ${fmt(s.loss)} lr ${s.learningRate} ${speed}`);
        } else {
          this.line(
            `it${s.iteration} step ${s.step} loss ${fmt(s.loss)} ` +
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
        this.line(`   ${p.phase} ${(p.durationMs / 1000).toFixed(1)} s`);
        return;
      }
      case 'run':
        return;
    }
  }

  stop(): void {
    this.bar?.stop();
    this.bars.stop();
  }
}
