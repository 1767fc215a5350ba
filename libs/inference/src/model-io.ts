// Names and shapes of the exported decoder's inputs and outputs (Optimum convention),
// read from the session so that any graph following the convention works.
import * as ort from 'onnxruntime-node';

export interface DecoderLayout {
  layers: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  /**
   * Optimum's merged decoders (decoder_model_merged.onnx) take use_cache_branch (bool [1]):
   * true runs the branch that reads the past, false the one that ignores it.
   */
  useCacheBranch: boolean;
}

export function decoderLayout(session: ort.InferenceSession, vocab: number): DecoderLayout {
  const pastKeys = session.inputNames.filter((n) => /^past_key_values\.\d+\.key$/.test(n));
  if (pastKeys.length === 0 || !session.inputNames.includes('position_ids')) {
    throw new Error(
      `session inputs ${session.inputNames.join(', ')} lack past_key_values.{i}.key or position_ids`,
    );
  }
  const meta = session.inputMetadata.find((m) => m.name === 'past_key_values.0.key');
  const shape = meta?.isTensor ? meta.shape : [];
  const kvHeads = Number(shape[1]);
  const headDim = Number(shape[3]);
  if (!(kvHeads > 0 && headDim > 0)) {
    throw new Error(
      `past_key_values.0.key has shape [${shape.join(', ')}]; kv heads and head dim must be fixed`,
    );
  }
  const useCacheBranch = session.inputNames.includes('use_cache_branch');
  return { layers: pastKeys.length, kvHeads, headDim, vocab, useCacheBranch };
}

export function int64Tensor(values: ArrayLike<number>, dims: number[]): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]);
  return new ort.Tensor('int64', data, dims);
}

/** use_cache_branch for a merged decoder (nothing for others): whether the pass reads the past. */
export function cacheBranchFeed(
  layout: DecoderLayout,
  readsPast: boolean,
): Record<string, ort.Tensor> {
  if (!layout.useCacheBranch) return {};
  return { use_cache_branch: new ort.Tensor('bool', Uint8Array.of(readsPast ? 1 : 0), [1]) };
}

/**
 * Feeds for a pass without cache: empty past tensors [batch, kvHeads, 0, headDim] (and a
 * merged decoder's use_cache_branch false).
 */
export function emptyPast(layout: DecoderLayout, batch: number): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = cacheBranchFeed(layout, false);
  const empty = new Float32Array(0);
  for (let i = 0; i < layout.layers; i++) {
    for (const kind of ['key', 'value']) {
      feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', empty, [
        batch,
        layout.kvHeads,
        0,
        layout.headDim,
      ]);
    }
  }
  return feeds;
}

/**
 * Copies rows of a KV tensor [srcBatch, heads, srcLen, headDim] into `dst`
 * [dstBatch, heads, dstLen, headDim] at batch row `dstRow` onwards, shifting positions
 * by `shift` (positive pads on the left, negative drops leading positions).
 */
export function copyKvRows(
  src: Float32Array,
  srcLen: number,
  rows: number[],
  dst: Float32Array,
  dstLen: number,
  dstRow: number,
  heads: number,
  headDim: number,
  shift: number,
): void {
  const from = Math.max(0, -shift);
  const count = Math.min(srcLen, dstLen - shift) - from;
  if (count <= 0) return;
  for (let r = 0; r < rows.length; r++) {
    for (let h = 0; h < heads; h++) {
      const s = ((rows[r] * heads + h) * srcLen + from) * headDim;
      const d = (((dstRow + r) * heads + h) * dstLen + from + shift) * headDim;
      dst.set(src.subarray(s, s + count * headDim), d);
    }
  }
}
