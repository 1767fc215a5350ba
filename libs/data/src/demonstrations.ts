// Demonstrations of a task, tokenized by the project's convention (prompt = [BOS] + ids,
// response = ids + [EOS]). The trainer, the evaluation and `gsil eval` all load them
// here, so a metric the trainer reports is recomputed identically on a saved model.
import { type Gsm8kRow, loadGsm8kJsonl } from './gsm8k';
import { loadMawpsCsv, type MawpsRow } from './mawps';
import { gsm8kExample, mawpsExample, type PromptExample } from './prompts';

/** The part of a tokenizer this module needs (GsilTokenizer satisfies it). */
export interface PairTokenizer {
  encodePrompt(text: string): number[];
  encodeResponse(text: string): number[];
}

export type TaskName = 'mawps' | 'gsm8k';

export interface Demonstration {
  id: string;
  promptIds: number[];
  responseIds: number[];
  /** MAWPS only: what the evaluation needs to score an equation. */
  mawps?: MawpsRow;
  /** GSM8K only: the final answer. */
  answer?: number;
}

/** Keeps the prompt and as much of the response as fits `maxTokens`; EOS stays last. */
export function tokenizeExample(
  example: PromptExample,
  tokenizer: PairTokenizer,
  maxTokens: number,
): Omit<Demonstration, 'mawps' | 'answer'> {
  const promptIds = tokenizer.encodePrompt(example.promptText);
  const responseIds = tokenizer.encodeResponse(example.responseText);
  const room = Math.max(1, maxTokens - promptIds.length);
  if (responseIds.length > room) responseIds.splice(room - 1, responseIds.length - room);
  return { id: example.id, promptIds, responseIds };
}

/**
 * Demonstrations of `task` from `path`; `limit` 0 means all rows. A row whose prompt alone
 * leaves no room for a response within `maxTokens` cannot be trained on or answered: it is
 * left out and counted in `onSkipped`.
 */
export function loadDemonstrations(
  task: TaskName,
  path: string,
  tokenizer: PairTokenizer,
  maxTokens: number,
  limit = 0,
  onSkipped: (count: number) => void = () => {},
): Demonstration[] {
  let rows: Demonstration[];
  if (task === 'mawps') {
    rows = loadMawpsCsv(path).map((row: MawpsRow) => ({
      ...tokenizeExample(mawpsExample(row), tokenizer, maxTokens),
      mawps: row,
    }));
  } else {
    rows = loadGsm8kJsonl(path).map((row: Gsm8kRow) => ({
      ...tokenizeExample(gsm8kExample(row), tokenizer, maxTokens),
      answer: row.answer,
    }));
  }
  const fitting = rows.filter((row) => row.promptIds.length < maxTokens);
  if (fitting.length < rows.length) onSkipped(rows.length - fitting.length);
  return limit > 0 ? fitting.slice(0, limit) : fitting;
}
