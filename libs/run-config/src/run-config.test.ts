import { describe, expect, test } from 'bun:test';
import { GsilError, Status } from '@gsil/service-kit';
import { parseRunConfig } from './run-config.ts';

const ADDRESSES = { samplerAddresses: ['127.0.0.1:1'], ratioAddresses: ['127.0.0.1:2'] };

function errorOf(input: unknown): GsilError {
  try {
    parseRunConfig(input);
  } catch (err) {
    if (err instanceof GsilError) return err;
    throw err;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseRunConfig', () => {
  test('fills every default from the addresses alone', () => {
    const config = parseRunConfig(JSON.stringify(ADDRESSES));
    expect(config.baseModel).toBe('stories260k');
    expect(config.task).toEqual({ name: 'mawps', trainFile: '', devFile: '', trainLimit: 0 });
    expect(config.stages.sft).toBeUndefined();
    expect(config.stages.gsil.loss).toBe('bernoulli');
    expect(config.stages.gsil.alpha).toBe(0.01);
    expect(config.stages.gsil.beta).toBe(2);
    expect(config.stages.gsil.sampling.temperature).toBe(0);
    expect(config.optimizer.name).toBe('rmsprop');
    expect(config.shardSize).toBe(32);
    expect(config.logpTolerance).toBe(1e-3);
  });

  test('fills the defaults of a partly given stage', () => {
    const config = parseRunConfig({ ...ADDRESSES, stages: { sft: { epochs: 2 } } });
    expect(config.stages.sft).toEqual({ epochs: 2, learningRate: 1e-3, batchSize: 16 });
    expect(config.stages.gsil.iterations).toBe(1);
  });

  test('names field, value and accepted values of a bad enum', () => {
    const err = errorOf({ ...ADDRESSES, stages: { gsil: { loss: 'dpo' } } });
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.message).toBe(
      'invalid run config: stages.gsil.loss: got "dpo"; accepted values: "bernoulli", ' +
        '"brier", "hinge", "kliep", "lsif", "spin", "sft"',
    );
  });

  test('names an unknown field', () => {
    const err = errorOf({ ...ADDRESSES, optimizer: { lr: 1 } });
    expect(err.message).toBe('invalid run config: unknown field(s) in optimizer: lr');
  });

  test('names a number out of range with the value received', () => {
    const err = errorOf({ ...ADDRESSES, optimizer: { learningRate: -1 } });
    expect(err.message).toMatch(/^invalid run config: optimizer.learningRate: got -1; /);
  });

  test('requires at least one sampler and one ratio address', () => {
    const err = errorOf({ ratioAddresses: ['x:1'] });
    expect(err.message).toMatch(/^invalid run config: samplerAddresses: got nothing; /);
  });

  test('rejects text that is not JSON', () => {
    const err = errorOf('{seed: 1');
    expect(err.code).toBe(Status.INVALID_ARGUMENT);
    expect(err.message).toMatch(/^invalid run config: config_json is not JSON/);
  });
});
