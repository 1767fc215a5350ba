// Test support for the ONNX graphs: stories260K's path and runs of exportOnnx's graph, which
// export.test.ts checks against llama2.c and decode-step.test.ts uses as the reference.
import { assetFile } from '@gsil/assets';
import * as ort from 'onnxruntime-node';
import { importLlama2c } from '../../llama2c.ts';
import { exportOnnx } from '../export.ts';

export const STORIES260K_BIN = await assetFile('stories260k', 'stories260K.bin');

/** stories260K exported by exportOnnx, and an ONNX Runtime session on it. */
export async function exportedStories260k(): Promise<{
  bytes: Uint8Array;
  session: ort.InferenceSession;
}> {
  const { config, weights } = importLlama2c(STORIES260K_BIN);
  const bytes = exportOnnx(config, weights);
  return { bytes, session: await ort.InferenceSession.create(bytes) };
}
/** stories260K's decoder layers; each has 4 kv heads of headDim 8. */
export const LAYERS = 5;

export function i64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
}

/** Runs exportOnnx's graph; `past` maps layer/kind to tensors, empty cache when omitted. */
export async function runOptimum(
  session: ort.InferenceSession,
  ids: number[][],
  mask: number[][],
  positions: number[][],
  past?: Record<string, ort.Tensor>,
): Promise<ort.InferenceSession.ReturnType> {
  const batch = ids.length;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: i64(ids.flat(), [batch, ids[0].length]),
    attention_mask: i64(mask.flat(), [batch, mask[0].length]),
    position_ids: i64(positions.flat(), [batch, positions[0].length]),
  };
  for (let i = 0; i < LAYERS; i++) {
    for (const kind of ['key', 'value']) {
      const name = `past_key_values.${i}.${kind}`;
      feeds[name] =
        past?.[name] ?? new ort.Tensor('float32', new Float32Array(0), [batch, 4, 0, 8]);
    }
  }
  return session.run(feeds);
}

/** Logits of row `b`, token `t` from [batch, seq, vocab]. */
export function row(logits: ort.Tensor, b: number, t: number): Float32Array {
  const [, seq, vocab] = logits.dims;
  return (logits.data as Float32Array).slice((b * seq + t) * vocab, (b * seq + t + 1) * vocab);
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}
