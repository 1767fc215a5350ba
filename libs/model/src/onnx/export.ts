// Exports the Llama decoder as an ONNX graph with a KV cache, in the input/output
// convention of Hugging Face Optimum and transformers.js:
//   inputs  input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
//           position_ids [batch, seq] int64,
//           past_key_values.{i}.key|value [batch, kvHeads, past, headDim] float32
//   outputs logits [batch, seq, vocab] float32,
//           present.{i}.key|value [batch, kvHeads, past+seq, headDim] float32
// Left padding works: attention_mask zeros hide keys, position_ids come from the caller.
import { onnx } from 'onnx-proto';
import { headDim, type LlamaConfig, type Weights } from '../config.ts';
import { GraphBuilder } from './graph-builder.ts';

export const ONNX_OPSET = 17;
/** ONNX Runtime's contrib operator set, which only the internal decode-step graph uses. */
const CONTRIB_DOMAIN = 'com.microsoft';

/** Adds this much to the scores of hidden keys; finite so fully hidden rows stay NaN-free. */
const MASKED_SCORE = -1e9;

/** ModelProto metadata key marking a graph built by exportOnnx (value: the layout version). */
export const GSIL_EXPORT_KEY = 'gsil.export';
/** ModelProto metadata key holding the LlamaConfig JSON the graph was built from. */
export const GSIL_CONFIG_KEY = 'gsil.config';
/** Current layout of exportOnnx's weight initializers; decodeStepGraph requires it. */
const EXPORT_VERSION = '1';

export function exportOnnx(config: LlamaConfig, weights: Weights): Uint8Array {
  const g = new GraphBuilder();
  addWeightInitializers(g, config, weights);
  buildOptimumDecoder(g, config);
  return encodeModel(g, 'llama_decoder_with_past', [
    { key: GSIL_EXPORT_KEY, value: EXPORT_VERSION },
    { key: GSIL_CONFIG_KEY, value: JSON.stringify(config) },
  ]);
}

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
  const model = onnx.ModelProto.decode(onnxBytes);
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

function encodeModel(
  g: GraphBuilder,
  name: string,
  metadataProps: onnx.IStringStringEntryProto[],
  extraOpsets: onnx.IOperatorSetIdProto[] = [],
): Uint8Array {
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'gsil',
    opsetImport: [{ domain: '', version: ONNX_OPSET }, ...extraOpsets],
    metadataProps,
    graph: {
      name,
      node: g.nodes,
      initializer: g.initializers,
      input: g.inputs,
      output: g.outputs,
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

/** Names of the initializers that carry weights (everything else is a small constant). */
function weightInitializerNames(config: LlamaConfig): string[] {
  const names = ['model.embed_tokens.weight', 'rope_cos', 'rope_sin', 'model.norm.weight'];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    names.push(
      `${p}.input_layernorm.weight`,
      `${p}.self_attn.qkv_rot_t`,
      `${p}.self_attn.o_proj.weight_t`,
      `${p}.post_attention_layernorm.weight`,
      `${p}.mlp.gate_up_t`,
      `${p}.mlp.down_proj.weight_t`,
    );
  }
  if (!config.tie_word_embeddings) names.push('lm_head.weight_t');
  return names;
}

/** The weights in the layout the graph uses (fused, transposed, rotate-half folded in). */
function addWeightInitializers(g: GraphBuilder, config: LlamaConfig, weights: Weights): void {
  const hd = headDim(config);
  const hidden = config.hidden_size;
  const w = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`exportOnnx: weight "${name}" is missing`);
    return t;
  };
  const copy = (name: string) => g.floatInit(name, w(name).shape, w(name).data);
  copy('model.embed_tokens.weight');
  const [cosTable, sinTable] = ropeTables(config);
  g.floatInit('rope_cos', [config.max_position_embeddings, hd], cosTable);
  g.floatInit('rope_sin', [config.max_position_embeddings, hd], sinTable);
  copy('model.norm.weight');
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    copy(`${p}.input_layernorm.weight`);
    copy(`${p}.post_attention_layernorm.weight`);
    // One MatMul gives q|k, rotate_half(q|k) (folded into the weights: an exact
    // permutation with sign flips) and v; the 1/sqrt(headDim) scale is folded into q.
    const qkvT = attentionProjection(
      config,
      w(`${p}.self_attn.q_proj.weight`).data,
      w(`${p}.self_attn.k_proj.weight`).data,
      w(`${p}.self_attn.v_proj.weight`).data,
    );
    g.floatInit(`${p}.self_attn.qkv_rot_t`, [hidden, qkvT.length / hidden], qkvT);
    g.floatInit(
      `${p}.self_attn.o_proj.weight_t`,
      [config.num_attention_heads * hd, hidden],
      transpose(w(`${p}.self_attn.o_proj.weight`)),
    );
    const gateUpT = concatColumns(
      transpose(w(`${p}.mlp.gate_proj.weight`)),
      transpose(w(`${p}.mlp.up_proj.weight`)),
      hidden,
    );
    g.floatInit(`${p}.mlp.gate_up_t`, [hidden, 2 * config.intermediate_size], gateUpT);
    g.floatInit(
      `${p}.mlp.down_proj.weight_t`,
      [config.intermediate_size, hidden],
      transpose(w(`${p}.mlp.down_proj.weight`)),
    );
  }
  if (!config.tie_word_embeddings) {
    const lm = w('lm_head.weight');
    g.floatInit('lm_head.weight_t', [lm.shape[1], lm.shape[0]], transpose(lm));
  }
}

