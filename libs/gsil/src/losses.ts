// The GSIL objective in TF.js: a density-ratio classifier that tells demonstrations
// (real, y+) from the reference model's own samples (generated, y-), with the logit
// f(y) = alpha * r(y) + beta and r(y) = log pi_theta(y|x) - log pi_ref(y|x) summed over
// response tokens. One row per (y+, y-) pair; with several samples per prompt the
// trainer repeats the demonstration so that rows stay paired by index.

import * as tf from '@tensorflow/tfjs';
import type { LossKind } from './config';

/** Summed response log-probabilities, one float32 entry per pair: all of shape [pairs]. */
export interface GsilInputs {
  policyRealLogps: tf.Tensor1D;
  /** Required by every kind except `sft` (where it only feeds the reward metrics). */
  refRealLogps?: tf.Tensor1D;
  /** Required by every kind except `sft` (where it only feeds the reward metrics). */
  policyGeneratedLogps?: tf.Tensor1D;
  /** Required by every kind except `sft` (where it only feeds the reward metrics). */
  refGeneratedLogps?: tf.Tensor1D;
  /** Response tokens of each demonstration (EOS included); required by `sft` only. */
  realTokenCounts?: tf.Tensor1D | number[];
}

export interface LossParams {
  /** Scale of the log ratio in f = alpha * r + beta. */
  alpha: number;
  /** Shift of f for the GSIL losses; the margin scale (SPIN's lambda) for `spin`. */
  beta: number;
}

/** Per-step numbers, named as the trainer logs them (`rewards/real` and so on). */
export interface StepMetrics {
  /** The optimised loss: mean over pairs of lossReal + lossGenerated. */
  loss: number;
  /** Mean over pairs of the demonstration term (the whole pairwise loss for spin/sft). */
  lossReal: number;
  /** Mean over pairs of the generated term (0 for spin and sft, which have none). */
  lossGenerated: number;
  /** Mean f(y+); for spin, mean beta * r(y+). NaN for sft without reference inputs. */
  rewardsReal: number;
  /** Mean f(y-); for spin, mean beta * r(y-). NaN for sft without generated inputs. */
  rewardsGenerated: number;
  /** rewardsReal - rewardsGenerated. */
  rewardsMargin: number;
  /** Fraction of pairs with f(y+) > f(y-), the classifier's pairwise accuracy. */
  accuracy: number;
}

export interface GsilLossOutput {
  /** Scalar of the autodiff graph: return it from `tf.variableGrads` / `optimizer.minimize`. */
  loss: tf.Scalar;
  /**
   * Reads the step metrics (one device-to-host copy) and frees their tensor. The tensor
   * is kept alive past the enclosing `tf.tidy`, so call this, or `dispose`, once per
   * step; later calls return the same numbers.
   */
  metrics: () => StepMetrics;
  /** Frees the metrics tensor without reading it. */
  dispose: () => void;
}

const METRIC_NAMES = [
  'loss',
  'lossReal',
  'lossGenerated',
  'rewardsReal',
  'rewardsGenerated',
  'rewardsMargin',
  'accuracy',
] as const;

/**
 * The loss of one batch of pairs, averaged over pairs:
 *
 * | kind      | per-pair loss                                        |
 * | --------- | ---------------------------------------------------- |
 * | bernoulli | -log sigmoid(f(y+)) - log sigmoid(-f(y-))            |
 * | brier     | (sigmoid(f(y+)) - 1)^2 + sigmoid(f(y-))^2             |
 * | hinge     | max(0, 1 - f(y+)) + max(0, 1 + f(y-))                |
 * | kliep     | -f(y+) + exp(f(y-))                                  |
 * | lsif      | -exp(f(y+)) + exp(f(y-))^2 / 2                       |
 * | spin      | -log sigmoid(beta * (r(y+) - r(y-)))                 |
 * | sft       | -sum log pi_theta(y+) / sum |y+| (per token, no ref) |
 *
 * `spin` follows the SPIN paper (Chen et al., 2024), whose lambda *scales* the margin:
 * here that lambda is `beta`, and `alpha` is unused. `sft` is the token-level mean over
 * the whole batch (total NLL over total tokens), as Hugging Face's causal-LM loss is.
 * Log-sigmoids are computed as -softplus(-x), finite for any finite logit.
 */
export function gsilLoss(kind: LossKind, inputs: GsilInputs, params: LossParams): GsilLossOutput {
  const pairCount = checkInputs(kind, inputs);

  const { loss, metricsTensor } = tf.tidy(() => {
    const terms = kind === 'sft' ? sftTerms(inputs) : pairTerms(kind, inputs, params);
    const rewards = rewardTerms(kind, inputs, params, pairCount);
    const lossReal = terms.real.mean();
    const lossGenerated = terms.generated.mean();
    const total = kind === 'sft' ? lossReal : terms.real.add(terms.generated).mean();
    const packed = tf.stack([
      total,
      lossReal,
      lossGenerated,
      rewards.real,
      rewards.generated,
      rewards.real.sub(rewards.generated),
      rewards.accuracy,
    ]);
    return { loss: total as tf.Scalar, metricsTensor: packed };
  });
  // Kept so that metrics survive the tidy of tf.variableGrads / optimizer.minimize.
  tf.keep(metricsTensor);

  let cached: StepMetrics | undefined;
  const dispose = () => {
    if (!metricsTensor.isDisposed) metricsTensor.dispose();
  };
  const metrics = () => {
    if (cached) return cached;
    const values = metricsTensor.dataSync();
    dispose();
    const out = {} as StepMetrics;
    METRIC_NAMES.forEach((name, i) => {
      out[name] = values[i];
    });
    cached = out;
    return out;
  };
  return { loss, metrics, dispose };
}

