import { describe, expect, test } from 'bun:test';
import { KvSlots } from './kv-slots.ts';

const layout = { layers: 1, kvHeads: 2, headDim: 3, vocab: 8, useCacheBranch: false };
/** The value written for (row id, kind, head, position, dim): unique and exact in float32. */
const value = (id: number, t: number, h: number, pos: number, j: number) =>
  id * 100_000 + t * 10_000 + h * 1_000 + pos * 10 + j;

/** present tensors [1, kvHeads, length, headDim] for one row, `pad` leading columns junk. */
function prefill(id: number, length: number, pad: number): Float32Array[] {
  return [0, 1].map((t) => {
    const data = new Float32Array(layout.kvHeads * length * layout.headDim).fill(-7);
    for (let h = 0; h < layout.kvHeads; h++)
      for (let pos = 0; pos < length - pad; pos++)
        for (let j = 0; j < layout.headDim; j++)
          data[(h * length + pad + pos) * layout.headDim + j] = value(id, t, h, pos, j);
    return data;
  });
}

describe('KvSlots', () => {
  test('rows keep their columns and bias while the cache grows past several allocations', () => {
    const slots = new KvSlots(layout, 4, 1);
    const ids: number[] = []; // row id by slot
    const lengths = [2, 5, 1];
    lengths.forEach((length, id) => {
      ids[slots.add(prefill(id, length + 1, 1), 0, length + 1, 1)] = id;
    });
    // 150 steps take the stride from 8 through 160 columns (allocations 8 doubling to 256).
    for (let step = 0; step < 150; step++) {
      if (step === 40) {
        // Row id 0 finishes: the last row moves into its slot.
        const moved = slots.remove(0);
        expect(moved).toBe(2);
        ids[0] = ids[2];
        ids.length = 2;
      }
      const steps = [0, 1].map((t) => {
        const data = new Float32Array(slots.rows * layout.kvHeads * layout.headDim);
        for (let r = 0; r < slots.rows; r++)
          for (let h = 0; h < layout.kvHeads; h++)
            for (let j = 0; j < layout.headDim; j++)
              data[(r * layout.kvHeads + h) * layout.headDim + j] = value(
                ids[r],
                t,
                h,
                slots.lengths[r],
                j,
              );
        return data;
      });
      slots.append(steps);
    }
    const feeds = slots.feeds();
    const [, , capacity] = feeds['past_key_values.0.key'].dims;
    expect(capacity).toBe(160);
    expect(slots.lengths).toEqual([151, 155]);
    const bias = feeds.cache_bias.data as Float32Array;
    for (let r = 0; r < slots.rows; r++) {
      const id = ids[r];
      const length = lengths[id] + 150;
      expect(slots.lengths[r]).toBe(length);
      for (let col = 0; col < capacity; col++) {
        expect(bias[r * capacity + col]).toBe(col < length ? 0 : -1e9);
      }
      ['key', 'value'].forEach((kind, t) => {
        const data = feeds[`past_key_values.0.${kind}`].data as Float32Array;
        for (let h = 0; h < layout.kvHeads; h++)
          for (let pos = 0; pos < length; pos++)
            for (let j = 0; j < layout.headDim; j++)
              expect(data[((r * layout.kvHeads + h) * capacity + pos) * layout.headDim + j]).toBe(
                value(id, t, h, pos, j),
              );
      });
    }
  });
});