/** The Optimum-convention decoder's nodes over the weight initializers, with a growing cache. */
function buildOptimumDecoder(g: GraphBuilder, config: LlamaConfig): void {
  const hd = headDim(config);
  const nHeads = config.num_attention_heads;
  const nKv = config.num_key_value_heads;
  const group = nHeads / nKv;

  // 1. Inputs.
  const inputIds = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      g.input(`past_key_values.${i}.${kind}`, 'float', [
        'batch_size',
        nKv,
        'past_sequence_length',
        hd,
      ]);
    }
  }

  // 2. Shared constants.
  const embed = 'model.embed_tokens.weight';
  const two = g.floatScalar('const_two', 2);
  const eps = g.floatScalar('const_rms_eps', config.rms_norm_eps);
  const i2 = g.int64Init('const_i2', [2]);

  // 3. Rotary cos/sin per token: [batch, seq, 1, headDim].
  const cos = g.op1('Unsqueeze', [g.op1('Gather', ['rope_cos', positionIds]), i2]);
  const sin = g.op1('Unsqueeze', [g.op1('Gather', ['rope_sin', positionIds]), i2]);

  // 4. Additive attention bias [batch, 1, group * seq, total]: key j is visible to query i
  //    when j <= past + i (causal) and attention_mask[b, j] == 1 (padding hidden), tiled
  //    group times to match the grouped query rows of step 5.
  const attnBias = causalBias(g, inputIds, attentionMask, group);

  // 5. Decoder layers.
  let x = g.op1('Gather', [embed, inputIds]); // [batch, seq, hidden]
  const rmsNorm = (input: string, weightName: string) => {
    const meanSquare = g.op1('ReduceMean', [g.op1('Pow', [input, two])], {
      axes: [-1],
      keepdims: 1,
    });
    const rms = g.op1('Sqrt', [g.op1('Add', [meanSquare, eps])]);
    return g.op1('Mul', [g.op1('Div', [input, rms]), weightName]);
  };
  const qkvWidths = [(nHeads + nKv) * hd, (nHeads + nKv) * hd, nKv * hd];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);

    const [qk, qkRot, v] = g.op(
      'Split',
      [g.op1('MatMul', [h, `${p}.self_attn.qkv_rot_t`]), g.int64Init(`${p}.split_qkv`, qkvWidths)],
      { axis: -1 },
      3,
    );
    const headsShape = g.int64Init(`${p}.shape_qk_heads`, [0, 0, nHeads + nKv, hd]);
    const qkRoped = g.op1('Add', [
      g.op1('Mul', [g.op1('Reshape', [qk, headsShape]), cos]),
      g.op1('Mul', [g.op1('Reshape', [qkRot, headsShape]), sin]),
    ]); // [batch, seq, heads + kvHeads, headDim]
    const [q, kNew] = g.op(
      'Split',
      [qkRoped, g.int64Init(`${p}.split_qk`, [nHeads, nKv])],
      { axis: 2 },
      2,
    );

    // New keys and values: [batch, kvHeads, seq, headDim].
    const kvShape = g.int64Init(`${p}.shape_kv_heads`, [0, 0, nKv, hd]);
    const kStep = g.op1('Transpose', [kNew], { perm: [0, 2, 1, 3] });
    const vHeads = g.op1('Reshape', [v, kvShape]);
    const vStep = g.op1('Transpose', [vHeads], { perm: [0, 2, 1, 3] });
    const ctxTokens = cachedAttention(g, i, p, {
      q,
      kStep,
      vStep,
      pastK: `past_key_values.${i}.key`,
      pastV: `past_key_values.${i}.value`,
      attnBias,
      nKv,
      group,
      nHeads,
      hd,
    });
    x = g.op1('Add', [x, g.op1('MatMul', [ctxTokens, `${p}.self_attn.o_proj.weight_t`])]);

    // SwiGLU MLP with gate and up in one MatMul.
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const [gate, up] = g.op(
      'Split',
      [
        g.op1('MatMul', [h2, `${p}.mlp.gate_up_t`]),
        g.int64Init(`${p}.split_gate_up`, [config.intermediate_size, config.intermediate_size]),
      ],
      { axis: -1 },
      2,
    );
    const act = g.op1('Mul', [g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), up]);
    x = g.op1('Add', [x, g.op1('MatMul', [act, `${p}.mlp.down_proj.weight_t`])]);
  }

  // 6. Final norm and classifier (tied: the embedding table, transposed at load time).
  const hFinal = rmsNorm(x, 'model.norm.weight');
  const classifierT = config.tie_word_embeddings
    ? g.op1('Transpose', [embed], { perm: [1, 0] })
    : 'lm_head.weight_t';
  g.opNamed('MatMul', [hFinal, classifierT], 'logits');

  // 7. Outputs.
  g.output('logits', 'float', ['batch_size', 'sequence_length', config.vocab_size]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      g.output(`present.${i}.${kind}`, 'float', ['batch_size', nKv, 'total_sequence_length', hd]);
    }
  }
}

