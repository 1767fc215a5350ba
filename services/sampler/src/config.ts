// The sampler's configuration: one validated schema. Values come from, lowest precedence
// first, the defaults below, GSIL_SAMPLER_* environment variables and the options given to
// startSampler (the CLI's flags).

import { EXECUTION_PROVIDER_HELP, EXECUTION_PROVIDERS } from '@gsil/inference';
import { ConfigError, defineConfig } from '@gsil/service-kit';
import { z } from 'zod';

export const ENV_PREFIX = 'GSIL_SAMPLER_';

const count = (min: number) => z.number().int().min(min);

export const SamplerConfig = z
  .object({
    port: count(0).max(65535).default(50051).describe('gRPC port; 0 picks a free one'),
    host: z.string().min(1).default('0.0.0.0').describe('bind address'),
    metricsPort: count(-1)
      .max(65535)
      .default(-1)
      .describe('Prometheus /metrics port; 0 ephemeral, -1 off'),
    modelRoot: z
      .string()
      .min(1)
      .optional()
      .describe(
        "shared directory of model versions, <name>/<version>/ holding model.onnx, config.json and tokenizer.json (as `gsil convert llama2c --onnx` writes them), copied into cacheDir on first use and checked against the folder's SHA256SUMS when it has one (default: none)",
      ),
    cacheDir: z
      .string()
      .min(1)
      .optional()
      .describe(
        'local folder of pulled, sha256-checked versions (default: a fresh temporary folder per process, removed on shutdown)',
      ),
    modelStore: z
      .string()
      .min(1)
      .optional()
      .describe('host:port of a trainer to pull model versions from (default: none)'),
    provider: z.enum(EXECUTION_PROVIDERS).default('auto').describe(EXECUTION_PROVIDER_HELP),
    threads: count(0)
      .default(1)
      .describe(
        'ONNX Runtime intra-op threads per session; 0 lets ONNX Runtime choose (one per core). Decoding a small model is many tiny operators, where threads cost more in hand-offs than they save: on stories260K with 2 cores, 0 decoded 2-3x slower than 1. Use decodeWorkers for more cores; raise this for large models',
      ),
    decodeWorkers: count(1)
      .max(256)
      .default(1)
      .describe(
        'decoding threads per model version, each with its own ONNX Runtime sessions (and so its own copy of the weights) and an even share of maxBatchSize; one keeps one core busy, so set it to the cores the replica may use',
      ),
    maxBatchSize: count(1)
      .max(4096)
      .default(64)
      .describe(
        'rows decoded together per model version, shared by all concurrent requests (continuous batching) and split evenly between the decode workers, in sequences',
      ),
    maxNewTokens: count(1)
      .default(64)
      .describe('tokens generated per sample when a request gives 0, in tokens'),
    maxNewTokensLimit: count(1)
      .default(1024)
      .describe('largest max_new_tokens a request may ask for, in tokens'),
    maxSamplesPerPrompt: count(1)
      .default(64)
      .describe('largest num_samples a request may ask for, in samples'),
    maxQueuedSequences: count(1)
      .default(4096)
      .describe('sequences admitted (running plus waiting) before requests get RESOURCE_EXHAUSTED'),
    maxResidentModels: count(1)
      .default(2)
      .describe('model versions kept loaded at once, least recently used evicted'),
    shutdownGraceMs: count(0)
      .default(10_000)
      .describe('milliseconds in-flight calls may finish after SIGTERM before they are cancelled'),
    preload: z
      .array(
        z.string().regex(/^[^/\s]+\/[^/\s]+$/, 'expected name/version, e.g. "stories260k/base"'),
      )
      .default([])
      .describe(
        'model versions (name/version, comma-separated) to pull, load and generate a token ' +
          'with before health reports SERVING, so readiness means warm; a version that fails ' +
          'stops start-up',
      ),
  })
  .strict();

export type SamplerConfig = z.infer<typeof SamplerConfig>;

/** Options as startSampler and the CLI pass them; every field is optional. */
export type SamplerOptions = Partial<SamplerConfig>;

/**
 * Validates the configuration; throws a ConfigError whose lines name the field, the value
 * received (and where it came from) and what is accepted.
 */
export function loadSamplerConfig(
  options: SamplerOptions = {},
  env: Record<string, string | undefined> = process.env,
): SamplerConfig {
  // The CLI passes options it does not know to every service (runsDir, readyFile): keep ours.
  const overrides = Object.fromEntries(
    Object.entries(options).filter(([key]) => key in SamplerConfig.shape),
  );
  const config = defineConfig(SamplerConfig, { envPrefix: ENV_PREFIX, env, overrides });
  if (config.maxNewTokens > config.maxNewTokensLimit) {
    throw new ConfigError([
      `maxNewTokens: received ${config.maxNewTokens}; must be at most maxNewTokensLimit (${config.maxNewTokensLimit})`,
    ]);
  }
  return config;
}
