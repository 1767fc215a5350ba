import { describe, expect, test } from 'bun:test';
import { z } from 'zod';
import { ConfigError, defineConfig, describeConfig } from './config.js';

const SamplerConfig = z
  .object({
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(50051)
      .describe('gRPC port; 0 picks a free one. Default 50051.'),
    metricsPort: z
      .number()
      .int()
      .min(-1)
      .default(-1)
      .describe('Prometheus port; 0 ephemeral, -1 off. Default -1.'),
    device: z.enum(['cpu', 'cuda']).default('cpu').describe('ONNX Runtime execution provider.'),
    warmup: z.boolean().default(false).describe('Load the base model at start-up.'),
  })
  .strict();

describe('defineConfig', () => {
  test('defaults, then env, then flags, then overrides', () => {
    expect(defineConfig(SamplerConfig)).toEqual({
      port: 50051,
      metricsPort: -1,
      device: 'cpu',
      warmup: false,
    });
    const config = defineConfig(SamplerConfig, {
      envPrefix: 'GSIL_SAMPLER_',
      env: { GSIL_SAMPLER_PORT: '7000', GSIL_SAMPLER_METRICS_PORT: '9464', GSIL_OTHER: 'x' },
      argv: ['--port=7001', '--warmup', '--device', 'cuda', 'positional'],
      overrides: { metricsPort: 0 },
    });
    expect(config).toEqual({ port: 7001, metricsPort: 0, device: 'cuda', warmup: true });
  });

  test('an invalid value names the field, the value and its origin, and what is accepted', () => {
    let error: ConfigError | undefined;
    try {
      defineConfig(SamplerConfig, {
        envPrefix: 'GSIL_SAMPLER_',
        env: { GSIL_SAMPLER_PORT: 'abc' },
        argv: ['--device', 'tpu'],
      });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toEqual([
      'port: received "abc" (from GSIL_SAMPLER_PORT); Invalid input: expected number, received string' +
        ' (gRPC port; 0 picks a free one. Default 50051.)',
      'device: received "tpu" (from --device); Invalid option: expected one of "cpu"|"cuda"' +
        ' (ONNX Runtime execution provider.)',
    ]);
    expect(() => defineConfig(SamplerConfig, { overrides: { port: 70000 } })).toThrow(
      'port: received 70000 (from override); Too big: expected number to be <=65535',
    );
  });

  test('every field is documented with its default', () => {
    expect(describeConfig(SamplerConfig, 'GSIL_SAMPLER_')[1]).toBe(
      '--metrics-port <number>, env GSIL_SAMPLER_METRICS_PORT (default -1): ' +
        'Prometheus port; 0 ephemeral, -1 off. Default -1.',
    );
  });
});
