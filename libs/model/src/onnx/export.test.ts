import { beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { importLlama2c } from '../llama2c.ts';
import { decodeStepGraph, exportOnnx } from './export.ts';

const BIN = join(import.meta.dir, '../../../../../shared/data/stories260k/stories260K.bin');
const LAYERS = 5;

// Logits of stories260K for [BOS, ▁Once, ▁upon, ▁a] at positions 0 and 3, columns
// [0, 1, 2, 100, 261, 378, 403, 511], computed once with a float64 numpy port of llama2.c's
// run.c forward pass (interleaved RoPE on the original .bin weights).
const REF_COLUMNS = [0, 1, 2, 100, 261, 378, 403, 511];
const REF_LOGITS: Record<number, number[]> = {
  0: [-6.222914, 8.404342, -6.223739, -6.222722, 9.541274, 6.44746, 17.023515, -4.405519],
  3: [-6.714255, -6.053027, -6.715039, -6.714319, 4.498398, 18.874388, 0.30784, -5.047703],
};

let bytes: Uint8Array;
let session: ort.InferenceSession;

beforeAll(async () => {
  const { config, weights } = importLlama2c(BIN);
  bytes = exportOnnx(config, weights);
  session = await ort.InferenceSession.create(bytes);
});

function i64(values: number[], dims: number[]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);
}

/** Runs the graph; `past` maps layer/kind to tensors, empty cache when omitted. */
async function run(
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

function row(logits: ort.Tensor, b: number, t: number): Float32Array {
  const [, seq, vocab] = logits.dims;
  return (logits.data as Float32Array).slice((b * seq + t) * vocab, (b * seq + t + 1) * vocab);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
}

describe('exportOnnx', () => {
  test('uses the Optimum input and output names', () => {
    const model = onnx.ModelProto.decode(bytes);
    const inputs = model.graph?.input?.map((v) => v.name) ?? [];
    const outputs = model.graph?.output?.map((v) => v.name) ?? [];
    expect(inputs.slice(0, 5)).toEqual([
      'input_ids',
      'attention_mask',
      'position_ids',
      'past_key_values.0.key',
      'past_key_values.0.value',
    ]);
    expect(inputs).toHaveLength(3 + 2 * LAYERS);
    expect(outputs.slice(0, 3)).toEqual(['logits', 'present.0.key', 'present.0.value']);
    expect(Number(model.opsetImport?.[0].version)).toBe(17);
  });

  test('logits match the llama2.c forward pass within 1e-4', async () => {
    const out = await run([[1, 403, 407, 261]], [[1, 1, 1, 1]], [[0, 1, 2, 3]]);
    expect(out.logits.dims).toEqual([1, 4, 512]);
    expect(out['present.4.value'].dims).toEqual([1, 4, 4, 8]);
    for (const t of [0, 3]) {
      const logits = row(out.logits, 0, t);
      REF_COLUMNS.forEach((c, j) => {
        expect(Math.abs(logits[c] - REF_LOGITS[t][j])).toBeLessThan(1e-4);
      });
    }
  });

  test('decoding with the cache equals recomputing the whole sequence', async () => {
    const tokens = [1, 403, 407, 261, 378];
    const full = await run([tokens], [[1, 1, 1, 1, 1]], [[0, 1, 2, 3, 4]]);
    const prefix = await run([tokens.slice(0, 3)], [[1, 1, 1]], [[0, 1, 2]]);
    const past: Record<string, ort.Tensor> = {};
    for (let i = 0; i < LAYERS; i++) {
      for (const kind of ['key', 'value']) {
        past[`past_key_values.${i}.${kind}`] = prefix[`present.${i}.${kind}`];
      }
    }
    const step = await run([[261, 378]], [[1, 1, 1, 1, 1]], [[3, 4]], past);
    expect(maxAbsDiff(row(step.logits, 0, 1), row(full.logits, 0, 4))).toBeLessThan(1e-5);
    expect(step['present.2.key'].dims).toEqual([1, 4, 5, 8]);
  });

  test('a left-padded row gets the logits it gets alone', async () => {
    const alone = await run([[1, 403]], [[1, 1]], [[0, 1]]);
    const batched = await run(
      [
        [0, 0, 1, 403],
        [1, 403, 407, 261],
      ],
      [
        [0, 0, 1, 1],
        [1, 1, 1, 1],
      ],
      [
        [0, 0, 0, 1],
        [0, 1, 2, 3],
      ],
    );
    expect(maxAbsDiff(row(batched.logits, 0, 3), row(alone.logits, 0, 1))).toBeLessThan(1e-5);
  });

  test('exportOnnxFile reads a checkpoint directory', async () => {
    const { saveCheckpoint } = await import('../checkpoint.ts');
    const { exportOnnxFile } = await import('./export-file.ts');
    const dir = mkdtempSync(join(tmpdir(), 'gsil-onnx-'));
    try {
      const { config, weights } = importLlama2c(BIN);
      saveCheckpoint(dir, { config, weights, tokenizerJson: '{}' });
      const written = exportOnnxFile(dir, join(dir, 'model.onnx'));
      expect(written).toBe(bytes.byteLength);
      expect(Buffer.compare(readFileSync(join(dir, 'model.onnx')), Buffer.from(bytes))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('decodeStepGraph', () => {
  test('is derived only from graphs our exporter marked', () => {
    const model = onnx.ModelProto.decode(bytes);
    expect(decodeStepGraph(bytes)).toBeDefined();
    model.metadataProps = [];
    expect(decodeStepGraph(onnx.ModelProto.encode(model).finish())).toBeUndefined();
  });

  test('one step over a part-filled cache equals the Optimum graph (1e-5)', async () => {
    const step = await ort.InferenceSession.create(decodeStepGraph(bytes) as Uint8Array);
    const prefix = await run([[1, 403, 407]], [[1, 1, 1]], [[0, 1, 2]]);
    const full = await run([[1, 403, 407, 261]], [[1, 1, 1, 1]], [[0, 1, 2, 3]]);
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
      const prefix = await run([r.prefix], [r.prefix.map(() => 1)], [[...r.prefix.keys()]]);
      fulls.push(
        await run([[...r.prefix, r.token]], [Array(n + 1).fill(1)], [[...Array(n + 1).keys()]]),
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
