// Exports the Llama decoder as an ONNX graph with a KV cache, in the input/output
// convention of Hugging Face Optimum and transformers.js:
//   inputs  input_ids [batch, seq] int64, attention_mask [batch, past+seq] int64,
//           position_ids [batch, seq] int64,
//           past_key_values.{i}.key|value [batch, kvHeads, past, headDim] float32
//   outputs logits [batch, seq, vocab] float32,
//           present.{i}.key|value [batch, kvHeads, past+seq, headDim] float32
// Left padding works: attention_mask zeros hide keys, position_ids come from the caller.

import { headDim, type LlamaConfig, type Weights } from '../config.ts';
import { GraphBuilder } from './graph-builder.ts';
import { onnxProto } from './onnx-proto.ts';
import {
  addWeightInitializers,
  EXPORT_VERSION,
  encodeModel,
  GSIL_CONFIG_KEY,
  GSIL_EXPORT_KEY,
} from './weights.ts';

/** Adds this much to the scores of hidden keys; finite so fully hidden rows stay NaN-free. */
const MASKED_SCORE = -1e9;

export function exportOnnx(config: LlamaConfig, weights: Weights): Uint8Array {
  const g = new GraphBuilder();
  addWeightInitializers(g, config, weights);
  buildOptimumDecoder(g, config);
  return encodeModel(g, 'llama_decoder_with_past', [
    { key: GSIL_EXPORT_KEY, value: EXPORT_VERSION },
    { key: GSIL_CONFIG_KEY, value: JSON.stringify(config) },
  ]);
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
  const keyVisible = g.op1('Cast', [attentionMask], { to: onnxProto.TensorProto.DataType.BOOL });
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
