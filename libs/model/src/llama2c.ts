// Import of llama2.c "legacy" float32 checkpoints (the format of Karpathy's tinyllamas,
// e.g. stories260K.bin) into our transformers-named Weights.

import { readFileSync } from 'node:fs';
import { headDim, type LlamaConfig, type Weights } from './config.ts';

const HEADER_INT32S = 7;
const HEADER_BYTES = HEADER_INT32S * 4;

/**
 * Reorders the rows of a q or k projection from llama2.c's interleaved rotary pairs
 * (0,1),(2,3),... to transformers' rotate-half layout, per head. This is the `permute`
 * of transformers' convert_llama_weights_to_hf:
 * `w.view(nHeads, hd/2, 2, dim).transpose(1, 2).reshape(nHeads*hd, dim)`,
 * so new row (h, j, i) takes old row (h, i, j) with i < hd/2 and j in {0, 1}.
 */
export function permuteRotaryRows(
  rows: Float32Array,
  nHeads: number,
  hd: number,
  dim: number,
): Float32Array {
  const half = hd / 2;
  const out = new Float32Array(rows.length);
  for (let h = 0; h < nHeads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const src = (h * hd + i * 2 + j) * dim;
        const dst = (h * hd + j * half + i) * dim;
        out.set(rows.subarray(src, src + dim), dst);
      }
    }
  }
  return out;
}

/** Reads a llama2.c legacy float32 checkpoint; throws naming the file and tensor on truncation. */
export function importLlama2c(binPath: string): { config: LlamaConfig; weights: Weights } {
  const bytes = readFileSync(binPath);
  if (bytes.byteLength < HEADER_BYTES) {
    throw new Error(
      `${binPath}: ${bytes.byteLength} bytes is too short for the 28-byte llama2.c header`,
    );
  }
  const header = new DataView(bytes.buffer, bytes.byteOffset, HEADER_BYTES);
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, signedVocab, seqLen] = Array.from(
    { length: HEADER_INT32S },
    (_, i) => header.getInt32(i * 4, true),
  );
  const vocab = Math.abs(signedVocab);
  // llama2.c marks an untied classifier with a negative vocab_size.
  const tied = signedVocab > 0;
  for (const [name, v] of Object.entries({ dim, hiddenDim, nLayers, nHeads, nKvHeads, seqLen })) {
    if (!(v > 0)) throw new Error(`${binPath}: header field ${name} is ${v}, expected > 0`);
  }
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0) {
    throw new Error(
      `${binPath}: header dim ${dim}, n_heads ${nHeads}, n_kv_heads ${nKvHeads} are inconsistent`,
    );
  }

  const config: LlamaConfig = {
    model_type: 'llama',
    architectures: ['LlamaForCausalLM'],
    vocab_size: vocab,
    hidden_size: dim,
    intermediate_size: hiddenDim,
    num_hidden_layers: nLayers,
    num_attention_heads: nHeads,
    num_key_value_heads: nKvHeads,
    max_position_embeddings: seqLen,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    tie_word_embeddings: tied,
    bos_token_id: 1,
    eos_token_id: 2,
    hidden_act: 'silu',
    torch_dtype: 'float32',
    attention_bias: false,
    mlp_bias: false,
  };
  const hd = headDim(config);
  const kvDim = nKvHeads * hd;

  // Copy so that the returned arrays are aligned and independent of the file buffer.
  let offsetBytes = HEADER_BYTES;
  const take = (tensor: string, count: number): Float32Array => {
    const end = offsetBytes + count * 4;
    if (end > bytes.byteLength) {
      throw new Error(
        `${binPath}: truncated while reading ${tensor} (needs bytes ${offsetBytes}..${end}, file has ${bytes.byteLength})`,
      );
    }
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes.subarray(offsetBytes, end));
    offsetBytes = end;
    return out;
  };
  // llama2.c stores each kind for all layers contiguously; split it per layer.
  const perLayer = (tensor: string, count: number): Float32Array[] => {
    const all = take(tensor, count * nLayers);
    return Array.from({ length: nLayers }, (_, l) => all.slice(l * count, (l + 1) * count));
  };

  const embed = take('token_embedding_table', vocab * dim);
  const rmsAtt = perLayer('rms_att_weight', dim);
  const wq = perLayer('wq', dim * dim);
  const wk = perLayer('wk', kvDim * dim);
  const wv = perLayer('wv', kvDim * dim);
  const wo = perLayer('wo', dim * dim);
  const rmsFfn = perLayer('rms_ffn_weight', dim);
  const w1 = perLayer('w1', hiddenDim * dim);
  const w2 = perLayer('w2', dim * hiddenDim);
  const w3 = perLayer('w3', hiddenDim * dim);
  const rmsFinal = take('rms_final_weight', dim);
  // freq_cis_real and freq_cis_imag: precomputed RoPE tables we recompute instead.
  take('freq_cis_real', (seqLen * hd) / 2);
  take('freq_cis_imag', (seqLen * hd) / 2);
  const wcls = tied ? undefined : take('wcls', vocab * dim);

  const weights: Weights = new Map();
  weights.set('model.embed_tokens.weight', { shape: [vocab, dim], data: embed });
  for (let l = 0; l < nLayers; l++) {
    const p = `model.layers.${l}`;
    weights.set(`${p}.input_layernorm.weight`, { shape: [dim], data: rmsAtt[l] });
    weights.set(`${p}.self_attn.q_proj.weight`, {
      shape: [dim, dim],
      data: permuteRotaryRows(wq[l], nHeads, hd, dim),
    });
    weights.set(`${p}.self_attn.k_proj.weight`, {
      shape: [kvDim, dim],
      data: permuteRotaryRows(wk[l], nKvHeads, hd, dim),
    });
    weights.set(`${p}.self_attn.v_proj.weight`, { shape: [kvDim, dim], data: wv[l] });
    weights.set(`${p}.self_attn.o_proj.weight`, { shape: [dim, dim], data: wo[l] });
    weights.set(`${p}.post_attention_layernorm.weight`, { shape: [dim], data: rmsFfn[l] });
    weights.set(`${p}.mlp.gate_proj.weight`, { shape: [hiddenDim, dim], data: w1[l] });
    weights.set(`${p}.mlp.up_proj.weight`, { shape: [hiddenDim, dim], data: w3[l] });
    weights.set(`${p}.mlp.down_proj.weight`, { shape: [dim, hiddenDim], data: w2[l] });
  }
  weights.set('model.norm.weight', { shape: [dim], data: rmsFinal });
  if (wcls) weights.set('lm_head.weight', { shape: [vocab, dim], data: wcls });
  return { config, weights };
}
