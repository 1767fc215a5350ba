// The Llama-family decoder configuration, in the field names of a Hugging Face
// `config.json` with `model_type: "llama"`, so that transformers loads our
// checkpoints unchanged.

export interface LlamaConfig {
  model_type: 'llama';
  architectures: ['LlamaForCausalLM'];
  vocab_size: number;
  /** Model width (llama2.c `dim`). */
  hidden_size: number;
  /** SwiGLU inner width (llama2.c `hidden_dim`). */
  intermediate_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** Grouped-query attention: heads of K and V; divides num_attention_heads. */
  num_key_value_heads: number;
  /** Context length in tokens. */
  max_position_embeddings: number;
  rms_norm_eps: number;
  rope_theta: number;
  tie_word_embeddings: boolean;
  bos_token_id: number;
  eos_token_id: number;
  pad_token_id?: number;
  hidden_act: 'silu';
  torch_dtype: 'float32';
  attention_bias: false;
  mlp_bias: false;
}

export function headDim(config: LlamaConfig): number {
  return config.hidden_size / config.num_attention_heads;
}

/** One float32 tensor, row-major, in the layout transformers uses. */
export interface WeightTensor {
  shape: number[];
  data: Float32Array;
}

/**
 * All parameters of a model by their transformers names:
 *   model.embed_tokens.weight                          [vocab, hidden]
 *   model.layers.{i}.input_layernorm.weight            [hidden]
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   [out, in] (q/k rows in HF's
 *                                                      rotate-half order)
 *   model.layers.{i}.post_attention_layernorm.weight   [hidden]
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight    [out, in]
 *   model.norm.weight                                  [hidden]
 *   lm_head.weight                                     [vocab, hidden] (untied only)
 */
export type Weights = Map<string, WeightTensor>;

/** Expected names and shapes of every parameter, in a stable order. */
export function parameterShapes(config: LlamaConfig): Array<[string, number[]]> {
  const hidden = config.hidden_size;
  const hd = headDim(config);
  const shapes: Array<[string, number[]]> = [
    ['model.embed_tokens.weight', [config.vocab_size, hidden]],
  ];
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    shapes.push(
      [`${p}.input_layernorm.weight`, [hidden]],
      [`${p}.self_attn.q_proj.weight`, [config.num_attention_heads * hd, hidden]],
      [`${p}.self_attn.k_proj.weight`, [config.num_key_value_heads * hd, hidden]],
      [`${p}.self_attn.v_proj.weight`, [config.num_key_value_heads * hd, hidden]],
      [`${p}.self_attn.o_proj.weight`, [hidden, config.num_attention_heads * hd]],
      [`${p}.post_attention_layernorm.weight`, [hidden]],
      [`${p}.mlp.gate_proj.weight`, [config.intermediate_size, hidden]],
      [`${p}.mlp.up_proj.weight`, [config.intermediate_size, hidden]],
      [`${p}.mlp.down_proj.weight`, [hidden, config.intermediate_size]],
    );
  }
  shapes.push(['model.norm.weight', [hidden]]);
  if (!config.tie_word_embeddings) shapes.push(['lm_head.weight', [config.vocab_size, hidden]]);
  return shapes;
}

/** cos/sin tables [maxPositions, headDim] in rotate-half layout (each frequency twice). */
export function ropeTables(config: LlamaConfig): [Float32Array, Float32Array] {
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
