import { describe, expect, test } from 'bun:test';
import { ConfigError, describeConfig } from '@gsil/service-kit';
import { loadRatioConfig, RATIO_ENV_PREFIX, RatioConfigSchema } from './config.ts';

describe('ratio config', () => {
  test('defaults, then GSIL_RATIO_* variables, then options; foreign CLI options ignored', () => {
    const config = loadRatioConfig(
      { port: 7001, readyFile: '/tmp/x', runsDir: '/tmp/runs' },
      { GSIL_RATIO_PORT: '7000', GSIL_RATIO_MAX_BATCH_TOKENS: '4096', GSIL_RATIO_PROVIDER: 'cpu' },
    );
    expect(config.port).toBe(7001);
    expect(config.maxBatchTokens).toBe(4096);
    expect(config.provider).toBe('cpu');
    expect(config.cacheEntries).toBe(100_000);
    expect(config.host).toBe('0.0.0.0');
  });

  test('an invalid value names the field, the value, its origin and what is accepted', () => {
    let error: unknown;
    try {
      loadRatioConfig({}, { GSIL_RATIO_PROVIDER: 'tpu', GSIL_RATIO_CACHE_ENTRIES: '-5' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('provider: received "tpu" (from GSIL_RATIO_PROVIDER)');
    expect(problems).toContain('"auto"|"cuda"|"webgpu"|"cpu"');
    expect(problems).toContain('cacheEntries: received -5 (from GSIL_RATIO_CACHE_ENTRIES)');
  });

  test('every field is documented with its default', () => {
    for (const line of describeConfig(RatioConfigSchema, RATIO_ENV_PREFIX)) {
      expect(line).not.toContain('undocumented');
      // A schema default is printed as "(default X)"; an optional field says "(default: ...)".
      expect(line).toMatch(/\(default[ :]/);
    }
  });
});
