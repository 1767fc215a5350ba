// GSM8K grade-school math (openai/grade-school-math): JSONL of {question, answer}, where
// the answer is a worked solution whose last line is `#### <final answer>`.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

export interface Gsm8kRow {
  /** `${split}-${index}`, e.g. `test-0`. */
  id: string;
  question: string;
  /** The worked solution, with the final `#### <answer>` line. */
  solution: string;
  /** The number after `#### `, thousands separators removed. */
  answer: number;
  /** 1-based line of the row in its file. */
  line: number;
}

const FINAL_ANSWER_MARK = '#### ';

export function loadGsm8kJsonl(path: string, split = basename(path, '.jsonl')): Gsm8kRow[] {
  return parseGsm8kJsonl(readFileSync(path, 'utf8'), path, split);
}

/**
 * Parses GSM8K JSONL text; blank lines are skipped. Errors name the file and line, e.g.
 * `test.jsonl line 3: answer has no "#### " final answer`.
 */
export function parseGsm8kJsonl(text: string, fileName: string, split = 'data'): Gsm8kRow[] {
  const rows: Gsm8kRow[] = [];
  text.split('\n').forEach((raw, lineIndex) => {
    if (raw.trim() === '') return;
    const where = `${fileName} line ${lineIndex + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      throw new Error(`${where}: not valid JSON (${(error as Error).message})`, { cause: error });
    }
    const { question, answer } = (value ?? {}) as Record<string, unknown>;
    if (typeof question !== 'string' || question.trim() === '') {
      throw new Error(`${where}: "question" must be a non-empty string`);
    }
    if (typeof answer !== 'string') throw new Error(`${where}: "answer" must be a string`);
    const mark = answer.lastIndexOf(FINAL_ANSWER_MARK);
    if (mark < 0) throw new Error(`${where}: answer has no "${FINAL_ANSWER_MARK}" final answer`);
    const finalText = answer.slice(mark + FINAL_ANSWER_MARK.length).trim();
    const final = parseGsm8kNumber(finalText);
    if (final === null) {
      throw new Error(`${where}: final answer "${finalText}" is not a number`);
    }
    rows.push({
      id: `${split}-${rows.length}`,
      question,
      solution: answer,
      answer: final,
      line: lineIndex + 1,
    });
  });
  return rows;
}

/**
 * A GSM8K-style number: optional sign, `$`, thousands commas and a trailing period
 * are tolerated (`$1,200.` -> 1200). Null when the text is not such a number.
 */
export function parseGsm8kNumber(text: string): number | null {
  const cleaned = text.trim().replace(/^\$/, '').replace(/,/g, '').replace(/\.$/, '');
  if (!/^-?\$?\d+(\.\d+)?$/.test(cleaned)) return null;
  return Number(cleaned.replace('$', ''));
}
