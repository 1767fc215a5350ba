import { describe, expect, test } from 'bun:test';
import { batches, mulberry32, shuffled } from './batching';

describe('mulberry32', () => {
  test('matches an independent implementation', () => {
    // The same algorithm re-implemented in Python with explicit 32-bit arithmetic.
    const rng = mulberry32(42);
    expect([rng(), rng(), rng()]).toEqual([
      0.6011037519201636, 0.44829055899754167, 0.8524657934904099,
    ]);
  });
});

describe('batches', () => {
  test('same seed, same order; every item exactly once; last batch smaller', () => {
    const items = Array.from({ length: 10 }, (_, i) => i);
    const first = batches(items, 4, mulberry32(7));
    expect(batches(items, 4, mulberry32(7))).toEqual(first);
    expect(first.map((batch) => batch.length)).toEqual([4, 4, 2]);
    expect(first.flat().sort((a, b) => a - b)).toEqual(items);
    expect(first.flat()).not.toEqual(items);
    expect(batches(items, 4, mulberry32(8))).not.toEqual(first);
  });

  test('without an rng the order is kept; the input is never mutated', () => {
    const items = [1, 2, 3];
    expect(batches(items, 2)).toEqual([[1, 2], [3]]);
    shuffled(items, mulberry32(1));
    expect(items).toEqual([1, 2, 3]);
    expect(() => batches(items, 0)).toThrow('batchSize must be a positive integer; got 0');
  });
});
