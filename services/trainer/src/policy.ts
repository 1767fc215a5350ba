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

// AdamW as torch.optim.AdamW; RMSprop as TF.js's (decay 0.9, no momentum, not centered).
const ADAM_BETA1 = 0.9;
const ADAM_BETA2 = 0.999;
const RMSPROP_DECAY = 0.9;
const EPSILON = 1e-8;

/**
 * Optimizer state over all parameters as one flat vector, in variables() order. TF.js's
 * own optimizers update each variable with a dozen small ops (about 700 per step for
 * stories260K's 47 tensors); on the flat vector clipping and the update are a dozen ops in
 * all, plus one split to hand each variable its share.
 */
interface FlatState {
  /** Adam's first moment; unused (empty) for RMSprop. */
  firstMoment: tf.Variable;
  /** Adam's second moment, or RMSprop's mean square. */
  secondMoment: tf.Variable;
  /** Optimizer steps taken, for Adam's bias correction. */
  steps: number;
}

export class Policy {
  readonly model: LlamaModel;
  private readonly variables: tf.Variable[];
  private readonly sizes: number[];
  private readonly state: FlatState;

  constructor(
    config: LlamaConfig,
    weights: Weights,
    private readonly settings: OptimizerSettings,
  ) {
    this.model = LlamaModel.fromWeights(config, weights);
    this.variables = this.model.variables();
    this.sizes = this.variables.map((v) => v.size);
    const total = this.sizes.reduce((n, size) => n + size, 0);
    this.state = {
      firstMoment: tf.variable(tf.zeros([settings.name === 'adamw' ? total : 0]), false),
      secondMoment: tf.variable(tf.zeros([total]), false),
      steps: 0,
    };
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
    let summed: tf.Tensor1D | undefined; // flat gradient, variables() order
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
      // variableGrads keys its result by variable name; read it back in variables() order.
      const flat = tf.tidy(() =>
        tf.concat(this.variables.map((v) => grads[v.name].reshape([-1]))),
      ) as tf.Tensor1D;
      tf.dispose(Object.values(grads));
      if (!summed) summed = flat;
      else {
        const next = summed.add(flat) as tf.Tensor1D;
        tf.dispose([summed, flat]);
        summed = next;
      }
    }
    if (!summed) throw new Error('step() needs at least one micro-batch');
    const grad = summed;

    const gradNorm = tf.tidy(() => {
      // Clip by global L2 norm on the device, as torch.nn.utils.clip_grad_norm_ does:
      // scale = min(1, maxNorm / (norm + 1e-6)).
      const norm = tf.sqrt(tf.sum(tf.square(grad)));
      const clipped =
        this.settings.maxGradNorm > 0
          ? tf.mul(grad, tf.minimum(1, tf.div(this.settings.maxGradNorm, tf.add(norm, 1e-6))))
          : grad;
      this.applyUpdate(clipped as tf.Tensor1D, learningRate);
      return norm.dataSync()[0];
    });
    grad.dispose();

    return { ...(metricsSum as unknown as StepMetrics), learningRate, gradNorm, tokens };
  }

  /** One AdamW or RMSprop update of every variable from the flat gradient `g`. */
  private applyUpdate(g: tf.Tensor1D, learningRate: number): void {
    const { state, settings } = this;
    state.steps += 1;
    let update: tf.Tensor1D; // subtracted from the parameters
    if (settings.name === 'adamw') {
      const m = tf.add(tf.mul(state.firstMoment, ADAM_BETA1), tf.mul(g, 1 - ADAM_BETA1));
      const v = tf.add(
        tf.mul(state.secondMoment, ADAM_BETA2),
        tf.mul(tf.square(g), 1 - ADAM_BETA2),
      );
      state.firstMoment.assign(m);
      state.secondMoment.assign(v);
      // Bias corrections folded into two scalars, computed in float64 on the host.
      const stepSize = learningRate / (1 - ADAM_BETA1 ** state.steps);
      const vScale = 1 / Math.sqrt(1 - ADAM_BETA2 ** state.steps);
      update = tf.div(tf.mul(m, stepSize), tf.add(tf.mul(tf.sqrt(v), vScale), EPSILON));
    } else {
      const ms = tf.add(
        tf.mul(state.secondMoment, RMSPROP_DECAY),
        tf.mul(tf.square(g), 1 - RMSPROP_DECAY),
      );
      state.secondMoment.assign(ms);
      update = tf.div(tf.mul(g, learningRate), tf.sqrt(tf.add(ms, EPSILON)));
    }
    // Decoupled weight decay, as torch.optim.AdamW: p <- p * (1 - lr * wd) - update.
    const decay =
      settings.name === 'adamw' && settings.weightDecay > 0
        ? 1 - learningRate * settings.weightDecay
        : 1;
    const parts = tf.split(update, this.sizes);
    this.variables.forEach((variable, i) => {
      const kept = decay === 1 ? variable : tf.mul(variable, decay);
      variable.assign(tf.sub(kept, parts[i].reshape(variable.shape)));
    });
  }

  exportWeights(): Weights {
    return this.model.exportWeights();
  }

  dispose(): void {
    tf.dispose([this.state.firstMoment, this.state.secondMoment]);
    this.model.dispose();
  }
}
