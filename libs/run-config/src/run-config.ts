// The configuration of one training run: what StartRunRequest.config_json holds. Validated
// once when the run starts, so a bad value fails with a sentence naming the field, the value
// received and what is accepted, rather than as NaN losses an hour later.

import { LOSS_KINDS } from '@gsil/gsil';
import { GsilError, Status } from '@gsil/service-kit';
import { z } from 'zod';

const positiveInt = () => z.number().int().positive();

/** How the sampler draws self-generated responses (SamplingParams of sampler.proto). */
export const SamplingConfigSchema = z
  .object({
    /** Softmax temperature; 0 is greedy decoding, the paper's choice. Default 0. */
    temperature: z.number().min(0).default(0),
    /** Nucleus mass kept; 1 disables it. Default 1. */
    topP: z.number().gt(0).max(1).default(1),
    /** Most probable tokens kept; 0 disables it. Default 0. */
    topK: z.number().int().min(0).default(0),
    /** Longest self-generated response, in tokens (EOS included). Default 64. */
    maxNewTokens: positiveInt().default(64),
  })
  .strict();

/** Supervised fine-tuning on the demonstrations before the GSIL iterations. */
export const SftStageSchema = z
  .object({
    /** Passes over the training demonstrations. Default 1. */
    epochs: positiveInt().default(1),
    /** Peak learning rate of this stage (per step, unitless). Default 1e-3. */
    learningRate: z.number().positive().default(1e-3),
    /** Demonstrations per optimizer step (before accumulation). Default 16. */
    batchSize: positiveInt().default(16),
  })
  .strict();

/** The GSIL iterations (DESIGN.md, "What the system does"). */
export const GsilStageSchema = z
  .object({
    /** Number of iterations K; each ends with a published version "it<k>". Default 1. */
    iterations: z.number().int().min(0).default(1),
    /** The loss; see libs/gsil. Default "bernoulli" (the logistic classifier). */
    loss: z.enum(LOSS_KINDS).default('bernoulli'),
    /** Scale of the log ratio in the logit f = alpha * r + beta. Default 0.01. */
    alpha: z.number().positive().default(0.01),
    /** Shift of the logit (the margin scale for "spin"). Default 2. */
    beta: z.number().default(2),
    /** Passes over the (demonstration, generated) pairs per iteration. Default 1. */
    epochsPerIteration: positiveInt().default(1),
    /** Self-generated responses per prompt; each is paired with the demonstration. Default 1. */
    samplesPerPrompt: positiveInt().default(1),
    sampling: SamplingConfigSchema.default(SamplingConfigSchema.parse({})),
  })
  .strict();

export const OptimizerConfigSchema = z
  .object({
    /** "adamw" or "rmsprop" (the authors' choice). Default "rmsprop". */
    name: z.enum(['adamw', 'rmsprop']).default('rmsprop'),
    /** Peak learning rate of the GSIL stage (per step, unitless). Default 1e-4. */
    learningRate: z.number().positive().default(1e-4),
    /** Decoupled weight decay (adamw only), per step times the learning rate. Default 0. */
    weightDecay: z.number().min(0).default(0),
    /** Steps of linear warm-up from 0 to the peak learning rate. Default 0. */
    warmupSteps: z.number().int().min(0).default(0),
    /** Shape after warm-up, over the steps of one stage or iteration. Default "constant". */
    schedule: z.enum(['constant', 'linear', 'cosine']).default('constant'),
    /** Global L2 norm the gradient is clipped to; 0 disables clipping. Default 1. */
    maxGradNorm: z.number().min(0).default(1),
    /** Micro-batches whose gradients are summed before one optimizer step. Default 1. */
    gradAccumulationSteps: positiveInt().default(1),
    /** Pairs (GSIL) per micro-batch. Default 8. */
    batchSize: positiveInt().default(8),
  })
  .strict();

export const EvalConfigSchema = z
  .object({
    /** Longest greedy dev answer, in tokens. Default 48. */
    maxNewTokens: positiveInt().default(48),
    /** Dev examples evaluated; 0 means all. Default 0. */
    limit: z.number().int().min(0).default(0),
  })
  .strict();

