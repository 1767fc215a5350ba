import { describe, expect, test } from 'bun:test';
import { cacheKey, type PairScore, ResultCache } from './result-cache.ts';

const score = (logprob: number): PairScore => ({
  logprob,
  tokenCount: 1,
  tokenLogprobs: Float32Array.of(logprob),
});

describe('ResultCache', () => {
  test('keys separate model, version, prompt and response', () => {
    const keys = new Set([
      cacheKey('m', 'v1', [1, 2], [3]),
      cacheKey('m', 'v2', [1, 2], [3]),
      cacheKey('n', 'v1', [1, 2], [3]),
      cacheKey('m', 'v1', [1], [2, 3]),
      cacheKey('m', 'v1', [1, 2, 3], []),
    ]);
    expect(keys.size).toBe(5);
  });

  test('evicts the least recently used entry and counts hits', () => {
    const cache = new ResultCache(2);
    cache.set('a', score(-1));
    cache.set('b', score(-2));
    expect(cache.get('a')?.logprob).toBe(-1); // a is now the most recent
    cache.set('c', score(-3)); // evicts b
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('c')?.logprob).toBe(-3);
    expect(cache.size).toBe(2);
    expect([cache.hits, cache.misses]).toEqual([2, 1]);
  });

  test('capacity 0 stores nothing', () => {
    const cache = new ResultCache(0);
    cache.set('a', score(-1));
    expect(cache.get('a')).toBeUndefined();
    expect(cache.size).toBe(0);
  });
});
