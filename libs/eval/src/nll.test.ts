import { describe, expect, test } from 'bun:test';
import { meanNll } from './nll';

describe('meanNll', () => {
  test('hand-computed: 6 nats over 3 tokens, and 2 over 1', () => {
    const summary = meanNll([-6, -2], [3, 1]);
    expect(summary.nllPerToken).toBe(2); // 8 / 4
    expect(summary.nllPerSequence).toBe(4); // 8 / 2
    expect(summary.perplexity).toBeCloseTo(Math.E ** 2, 12);
    expect(summary.tokenCount).toBe(4);
  });

  test('rejects mismatched or empty input', () => {
    expect(() => meanNll([-1], [1, 2])).toThrow('1 log-probabilities but 2 token counts');
    expect(() => meanNll([], [])).toThrow('needs at least one example');
  });
});