export const TaskConfigSchema = z
  .object({
    /** Which dataset and prompt format. Default "mawps". */
    name: z.enum(['mawps', 'gsm8k']).default('mawps'),
    /** Training demonstrations; empty means the resolved asset (MAWPS fold 0, GSM8K train). */
    trainFile: z.string().default(''),
    /** Dev set; empty means the resolved asset (MAWPS fold 0 dev, GSM8K test). */
    devFile: z.string().default(''),
    /** Training examples used; 0 means all. Default 0. */
    trainLimit: z.number().int().min(0).default(0),
  })
  .strict();

export const RunConfigSchema = z
  .object({
    /** Asset name ("stories260k") or the path of a Hugging Face model folder. */
    baseModel: z.string().min(1).default('stories260k'),
    task: TaskConfigSchema.default(TaskConfigSchema.parse({})),
    stages: z
      .object({
        /** Omit to skip supervised fine-tuning. */
        sft: SftStageSchema.optional(),
        gsil: GsilStageSchema.default(GsilStageSchema.parse({})),
      })
      .strict()
      .default({ gsil: GsilStageSchema.parse({}) }),
    optimizer: OptimizerConfigSchema.default(OptimizerConfigSchema.parse({})),
    eval: EvalConfigSchema.default(EvalConfigSchema.parse({})),
    /** Seed of everything random; per-phase seeds derive from (seed, stage, iteration). */
    seed: z.number().int().min(0).default(0),
    /** host:port of each sampler replica; at least one. */
    samplerAddresses: z.array(z.string().min(1)).min(1),
    /** host:port of each ratio replica; at least one. */
    ratioAddresses: z.array(z.string().min(1)).min(1),
    /** Prompts per sampler request and pairs per ratio request. Default 32. */
    shardSize: positiveInt().default(32),
    /** Sampler requests in flight at once across all replicas. Default 4. */
    maxShardsInFlight: positiveInt().default(4),
    /** Attempts per shard (each on the next replica) before the run fails. Default 4. */
    shardAttempts: positiveInt().default(4),
    /** Wait before a shard's first retry, doubled for each further one, in ms. Default 500. */
    shardRetryDelayMs: z.number().int().min(0).default(500),
    /** Deadline of one sampler or ratio request, in milliseconds. Default 600000. */
    requestTimeoutMs: positiveInt().default(600_000),
    /** TF.js backend: "auto" picks the fastest that loads. Default "auto". */
    backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
    /**
     * Largest accepted |policy - reference| summed log-probability of one sequence (nats)
     * when the trainer checks its own model against the ratio service. Default 1e-3.
     */
    logpTolerance: z.number().positive().default(1e-3),
  })
  .strict();

export type RunConfig = z.infer<typeof RunConfigSchema>;
export type RunConfigInput = z.input<typeof RunConfigSchema>;
export type SamplingConfig = z.infer<typeof SamplingConfigSchema>;

function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function describeIssue(input: unknown, issue: z.core.$ZodIssue): string {
  const field = issue.path.map(String).join('.') || '(root)';
  if (issue.code === 'unrecognized_keys') {
    const where = issue.path.length > 0 ? ` in ${field}` : '';
    return `unknown field(s)${where}: ${issue.keys.join(', ')}`;
  }
  const got = JSON.stringify(valueAt(input, issue.path)) ?? 'nothing';
  if (issue.code === 'invalid_value') {
    const accepted = issue.values.map((v) => JSON.stringify(v)).join(', ');
    return `${field}: got ${got}; accepted values: ${accepted}`;
  }
  return `${field}: got ${got}; ${issue.message}`;
}

/**
 * Parses and validates a run configuration (JSON text or an object), filling defaults.
 * Throws a GsilError INVALID_ARGUMENT such as
 * `invalid run config: stages.gsil.loss: got "dpo"; accepted values: "bernoulli", ...`.
 */
export function parseRunConfig(json: string | unknown): RunConfig {
  let input: unknown = json;
  if (typeof json === 'string') {
    try {
      input = json.trim() === '' ? {} : JSON.parse(json);
    } catch (err) {
      throw new GsilError(
        Status.INVALID_ARGUMENT,
        `invalid run config: config_json is not JSON (${(err as Error).message})`,
        err,
      );
    }
  }
  const result = RunConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => describeIssue(input, issue));
  throw new GsilError(Status.INVALID_ARGUMENT, `invalid run config: ${problems.join('; ')}`);
}
