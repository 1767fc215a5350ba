// Groups sequences into forward passes by length so that padding waste stays small: sorted
// by length, each batch takes the next sequences while rows x longest stays within the
// token budget. A pair's result does not depend on its batch-mates (causal attention and
// right padding), so regrouping changes speed, never values.

export interface BatchLimits {
  /** Most padded tokens (rows x longest sequence) per forward pass. */
  maxBatchTokens: number;
  /** Most sequences per forward pass. */
  maxBatchPairs: number;
}

/**
 * Indices into `lengths`, grouped into batches. A sequence longer than maxBatchTokens gets
 * a batch of its own (it must be scored somehow; the context limit is checked elsewhere).
 */
export function planBatches(lengths: readonly number[], limits: BatchLimits): number[][] {
  const order = lengths.map((_, i) => i).sort((a, b) => lengths[a] - lengths[b]);
  const batches: number[][] = [];
  let current: number[] = [];
  for (const index of order) {
    // Sorted ascending, so the newcomer is the longest of the batch it joins.
    const paddedTokens = (current.length + 1) * lengths[index];
    if (
      current.length > 0 &&
      (paddedTokens > limits.maxBatchTokens || current.length >= limits.maxBatchPairs)
    ) {
      batches.push(current);
      current = [];
    }
    current.push(index);
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Padded tokens over real tokens of a plan, for metrics: 1 means no padding at all. */
export function paddingFactor(lengths: readonly number[], batches: number[][]): number {
  let real = 0;
  let padded = 0;
  for (const batch of batches) {
    let longest = 0;
    for (const i of batch) {
      real += lengths[i];
      longest = Math.max(longest, lengths[i]);
    }
    padded += longest * batch.length;
  }
  return real === 0 ? 1 : padded / real;
}
