import { describe, expect, test } from 'bun:test';
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
