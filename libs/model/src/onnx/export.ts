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
  buildDecoder(g, config, 'optimum');
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
  const g = new GraphBuilder();
  const wanted = new Set(weightInitializerNames(config));
  for (const init of model.graph?.initializer ?? []) {
    if (init.name && wanted.has(init.name)) g.initializers.push(init);
  }
  if (g.initializers.length !== wanted.size) return undefined;
  buildDecoder(g, config, 'decode');
  return encodeModel(g, 'llama_decode_step', []);
}

function encodeModel(
  g: GraphBuilder,
  name: string,
  metadataProps: onnx.IStringStringEntryProto[],
): Uint8Array {
  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'gsil',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
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

/**
 * The decoder's nodes over the weight initializers: 'optimum' is the Optimum-convention
 * graph with a growing cache; 'decode' the one-token step of decodeStepGraph.
 */
function buildDecoder(g: GraphBuilder, config: LlamaConfig, mode: 'optimum' | 'decode'): void {
  const hd = headDim(config);
  const nHeads = config.num_attention_heads;
  const nKv = config.num_key_value_heads;
  const group = nHeads / nKv;
  const decode = mode === 'decode';

  // 1. Inputs.
  const inputIds = g.input('input_ids', 'int64', ['batch_size', decode ? 1 : 'sequence_length']);
  const attentionMask = decode
    ? g.input('cache_bias', 'float', ['batch_size', 'capacity'])
    : g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', [
    'batch_size',
    decode ? 1 : 'sequence_length',
  ]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      g.input(`past_key_values.${i}.${kind}`, 'float', [
        'batch_size',
        nKv,
        decode ? 'capacity' : 'past_sequence_length',
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

  // 4. Additive attention bias. Optimum: [batch, 1, group * seq, total], key j is visible
  //    to query i when j <= past + i (causal) and attention_mask[b, j] == 1 (padding
  //    hidden), tiled group times to match the grouped query rows of step 5. Decode: the
  //    caller's bias over the cache, [batch, 1, 1, capacity].
  const attnBias = decode
    ? g.op1('Reshape', [attentionMask, g.int64Init('shape_bias', [0, 1, 1, -1])])
    : causalBias(g, inputIds, attentionMask, group);

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
    // The decode graph returns them as its step outputs.
    const kStep = decode
      ? g.opNamed('Transpose', [kNew], `step.${i}.key`, { perm: [0, 2, 1, 3] })
      : g.op1('Transpose', [kNew], { perm: [0, 2, 1, 3] });
    const vHeads = g.op1('Reshape', [v, kvShape]);
    const vStep = decode
      ? g.opNamed('Transpose', [vHeads], `step.${i}.value`, { perm: [0, 2, 1, 3] })
      : g.op1('Transpose', [vHeads], { perm: [0, 2, 1, 3] });
    const pastK = `past_key_values.${i}.key`;
    const pastV = `past_key_values.${i}.value`;
    const ctxTokens = decode
      ? decodeAttention(g, p, { q, kStep, vStep, pastK, pastV, attnBias, nKv, group, nHeads, hd })
      : cachedAttention(g, i, p, {
          q,
          kStep,
          vStep,
          pastK,
          pastV,
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
  if (decode) {
    // Per-row results that spare the caller a pass over the vocabulary in JS: the
    // log-partition at temperature 1, and the greedy token (lowest id on ties) with its
    // log-probability. Written as max + log(sum(exp(logits - max))): ONNX Runtime's
    // ReduceLogSumExp took about 3x longer.
    const maxLogit = g.op1('ReduceMax', ['logits'], { axes: [-1], keepdims: 1 }); // [batch, 1, 1]
    const sumExp = g.op1('ReduceSum', [
      g.op1('Exp', [g.op1('Sub', ['logits', maxLogit])]),
      g.int64Init('axis_vocab', [-1]),
    ]);
    const rowShape = g.int64Init('shape_rows', [-1, 1]);
    const logSumExpShifted = g.op1('Reshape', [g.op1('Log', [sumExp]), rowShape]);
    const rowMax = g.op1('Reshape', [maxLogit, rowShape]);
    g.opNamed('Add', [rowMax, logSumExpShifted], 'logsumexp');
    g.opNamed('Neg', [logSumExpShifted], 'greedy_logprob');
    g.opNamed('ArgMax', ['logits'], 'greedy_token', { axis: -1, keepdims: 0 });
  }

  // 7. Outputs.
  g.output('logits', 'float', ['batch_size', decode ? 1 : 'sequence_length', config.vocab_size]);
  if (decode) {
    g.output('logsumexp', 'float', ['batch_size', 1]);
    g.output('greedy_logprob', 'float', ['batch_size', 1]);
    g.output('greedy_token', 'int64', ['batch_size', 1]);
  }
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      if (decode) g.output(`step.${i}.${kind}`, 'float', ['batch_size', nKv, 1, hd]);
      else
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
 * One-token attention over the cache plus the token itself, with no copy of the cache:
 * scores [cache columns, self] go through one softmax (in the same column order as the
 * Optimum graph), then the context sums the cache part and the self part.
 */
function decodeAttention(g: GraphBuilder, p: string, a: AttentionParts): string {
  const { nKv, group, nHeads, hd } = a;
  // seq is 1, so query head kv * group + j is row j of kv group kv: [batch, kv, group, hd].
  const qGrouped = g.op1('Reshape', [a.q, g.int64Init(`${p}.shape_q_dec`, [0, nKv, group, hd])]);
  const cacheScores = g.op1('Add', [
    g.op1('MatMul', [qGrouped, g.op1('Transpose', [a.pastK], { perm: [0, 1, 3, 2] })]),
    a.attnBias,
  ]); // [batch, kv, group, capacity]
  const lastAxis = g.int64Init(`${p}.axis_last`, [-1]);
  const selfScore = g.op1('ReduceSum', [g.op1('Mul', [qGrouped, a.kStep]), lastAxis], {
    keepdims: 1,
  }); // [batch, kv, group, 1]
  const probs = g.op1('Softmax', [g.op1('Concat', [cacheScores, selfScore], { axis: -1 })], {
    axis: -1,
  });
  const cacheProbs = g.op1('Slice', [
    probs,
    g.int64Init(`${p}.s0`, [0]),
    g.int64Init(`${p}.e1`, [-1]),
    lastAxis,
  ]);
  const selfProb = g.op1('Slice', [
    probs,
    lastAxis,
    g.int64Init(`${p}.emax`, [2 ** 53 - 1]),
    lastAxis,
  ]);
  const ctx = g.op1('Add', [
    g.op1('MatMul', [cacheProbs, a.pastV]),
    g.op1('Mul', [selfProb, a.vStep]),
  ]); // [batch, kv, group, hd]
  return g.op1('Reshape', [ctx, g.int64Init(`${p}.shape_ctx_dec`, [0, 1, nHeads * hd])]);
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
