// The trainable Llama decoder in TensorFlow.js: RMSNorm, rotary position embeddings in
// transformers' rotate-half layout, grouped-query attention, SwiGLU, optionally tied
// embeddings. Parameters are tf.Variables keyed by their transformers names, so weights
// move between this model, checkpoints and the ONNX export without renaming.

import * as tf from '@tensorflow/tfjs';
import { checkWeights } from './checkpoint.ts';
import { headDim, type LlamaConfig, parameterShapes, ropeTables, type Weights } from './config.ts';

// Added to attention scores that must get no weight; large enough that exp() underflows
// to 0 in float32, small enough that a fully masked row stays finite.
const MASKED_SCORE = -1e9;

/** Keys and values of earlier positions, per layer [nKv, length, headDim]; see decodeStep. */
export interface KvCache {
  length: number;
  layers: Array<[tf.Tensor, tf.Tensor]>;
}

/** A batch for log-probability scoring; tensors are [batch, seqLen]. */
export interface LogprobBatch {
  inputIds: tf.Tensor2D;
  /** 1 where a token is part of the response (scored), 0 for prompt and padding. */
  responseMask: tf.Tensor2D;
  /** 1 for real tokens, 0 for padding (right padding); defaults to all ones. */
  attentionMask?: tf.Tensor2D;
}

/**
 * x [n, in] times w [out, in] transposed. WASM's fast (XNNPACK) matmul takes only
 * untransposed 2-D operands, and its fallback for transposed ones is about 7x slower, so
 * there the product and both gradients are written with explicit transposes.
 */
function matMulT(x: tf.Tensor2D, w: tf.Tensor2D): tf.Tensor2D {
  if (tf.getBackend() !== 'wasm') return tf.matMul(x, w, false, true);
  const product = tf.customGrad((xIn, wIn, save) => {
    (save as (tensors: tf.Tensor[]) => void)([xIn as tf.Tensor, wIn as tf.Tensor]);
    return {
      value: tf.matMul(xIn as tf.Tensor2D, tf.transpose(wIn as tf.Tensor2D)),
      gradFunc: (dy, saved) => {
        const [xS, wS] = saved as tf.Tensor2D[];
        const dOut = dy as tf.Tensor2D;
        return [tf.matMul(dOut, wS), tf.matMul(tf.transpose(dOut), xS)];
      },
    };
  });
  return product(x, w) as tf.Tensor2D;
}

/**
 * Embedding lookup. Where the backend has UnsortedSegmentSum (tf.gather's gradient: native
 * TensorFlow, plain CPU) it is tf.gather; otherwise (WASM) the gradient is a dense one-hot
 * matmul [n, vocab]^T x [n, hidden], which costs n * vocab * hidden multiply-adds.
 */
function embedLookup(table: tf.Tensor2D, ids: tf.Tensor1D): tf.Tensor2D {
  if (tf.getKernel('UnsortedSegmentSum', tf.getBackend())) return tf.gather(table, ids);
  const vocab = table.shape[0];
  const lookup = tf.customGrad((t, save) => {
    (save as (tensors: tf.Tensor[]) => void)([ids]);
    return {
      value: tf.gather(t as tf.Tensor2D, ids),
      gradFunc: (dy, saved) => {
        const oneHot = tf.oneHot(saved[0] as tf.Tensor1D, vocab); // [n, vocab]
        return tf.matMul(tf.transpose(oneHot), dy as tf.Tensor2D); // [vocab, hidden]
      },
    };
  });
  return lookup(table) as tf.Tensor2D;
}

/**
 * log(sum(exp(x))) over the last axis of [n, vocab], with the gradient written out as
 * dy * softmax(x): three passes over the logits instead of backpropagating through each of
 * max, sub, exp, sum and log.
 */
const logSumExpRows = tf.customGrad((x, save) => {
  const logits = x as tf.Tensor2D;
  const max = tf.max(logits, -1, true);
  const lse = tf.add(tf.log(tf.sum(tf.exp(tf.sub(logits, max)), -1, true)), max); // [n, 1]
  (save as (tensors: tf.Tensor[]) => void)([logits, lse]);
  return {
    value: lse.reshape([-1]),
    gradFunc: (dy, saved) => tf.mul(tf.exp(tf.sub(saved[0], saved[1])), dy.reshape([-1, 1])),
  };
}) as (x: tf.Tensor2D) => tf.Tensor1D;

