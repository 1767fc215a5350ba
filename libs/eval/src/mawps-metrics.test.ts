import { describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { loadMawpsCsv, type MawpsRow } from '@gsil/data';
import { answersMatch } from './answers';
import { mawpsMetrics } from './mawps-metrics';
import { evaluatePrefixEquation } from './prefix-equation';

const train = loadMawpsCsv(await assetFile('mawps-fold0', 'train.csv'));
const dev = loadMawpsCsv(await assetFile('mawps-fold0', 'dev.csv'));

describe('gold equations against the data set', () => {
  test('every dev gold equation evaluates; all but 3 give their Answer within tolerance', () => {
    const misses = dev.filter((row) => {
      const value = evaluatePrefixEquation(row.equation, row.numbers);
      expect(value).not.toBeNull();
      return !answersMatch(value!, row.answer);
    });
    // Found with an independent Python evaluator too: two answers rounded in the data
    // (2.99 / 12 = 0.2492 -> 0.25; 69.361 -> 69.4) and one wrong label (40 / 7 -> 5).
    expect(misses.map((row) => [row.line, row.answer])).toEqual([
      [84, 0.25],
      [123, 69.4],
      [288, 5],
    ]);
    const gold = mawpsMetrics(dev.map((row) => ({ equationText: row.equation, row })));
    expect(gold.answerAccuracy).toBe(381 / 384);
    expect(gold.equationMatch).toBe(1);
    expect(gold.unparsableRate).toBe(0);
  });

  test('train gold equations: 1528 of 1537 match their Answer (Python: the same 9 misses)', () => {
    const misses = train.filter(
      (row) => !answersMatch(evaluatePrefixEquation(row.equation, row.numbers)!, row.answer),
    );
    expect(misses.map((row) => row.line)).toEqual([19, 214, 384, 736, 978, 1054, 1439, 1466, 1531]);
  });
});

describe('most-common-equation baseline (data/README.md: about 18%)', () => {
  test('always answering "+ number0 number1" scores 68 / 384 on dev', () => {
    const counts = new Map<string, number>();
    for (const row of train) counts.set(row.equation, (counts.get(row.equation) ?? 0) + 1);
    const [mostCommon, count] = [...counts].sort((a, b) => b[1] - a[1])[0];
    expect([mostCommon, count]).toEqual(['+ number0 number1', 276]);

    const metrics = mawpsMetrics(dev.map((row) => ({ equationText: mostCommon, row })));
    // Pinned; an independent Python evaluation gave the same 68 hits and 64 exact matches.
    expect(metrics.answerAccuracy).toBe(68 / 384); // 17.71%
    expect(metrics.equationMatch).toBe(64 / 384);
    // The 2 dev rows with a single number have no number1.
    expect(metrics.unparsableRate).toBe(2 / 384);
  });
});

describe('mawpsMetrics', () => {
  const row = (id: string, numbers: number[], equation: string, answer: number): MawpsRow => ({
    id,
    question: 'q',
    numbers,
    equation,
    answer,
    line: 2,
  });

  test('hand-computed rates over four predictions', () => {
    const metrics = mawpsMetrics([
      // Exact equation.
      { equationText: ' - number0 number1', row: row('a', [8, 2], '- number0 number1', 6) },
      // Different equation, same answer: correct but no equation match.
      {
        equationText: '+ number1 number1\nOnce upon',
        row: row('b', [8, 2], '* number1 number1', 4),
      },
      // Evaluates, wrong answer.
      { equationText: '+ number0 number1', row: row('c', [8, 2], '- number0 number1', 6) },
      // Unparsable.
      { equationText: 'Once upon a time', row: row('d', [8, 2], '- number0 number1', 6) },
    ]);
    expect(metrics.count).toBe(4);
    expect(metrics.answerAccuracy).toBe(0.5);
    expect(metrics.equationMatch).toBe(0.25);
    expect(metrics.unparsableRate).toBe(0.25);
    expect(metrics.examples[1]).toEqual({
      id: 'b',
      predictedEquation: '+ number1 number1',
      goldEquation: '* number1 number1',
      predictedValue: 4,
      answer: 4,
      answerCorrect: true,
      equationMatch: false,
    });
    expect(mawpsMetrics([]).answerAccuracy).toBe(0);
  });

  test('tolerance: absolute 1e-4 up to 1, relative 1e-4 above', () => {
    expect(answersMatch(0.10009, 0.1)).toBe(true);
    expect(answersMatch(0.1002, 0.1)).toBe(false);
    expect(answersMatch(10000.9, 10000)).toBe(true);
    expect(answersMatch(10001.1, 10000)).toBe(false);
  });
});
