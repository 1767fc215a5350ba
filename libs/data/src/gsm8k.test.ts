import { describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { loadGsm8kJsonl, parseGsm8kJsonl, parseGsm8kNumber } from './gsm8k';

const TEST_JSONL = await assetFile('gsm8k', 'test.jsonl');
const TRAIN_JSONL = await assetFile('gsm8k', 'train.jsonl');

describe('GSM8K', () => {
  test('test split: 1,319 rows, first answer 18 (Janet ducks)', () => {
    const rows = loadGsm8kJsonl(TEST_JSONL);
    expect(rows.length).toBe(1319);
    expect(rows[0].id).toBe('test-0');
    expect(rows[0].answer).toBe(18);
    expect(rows[0].question.startsWith('Janet\u2019s ducks lay 16 eggs per day.')).toBe(true);
    expect(rows[1318].line).toBe(1319);
  });

  test('train split: 7,473 rows; thousands separators are removed', () => {
    const rows = loadGsm8kJsonl(TRAIN_JSONL);
    expect(rows.length).toBe(7473);
    expect(rows.every((row) => Number.isFinite(row.answer))).toBe(true);
  });

  test('parseGsm8kNumber', () => {
    expect(parseGsm8kNumber('1,200')).toBe(1200);
    expect(parseGsm8kNumber('$5.50.')).toBe(5.5);
    expect(parseGsm8kNumber('-3')).toBe(-3);
    expect(parseGsm8kNumber('twelve')).toBeNull();
  });

  test('errors name the file and line', () => {
    const good = JSON.stringify({ question: 'q?', answer: 'x\n#### 4' });
    expect(parseGsm8kJsonl(`${good}\n\n${good}\n`, 'a.jsonl').map((row) => row.line)).toEqual([
      1, 3,
    ]);
    expect(() => parseGsm8kJsonl(`${good}\n{"question": "q"`, 'a.jsonl')).toThrow(
      'a.jsonl line 2: not valid JSON',
    );
    const noMark = JSON.stringify({ question: 'q?', answer: '4' });
    expect(() => parseGsm8kJsonl(`${good}\n${noMark}`, 'a.jsonl')).toThrow(
      'a.jsonl line 2: answer has no "#### " final answer',
    );
  });
});
