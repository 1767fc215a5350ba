// The trainer process's own configuration (not a run's: see run-config.ts). Fields come
// from flags (`--runs-dir`), GSIL_TRAINER_* environment variables, or `startTrainer`.

import { defineConfig } from '@gsil/service-kit';
import { z } from 'zod';

export const TrainerServerConfigSchema = z
  .object({
    port: z.number().int().min(0).max(65535).default(50053).describe('gRPC port; 0 picks one'),
    host: z.string().default('0.0.0.0').describe('address to bind'),
    runsDir: z.string().default('runs').describe('folder holding one folder per run'),
    storeDir: z.string().default('').describe('model store folder; empty means <runsDir>/models'),
    metricsPort: z
      .number()
      .int()
      .min(-1)
      .max(65535)
      .default(-1)
      .describe('Prometheus /metrics port: 0 ephemeral, -1 off'),
    logLevel: z.string().default('').describe('pino level; empty means GSIL_LOG_LEVEL or info'),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('milliseconds in-flight calls may finish after SIGTERM'),
    handleSignals: z.boolean().default(true).describe('stop gracefully on SIGTERM/SIGINT'),
  })
  // Not strict: `gsil serve` passes one options object to every service, and the fields
  // meant for the sampler or ratio service (modelStore, provider ...) are ignored here.
  .strip();

export type TrainerServerConfig = z.infer<typeof TrainerServerConfigSchema>;
export type TrainerServerConfigInput = z.input<typeof TrainerServerConfigSchema>;

export function loadTrainerServerConfig(
  overrides: TrainerServerConfigInput = {},
  argv: string[] = [],
): TrainerServerConfig {
  return defineConfig(TrainerServerConfigSchema, {
    envPrefix: 'GSIL_TRAINER_',
    argv,
    overrides: overrides as Record<string, unknown>,
  });
}