/** The classifier logit f = alpha * r + beta. */
export function classifierLogits(
  policyLogps: tf.Tensor1D,
  refLogps: tf.Tensor1D,
  params: LossParams,
): tf.Tensor1D {
  return tf.tidy(() => policyLogps.sub(refLogps).mul(params.alpha).add(params.beta));
}

/**
 * log sigmoid(x) = -softplus(-x), stable in both tails. Not `tf.logSigmoid`: its custom
 * gradient closes over its input, which an enclosing `tf.tidy` disposes before the
 * backward pass of `tf.variableGrads` runs; softplus has a kernel gradient that keeps it.
 */
function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.softplus(x.neg()).neg();
}

interface Terms {
  /** [pairs] or scalar */
  real: tf.Tensor;
  generated: tf.Tensor;
}

function pairTerms(kind: LossKind, inputs: GsilInputs, params: LossParams): Terms {
  const policyGenerated = inputs.policyGeneratedLogps!;
  const refGenerated = inputs.refGeneratedLogps!;
  if (kind === 'spin') {
    const realRatio = inputs.policyRealLogps.sub(inputs.refRealLogps!);
    const generatedRatio = policyGenerated.sub(refGenerated);
    const pairwise = logSigmoid(realRatio.sub(generatedRatio).mul(params.beta)).neg();
    return { real: pairwise, generated: tf.zerosLike(pairwise) };
  }

  const fReal = classifierLogits(inputs.policyRealLogps, inputs.refRealLogps!, params);
  const fGenerated = classifierLogits(policyGenerated, refGenerated, params);
  switch (kind) {
    case 'bernoulli':
      return { real: logSigmoid(fReal).neg(), generated: logSigmoid(fGenerated.neg()).neg() };
    case 'brier':
      return {
        real: tf.sigmoid(fReal).sub(1).square(),
        generated: tf.sigmoid(fGenerated).square(),
      };
    case 'hinge':
      return { real: tf.relu(tf.sub(1, fReal)), generated: tf.relu(fGenerated.add(1)) };
    case 'kliep':
      return { real: fReal.neg(), generated: tf.exp(fGenerated) };
    case 'lsif':
      // exp(f)^2 / 2 written as exp(2f) / 2: one exp, same value and gradient.
      return { real: tf.exp(fReal).neg(), generated: tf.exp(fGenerated.mul(2)).div(2) };
    default:
      throw new Error(`gsilLoss: unknown loss kind "${kind}"`);
  }
}

function sftTerms(inputs: GsilInputs): Terms {
  const counts = Array.isArray(inputs.realTokenCounts)
    ? tf.tensor1d(inputs.realTokenCounts, 'float32')
    : tf.cast(inputs.realTokenCounts!, 'float32');
  const nllPerToken = inputs.policyRealLogps.sum().neg().div(counts.sum());
  return { real: nllPerToken, generated: tf.scalar(0) };
}

interface RewardTerms {
  real: tf.Scalar;
  generated: tf.Scalar;
  accuracy: tf.Scalar;
}

function rewardTerms(
  kind: LossKind,
  inputs: GsilInputs,
  params: LossParams,
  pairCount: number,
): RewardTerms {
  if (!inputs.refRealLogps || !inputs.policyGeneratedLogps || !inputs.refGeneratedLogps) {
    const nan = tf.scalar(Number.NaN);
    return { real: nan, generated: nan, accuracy: nan };
  }
  // SPIN's implicit reward is beta * r (as DPO-style trainers log it).
  const rewardParams = kind === 'spin' ? { alpha: params.beta, beta: 0 } : params;
  const real = classifierLogits(inputs.policyRealLogps, inputs.refRealLogps, rewardParams);
  const generated = classifierLogits(
    inputs.policyGeneratedLogps,
    inputs.refGeneratedLogps,
    rewardParams,
  );
  const accuracy = tf.greater(real, generated).cast('float32').sum().div(pairCount);
  return { real: real.mean(), generated: generated.mean(), accuracy: accuracy as tf.Scalar };
}

function checkInputs(kind: LossKind, inputs: GsilInputs): number {
  const pairCount = inputs.policyRealLogps.shape[0];
  if (inputs.policyRealLogps.rank !== 1 || pairCount === 0) {
    throw new Error(
      `gsilLoss: policyRealLogps must be a non-empty 1-D tensor [pairs]; got shape [${inputs.policyRealLogps.shape}]`,
    );
  }
  const named: Array<[string, tf.Tensor | number[] | undefined]> = [
    ['refRealLogps', inputs.refRealLogps],
    ['policyGeneratedLogps', inputs.policyGeneratedLogps],
    ['refGeneratedLogps', inputs.refGeneratedLogps],
    ['realTokenCounts', inputs.realTokenCounts],
  ];
  for (const [name, value] of named) {
    const required = kind === 'sft' ? name === 'realTokenCounts' : name !== 'realTokenCounts';
    if (value === undefined) {
      if (required) throw new Error(`gsilLoss: kind "${kind}" needs inputs.${name}`);
      continue;
    }
    const shape = Array.isArray(value) ? [value.length] : value.shape;
    if (shape.length !== 1 || shape[0] !== pairCount) {
      throw new Error(
        `gsilLoss: inputs.${name} must have shape [${pairCount}] like policyRealLogps; got [${shape}]`,
      );
    }
  }
  return pairCount;
}
