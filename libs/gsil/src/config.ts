// The loss choice of a GSIL run, validated once when a run is configured so that a bad
// value fails at start-up with a sentence naming the field, not as NaN losses later.

import { z } from 'zod';

/**
 * The density-ratio classifier losses of GSIL (DESIGN.md, "What the system does"), plus
 * two baselines that share the machinery: `spin` (pairwise, as in SPIN) and `sft`
 * (negative log-likelihood of the demonstrations).
 */
export const LOSS_KINDS = ['bernoulli', 'brier', 'hinge', 'kliep', 'lsif', 'spin', 'sft'] as const;
export type LossKind = (typeof LOSS_KINDS)[number];

/** The paper's defaults for a 7B model; small models need their own values. */
export const DEFAULT_ALPHA = 0.01;
export const DEFAULT_BETA = 2;

export const LossConfigSchema = z
  .object({
    /**
     * Which loss to optimise. Default `bernoulli` (the logistic classifier, the
     * paper's main variant).
     */
    kind: z.enum(LOSS_KINDS).default('bernoulli'),
    /**
     * Scale of the log ratio in the classifier logit `f = alpha * r + beta`, where `r`
     * is the policy-minus-reference log-probability summed over response tokens.
     * Must be a finite number > 0. Default 0.01. Unused by `spin` and `sft`.
     */
    alpha: z.number().default(DEFAULT_ALPHA),
    /**
     * Shift of the classifier logit `f = alpha * r + beta` for the GSIL losses; for
     * `spin` it is instead the scale of the pairwise margin (SPIN's lambda) and must
     * be > 0. Any finite number otherwise. Default 2. Unused by `sft`.
     */
    beta: z.number().default(DEFAULT_BETA),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (!Number.isFinite(config.alpha) || config.alpha <= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['alpha'],
        message: `loss.alpha must be a finite number > 0 (it scales the log ratio); got ${config.alpha}`,
      });
    }
    if (!Number.isFinite(config.beta)) {
      ctx.addIssue({
        code: 'custom',
        path: ['beta'],
        message: `loss.beta must be a finite number; got ${config.beta}`,
      });
    } else if (config.kind === 'spin' && config.beta <= 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['beta'],
        message: `loss.beta must be > 0 for kind "spin" (it scales the pairwise margin); got ${config.beta}`,
      });
    }
  });

export type LossConfig = z.infer<typeof LossConfigSchema>;
/** What a caller may pass: every field optional, defaults filled in by `parseLossConfig`. */
export type LossConfigInput = z.input<typeof LossConfigSchema>;

/**
 * Validates a loss configuration and fills defaults. Throws an Error whose message lists
 * every invalid field with the value received and what is accepted, e.g.
 * `invalid loss config: loss.alpha must be a finite number > 0 (it scales the log ratio); got 0`.
 */
export function parseLossConfig(input: unknown): LossConfig {
  const result = LossConfigSchema.safeParse(input ?? {});
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    if (issue.code === 'custom') return issue.message;
    const field = ['loss', ...issue.path.map(String)].join('.');
    return `${field}: ${issue.message}`;
  });
  throw new Error(`invalid loss config: ${problems.join('; ')}`);
}
