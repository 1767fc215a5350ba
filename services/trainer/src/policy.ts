// The trainable policy: the TF.js Llama model, its optimizer, learning-rate schedule,
// gradient clipping and accumulation. One instance per stage or iteration, initialised from
// the reference weights, so no optimizer state outlives a checkpoint.

import { gsilLoss, type LossKind, type StepMetrics } from '@gsil/gsil';
import { type LlamaConfig, LlamaModel, type Weights } from '@gsil/model';
import * as tf from '@tensorflow/tfjs';

/** A (prompt, response) sequence; the response's tokens are the scored ones. */
export interface Sequence {
  promptIds: number[];
  responseIds: number[];
}

/** One row of a GSIL batch: a demonstration, a self-generated response, their ref logps. */
export interface Pair {
  real: Sequence;
  generated: Sequence;
  refRealLogp: number;
  refGeneratedLogp: number;
}

export interface OptimizerSettings {
  name: 'adamw' | 'rmsprop';
  learningRate: number;
  weightDecay: number;
  warmupSteps: number;
  schedule: 'constant' | 'linear' | 'cosine';
  maxGradNorm: number;
}

export interface StepResult extends StepMetrics {
  learningRate: number;
  gradNorm: number;
  /** Response tokens (real and generated) in the step. */
  tokens: number;
}

/**
 * tokens [batch, seqLen] right-padded with 0, responseMask 1 on response tokens,
 * attentionMask 1 on real tokens.
 */
export function packSequences(sequences: readonly Sequence[]): {
  tokens: tf.Tensor2D;
  responseMask: tf.Tensor2D;
  attentionMask: tf.Tensor2D;
  responseTokens: number;
} {
  const seqLen = Math.max(...sequences.map((s) => s.promptIds.length + s.responseIds.length));
  const tokens = new Int32Array(sequences.length * seqLen);
  const mask = new Float32Array(sequences.length * seqLen);
  const attention = new Float32Array(sequences.length * seqLen);
  let responseTokens = 0;
  sequences.forEach((s, row) => {
    const base = row * seqLen;
    tokens.set(s.promptIds, base);
    tokens.set(s.responseIds, base + s.promptIds.length);
    mask.fill(1, base + s.promptIds.length, base + s.promptIds.length + s.responseIds.length);
    attention.fill(1, base, base + s.promptIds.length + s.responseIds.length);
    responseTokens += s.responseIds.length;
  });
  return {
    tokens: tf.tensor2d(tokens, [sequences.length, seqLen], 'int32'),
    responseMask: tf.tensor2d(mask, [sequences.length, seqLen], 'float32'),
    attentionMask: tf.tensor2d(attention, [sequences.length, seqLen], 'float32'),
    responseTokens,
  };
}

/** Learning rate of `step` (0-based) of `totalSteps`: warm-up, then the schedule. */
export function learningRateAt(settings: OptimizerSettings, step: number, totalSteps: number) {
  const peak = settings.learningRate;
  if (step < settings.warmupSteps) return (peak * (step + 1)) / settings.warmupSteps;
  const decaySteps = Math.max(1, totalSteps - settings.warmupSteps);
  const progress = Math.min(1, (step - settings.warmupSteps) / decaySteps);
  if (settings.schedule === 'linear') return peak * (1 - progress);
  if (settings.schedule === 'cosine') return peak * 0.5 * (1 + Math.cos(Math.PI * progress));
  return peak;
}

export class Policy {
  readonly model: LlamaModel;
  private readonly optimizer: tf.Optimizer;
  private readonly variables: tf.Variable[];

  constructor(
    config: LlamaConfig,
    weights: Weights,
    private readonly settings: OptimizerSettings,
  ) {
    this.model = LlamaModel.fromWeights(config, weights);
    this.variables = this.model.variables();
    // TF.js has no AdamW: Adam plus the decoupled decay applied in `step`.
    this.optimizer =
      settings.name === 'adamw'
        ? tf.train.adam(settings.learningRate, 0.9, 0.999, 1e-8)
        : tf.train.rmsprop(settings.learningRate, 0.9, 0, 1e-8);
  }

