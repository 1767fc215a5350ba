// The one-token decode graph that the inference runtime derives at load time from a graph
// exportOnnx wrote. It is internal (never published), so it may use ONNX Runtime's contrib ops.
import type { onnx } from 'onnx-proto';
import { headDim, type LlamaConfig } from '../config.ts';
import { GraphBuilder } from './graph-builder.ts';
import { onnxProto } from './onnx-proto.ts';
import {
  EXPORT_VERSION,
  encodeModel,
  GSIL_CONFIG_KEY,
  GSIL_EXPORT_KEY,
  weightInitializerNames,
} from './weights.ts';

/** ONNX Runtime's contrib operator set, which only this graph uses. */
const CONTRIB_DOMAIN = 'com.microsoft';

/**
 * A one-token decode graph derived from a graph that exportOnnx wrote (same weights,
 * read from its initializers), or undefined for any other graph. It reads a KV cache of
 * fixed capacity and returns only the new token's keys and values, so the caller appends
 * them in place instead of the graph copying the whole cache every step:
 *   inputs  input_ids [batch, 1] int64, position_ids [batch, 1] int64,
 *           cache_bias [batch, capacity] float (0 for a filled column, -1e9 otherwise),
 *           past_key_values.{i}.key|value [batch, kvHeads, capacity, headDim] float32
 *   outputs logits [batch, 1, vocab], logsumexp [batch, 1] (of the logits),
 *           greedy_token [batch, 1] int64 (argmax, lowest id on ties) and its
 *           greedy_logprob [batch, 1], step.{i}.key|value [batch, kvHeads, 1, headDim]
 * The new token attends to the visible cache columns and to itself.
 */
export function decodeStepGraph(onnxBytes: Uint8Array): Uint8Array | undefined {
  const model = onnxProto.ModelProto.decode(onnxBytes);
  const meta = new Map((model.metadataProps ?? []).map((p) => [p.key, p.value]));
  if (meta.get(GSIL_EXPORT_KEY) !== EXPORT_VERSION || !meta.get(GSIL_CONFIG_KEY)) return undefined;
  const config = JSON.parse(meta.get(GSIL_CONFIG_KEY) as string) as LlamaConfig;
  const wanted = new Set(weightInitializerNames(config));
  const weightInits = new Map<string, onnx.ITensorProto>();
  for (const init of model.graph?.initializer ?? []) {
    if (init.name && wanted.has(init.name)) weightInits.set(init.name, init);
  }
  if (weightInits.size !== wanted.size) return undefined;
  const g = new GraphBuilder();
  addDecodeStepWeights(g, config, weightInits);
  buildDecodeStep(g, config);
  return encodeModel(g, 'llama_decode_step', [], [{ domain: CONTRIB_DOMAIN, version: 1 }]);
}

/**
 * The decode-step graph's weights: exportOnnx's initializers, plus a per-position RoPE
 * multiplier row for the q|k|v projection (see ropeMultipliers).
 */
function addDecodeStepWeights(
  g: GraphBuilder,
  config: LlamaConfig,
  inits: Map<string, onnx.ITensorProto>,
): void {
  const keep = (name: string) => g.initializers.push(inits.get(name) as onnx.ITensorProto);
  keep('model.embed_tokens.weight');
  keep('model.norm.weight');
  if (!config.tie_word_embeddings) keep('lm_head.weight_t');
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    for (const name of [
      'input_layernorm.weight',
      'self_attn.qkv_rot_t',
      'self_attn.o_proj.weight_t',
      'post_attention_layernorm.weight',
      'mlp.gate_up_t',
      'mlp.down_proj.weight_t',
    ]) {
      keep(`${p}.${name}`);
    }
  }
  const cos = floatData(inits.get('rope_cos') as onnx.ITensorProto);
  const sin = floatData(inits.get('rope_sin') as onnx.ITensorProto);
  const { table, width } = ropeMultipliers(config, cos, sin);
  g.floatInit('rope_mul', [config.max_position_embeddings, width], table);
}

/**
 * Rows [maxPositions, width of qkv_rot_t] to multiply the q|k, rotate_half(q|k), v
 * projection by: cos per head, sin per head, then ones for v. One Gather and one
 * same-shape Mul per layer then replace the Optimum graph's broadcast Muls with identical
 * products, so the step's keys stay bitwise equal to the Optimum graph's (ONNX Runtime's
 * RotaryEmbedding rounds differently, and callers mix keys from both graphs in one cache).
 */
function ropeMultipliers(
  config: LlamaConfig,
  cos: Float32Array,
  sin: Float32Array,
): { table: Float32Array; width: number } {
  const hd = headDim(config);
  const qkCols = (config.num_attention_heads + config.num_key_value_heads) * hd;
  const width = 2 * qkCols + config.num_key_value_heads * hd;
  const table = new Float32Array(config.max_position_embeddings * width).fill(1);
  for (let pos = 0; pos < config.max_position_embeddings; pos++) {
    for (let c = 0; c < qkCols; c++) {
      table[pos * width + c] = cos[pos * hd + (c % hd)];
      table[pos * width + qkCols + c] = sin[pos * hd + (c % hd)];
    }
  }
  return { table, width };
}

