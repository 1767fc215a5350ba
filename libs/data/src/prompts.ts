// The text formats shared by the trainer, sampler, evaluation and CLI. Tokenization is
// fixed elsewhere (prompt = [BOS] + encode(promptText), response = encode(responseText)
// + [EOS], sentencepiece adding its dummy leading space to each), so these functions
// decide only the text. Changing one changes what every trained model expects.

import type { Gsm8kRow } from './gsm8k';
import type { MawpsRow } from './mawps';

/** A prompt and its demonstration response (the y+ of GSIL), as text. */
export interface PromptExample {
  id: string;
  promptText: string;
  /** The demonstration: what the model should write after the prompt. */
  responseText: string;
}

// Lengths in stories260K tokens (tok512; measured once with Python sentencepiece), prompt
// with BOS and response with EOS. `number0` alone costs 6 tokens (▁n u m b er 0).
//   MAWPS fold 0 train: prompt mean 99.6, p95 141, max 231; response mean 18.6, p95 23,
//     max 55; together mean 118.2, p95 162, max 254. Dev: together mean 117.1, p95 158, max 196.
//   GSM8K test, prompt + worked solution: mean 372, p95 617, max 982 (14% exceed 512).

/** Cue ending every MAWPS prompt; the model answers with a prefix equation after it. */
export const MAWPS_CUE = 'Equation:';

/**
 * MAWPS prompt: the masked question, a newline, then `Equation:`. Example:
 * `Mary has number0 apples . She eats number1 . How many are left ?\nEquation:`
 */
export function mawpsPromptText(question: string): string {
  return `${question}\n${MAWPS_CUE}`;
}

/**
 * MAWPS demonstration: the gold prefix equation, single-spaced (`- number0 number1`).
 * The tokenizer's dummy leading space makes it read as `Equation: - number0 number1`.
 */
export function mawpsResponseText(equation: string): string {
  return equation.trim().split(/\s+/).join(' ');
}

export function mawpsExample(row: MawpsRow): PromptExample {
  return {
    id: row.id,
    promptText: mawpsPromptText(row.question),
    responseText: mawpsResponseText(row.equation),
  };
}

/**
 * The equation a model wrote, from its decoded response (EOS already removed): the first
 * line, whitespace collapsed. What follows a newline is not part of the answer.
 */
export function mawpsEquationFromResponse(responseText: string): string {
  const firstLine = responseText.split('\n', 1)[0] ?? '';
  return firstLine
    .trim()
    .split(/\s+/)
    .filter((token) => token !== '')
    .join(' ');
}

/** GSM8K prompt: `Question: <question>\nAnswer:`; the demonstration is the worked solution. */
export function gsm8kPromptText(question: string): string {
  return `Question: ${question}\nAnswer:`;
}

export function gsm8kExample(row: Gsm8kRow): PromptExample {
  return { id: row.id, promptText: gsm8kPromptText(row.question), responseText: row.solution };
}
