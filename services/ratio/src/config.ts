// The ratio service's configuration: one validated schema. Values come from defaults,
// GSIL_RATIO_* environment variables, `gsil serve ratio --flags`, then explicit options
// (see defineConfig in libs/service-kit); an invalid value fails at start-up with a sentence
// naming the field, the value received and what is accepted.

import { EXECUTION_PROVIDER_HELP, EXECUTION_PROVIDERS } from '@gsil/inference';
import { defineConfig } from '@gsil/service-kit';
import { z } from 'zod';

export const RATIO_ENV_PREFIX = 'GSIL_RATIO_';

export { EXECUTION_PROVIDERS };

export const RatioConfigSchema = z
  .object({
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(50052)
      .describe('gRPC port; 0 picks a free one'),
    host: z.string().min(1).default('0.0.0.0').describe('bind address'),
    metricsPort: z
      .number()
      .int()
      .min(-1)
      .max(65535)
      .default(-1)
      .describe('Prometheus /metrics port; 0 ephemeral, -1 off'),
    modelRoot: z
      .string()
      .min(1)
      .optional()
      .describe(
        'directory of model versions laid out as <name>/<version>/ (model.onnx, config.json, tokenizer.json) (default: none)',
      ),
    modelStore: z
      .string()
      .min(1)
      .optional()
      .describe(
        'trainer address host:port whose ExportModel stream serves versions missing locally (default: none)',
      ),
    cacheDir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'where versions copied from modelRoot or pulled from modelStore are kept (sha256-checked) (default: a fresh temporary folder per process, removed at shutdown)',
      ),
    provider: z.enum(EXECUTION_PROVIDERS).default('auto').describe(EXECUTION_PROVIDER_HELP),
    threads: z
      .number()
      .int()
      .min(0)
      .default(1)
      .describe(
        'ONNX Runtime intra-op threads per session; 0 lets ONNX Runtime choose (one per core). On stories260K with 2 cores, scoring 64 pairs took a median 484 ms with 1 thread against 2086 ms with 0: small operators lose more to thread hand-offs than they gain. Scale with replicas; raise it for large models on many cores',
      ),
    maxBatchTokens: z
      .number()
      .int()
      .positive()
      .default(8192)
      .describe('most padded tokens (rows x longest sequence) in one forward pass'),
    maxBatchPairs: z
      .number()
      .int()
      .positive()
      .default(64)
      .describe('most sequences in one forward pass'),
    cacheEntries: z
      .number()
      .int()
      .min(0)
      .default(100_000)
      .describe('result cache size in scored pairs (LRU); 0 disables it'),
    maxLoadedModels: z
      .number()
      .int()
      .positive()
      .default(4)
      .describe('model versions kept loaded at once (LRU)'),
    maxPairsPerRequest: z
      .number()
      .int()
      .positive()
      .default(4096)
      .describe('most pairs in one LogProbs or Ratios request'),
    shutdownGraceMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('milliseconds in-flight calls may finish after SIGTERM before they are cancelled'),
  })
  .strict();

export type RatioConfig = z.infer<typeof RatioConfigSchema>;

/** Options as startRatio and the CLI pass them; every field is optional. */
export type RatioOptions = Partial<RatioConfig>;

/**
 * The effective configuration: schema defaults, then GSIL_RATIO_* variables, then `options`.
 * Throws ConfigError naming each invalid field, the value received and what is accepted.
 */
export function loadRatioConfig(
  options: Record<string, unknown> = {},
  env: Record<string, string | undefined> = process.env,
): RatioConfig {
  // The CLI passes options meant for other services too (runsDir, readyFile): keep ours.
  const overrides = Object.fromEntries(
    Object.entries(options).filter(([key]) => key in RatioConfigSchema.shape),
  );
  return defineConfig(RatioConfigSchema, { envPrefix: RATIO_ENV_PREFIX, env, overrides });
}