/** A float initializer's values (exportOnnx writes raw little-endian bytes). */
function floatData(init: onnx.ITensorProto): Float32Array {
  if (init.rawData && init.rawData.byteLength > 0) {
    // Copied: rawData is a view (a Node Buffer once decoded, whose slice() does not copy)
    // that may not be 4-byte aligned.
    return new Float32Array(new Uint8Array(init.rawData).buffer);
  }
  return Float32Array.from(init.floatData ?? []);
}

/**
 * The one-token decode step (contract on decodeStepGraph), written for few ONNX Runtime
 * nodes: each node costs a few microseconds however small its tensors, and at batch 64 the
 * tensors are small. It uses one ONNX Runtime contrib op, SkipSimplifiedLayerNormalization
 * (the residual Add and RMSNorm in one node, which also returns the sum for the stream), and
 * TopK for the max logit and greedy token together.
 */
function buildDecodeStep(g: GraphBuilder, config: LlamaConfig): void {
  const hd = headDim(config);
  const nHeads = config.num_attention_heads;
  const nKv = config.num_key_value_heads;
  const group = nHeads / nKv;
  const eps = config.rms_norm_eps;

  // 1. Inputs.
  const inputIds = g.input('input_ids', 'int64', ['batch_size', 1]);
  const cacheBias = g.input('cache_bias', 'float', ['batch_size', 'capacity']);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 1]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      g.input(`past_key_values.${i}.${kind}`, 'float', ['batch_size', nKv, 'capacity', hd]);
    }
  }

  // 2. Shared constants; the bias broadcasts over heads: [batch, 1, 1, capacity].
  const attnBias = g.op1('Reshape', [cacheBias, g.int64Init('shape_bias', [0, 1, 1, -1])]);
  const shapeQ = g.int64Init('shape_q', [0, nKv, group, hd]);
  const shapeKv = g.int64Init('shape_kv', [0, nKv, 1, hd]);
  const shapeCtx = g.int64Init('shape_ctx', [0, 1, nHeads * hd]);
  const splitGateUp = g.int64Init('split_gate_up', [
    config.intermediate_size,
    config.intermediate_size,
  ]);
  const splitQkv = g.int64Init('split_qkv', [
    nHeads * hd,
    nKv * hd,
    nHeads * hd,
    nKv * hd,
    nKv * hd,
  ]);
  // RoPE multipliers of this step's positions: [batch, 1, 2 * qkCols + kvHeads * hd].
  const ropeMul = g.op1('Gather', ['rope_mul', positionIds]);

  // 3. RMSNorm of the residual stream. The stream is x = embedding + sum of the layers'
  //    outputs; each norm after the first adds the pending layer output (`delta`) to it.
  let residual = g.op1('Gather', ['model.embed_tokens.weight', inputIds]); // [batch, 1, hidden]
  let delta: string | undefined;
  const rmsNorm = (weightName: string): string => {
    if (!delta) {
      return g.op1('SimplifiedLayerNormalization', [residual, weightName], {
        axis: -1,
        epsilon: eps,
        stash_type: 1,
      });
    }
    const [normed, , , sum] = g.opIn(
      CONTRIB_DOMAIN,
      'SkipSimplifiedLayerNormalization',
      [residual, delta, weightName],
      { epsilon: eps },
      [true, false, false, true],
    );
    residual = sum;
    return normed;
  };

  // 4. Decoder layers.
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(`${p}.input_layernorm.weight`);
    // RoPE: q|k * cos + rotate_half(q|k) * sin, with q pre-scaled by 1 / sqrt(headDim).
    const [qCos, kCos, qSin, kSin, v] = g.op(
      'Split',
      [g.op1('Mul', [g.op1('MatMul', [h, `${p}.self_attn.qkv_rot_t`]), ropeMul]), splitQkv],
      { axis: -1 },
      5,
    );
    // seq is 1, so [batch, 1, heads * hd] reshapes straight to [batch, kv, group, hd] (query
    // head kv * group + j is row j of kv group kv) and the step's keys and values to
    // [batch, kv, 1, hd].
    const qGrouped = g.op1('Reshape', [g.op1('Add', [qCos, qSin]), shapeQ]);
    const kStep = g.opNamed('Reshape', [g.op1('Add', [kCos, kSin]), shapeKv], `step.${i}.key`);
    const vStep = g.opNamed('Reshape', [v, shapeKv], `step.${i}.value`);
    const ctx = decodeAttention(g, {
      qGrouped,
      kStep,
      vStep,
      pastK: `past_key_values.${i}.key`,
      pastV: `past_key_values.${i}.value`,
      attnBias,
    });
    delta = g.op1('MatMul', [g.op1('Reshape', [ctx, shapeCtx]), `${p}.self_attn.o_proj.weight_t`]);

    // SwiGLU MLP with gate and up in one MatMul.
    const h2 = rmsNorm(`${p}.post_attention_layernorm.weight`);
    const [gate, up] = g.op(
      'Split',
      [g.op1('MatMul', [h2, `${p}.mlp.gate_up_t`]), splitGateUp],
      { axis: -1 },
      2,
    );
    const act = g.op1('Mul', [g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), up]);
    delta = g.op1('MatMul', [act, `${p}.mlp.down_proj.weight_t`]);
  }

  // 5. Final norm and classifier (tied: the embedding table, transposed at load time).
  const hFinal = rmsNorm('model.norm.weight');
  const classifierT = config.tie_word_embeddings
    ? g.op1('Transpose', ['model.embed_tokens.weight'], { perm: [1, 0] })
    : 'lm_head.weight_t';
  g.opNamed('MatMul', [hFinal, classifierT], 'logits');

  // 6. Per-row results that spare the caller a pass over the vocabulary in JS: the
  //    log-partition at temperature 1, and the greedy token (lowest id on ties: TopK keeps
  //    the lower index of equal values) with its log-probability. Written as
  //    max + log(sum(exp(logits - max))): ONNX Runtime's ReduceLogSumExp took about 3x longer.
  const [maxLogit, argMax] = g.op(
    'TopK',
    ['logits', g.int64Init('const_k1', [1])],
    { axis: -1, largest: 1, sorted: 1 },
    2,
  ); // [batch, 1, 1]
  const sumExp = g.op1('ReduceSum', [
    g.op1('Exp', [g.op1('Sub', ['logits', maxLogit])]),
    g.int64Init('axis_vocab', [-1]),
  ]);
  const rowShape = g.int64Init('shape_rows', [-1, 1]);
  const logSumExpShifted = g.op1('Reshape', [g.op1('Log', [sumExp]), rowShape]);
  g.opNamed('Add', [g.op1('Reshape', [maxLogit, rowShape]), logSumExpShifted], 'logsumexp');
  g.opNamed('Neg', [logSumExpShifted], 'greedy_logprob');
  g.opNamed('Reshape', [argMax, rowShape], 'greedy_token');

  // 7. Outputs.
  g.output('logits', 'float', ['batch_size', 1, config.vocab_size]);
  g.output('logsumexp', 'float', ['batch_size', 1]);
  g.output('greedy_logprob', 'float', ['batch_size', 1]);
  g.output('greedy_token', 'int64', ['batch_size', 1]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      g.output(`step.${i}.${kind}`, 'float', ['batch_size', nKv, 1, hd]);
    }
  }
}

