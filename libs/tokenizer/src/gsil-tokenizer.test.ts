import { describe, expect, test } from 'bun:test';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assetFile } from '@gsil/assets';
import { llama2cVocabToTokenizerJson } from './convert.ts';
import { GsilTokenizer } from './gsil-tokenizer.ts';

const TOK512_BIN = await assetFile('stories260k', 'tok512.bin');
const tokenizerJson = llama2cVocabToTokenizerJson(await assetFile('stories260k', 'tok512.model'));
const tokenizer = new GsilTokenizer(tokenizerJson);

// REFERENCE.md test vector (sentencepiece with tok512.model).
const TEXT = 'Once upon a time, there was a big dog named Max.';
const IDS = [403, 407, 261, 378, 432, 383, 286, 261, 370, 400, 428, 395, 392, 412, 444, 426];

describe('GsilTokenizer', () => {
  test('encodes the REFERENCE.md test vector exactly', () => {
    expect(tokenizer.encode(TEXT)).toEqual(IDS);
  });

  test('the llama2.c tok512.bin gives the same tokenizer.json as tok512.model', () => {
    expect(llama2cVocabToTokenizerJson(TOK512_BIN)).toEqual(tokenizerJson);
  });

  test('round trips text, including bytes outside the vocabulary', () => {
    expect(tokenizer.decode(IDS)).toBe(TEXT);
    for (const text of ['Tom had 3 apples.\nHe ate 1.', 'café 日本', 'number0 + number1 = ?']) {
      expect(tokenizer.decode(tokenizer.encode(text))).toBe(text);
    }
  });

  test('matches sentencepiece on whitespace and byte fallback (pinned with Python sentencepiece)', () => {
    // sentencepiece trims and collapses U+0020 runs (remove_extra_whitespaces is on in tok512).
    expect(tokenizer.encode('  a  b  ')).toEqual([261, 268]);
    expect(tokenizer.encode('')).toEqual([]);
    expect(tokenizer.encode(' ')).toEqual([]);
    expect(tokenizer.encode('Hello\tworld  \n  x')).toEqual([
      346, 306, 414, 12, 424, 304, 341, 410, 13, 410, 444,
    ]);
    // Control pieces in text are plain characters to sentencepiece.
    expect(tokenizer.encode('a<s>b')).toEqual([261, 504, 419, 505, 430]);
    // '\n' and '日本' fall back to UTF-8 bytes <0x0A> = id 13, etc.
    expect(tokenizer.encode('\n日本 x')).toEqual([410, 13, 233, 154, 168, 233, 159, 175, 410, 444]);
  });

  test('adds BOS to prompts and EOS to responses', () => {
    expect(tokenizer.bosId).toBe(1);
    expect(tokenizer.eosId).toBe(2);
    expect(tokenizer.encodePrompt(TEXT)).toEqual([1, ...IDS]);
    expect(tokenizer.encodeResponse(TEXT)).toEqual([...IDS, 2]);
    expect(tokenizer.decode([1, ...IDS, 2])).toBe(TEXT);
  });
});

describe('GsilTokenizer.fromModelDir', () => {
  /** A model folder with the tok512 tokenizer.json and, unless null, this config.json. */
  function withModelDir(config: Record<string, unknown> | null, body: (dir: string) => void) {
    const dir = mkdtempSync(join(tmpdir(), 'gsil-tokenizer-'));
    try {
      writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
      if (config) writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      body(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test('takes BOS and EOS from config.json, the first of a list', () => {
    withModelDir({ bos_token_id: 5, eos_token_id: [7, 2] }, (dir) => {
      const t = GsilTokenizer.fromModelDir(dir);
      expect([t.bosId, t.eosId]).toEqual([5, 7]);
      expect(t.encodePrompt(TEXT)).toEqual([5, ...IDS]);
      expect(t.encodeResponse(TEXT)).toEqual([...IDS, 7]);
    });
  });

  test('falls back to <s> and </s> without config.json or where it sets null', () => {
    withModelDir(null, (dir) => {
      const t = GsilTokenizer.fromModelDir(dir);
      expect([t.bosId, t.eosId]).toEqual([1, 2]);
    });
    withModelDir({ bos_token_id: null }, (dir) => {
      const t = GsilTokenizer.fromModelDir(dir);
      expect([t.bosId, t.eosId]).toEqual([1, 2]);
    });
  });

  test('an id outside the vocabulary names the file and field', () => {
    withModelDir({ bos_token_id: 1, eos_token_id: 512 }, (dir) => {
      expect(() => GsilTokenizer.fromModelDir(dir)).toThrow(
        `${join(dir, 'config.json')}: eos_token_id 512 is not one of the 512 token ids of ` +
          join(dir, 'tokenizer.json'),
      );
    });
    withModelDir({ bos_token_id: '<s>' }, (dir) => {
      expect(() => GsilTokenizer.fromModelDir(dir)).toThrow(
        `${join(dir, 'config.json')}: bos_token_id must be a token id or a list of them, got "<s>"`,
      );
    });
  });
});
