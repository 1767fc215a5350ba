import { describe, expect, test } from 'bun:test';
import { parseLossConfig } from './config';

describe('parseLossConfig', () => {
  test('fills the paper defaults', () => {
    expect(parseLossConfig({})).toEqual({ kind: 'bernoulli', alpha: 0.01, beta: 2 });
    expect(parseLossConfig(undefined)).toEqual({ kind: 'bernoulli', alpha: 0.01, beta: 2 });
  });

  test('rejects a non-positive alpha, naming the field and value', () => {
    expect(() => parseLossConfig({ alpha: 0 })).toThrow(
      'loss.alpha must be a finite number > 0 (it scales the log ratio); got 0',
    );
  });

  test('spin needs a positive beta; other kinds accept any finite beta', () => {
    expect(() => parseLossConfig({ kind: 'spin', beta: 0 })).toThrow('loss.beta must be > 0');
    expect(parseLossConfig({ kind: 'hinge', beta: -1 }).beta).toBe(-1);
  });

  test('rejects an unknown kind and unknown fields', () => {
    expect(() => parseLossConfig({ kind: 'dpo' })).toThrow('loss.kind');
    expect(() => parseLossConfig({ alpah: 1 })).toThrow('invalid loss config');
  });
});
