import { describe, expect, test } from 'bun:test';
import { buildRunConfig, MAWPS_RECIPE, merge, type RunFlags } from './recipe.ts';

type Json = Record<string, unknown>;

describe('merge', () => {
  test('merges objects key by key and replaces everything else', () => {
    const merged = merge({ a: { b: 1, c: [1, 2] }, d: 'x' }, { a: { c: [3] }, e: 2 });
    expect(merged).toEqual({ a: { b: 1, c: [3] }, d: 'x', e: 2 });
  });

  test('leaves its inputs unchanged', () => {
    const base = { a: { b: 1 } };
    merge(base, { a: { b: 2 } });
    expect(base).toEqual({ a: { b: 1 } });
  });
});

describe('buildRunConfig', () => {
  test('the default is the mawps recipe as it stands', () => {
    expect(buildRunConfig({})).toEqual({ ...MAWPS_RECIPE, stages: MAWPS_RECIPE.stages });
  });

  test('flags override the recipe, --quick shrinks it, a config file sits in between', () => {
    // biome-ignore lint/suspicious/noExplicitAny: a deep look into untyped JSON
    type Deep = any;
    const config = buildRunConfig(
      { quick: true, loss: 'hinge', alpha: 0.5, temperature: 0.7, seed: 3, train: 't.csv' },
      { optimizer: { learningRate: 1e-5 } },
    ) as Deep;
    expect(config.stages.gsil.loss).toBe('hinge');
    expect(config.stages.gsil.alpha).toBe(0.5);
    // The recipe's other sampling fields stay; only the temperature changes.
    expect(config.stages.gsil.sampling).toEqual({
      ...(MAWPS_RECIPE.stages as Deep).gsil.sampling,
      temperature: 0.7,
    });
    expect(config.stages.gsil.iterations).toBe(1);
    expect(config.task).toEqual({ name: 'mawps', trainLimit: 64, trainFile: 't.csv' });
    expect(config.optimizer.learningRate).toBe(1e-5);
    expect(config.optimizer.name).toBe((MAWPS_RECIPE.optimizer as Json).name);
    expect(config.seed).toBe(3);
  });

  test('--sft-epochs 0 drops the SFT stage, --sft-epochs N sets its epochs', () => {
    const stages = (flags: RunFlags) => buildRunConfig(flags).stages as Record<string, unknown>;
    expect(stages({ sftEpochs: 0 }).sft).toBeUndefined();
    expect(stages({ sftEpochs: 0 }).gsil).toEqual((MAWPS_RECIPE.stages as Json).gsil);
    expect((stages({ sftEpochs: 3 }).sft as Json).epochs).toBe(3);
  });

  test('--recipe gsm8k selects the GSM8K task', () => {
    expect((buildRunConfig({ recipe: 'gsm8k' }).task as Json).name).toBe('gsm8k');
  });
});
