// The dev metrics of a task from generated answers and demonstration log-probabilities.
// The trainer's evaluation and `gsil eval` both report exactly this.
import type { Demonstration, TaskName } from '@gsil/data';
import { gsm8kMetrics } from './gsm8k-metrics';
import { mawpsMetrics } from './mawps-metrics';
import { meanNll } from './nll';

/**
 * `answers[i]` is the generated text for `dev[i]`'s prompt; `logps[i]` and `tokenCounts[i]`
 * score its demonstration response. Metric names are the ones EvalResult carries.
 */
export function taskMetrics(
  task: TaskName,
  dev: readonly Demonstration[],
  answers: readonly string[],
  logps: readonly number[],
  tokenCounts: readonly number[],
): Record<string, number> {
  const metrics: Record<string, number> = {};
  if (task === 'mawps') {
    const m = mawpsMetrics(dev.map((d, i) => ({ equationText: answers[i] ?? '', row: d.mawps! })));
    metrics.answer_accuracy = m.answerAccuracy;
    metrics.equation_match = m.equationMatch;
    metrics.unparsable_rate = m.unparsableRate;
  } else {
    const m = gsm8kMetrics(
      dev.map((d, i) => ({ responseText: answers[i] ?? '', answer: d.answer! })),
    );
    metrics.answer_accuracy = m.accuracy;
    metrics.extracted_rate = m.extractedRate;
  }
  const nll = meanNll(logps, tokenCounts);
  metrics.dev_nll = nll.nllPerToken;
  metrics.dev_perplexity = nll.perplexity;
  return metrics;
}
