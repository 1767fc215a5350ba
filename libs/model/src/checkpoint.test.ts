import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assetFile } from '@gsil/assets';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { importLlama2c } from './llama2c.ts';
import { decodeSafetensors, encodeSafetensors } from './safetensors.ts';

const BIN = await assetFile('stories260k', 'stories260K.bin');
const TOKENIZER = { version: '1.0', model: { type: 'BPE' } };

describe('safetensors', () => {
  test('encodes the header exactly as the format specifies', () => {
    const bytes = encodeSafetensors(
      new Map([['a', { shape: [2], data: new Float32Array([1, -2]) }]]),
    );
    const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + headerLen) % 8).toBe(0);
    const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + headerLen)).toString());
    expect(header).toEqual({
      __metadata__: { format: 'pt' },
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
    });
    // 1.0f and -2.0f little-endian.
    expect([...bytes.subarray(8 + headerLen)]).toEqual([0, 0, 128, 63, 0, 0, 0, 192]);
    expect(decodeSafetensors(bytes, 'x').tensors.get('a')?.data).toEqual(new Float32Array([1, -2]));
  });
});

describe('checkpoint', () => {
  const { config, weights } = importLlama2c(BIN);

  test('round trips bit-exactly and leaves no temporary files', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    saveCheckpoint(dir, { config, weights, tokenizerJson: TOKENIZER });
    expect(readdirSync(dir).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'model.safetensors',
      'tokenizer.json',
    ]);
    const loaded = loadCheckpoint(dir);
    expect(loaded.config).toEqual(config);
    expect(JSON.parse(loaded.tokenizerJson)).toEqual(TOKENIZER);
    expect(loaded.generationConfig).toEqual({ bos_token_id: 1, eos_token_id: 2 });
    expect([...loaded.weights.keys()]).toEqual([...weights.keys()]);
    for (const [name, w] of weights) {
      const got = loaded.weights.get(name)!;
      expect(got.shape).toEqual(w.shape);
      expect(Buffer.from(got.data.buffer).equals(Buffer.from(w.data.buffer))).toBe(true);
    }
  });

  test('refuses a truncated model.safetensors naming the tensor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    saveCheckpoint(dir, { config, weights, tokenizerJson: TOKENIZER });
    const path = join(dir, 'model.safetensors');
    const bytes = readFileSync(path);
    writeFileSync(path, bytes.subarray(0, bytes.length - 100));
    // The last tensor in canonical order is model.norm.weight.
    expect(() => loadCheckpoint(dir)).toThrow(
      /model\.safetensors: tensor model\.norm\.weight is truncated/,
    );
  });

  test('refuses a wrong-shape tensor naming it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ckpt-'));
    saveCheckpoint(dir, { config, weights, tokenizerJson: TOKENIZER });
    const bad = new Map(weights);
    bad.set('model.layers.3.mlp.up_proj.weight', {
      shape: [64, 172],
      data: new Float32Array(64 * 172),
    });
    writeFileSync(join(dir, 'model.safetensors'), encodeSafetensors(bad));
    expect(() => loadCheckpoint(dir)).toThrow(
      /model\.safetensors: tensor model\.layers\.3\.mlp\.up_proj\.weight has shape \[64,172\], expected \[172,64\]/,
    );
  });
});