/**
 * softmax(q k^T + bias) v for q [batch, nKv, rep*seqLen, hd] (already scaled), k and v
 * [batch, nKv, seqLen, hd], bias broadcastable to [batch, nHeads, seqLen, seqLen]. The
 * gradient is written out as FlashAttention's backward pass does: with P the
 * probabilities and O the output, dScores = P * (dP - rowsum(dO * O)), since rowsum(dP * P)
 * equals rowsum(dO * O). That takes two passes over the [.., seqLen, seqLen] tensors where
 * backpropagating through softmax takes four, and the bias add gets no backward op.
 */
function scaledDotAttention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor,
  nHeads: number,
): tf.Tensor4D {
  const [batch, nKv, rows] = q.shape;
  const seqLen = k.shape[2];
  const attend = tf.customGrad((qIn, kIn, vIn, save) => {
    const scores = tf.matMul(qIn as tf.Tensor4D, kIn as tf.Tensor4D, false, true);
    const probs = tf
      .softmax(tf.add(scores.reshape([batch, nHeads, seqLen, seqLen]), bias))
      .reshape([batch, nKv, rows, seqLen]);
    const out = tf.matMul(probs, vIn as tf.Tensor4D);
    (save as (tensors: tf.Tensor[]) => void)([
      qIn as tf.Tensor,
      kIn as tf.Tensor,
      vIn as tf.Tensor,
      probs,
      out,
    ]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [qS, kS, vS, p, o] = saved as tf.Tensor4D[];
        const dOut = dy as tf.Tensor4D;
        const dV = tf.matMul(p, dOut, true, false); // [batch, nKv, seqLen, hd]
        const dP = tf.matMul(dOut, vS, false, true); // [batch, nKv, rows, seqLen]
        const rowDot = tf.sum(tf.mul(dOut, o), -1, true); // [batch, nKv, rows, 1]
        const dScores = tf.mul(p, tf.sub(dP, rowDot));
        const dQ = tf.matMul(dScores, kS); // [batch, nKv, rows, hd]
        const dK = tf.matMul(dScores, qS, true, false); // [batch, nKv, seqLen, hd]
        return [dQ, dK, dV];
      },
    };
  });
  return attend(q, k, v) as tf.Tensor4D;
}

/**
 * RMSNorm x * rsqrt(mean(x^2) + eps) * w over the last axis of x [n, width], with the
 * gradient written out: with r the row's rsqrt and xHat = x * r, g = dy * w,
 * dx = r * (g - xHat * mean(g * xHat)) and dw = sum over rows of dy * xHat. Autodiff
 * through square, mean, rsqrt and two products takes about twice the ops, several of them
 * casts and divisions over [n, width].
 */
function rmsNormOp(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  const norm = tf.customGrad((xIn, wIn, save) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xIn as tf.Tensor2D), -1, true), eps)); // [n, 1]
    const xHat = tf.mul(xIn as tf.Tensor2D, r);
    (save as (tensors: tf.Tensor[]) => void)([xHat, r, wIn as tf.Tensor]);
    return {
      value: tf.mul(xHat, wIn as tf.Tensor),
      gradFunc: (dy, saved) => {
        const [xHatS, rS, wS] = saved;
        const g = tf.mul(dy, wS);
        const dx = tf.mul(tf.sub(g, tf.mul(xHatS, tf.mean(tf.mul(g, xHatS), -1, true))), rS);
        return [dx, tf.sum(tf.mul(dy, xHatS), 0)];
      },
    };
  });
  return norm(x, w) as tf.Tensor2D;
}

/**
 * SwiGLU's gate: SiLU(gate) * up, SiLU(z) = z * sigmoid(z). The gradient reuses the saved
 * sigmoid s and SiLU: d/dz SiLU(z) = s + SiLU(z) * (1 - s).
 */
const swiGlu = tf.customGrad((gateIn, upIn, save) => {
  const gate = gateIn as tf.Tensor2D;
  const up = upIn as tf.Tensor2D;
  const s = tf.sigmoid(gate);
  const silu = tf.mul(gate, s);
  (save as (tensors: tf.Tensor[]) => void)([s, silu, up]);
  return {
    value: tf.mul(silu, up),
    gradFunc: (dy, saved) => {
      const [sS, siluS, upS] = saved;
      const dSilu = tf.mul(dy, upS);
      const dGate = tf.mul(dSilu, tf.add(sS, tf.mul(siluS, tf.sub(1, sS))));
      return [dGate, tf.mul(dy, siluS)];
    },
  };
}) as (gate: tf.Tensor2D, up: tf.Tensor2D) => tf.Tensor2D;

