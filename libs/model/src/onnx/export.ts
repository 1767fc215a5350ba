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

export function exportOnnx(config: LlamaConfig, weights: Weights): Uint8Array {
  const g = new GraphBuilder();
  const hd = headDim(config);
  const nHeads = config.num_attention_heads;
  const nKv = config.num_key_value_heads;
  const group = nHeads / nKv;
  const hidden = config.hidden_size;
  const w = (name: string) => {
    const t = weights.get(name);
    if (!t) throw new Error(`exportOnnx: weight "${name}" is missing`);
    return t;
  };

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
  const embed = g.floatInit(
    'model.embed_tokens.weight',
    w('model.embed_tokens.weight').shape,
    w('model.embed_tokens.weight').data,
  );
  const zero = g.floatScalar('const_zero', 0);
  const masked = g.floatScalar('const_masked', MASKED_SCORE);
  const two = g.floatScalar('const_two', 2);
  const eps = g.floatScalar('const_rms_eps', config.rms_norm_eps);
  const [cosTable, sinTable] = ropeTables(config);
  g.floatInit('rope_cos', [config.max_position_embeddings, hd], cosTable);
  g.floatInit('rope_sin', [config.max_position_embeddings, hd], sinTable);
  const i0 = g.int64Init('const_i0', [0]);
  const i1 = g.int64Init('const_i1', [1]);
  const i2 = g.int64Init('const_i2', [2]);

  // 3. Rotary cos/sin per token: [batch, seq, 1, headDim].
  const cos = g.op1('Unsqueeze', [g.op1('Gather', ['rope_cos', positionIds]), i2]);
  const sin = g.op1('Unsqueeze', [g.op1('Gather', ['rope_sin', positionIds]), i2]);

  // 4. Additive attention bias [batch, 1, group * seq, total]: key j is visible to query i
  //    when j <= past + i (causal) and attention_mask[b, j] == 1 (padding hidden). Tiled
  //    group times to match the grouped query rows of step 5.
  const seqLen = g.op1('Gather', [g.op1('Shape', [inputIds]), i1], {});
  const totalLen = g.op1('Gather', [g.op1('Shape', [attentionMask]), i1], {});
  const pastLen = g.op1('Sub', [totalLen, seqLen]);
  const scalar = (t: string) => g.op1('Squeeze', [t, i0]);
  const queryPos = g.op1('Range', [scalar(pastLen), scalar(totalLen), scalar(i1)]); // [seq]
  const keyPos = g.op1('Range', [scalar(i0), scalar(totalLen), scalar(i1)]); // [total]
  const causal = g.op1('LessOrEqual', [
    g.op1('Unsqueeze', [keyPos, i0]),
    g.op1('Unsqueeze', [queryPos, i1]),
  ]); // [seq, total]
  const keyVisible = g.op1('Cast', [attentionMask], { to: onnx.TensorProto.DataType.BOOL });
  const visibleBatch = g.op1('Reshape', [keyVisible, g.int64Init('shape_mask', [0, 1, 1, -1])]);
  const allowed = g.op1('And', [causal, visibleBatch]); // [batch, 1, seq, total]
  const attnBias = g.op1('Tile', [
    g.op1('Where', [allowed, zero, masked]),
    g.int64Init('tile_groups', [1, 1, group, 1]),
  ]);

  // 5. Decoder layers.
  let x = g.op1('Gather', [embed, inputIds]); // [batch, seq, hidden]
  const rmsNorm = (input: string, weightName: string) => {
    const wt = g.floatInit(weightName, w(weightName).shape, w(weightName).data);
    const meanSquare = g.op1('ReduceMean', [g.op1('Pow', [input, two])], {
      axes: [-1],
      keepdims: 1,
    });
    const rms = g.op1('Sqrt', [g.op1('Add', [meanSquare, eps])]);
    return g.op1('Mul', [g.op1('Div', [input, rms]), wt]);
  };
  const qkvWidths = [(nHeads + nKv) * hd, (nHeads + nKv) * hd, nKv * hd];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);

    // One MatMul gives q|k, rotate_half(q|k) (folded into the weights: an exact
    // permutation with sign flips) and v; the 1/sqrt(headDim) scale is folded into q.
    const qkvT = attentionProjection(
      config,
      w(`${p}.self_attn.q_proj.weight`).data,
      w(`${p}.self_attn.k_proj.weight`).data,
      w(`${p}.self_attn.v_proj.weight`).data,
    );
    g.floatInit(`${p}.self_attn.qkv_rot_t`, [hidden, qkvT.length / hidden], qkvT);
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

    // KV cache: [batch, kvHeads, total, headDim].
    const kvShape = g.int64Init(`${p}.shape_kv_heads`, [0, 0, nKv, hd]);
    const kStep = g.op1('Transpose', [kNew], { perm: [0, 2, 1, 3] });
    const vStep = g.op1('Transpose', [g.op1('Reshape', [v, kvShape])], { perm: [0, 2, 1, 3] });
    const k = g.opNamed('Concat', [`past_key_values.${i}.key`, kStep], `present.${i}.key`, {
      axis: 2,
    });
    const vAll = g.opNamed('Concat', [`past_key_values.${i}.value`, vStep], `present.${i}.value`, {
      axis: 2,
    });

    // Grouped-query attention without materialising repeated kv heads: query head
    // kv * group + j attends with kv head kv (transformers' repeat_kv order).
    const qGrouped = g.op1(
      'Transpose',
      [g.op1('Reshape', [q, g.int64Init(`${p}.shape_q_groups`, [0, 0, nKv, group, hd])])],
      { perm: [0, 2, 3, 1, 4] },
    ); // [batch, kv, group, seq, hd]
    const qFlat = g.op1('Reshape', [qGrouped, g.int64Init(`${p}.shape_q_flat`, [0, nKv, -1, hd])]);
    const scores = g.op1('MatMul', [qFlat, g.op1('Transpose', [k], { perm: [0, 1, 3, 2] })]); // [batch, kv, group*seq, total]
    const probs = g.op1('Softmax', [g.op1('Add', [scores, attnBias])], { axis: -1 });
    const ctx = g.op1('MatMul', [probs, vAll]); // [batch, kv, group*seq, hd]
    const ctx5 = g.op1('Reshape', [ctx, g.int64Init(`${p}.shape_ctx`, [0, nKv, group, -1, hd])]);
    const ctxTokens = g.op1('Reshape', [
      g.op1('Transpose', [ctx5], { perm: [0, 3, 1, 2, 4] }),
      g.int64Init(`${p}.shape_ctx_tokens`, [0, 0, nHeads * hd]),
    ]);
    const oT = g.floatInit(
      `${p}.self_attn.o_proj.weight_t`,
      [nHeads * hd, hidden],
      transpose(w(`${p}.self_attn.o_proj.weight`)),
    );
    x = g.op1('Add', [x, g.op1('MatMul', [ctxTokens, oT])]);

    // SwiGLU MLP with gate and up in one MatMul.
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gateUpT = concatColumns(
      transpose(w(`${p}.mlp.gate_proj.weight`)),
      transpose(w(`${p}.mlp.up_proj.weight`)),
      hidden,
    );
    g.floatInit(`${p}.mlp.gate_up_t`, [hidden, 2 * config.intermediate_size], gateUpT);
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
    const downT = g.floatInit(
      `${p}.mlp.down_proj.weight_t`,
      [config.intermediate_size, hidden],
      transpose(w(`${p}.mlp.down_proj.weight`)),
    );
    x = g.op1('Add', [x, g.op1('MatMul', [act, downT])]);
  }

  // 6. Final norm and classifier (tied: the embedding table, transposed at load time).
  const hFinal = rmsNorm(x, 'model.norm.weight');
  let classifierT: string;
  if (config.tie_word_embeddings) {
    classifierT = g.op1('Transpose', [embed], { perm: [1, 0] });
  } else {
    const lm = w('lm_head.weight');
    classifierT = g.floatInit('lm_head.weight_t', [lm.shape[1], lm.shape[0]], transpose(lm));
  }
  g.opNamed('MatMul', [hFinal, classifierT], 'logits');

  // 7. Outputs.
  g.output('logits', 'float', ['batch_size', 'sequence_length', config.vocab_size]);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const kind of ['key', 'value']) {
      g.output(`present.${i}.${kind}`, 'float', ['batch_size', nKv, 'total_sequence_length', hd]);
    }
  }

  const model: onnx.IModelProto = {
    irVersion: 8,
    producerName: 'gsil',
    opsetImport: [{ domain: '', version: ONNX_OPSET }],
    graph: {
      name: 'llama_decoder_with_past',
      node: g.nodes,
      initializer: g.initializers,
      input: g.inputs,
      output: g.outputs,
    },
  };
  return onnx.ModelProto.encode(model).finish();
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
