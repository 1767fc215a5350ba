import { describe, expect, test } from 'bun:test';
import { ConfigError } from '@gsil/service-kit';
import { loadSamplerConfig } from './config.ts';
import { startSampler } from './main.ts';

const problems = (run: () => unknown): string => {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).message;
  }
  throw new Error('expected a ConfigError');
};

describe('sampler config', () => {
  test('defaults, documented with units', () => {
    const config = loadSamplerConfig({}, {});
    expect(config).toMatchObject({
      port: 50051,
      provider: 'auto',
      threads: 1,
      maxBatchSize: 64,
      decodeWorkers: 1,
      maxNewTokens: 64,
      maxNewTokensLimit: 1024,
      maxSamplesPerPrompt: 64,
      maxQueuedSequences: 4096,
      metricsPort: -1,
    });
  });

  test('environment fills in, options win, unknown CLI options are ignored', () => {
    const env = { GSIL_SAMPLER_MAX_BATCH_SIZE: '16', GSIL_SAMPLER_PROVIDER: 'cuda' };
    const options = { provider: 'cpu' as const, runsDir: '/x', readyFile: '/y' };
    const config = loadSamplerConfig(options, env);
    expect(config.maxBatchSize).toBe(16);
    expect(config.provider).toBe('cpu');
  });

  test('an invalid value names the field, the value, its origin and what is accepted', () => {
    const provider = problems(() => loadSamplerConfig({ provider: 'tpu' as never }, {}));
    expect(provider).toContain('provider: received "tpu" (from override)');
    expect(provider).toContain('"cuda"');
    const env = problems(() => loadSamplerConfig({}, { GSIL_SAMPLER_MAX_BATCH_SIZE: 'many' }));
    expect(env).toContain('maxBatchSize: received "many" (from GSIL_SAMPLER_MAX_BATCH_SIZE)');
    const limits = problems(() =>
      loadSamplerConfig({ maxNewTokens: 500, maxNewTokensLimit: 100 }, {}),
    );
    expect(limits).toContain('maxNewTokens: received 500; must be at most maxNewTokensLimit (100)');
  });

  test('startSampler fails at start-up on an invalid value', async () => {
    await expect(startSampler({ threads: -2 }, { env: {}, handleSignals: false })).rejects.toThrow(
      'threads: received -2',
    );
  });
});