/**
 * [width, width] block-diagonal matrix R with x R = rotate_half(x) for each head of `hd`
 * columns: rotate_half(x) = concat(-x[hd/2:], x[:hd/2]). Entries are 0 and +-1, so the
 * product is exact; one matmul replaces split, neg and concat (and their gradients).
 */
function rotateHalfMatrix(width: number, hd: number): tf.Tensor2D {
  const half = hd / 2;
  const r = new Float32Array(width * width);
  for (let base = 0; base < width; base += hd) {
    for (let i = 0; i < half; i++) {
      r[(base + i + half) * width + base + i] = -1; // out[i] = -x[i + half]
      r[(base + i) * width + base + i + half] = 1; // out[i + half] = x[i]
    }
  }
  return tf.tensor2d(r, [width, width]);
}

export class LlamaModel {
  readonly config: LlamaConfig;
  private readonly params: Map<string, tf.Variable>;
  // [maxPositions, headDim] rotary tables, rotate-half layout (frequencies repeated twice).
  private readonly cos: tf.Tensor2D;
  private readonly sin: tf.Tensor2D;
  // Training-path rotary tables tiled per head, [maxPositions, heads*headDim], for q and k
  // in their projected [tokens, heads*headDim] layout; q's carry the 1/sqrt(headDim)
  // attention scale so that the [batch, heads, seqLen, seqLen] scores need no extra pass;
  // `rotate` holds R transposed (x R = matMulT(x, R^T)), the layout matMulT wants.
  private readonly ropeQ: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotate: tf.Tensor2D };
  private readonly ropeK: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotate: tf.Tensor2D };
  // Additive causal mask [maxPositions, maxPositions]: 0 on and below the diagonal,
  // MASKED_SCORE above; each forward slices its [seqLen, seqLen] corner.
  private readonly causalBias: tf.Tensor2D;

  private constructor(config: LlamaConfig, params: Map<string, tf.Variable>) {
    this.config = config;
    this.params = params;
    const hd = headDim(config);
    const positions = config.max_position_embeddings;
    const [cos, sin] = ropeTables(config);
    this.cos = tf.tensor2d(cos, [positions, hd]);
    this.sin = tf.tensor2d(sin, [positions, hd]);
    const tiled = (heads: number, scale: number) =>
      tf.tidy(() => ({
        cos: tf.tile(this.cos, [1, heads]).mul(scale) as tf.Tensor2D,
        sin: tf.tile(this.sin, [1, heads]).mul(scale) as tf.Tensor2D,
        rotate: rotateHalfMatrix(heads * hd, hd).transpose() as tf.Tensor2D,
      }));
    this.ropeQ = tiled(config.num_attention_heads, 1 / Math.sqrt(hd));
    this.ropeK = tiled(config.num_key_value_heads, 1);
    this.causalBias = tf.tidy(() =>
      tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([positions, positions]), -1, 0)), MASKED_SCORE),
    ) as tf.Tensor2D;
  }

  /** Creates variables from (a copy of) `weights`, validated against the config. */
  static fromWeights(config: LlamaConfig, weights: Weights): LlamaModel {
    checkWeights(config, weights, 'LlamaModel.fromWeights');
    const params = new Map<string, tf.Variable>();
    for (const [name, shape] of parameterShapes(config)) {
      // Unnamed: tf.js variable names are process-global, and a policy and its reference coexist.
      params.set(name, tf.variable(tf.tensor(weights.get(name)!.data, shape), true));
    }
    return new LlamaModel(config, params);
  }

  /** Trainable variables in parameterShapes order. */
  variables(): tf.Variable[] {
    return [...this.params.values()];
  }

  /** Copies the current parameter values out. */
  exportWeights(): Weights {
    const weights: Weights = new Map();
    for (const [name, v] of this.params) {
      weights.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    }
    return weights;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.cos.dispose();
    this.sin.dispose();
    tf.dispose([...Object.values(this.ropeQ), ...Object.values(this.ropeK)]);
    this.causalBias.dispose();
  }

  private p(name: string): tf.Variable {
    return this.params.get(name)!;
  }

  /** Next-token logits [batch, seqLen, vocab] for int32 `inputIds` [batch, seqLen]. */
  logits(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const [batch, seqLen] = inputIds.shape;
      const hidden = this.hiddenStates(inputIds, attentionMask); // [batch*seqLen, hidden]
      const lmHead = this.config.tie_word_embeddings
        ? this.p('model.embed_tokens.weight')
        : this.p('lm_head.weight');
      const logits = matMulT(hidden, lmHead as tf.Tensor2D);
      return logits.reshape([batch, seqLen, this.config.vocab_size]);
    });
  }

  /**
   * log p(token t | tokens < t) for t = 1..seqLen-1: [batch, seqLen - 1]. Position 0 has
   * no prediction (it is BOS in every sequence of this project).
   */
  tokenLogprobs(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Tensor2D {
    return tf.tidy(() => {
      const [batch, seqLen] = inputIds.shape;
      const hiddenSize = this.config.hidden_size;
      // The last position predicts nothing: drop it before the vocabulary projection.
      const hidden = this.hiddenStates(inputIds, attentionMask)
        .reshape([batch, seqLen, hiddenSize])
        .slice([0, 0, 0], [batch, seqLen - 1, hiddenSize])
        .reshape([-1, hiddenSize]) as tf.Tensor2D; // [batch*(seqLen-1), hidden]
      const lmHead = (
        this.config.tie_word_embeddings
          ? this.p('model.embed_tokens.weight')
          : this.p('lm_head.weight')
      ) as tf.Tensor2D;
      const targets = inputIds
        .slice([0, 1], [batch, seqLen - 1])
        .reshape([-1])
        .toInt() as tf.Tensor1D;
      // log p(target) = logit(target) - logsumexp(logits); the target's logit is the dot
      // product of the hidden state with the target's lm_head row, [n, hidden] instead of
      // a one-hot product over [n, vocab].
      const targetLogits = tf.sum(tf.mul(hidden, embedLookup(lmHead, targets)), -1);
      const logits = matMulT(hidden, lmHead); // [n, vocab]
      return tf
        .sub(targetLogits, logSumExpRows(logits as tf.Tensor2D))
        .reshape([batch, seqLen - 1]) as tf.Tensor2D;
    });
  }

  /** Sum of log p over response tokens of each sequence: [batch]. */
  sequenceLogprobs(batch: LogprobBatch): tf.Tensor1D {
    return tf.tidy(() => {
      const [b, seqLen] = batch.inputIds.shape;
      const tokenLps = this.tokenLogprobs(batch.inputIds, batch.attentionMask);
      const mask = batch.responseMask.slice([0, 1], [b, seqLen - 1]).toFloat();
      return tf.sum(tf.mul(tokenLps, mask), -1) as tf.Tensor1D;
    });
  }

  // 1. embed, 2. per layer: pre-norm attention and pre-norm SwiGLU with residuals,
  // 3. final norm. Returns [batch*seqLen, hidden].
  private hiddenStates(inputIds: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Tensor2D {
    const { config } = this;
    const [batch, seqLen] = inputIds.shape;
    if (seqLen > config.max_position_embeddings) {
      throw new Error(
        `sequence of ${seqLen} tokens exceeds max_position_embeddings ${config.max_position_embeddings}`,
      );
    }
    const embed = this.p('model.embed_tokens.weight') as tf.Tensor2D;
    let x = embedLookup(embed, inputIds.reshape([-1]).toInt() as tf.Tensor1D);

    // [batch, 1, seqLen, seqLen]: causal, plus padded keys when a mask is given.
    let bias: tf.Tensor = this.causalBias
      .slice([0, 0], [seqLen, seqLen])
      .reshape([1, 1, seqLen, seqLen]);
    if (attentionMask) {
      const keyBias = tf.mul(tf.sub(1, attentionMask.toFloat()), MASKED_SCORE);
      bias = tf.add(bias, keyBias.reshape([batch, 1, 1, seqLen]));
    }
    const rope = (table: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotate: tf.Tensor2D }) => {
      const width = table.cos.shape[1];
      return {
        cos: table.cos.slice([0, 0], [seqLen, width]),
        sin: table.sin.slice([0, 0], [seqLen, width]),
        rotate: table.rotate,
      };
    };
    const ropeQ = rope(this.ropeQ);
    const ropeK = rope(this.ropeK);

    for (let l = 0; l < config.num_hidden_layers; l++) {
      const p = `model.layers.${l}`;
      const h = this.rmsNorm(x, `${p}.input_layernorm.weight`);
      x = tf.add(x, this.attention(h, p, batch, seqLen, bias, ropeQ, ropeK));
      const h2 = this.rmsNorm(x, `${p}.post_attention_layernorm.weight`);
      const gate = this.linear(h2, `${p}.mlp.gate_proj.weight`);
      const up = this.linear(h2, `${p}.mlp.up_proj.weight`);
      const act = swiGlu(gate, up);
      x = tf.add(x, this.linear(act, `${p}.mlp.down_proj.weight`));
    }
    return this.rmsNorm(x, 'model.norm.weight');
  }

  private attention(
    h: tf.Tensor2D,
    p: string,
    batch: number,
    seqLen: number,
    bias: tf.Tensor,
    ropeQ: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotate: tf.Tensor2D },
    ropeK: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotate: tf.Tensor2D },
  ): tf.Tensor2D {
    const { config } = this;
    const nHeads = config.num_attention_heads;
    const nKv = config.num_key_value_heads;
    const hd = headDim(config);
    // Rotary embedding in the projected layout [batch, seqLen, n*hd]: x*cos + (x R)*sin.
    const rotary = (
      t: tf.Tensor2D,
      table: { cos: tf.Tensor2D; sin: tf.Tensor2D; rotate: tf.Tensor2D },
    ) => {
      const rotated = matMulT(t, table.rotate).reshape([batch, seqLen, -1]); // x R
      return tf.add(tf.mul(t.reshape([batch, seqLen, -1]), table.cos), tf.mul(rotated, table.sin));
    };
    // [batch, seqLen, n*hd] -> [batch, n, seqLen, hd]
    const heads = (t: tf.Tensor, n: number) =>
      t.reshape([batch, seqLen, n, hd]).transpose([0, 2, 1, 3]) as tf.Tensor4D;
    // q is already scaled by 1/sqrt(hd) through its rotary table.
    const q = heads(rotary(this.linear(h, `${p}.self_attn.q_proj.weight`), ropeQ), nHeads);
    const k = heads(rotary(this.linear(h, `${p}.self_attn.k_proj.weight`), ropeK), nKv);
    const v = heads(this.linear(h, `${p}.self_attn.v_proj.weight`), nKv);
    // Grouped-query attention without copying K and V: query heads j*rep .. j*rep+rep-1
    // share KV head j, so view q as [batch, nKv, rep*seqLen, hd] against [batch, nKv, seqLen, hd].
    const rep = nHeads / nKv;
    const qGrouped = q.reshape([batch, nKv, rep * seqLen, hd]) as tf.Tensor4D;
    const context = scaledDotAttention(qGrouped, k, v, bias, nHeads).reshape([
      batch,
      nHeads,
      seqLen,
      hd,
    ]);
    const merged = context.transpose([0, 2, 1, 3]).reshape([batch * seqLen, nHeads * hd]);
    return this.linear(merged as tf.Tensor2D, `${p}.self_attn.o_proj.weight`);
  }

  /**
   * One decoding step with a KV cache (inference only): feeds `token` at position
   * `cache.length`, appends its keys and values, returns next-token logits [vocab].
   */
  decodeStep(token: number, cache: KvCache): tf.Tensor1D {
    const { config } = this;
    const hd = headDim(config);
    const nHeads = config.num_attention_heads;
    const nKv = config.num_key_value_heads;
    const rep = nHeads / nKv;
    const pos = cache.length;
    if (pos >= config.max_position_embeddings) {
      throw new Error(
        `position ${pos} exceeds max_position_embeddings ${config.max_position_embeddings}`,
      );
    }
    const result = tf.tidy(() => {
      const embed = this.p('model.embed_tokens.weight') as tf.Tensor2D;
      let x = tf.gather(embed, tf.tensor1d([token], 'int32')) as tf.Tensor2D; // [1, hidden]
      const cos = this.cos.slice([pos, 0], [1, hd]);
      const sin = this.sin.slice([pos, 0], [1, hd]);
      const fresh: Array<[tf.Tensor, tf.Tensor]> = [];
      for (let l = 0; l < config.num_hidden_layers; l++) {
        const p = `model.layers.${l}`;
        const h = this.rmsNorm(x, `${p}.input_layernorm.weight`);
        // [1, n*hd] -> [n, 1, hd]
        const heads = (t: tf.Tensor2D, n: number) => t.reshape([n, 1, hd]);
        const q = this.rope(
          heads(this.linear(h, `${p}.self_attn.q_proj.weight`), nHeads),
          cos,
          sin,
        );
        const kNew = this.rope(
          heads(this.linear(h, `${p}.self_attn.k_proj.weight`), nKv),
          cos,
          sin,
        );
        const vNew = heads(this.linear(h, `${p}.self_attn.v_proj.weight`), nKv);
        const past = cache.layers[l];
        const k = past ? tf.concat([past[0], kNew], 1) : kNew; // [nKv, pos+1, hd]
        const v = past ? tf.concat([past[1], vNew], 1) : vNew;
        fresh.push([k, v]);
        // Query heads of one KV group as rows: [nKv, rep, hd].
        const scores = tf.mul(
          tf.matMul(q.reshape([nKv, rep, hd]), k, false, true),
          1 / Math.sqrt(hd),
        );
        const context = tf.matMul(tf.softmax(scores), v).reshape([1, nHeads * hd]) as tf.Tensor2D;
        x = tf.add(x, this.linear(context, `${p}.self_attn.o_proj.weight`));
        const h2 = this.rmsNorm(x, `${p}.post_attention_layernorm.weight`);
        const gate = this.linear(h2, `${p}.mlp.gate_proj.weight`);
        const up = this.linear(h2, `${p}.mlp.up_proj.weight`);
        const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D;
        x = tf.add(x, this.linear(act, `${p}.mlp.down_proj.weight`));
      }
      const lmHead = config.tie_word_embeddings
        ? this.p('model.embed_tokens.weight')
        : this.p('lm_head.weight');
      const logits = tf.matMul(
        this.rmsNorm(x, 'model.norm.weight'),
        lmHead as tf.Tensor2D,
        false,
        true,
      );
      return { logits: logits.reshape([-1]) as tf.Tensor1D, fresh };
    });
    for (const past of cache.layers) tf.dispose(past);
    cache.layers = result.fresh;
    cache.length = pos + 1;
    return result.logits;
  }

  // transformers' apply_rotary_pos_emb: x*cos + rotate_half(x)*sin, rotate_half(x) =
  // concat(-x[..., hd/2:], x[..., :hd/2]). x: [batch, heads, seqLen, hd].
  private rope(x: tf.Tensor, cos: tf.Tensor2D, sin: tf.Tensor2D): tf.Tensor {
    const half = headDim(this.config) / 2;
    const [x1, x2] = tf.split(x, [half, half], -1);
    const rotated = tf.concat([tf.neg(x2), x1], -1);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  }

  private rmsNorm(x: tf.Tensor2D, weight: string): tf.Tensor2D {
    return rmsNormOp(x, this.p(weight), this.config.rms_norm_eps);
  }

  // x [n, in] times W [out, in] transposed: transformers' nn.Linear without bias.
  private linear(x: tf.Tensor2D, weight: string): tf.Tensor2D {
    return matMulT(x, this.p(weight) as tf.Tensor2D);
  }
}

/**
 * Greedy decoding with a KV cache: feeds the prompt one token at a time, then appends the
 * argmax token. Stops after `maxNewTokens`, at the context length, or at any of `stopIds`
 * (not included). Returns only the new tokens.
 */
export function greedyGenerate(
  model: LlamaModel,
  promptIds: number[],
  maxNewTokens: number,
  stopIds: number[] = [],
): number[] {
  const cache: KvCache = { length: 0, layers: [] };
  const maxLen = model.config.max_position_embeddings;
  const generated: number[] = [];
  try {
    let logits: tf.Tensor1D | undefined;
    for (const id of promptIds) {
      logits?.dispose();
      logits = model.decodeStep(id, cache);
    }
    while (logits && generated.length < maxNewTokens) {
      const next = tf.tidy(() => logits!.argMax().dataSync()[0]);
      logits.dispose();
      logits = undefined;
      if (stopIds.includes(next)) break;
      generated.push(next);
      if (cache.length >= maxLen) break;
      logits = model.decodeStep(next, cache);
    }
    logits?.dispose();
  } finally {
    for (const past of cache.layers) tf.dispose(past);
  }
  return generated;
}
