// MAWPS math word problems in the SVAMP repository's cross-validation CSV layout
// (data/cv_mawps/fold*/{train,dev}.csv): numbers in the question are masked as number0,
// number1, ... and the equation is in prefix notation over those names.

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parse } from 'csv-parse/sync';

export interface MawpsRow {
  /** `${split}-${index}`, e.g. `dev-0`: stable for a given file. */
  id: string;
  /** The question with its numbers masked as number0, number1, ... */
  question: string;
  /** The masked values: numbers[i] is what numberI stands for. */
  numbers: number[];
  /** Prefix equation over numberN, operators + - * / and numeric constants, single-spaced. */
  equation: string;
  answer: number;
  /** 1-based line of the row in its file (the header is line 1). */
  line: number;
}

const REQUIRED_COLUMNS = ['Question', 'Numbers', 'Equation', 'Answer'] as const;
const OPERATORS = new Set(['+', '-', '*', '/']);
const NUMBER_REFERENCE = /^number(\d+)$/;
/** A numeric constant as the data writes them: `100.0`, `0.01`, `12`. */
const CONSTANT = /^\d+(\.\d+)?$/;

/** Reads one MAWPS CSV file; the split name (for ids) defaults to the file's base name. */
export function loadMawpsCsv(path: string, split = basename(path, '.csv')): MawpsRow[] {
  return parseMawpsCsv(readFileSync(path, 'utf8'), path, split);
}

/**
 * Parses MAWPS CSV text. Extra columns (group_nums, Body, Ques_Statement) are ignored.
 * A malformed row throws an Error naming the file, line and column, e.g.
 * `train.csv line 7, column Numbers: "8.0 two" is not a number`.
 */
export function parseMawpsCsv(text: string, fileName: string, split = 'data'): MawpsRow[] {
  const records = parse(text, {
    columns: true,
    info: true,
    skip_empty_lines: true,
    relax_column_count: true,
  }) as Array<{ record: Record<string, string | undefined>; info: { lines: number } }>;

  return records.map(({ record, info }, index) => {
    const where = (column: string) => `${fileName} line ${info.lines}, column ${column}`;
    for (const column of REQUIRED_COLUMNS) {
      if (record[column] === undefined) throw new Error(`${where(column)}: missing`);
    }

    const question = record.Question!.trim();
    if (question === '') throw new Error(`${where('Question')}: empty`);
    const numbers = parseNumbers(record.Numbers!, where('Numbers'));
    const equation = checkEquation(record.Equation!, numbers.length, where('Equation'));
    const answer = Number(record.Answer);
    if (record.Answer!.trim() === '' || !Number.isFinite(answer)) {
      throw new Error(`${where('Answer')}: "${record.Answer}" is not a number`);
    }
    return { id: `${split}-${index}`, question, numbers, equation, answer, line: info.lines };
  });
}

function parseNumbers(text: string, where: string): number[] {
  const parts = text
    .trim()
    .split(/\s+/)
    .filter((part) => part !== '');
  return parts.map((part) => {
    const value = Number(part);
    if (!Number.isFinite(value))
      throw new Error(`${where}: "${part}" in "${text}" is not a number`);
    return value;
  });
}

/**
 * Checks tokens and prefix structure (each operator takes two operands, nothing left
 * over) without evaluating, and returns the equation single-spaced.
 */
function checkEquation(text: string, numberCount: number, where: string): string {
  const tokens = text
    .trim()
    .split(/\s+/)
    .filter((token) => token !== '');
  // Operands still owed: starts at one (the whole expression), an operator adds one.
  let pending = 1;
  tokens.forEach((token, position) => {
    if (pending === 0) {
      throw new Error(`${where}: "${text}" has extra tokens from position ${position}`);
    }
    const reference = NUMBER_REFERENCE.exec(token);
    if (OPERATORS.has(token)) {
      pending += 1;
    } else if (reference) {
      if (Number(reference[1]) >= numberCount) {
        throw new Error(`${where}: "${token}" refers past the ${numberCount} Numbers of the row`);
      }
      pending -= 1;
    } else if (CONSTANT.test(token)) {
      pending -= 1;
    } else {
      throw new Error(
        `${where}: token "${token}" is not an operator (+ - * /), numberN or a constant`,
      );
    }
  });
  if (pending !== 0) throw new Error(`${where}: "${text}" is incomplete`);
  return tokens.join(' ');
}
