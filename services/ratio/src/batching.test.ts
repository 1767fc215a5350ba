import { describe, expect, test } from 'bun:test';
import { paddingFactor, planBatches } from './batching.ts';

describe('planBatches', () => {
  test('sorts by length and closes a batch at the token budget', () => {
    const lengths = [10, 3, 7, 3, 12, 5];
    // Sorted: 1(3) 3(3) 5(5) 2(7) 0(10) 4(12). Budget 16: [3,3,5] pads to 15; adding 7 -> 28.
    const batches = planBatches(lengths, { maxBatchTokens: 16, maxBatchPairs: 8 });
    expect(batches).toEqual([[1, 3, 5], [2], [0], [4]]);
    // Padded 15 + 7 + 10 + 12 = 44 over real 40 tokens.
    expect(paddingFactor(lengths, batches)).toBeCloseTo(44 / 40, 12);
  });

  test('closes a batch at the pair limit, and an over-long sequence still gets a batch', () => {
    expect(planBatches([4, 4, 4, 4, 4], { maxBatchTokens: 1000, maxBatchPairs: 2 })).toEqual([
      [0, 1],
      [2, 3],
      [4],
    ]);
    expect(planBatches([50, 2], { maxBatchTokens: 10, maxBatchPairs: 8 })).toEqual([[1], [0]]);
    expect(planBatches([], { maxBatchTokens: 10, maxBatchPairs: 8 })).toEqual([]);
  });
});
