import { beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as ort from 'onnxruntime-node';
import { importLlama2c } from '../llama2c.ts';
import { onnxProto } from './onnx-proto.ts';
import {
  exportedStories260k,
  LAYERS,
  maxAbsDiff,
  row,
  runOptimum,
  STORIES260K_BIN,
} from './testing/optimum-run.ts';

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
  ({ bytes, session } = await exportedStories260k());
});

describe('exportOnnx', () => {
  test('uses the Optimum input and output names', () => {
    const model = onnxProto.ModelProto.decode(bytes);
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
    const out = await runOptimum(session, [[1, 403, 407, 261]], [[1, 1, 1, 1]], [[0, 1, 2, 3]]);
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
    const full = await runOptimum(session, [tokens], [[1, 1, 1, 1, 1]], [[0, 1, 2, 3, 4]]);
    const prefix = await runOptimum(session, [tokens.slice(0, 3)], [[1, 1, 1]], [[0, 1, 2]]);
    const past: Record<string, ort.Tensor> = {};
    for (let i = 0; i < LAYERS; i++) {
      for (const kind of ['key', 'value']) {
        past[`past_key_values.${i}.${kind}`] = prefix[`present.${i}.${kind}`];
      }
    }
    const step = await runOptimum(session, [[261, 378]], [[1, 1, 1, 1, 1]], [[3, 4]], past);
    expect(maxAbsDiff(row(step.logits, 0, 1), row(full.logits, 0, 4))).toBeLessThan(1e-5);
    expect(step['present.2.key'].dims).toEqual([1, 4, 5, 8]);
  });

  test('a left-padded row gets the logits it gets alone', async () => {
    const alone = await runOptimum(session, [[1, 403]], [[1, 1]], [[0, 1]]);
    const batched = await runOptimum(
      session,
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
      const { config, weights } = importLlama2c(STORIES260K_BIN);
      saveCheckpoint(dir, { config, weights, tokenizerJson: '{}' });
      const written = exportOnnxFile(dir, join(dir, 'model.onnx'));
      expect(written).toBe(bytes.byteLength);
      expect(Buffer.compare(readFileSync(join(dir, 'model.onnx')), Buffer.from(bytes))).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