function causalBias(
  g: GraphBuilder,
  inputIds: string,
  attentionMask: string,
  group: number,
): string {
  const zero = g.floatScalar('const_zero', 0);
  const masked = g.floatScalar('const_masked', MASKED_SCORE);
  const c = { i0: g.int64Init('const_i0', [0]), i1: g.int64Init('const_i1', [1]), group };
  const seqLen = g.op1('Gather', [g.op1('Shape', [inputIds]), c.i1], {});
  const totalLen = g.op1('Gather', [g.op1('Shape', [attentionMask]), c.i1], {});
  const pastLen = g.op1('Sub', [totalLen, seqLen]);
  const scalar = (t: string) => g.op1('Squeeze', [t, c.i0]);
  const queryPos = g.op1('Range', [scalar(pastLen), scalar(totalLen), scalar(c.i1)]); // [seq]
  const keyPos = g.op1('Range', [scalar(c.i0), scalar(totalLen), scalar(c.i1)]); // [total]
  const causal = g.op1('LessOrEqual', [
    g.op1('Unsqueeze', [keyPos, c.i0]),
    g.op1('Unsqueeze', [queryPos, c.i1]),
  ]); // [seq, total]
  const keyVisible = g.op1('Cast', [attentionMask], { to: onnx.TensorProto.DataType.BOOL });
  const visibleBatch = g.op1('Reshape', [keyVisible, g.int64Init('shape_mask', [0, 1, 1, -1])]);
  const allowed = g.op1('And', [causal, visibleBatch]); // [batch, 1, seq, total]
  return g.op1('Tile', [
    g.op1('Where', [allowed, zero, masked]),
    g.int64Init('tile_groups', [1, 1, c.group, 1]),
  ]);
}

interface AttentionParts {
  /** [batch, seq, heads, headDim], rotated and pre-scaled. */
  q: string;
  /** New keys and values [batch, kvHeads, seq, headDim]. */
  kStep: string;
  vStep: string;
  pastK: string;
  pastV: string;
  attnBias: string;
  nKv: number;
  group: number;
  nHeads: number;
  hd: number;
}

