// What exportOnnx's graph and the decode-step graph derived from it share: the weight
// initializers (their names and fused layout), the metadata marking that layout, and the
// ModelProto wrapper.
import type { onnx } from 'onnx-proto';
import { headDim, type LlamaConfig, ropeTables, type Weights } from '../config.ts';
import type { GraphBuilder } from './graph-builder.ts';
import { onnxProto } from './onnx-proto.ts';

export const ONNX_OPSET = 17;

/** ModelProto metadata key marking a graph built by exportOnnx (value: the layout version). */
export const GSIL_EXPORT_KEY = 'gsil.export';
/** ModelProto metadata key holding the LlamaConfig JSON the graph was built from. */
export const GSIL_CONFIG_KEY = 'gsil.config';
/** Current layout of exportOnnx's weight initializers; decodeStepGraph requires it. */
export const EXPORT_VERSION = '1';

export function encodeModel(
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
  return onnxProto.ModelProto.encode(model).finish();
}

/** Names of the initializers that carry weights (everything else is a small constant). */
export function weightInitializerNames(config: LlamaConfig): string[] {
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
export function addWeightInitializers(
  g: GraphBuilder,
  config: LlamaConfig,
  weights: Weights,
): void {
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
