// GSM8K final-answer metrics.

import { parseGsm8kNumber } from '@gsil/data';
import { answersMatch } from './answers';

// A minus right after a digit is subtraction (`16-3`), not a sign.
const NUMBER_IN_TEXT = /(?<!\d)-?\$?\d[\d,]*(?:\.\d+)?/g;

/**
 * The final answer of a generated solution: the number after the last `#### ` when the
 * model wrote that mark (as the demonstrations do), else the last number in the text.
 * `$` and thousands commas are ignored. Null when there is no number.
 */
export function extractGsm8kAnswer(text: string): number | null {
  const mark = text.lastIndexOf('####');
  if (mark >= 0) {
    const afterMark = text.slice(mark + 4).match(NUMBER_IN_TEXT);
    if (afterMark) return parseGsm8kNumber(afterMark[0]);
  }
  const numbers = text.match(NUMBER_IN_TEXT);
  if (!numbers) return null;
  return parseGsm8kNumber(numbers[numbers.length - 1]);
}

export interface Gsm8kMetrics {
  count: number;
  /** Fraction whose extracted answer matches within ANSWER_TOLERANCE. */
  accuracy: number;
  /** Fraction with any number extracted. */
  extractedRate: number;
}

export function gsm8kMetrics(
  predictions: readonly { responseText: string; answer: number }[],
): Gsm8kMetrics {
  let correct = 0;
  let extracted = 0;
  for (const { responseText, answer } of predictions) {
    const value = extractGsm8kAnswer(responseText);
    if (value === null) continue;
    extracted += 1;
    if (answersMatch(value, answer)) correct += 1;
  }
  const count = predictions.length;
  return {
    count,
    accuracy: count === 0 ? 0 : correct / count,
    extractedRate: count === 0 ? 0 : extracted / count,
  };
}
