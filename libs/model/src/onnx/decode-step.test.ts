import { beforeAll, describe, expect, test } from 'bun:test';
import * as ort from 'onnxruntime-node';
import { decodeStepGraph } from './decode-step.ts';
import { onnxProto } from './onnx-proto.ts';
import {
  exportedStories260k,
  i64,
  LAYERS,
  maxAbsDiff,
  row,
  runOptimum,
} from './testing/optimum-run.ts';

// The reference throughout is exportOnnx's graph run on the same tokens.
let bytes: Uint8Array;
let session: ort.InferenceSession;

beforeAll(async () => {
  ({ bytes, session } = await exportedStories260k());
});

describe('decodeStepGraph', () => {
  test('is derived only from graphs our exporter marked', () => {
    const model = onnxProto.ModelProto.decode(bytes);
    expect(decodeStepGraph(bytes)).toBeDefined();
    model.metadataProps = [];
    expect(decodeStepGraph(onnxProto.ModelProto.encode(model).finish())).toBeUndefined();
  });

  test('one step over a part-filled cache equals the Optimum graph (1e-5)', async () => {
    const step = await ort.InferenceSession.create(decodeStepGraph(bytes) as Uint8Array);
    const prefix = await runOptimum(session, [[1, 403, 407]], [[1, 1, 1]], [[0, 1, 2]]);
    const full = await runOptimum(session, [[1, 403, 407, 261]], [[1, 1, 1, 1]], [[0, 1, 2, 3]]);
    // Capacity 5: three filled columns, two empty ones that the bias hides.
    const capacity = 5;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64([261], [1, 1]),
      position_ids: i64([3], [1, 1]),
      cache_bias: new ort.Tensor('float32', Float32Array.of(0, 0, 0, -1e9, -1e9), [1, capacity]),
    };
    for (let i = 0; i < LAYERS; i++) {
      for (const kind of ['key', 'value']) {
        const src = prefix[`present.${i}.${kind}`].data as Float32Array;
        const cache = new Float32Array(4 * capacity * 8).fill(123);
        for (let h = 0; h < 4; h++) cache.set(src.subarray(h * 24, h * 24 + 24), h * capacity * 8);
        feeds[`past_key_values.${i}.${kind}`] = new ort.Tensor('float32', cache, [
          1,
          4,
          capacity,
          8,
        ]);
      }
    }
    const out = await step.run(feeds);
    expect(maxAbsDiff(row(out.logits, 0, 0), row(full.logits, 0, 3))).toBeLessThan(1e-5);
    // The step's keys are the fourth column of the full pass's cache.
    const key = out['step.1.key'].data as Float32Array;
    const fullKey = full['present.1.key'].data as Float32Array;
    expect(maxAbsDiff(key.slice(0, 8), fullKey.slice(24, 32))).toBeLessThan(1e-5);
  });

  test('a batch at different positions and cache fills matches the Optimum graph', async () => {
    const step = await ort.InferenceSession.create(decodeStepGraph(bytes) as Uint8Array);
    // Each row: its cached prefix, then the token it decodes; capacity 7 leaves both part-empty.
    const rows = [
      { prefix: [1, 403, 407], token: 261 },
      { prefix: [1, 403, 407, 261, 378, 300], token: 290 },
    ];
    const capacity = 7;
    const cacheSize = 4 * capacity * 8;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64(
        rows.map((r) => r.token),
        [2, 1],
      ),
      position_ids: i64(
        rows.map((r) => r.prefix.length),
        [2, 1],
      ),
      cache_bias: new ort.Tensor(
        'float32',
        Float32Array.from({ length: 2 * capacity }, (_, j) =>
          j % capacity < rows[Math.floor(j / capacity)].prefix.length ? 0 : -1e9,
        ),
        [2, capacity],
      ),
    };
    const fulls = [];
    for (const [b, r] of rows.entries()) {
      const n = r.prefix.length;
      const prefix = await runOptimum(
        session,
        [r.prefix],
        [r.prefix.map(() => 1)],
        [[...r.prefix.keys()]],
      );
      fulls.push(
        await runOptimum(
          session,
          [[...r.prefix, r.token]],
          [Array(n + 1).fill(1)],
          [[...Array(n + 1).keys()]],
        ),
      );
      for (let i = 0; i < LAYERS; i++) {
        for (const kind of ['key', 'value']) {
          const name = `past_key_values.${i}.${kind}`;
          feeds[name] ??= new ort.Tensor('float32', new Float32Array(2 * cacheSize).fill(7), [
            2,
            4,
            capacity,
            8,
          ]);
          const src = prefix[`present.${i}.${kind}`].data as Float32Array;
          const cache = feeds[name].data as Float32Array;
          for (let h = 0; h < 4; h++) {
            cache.set(src.subarray(h * n * 8, (h + 1) * n * 8), b * cacheSize + h * capacity * 8);
          }
        }
      }
    }
    const out = await step.run(feeds);
    for (const [b, r] of rows.entries()) {
      const n = r.prefix.length;
      const want = row(fulls[b].logits, 0, n);
      expect(maxAbsDiff(row(out.logits, b, 0), want)).toBeLessThan(1e-5);
      const max = Math.max(...want);
      const logSumExp = max + Math.log(want.reduce((sum, x) => sum + Math.exp(x - max), 0));
      expect(Math.abs((out.logsumexp.data as Float32Array)[b] - logSumExp)).toBeLessThan(1e-5);
      expect(Number((out.greedy_token.data as BigInt64Array)[b])).toBe(want.indexOf(max));
      expect(
        Math.abs((out.greedy_logprob.data as Float32Array)[b] - (max - logSumExp)),
      ).toBeLessThan(1e-5);
      for (let i = 0; i < LAYERS; i++) {
        for (const kind of ['key', 'value']) {
          const got = (out[`step.${i}.${kind}`].data as Float32Array).slice(b * 32, b * 32 + 32);
          const full = fulls[b][`present.${i}.${kind}`].data as Float32Array;
          const column = new Float32Array(32);
          for (let h = 0; h < 4; h++)
            column.set(full.subarray((h * (n + 1) + n) * 8, (h * (n + 1) + n + 1) * 8), h * 8);
          expect(maxAbsDiff(got, column)).toBeLessThan(1e-5);
          // Layer 0's keys are bitwise the Optimum graph's: callers fill one cache from both
          // graphs, and the decode pool's tests compare sampled log-probabilities exactly.
          if (i === 0) expect(Array.from(got)).toEqual(Array.from(column));
        }
      }
    }
  });
});
