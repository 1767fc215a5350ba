import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assetFile } from '@gsil/assets';
import { parameterShapes } from './config.ts';
import { importLlama2c, permuteRotaryRows } from './llama2c.ts';

const BIN = await assetFile('stories260k', 'stories260K.bin');

describe('importLlama2c', () => {
  const { config, weights } = importLlama2c(BIN);

  test('reads the stories260K header (REFERENCE.md)', () => {
    expect(config.hidden_size).toBe(64);
    expect(config.intermediate_size).toBe(172);
    expect(config.num_hidden_layers).toBe(5);
    expect(config.num_attention_heads).toBe(8);
    expect(config.num_key_value_heads).toBe(4);
    expect(config.vocab_size).toBe(512);
    expect(config.max_position_embeddings).toBe(512);
    expect(config.tie_word_embeddings).toBe(true);
  });

  test('yields exactly the parameters of parameterShapes', () => {
    const expected = parameterShapes(config);
    expect([...weights.keys()]).toEqual(expected.map(([name]) => name));
    for (const [name, shape] of expected) {
      const w = weights.get(name);
      expect(w?.shape).toEqual(shape);
      expect(w?.data.length).toBe(shape.reduce((a, b) => a * b, 1));
    }
  });

  test('values match the raw file (pinned with Python struct)', () => {
    const embed = weights.get('model.embed_tokens.weight')?.data;
    expect(embed?.[0]).toBeCloseTo(-0.29474878311157227, 7);
    expect(embed?.[2]).toBeCloseTo(0.1754225343465805, 7);
    // llama2.c wq layer 0, head 0: old row 1 (pair 0, odd) -> new row 4; old row 2 -> new row 1.
    const q = weights.get('model.layers.0.self_attn.q_proj.weight')?.data;
    expect(q?.[4 * 64]).toBeCloseTo(0.22455421090126038, 7);
    expect(q?.[1 * 64]).toBeCloseTo(0.055401116609573364, 7);
  });

  test('a truncated file is refused naming the file and the tensor', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llama2c-'));
    const cut = join(dir, 'cut.bin');
    // Header + embeddings + rms_att + half of wq.
    writeFileSync(cut, readFileSync(BIN).subarray(0, 28 + (32768 + 320 + 10000) * 4));
    expect(() => importLlama2c(cut)).toThrow(/cut\.bin: truncated while reading wq/);
  });
});

test('permuteRotaryRows matches transformers view(h, hd/2, 2, dim).transpose(1, 2)', () => {
  // One head, hd 4, dim 1: rows [0,1,2,3] = pairs (0,1),(2,3) -> [0,2,1,3].
  expect([...permuteRotaryRows(new Float32Array([0, 1, 2, 3]), 1, 4, 1)]).toEqual([0, 2, 1, 3]);
  // Two heads, hd 4, dim 1.
  const twoHeads = permuteRotaryRows(new Float32Array([0, 1, 2, 3, 4, 5, 6, 7]), 2, 4, 1);
  expect([...twoHeads]).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
});
