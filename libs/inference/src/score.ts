// Log-probabilities of responses given prompts by full forward passes (no cache):
// pairs sorted by length, right-padded in batches; prompt tokens are masked out.
import type * as ort from 'onnxruntime-node';
import { decoderLayout, emptyPast, int64Tensor } from './model-io.ts';
import { tokenLogprob } from './sampling.ts';

export interface ScorePair {
  promptIds: number[];
  responseIds: number[];
}

export interface ScoreOptions {
  /** Also return one log-prob per response token. Default false. */
  perToken?: boolean;
  /** Most pairs per forward pass. Default 32. */
  maxBatch?: number;
  /** Vocabulary size when the graph's logits dimension is symbolic. */
  vocab?: number;
}

export interface PairScore {
  /** Sum over response tokens of log p(token | prefix). */
  logprob: number;
  tokenCount: number;
  tokenLogprobs?: number[];
}

export async function scoreResponses(
  session: ort.InferenceSession,
  pairs: ScorePair[],
  options: ScoreOptions = {},
): Promise<PairScore[]> {
  const meta = session.outputMetadata.find((m) => m.name === 'logits');
  const vocab = options.vocab ?? (meta?.isTensor ? Number(meta.shape[2]) : Number.NaN);
  if (!(vocab > 0)) throw new Error('scoreResponses: logits vocab size is symbolic; pass vocab');
  const layout = decoderLayout(session, vocab);
  const maxBatch = options.maxBatch ?? 32;
  for (const [i, pair] of pairs.entries()) {
    if (pair.promptIds.length === 0) {
      throw new Error(`scoreResponses: pair ${i} has an empty prompt (it needs at least BOS)`);
    }
  }

  // Similar lengths share a batch, so little compute goes to padding.
  const order = pairs
    .map((pair, index) => ({ index, length: pair.promptIds.length + pair.responseIds.length }))
    .sort((a, b) => a.length - b.length);
  const results = new Array<PairScore>(pairs.length);
  for (let start = 0; start < order.length; start += maxBatch) {
    const group = order.slice(start, start + maxBatch);
    const length = group[group.length - 1].length;
    const n = group.length;
    const ids = new Array<number>(n * length).fill(0);
    const mask = new Array<number>(n * length).fill(0);
    const positions = new Array<number>(n * length).fill(0);
    group.forEach(({ index }, r) => {
      const tokens = [...pairs[index].promptIds, ...pairs[index].responseIds];
      tokens.forEach((id, j) => {
        ids[r * length + j] = id;
        mask[r * length + j] = 1;
        positions[r * length + j] = j;
      });
    });
    const out = await session.run({
      input_ids: int64Tensor(ids, [n, length]),
      attention_mask: int64Tensor(mask, [n, length]),
      position_ids: int64Tensor(positions, [n, length]),
      ...emptyPast(layout, n),
    });
    const logits = out.logits.data as Float32Array;
    group.forEach(({ index }, r) => {
      const { promptIds, responseIds } = pairs[index];
      const tokenLogprobs = responseIds.map((token, j) => {
        // The logits at position t predict token t + 1.
        const t = promptIds.length + j - 1;
        return tokenLogprob(logits, (r * length + t) * vocab, vocab, token);
      });
      results[index] = {
        logprob: tokenLogprobs.reduce((s, x) => s + x, 0),
        tokenCount: responseIds.length,
        ...(options.perToken ? { tokenLogprobs } : {}),
      };
    });
  }
  return results;
}
