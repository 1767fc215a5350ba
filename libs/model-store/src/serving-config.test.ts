import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readServingConfig, servingConfig } from './serving-config.ts';

describe('servingConfig', () => {
  test('reads the context length under each architecture family’s name', () => {
    // Field names as transformers' save_pretrained writes them for each family.
    const llama = { vocab_size: 32000, max_position_embeddings: 4096 };
    const gpt2 = { vocab_size: 50257, n_positions: 1024, n_ctx: 1024 };
    const mpt = { vocab_size: 50432, max_seq_len: 2048 };
    expect(servingConfig(llama, 'llama')).toEqual({ vocabSize: 32000, contextLength: 4096 });
    expect(servingConfig(gpt2, 'gpt2')).toEqual({ vocabSize: 50257, contextLength: 1024 });
    expect(servingConfig(mpt, 'mpt')).toEqual({ vocabSize: 50432, contextLength: 2048 });
  });

  test('a config without a usable context length or vocabulary names the file and field', () => {
    expect(() => servingConfig({ vocab_size: 512 }, 'm/config.json')).toThrow(
      'm/config.json: no context length (looked for max_position_embeddings, n_positions, ' +
        'n_ctx, max_seq_len, seq_length)',
    );
    expect(() => servingConfig({ vocab_size: 512, n_positions: 0 }, 'm/config.json')).toThrow(
      'm/config.json: n_positions must be a positive integer, got 0',
    );
    expect(() => servingConfig({ n_positions: 64 }, 'm/config.json')).toThrow(
      'm/config.json: vocab_size must be a positive integer, got undefined',
    );
  });

  test('readServingConfig reads <dir>/config.json and names it when it is not JSON', () => {
    const dir = mkdtempSync(join(tmpdir(), 'gsil-serving-config-'));
    try {
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ vocab_size: 8, n_ctx: 16 }));
      expect(readServingConfig(dir)).toEqual({ vocabSize: 8, contextLength: 16 });
      writeFileSync(join(dir, 'config.json'), '{"vocab_size": 8,');
      expect(() => readServingConfig(dir)).toThrow(`${join(dir, 'config.json')}: `);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
