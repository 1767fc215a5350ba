// An LRU cache of scored pairs keyed by (model, version, prompt ids, response ids). Model
// versions are immutable, so a hit is exactly the value a recomputation would give; GSIL
// scores the same demonstrations against the same reference many times (every epoch, and
// again as policy when the version is promoted).

/** The scores of one pair under one model version. */
export interface PairScore {
  /** Sum of tokenLogprobs, natural log (accumulated in float64). */
  logprob: number;
  tokenCount: number;
  /** log p(token | preceding tokens) per response token. */
  tokenLogprobs: Float32Array;
}

export function cacheKey(
  modelName: string,
  modelVersion: string,
  promptIds: readonly number[],
  responseIds: readonly number[],
): string {
  // Names cannot contain NUL over gRPC in practice; ids are joined unambiguously by ','/'|'.
  return `${modelName}\u0000${modelVersion}\u0000${promptIds.join(',')}|${responseIds.join(',')}`;
}

export class ResultCache {
  private readonly entries = new Map<string, PairScore>();
  /** Lookups answered from the cache since start. */
  hits = 0;
  misses = 0;

  /** `capacity` 0 disables caching. */
  constructor(readonly capacity: number) {}

  get size(): number {
    return this.entries.size;
  }

  get(key: string): PairScore | undefined {
    const found = this.entries.get(key);
    if (found === undefined) {
      this.misses++;
      return undefined;
    }
    // Map keeps insertion order: re-inserting marks the entry most recently used.
    this.entries.delete(key);
    this.entries.set(key, found);
    this.hits++;
    return found;
  }

  set(key: string, score: PairScore): void {
    if (this.capacity === 0) return;
    this.entries.delete(key);
    this.entries.set(key, score);
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
  }
}