/** Optimum attention: present = past ++ new, returned as outputs. Result [batch, seq, heads*hd]. */
function cachedAttention(g: GraphBuilder, i: number, p: string, a: AttentionParts): string {
  const { nKv, group, nHeads, hd } = a;
  const k = g.opNamed('Concat', [a.pastK, a.kStep], `present.${i}.key`, { axis: 2 });
  const vAll = g.opNamed('Concat', [a.pastV, a.vStep], `present.${i}.value`, { axis: 2 });

  // Grouped-query attention without materialising repeated kv heads: query head
  // kv * group + j attends with kv head kv (transformers' repeat_kv order).
  const qGrouped = g.op1(
    'Transpose',
    [g.op1('Reshape', [a.q, g.int64Init(`${p}.shape_q_groups`, [0, 0, nKv, group, hd])])],
    { perm: [0, 2, 3, 1, 4] },
  ); // [batch, kv, group, seq, hd]
  const qFlat = g.op1('Reshape', [qGrouped, g.int64Init(`${p}.shape_q_flat`, [0, nKv, -1, hd])]);
  const scores = g.op1('MatMul', [qFlat, g.op1('Transpose', [k], { perm: [0, 1, 3, 2] })]); // [batch, kv, group*seq, total]
  const probs = g.op1('Softmax', [g.op1('Add', [scores, a.attnBias])], { axis: -1 });
  const ctx = g.op1('MatMul', [probs, vAll]); // [batch, kv, group*seq, hd]
  const ctx5 = g.op1('Reshape', [ctx, g.int64Init(`${p}.shape_ctx`, [0, nKv, group, -1, hd])]);
  return g.op1('Reshape', [
    g.op1('Transpose', [ctx5], { perm: [0, 3, 1, 2, 4] }),
    g.int64Init(`${p}.shape_ctx_tokens`, [0, 0, nHeads * hd]),
  ]);
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

/** cos/sin tables [maxPositions, headDim] in rotate-half layout (each frequency twice). */
function ropeTables(config: LlamaConfig): [Float32Array, Float32Array] {
  const hd = headDim(config);
  const half = hd / 2;
  const n = config.max_position_embeddings;
  const cos = new Float32Array(n * hd);
  const sin = new Float32Array(n * hd);
  for (let pos = 0; pos < n; pos++) {
    for (let i = 0; i < half; i++) {
      // Same float32 rounding of inv_freq as transformers' default rope init.
      const invFreq = Math.fround(1 / config.rope_theta ** ((2 * i) / hd));
      const angle = Math.fround(pos * invFreq);
      cos[pos * hd + i] = cos[pos * hd + i + half] = Math.cos(angle);
      sin[pos * hd + i] = sin[pos * hd + i + half] = Math.sin(angle);
    }
  }
  return [cos, sin];
}

/**
 * Columns [hidden, (nHeads+nKv)*hd | (nHeads+nKv)*hd | nKv*hd]: q|k, rotate_half(q|k), v.
 * rotate_half(x) = [-x2, x1] per head, so its column c takes the source column c + half
 * negated (first half) or c - half (second half).
 */
function attentionProjection(
  config: LlamaConfig,
  wq: Float32Array,
  wk: Float32Array,
  wv: Float32Array,
): Float32Array {
  const hidden = config.hidden_size;
  const hd = headDim(config);
  const half = hd / 2;
  const nQk = config.num_attention_heads + config.num_key_value_heads;
  const qkRows = nQk * hd;
  const vRows = config.num_key_value_heads * hd;
  const cols = 2 * qkRows + vRows;
  const scale = 1 / Math.sqrt(hd);
  const qRows = config.num_attention_heads * hd;
  // Source row r of [wq; wk] with q rows pre-scaled.
  const qkRow = (r: number, c: number) =>
    r < qRows ? wq[r * hidden + c] * scale : wk[(r - qRows) * hidden + c];
  const out = new Float32Array(hidden * cols);
  for (let c = 0; c < hidden; c++) {
    const row = c * cols;
    for (let r = 0; r < qkRows; r++) {
      out[row + r] = qkRow(r, c);
      const inHead = r % hd;
      out[row + qkRows + r] = inHead < half ? -qkRow(r + half, c) : qkRow(r - half, c);
    }
    for (let r = 0; r < vRows; r++) out[row + 2 * qkRows + r] = wv[r * hidden + c];
  }
  return out;
}

function transpose(t: { shape: number[]; data: Float32Array }): Float32Array {
  const [rows, cols] = t.shape;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) out[c * rows + r] = t.data[r * cols + c];
  return out;
}

/** Places two [rows, width] matrices side by side: [rows, 2 * width]. */
function concatColumns(a: Float32Array, b: Float32Array, rows: number): Float32Array {
  const width = a.length / rows;
  const out = new Float32Array(rows * 2 * width);
  for (let r = 0; r < rows; r++) {
    out.set(a.subarray(r * width, (r + 1) * width), r * 2 * width);
    out.set(b.subarray(r * width, (r + 1) * width), r * 2 * width + width);
  }
  return out;
}
