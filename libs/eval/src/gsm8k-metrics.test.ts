import { describe, expect, test } from 'bun:test';
import { assetFile } from '@gsil/assets';
import { loadGsm8kJsonl } from '@gsil/data';
import { extractGsm8kAnswer, gsm8kMetrics } from './gsm8k-metrics';

describe('extractGsm8kAnswer', () => {
  test('the number after ####, else the last number', () => {
    expect(extractGsm8kAnswer('She makes 9 * 2 = $18 every day.\n#### 18')).toBe(18);
    expect(extractGsm8kAnswer('#### 1,200 dollars')).toBe(1200);
    expect(extractGsm8kAnswer('The total is $1,234.50.')).toBe(1234.5);
    expect(extractGsm8kAnswer('16-3-4=9 eggs')).toBe(9);
    expect(extractGsm8kAnswer('It fell to -5 degrees')).toBe(-5);
    expect(extractGsm8kAnswer('Once upon a time')).toBeNull();
  });

  test('every GSM8K test solution yields its own final answer', async () => {
    const rows = loadGsm8kJsonl(await assetFile('gsm8k', 'test.jsonl'));
    const metrics = gsm8kMetrics(
      rows.map((row) => ({ responseText: row.solution, answer: row.answer })),
    );
    expect(metrics).toEqual({ count: 1319, accuracy: 1, extractedRate: 1 });
  });

  test('hand-computed rates', () => {
    expect(
      gsm8kMetrics([
        { responseText: '#### 4', answer: 4 },
        { responseText: 'so 5', answer: 4 },
        { responseText: 'no idea', answer: 4 },
        { responseText: '2 + 2 = 4', answer: 4 },
      ]),
    ).toEqual({ count: 4, accuracy: 0.5, extractedRate: 0.75 });
  });
});
