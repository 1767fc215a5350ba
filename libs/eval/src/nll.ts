// Negative log-likelihood summaries of scored responses.

export interface NllSummary {
  /** Total NLL over total tokens (nats per token), the usual language-model loss. */
  nllPerToken: number;
  /** Mean over examples of each example's summed NLL (nats per sequence). */
  nllPerSequence: number;
  /** exp(nllPerToken). */
  perplexity: number;
  tokenCount: number;
}

/**
 * Summarises per-example summed log-probabilities (nats, <= 0) with their token counts.
 * Throws when the lengths differ, the list is empty or the token total is not positive.
 */
export function meanNll(sumLogps: readonly number[], tokenCounts: readonly number[]): NllSummary {
  if (sumLogps.length !== tokenCounts.length) {
    throw new Error(
      `meanNll: ${sumLogps.length} log-probabilities but ${tokenCounts.length} token counts`,
    );
  }
  const tokenCount = tokenCounts.reduce((total, count) => total + count, 0);
  if (sumLogps.length === 0 || !(tokenCount > 0)) {
    throw new Error(`meanNll: needs at least one example and tokens; got ${tokenCount} tokens`);
  }
  const totalNll = -sumLogps.reduce((total, logp) => total + logp, 0);
  const nllPerToken = totalNll / tokenCount;
  return {
    nllPerToken,
    nllPerSequence: totalNll / sumLogps.length,
    perplexity: Math.exp(nllPerToken),
    tokenCount,
  };
}
