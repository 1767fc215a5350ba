// Token choice from logits: greedy, temperature, top-k and top-p, with a per-sequence
// random stream so that a sequence's tokens never depend on what it is batched with.
import { createHash } from 'node:crypto';

export interface SamplingParams {
  /** 0 means greedy (argmax, lowest id on ties). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 disables. Default 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 disables. */
  topP?: number;
}

/**
 * sfc32 seeded by sha256(seed, sequenceKey, sampleIndex): one independent stream per
 * sequence, advanced exactly once per sampled token.
 */
export class SequenceRng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number | bigint, sequenceKey: string | number, sampleIndex: number) {
    const digest = createHash('sha256').update(`${seed}\0${sequenceKey}\0${sampleIndex}`).digest();
    this.a = digest.readUInt32LE(0);
    this.b = digest.readUInt32LE(4);
    this.c = digest.readUInt32LE(8);
    this.d = digest.readUInt32LE(12);
    for (let i = 0; i < 12; i++) this.nextUint32();
  }

  nextUint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }
}

/** log softmax of logits[offset .. offset+vocab) at temperature 1, for `token`. */
export function tokenLogprob(logits: Float32Array, offset: number, vocab: number, token: number) {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < vocab; i++) if (logits[offset + i] > max) max = logits[offset + i];
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - max);
  return logits[offset + token] - max - Math.log(sum);
}

export function argmax(logits: Float32Array, offset: number, vocab: number): number {
  let best = 0;
  for (let i = 1; i < vocab; i++) if (logits[offset + i] > logits[offset + best]) best = i;
  return best;
}

/**
 * Greedy choice with its log-probability at temperature 1: the argmax pass also finds
 * the max, so the row is read twice instead of three times (argmax, then tokenLogprob).
 * Same values as argmax and tokenLogprob.
 */
export function argmaxWithLogprob(
  logits: Float32Array,
  offset: number,
  vocab: number,
): { token: number; logprob: number } {
  let best = 0;
  let max = logits[offset];
  for (let i = 1; i < vocab; i++) {
    if (logits[offset + i] > max) {
      max = logits[offset + i];
      best = i;
    }
  }
  let sum = 0;
  for (let i = 0; i < vocab; i++) sum += Math.exp(logits[offset + i] - max);
  return { token: best, logprob: logits[offset + best] - max - Math.log(sum) };
}

/**
 * Chooses the next token from one row of logits. `logsumexp` of the row, when known,
 * spares the full exp passes of nucleus sampling at temperature 1.
 */
export function sampleToken(
  logits: Float32Array,
  offset: number,
  vocab: number,
  params: SamplingParams,
  rng: SequenceRng,
  logsumexp?: number,
): number {
  const temperature = params.temperature ?? 1;
  if (temperature === 0) return argmax(logits, offset, vocab);
  // Sum over the row of exp((logit - max) / temperature), given the max.
  const massBelow = (max: number) =>
    logsumexp !== undefined && temperature === 1
      ? Math.exp(logsumexp - max)
      : fullMass(logits, offset, vocab, max, temperature);

  // 1. Candidates by descending logit (ties by id, so the order is deterministic). Top-p
  //    alone only needs the few most likely tokens; a full sort per row per step would
  //    dominate decoding time at large batch.
  const topK = params.topK ?? 0;
  const topP = params.topP ?? 1;
  const order =
    topK > 0 || topP >= 1
      ? sortedIds(logits, offset, vocab)
      : nucleusCandidates(logits, offset, vocab, temperature, topP, massBelow);
  let kept = topK > 0 ? Math.min(topK, order.length) : order.length;

  // 2. Softmax at the temperature over the kept tokens (unnormalised weights).
  const max = logits[offset + order[0]];
  const probs = new Float64Array(kept);
  let sum = 0;
  for (let i = 0; i < kept; i++) {
    probs[i] = Math.exp((logits[offset + order[i]] - max) / temperature);
    sum += probs[i];
  }

  // 3. Nucleus: the shortest prefix whose mass reaches topP, as a fraction of the mass
  //    after top-k.
  if (topP < 1) {
    const total = topK > 0 ? sum : massBelow(max);
    let mass = 0;
    for (let i = 0; i < kept; i++) {
      mass += probs[i] / total;
      if (mass >= topP) {
        kept = i + 1;
        break;
      }
    }
    sum = 0;
    for (let i = 0; i < kept; i++) sum += probs[i];
  }

  // 4. Inverse-CDF draw.
  const u = rng.nextFloat() * sum;
  let acc = 0;
  for (let i = 0; i < kept; i++) {
    acc += probs[i];
    if (u < acc) return order[i];
  }
  return order[kept - 1];
}

function byLogitDesc(logits: Float32Array, offset: number) {
  return (x: number, y: number) => logits[offset + y] - logits[offset + x] || x - y;
}

function sortedIds(logits: Float32Array, offset: number, vocab: number): number[] {
  return Array.from({ length: vocab }, (_, i) => i).sort(byLogitDesc(logits, offset));
}

function fullMass(
  logits: Float32Array,
  offset: number,
  vocab: number,
  max: number,
  temperature: number,
) {
  let total = 0;
  for (let i = 0; i < vocab; i++) total += Math.exp((logits[offset + i] - max) / temperature);
  return total;
}

/**
 * The tokens whose logit is at least a threshold, lowered until their mass reaches topP:
 * every token outside is less likely than every token inside, so the nucleus (a prefix of
 * the descending order) lies within. Sorted by descending logit.
 */
function nucleusCandidates(
  logits: Float32Array,
  offset: number,
  vocab: number,
  temperature: number,
  topP: number,
  massBelow: (max: number) => number,
): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < vocab; i++) if (logits[offset + i] > max) max = logits[offset + i];
  const total = massBelow(max);
  for (let gap = 2; ; gap *= 2) {
    const threshold = max - gap * temperature;
    const ids: number[] = [];
    let mass = 0;
    for (let i = 0; i < vocab; i++) {
      if (logits[offset + i] >= threshold) {
        ids.push(i);
        mass += Math.exp((logits[offset + i] - max) / temperature);
      }
    }
    if (mass >= topP * total || ids.length === vocab) return ids.sort(byLogitDesc(logits, offset));
  }
}
