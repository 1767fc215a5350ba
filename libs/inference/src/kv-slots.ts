// The KV cache of the decode-step graph (decodeStepGraph in @gsil/model/onnx): one slot
// per running row, each with room for `capacity` positions, filled from column 0. A step
// appends the new token's keys and values in place; a finished row's slot is refilled by
// moving the last row into it. Nothing is copied per step beyond one column per row, and
// the ONNX Runtime tensors are views of these buffers.
import * as ort from 'onnxruntime-node';
import type { DecoderLayout } from './model-io.ts';

/** Score bias of an empty cache column: exp underflows to exactly 0 in the softmax. */
const HIDDEN = -1e9;
/** Columns added when a row outgrows the capacity (growing copies the whole cache). */
const GROW_COLUMNS = 8;

export class KvSlots {
  /** Rows in use; slots 0 .. rows-1. */
  rows = 0;
  /** Filled columns of each slot. */
  readonly lengths: number[] = [];
  private capacity: number;
  /** Columns per slot that the buffers have room for (>= capacity). */
  private allocated: number;
  /** Per layer and kind (key, value): [maxRows, kvHeads, capacity, headDim]. */
  private caches: Float32Array[];
  /** [maxRows, capacity]: 0 for filled columns, HIDDEN otherwise. */
  private bias: Float32Array;

  constructor(
    private readonly layout: DecoderLayout,
    private readonly maxRows: number,
    initialCapacity: number,
  ) {
    this.capacity = Math.max(GROW_COLUMNS, roundUp(initialCapacity, GROW_COLUMNS));
    this.allocated = this.capacity;
    this.caches = this.allocCaches(this.capacity);
    this.bias = new Float32Array(maxRows * this.capacity).fill(HIDDEN);
  }

  /** Floats of one slot in one cache tensor. */
  private slotSize(capacity = this.capacity): number {
    return this.layout.kvHeads * capacity * this.layout.headDim;
  }

  private allocCaches(capacity: number): Float32Array[] {
    return Array.from(
      { length: 2 * this.layout.layers },
      () => new Float32Array(this.maxRows * this.slotSize(capacity)),
    );
  }

  /**
   * Adds a row whose cache is row `row` of `present` tensors [n, kvHeads, length, headDim]
   * (Optimum outputs of a prefill), skipping its `pad` leading masked columns. Returns its slot.
   */
  add(present: Float32Array[], row: number, length: number, pad: number): number {
    const filled = length - pad;
    this.ensureCapacity(filled + 1);
    const slot = this.rows++;
    const { kvHeads, headDim } = this.layout;
    const cap = this.capacity;
    for (let t = 0; t < this.caches.length; t++) {
      const src = present[t];
      for (let h = 0; h < kvHeads; h++) {
        const s = ((row * kvHeads + h) * length + pad) * headDim;
        const d = (slot * kvHeads + h) * cap * headDim;
        this.caches[t].set(src.subarray(s, s + filled * headDim), d);
      }
    }
    const b = slot * cap;
    this.bias.fill(0, b, b + filled);
    this.bias.fill(HIDDEN, b + filled, b + cap);
    this.lengths[slot] = filled;
    return slot;
  }

  /** Frees `slot` by moving the last row into it; returns the slot that moved (or -1). */
  remove(slot: number): number {
    const last = --this.rows;
    if (slot !== last) {
      const size = this.slotSize();
      for (const cache of this.caches) {
        cache.copyWithin(slot * size, last * size, (last + 1) * size);
      }
      const cap = this.capacity;
      this.bias.copyWithin(slot * cap, last * cap, (last + 1) * cap);
      this.lengths[slot] = this.lengths[last];
    }
    this.lengths.length = this.rows;
    return slot !== last ? last : -1;
  }

  /**
   * Makes room for every row to hold `columns` positions. The stride of a slot grows in
   * steps of GROW_COLUMNS, since every step attends over all of them; the buffers under it
   * grow geometrically, and a wider stride inside them is laid out in place, so growing by
   * a few columns neither allocates nor touches fresh pages.
   */
  ensureCapacity(columns: number): void {
    if (columns <= this.capacity) return;
    const cap = roundUp(columns, GROW_COLUMNS);
    if (cap > this.allocated) {
      const allocated = Math.max(cap, 2 * this.allocated);
      this.caches = this.caches.map((old) => {
        const grown = new Float32Array(this.maxRows * this.slotSize(allocated));
        grown.set(old.subarray(0, this.rows * this.slotSize()));
        return grown;
      });
      const bias = new Float32Array(this.maxRows * allocated);
      bias.set(this.bias.subarray(0, this.rows * this.capacity));
      this.bias = bias;
      this.allocated = allocated;
    }
    this.restride(cap);
  }

  /**
   * Moves the used rows from stride `capacity` to the wider `cap` inside the same buffers,
   * last block first so that no block overwrites one not yet moved. Columns past a row's
   * old stride keep stale finite values, hidden by their bias.
   */
  private restride(cap: number): void {
    const { kvHeads, headDim } = this.layout;
    const old = this.capacity;
    for (const cache of this.caches) {
      for (let block = this.rows * kvHeads - 1; block > 0; block--) {
        cache.copyWithin(block * cap * headDim, block * old * headDim, (block + 1) * old * headDim);
      }
    }
    for (let r = this.rows - 1; r >= 0; r--) {
      if (r > 0) this.bias.copyWithin(r * cap, r * old, (r + 1) * old);
      this.bias.fill(HIDDEN, r * cap + old, (r + 1) * cap);
    }
    this.capacity = cap;
  }

  /** cache_bias and past_key_values feeds for the rows in use (views, no copies). */
  feeds(): Record<string, ort.Tensor> {
    const { kvHeads, headDim, layers } = this.layout;
    const n = this.rows;
    const cap = this.capacity;
    const feeds: Record<string, ort.Tensor> = {
      cache_bias: new ort.Tensor('float32', this.bias.subarray(0, n * cap), [n, cap]),
    };
    const size = this.slotSize();
    for (let i = 0; i < layers; i++) {
      ['key', 'value'].forEach((kind, k) => {
        const data = this.caches[2 * i + k].subarray(0, n * size);
        feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', data, [
          n,
          kvHeads,
          cap,
          headDim,
        ]);
      });
    }
    return feeds;
  }

  /** Appends one column per row from step outputs [rows, kvHeads, 1, headDim]. */
  append(steps: Float32Array[]): void {
    let longest = 0;
    for (let r = 0; r < this.rows; r++) longest = Math.max(longest, this.lengths[r]);
    this.ensureCapacity(longest + 1);
    const { kvHeads, headDim } = this.layout;
    const cap = this.capacity;
    for (let t = 0; t < this.caches.length; t++) {
      const cache = this.caches[t];
      const step = steps[t];
      for (let r = 0; r < this.rows; r++) {
        const col = this.lengths[r];
        for (let h = 0; h < kvHeads; h++) {
          const s = (r * kvHeads + h) * headDim;
          const d = ((r * kvHeads + h) * cap + col) * headDim;
          for (let j = 0; j < headDim; j++) cache[d + j] = step[s + j];
        }
      }
    }
    for (let r = 0; r < this.rows; r++) this.bias[r * cap + this.lengths[r]++] = 0;
  }
}

function roundUp(n: number, step: number): number {
  return Math.ceil(n / step) * step;
}