interface DecodeAttentionParts {
  /** The new token's queries [batch, kvHeads, group, headDim], rotated and pre-scaled. */
  qGrouped: string;
  /** The new token's key and value [batch, kvHeads, 1, headDim]. */
  kStep: string;
  vStep: string;
  /** The cache [batch, kvHeads, capacity, headDim]. */
  pastK: string;
  pastV: string;
  /** [batch, 1, 1, capacity]. */
  attnBias: string;
}

/**
 * One-token attention over the cache plus the token itself, with no copy of the cache:
 * scores [cache columns, self] go through one softmax (in the same column order as the
 * Optimum graph), then the context sums the cache part and the self part.
 * Result [batch, kvHeads, group, headDim].
 */
function decodeAttention(g: GraphBuilder, a: DecodeAttentionParts): string {
  const lastAxis = g.int64Init(`${a.pastK}.axis_last`, [-1]);
  const cacheScores = g.op1('Add', [
    g.op1('MatMul', [a.qGrouped, g.op1('Transpose', [a.pastK], { perm: [0, 1, 3, 2] })]),
    a.attnBias,
  ]); // [batch, kv, group, capacity]
  const selfScore = g.op1('ReduceSum', [g.op1('Mul', [a.qGrouped, a.kStep]), lastAxis], {
    keepdims: 1,
  }); // [batch, kv, group, 1]
  const probs = g.op1('Softmax', [g.op1('Concat', [cacheScores, selfScore], { axis: -1 })], {
    axis: -1,
  });
  const cacheProbs = g.op1('Slice', [
    probs,
    g.int64Init(`${a.pastK}.s0`, [0]),
    g.int64Init(`${a.pastK}.e1`, [-1]),
    lastAxis,
  ]);
  const selfProb = g.op1('Slice', [
    probs,
    lastAxis,
    g.int64Init(`${a.pastK}.emax`, [2 ** 53 - 1]),
    lastAxis,
  ]);
  return g.op1('Add', [g.op1('MatMul', [cacheProbs, a.pastV]), g.op1('Mul', [selfProb, a.vStep])]);
}
