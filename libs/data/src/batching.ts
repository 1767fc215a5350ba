// Seeded shuffling and batching, so that a run's data order is reproducible from its seed.

/** A function returning uniform floats in [0, 1). */
export type Rng = () => number;

/**
 * mulberry32: a 32-bit-state PRNG, small and fast, good enough to shuffle data (not for
 * cryptography). The same seed gives the same sequence on every platform.
 */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A shuffled copy (Fisher-Yates); the input is left as it is. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = items.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Splits items into batches of `batchSize` (the last may be smaller), shuffled first when
 * an rng is given. One call is one epoch; pass a fresh or continued rng for the next.
 */
export function batches<T>(items: readonly T[], batchSize: number, rng?: Rng): T[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new Error(`batches: batchSize must be a positive integer; got ${batchSize}`);
  }
  const ordered = rng ? shuffled(items, rng) : items.slice();
  const out: T[][] = [];
  for (let start = 0; start < ordered.length; start += batchSize) {
    out.push(ordered.slice(start, start + batchSize));
  }
  return out;
}