  /** Summed response log-probability of each sequence, without gradients. */
  sequenceLogps(sequences: readonly Sequence[]): Float64Array {
    const { tokens, responseMask, attentionMask } = packSequences(sequences);
    const logps = this.model.sequenceLogprobs({ inputIds: tokens, responseMask, attentionMask });
    const values = Float64Array.from(logps.dataSync());
    tf.dispose([tokens, responseMask, attentionMask, logps]);
    return values;
  }

  /**
   * One optimizer step over `microBatches` (gradient accumulation): gradients of each are
   * summed, weighted by its share of pairs, clipped to maxGradNorm, then applied with the
   * learning rate `learningRate`.
   */
  step(
    kind: LossKind,
    microBatches: readonly Pair[][],
    params: { alpha: number; beta: number },
    learningRate: number,
  ): StepResult {
    const totalPairs = microBatches.reduce((n, b) => n + b.length, 0);
    let summed: Record<string, tf.Tensor> | undefined;
    const metricsSum: Record<string, number> = {};
    let tokens = 0;

    for (const pairs of microBatches) {
      const weight = pairs.length / totalPairs;
      // Real and generated rows share one forward pass: [2 * pairs, seqLen].
      const packed = packSequences([
        ...pairs.map((p) => p.real),
        ...(kind === 'sft' ? [] : pairs.map((p) => p.generated)),
      ]);
      tokens += packed.responseTokens;
      let metrics: StepMetrics | undefined;
      const { grads, value } = tf.variableGrads(() => {
        const logps = this.model.sequenceLogprobs({
          inputIds: packed.tokens,
          responseMask: packed.responseMask,
          attentionMask: packed.attentionMask,
        });
        const n = pairs.length;
        const policyRealLogps = logps.slice(0, n) as tf.Tensor1D;
        const realTokenCounts = pairs.map((p) => p.real.responseIds.length);
        const inputs =
          kind === 'sft'
            ? { policyRealLogps, realTokenCounts }
            : {
                policyRealLogps,
                realTokenCounts,
                policyGeneratedLogps: logps.slice(n, n) as tf.Tensor1D,
                refRealLogps: tf.tensor1d(pairs.map((p) => p.refRealLogp)),
                refGeneratedLogps: tf.tensor1d(pairs.map((p) => p.refGeneratedLogp)),
              };
        const out = gsilLoss(kind, inputs, params);
        metrics = out.metrics();
        return out.loss.mul(weight) as tf.Scalar;
      }, this.variables);
      value.dispose();
      tf.dispose([packed.tokens, packed.responseMask, packed.attentionMask]);
      for (const [name, v] of Object.entries(metrics ?? {})) {
        metricsSum[name] = (metricsSum[name] ?? 0) + v * weight;
      }
      if (!summed) summed = grads;
      else {
        for (const name of Object.keys(grads)) {
          const next = summed[name].add(grads[name]);
          tf.dispose([summed[name], grads[name]]);
          summed[name] = next;
        }
      }
    }
    if (!summed) throw new Error('step() needs at least one micro-batch');

    // Clip by global L2 norm, as torch.nn.utils.clip_grad_norm_ does.
    const gradNorm = tf.tidy(
      () => tf.sqrt(tf.addN(Object.values(summed).map((g) => tf.sum(tf.square(g))))).dataSync()[0],
    );
    const clipScale =
      this.settings.maxGradNorm > 0 && gradNorm > this.settings.maxGradNorm
        ? this.settings.maxGradNorm / (gradNorm + 1e-6)
        : 1;
    const grads = summed;
    const clipped: Record<string, tf.Tensor> = {};
    for (const name of Object.keys(grads)) {
      clipped[name] = clipScale === 1 ? grads[name] : grads[name].mul(clipScale);
      if (clipScale !== 1) grads[name].dispose();
    }

    (this.optimizer as unknown as { learningRate: number }).learningRate = learningRate;
    this.optimizer.applyGradients(clipped as tf.NamedTensorMap);
    if (this.settings.name === 'adamw' && this.settings.weightDecay > 0) {
      const decay = 1 - learningRate * this.settings.weightDecay;
      tf.tidy(() => {
        for (const v of this.variables) v.assign(v.mul(decay));
      });
    }
    tf.dispose(Object.values(clipped));

    return { ...(metricsSum as unknown as StepMetrics), learningRate, gradNorm, tokens };
  }

  exportWeights(): Weights {
    return this.model.exportWeights();
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}
